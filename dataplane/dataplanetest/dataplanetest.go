// Package dataplanetest gives tests that load the dataplane a place of
// their own: a network namespace with quiet veths and a bpffs pin
// directory, all removed when the test ends. It does not import the
// dataplane, so the dataplane's own tests use it too.
package dataplanetest

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// NeedRoot skips a test that loads BPF programs when this process cannot;
// under RACKSTACK_REQUIRE_INTEGRATION it fails instead (testenv).
func NeedRoot(t testing.TB) {
	t.Helper()
	testenv.RequireRoot(t, "load BPF programs and create a network namespace")
}

// Netns creates a named network namespace for the test, with IPv6 off for
// every device made in it, and returns its path; it is deleted when the
// test ends.
func Netns(t testing.TB) string {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	name := fmt.Sprintf("rstest%d", rand.IntN(1<<30))
	ns, err := netns.NewNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	ns.Close()
	t.Cleanup(func() { netns.DeleteNamed(name) })
	// The thread is in the new namespace: its sysctls are the ones written.
	qerr := disableIPv6()
	if err := netns.Set(orig); err != nil {
		t.Fatal(err)
	}
	if qerr != nil {
		t.Fatal(qerr)
	}
	return "/run/netns/" + name
}

// disableIPv6 turns IPv6 off for every device later created in the
// calling thread's network namespace. An IPv6 device that comes up sends
// MLD reports, DAD probes and router solicitations on its own; on a test
// veth they enter the peer port's program and move the global counters
// while a test compares them around one packet.
func disableIPv6() error {
	for _, conf := range []string{"all", "default"} {
		p := filepath.Join("/proc/sys/net/ipv6/conf", conf, "disable_ipv6")
		err := os.WriteFile(p, []byte("1"), 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a kernel without IPv6 sends none of it
		}
		if err != nil {
			return fmt.Errorf("disable ipv6: %w", err)
		}
	}
	return nil
}

// Veths creates, in the namespace at nsPath, a veth pair per name, the
// peer named name+"p", both up (this kernel has no dummy driver).
func Veths(t testing.TB, nsPath string, names ...string) {
	t.Helper()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range names {
		l := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"}
		if err := h.LinkAdd(l); err != nil {
			t.Fatalf("add %s: %v", name, err)
		}
		for _, n := range []string{name, name + "p"} {
			if err := h.LinkSetUp(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: n}}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// PinDir is a bpffs directory for the test's pins, not yet created; the
// dataplane's Destroy removes it. The name is unique across the test
// binaries go test runs side by side (t.TempDir's "001" is not): two
// tests on one pin directory would share maps, and the second be refused.
func PinDir(t testing.TB) string {
	return filepath.Join("/sys/fs/bpf/rackstack-test", fmt.Sprintf("%d-%d", os.Getpid(), rand.IntN(1<<30)))
}
