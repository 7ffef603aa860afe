package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/bpf"
)

// The routed fixture: router r1 joins network 101 (10.0.0.0/24, port a)
// and network 102 (10.0.1.0/24, port d, and a port n on another node);
// its gateway is on the external network "public" (device ext0), where a
// has the floating IP 172.24.4.10. The metadata server is behind meta0.
var (
	macD   = mac("fa:16:3e:00:00:0d")
	macN   = mac("fa:16:3e:00:00:1e") // port n, on another node
	macR1  = mac("fa:16:3e:00:01:01")
	macR2  = mac("fa:16:3e:00:01:02")
	macExt = mac("fa:16:3e:00:02:01") // this node on the external network
	macG   = mac("52:54:00:00:02:fe") // the external gateway
)

func l3State() Desired {
	pfx := netip.MustParsePrefix
	ip := netip.MustParseAddr
	want := fixtureState()
	want.Ports = []Port{
		{ID: "a", Device: "tapa", VLAN: 101, MAC: macA, Security: true, Groups: []string{"web"},
			Addrs: []netip.Prefix{pfx("10.0.0.10/32")}, MetaAddr: ip("169.254.0.5")},
		{ID: "d", Device: "tapd", VLAN: 102, MAC: macD, Security: true, Groups: []string{"web"},
			Addrs: []netip.Prefix{pfx("10.0.1.20/32")}},
	}
	want.Routers = []Router{{
		ID: "r1",
		Interfaces: []RouterInterface{
			{VLAN: 101, MAC: macR1, IP: pfx("10.0.0.1/24")},
			{VLAN: 102, MAC: macR2, IP: pfx("10.0.1.1/24")},
			{VLAN: 102, MAC: macR2, IP: pfx("fd00::1/64")}, // IPv6 beside IPv4 on one router port
		},
		Gateway: &RouterGateway{External: "public", IP: ip("172.24.4.2"), SNAT: false},
		Routes:  []Route{{Dst: pfx("192.168.50.0/24"), Nexthop: ip("10.0.1.30")}},
	}}
	want.Neighbors = []Neighbor{{VLAN: 102, IP: ip("10.0.1.30"), MAC: macN}}
	want.Externals = []External{{ID: "public", Device: "ext0", Gateway: ip("172.24.4.1"), Prefix: pfx("172.24.4.0/24"), MAC: macExt}}
	want.Floating = []FloatingIP{{IP: ip("172.24.4.10"), Fixed: ip("10.0.0.10"), Port: "a", Router: "r1", External: "public"}}
	want.Metadata = &Metadata{Device: "meta0"}
	return want
}

func l3Fixture(t *testing.T) *Dataplane {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	if _, err := d.Apply(l3State()); err != nil {
		t.Fatal(err)
	}
	return d
}

// sum16 is the Internet checksum's one's complement sum of b.
func sum16(b []byte, s uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s
}

// l4Sum is the sum over an IPv4 packet's L4 part, with the pseudo header
// for TCP and UDP.
func l4Sum(ip []byte) uint32 {
	ihl := int(ip[0]&0xf) * 4
	l4 := ip[ihl:binary.BigEndian.Uint16(ip[2:])]
	var s uint32
	if ip[9] != 1 {
		s = sum16(ip[12:20], 0)
		s = sum16([]byte{0, ip[9], byte(len(l4) >> 8), byte(len(l4))}, s)
	}
	return sum16(l4, s)
}

// withChecksums fills in the IP and L4 checksums of an untagged frame.
func withChecksums(pkt []byte) []byte {
	ip := pkt[14:]
	ihl := int(ip[0]&0xf) * 4
	off := map[byte]int{1: 2, 6: 16, 17: 6}[ip[9]]
	binary.BigEndian.PutUint16(ip[ihl+off:], 0)
	binary.BigEndian.PutUint16(ip[ihl+off:], ^uint16(l4Sum(ip)))
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum16(ip[:ihl], 0)))
	return pkt
}

// checksumsOK says what is wrong with the checksums of an untagged frame.
func checksumsOK(pkt []byte) error {
	ip := pkt[14:]
	if s := sum16(ip[:int(ip[0]&0xf)*4], 0); s != 0xffff {
		return fmt.Errorf("IP checksum off by %#x", s)
	}
	if s := l4Sum(ip); s != 0xffff {
		return fmt.Errorf("protocol %d checksum off by %#x", ip[9], s)
	}
	return nil
}

