//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestConsistencyGroups drives Cinder's deprecated consistency group API
// with the openstack and cinder CLIs against a real rackd: a consistency
// group, a volume made in it and written over NBD, a cgsnapshot, writes
// after it, and a consistency group made from the cgsnapshot whose
// volume holds what was written before it; a forced delete takes the
// groups' volumes. A generic group is no consistency group.
func TestConsistencyGroups(t *testing.T) {
	testenv.RequireRoot(t, "export volumes over NBD")
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/cinder", "qemu-io"} {
		testenv.RequireCommand(t, c)
	}
	n1 := startDevCloud(t, "cgapi", "--disk", t.TempDir(), "--compute", "off", "--s3-listen", "off")
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	openstack(t, admin, "project", "create", "demo")
	openstack(t, admin, "user", "create", "--project", "demo", "--password", "alice-pass-1", "alice")
	openstack(t, admin, "role", "add", "--project", "demo", "--user", "alice", "member")
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	openstack(t, admin, "volume", "type", "create", "fast")

	openstack(t, alice, "consistency", "group", "create", "--volume-type", "fast", "--description", "one disk", "cg1")
	var cg struct {
		ID, Name, Status, Description string
		VolumeTypes                   []string `json:"volume_types"`
	}
	if err := json.Unmarshal([]byte(openstack(t, alice, "consistency", "group", "show", "-f", "json", "cg1")), &cg); err != nil ||
		cg.Status != "available" || cg.Description != "one disk" || len(cg.VolumeTypes) != 1 {
		t.Fatalf("consistency group %+v (%v)", cg, err)
	}
	// A generic group (3.13) of another group type is not listed.
	openstack(t, admin, "--os-volume-api-version", "3.11", "volume", "group", "type", "create", "gt")
	openstack(t, alice, "--os-volume-api-version", "3.13", "volume", "group", "create", "gt", "fast", "--name", "g1")
	if out := openstack(t, alice, "consistency", "group", "list", "-f", "value", "-c", "Name"); strings.TrimSpace(out) != "cg1" {
		t.Fatalf("consistency group list %q", out)
	}

	openstack(t, alice, "volume", "create", "--size", "1", "--type", "fast", "--consistency-group", "cg1", "d1")
	d1 := waitVolume(t, alice, "d1", "available", time.Minute)
	if out := openstack(t, alice, "volume", "show", "-f", "value", "-c", "consistencygroup_id", "d1"); strings.TrimSpace(out) != cg.ID {
		t.Fatalf("d1's consistencygroup_id %q, want %s", out, cg.ID)
	}

	ex := exportVolume(t, creds, n1, d1.ID)
	nbdTool(t, "qemu-io", "-f", "raw", "-c", "write -P 0x44 0 1M", ex.UnixURI)
	openstack(t, alice, "consistency", "group", "snapshot", "create", "--consistency-group", "cg1", "cs1")
	if out := openstack(t, alice, "consistency", "group", "snapshot", "list", "-f", "value", "-c", "Name", "-c", "Status"); strings.TrimSpace(out) != "available cs1" {
		t.Fatalf("cgsnapshot list %q", out)
	}
	nbdTool(t, "qemu-io", "-f", "raw", "-c", "write -P 0x55 0 1M", ex.UnixURI)
	if out, err := rackctl(t, creds, n1, "volume", "unexport", d1.ID); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}

	// openstack's create from a cgsnapshot fails reading cinderclient's
	// answer (a dict, not a resource): cinder's consisgroup-create-from-src.
	cinder(t, alice, "consisgroup-create-from-src", "--cgsnapshot", "cs1", "--name", "cg2")
	cg2 := strings.TrimSpace(openstack(t, alice, "consistency", "group", "show", "-f", "value", "-c", "id", "cg2"))
	var made []string
	for _, id := range strings.Fields(openstack(t, alice, "volume", "list", "-f", "value", "-c", "ID")) {
		if strings.TrimSpace(openstack(t, alice, "volume", "show", "-f", "value", "-c", "consistencygroup_id", id)) == cg2 {
			made = append(made, id)
		}
	}
	if len(made) != 1 {
		t.Fatalf("volumes of cg2: %v", made)
	}
	waitVolume(t, alice, made[0], "available", time.Minute)
	ex2 := exportVolume(t, creds, n1, made[0])
	if out := nbdTool(t, "qemu-io", "-f", "raw", "-c", "read -P 0x44 0 1M", ex2.UnixURI); strings.Contains(out, "Pattern verification failed") {
		t.Fatalf("the volume made from the cgsnapshot:\n%s", out)
	}
	if out, err := rackctl(t, creds, n1, "volume", "unexport", made[0]); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}

	// Without --force a group with volumes stays; the cgsnapshot goes,
	// then the groups with their volumes.
	if out, err := openstackErr(alice, "consistency", "group", "delete", "cg1"); err == nil {
		t.Fatalf("consistency group with volumes deleted without --force:\n%s", out)
	}
	openstack(t, alice, "consistency", "group", "snapshot", "delete", "cs1")
	openstack(t, alice, "consistency", "group", "delete", "--force", "cg1", "cg2")
	if out := openstack(t, alice, "consistency", "group", "list", "-f", "value"); strings.TrimSpace(out) != "" {
		t.Fatalf("consistency groups left: %q", out)
	}
	if out := openstack(t, alice, "volume", "list", "-f", "value"); strings.TrimSpace(out) != "" {
		t.Fatalf("volumes left: %q", out)
	}
}
