package dataplane

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// neutronDefault is the rules of a Neutron project's default group: out
// anywhere, in from the group's members, both families.
func neutronDefault(group string) []Rule {
	return []Rule{
		{Group: group, PortMin: -1, PortMax: -1},
		{Group: group, IPv6: true, PortMin: -1, PortMax: -1},
		{Group: group, Ingress: true, PortMin: -1, PortMax: -1, RemoteGroup: group},
		{Group: group, Ingress: true, IPv6: true, PortMin: -1, PortMax: -1, RemoteGroup: group},
	}
}

// TestSecurityGroupsIPv6Namespaces runs real IPv6 between guests in
// namespaces of their own behind secured ports of one dual-stack network:
// a and b in the default group, e in a group that lets nothing in.
// Neighbour discovery, ping and TCP go through the dataplane's rules and
// anti-spoofing as the guests' kernels send them.
func TestSecurityGroupsIPv6Namespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTest(t, "tapa", "tapb", "tape")
	ga := dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.Addr{})
	gb := dataplanetest.Guest(t, d.cfg.Netns, "tapb", macB, pfx("10.0.0.11/24"), netip.Addr{})
	ge := dataplanetest.Guest(t, d.cfg.Netns, "tape", macE, pfx("10.0.0.14/24"), netip.Addr{})
	dataplanetest.IPv6(t, ga, "tapap", pfx("2001:db8::10/64"))
	dataplanetest.IPv6(t, gb, "tapbp", pfx("2001:db8::11/64"))
	dataplanetest.IPv6(t, ge, "tapep", pfx("2001:db8::14/64"))

	want := Desired{
		Rules: append(neutronDefault("default"),
			Rule{Group: "closed", PortMin: -1, PortMax: -1},
			Rule{Group: "closed", IPv6: true, PortMin: -1, PortMax: -1}),
		Ports: []Port{
			{ID: "a", Device: "tapa", VLAN: 101, MAC: macA, Security: true, Groups: []string{"default"}, Addrs: []netip.Prefix{pfx("10.0.0.10/32"), pfx("2001:db8::10/128")}},
			{ID: "b", Device: "tapb", VLAN: 101, MAC: macB, Security: true, Groups: []string{"default"}, Addrs: []netip.Prefix{pfx("10.0.0.11/32"), pfx("2001:db8::11/128")}},
			{ID: "e", Device: "tape", VLAN: 101, MAC: macE, Security: true, Groups: []string{"closed"}, Addrs: []netip.Prefix{pfx("10.0.0.14/32"), pfx("2001:db8::14/128")}},
		},
		Members: map[string][]netip.Prefix{
			"default": {pfx("10.0.0.10/32"), pfx("2001:db8::10/128"), pfx("10.0.0.11/32"), pfx("2001:db8::11/128")},
			"closed":  {pfx("10.0.0.14/32"), pfx("2001:db8::14/128")},
		},
	}
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}

	if out, err := ping(t, ga, "-6", "2001:db8::11"); err != nil {
		t.Errorf("IPv6 ping from a to b in the default group: %v\n%s", err, out)
	}
	if out, err := ping(t, ga, "10.0.0.11"); err != nil {
		t.Errorf("IPv4 ping from a to b in the default group: %v\n%s", err, out)
	}

	// e's port opens to TCP only once a rule says so.
	serveEcho(t, ge, "[2001:db8::14]:8080")
	refused := func() bool {
		err := dataplanetest.In(t, ga, func() error {
			c, err := net.DialTimeout("tcp", "[2001:db8::14]:8080", time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		return err != nil
	}
	if !refused() {
		t.Errorf("a reached e's TCP 8080 over IPv6 without a rule")
	}
	want.Rules = append(want.Rules, Rule{Group: "closed", Ingress: true, IPv6: true, Proto: 6, PortMin: 8080, PortMax: 8080, Remote: pfx("2001:db8::/64")})
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if got := dialFrom(t, ga, "[2001:db8::14]:8080"); got != "2001:db8::10" {
		t.Errorf("e saw a's connection from %q, want 2001:db8::10", got)
	}
	// The IPv6 rule opens nothing over IPv4.
	serveEcho(t, ge, "10.0.0.14:8080")
	err := dataplanetest.In(t, ga, func() error {
		c, err := net.DialTimeout("tcp", "10.0.0.14:8080", time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		t.Errorf("a reached e's TCP 8080 over IPv4 through an IPv6 rule")
	}

	// a sends from an address that is not its port's.
	dataplanetest.IPv6(t, ga, "tapap", pfx("2001:db8::99/64"))
	before, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ping(t, ga, "-6", "-I", "2001:db8::99", "2001:db8::11"); err == nil {
		t.Errorf("ping from a spoofed IPv6 source got an answer:\n%s", out)
	}
	after, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	if after["drop_spoof_ip"] == before["drop_spoof_ip"] {
		t.Errorf("the spoofed pings were not dropped as spoofed (drop_spoof_ip stayed %d)", after["drop_spoof_ip"])
	}
}