type ipInfo struct {
	src, dst netip.Addr
	ttl      uint8
	sport    uint16
	dport    uint16
}

func parseIP(pkt []byte) ipInfo {
	ip := pkt[14:]
	ihl := int(ip[0]&0xf) * 4
	return ipInfo{
		src: netip.AddrFrom4([4]byte(ip[12:16])), dst: netip.AddrFrom4([4]byte(ip[16:20])), ttl: ip[8],
		sport: binary.BigEndian.Uint16(ip[ihl:]), dport: binary.BigEndian.Uint16(ip[ihl+2:]),
	}
}

func (i ipInfo) String() string {
	return fmt.Sprintf("%s:%d > %s:%d ttl %d", i.src, i.sport, i.dst, i.dport, i.ttl)
}

func macsOf(pkt []byte) string {
	return net.HardwareAddr(pkt[6:12]).String() + " > " + net.HardwareAddr(pkt[0:6]).String()
}

func TestRouterARPAndForwarding(t *testing.T) {
	d := l3Fixture(t)
	in := d.objs.PortIn
	bcast := mac("ff:ff:ff:ff:ff:ff")

	// The gateway's ARP is answered on the node, from the router's MAC.
	r := d.run(t, in, "tapa", frame{src: macA, dst: bcast}.arp("10.0.0.10", "10.0.0.1"))
	if r.String() != "REDIRECT [arp_reply]" {
		t.Fatalf("ARP for the gateway: %s", r)
	}
	want := frame{src: macR1, dst: macA}.eth(0x0806, append(append(append(append(
		[]byte{0, 1, 8, 0, 6, 4, 0, 2}, macR1...), 10, 0, 0, 1), macA...), 10, 0, 0, 10))
	if !bytes.Equal(r.out[:len(want)], want) {
		t.Errorf("ARP reply:\n got %x\nwant %x", r.out[:len(want)], want)
	}
	// The router's address on the other network is not a's gateway.
	if r := d.run(t, in, "tapa", frame{src: macA, dst: bcast}.arp("10.0.0.10", "10.0.1.1")); r.String() != "REDIRECT [flood,fwd_uplink]" {
		t.Errorf("ARP for the other network's gateway: %s", r)
	}

	toR1 := frame{src: macA, dst: macR1}
	cases := []struct {
		name string
		pkt  []byte
		want string
		out  string // the routed packet's MACs and addresses
	}{
		{"ssh to d across the router", toR1.tcp("10.0.0.10", "10.0.1.20", 40000, 22), "REDIRECT [fwd_local,fwd_routed]",
			"fa:16:3e:00:01:02 > fa:16:3e:00:00:0d 10.0.0.10:40000 > 10.0.1.20:22 ttl 63"},
		{"http to d: its groups say no", toR1.tcp("10.0.0.10", "10.0.1.20", 40000, 80), "SHOT [drop_sg_ingress,fwd_routed]", ""},
		{"static route to another node's port by the uplink", toR1.tcp("10.0.0.10", "192.168.50.7", 40000, 22), "REDIRECT [fwd_routed,fwd_uplink]",
			"fa:16:3e:00:01:02 > fa:16:3e:00:00:1e 10.0.0.10:40000 > 192.168.50.7:22 ttl 63"},
		{"an address no port has", toR1.tcp("10.0.0.10", "10.0.1.99", 40000, 22), "SHOT [drop_no_neigh]", ""},
		{"same network, sent to the router MAC", toR1.tcp("10.0.0.10", "10.0.0.77", 40000, 22), "SHOT [drop_no_neigh]", ""},
		{"spoofed source to the router", toR1.tcp("10.0.0.99", "10.0.1.20", 40000, 22), "SHOT [drop_spoof_ip]", ""},
		{"d out of the gateway before its MAC is known", frame{src: macD, dst: macR2}.tcp("10.0.1.20", "8.8.8.8", 40000, 443), "SHOT [drop_no_neigh]", ""},
	}
	for _, c := range cases {
		r := d.run(t, in, map[bool]string{true: "tapd", false: "tapa"}[strings.HasPrefix(c.name, "d ")], withChecksums(c.pkt))
		if r.String() != c.want {
			t.Errorf("%s: got %s, want %s", c.name, r, c.want)
			continue
		}
		if c.out == "" {
			continue
		}
		if got := macsOf(r.out) + " " + parseIP(r.out).String(); got != c.out {
			t.Errorf("%s: sent %s, want %s", c.name, got, c.out)
		}
		if err := checksumsOK(r.out[:len(c.pkt)]); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestRouterICMP(t *testing.T) {
	d := l3Fixture(t)
	toR1 := frame{src: macA, dst: macR1}

	// TTL 1: time exceeded, from the router's address on a's network.
	pkt := toR1.udp("10.0.0.10", "10.0.1.20", 33434, 33435)
	pkt[14+8] = 1
	withChecksums(pkt)
	r := d.run(t, d.objs.PortIn, "tapa", pkt)
	if r.String() != "REDIRECT [icmp_reply]" {
		t.Fatalf("TTL 1: %s", r)
	}
	out := r.out[:14+20+8+28]
	if got := macsOf(out) + " " + parseIP(out).src.String() + " > " + parseIP(out).dst.String(); got != "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a 10.0.0.1 > 10.0.0.10" {
		t.Errorf("time exceeded sent %s", got)
	}
	if out[14+9] != 1 || out[34] != 11 || out[35] != 0 {
		t.Errorf("not an ICMP time exceeded: proto %d type %d code %d", out[14+9], out[34], out[35])
	}
	if !bytes.Equal(out[42:], pkt[14:14+28]) {
		t.Errorf("quote:\n got %x\nwant %x", out[42:], pkt[14:14+28])
	}
	if err := checksumsOK(out); err != nil {
		t.Error(err)
	}

	// A ping to the gateway is answered by the node.
	echo := withChecksums(toR1.icmp("10.0.0.10", "10.0.0.1", 8, 0, 9))
	r = d.run(t, d.objs.PortIn, "tapa", echo)
	if r.String() != "REDIRECT [icmp_reply]" {
		t.Fatalf("ping the gateway: %s", r)
	}
	out = r.out[:len(echo)]
	if got := macsOf(out) + " " + parseIP(out).src.String() + " > " + parseIP(out).dst.String(); got != "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a 10.0.0.1 > 10.0.0.10" || out[34] != 0 {
		t.Errorf("echo reply sent %s type %d", got, out[34])
	}
	if err := checksumsOK(out); err != nil {
		t.Error(err)
	}
	// The other network's gateway address answers too: it is the router's.
	if r := d.run(t, d.objs.PortIn, "tapa", withChecksums(toR1.icmp("10.0.0.10", "10.0.1.1", 8, 0, 9))); r.String() != "REDIRECT [icmp_reply]" {
		t.Errorf("ping the router's other address: %s", r)
	}
	syn := toR1.tcp("10.0.0.10", "10.0.1.20", 40000, 22)
	syn[14+8] = 1
	if r := d.run(t, d.objs.PortIn, "tapa", withChecksums(syn)); r.String() != "REDIRECT [icmp_reply]" {
		t.Errorf("TCP with TTL 1: %s", r)
	}
	// An ICMP error is never answered with another.
	bad := toR1.icmp("10.0.0.10", "10.0.1.20", 3, 1, 0)
	bad[14+8] = 1
	if r := d.run(t, d.objs.PortIn, "tapa", withChecksums(bad)); r.String() != "SHOT [drop_no_route]" {
		t.Errorf("unreachable with TTL 1: %s", r)
	}
}

func TestFloatingIP(t *testing.T) {
	d := l3Fixture(t)
	toR1 := frame{src: macA, dst: macR1}
	out := withChecksums(toR1.tcp("10.0.0.10", "8.8.8.8", 40000, 443))

	// The gateway's MAC unknown (nobody answers Apply's ARP here): dropped.
	if r := d.run(t, d.objs.PortIn, "tapa", out); r.String() != "SHOT [drop_no_neigh]" {
		t.Fatalf("out before the gateway is known: %s", r)
	}
	// The gateway asks for the floating IP: answered, and learnt from.
	r := d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("172.24.4.1", "172.24.4.10"))
	if r.String() != "REDIRECT [arp_reply]" {
		t.Fatalf("ARP for the floating IP: %s", r)
	}
	if got := macsOf(r.out); got != "fa:16:3e:00:02:01 > 52:54:00:00:02:fe" {
		t.Errorf("ARP reply %s", got)
	}
	var nb bpf.DataplaneNeigh
	if err := d.objs.ExtNeighs.Lookup(bpf.DataplaneNeighKey{Vlan: d.ifindex(t, "ext0"), Ip: [4]byte{172, 24, 4, 1}}, &nb); err != nil || nb.Mac != mac6(macG) {
		t.Errorf("gateway not learnt: %v %x", err, nb.Mac)
	}

	r = d.run(t, d.objs.PortIn, "tapa", out)
	if r.String() != "REDIRECT [nat_out]" {
		t.Fatalf("out: %s", r)
	}
	if got := macsOf(r.out) + " " + parseIP(r.out).String(); got != "fa:16:3e:00:02:01 > 52:54:00:00:02:fe 172.24.4.10:40000 > 8.8.8.8:443 ttl 63" {
		t.Errorf("out sent %s", got)
	}
	if err := checksumsOK(r.out[:len(out)]); err != nil {
		t.Error(err)
	}

	fromG := frame{src: macG, dst: macExt}
	cases := []struct {
		name, want, out string
		pkt             []byte
	}{
		{"the reply", "REDIRECT [fwd_local,nat_in]", "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a 8.8.8.8:443 > 10.0.0.10:40000 ttl 63",
			fromG.tcp("8.8.8.8", "172.24.4.10", 443, 40000)},
		{"a new flow a's groups allow", "REDIRECT [fwd_local,nat_in]", "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a 1.2.3.4:5555 > 10.0.0.10:1500 ttl 63",
			fromG.tcp("1.2.3.4", "172.24.4.10", 5555, 1500)},
		{"a new flow a's groups refuse", "SHOT [drop_sg_ingress]", "", fromG.tcp("1.2.3.4", "172.24.4.10", 5555, 80)},
		{"UDP", "REDIRECT [fwd_local,nat_in]", "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a 10.0.0.11:5353 > 10.0.0.10:53 ttl 63",
			fromG.udp("10.0.0.11", "172.24.4.10", 5353, 53)},
		{"an address that is no floating IP: the node's", "OK []", "", fromG.tcp("1.2.3.4", "172.24.4.99", 5555, 1500)},
		{"to another MAC", "OK []", "", frame{src: macG, dst: macX}.tcp("1.2.3.4", "172.24.4.10", 5555, 1500)},
	}
	for _, c := range cases {
		r := d.run(t, d.objs.ExtIn, "ext0", withChecksums(c.pkt))
		if r.String() != c.want {
			t.Errorf("%s: got %s, want %s", c.name, r, c.want)
			continue
		}
		if c.out == "" {
			continue
		}
		if got := macsOf(r.out) + " " + parseIP(r.out).String(); got != c.out {
			t.Errorf("%s: sent %s, want %s", c.name, got, c.out)
		}
		if err := checksumsOK(r.out[:len(c.pkt)]); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if r := d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("172.24.4.1", "172.24.4.99")); r.String() != "OK []" {
		t.Errorf("ARP for an address that is no floating IP: %s", r)
	}

	// Disassociated: the address is the node's again, and a's traffic
	// leaves as it is, the router not doing SNAT.
	want := l3State()
	want.Floating = nil
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if r := d.run(t, d.objs.ExtIn, "ext0", withChecksums(fromG.tcp("8.8.8.8", "172.24.4.10", 443, 40000))); r.String() != "OK []" {
		t.Errorf("to the disassociated address: %s", r)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", out); r.String() != "REDIRECT [nat_out]" || parseIP(r.out).src != netip.MustParseAddr("10.0.0.10") {
		t.Errorf("out without the floating IP: %s from %s", r, parseIP(r.out).src)
	}
}

func TestMetadataRedirect(t *testing.T) {
	d := l3Fixture(t)
	peer, err := d.nl.LinkByName("meta0p")
	if err != nil {
		t.Fatal(err)
	}
	own, err := d.nl.LinkByName("meta0")
	if err != nil {
		t.Fatal(err)
	}
	req := withChecksums(frame{src: macA, dst: macR1}.tcp("10.0.0.10", "169.254.169.254", 40000, 80))
	r := d.run(t, d.objs.PortIn, "tapa", req)
	if r.String() != "REDIRECT [to_meta]" {
		t.Fatalf("request: %s", r)
	}
	want := own.Attrs().HardwareAddr.String() + " > " + peer.Attrs().HardwareAddr.String() + " 169.254.0.5:40000 > 169.254.169.254:80 ttl 64"
	if got := macsOf(r.out) + " " + parseIP(r.out).String(); got != want {
		t.Errorf("request sent %s, want %s", got, want)
	}
	if err := checksumsOK(r.out[:len(req)]); err != nil {
		t.Error(err)
	}
	// The server asks for the port's metadata address, then answers.
	r = d.run(t, d.objs.MetaIn, "meta0", frame{src: peer.Attrs().HardwareAddr, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("169.254.169.254", "169.254.0.5"))
	if r.String() != "REDIRECT [arp_reply]" {
		t.Errorf("the server's ARP: %s", r)
	}
	reply := withChecksums(frame{src: peer.Attrs().HardwareAddr, dst: own.Attrs().HardwareAddr}.tcp("169.254.169.254", "169.254.0.5", 80, 40000))
	r = d.run(t, d.objs.MetaIn, "meta0", reply)
	if r.String() != "REDIRECT [from_meta,fwd_local]" {
		t.Fatalf("reply: %s", r)
	}
	if got := macsOf(r.out) + " " + parseIP(r.out).String(); got != "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a 169.254.169.254:80 > 10.0.0.10:40000 ttl 64" {
		t.Errorf("reply sent %s", got)
	}
	if err := checksumsOK(r.out[:len(reply)]); err != nil {
		t.Error(err)
	}
	// A reply to a request never made, and a port without a metadata
	// address, go nowhere near a port.
	stray := withChecksums(frame{src: peer.Attrs().HardwareAddr, dst: own.Attrs().HardwareAddr}.tcp("169.254.169.254", "169.254.0.5", 80, 40001))
	if r := d.run(t, d.objs.MetaIn, "meta0", stray); r.String() != "SHOT [drop_no_route]" {
		t.Errorf("stray reply: %s", r)
	}
	if r := d.run(t, d.objs.PortIn, "tapd", withChecksums(frame{src: macD, dst: macR2}.tcp("10.0.1.20", "169.254.169.254", 40000, 80))); r.String() != "SHOT [drop_no_route]" {
		t.Errorf("from a port without a metadata address: %s", r)
	}
}

func TestCompileRefusesL3(t *testing.T) {
	devs := map[string]device{"tapa": {ifindex: 1}, "tapd": {ifindex: 2}, "ext0": {ifindex: 3}, "meta0": {ifindex: 4, veth: true, peer: [6]byte{2}}, "up0": {ifindex: 5}}
	cases := []struct {
		name  string
		edit  func(*Desired)
		error string
	}{
		{"VLAN external off the uplink", func(d *Desired) { d.Externals[0].VLAN = 200 }, "rides on the uplink"},
		{"two externals on one VLAN", func(d *Desired) {
			d.Uplink = "up0"
			d.Externals[0].Device, d.Externals[0].VLAN = "up0", 200
			d.Externals = append(d.Externals, d.Externals[0])
			d.Externals[1].ID = "other"
		}, "another external network is on up0 VLAN 200"},
		{"external device missing", func(d *Desired) { d.Externals[0].Device = "nope" }, "device nope not found"},
		{"gateway on an unknown external", func(d *Desired) { d.Routers[0].Gateway.External = "x" }, "does not reach"},
		{"gateway address outside the external subnet", func(d *Desired) { d.Routers[0].Gateway.IP = netip.MustParseAddr("10.1.1.1") }, "gateway address 10.1.1.1"},
		{"route via no subnet", func(d *Desired) { d.Routers[0].Routes[0].Nexthop = netip.MustParseAddr("10.9.9.9") }, "none of its subnets"},
		{"floating IP outside the external subnet", func(d *Desired) { d.Floating[0].IP = netip.MustParseAddr("10.1.1.1") }, "not an IPv4 address of external"},
		{"floating IP on a router without the port's subnet", func(d *Desired) { d.Routers[0].Interfaces = d.Routers[0].Interfaces[1:] }, "no interface on port a's subnet"},
		{"metadata device not a veth", func(d *Desired) { d.Metadata.Device = "tapd" }, "not a veth"},
		{"metadata address outside link-local", func(d *Desired) { d.Ports[0].MetaAddr = netip.MustParseAddr("10.0.0.5") }, "not a 169.254.0.0/16 address"},
		{"metadata address shared", func(d *Desired) { d.Ports[1].MetaAddr = d.Ports[0].MetaAddr }, "is port a's too"},
	}
	for _, c := range cases {
		want := l3State()
		c.edit(&want)
		_, err := compile(want, devs)
		if err == nil || !strings.Contains(err.Error(), c.error) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.error)
		}
	}
	if _, err := compile(l3State(), devs); err != nil {
		t.Errorf("the fixture itself: %v", err)
	}
}

