//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
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
//     before 2.90 the CLI's --hostname is refused by the API. 2.94: a
//     rebuild names a fully qualified one, which the guest gets; at 2.93
//     such a name is refused.
//   - 2.93: a server booted from a volume (--boot-from-volume) writes a
//     mark into its boot volume; rebuilt at 2.93 its guest boots again
//     from the volume, reimaged: the mark is gone. At 2.92 the rebuild
//     is refused.
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
		"hostname":      func(t *testing.T) { checkHostname290(t, n, alice) },
		"volume-backed": func(t *testing.T) { checkRebuildVolumeBacked293(t, n, alice) },
	})
}

// checkHostname290: --hostname reaches the guest, at create and rebuild.
func checkHostname290(t *testing.T, n *rackd, alice []string) {
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
	// 2.94 (past the CLI's versions): an FQDN.
	id := showServer(t, alice, "nmhost").ID
	img := strings.TrimSpace(openstack(t, alice, "image", "show", "-f", "value", "-c", "id", "testimg"))
	tok := token(t, n, "alice", "alice-pass-1", "demo")
	url := n.url() + "/compute/v2.1/servers/" + id + "/action"
	body := `{"rebuild": {"imageRef": "` + img + `", "hostname": "nm-host-3.example.com"}}`
	if code, out := novaCall(t, "POST", url, tok, "93", body); code != 400 || !strings.Contains(out, "hostname") {
		t.Fatalf("an FQDN hostname at 2.93: %d %s", code, out)
	}
	if code, out := novaCall(t, "POST", url, tok, "94", body); code != 202 {
		t.Fatalf("an FQDN hostname at 2.94: %d %s", code, out)
	}
	waitConsole(t, alice, "nmhost", 4*time.Minute, "RACKSTACK-TEST-IMAGE: hostname=nm-host-3.example.com")
}

// bootMark reads a sector near the end of the 1 GB boot volume (past
// the image's data), prints it, and writes a mark there.
const bootMark = `#!/bin/sh
(
m=$(dd if=/dev/vda bs=512 skip=1800000 count=1 2>/dev/null | tr -d '\000' | head -c 10)
echo "NM-MARK:[$m]"
echo NM-WRITTEN | dd of=/dev/vda bs=512 seek=1800000 conv=sync 2>/dev/null && sync && echo NM-MARKED
) &
`

// checkRebuildVolumeBacked293: the rebuild reimages the boot volume.
func checkRebuildVolumeBacked293(t *testing.T, n *rackd, alice []string) {
	script := filepath.Join(t.TempDir(), "mark.sh")
	if err := os.WriteFile(script, []byte(bootMark), 0o644); err != nil {
		t.Fatal(err)
	}
	openstack(t, alice, "--os-compute-api-version", "2.92", "server", "create", "--image", "testimg", "--boot-from-volume", "1", "--flavor", "m1.tiny", "--nic", "none",
		"--user-data", script, "--wait", "nmbfv")
	console := waitConsole(t, alice, "nmbfv", 4*time.Minute, "NM-MARKED")
	if !strings.Contains(console, "NM-MARK:[]") {
		t.Fatalf("the new boot volume was not blank at the mark:\n%s", console)
	}
	// The CLI here asks for 2.92 at most: the rebuild is sent as it
	// sends it, at 2.92 (refused) and 2.93.
	id := showServer(t, alice, "nmbfv").ID
	img := strings.TrimSpace(openstack(t, alice, "image", "show", "-f", "value", "-c", "id", "testimg"))
	tok := token(t, n, "alice", "alice-pass-1", "demo")
	url := n.url() + "/compute/v2.1/servers/" + id + "/action"
	body := `{"rebuild": {"imageRef": "` + img + `"}}`
	if code, out := novaCall(t, "POST", url, tok, "92", body); code != 400 {
		t.Fatalf("a volume-backed rebuild at 2.92: %d %s", code, out)
	}
	if code, out := novaCall(t, "POST", url, tok, "93", body); code != 202 {
		t.Fatalf("a volume-backed rebuild at 2.93: %d %s", code, out)
	}
	var s serverInfo
	if !eventually(4*time.Minute, func() bool {
		s = showServer(t, alice, "nmbfv")
		return s.Status == "ACTIVE" || s.Status == "ERROR"
	}) || s.Status != "ACTIVE" {
		t.Fatalf("nmbfv after the rebuild: %s\n%s", s.Status, openstack(t, alice, "server", "show", "nmbfv"))
	}
	// The console log spans the boots: wait for the second's mark.
	if !eventually(4*time.Minute, func() bool {
		console, _ = openstackErr(alice, "console", "log", "show", "nmbfv")
		return strings.Count(console, "NM-MARKED") >= 2
	}) {
		t.Fatalf("the rebuilt guest did not boot and mark its volume again:\n%s", console)
	}
	second := console[strings.LastIndex(console, "RACKSTACK-TEST-IMAGE: hostname="):]
	if !strings.Contains(second, "NM-MARK:[]") || strings.Contains(second, "NM-MARK:[NM-WRITTEN]") {
		t.Fatalf("the rebuilt guest's boot volume still holds the mark (not reimaged):\n%s", console)
	}
}
