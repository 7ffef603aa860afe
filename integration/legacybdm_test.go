//go:build integration

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestLegacyBlockDeviceMapping boots a TCG guest through the real nova
// CLI with --block-device-mapping (the legacy block_device_mapping, as
// cinder-tempest-plugin's incremental backup test sends it): the server
// is created with the volume attached, the node agent plugs it once the
// guest runs, the guest finds it by its serial and writes to it, and the
// volume is available again (not deleted: delete_on_termination 0) when
// the server is gone. Only a real guest shows the plug of a volume
// attached before its VM existed.
func TestLegacyBlockDeviceMapping(t *testing.T) {
	testenv.RequireRoot(t, "run QEMU guests")
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/nova", "qemu-system-x86_64", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	n1 := newRackd(t, "lb1", "--disk", t.TempDir(), "--compute", "on", "--accel", "tcg", "--s3-listen", "off")
	n1.start("--bootstrap")
	n1.waitHealthy()
	t.Cleanup(func() {
		// Guests outlive rackd: the purge stops them.
		n1.kill()
		if out, err := exec.Command(filepath.Join(binDir, "rackd"), "dev", "--purge", "--name", "lb1", "--data-dir", n1.dataDir).CombinedOutput(); err != nil {
			t.Errorf("rackd dev --purge: %v\n%s", err, out)
		}
	})
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	setupTestimgAndAlice(t, admin, img)

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