func TestRouterSNAT(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "ext0", "meta0")
	want := l3State()
	want.Routers[0].Gateway.SNAT = true
	want.Ports[1].Addrs = append(want.Ports[1].Addrs, netip.MustParsePrefix("10.0.1.21/32"))
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	bcast := mac("ff:ff:ff:ff:ff:ff")
	// The gateway address answers ARP; the gateway is learnt from asking.
	if r := d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: bcast}.arp("172.24.4.1", "172.24.4.2")); r.String() != "REDIRECT [arp_reply]" {
		t.Fatalf("ARP for the router's gateway address: %s", r)
	}
	toR2 := frame{src: macD, dst: macR2}
	sent := func(name, dev string, pkt []byte, want, wantOut string) []byte {
		t.Helper()
		r := d.run(t, d.objs.PortIn, dev, withChecksums(pkt))
		if r.String() != want {
			t.Errorf("%s: got %s, want %s", name, r, want)
			return nil
		}
		if got := macsOf(r.out) + " " + parseIP(r.out).String(); wantOut != "" && got != wantOut {
			t.Errorf("%s: sent %s, want %s", name, got, wantOut)
		}
		if err := checksumsOK(r.out[:len(pkt)]); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		return r.out[:len(pkt)]
	}
	sent("first flow keeps its port", "tapd", toR2.tcp("10.0.1.20", "8.8.8.8", 40000, 443), "REDIRECT [nat_out,snat_new]",
		"fa:16:3e:00:02:01 > 52:54:00:00:02:fe 172.24.4.2:40000 > 8.8.8.8:443 ttl 63")
	sent("same flow again", "tapd", toR2.tcp("10.0.1.20", "8.8.8.8", 40000, 443), "REDIRECT [nat_out]",
		"fa:16:3e:00:02:01 > 52:54:00:00:02:fe 172.24.4.2:40000 > 8.8.8.8:443 ttl 63")
	other := sent("same port from another address", "tapd", toR2.tcp("10.0.1.21", "8.8.8.8", 40000, 443), "REDIRECT [nat_out,snat_new]", "")
	if other == nil {
		t.FailNow()
	}
	o := parseIP(other)
	if o.src != netip.MustParseAddr("172.24.4.2") || o.sport == 40000 || o.sport < 1024 {
		t.Fatalf("second flow sent as %s: want the gateway address and another port above 1023", o)
	}
	sent("a floating IP wins over SNAT", "tapa", frame{src: macA, dst: macR1}.tcp("10.0.0.10", "8.8.8.8", 40000, 443), "REDIRECT [nat_out]",
		"fa:16:3e:00:02:01 > 52:54:00:00:02:fe 172.24.4.10:40000 > 8.8.8.8:443 ttl 63")
	sent("ping", "tapd", toR2.icmp("10.0.1.20", "8.8.8.8", 8, 0, 77), "REDIRECT [nat_out,snat_new]", "")
	sent("SCTP has no SNAT", "tapd", toR2.eth(0x0800, ipv4(132, "10.0.1.20", "8.8.8.8", make([]byte, 12))), "SHOT [drop_no_route]", "")

	fromG := frame{src: macG, dst: macExt}
	cases := []struct {
		name, want, out string
		pkt             []byte
	}{
		{"reply to the first flow", "REDIRECT [fwd_local,nat_in]", "fa:16:3e:00:01:02 > fa:16:3e:00:00:0d 8.8.8.8:443 > 10.0.1.20:40000 ttl 63",
			fromG.tcp("8.8.8.8", "172.24.4.2", 443, 40000)},
		{"reply to the second", "REDIRECT [fwd_local,nat_in]", "fa:16:3e:00:01:02 > fa:16:3e:00:00:0d 8.8.8.8:443 > 10.0.1.21:40000 ttl 63",
			fromG.tcp("8.8.8.8", "172.24.4.2", 443, o.sport)},
		{"echo reply", "REDIRECT [fwd_local,nat_in]", "", fromG.icmp("8.8.8.8", "172.24.4.2", 0, 0, 77)},
		{"from another remote port", "SHOT [drop_no_route]", "", fromG.tcp("8.8.8.8", "172.24.4.2", 444, 40000)},
		{"unasked", "SHOT [drop_no_route]", "", fromG.tcp("1.2.3.4", "172.24.4.2", 5555, 22)},
	}
	for _, c := range cases {
		r := d.run(t, d.objs.ExtIn, "ext0", withChecksums(c.pkt))
		if r.String() != c.want {
			t.Errorf("%s: got %s, want %s", c.name, r, c.want)
			continue
		}
		if got := macsOf(r.out) + " " + parseIP(r.out).String(); c.out != "" && got != c.out {
			t.Errorf("%s: sent %s, want %s", c.name, got, c.out)
		}
		if err := checksumsOK(r.out[:len(c.pkt)]); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestFragNeeded sends a's packets bigger than the external network's MTU
// out of its floating IP: with DF, a gets the MTU back from its gateway
// (path MTU discovery); without, the packet goes, as nothing here
// fragments.
func TestFragNeeded(t *testing.T) {
	d := l3Fixture(t)
	d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: mac("ff:ff:ff:ff:ff:ff")}.arp("172.24.4.1", "172.24.4.10"))
	big := frame{src: macA, dst: macR1}.eth(0x0800, ipv4(17, "10.0.0.10", "8.8.8.8", make([]byte, 1600)))
	binary.BigEndian.PutUint16(big[14+20:], 5000)
	binary.BigEndian.PutUint16(big[14+22:], 53)
	binary.BigEndian.PutUint16(big[14+24:], 1600)
	if r := d.run(t, d.objs.PortIn, "tapa", withChecksums(append([]byte{}, big...))); r.String() != "SHOT [drop_too_big]" {
		t.Errorf("too big without DF: %s", r)
	}
	big[14+6] = 0x40 // DF
	withChecksums(big)
	r := d.run(t, d.objs.PortIn, "tapa", big)
	if r.String() != "REDIRECT [icmp_reply]" {
		t.Fatalf("too big with DF: %s", r)
	}
	out := r.out[:14+20+8+28]
	if got := macsOf(out) + " " + parseIP(out).src.String() + " > " + parseIP(out).dst.String(); got != "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a 10.0.0.1 > 10.0.0.10" {
		t.Errorf("frag needed sent %s", got)
	}
	if typ, code, mtu := out[34], out[35], binary.BigEndian.Uint16(out[40:]); typ != 3 || code != 4 || mtu != 1500 {
		t.Errorf("type %d code %d MTU %d, want 3 4 1500 (ext0's)", typ, code, mtu)
	}
	if err := checksumsOK(out); err != nil {
		t.Error(err)
	}
	// The quote is the packet as a sent it, TTL included.
	if !bytes.Equal(out[42:], big[14:14+28]) {
		t.Errorf("quote:\n got %x\nwant %x", out[42:], big[14:14+28])
	}
}

