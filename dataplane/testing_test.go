package dataplane

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// openTest opens a dataplane pinned in its own bpffs directory, on devices
// in its own network namespace; devs are created there as veths, each
// with a peer named dev+"p".
func openTest(t testing.TB, devs ...string) *Dataplane {
	t.Helper()
	return openTestConfig(t, Config{}, devs...)
}

// openTestConfig is openTest with cfg's settings (its pin directory and
// namespace are the test's own).
func openTestConfig(t testing.TB, cfg Config, devs ...string) *Dataplane {
	t.Helper()
	dataplanetest.NeedRoot(t)
	cfg.Netns = dataplanetest.Netns(t)
	dataplanetest.Veths(t, cfg.Netns, devs...)
	cfg.PinDir = dataplanetest.PinDir(t)
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
