//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// bdmv2Script finds the guest's volume disks (every vd* but the root
// disk whose serial is a volume's: 20 characters), waits until there are
// two, writes a line naming its serial at the start of each and prints
// what it reads back.
const bdmv2Script = `#!/bin/sh
(
for i in $(seq 1 300); do
	n=0
	for d in /sys/block/vd*; do
		s=$(cat $d/serial 2>/dev/null)
		[ "${d##*/}" != vda ] && [ ${#s} -eq 20 ] && n=$((n+1))
	done
	[ $n -ge 2 ] && break
	sleep 1
done
for d in /sys/block/vd*; do
	s=$(cat $d/serial 2>/dev/null)
	[ "${d##*/}" != vda ] && [ ${#s} -eq 20 ] || continue
	echo "BDMV2-$s" | dd of=/dev/${d##*/} bs=512 conv=sync 2>/dev/null && sync && echo "BDMV2-WROTE:$(head -c 26 /dev/${d##*/})"
done
echo BDMV2-DONE
) &
`

// TestBlockDeviceMappings boots two TCG guests on one cloud, side by
// side, each with data volumes attached at create; only a real guest
// shows the plug of a volume attached before its VM existed.
//
//   - legacy: the real nova CLI with --block-device-mapping (the legacy
//     block_device_mapping, as cinder-tempest-plugin's incremental backup
//     test sends it): the server is created with the volume attached, the
//     node agent plugs it once the guest runs, the guest finds it by its
//     serial and writes to it, and the volume is available again (not
//     deleted: delete_on_termination 0) when the server is gone.
//   - v2: the real openstack CLI with two --block-device data entries
//     beside --image (sent as block_device_mapping_v2, as Terraform's
//     block_device blocks are): the caller's volume and a blank one the
//     create makes (delete_on_termination true). The guest finds both
//     disks by serial and writes to each; when the server is deleted the
//     blank volume goes with it and the caller's is available again.
func TestBlockDeviceMappings(t *testing.T) {
	testenv.RequireRoot(t, "run QEMU guests")
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/nova", "qemu-system-x86_64", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	n1 := startDevCloud(t, "bdm1", "--disk", t.TempDir(), "--compute", "on", "--accel", "tcg", "--s3-listen", "off")
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	setupTestimgAndAlice(t, admin, img)

	inParallel(t, "servers", map[string]func(t *testing.T){
		"legacy": func(t *testing.T) { legacyMapping(t, alice) },
		"v2":     func(t *testing.T) { mappingV2(t, alice) },
	})
}

func legacyMapping(t *testing.T, alice []string) {
	vol := createVolume(t, alice, "--size", "1", "bdmdata")
	waitVolume(t, alice, "bdmdata", "available", time.Minute)
	script := filepath.Join(t.TempDir(), "bdm.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"+findDisk+fmt.Sprintf(`(
if find_disk %s; then
	echo BDM-PATTERN | dd of=/dev/$dev bs=512 conv=sync 2>/dev/null && sync && echo "BDM-WRITTEN:$(head -c 11 /dev/$dev)"
else
	echo BDM-NOT-FOUND
fi
) &
`, vol.ID[:20])), 0o644)

	cmd := exec.Command("/usr/bin/nova", "--os-compute-api-version", "2.37", "boot", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "none",
		"--user-data", script, "--block-device-mapping", "vdc="+vol.ID+":::0", "--poll", "bdmvm")
	cmd.Env = alice
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nova boot --block-device-mapping: %v\n%s", err, out)
	}
	if s := showServer(t, alice, "bdmvm"); s.Status != "ACTIVE" {
		t.Fatalf("bdmvm is %s", s.Status)
	}
	if v := waitVolume(t, alice, "bdmdata", "in-use", 2*time.Minute); len(v.Attachments) != 1 {
		t.Fatalf("attachments of bdmdata: %v", v.Attachments)
	}
	console := waitConsole(t, alice, "bdmvm", 5*time.Minute, "RACKSTACK-TEST-IMAGE: ready", "BDM-")
	if !strings.Contains(console, "BDM-WRITTEN:BDM-PATTERN") {
		t.Fatalf("the guest did not find or write its block_device_mapping volume:\n%s", console)
	}

	openstack(t, alice, "server", "delete", "--wait", "bdmvm")
	waitVolume(t, alice, "bdmdata", "available", time.Minute)
}

func mappingV2(t *testing.T, alice []string) {
	mine := createVolume(t, alice, "--size", "1", "bdmv2data")
	waitVolume(t, alice, "bdmv2data", "available", time.Minute)
	script := filepath.Join(t.TempDir(), "bdmv2.sh")
	if err := os.WriteFile(script, []byte(bdmv2Script), 0o644); err != nil {
		t.Fatal(err)
	}
	openstack(t, alice, "--os-compute-api-version", "2.67", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "none",
		"--user-data", script,
		"--block-device", "source_type=volume,uuid="+mine.ID+",destination_type=volume,boot_index=-1,delete_on_termination=false",
		"--block-device", "source_type=blank,destination_type=volume,volume_size=1,boot_index=-1,delete_on_termination=true",
		"--wait", "bdmv2vm")
	if s := showServer(t, alice, "bdmv2vm"); s.Status != "ACTIVE" {
		t.Fatalf("bdmv2vm is %s", s.Status)
	}
	var vols []struct {
		ID   string `json:"ID"`
		Name string `json:"Name"`
	}
	out := openstack(t, alice, "volume", "list", "-f", "json")
	if err := json.Unmarshal([]byte(out), &vols); err != nil {
		t.Fatalf("volume list: %v\n%s", err, out)
	}
	// The legacy lane's volume is alice's too.
	var blank string
	n := 0
	for _, v := range vols {
		if v.Name != "bdmdata" {
			n++
			if v.ID != mine.ID {
				blank = v.ID
			}
		}
	}
	if n != 2 || blank == "" {
		t.Fatalf("volume list after the create (want bdmv2data and the blank one): %s", out)
	}
	for _, id := range []string{mine.ID, blank} {
		if v := waitVolume(t, alice, id, "in-use", 2*time.Minute); len(v.Attachments) != 1 {
			t.Fatalf("attachments of %s: %v", id, v.Attachments)
		}
	}
	console := waitConsole(t, alice, "bdmv2vm", 5*time.Minute, "RACKSTACK-TEST-IMAGE: ready", "BDMV2-DONE")
	for _, id := range []string{mine.ID, blank} {
		if !strings.Contains(console, "BDMV2-WROTE:BDMV2-"+id[:20]) {
			t.Fatalf("the guest did not find or write volume %s:\n%s", id, console)
		}
	}

	openstack(t, alice, "server", "delete", "--wait", "bdmv2vm")
	waitVolume(t, alice, "bdmv2data", "available", time.Minute)
	var last string
	if !eventually(2*time.Minute, func() bool {
		o, err := openstackErr(alice, "volume", "show", "-f", "value", "-c", "status", blank)
		last = o
		return err != nil && strings.Contains(o, "No volume with a name or ID")
	}) {
		t.Fatalf("the blank delete_on_termination volume %s is still there after its server: %s", blank, last)
	}
}