// TestExternalOnUplink puts the external network on VLAN 300 of the
// uplink: uplink_in answers ARP for the floating IP and DNATs to it, hands
// the stack back what is not the dataplane's with its tag, and port_in
// sends a's traffic out of the floating IP to the uplink.
func TestExternalOnUplink(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0", "meta0")
	want := l3State()
	want.Externals[0].Device, want.Externals[0].VLAN = "up0", 300
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.links["up0"]; !ok {
		t.Fatal("uplink not attached")
	}
	if info, err := d.links["up0"].Info(); err != nil || d.progName(info.Program) != "uplink_in" {
		t.Errorf("the uplink runs %v, want uplink_in", err)
	}
	up := d.objs.UplinkIn
	bcast := mac("ff:ff:ff:ff:ff:ff")
	if r := d.run(t, up, "up0", frame{src: macG, dst: bcast, vlan: 300}.arp("172.24.4.1", "172.24.4.10")); r.String() != "REDIRECT [arp_reply]" {
		t.Errorf("ARP for the floating IP on VLAN 300: %s", r)
	}
	if r := d.run(t, up, "up0", frame{src: macG, dst: bcast, vlan: 301}.arp("172.24.4.1", "172.24.4.10")); r.String() != "OK []" {
		t.Errorf("ARP for the floating IP on another VLAN: %s", r)
	}
	if r := d.run(t, up, "up0", frame{src: macG, dst: bcast}.arp("172.24.4.1", "172.24.4.10")); r.String() != "OK []" {
		t.Errorf("ARP for the floating IP untagged: %s", r)
	}
	in := withChecksums(frame{src: macG, dst: macExt}.tcp("1.2.3.4", "172.24.4.10", 5555, 1500))
	tagged := append(append(append([]byte{}, in[:12]...), 0x81, 0, 0x01, 0x2c), in[12:]...)
	r := d.run(t, up, "up0", tagged)
	if r.String() != "REDIRECT [fwd_local,nat_in]" {
		t.Fatalf("in to the floating IP: %s", r)
	}
	if got := macsOf(r.out) + " " + parseIP(r.out).String(); got != "fa:16:3e:00:01:01 > fa:16:3e:00:00:0a 1.2.3.4:5555 > 10.0.0.10:1500 ttl 63" {
		t.Errorf("in sent %s", got)
	}
	other := withChecksums(frame{src: macG, dst: macExt}.tcp("1.2.3.4", "172.24.4.99", 5555, 1500))
	if r := d.run(t, up, "up0", append(append(append([]byte{}, other[:12]...), 0x81, 0, 0x01, 0x2c), other[12:]...)); r.String() != "OK []" {
		t.Errorf("to an address of VLAN 300 that is not the dataplane's: %s", r)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", withChecksums(frame{src: macA, dst: macR1}.tcp("10.0.0.10", "1.2.3.4", 1500, 5555))); r.String() != "REDIRECT [nat_out]" {
		t.Errorf("out of the floating IP: %s", r)
	}
}

