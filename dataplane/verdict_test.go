package dataplane

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

const (
	actOK       = 0
	actShot     = 2
	actRedirect = 7
)

// result is what one packet did: the program's verdict, the frame as it
// left the program, and the counters it moved.
type result struct {
	verdict uint32
	out     []byte
	moved   string // counter names that grew, sorted, comma-separated
}

func (r result) String() string {
	names := map[uint32]string{actOK: "OK", actShot: "SHOT", actRedirect: "REDIRECT"}
	return fmt.Sprintf("%s [%s]", names[r.verdict], r.moved)
}

// run passes pkt through prog as if it arrived on device dev.
func (d *Dataplane) run(t *testing.T, prog *ebpf.Program, dev string, pkt []byte) result {
	t.Helper()
	before, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	idx := d.ifindex(t, dev)
	var (
		ret uint32
		out = make([]byte, len(pkt)+64)
	)
	err = d.inNetns(func() error {
		opts := &ebpf.RunOptions{Data: pkt, DataOut: out, Context: skBuff{Ifindex: idx}}
		var err error
		ret, err = prog.Run(opts)
		out = opts.DataOut
		return err
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	after, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	var moved []string
	for name, v := range after {
		if v != before[name] && name != "ct_new" {
			moved = append(moved, name)
		}
	}
	sort.Strings(moved)
	return result{verdict: ret, out: out, moved: strings.Join(moved, ",")}
}

// The fixture: network 101 with ports a and b (group web) and e (group
// closed: no egress rules), a port c on network 102, and an uplink.
var (
	macA = mac("fa:16:3e:00:00:0a")
	macB = mac("fa:16:3e:00:00:0b")
	macC = mac("fa:16:3e:00:00:0c")
	macE = mac("fa:16:3e:00:00:0e")
	macX = mac("fa:16:3e:00:00:99") // nobody's
)

func fixture(t testing.TB, extra ...Rule) *Dataplane {
	d := openTest(t, "tapa", "tapb", "tapc", "tape", "up0")
	plugged, err := d.Apply(fixtureState(extra...))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plugged, []string{"a", "b", "c", "e"}) {
		t.Fatalf("plugged %v, want a b c e (tapz does not exist)", plugged)
	}
	return d
}

func fixtureState(extra ...Rule) Desired {
	pfx := netip.MustParsePrefix
	rules := []Rule{
		{Group: "web", Ingress: false, PortMin: -1, PortMax: -1},                                           // egress anywhere
		{Group: "web", Ingress: true, Proto: 6, PortMin: 22, PortMax: 22, Remote: pfx("10.0.0.0/24")},      // ssh from the subnet
		{Group: "web", Ingress: true, Proto: 6, PortMin: 1000, PortMax: 2000, Remote: pfx("0.0.0.0/0")},    // a port range
		{Group: "web", Ingress: true, Proto: 1, PortMin: 8, PortMax: -1, Remote: pfx("0.0.0.0/0")},         // echo requests
		{Group: "web", Ingress: true, Proto: 17, PortMin: 53, PortMax: 53, RemoteGroup: "web"},             // DNS from the group
		{Group: "closed", Ingress: true, Proto: 6, PortMin: 80, PortMax: 80, Remote: pfx("0.0.0.0/0")},     // no egress rule
		{Group: "web", Ingress: true, IPv6: true, PortMin: -1, PortMax: -1, Remote: pfx("::/0")},           // IPv6 only: lets no IPv4 in
		{Group: "web", Ingress: true, Proto: 6, PortMin: 443, PortMax: 443, Remote: pfx("192.168.0.0/16")}, // elsewhere
	}
	rules = append(rules, extra...)
	want := Desired{
		Uplink: "up0",
		Rules:  rules,
		Ports: []Port{
			{ID: "a", Device: "tapa", VLAN: 101, MAC: macA, Security: true, Groups: []string{"web"},
				Addrs: []netip.Prefix{pfx("10.0.0.10/32"), pfx("10.0.9.0/24")}, MACs: []net.HardwareAddr{mac("fa:16:3e:00:00:aa")}},
			{ID: "b", Device: "tapb", VLAN: 101, MAC: macB, Security: true, Groups: []string{"web"}, Addrs: []netip.Prefix{pfx("10.0.0.11/32")}},
			{ID: "c", Device: "tapc", VLAN: 102, MAC: macC, Security: true, Groups: []string{"web"}, Addrs: []netip.Prefix{pfx("10.0.0.12/32")}},
			{ID: "e", Device: "tape", VLAN: 101, MAC: macE, Security: true, Groups: []string{"closed"}, Addrs: []netip.Prefix{pfx("10.0.0.14/32")}},
			{ID: "gone", Device: "tapz", VLAN: 101, MAC: macX, Security: true},
		},
		Members: map[string][]netip.Prefix{"web": {pfx("10.0.0.10/32"), pfx("10.0.0.11/32"), pfx("10.0.0.12/32")}},
	}
	return want
}

func TestPortVerdicts(t *testing.T) {
	d := fixture(t)
	in := d.objs.PortIn
	ab := frame{src: macA, dst: macB}
	ba := frame{src: macB, dst: macA}
	bcast := mac("ff:ff:ff:ff:ff:ff")

	cases := []struct {
		name string
		dev  string
		pkt  []byte
		want string
	}{
		{"ssh from the subnet to b", "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 22), "REDIRECT [fwd_local]"},
		{"http to b: no rule", "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 80), "SHOT [drop_sg_ingress]"},
		{"port range low end", "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 1000), "REDIRECT [fwd_local]"},
		{"port range inside", "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 1536), "REDIRECT [fwd_local]"},
		{"port range high end", "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 2000), "REDIRECT [fwd_local]"},
		{"past the port range", "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 2001), "SHOT [drop_sg_ingress]"},
		{"443 from outside its remote prefix", "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 443), "SHOT [drop_sg_ingress]"},
		{"echo request", "tapa", ab.icmp("10.0.0.10", "10.0.0.11", 8, 0, 7), "REDIRECT [fwd_local]"},
		{"timestamp request: no rule", "tapa", ab.icmp("10.0.0.10", "10.0.0.11", 13, 0, 7), "SHOT [drop_sg_ingress]"},
		{"dns from a group member", "tapa", ab.udp("10.0.0.10", "10.0.0.11", 5353, 53), "REDIRECT [fwd_local]"},
		{"dns from an address pair outside the group", "tapa", ab.udp("10.0.9.5", "10.0.0.11", 5353, 53), "SHOT [drop_sg_ingress]"},
		{"new flow b to a on a closed port", "tapb", ba.tcp("10.0.0.11", "10.0.0.10", 22, 40001), "SHOT [drop_sg_ingress]"},
		{"reply of the allowed ssh flow", "tapb", ba.tcp("10.0.0.11", "10.0.0.10", 22, 40000), "REDIRECT [fwd_local]"},
		{"echo reply of the allowed ping", "tapb", ba.icmp("10.0.0.11", "10.0.0.10", 0, 0, 7), "REDIRECT [fwd_local]"},
		{"spoofed source MAC", "tapa", frame{src: macX, dst: macB}.tcp("10.0.0.10", "10.0.0.11", 40000, 22), "SHOT [drop_spoof_mac]"},
		{"allowed address pair MAC", "tapa", frame{src: mac("fa:16:3e:00:00:aa"), dst: macB}.tcp("10.0.0.10", "10.0.0.11", 40002, 22), "REDIRECT [fwd_local]"},
		{"spoofed source IP", "tapa", ab.tcp("10.0.0.99", "10.0.0.11", 40000, 22), "SHOT [drop_spoof_ip]"},
		{"spoofed source IP from a port with fixed IPs only", "tapb", ba.tcp("10.0.0.77", "10.0.0.10", 22, 40000), "SHOT [drop_spoof_ip]"},
		{"allowed address pair CIDR", "tapa", ab.tcp("10.0.9.7", "10.0.0.11", 40000, 1500), "REDIRECT [fwd_local]"},
		{"ARP from its own address floods", "tapa", frame{src: macA, dst: bcast}.arp("10.0.0.10", "10.0.0.11"), "REDIRECT [flood,fwd_uplink]"},
		{"ARP probe from 0.0.0.0", "tapa", frame{src: macA, dst: bcast}.arp("0.0.0.0", "10.0.0.10"), "REDIRECT [flood,fwd_uplink]"},
		{"spoofed ARP", "tapa", frame{src: macA, dst: bcast}.arp("10.0.0.11", "10.0.0.12"), "SHOT [drop_spoof_ip]"},
		{"unicast ARP reply to b", "tapa", ab.arp("10.0.0.10", "10.0.0.11"), "REDIRECT [fwd_local]"},
		{"DHCP discover goes to the node", "tapa", frame{src: macA, dst: bcast}.udp("0.0.0.0", "255.255.255.255", 68, 67), "OK [to_host]"},
		{"a port acting as DHCP server", "tapa", frame{src: macA, dst: bcast}.udp("10.0.0.10", "255.255.255.255", 67, 68), "SHOT [drop_dhcp_server]"},
		{"IPv4 broadcast", "tapa", frame{src: macA, dst: bcast}.udp("10.0.0.10", "10.0.0.255", 999, 999), "SHOT [drop_broadcast]"},
		{"other network's MAC leaves by the uplink", "tapa", frame{src: macA, dst: macC}.tcp("10.0.0.10", "10.0.0.12", 40000, 22), "REDIRECT [fwd_uplink]"},
		{"unknown MAC leaves by the uplink", "tapa", frame{src: macA, dst: macX}.tcp("10.0.0.10", "10.0.0.50", 40000, 22), "REDIRECT [fwd_uplink]"},
		{"no egress rule", "tape", frame{src: macE, dst: macB}.tcp("10.0.0.14", "10.0.0.11", 40000, 22), "SHOT [drop_sg_egress]"},
		{"to e's open port", "tapa", frame{src: macA, dst: macE}.tcp("10.0.0.10", "10.0.0.14", 40000, 80), "REDIRECT [fwd_local]"},
		{"IPv6 from a port without IPv6 addresses", "tapa", ab.tcp6("2001:db8::10", "2001:db8::11", 40000, 80), "SHOT [drop_spoof_ip]"},
		{"another ethertype from a secured port", "tapa", ab.eth(0x88b5, make([]byte, 40)), "SHOT [drop_ethertype]"},
		{"from a device that is no port", "up0", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 22), "SHOT [drop_no_port]"},
		{"IPv4 header length below 20", "tapa", ab.eth(0x0800, append([]byte{0x41}, make([]byte, 39)...)), "SHOT [drop_malformed]"},
	}
	for _, c := range cases {
		if got := d.run(t, in, c.dev, c.pkt).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestUplinkVerdicts(t *testing.T) {
	d := fixture(t)
	up := d.objs.UplinkIn
	tagged := frame{src: macX, dst: macB, vlan: 101}

	r := d.run(t, up, "up0", tagged.tcp("10.0.0.50", "10.0.0.11", 40000, 1500))
	if r.String() != "REDIRECT [from_uplink,fwd_local]" {
		t.Fatalf("tagged to b: %s", r)
	}
	untagged := frame{src: macX, dst: macB}.tcp("10.0.0.50", "10.0.0.11", 40000, 1500)
	if !bytes.Equal(r.out[:len(untagged)], untagged) {
		t.Errorf("the tag was not popped:\n got %x\nwant %x", r.out[:len(untagged)], untagged)
	}
	cases := []struct {
		name string
		pkt  []byte
		want string
	}{
		{"tagged, blocked by b's groups", tagged.tcp("10.0.0.50", "10.0.0.11", 40000, 80), "SHOT [drop_sg_ingress,from_uplink]"},
		{"ssh from outside the remote prefix", tagged.tcp("10.1.0.50", "10.0.0.11", 40000, 22), "SHOT [drop_sg_ingress,from_uplink]"},
		{"tag of another network than b's", frame{src: macX, dst: macB, vlan: 102}.tcp("10.0.0.50", "10.0.0.11", 40000, 1500), "SHOT [drop_no_fdb,from_uplink]"},
		{"tag of a network with no port here", frame{src: macX, dst: macB, vlan: 999}.tcp("10.0.0.50", "10.0.0.11", 40000, 1500), "OK []"},
		{"untagged: the node's own traffic", untagged, "OK []"},
		{"ARP broadcast floods locally only", frame{src: macX, dst: mac("ff:ff:ff:ff:ff:ff"), vlan: 101}.arp("10.0.0.50", "10.0.0.11"), "SHOT [flood,from_uplink]"},
	}
	for _, c := range cases {
		if got := d.run(t, up, "up0", c.pkt).String(); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

// TestVLANPush checks the frame that leaves for the uplink carries the
// network's tag: BPF_PROG_TEST_RUN shows the pushed tag in the frame only
// once a second tag is pushed over it, so the uplink program, fed what
// port_in sent, must find the port again.
func TestVLANRoundTrip(t *testing.T) {
	d := fixture(t)
	pkt := frame{src: macA, dst: macC}.tcp("10.0.0.10", "10.0.0.12", 40000, 22)
	if r := d.run(t, d.objs.PortIn, "tapa", pkt); r.String() != "REDIRECT [fwd_uplink]" {
		t.Fatalf("a to c: %s", r)
	}
	// On the other node, c's network 102 must not deliver a frame tagged
	// with a's network 101, and must deliver one tagged 102.
	if r := d.run(t, d.objs.UplinkIn, "up0", frame{src: macA, dst: macC, vlan: 101}.tcp("10.0.0.10", "10.0.0.12", 40000, 22)); r.String() != "SHOT [drop_no_fdb,from_uplink]" {
		t.Errorf("101-tagged frame to c: %s", r)
	}
	if r := d.run(t, d.objs.UplinkIn, "up0", frame{src: macA, dst: macC, vlan: 102}.tcp("10.0.0.10", "10.0.0.12", 40000, 22)); r.String() != "REDIRECT [from_uplink,fwd_local]" {
		t.Errorf("102-tagged frame to c: %s", r)
	}
}

// TestManyRulesSameVerdicts compiles 10,000 rules into b's policy and
// checks that the verdicts stay exact: rules are lookups, not a list.
func TestManyRulesSameVerdicts(t *testing.T) {
	var extra []Rule
	for i := 0; i < 10000; i++ {
		ip := netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)})
		extra = append(extra, Rule{Group: "web", Ingress: true, Proto: 6, PortMin: 3000 + i%5000, PortMax: 3000 + i%5000, Remote: netip.PrefixFrom(ip, 32)})
	}
	d := fixture(t, extra...)
	ab := frame{src: macA, dst: macB}
	if r := d.run(t, d.objs.PortIn, "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 22)); r.String() != "REDIRECT [fwd_local]" {
		t.Errorf("ssh with 10,000 more rules: %s", r)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 3005)); r.String() != "SHOT [drop_sg_ingress]" {
		t.Errorf("3005 from a, which only 172.16.0.5 may use: %s", r)
	}
	if n := len(d.cur.rules); n < 10000 {
		t.Errorf("%d rule keys, want at least 10,000", n)
	}
}

// TestRemovedRuleStopsFlows checks that removing a rule forgets the flows
// it allowed, and that re-applying the same state changes nothing.
func TestRemovedRuleStopsFlows(t *testing.T) {
	d := fixture(t)
	ab := frame{src: macA, dst: macB}
	ssh := ab.tcp("10.0.0.10", "10.0.0.11", 40000, 22)
	if r := d.run(t, d.objs.PortIn, "tapa", ssh); r.String() != "REDIRECT [fwd_local]" {
		t.Fatalf("ssh: %s", r)
	}
	want := fixtureState()
	var kept []Rule
	for _, r := range want.Rules {
		if !(r.Proto == 6 && r.PortMin == 22) {
			kept = append(kept, r)
		}
	}
	want.Rules = kept
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if r := d.run(t, d.objs.PortIn, "tapa", ssh); r.String() != "SHOT [drop_sg_ingress]" {
		t.Errorf("established ssh after its rule went: %s", r)
	}
}

// TestReopenKeepsForwarding closes the dataplane as a rackd restart does,
// opens it again on the same pins, and checks the links were adopted, the
// maps kept, flows remembered, and that the same Apply changes nothing.
func TestReopenKeepsForwarding(t *testing.T) {
	d := fixture(t)
	ab := frame{src: macA, dst: macB}
	if r := d.run(t, d.objs.PortIn, "tapa", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 22)); r.String() != "REDIRECT [fwd_local]" {
		t.Fatalf("ssh: %s", r)
	}
	before := d.cur
	cfg := d.cfg
	d.Close()

	d2, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Destroy() })
	if len(d2.links) != 5 {
		t.Errorf("adopted %d links, want 5 (four ports and the uplink)", len(d2.links))
	}
	if len(d2.cur.ports) != len(before.ports) || len(d2.cur.rules) != len(before.rules) || d2.cur.uplink != before.uplink {
		t.Errorf("reopened maps differ: %d ports, %d rules, uplink %d", len(d2.cur.ports), len(d2.cur.rules), d2.cur.uplink)
	}
	// The reply of the flow allowed before the restart still gets in.
	ba := frame{src: macB, dst: macA}
	if r := d2.run(t, d2.objs.PortIn, "tapb", ba.tcp("10.0.0.11", "10.0.0.10", 22, 40000)); r.String() != "REDIRECT [fwd_local]" {
		t.Errorf("reply after reopen: %s", r)
	}
	if _, err := d2.Apply(fixtureState()); err != nil {
		t.Fatal(err)
	}
	st, err := d2.Status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Ports) != 4 || st.Uplink == nil || !st.Uplink.Attached || st.Programs[0].Name != "port_in" {
		t.Errorf("status after reopen: %+v", st)
	}
	for _, p := range st.Ports {
		if !p.Attached {
			t.Errorf("port %s not attached after reopen", p.ID)
		}
	}
}

// BenchmarkPortIn times port_in on one packet through BPF_PROG_TEST_RUN,
// with 0 and 10,000 rules in the destination's policy: an established flow
// (conntrack hit) and a denied one (every rule lookup, every time). The
// packet enters on lo, made a port for the purpose: the kernel's test run
// delivers to lo when given no interface.
func BenchmarkPortIn(b *testing.B) {
	for _, rules := range []int{0, 10000} {
		var extra []Rule
		for i := 0; i < rules; i++ {
			ip := netip.AddrFrom4([4]byte{172, 16 + byte(i>>16), byte(i >> 8), byte(i)})
			extra = append(extra, Rule{Group: "web", Ingress: true, Proto: 6, PortMin: 3000 + i%5000, PortMax: 3000 + i%5000, Remote: netip.PrefixFrom(ip, 32)})
		}
		d := openTest(b, "tapa", "tapb", "tapc", "tape", "up0")
		want := fixtureState(extra...)
		want.Ports[0].Device = "lo"
		if _, err := d.Apply(want); err != nil {
			b.Fatal(err)
		}
		ab := frame{src: macA, dst: macB}
		for _, c := range []struct {
			name string
			pkt  []byte
			want uint32
		}{
			{"established", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 22), actRedirect},
			{"denied", ab.tcp("10.0.0.10", "10.0.0.11", 40000, 80), actShot},
		} {
			b.Run(fmt.Sprintf("rules=%d/%s", rules, c.name), func(b *testing.B) {
				err := d.inNetns(func() error {
					ret, per, err := d.objs.PortIn.Benchmark(c.pkt, b.N, b.ResetTimer)
					if err == nil && ret != c.want {
						err = fmt.Errorf("verdict %d, want %d", ret, c.want)
					}
					b.ReportMetric(float64(per.Nanoseconds()), "ns/packet")
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}

// TestClsactFallback attaches with clsact + cls_bpf, as on kernels without
// TCX: every port and the uplink get our filter, and a removed port loses
// it.
func TestClsactFallback(t *testing.T) {
	d := openTestConfig(t, Config{Clsact: true}, "tapa", "tapb", "tapc", "tape", "up0")
	want := fixtureState()
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Attach != "clsact" || st.Uplink == nil || !st.Uplink.Attached || len(st.Ports) != 4 {
		t.Fatalf("status: %+v", st)
	}
	filters := func(dev string) int {
		l, err := d.nl.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := d.nl.FilterList(l, netlink.HANDLE_MIN_INGRESS)
		if err != nil {
			t.Fatal(err)
		}
		return len(fs)
	}
	for _, dev := range []string{"tapa", "tapb", "tapc", "tape", "up0"} {
		if n := filters(dev); n != 1 {
			t.Errorf("%s has %d ingress filters, want 1", dev, n)
		}
	}
	want.Ports = want.Ports[1:] // a goes away
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if n := filters("tapa"); n != 0 {
		t.Errorf("removed port's device keeps %d filters", n)
	}
}

// TestDevicesStayQuiet checks the test devices have no IPv6: an IPv6
// device sends packets of its own (MLD, DAD, router solicitations) that
// enter the programs and move the counters the verdict tests compare
// around one packet, about one run in six.
func TestDevicesStayQuiet(t *testing.T) {
	d := fixture(t)
	for _, dev := range []string{"tapa", "tapap", "tapb", "tapbp", "tapc", "tapcp", "tape", "tapep", "up0", "up0p"} {
		l, err := d.nl.LinkByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := d.nl.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			t.Fatal(err)
		}
		if len(addrs) != 0 {
			t.Errorf("%s has IPv6 addresses %v: it will send packets of its own", dev, addrs)
		}
	}
}
