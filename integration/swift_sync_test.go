//go:build integration

package integration

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestSwiftContainerSync drives Swift's container sync on a real rackd
// with the real swift CLI: a realm from a container-sync-realms.conf
// naming this cloud, a container of alice's synced to one of bob's
// (swift post -t //realm/cluster/AUTH_bob/c2 -k secret c1), uploads and
// deletes reaching the destination, and a change that could not be sent
// (the keys did not match) sent after rackd was killed -9 and restarted.
func TestSwiftContainerSync(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/swift")
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := newStorageNode(t, "n1", 3)
	var key [20]byte
	rand.Read(key[:])
	realms := filepath.Join(t.TempDir(), "container-sync-realms.conf")
	conf := "[DEFAULT]\nmtime_check_interval = 300\n\n[realm1]\nkey = " + hex.EncodeToString(key[:]) + "\ncluster_rack1 = " + n.url() + "/object/v1/\n"
	if err := os.WriteFile(realms, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	syncFlags := []string{"--container-sync-realms", realms, "--container-sync-current", "//realm1/rack1", "--container-sync-interval", "500ms"}
	n.start(append([]string{"--bootstrap"}, syncFlags...)...)
	n.waitHealthy()
	creds := openrc(t, n.dataDir)
	aliceT, bobT := twoTenants(t, n.rackd, creds, t.TempDir())
	alice, bob := aliceT.OS, bobT.OS
	dir := t.TempDir()
	swift := func(env []string, args ...string) string {
		t.Helper()
		return mustTool(t, env, dir, "/usr/bin/swift", args...)
	}
	upload := func(env []string, container, name, body string) {
		t.Helper()
		os.WriteFile(filepath.Join(dir, "f"), []byte(body), 0o644)
		swift(env, "upload", container, "f", "--object-name", name)
	}
	content := func(env []string, container, name string) string {
		out := filepath.Join(dir, "got")
		os.Remove(out)
		if _, err := tool(env, dir, "/usr/bin/swift", "download", container, name, "-o", out); err != nil {
			return ""
		}
		b, _ := os.ReadFile(out)
		return string(b)
	}
	// waitFor polls (bounded) until cond holds.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 90s; rackd log:\n%s", what, n.log())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	bobAccount := regexp.MustCompile(`Account: (AUTH_\S+)`).FindStringSubmatch(swift(bob, "stat"))
	if bobAccount == nil {
		t.Fatal("swift stat shows no account for bob")
	}
	target := "//realm1/rack1/" + bobAccount[1] + "/c2"

	// The realm as /info lists it; bad targets refused, naming the problem.
	if caps := swift(alice, "capabilities"); !strings.Contains(caps, "container_sync") || !strings.Contains(caps, "REALM1") {
		t.Fatalf("swift capabilities lacks the realm:\n%s", caps)
	}
	swift(alice, "post", "c1")
	for bad, msg := range map[string]string{
		"//nope/rack1/" + bobAccount[1] + "/c2":          "No realm key for 'nope'",
		"//realm1/rack9/" + bobAccount[1] + "/c2":        "No cluster endpoint",
		"//realm1/rack1/c2":                              "Invalid X-Container-Sync-To format",
		"http://127.0.0.1:1/v1/" + bobAccount[1] + "/c2": "Full URLs are not allowed",
	} {
		if out, err := tool(alice, dir, "/usr/bin/swift", "post", "-t", bad, "-k", "secret", "c1"); err == nil || !strings.Contains(out, msg) {
			t.Errorf("swift post -t %s: %v\n%s", bad, err, out)
		}
	}
	if out := swift(alice, "stat", "c1"); regexp.MustCompile(`Sync (To|Key): \S`).MatchString(out) {
		t.Fatalf("a refused target was stored:\n%s", out)
	}

	swift(bob, "post", "-k", "secret", "c2")
	upload(alice, "c1", "before", "written before sync was set")
	swift(alice, "post", "-t", target, "-k", "secret", "c1")
	st := swift(alice, "stat", "c1")
	if !strings.Contains(st, "Sync To: "+target) || !strings.Contains(st, "Sync Key: secret") {
		t.Fatalf("swift stat c1 does not show the sync target and key:\n%s", st)
	}
	upload(alice, "c1", "doc", "synced bytes")
	listed := func(env []string, container, name string) bool {
		out, err := tool(env, dir, "/usr/bin/swift", "list", container)
		return err == nil && strings.Contains("\n"+out, "\n"+name+"\n")
	}
	waitFor("doc synced to c2", func() bool { return listed(bob, "c2", "doc") && listed(bob, "c2", "before") })
	if got := content(bob, "c2", "doc"); got != "synced bytes" {
		t.Fatalf("synced doc reads %q", got)
	}
	stamp := regexp.MustCompile(`Last Modified: .*`)
	if a, b := stamp.FindString(swift(alice, "stat", "c1", "doc")), stamp.FindString(swift(bob, "stat", "c2", "doc")); a == "" || a != b {
		t.Fatalf("the copy does not keep the source's time: %q vs %q", a, b)
	}

	// A change the destination refuses (its key no longer matches) stays
	// queued across kill -9 and is sent once the keys match again.
	swift(bob, "post", "-k", "other", "c2")
	upload(alice, "c1", "late", "written while the keys differed")
	time.Sleep(2 * time.Second) // the syncer tries it and fails
	if listed(bob, "c2", "late") {
		t.Fatal("a write was synced into a container whose key does not match")
	}
	n.kill()
	n.start(syncFlags...)
	n.waitHealthy()
	swift(bob, "post", "-k", "secret", "c2")
	waitFor("late synced after the restart", func() bool { return listed(bob, "c2", "late") })
	if got := content(bob, "c2", "late"); got != "written while the keys differed" {
		t.Fatalf("late reads %q", got)
	}

	// Deletes follow.
	swift(alice, "delete", "c1", "doc")
	waitFor("doc deleted from c2", func() bool { return !listed(bob, "c2", "doc") })
	if !listed(bob, "c2", "late") || !listed(bob, "c2", "before") {
		t.Fatal("the delete of doc took other objects with it")
	}
	// Sync off: later writes stay in c1.
	swift(alice, "post", "-t", "", "c1")
	upload(alice, "c1", "unsynced", "x")
	time.Sleep(2 * time.Second)
	if listed(bob, "c2", "unsynced") {
		t.Fatal("a write was synced after sync was turned off")
	}
}
