//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestNovaMicroversions drives what the compute API's microversions past
// 2.79 change, with the real openstack CLI against a real rackd and TCG
// guests:
//   - 2.90: a server made with --hostname boots with that hostname (the
//     test image prints the config drive's hostname on its console and
//     sets it), which its owner sees as OS-EXT-SRV-ATTR:hostname; a
//     rebuild with another --hostname boots the guest with the new one;
//     before 2.90 the CLI's --hostname is refused by the API.
func TestNovaMicroversions(t *testing.T) {
	testenv.RequireRoot(t, "run QEMU guests")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	n := startDevCloud(t, "novamicro", "--disk", t.TempDir(), "--compute", "on", "--accel", "tcg", "--s3-listen", "off")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	alice := osEnv(creds, n, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	setupTestimgAndAlice(t, admin, img)
	deleteServersAtCleanup(t, admin)

	inParallel(t, "servers", map[string]func(t *testing.T){
		"hostname": func(t *testing.T) { checkHostname290(t, alice) },
	})
}

// checkHostname290: --hostname reaches the guest, at create and rebuild.
func checkHostname290(t *testing.T, alice []string) {
	if out, err := openstackErr(alice, "--os-compute-api-version", "2.89", "server", "create", "--image", "testimg", "--flavor", "m1.tiny",
		"--nic", "none", "--hostname", "nm-early", "nmearly"); err == nil {
		t.Fatalf("--hostname taken at 2.89:\n%s", out)
	}
	openstack(t, alice, "--os-compute-api-version", "2.90", "server", "create", "--image", "testimg", "--flavor", "m1.tiny",
		"--nic", "none", "--hostname", "nm-host-1", "--wait", "nmhost")
	waitConsole(t, alice, "nmhost", 4*time.Minute, "RACKSTACK-TEST-IMAGE: hostname=nm-host-1")
	var shown map[string]any
	out := openstack(t, alice, "--os-compute-api-version", "2.90", "server", "show", "-f", "json", "nmhost")
	if err := json.Unmarshal([]byte(out), &shown); err != nil {
		t.Fatalf("server show: %v\n%s", err, out)
	}
	if h := shown["OS-EXT-SRV-ATTR:hostname"]; h != "nm-host-1" && shown["hostname"] != "nm-host-1" {
		t.Fatalf("the owner does not see the hostname at 2.90:\n%s", out)
	}
	openstack(t, alice, "--os-compute-api-version", "2.90", "server", "rebuild", "--image", "testimg", "--hostname", "nm-host-2", "--wait", "nmhost")
	console := waitConsole(t, alice, "nmhost", 4*time.Minute, "RACKSTACK-TEST-IMAGE: hostname=nm-host-2")
	if i, j := strings.Index(console, "hostname=nm-host-1"), strings.Index(console, "hostname=nm-host-2"); i < 0 || j < i {
		t.Fatalf("the guest did not boot with nm-host-1 and then, rebuilt, nm-host-2:\n%s", console)
	}
}
