//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestVolumeRevert reverts a volume to its latest snapshot with the
// cinder CLI (3.40) against a real rackd: data written over NBD after
// the snapshot is gone, the data of the snapshot is back; a volume
// extended after its snapshot is refused.
func TestVolumeRevert(t *testing.T) {
	testenv.RequireRoot(t, "export volumes over NBD")
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/cinder", "qemu-io"} {
		testenv.RequireCommand(t, c)
	}
	n1 := startDevCloud(t, "revert", "--disk", t.TempDir(), "--compute", "off", "--s3-listen", "off")
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)

	openstack(t, admin, "volume", "create", "--size", "1", "r1")
	r1 := waitVolume(t, admin, "r1", "available", time.Minute)
	ex := exportVolume(t, creds, n1, r1.ID)
	nbdTool(t, "qemu-io", "-f", "raw", "-c", "write -P 0x61 0 1M", ex.UnixURI)
	// The snapshot is of an open volume: what was acknowledged is in it.
	openstack(t, admin, "volume", "snapshot", "create", "--volume", "r1", "--force", "snap1")
	if !eventually(time.Minute, func() bool {
		out, err := openstackErr(admin, "volume", "snapshot", "show", "-f", "value", "-c", "status", "snap1")
		return err == nil && strings.TrimSpace(out) == "available"
	}) {
		t.Fatal("snapshot not available")
	}
	nbdTool(t, "qemu-io", "-f", "raw", "-c", "write -P 0x62 0 1M", "-c", "write -P 0x62 8M 1M", ex.UnixURI)
	if out, err := rackctl(t, creds, n1, "volume", "unexport", r1.ID); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}

	cinder(t, admin, "--os-volume-api-version", "3.40", "revert-to-snapshot", "snap1")
	waitVolume(t, admin, "r1", "available", time.Minute)
	if out := openstack(t, admin, "volume", "snapshot", "show", "-f", "value", "-c", "status", "snap1"); strings.TrimSpace(out) != "available" {
		t.Fatalf("snapshot after the revert: %q", out)
	}
	ex = exportVolume(t, creds, n1, r1.ID)
	out := nbdTool(t, "qemu-io", "-f", "raw", "-c", "read -P 0x61 0 1M", "-c", "read -P 0 8M 1M", ex.UnixURI)
	if strings.Contains(out, "Pattern verification failed") {
		t.Fatalf("reverted volume:\n%s", out)
	}
	if out, err := rackctl(t, creds, n1, "volume", "unexport", r1.ID); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}

	// Extended after its snapshot: the revert is refused, the volume
	// keeps its size.
	openstack(t, admin, "volume", "set", "--size", "2", "r1")
	waitVolume(t, admin, "r1", "available", time.Minute)
	if out, err := openstackErr(admin, "volume", "show", "-f", "value", "-c", "size", "r1"); err != nil || strings.TrimSpace(out) != "2" {
		t.Fatalf("size after extend: %q %v", out, err)
	}
	if out, err := cinderErr(admin, "--os-volume-api-version", "3.40", "revert-to-snapshot", "snap1"); err == nil || !strings.Contains(out, "size") {
		t.Fatalf("revert after an extend: %v\n%s", err, out)
	}
}
