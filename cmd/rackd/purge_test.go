package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/fabric/testenv"
)

func TestPurgeRemovesADevCloudOnlyWhenStopped(t *testing.T) {
	base := t.TempDir()
	o := &options{Name: "dev", DataDir: filepath.Join(base, "data"), VMRunDir: filepath.Join(base, "run"), BPFDir: filepath.Join(base, "pins"), Accel: "tcg"}
	if os.Geteuid() == 0 {
		// Purge removes the dev links in the dataplane's namespace: an
		// empty one of the test's, never the host's, where a developer's
		// own dev cloud may be running.
		o.DataplaneNetns = testNetns(t)
	}
	for _, d := range []string{filepath.Join(o.DataDir, "raft"), o.VMRunDir, o.BPFDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(o.DataDir, "raft", "raft.db")
	if err := os.WriteFile(db, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A running rackd holds bolt's flock on its Raft log.
	held, err := os.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(held.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err = purge(context.Background(), o, &out, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "a rackd is running") {
		t.Fatalf("purge while running: %v", err)
	}
	if _, err := os.Stat(o.DataDir); err != nil {
		t.Fatalf("a refused purge removed the data dir: %v", err)
	}
	held.Close()

	if err := purge(context.Background(), o, &out, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{o.DataDir, o.VMRunDir, o.BPFDir} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("%s is still there after purge (%v)", d, err)
		}
		if !strings.Contains(out.String(), "removed "+d) {
			t.Fatalf("purge did not say it removed %s:\n%s", d, out.String())
		}
	}
}

// The public network's and the metadata service's veth pairs outlive
// rackd (the dataplane keeps forwarding through them); purge takes them
// down, in the dataplane's namespace, and a second purge finds none.
func TestPurgeRemovesTheDevLinks(t *testing.T) {
	testenv.RequireRoot(t, "making veth pairs in a network namespace")
	path := testNetns(t)
	ns := filepath.Base(path)
	for _, pair := range [][2]string{{publicHostDev, publicDataplaneDev}, {metadataHostDev, metadataDataplaneDev}} {
		if out, err := exec.Command("ip", "-n", ns, "link", "add", pair[0], "type", "veth", "peer", "name", pair[1]).CombinedOutput(); err != nil {
			t.Fatalf("ip link add: %v\n%s", err, out)
		}
	}
	var out strings.Builder
	if err := purgeLinks(path, t.TempDir(), &out); err != nil {
		t.Fatal(err)
	}
	links, err := exec.Command("ip", "-n", ns, "-br", "link").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v\n%s", err, links)
	}
	for _, name := range []string{publicHostDev, publicDataplaneDev, metadataHostDev, metadataDataplaneDev} {
		if strings.Contains(string(links), name) {
			t.Errorf("%s is still there after purge:\n%s", name, links)
		}
	}
	if !strings.Contains(out.String(), "removed link "+publicHostDev) || !strings.Contains(out.String(), "removed link "+metadataHostDev) {
		t.Errorf("purge did not say it removed the links:\n%s", out.String())
	}
	out.Reset()
	if err := purgeLinks(path, t.TempDir(), &out); err != nil || out.Len() != 0 {
		t.Fatalf("second purge: %v %q", err, out.String())
	}
}

// testNetns makes a network namespace for one test and returns its path.
func testNetns(t *testing.T) string {
	t.Helper()
	testenv.RequireCommand(t, "ip")
	ns := fmt.Sprintf("rs-%s-%d", t.Name(), os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	return "/run/netns/" + ns
}
