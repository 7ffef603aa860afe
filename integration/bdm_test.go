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
// three, prints what the one made from the snapshot holds (it starts
// with bdmSnapMark) and writes a line naming its serial at the start of
// each other one, printing what it reads back.
const bdmv2Script = `#!/bin/sh
(
for i in $(seq 1 300); do
	n=0
	for d in /sys/block/vd*; do
		s=$(cat $d/serial 2>/dev/null)
		[ "${d##*/}" != vda ] && [ ${#s} -eq 20 ] && n=$((n+1))
	done
	[ $n -ge 3 ] && break
	sleep 1
done
for d in /sys/block/vd*; do
	s=$(cat $d/serial 2>/dev/null)
	[ "${d##*/}" != vda ] && [ ${#s} -eq 20 ] || continue
	if [ "$(head -c 8 /dev/${d##*/})" = BDMSNAP- ]; then
		echo "BDMV2-READ:$s:$(head -c 25 /dev/${d##*/})"
		continue
	fi
	echo "BDMV2-$s" | dd of=/dev/${d##*/} bs=512 conv=sync 2>/dev/null && sync && echo "BDMV2-WROTE:$(head -c 26 /dev/${d##*/})"
done
echo BDMV2-DONE
) &
`

// bdmSnapMark starts the volume the v2 lane snapshots (25 bytes).
const bdmSnapMark = "BDMSNAP-FROM-THE-SNAPSHOT"

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
//     block_device blocks are): the caller's volume, a blank one the
//     create makes and one it makes from a volume snapshot (source_type
//     snapshot; both delete_on_termination true). The snapshot is of a
//     volume the test wrote first (made from a small raw image starting
//     with bdmSnapMark). The guest finds the disks by serial, writes to
//     the first two and reads the snapshot's data back from the third;
//     when the server is deleted the volumes the create made go with it
//     and the caller's is available again. The volumes are made after
//     the create's 202, while the server is in BUILD; the caller's volume
//     is the server's from the 202 on (reserved for it, as Nova's API
//     reserves it): a second create naming it is refused with 400.
//   - refused: a create whose volume cannot be made ends in ERROR with
//     Nova's fault (mappingRefused); the existing volume it named is
//     given back, available.
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
		"legacy":  func(t *testing.T) { legacyMapping(t, alice) },
		"v2":      func(t *testing.T) { mappingV2(t, alice) },
		"refused": func(t *testing.T) { mappingRefused(t, admin) },
		"blank":   func(t *testing.T) { blankRoot(t, n1, admin, token(t, n1, "admin", creds["OS_PASSWORD"], "admin")) },
	})
}

// blankRoot: a server whose root disk is a blank volume (source blank,
// destination volume, boot_index 0, beside an imageRef), as Nova allows
// and tempest's stable-rescue test sends it. The create makes the empty
// volume and the server runs (ACTIVE) with it attached as its root disk
// /dev/vda; deleted, the server takes the volume with it
// (delete_on_termination). It runs in the admin's project so the other
// lanes' volume lists do not see its volume.
func blankRoot(t *testing.T, n1 *rackd, env []string, tok string) {
	img := strings.TrimSpace(openstack(t, env, "image", "show", "-f", "value", "-c", "id", "testimg"))
	flavor := strings.TrimSpace(openstack(t, env, "flavor", "show", "-f", "value", "-c", "id", "m1.tiny"))
	body := fmt.Sprintf(`{"server": {"name": "bdmblankvm", "imageRef": %q, "flavorRef": %q, "networks": "none",
		"block_device_mapping_v2": [{"boot_index": "0", "source_type": "blank", "destination_type": "volume", "volume_size": 1,
		"delete_on_termination": true}]}}`, img, flavor)
	code, out := novaCall(t, "POST", n1.url()+"/compute/v2.1/servers", tok, "87", body)
	if code != 202 {
		t.Fatalf("create of a server booted from a blank volume: %d %s", code, out)
	}
	var sv serverInfo
	if !eventually(5*time.Minute, func() bool {
		sv = showServer(t, env, "bdmblankvm")
		return sv.Status == "ACTIVE" || sv.Status == "ERROR"
	}) || sv.Status != "ACTIVE" {
		t.Fatalf("bdmblankvm is %s", sv.Status)
	}
	v := showVolume(t, env, "bdmblankvm-blank")
	if v.Status != "in-use" || v.Size != 1 || len(v.Attachments) != 1 || v.Attachments[0]["server_id"] != sv.ID || v.Attachments[0]["device"] != "/dev/vda" {
		t.Fatalf("bdmblankvm's root volume: %+v", v)
	}
	openstack(t, env, "server", "delete", "--wait", "bdmblankvm")
	if !eventually(time.Minute, func() bool {
		_, err := openstackErr(env, "volume", "show", v.ID)
		return err != nil
	}) {
		t.Fatalf("bdmblankvm's root volume %s outlived it (delete_on_termination)", v.ID)
	}
}

