package dataplane

import "testing"

// TestExternalIPv6OnUplinkVLAN: the external network of ext6State on VLAN
// 300 of the uplink carries IPv6 as an untagged one does: uplink_in
// answers neighbour solicitations and pings for r6's gateway address on
// VLAN 300, learns the outside's MAC there, takes what comes in to d's
// address to d and routes d's packets out; another VLAN and the untagged
// wire get nothing. The tags pushed on what leaves are skb metadata,
// which BPF_PROG_TEST_RUN does not give back: TestExternalIPv6OnUplinkVLANNamespaces
// sees them on the wire.
func TestExternalIPv6OnUplinkVLAN(t *testing.T) {
	d := openTest(t, "tapa", "tapd", "up0")
	want := ext6State(macExt)
	want.Externals[0].Device, want.Externals[0].VLAN = "up0", 300
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	ns := func(vlan uint16) []byte {
		return frame{src: macG, dst: mac("33:33:ff:00:00:02"), vlan: vlan}.nd6(135, "2001:db8:ff::1", "ff02::1:ff00:2", "2001:db8:ff::2")
	}
	dOut := frame{src: macD, dst: macR2}.tcp6("2001:db8:2::20", "2001:db8:ff::1", 40000, 443)
	for _, c := range []struct {
		name, dev string
		pkt       []byte
		want      string
	}{
		{"d out before the outside's MAC is known", "tapd", dOut, "SHOT [drop_no_neigh]"},
		{"solicitation for the gateway address on VLAN 301", "up0", ns(301), "OK []"},
		{"solicitation for the gateway address untagged", "up0", ns(0), "OK []"},
		{"solicitation for the gateway address on VLAN 300", "up0", ns(300), "REDIRECT [arp_reply]"},
		{"ping the gateway address on VLAN 300", "up0", frame{src: macG, dst: macExt, vlan: 300}.icmp6("2001:db8:99::1", "2001:db8:ff::2", 128, 0, 7), "REDIRECT [icmp_reply]"},
		{"d out to the outside", "tapd", dOut, "REDIRECT [fwd_routed]"},
		{"in to d's ssh on VLAN 300", "up0", frame{src: macG, dst: macExt, vlan: 300}.tcp6("2001:db8:99::1", "2001:db8:2::20", 40000, 22), "REDIRECT [fwd_local,fwd_routed]"},
		{"in to d's ssh on VLAN 301", "up0", frame{src: macG, dst: macExt, vlan: 301}.tcp6("2001:db8:99::1", "2001:db8:2::20", 40000, 22), "OK []"},
	} {
		prog := d.objs.PortIn
		if c.dev == "up0" {
			prog = d.objs.UplinkIn
		}
		r := d.run(t, prog, c.dev, c.pkt)
		if r.String() != c.want {
			t.Errorf("%s: %s, want %s", c.name, r, c.want)
		}
	}
}
