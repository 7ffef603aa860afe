package configdrive

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

func server() Server {
	return Server{
		UUID: "6f1b3a8e-0000-4000-8000-000000000001", Name: "vm1", Hostname: "vm1", Project: "p1", AZ: "nova",
		Keys:     []Key{{Name: "k1", Data: "ssh-ed25519 AAAAC3Nza k1"}},
		Meta:     map[string]string{"role": "web"},
		UserData: []byte("#!/bin/sh\necho hi\n"),
		NICs:     []NIC{{PortID: "port-1", NetworkID: "net-1", MAC: "fa:16:3e:00:00:01", MTU: 1500, Device: "tapport-1"}},
	}
}

func TestFiles(t *testing.T) {
	files, err := Files(server())
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		UUID       string            `json:"uuid"`
		Hostname   string            `json:"hostname"`
		PublicKeys map[string]string `json:"public_keys"`
		Meta       map[string]string `json:"meta"`
	}
	if err := json.Unmarshal(files["openstack/latest/meta_data.json"], &md); err != nil {
		t.Fatal(err)
	}
	if md.UUID != server().UUID || md.Hostname != "vm1" || md.PublicKeys["k1"] != "ssh-ed25519 AAAAC3Nza k1" || md.Meta["role"] != "web" {
		t.Errorf("meta_data.json: %s", files["openstack/latest/meta_data.json"])
	}
	if strings.Contains(string(files["openstack/latest/meta_data.json"]), "\n") {
		t.Error("meta_data.json must be one line: the test image reads it with sed")
	}
	if string(files["openstack/latest/user_data"]) != "#!/bin/sh\necho hi\n" {
		t.Errorf("user_data: %q", files["openstack/latest/user_data"])
	}
	var nd struct {
		Links []struct {
			MAC string `json:"ethernet_mac_address"`
		} `json:"links"`
		Networks []struct {
			Type string `json:"type"`
		} `json:"networks"`
	}
	if err := json.Unmarshal(files["openstack/latest/network_data.json"], &nd); err != nil || nd.Links[0].MAC != "fa:16:3e:00:00:01" || nd.Networks[0].Type != "ipv4_dhcp" {
		t.Errorf("network_data.json: %s (%v)", files["openstack/latest/network_data.json"], err)
	}
	noUD := server()
	noUD.UserData = nil
	files, _ = Files(noUD)
	if _, ok := files["openstack/latest/user_data"]; ok {
		t.Error("user_data written for a server without any")
	}
}

func TestBuildISO(t *testing.T) {
	for _, tool := range []string{"genisoimage", "isoinfo"} {
		testenv.RequireCommand(t, tool)
	}
	path := filepath.Join(t.TempDir(), "disk.config")
	if err := Build(context.Background(), path, server()); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("isoinfo", "-d", "-i", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Volume id: config-2") {
		t.Fatalf("isoinfo -d: %v\n%s", err, out)
	}
	out, err = exec.Command("isoinfo", "-R", "-i", path, "-x", "/openstack/latest/user_data").CombinedOutput()
	if err != nil || string(out) != "#!/bin/sh\necho hi\n" {
		t.Fatalf("user_data read back from the ISO (Rock Ridge names): %v %q", err, out)
	}
}

// TestInjectedFiles: personality files are in openstack/content/ and
// listed in meta_data.json, as Nova's config drive has them.
func TestInjectedFiles(t *testing.T) {
	s := server()
	s.Files = []File{{Path: "/etc/motd", Data: []byte("hello\n")}, {Path: "/root/x", Data: []byte{0, 1, 2}}}
	files, err := Files(s)
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Files []struct {
			Path        string `json:"path"`
			ContentPath string `json:"content_path"`
		} `json:"files"`
	}
	if err := json.Unmarshal(files["openstack/latest/meta_data.json"], &md); err != nil {
		t.Fatal(err)
	}
	if len(md.Files) != 2 {
		t.Fatalf("meta_data.json files: %s", files["openstack/latest/meta_data.json"])
	}
	for i, f := range md.Files {
		if f.Path != s.Files[i].Path || string(files["openstack"+f.ContentPath]) != string(s.Files[i].Data) {
			t.Errorf("file %d: %+v holds %q", i, f, files["openstack"+f.ContentPath])
		}
	}
	plain, err := Files(server())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(plain["openstack/latest/meta_data.json"]), `"files"`) {
		t.Error("a server without files lists files")
	}
}

// With a block-device-mapping the drive has Nova's EC2 tree, which
// names the server's local disks.
func TestEC2BlockDeviceMapping(t *testing.T) {
	files, err := Files(Server{UUID: "u", Hostname: "h", AZ: "nova", InstanceType: "m1",
		BlockDeviceMapping: map[string]string{"ami": "vda", "root": "/dev/vda", "ephemeral0": "/dev/vdb", "swap": "/dev/vdc"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"2009-04-04", "latest"} {
		var md struct {
			ID  string            `json:"instance-id"`
			BDM map[string]string `json:"block-device-mapping"`
		}
		if err := json.Unmarshal(files["ec2/"+v+"/meta-data.json"], &md); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if md.ID != "u" || md.BDM["ephemeral0"] != "/dev/vdb" || md.BDM["swap"] != "/dev/vdc" || md.BDM["ami"] != "vda" {
			t.Errorf("%s: %+v", v, md)
		}
	}
	files, _ = Files(Server{UUID: "u"})
	if _, ok := files["ec2/latest/meta-data.json"]; ok {
		t.Error("an EC2 tree without a mapping")
	}
}
