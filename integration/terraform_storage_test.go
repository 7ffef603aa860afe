//go:build integration

package integration

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// terraformStorageConfig is a stack of the storage and identity services'
// resources as a Terraform user writes it: a project with a user holding
// the member role in it, a volume, an image uploaded from a local file,
// and a container with an object whose content type Swift guesses from
// its name.
const terraformStorageConfig = `
terraform {
  required_providers {
    openstack = { source = "terraform-provider-openstack/openstack" }
  }
}

provider "openstack" {}

resource "openstack_identity_project_v3" "proj" {
  name        = "tf-proj"
  description = "made by terraform"
}

resource "openstack_identity_user_v3" "user" {
  name               = "tf-user"
  password           = "tf-user-pw-1"
  default_project_id = openstack_identity_project_v3.proj.id
}

data "openstack_identity_role_v3" "member" {
  name = "member"
}

resource "openstack_identity_role_assignment_v3" "member" {
  user_id    = openstack_identity_user_v3.user.id
  project_id = openstack_identity_project_v3.proj.id
  role_id    = data.openstack_identity_role_v3.member.id
}

resource "openstack_blockstorage_volume_v3" "vol" {
  name        = "tf-vol"
  size        = 1
  description = "made by terraform"
  metadata    = { made_by = "terraform" }
}

resource "openstack_images_image_v2" "img" {
  name             = "tf-img"
  local_file_path  = "IMAGE_FILE"
  disk_format      = "raw"
  container_format = "bare"
  tags             = ["terraform"]
}

resource "openstack_objectstorage_container_v1" "bucket" {
  name     = "tf-bucket"
  metadata = { made_by = "terraform" }
}

resource "openstack_objectstorage_object_v1" "greeting" {
  container_name = openstack_objectstorage_container_v1.bucket.name
  name           = "greeting.txt"
  content        = "hello from terraform\n"
}

output "ids" {
  value = {
    project = openstack_identity_project_v3.proj.id
    user    = openstack_identity_user_v3.user.id
    volume  = openstack_blockstorage_volume_v3.vol.id
    image   = openstack_images_image_v2.img.id
  }
}
`

// TestTerraformStorage: the real Terraform, with the OpenStack provider
// (make terraform-provider builds it), applies a stack of a project, a
// user with a role in it, a volume, an image and a container with an
// object against a real rackd; each is checked through the API with the
// openstack CLI (and the user logs in), a second plan finds nothing to
// change (what the provider reads back is what it wrote), and destroy
// removes every one of them.
func TestTerraformStorage(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "tfstore", "--disk", t.TempDir(), "--s3-listen", "off")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)

	dir := t.TempDir()
	image := make([]byte, 1<<20)
	rand.Read(image)
	imageFile := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(imageFile, image, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(image)
	terraform := terraformIn(t, dir, strings.Replace(terraformStorageConfig, "IMAGE_FILE", imageFile, 1), osEnv(creds, n))
	applied := false
	t.Cleanup(func() {
		if applied {
			if out, err := terraform("destroy", "-auto-approve", "-input=false"); err != nil {
				t.Logf("terraform destroy at cleanup: %v\n%s", err, out)
			}
		}
	})

	applied = true
	if out, err := terraform("apply", "-auto-approve", "-input=false"); err != nil {
		t.Fatalf("terraform apply: %v\n%s", err, out)
	}
	out, err := terraform("output", "-json", "ids")
	if err != nil {
		t.Fatalf("terraform output: %v\n%s", err, out)
	}
	var ids map[string]string
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &ids); err != nil {
		t.Fatalf("terraform output: %v\n%s", err, out)
	}

	vol := showJSON(t, admin, "volume", "show", ids["volume"])
	if vol["status"] != "available" || vol["size"] != float64(1) || vol["name"] != "tf-vol" {
		t.Errorf("volume: status %v size %v name %v, want available, 1, tf-vol", vol["status"], vol["size"], vol["name"])
	}
	img := showJSON(t, admin, "image", "show", ids["image"])
	if img["status"] != "active" || img["checksum"] != hex.EncodeToString(sum[:]) || img["size"] != float64(len(image)) {
		t.Errorf("image: status %v checksum %v size %v, want active, %x, %d", img["status"], img["checksum"], img["size"], sum, len(image))
	}
	obj := showJSON(t, admin, "object", "show", "tf-bucket", "greeting.txt")
	if obj["content-type"] != "text/plain" {
		t.Errorf("object content type %v, want text/plain (guessed from .txt)", obj["content-type"])
	}
	saved := filepath.Join(dir, "greeting.out")
	openstack(t, admin, "object", "save", "--file", saved, "tf-bucket", "greeting.txt")
	if b, _ := os.ReadFile(saved); string(b) != "hello from terraform\n" {
		t.Errorf("object content %q", b)
	}
	if p := showJSON(t, admin, "project", "show", ids["project"]); p["name"] != "tf-proj" || p["description"] != "made by terraform" {
		t.Errorf("project: %v", p)
	}
	if u := showJSON(t, admin, "user", "show", ids["user"]); u["name"] != "tf-user" || u["default_project_id"] != ids["project"] {
		t.Errorf("user: %v", u)
	}
	// The role assignment is real: the user logs in to the project.
	user := osEnv(creds, n, "OS_USERNAME=tf-user", "OS_PASSWORD=tf-user-pw-1", "OS_PROJECT_NAME=tf-proj")
	if tok := showJSON(t, user, "token", "issue"); tok["project_id"] != ids["project"] {
		t.Errorf("the user's token is for project %v, want %s", tok["project_id"], ids["project"])
	}

	if out, err := terraform("plan", "-detailed-exitcode", "-input=false"); err != nil {
		t.Errorf("a second plan wants changes (exit %v): what the provider read back is not what it wrote\n%s", err, out)
	}

	if out, err := terraform("destroy", "-auto-approve", "-input=false"); err != nil {
		t.Fatalf("terraform destroy: %v\n%s", err, out)
	}
	applied = false
	for _, args := range [][]string{
		{"volume", "show", ids["volume"]},
		{"image", "show", ids["image"]},
		{"container", "show", "tf-bucket"},
		{"project", "show", ids["project"]},
		{"user", "show", ids["user"]},
	} {
		if out, err := openstackErr(admin, args...); err == nil {
			t.Errorf("%s after destroy:\n%s", strings.Join(args, " "), out)
		}
	}
}
