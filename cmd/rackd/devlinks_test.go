package main

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/ports"
)

// Two dev clouds on one host meet in the dataplane's namespace: the veth
// pairs belong to the one that made them. The other is refused them (with
// what to pass instead) while their owner runs, and takes them over once
// it has stopped; a purge removes only its own pairs and orphans.
func TestDevLinksBelongToTheirCloud(t *testing.T) {
	testenv.RequireRoot(t, "making veth pairs in a network namespace")
	path := testNetns(t)
	ns := filepath.Base(path)
	a, b := devDataDir(t), devDataDir(t)
	stopA := runningOn(t, a)

	oa := &options{DataDir: a, DataplaneNetns: path, Public: "172.24.4.0/24"}
	if err := addPublicReach(oa, &ports.Reach{}); err != nil {
		t.Fatal(err)
	}
	if err := inNetns(path, func() error { _, _, err := claimVeth(metadataHostDev, metadataDataplaneDev, a); return err }); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{publicHostDev, publicDataplaneDev, metadataHostDev, metadataDataplaneDev} {
		if got := linkAlias(t, ns, name); got != linkOwner(a) {
			t.Fatalf("%s's alias %q, want %q", name, got, linkOwner(a))
		}
	}

	// B, in the same namespace, may not take A's pairs while A runs.
	ob := &options{DataDir: b, DataplaneNetns: path, Public: "172.24.5.0/24"}
	err := addPublicReach(ob, &ports.Reach{})
	if err == nil || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), "--public off") || !strings.Contains(err.Error(), "--dataplane-netns") {
		t.Fatalf("B took A's public link, or said not what to do: %v", err)
	}
	err = inNetns(path, func() error { _, _, err := claimVeth(metadataHostDev, metadataDataplaneDev, b); return err })
	if _, ok := err.(*linkInUse); !ok {
		t.Fatalf("B took A's metadata link: %v", err)
	}
	if addrs := hostAddrs(t, ns); addrs != "172.24.4.1/24" {
		t.Fatalf("the refused claim changed %s's addresses: %q", publicHostDev, addrs)
	}
	// Purging B leaves A's pairs.
	var out strings.Builder
	if err := purgeLinks(path, b, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "left link "+publicHostDev) || strings.Contains(out.String(), "removed link") {
		t.Fatalf("purge of B:\n%s", out.String())
	}
	for _, name := range []string{publicHostDev, metadataHostDev} {
		linkAlias(t, ns, name)
	}

	// A stops: B takes the pairs over, with its own subnet only.
	stopA()
	if err := addPublicReach(ob, &ports.Reach{}); err != nil {
		t.Fatalf("B could not take a stopped cloud's link: %v", err)
	}
	if got := linkAlias(t, ns, publicHostDev); got != linkOwner(b) {
		t.Fatalf("%s's alias %q after B took it", publicHostDev, got)
	}
	if addrs := hostAddrs(t, ns); addrs != "172.24.5.1/24" {
		t.Fatalf("%s's addresses after B took it: %q", publicHostDev, addrs)
	}
	// A (stopped, data dir there) purged: B's public pair stays; the
	// metadata pair, still A's, goes.
	out.Reset()
	if err := purgeLinks(path, a, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "left link "+publicHostDev) || !strings.Contains(out.String(), "removed link "+metadataHostDev) {
		t.Fatalf("purge of A:\n%s", out.String())
	}
	linkAlias(t, ns, publicHostDev)

	// An orphan (its owner's data dir gone) is anyone's to purge.
	if err := os.RemoveAll(b); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := purgeLinks(path, a, &out); err != nil || !strings.Contains(out.String(), "removed link "+publicHostDev) {
		t.Fatalf("purge of an orphan: %v\n%s", err, out.String())
	}
}

// devDataDir is a data dir with an (empty) Raft log.
func devDataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "raft"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "raft", "raft.db"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runningOn holds the flock a running rackd holds on dir's Raft log, until
// the returned func.
func runningOn(t *testing.T, dir string) func() {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "raft", "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return func() { f.Close() }
}

// linkAlias is the alias of the link name in the namespace ns (fatal if
// there is no such link).
func linkAlias(t *testing.T, ns, name string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", name).CombinedOutput()
	if err != nil {
		t.Fatalf("link %s: %v\n%s", name, err, out)
	}
	_, alias, ok := strings.Cut(string(out), " alias ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(alias)
}

// hostAddrs are the IPv4 addresses on the public host side, space separated.
func hostAddrs(t *testing.T, ns string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-4", "-o", "addr", "show", "dev", publicHostDev).CombinedOutput()
	if err != nil {
		t.Fatalf("addresses: %v\n%s", err, out)
	}
	var addrs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for i := range f {
			if f[i] == "inet" && i+1 < len(f) {
				if _, err := netip.ParsePrefix(f[i+1]); err == nil {
					addrs = append(addrs, f[i+1])
				}
			}
		}
	}
	return strings.Join(addrs, " ")
}
