package dataplane

import (
	"encoding/binary"
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
)

// needRoot skips a test that loads BPF programs when this process cannot;
// under RACKSTACK_REQUIRE_INTEGRATION it fails instead.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("RACKSTACK_REQUIRE_INTEGRATION") != "" {
		t.Fatal("this test loads BPF programs and needs root (RACKSTACK_REQUIRE_INTEGRATION is set)")
	}
	t.Skip("needs root to load BPF programs and create a network namespace")
}

// testNetns creates a named network namespace for the test and returns its
// path; it is deleted when the test ends.
func testNetns(t testing.TB) string {
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

// openTest opens a dataplane pinned in its own bpffs directory, on devices
// in its own network namespace; devs are created there as veths (this
// kernel has no dummy driver), each with a peer named dev+"p".
func openTest(t testing.TB, devs ...string) *Dataplane {
	t.Helper()
	return openTestConfig(t, Config{}, devs...)
}

// openTestConfig is openTest with cfg's settings (its pin directory and
// namespace are the test's own).
func openTestConfig(t testing.TB, cfg Config, devs ...string) *Dataplane {
	t.Helper()
	needRoot(t)
	nsPath := testNetns(t)
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
	for _, name := range devs {
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
	pin := filepath.Join("/sys/fs/bpf/rackstack-test", filepath.Base(t.TempDir()))
	cfg.PinDir, cfg.Netns = pin, nsPath
	d, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Destroy() })
	return d
}

// ifindex returns the index of a device in the dataplane's namespace.
func (d *Dataplane) ifindex(t testing.TB, name string) uint32 {
	t.Helper()
	dev, ok := d.lookupDevice(name)
	if !ok {
		t.Fatalf("no device %s", name)
	}
	return dev.ifindex
}

// skBuff is struct __sk_buff: BPF_PROG_TEST_RUN takes it as the context,
// and reads the ifindex the packet arrived on from it.
type skBuff struct {
	Len, PktType, Mark, QueueMapping, Protocol, VlanPresent, VlanTci, VlanProto uint32
	Priority, IngressIfindex, Ifindex, TcIndex                                  uint32
	Cb                                                                          [5]uint32
	Hash, TcClassid, Data, DataEnd, NapiID, Family, RemoteIP4, LocalIP4         uint32
	RemoteIP6, LocalIP6                                                         [4]uint32
	RemotePort, LocalPort, DataMeta                                             uint32
	FlowKeys, Tstamp                                                            uint64
	WireLen, GsoSegs                                                            uint32
	Sk                                                                          uint64
	GsoSize                                                                     uint32
	TstampType                                                                  uint8
	_                                                                           [3]byte
	Hwtstamp                                                                    uint64
}

// frame builds Ethernet frames for the tests.
type frame struct {
	src, dst net.HardwareAddr
	vlan     uint16 // 0: untagged
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func (f frame) eth(ethertype uint16, payload []byte) []byte {
	b := append([]byte{}, f.dst...)
	b = append(b, f.src...)
	if f.vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, f.vlan)
	}
	b = binary.BigEndian.AppendUint16(b, ethertype)
	return append(b, payload...)
}

func ipv4(proto uint8, src, dst string, l4 []byte) []byte {
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	h := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
	h = append(h, s[:]...)
	h = append(h, d[:]...)
	return append(h, l4...)
}

func (f frame) tcp(src, dst string, sport, dport uint16) []byte {
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	l4[12] = 5 << 4
	return f.eth(0x0800, ipv4(6, src, dst, l4))
}

func (f frame) udp(src, dst string, sport, dport uint16) []byte {
	l4 := make([]byte, 8+32)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	return f.eth(0x0800, ipv4(17, src, dst, l4))
}

func (f frame) icmp(src, dst string, typ, code uint8, id uint16) []byte {
	l4 := make([]byte, 8+16)
	l4[0], l4[1] = typ, code
	binary.BigEndian.PutUint16(l4[4:], id)
	return f.eth(0x0800, ipv4(1, src, dst, l4))
}

func (f frame) arp(senderIP, targetIP string) []byte {
	p := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	p = append(p, f.src...)
	s, d := netip.MustParseAddr(senderIP).As4(), netip.MustParseAddr(targetIP).As4()
	p = append(p, s[:]...)
	p = append(p, make([]byte, 6)...)
	p = append(p, d[:]...)
	return f.eth(0x0806, p)
}