// mappingRefused: a create whose second volume cannot be made (its
// volume type asks for a back end there is not) is answered 202 and
// ends in ERROR, as Nova's build aborts in _prep_block_device: the
// fault says why, the create action's build event failed, the volume
// made before it (delete_on_termination) is deleted, and the server is
// deleted as any other. It boots no guest; it runs in the admin's
// project so the other lanes' volume lists do not see its volumes.
func mappingRefused(t *testing.T, env []string) {
	openstack(t, env, "volume", "type", "create", "--property", "volume_backend_name=nowhere", "bdmnowhere")
	keep := createVolume(t, env, "--size", "1", "bdmerrkeep")
	waitVolume(t, env, keep.ID, "available", time.Minute)
	out := openstack(t, env, "--os-compute-api-version", "2.67", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "none",
		"--block-device", "source_type=blank,destination_type=volume,volume_size=1,boot_index=-1,delete_on_termination=true",
		"--block-device", "source_type=blank,destination_type=volume,volume_size=1,boot_index=-1,delete_on_termination=true,volume_type=bdmnowhere",
		"--block-device", "source_type=volume,uuid="+keep.ID+",destination_type=volume,boot_index=-1,delete_on_termination=true",
		"-f", "json", "bdmerrvm")
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" {
		t.Fatalf("server create: %v\n%s", err, out)
	}
	var sv struct {
		Status string         `json:"status"`
		Fault  map[string]any `json:"fault"`
	}
	if !eventually(2*time.Minute, func() bool {
		out = openstack(t, env, "server", "show", "-f", "json", "-c", "status", "-c", "fault", "bdmerrvm")
		if err := json.Unmarshal([]byte(out), &sv); err != nil {
			t.Fatalf("server show: %v\n%s", err, out)
		}
		return sv.Status == "ERROR"
	}) {
		t.Fatalf("bdmerrvm, whose volume cannot be made, is not in ERROR: %s", out)
	}
	msg, _ := sv.Fault["message"].(string)
	if !strings.HasPrefix(msg, "Build of instance "+created.ID+" aborted: ") || !strings.Contains(msg, "No valid backend") || sv.Fault["code"] != float64(500) {
		t.Fatalf("fault of bdmerrvm: %v", sv.Fault)
	}
	var acts []map[string]any
	out = openstack(t, env, "server", "event", "list", "-f", "json", "bdmerrvm")
	if err := json.Unmarshal([]byte(out), &acts); err != nil || len(acts) != 1 || acts[0]["Action"] != "create" {
		t.Fatalf("server event list: %v\n%s", err, out)
	}
	out = openstack(t, env, "server", "event", "show", "-f", "json", "bdmerrvm", fmt.Sprint(acts[0]["Request ID"]))
	if !strings.Contains(out, "compute__do_build_and_run_instance") || !strings.Contains(out, `"Error"`) {
		t.Fatalf("the create action of bdmerrvm shows no failed build event:\n%s", out)
	}
	var last string
	if !eventually(time.Minute, func() bool {
		last = openstack(t, env, "volume", "list", "-f", "value", "-c", "ID", "--name", "bdmerrvm-blank")
		return strings.TrimSpace(last) == ""
	}) {
		t.Fatalf("the volume made for bdmerrvm (delete_on_termination) is still there: %s", last)
	}
	// The existing volume it named was reserved for it, never its disk:
	// the failed build gives it back, available, not deleted.
	if v := showVolume(t, env, keep.ID); v.Status != "available" || len(v.Attachments) != 0 {
		t.Fatalf("bdmerrkeep after bdmerrvm's failed build: %s, attachments %v", v.Status, v.Attachments)
	}
	openstack(t, env, "server", "delete", "--wait", "bdmerrvm")
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
	// The snapshot is made beside bdmv2data (each CLI call costs
	// seconds).
	type made struct {
		snap string
		err  error
	}
	snapc := make(chan made, 1)
	dir := t.TempDir()
	go func() {
		id, err := makeBDMSnapshot(alice, dir)
		snapc <- made{id, err}
	}()
	mine := createVolume(t, alice, "--size", "1", "bdmv2data")
	waitVolume(t, alice, "bdmv2data", "available", time.Minute)
	m := <-snapc
	if m.err != nil {
		t.Fatal(m.err)
	}
	snap := m.snap
	script := filepath.Join(t.TempDir(), "bdmv2.sh")
	if err := os.WriteFile(script, []byte(bdmv2Script), 0o644); err != nil {
		t.Fatal(err)
	}
	out := openstack(t, alice, "--os-compute-api-version", "2.67", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "none",
		"--user-data", script,
		"--block-device", "source_type=volume,uuid="+mine.ID+",destination_type=volume,boot_index=-1,delete_on_termination=false",
		"--block-device", "source_type=blank,destination_type=volume,volume_size=1,boot_index=-1,delete_on_termination=true",
		"--block-device", "source_type=snapshot,uuid="+snap+",destination_type=volume,boot_index=-1,delete_on_termination=true",
		"-f", "json", "bdmv2vm")
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" {
		t.Fatalf("server create: %v\n%s", err, out)
	}
	// From the 202 on, bdmv2data is bdmv2vm's (reserved while its other
	// volumes are made, then attached): another create naming it is
	// refused at once, naming it.
	if o, err := openstackErr(alice, "--os-compute-api-version", "2.67", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "none",
		"--block-device", "source_type=volume,uuid="+mine.ID+",destination_type=volume,boot_index=-1", "bdmv2steal"); err == nil ||
		!strings.Contains(o, mine.ID) || !strings.Contains(o, "HTTP 400") {
		if err == nil {
			openstackErr(alice, "server", "delete", "--wait", "bdmv2steal")
		}
		t.Fatalf("a second create naming bdmv2data, held by bdmv2vm: %v\n%s", err, o)
	}
	if v := showVolume(t, alice, mine.ID); !strings.Contains(" reserved attaching in-use ", " "+v.Status+" ") || len(v.Attachments) != 1 ||
		v.Attachments[0]["server_id"] != created.ID {
		t.Fatalf("bdmv2data after bdmv2vm's create (want reserved for it, or attached): %s, attachments %v", v.Status, v.Attachments)
	}
	var sv serverInfo
	if !eventually(5*time.Minute, func() bool {
		sv = showServer(t, alice, "bdmv2vm")
		return sv.Status == "ACTIVE" || sv.Status == "ERROR"
	}) || sv.Status != "ACTIVE" {
		t.Fatalf("bdmv2vm is %s", sv.Status)
	}
	var vols []struct {
		ID   string `json:"ID"`
		Name string `json:"Name"`
	}
	out = openstack(t, alice, "volume", "list", "-f", "json")
	if err := json.Unmarshal([]byte(out), &vols); err != nil {
		t.Fatalf("volume list: %v\n%s", err, out)
	}
	// The legacy lane's volume is alice's too. The create names the
	// volumes it makes after the server.
	var blank, fromSnap string
	n := 0
	for _, v := range vols {
		if v.Name != "bdmdata" && v.Name != "bdmsnapsrc" {
			n++
			switch v.Name {
			case "bdmv2vm-blank":
				blank = v.ID
			case "bdmv2vm":
				fromSnap = v.ID
			}
		}
	}
	if n != 3 || blank == "" || fromSnap == "" {
		t.Fatalf("volume list after the create (want bdmv2data, the blank one and the one from the snapshot): %s", out)
	}
	var v struct {
		Status      string           `json:"status"`
		SnapshotID  string           `json:"snapshot_id"`
		Attachments []map[string]any `json:"attachments"`
	}
	if !eventually(2*time.Minute, func() bool {
		out := openstack(t, alice, "volume", "show", "-f", "json", fromSnap)
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("volume show %s: %v\n%s", fromSnap, err, out)
		}
		return v.Status == "in-use"
	}) || v.SnapshotID != snap || len(v.Attachments) != 1 {
		t.Fatalf("volume %s made from snapshot %q (want %s), %s, attachments %v", fromSnap, v.SnapshotID, snap, v.Status, v.Attachments)
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
	if !strings.Contains(console, "BDMV2-READ:"+fromSnap[:20]+":"+bdmSnapMark) {
		t.Fatalf("the guest did not read the snapshot's data from volume %s:\n%s", fromSnap, console)
	}

	openstack(t, alice, "server", "delete", "--wait", "bdmv2vm")
	waitVolume(t, alice, "bdmv2data", "available", time.Minute)
	for _, id := range []string{blank, fromSnap} {
		var last string
		if !eventually(2*time.Minute, func() bool {
			o, err := openstackErr(alice, "volume", "show", "-f", "value", "-c", "status", id)
			last = o
			return err != nil && strings.Contains(o, "No volume with a name or ID")
		}) {
			t.Fatalf("the delete_on_termination volume %s is still there after its server: %s", id, last)
		}
	}
}

