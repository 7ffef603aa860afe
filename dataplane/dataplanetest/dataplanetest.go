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
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

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
	h := handle(t, nsPath)
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

// Guest moves the veth peer dev+"p" from the namespace at nsPath into a
// namespace of its own, as a guest's end of its port, with the port's MAC,
// the address addr and a default route via gw (none when gw is zero), and
// returns that namespace's path.
func Guest(t testing.TB, nsPath, dev string, mac net.HardwareAddr, addr netip.Prefix, gw netip.Addr) string {
	t.Helper()
	guest := Netns(t)
	to, err := netns.GetFromPath(guest)
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	hf := handle(t, nsPath)
	defer hf.Close()
	l, err := hf.LinkByName(dev + "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := hf.LinkSetNsFd(l, int(to)); err != nil {
		t.Fatalf("move %sp: %v", dev, err)
	}
	h := handle(t, guest)
	defer h.Close()
	if l, err = h.LinkByName(dev + "p"); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetHardwareAddr(l, mac); err != nil {
		t.Fatal(err)
	}
	Addr(t, guest, dev+"p", addr)
	if gw.IsValid() {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
			t.Fatalf("default route via %s: %v", gw, err)
		}
	}
	return guest
}

// handle opens a netlink handle in the namespace at nsPath; the caller
// closes it.
func handle(t testing.TB, nsPath string) *netlink.Handle {
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
	return h
}

// Addr puts addr on dev in the namespace at nsPath and brings dev up.
func Addr(t testing.TB, nsPath, dev string, addr netip.Prefix) {
	t.Helper()
	h := handle(t, nsPath)
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}}
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("address %s on %s: %v", addr, dev, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
}

// In runs fn on a thread inside the namespace at nsPath: the sockets fn
// opens belong to that namespace for good.
func In(t testing.TB, nsPath string, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with this goroutine.
		return errors.Join(ferr, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// IPv6 turns IPv6 on for dev in the namespace at nsPath (Netns turned it
// off), without duplicate address detection, so that its addresses, the
// link-local one it forms from its MAC among them, are usable at once; and
// puts addrs on it.
func IPv6(t testing.TB, nsPath, dev string, addrs ...netip.Prefix) {
	t.Helper()
	err := In(t, nsPath, func() error {
		for _, c := range []struct{ key, val string }{{"accept_dad", "0"}, {"disable_ipv6", "0"}} {
			p := filepath.Join("/proc/sys/net/ipv6/conf", dev, c.key)
			if err := os.WriteFile(p, []byte(c.val), 0o644); err != nil {
				return fmt.Errorf("ipv6 on %s: %w", dev, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := handle(t, nsPath)
	defer h.Close()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range addrs {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), 128)}, Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(l, a); err != nil {
			t.Fatalf("address %s on %s: %v", addr, dev, err)
		}
	}
}