// TestRouterWithoutSNAT: a router with enable_snat off routes its ports'
// fixed IPs out as they are and takes traffic to them back in (the outside
// routing the subnet to its gateway address), without answering ARP for
// them on the external network; a floating IP still wins.
func TestRouterWithoutSNAT(t *testing.T) {
	d := l3Fixture(t)
	bcast := mac("ff:ff:ff:ff:ff:ff")
	d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: bcast}.arp("172.24.4.1", "172.24.4.2"))
	out := withChecksums(frame{src: macD, dst: macR2}.tcp("10.0.1.20", "8.8.8.8", 40000, 443))
	r := d.run(t, d.objs.PortIn, "tapd", out)
	if r.String() != "REDIRECT [nat_out]" {
		t.Fatalf("d out: %s", r)
	}
	if got := macsOf(r.out) + " " + parseIP(r.out).String(); got != "fa:16:3e:00:02:01 > 52:54:00:00:02:fe 10.0.1.20:40000 > 8.8.8.8:443 ttl 63" {
		t.Errorf("d out sent %s", got)
	}
	if err := checksumsOK(r.out[:len(out)]); err != nil {
		t.Error(err)
	}
	in := withChecksums(frame{src: macG, dst: macExt}.tcp("8.8.8.8", "10.0.1.20", 443, 40000))
	r = d.run(t, d.objs.ExtIn, "ext0", in)
	if r.String() != "REDIRECT [fwd_local,nat_in]" {
		t.Fatalf("reply in: %s", r)
	}
	if got := macsOf(r.out) + " " + parseIP(r.out).String(); got != "fa:16:3e:00:01:02 > fa:16:3e:00:00:0d 8.8.8.8:443 > 10.0.1.20:40000 ttl 63" {
		t.Errorf("reply in sent %s", got)
	}
	if r := d.run(t, d.objs.ExtIn, "ext0", frame{src: macG, dst: bcast}.arp("172.24.4.1", "10.0.1.20")); r.String() != "OK []" {
		t.Errorf("ARP for a fixed IP on the external network: %s", r)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", withChecksums(frame{src: macA, dst: macR1}.tcp("10.0.0.10", "8.8.8.8", 40000, 443))); r.String() != "REDIRECT [nat_out]" || parseIP(r.out).src != netip.MustParseAddr("172.24.4.10") {
		t.Errorf("a with its floating IP: %s from %s", r, parseIP(r.out).src)
	}
}