// makeBDMSnapshot makes the v2 lane's snapshot of a volume written with
// bdmSnapMark (through a 1 MiB raw image it is made from) and returns its
// id once it is available.
func makeBDMSnapshot(env []string, dir string) (string, error) {
	raw := filepath.Join(dir, "bdmsnap.raw")
	if err := os.WriteFile(raw, append([]byte(bdmSnapMark+"\n"), make([]byte, 1<<20-len(bdmSnapMark)-1)...), 0o644); err != nil {
		return "", err
	}
	for _, args := range [][]string{
		{"image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", raw, "bdmsnapimg"},
		{"volume", "create", "--image", "bdmsnapimg", "--size", "1", "bdmsnapsrc"},
	} {
		if out, err := openstackErr(env, args...); err != nil {
			return "", fmt.Errorf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	var status string
	if !eventually(2*time.Minute, func() bool {
		out, _ := openstackErr(env, "volume", "show", "-f", "value", "-c", "status", "bdmsnapsrc")
		status = strings.TrimSpace(out)
		return status == "available"
	}) {
		return "", fmt.Errorf("volume bdmsnapsrc is %s, not available", status)
	}
	out, err := openstackErr(env, "volume", "snapshot", "create", "--volume", "bdmsnapsrc", "-f", "json", "bdmsnap")
	var sn struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err == nil {
		err = json.Unmarshal([]byte(out), &sn)
	}
	if err != nil || sn.ID == "" {
		return "", fmt.Errorf("volume snapshot create: %v\n%s", err, out)
	}
	if sn.Status != "available" && !eventually(time.Minute, func() bool {
		out, _ := openstackErr(env, "volume", "snapshot", "show", "-f", "value", "-c", "status", sn.ID)
		sn.Status = strings.TrimSpace(out)
		return sn.Status == "available"
	}) {
		return "", fmt.Errorf("snapshot bdmsnap is %s, not available", sn.Status)
	}
	return sn.ID, nil
}
