package dataplane

import (
	"net/netip"
	"testing"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// TestAddressGroupNamespaces: e lets TCP 8080 in only from an address
// group's CIDRs. While the group is empty a's connection is refused, once
// it holds a's subnet it gets through, and when the addresses change to
// another range Apply recompiles e's rules and a is refused again (its
// tracked flows forgotten with the rule that allowed them).
func TestAddressGroupNamespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTest(t, "tapa", "tape")
	ga := dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.Addr{})
	ge := dataplanetest.Guest(t, d.cfg.Netns, "tape", macE, pfx("10.0.0.14/24"), netip.Addr{})
	serveEcho(t, ge, "10.0.0.14:8080")
	state := func(addrs ...netip.Prefix) Desired {
		return Desired{
			Rules: append(neutronDefault("default"),
				Rule{Group: "ag", PortMin: -1, PortMax: -1},
				Rule{Group: "ag", Ingress: true, Proto: 6, PortMin: 8080, PortMax: 8080, RemoteAddressGroup: "office"}),
			Ports: []Port{
				{ID: "a", Device: "tapa", VLAN: 101, MAC: macA, Security: true, Groups: []string{"default"}, Addrs: []netip.Prefix{pfx("10.0.0.10/32")}},
				{ID: "e", Device: "tape", VLAN: 101, MAC: macE, Security: true, Groups: []string{"ag"}, Addrs: []netip.Prefix{pfx("10.0.0.14/32")}},
			},
			Members:       map[string][]netip.Prefix{"default": {pfx("10.0.0.10/32")}, "ag": {pfx("10.0.0.14/32")}},
			AddressGroups: map[string][]netip.Prefix{"office": addrs},
		}
	}
	steps := []struct {
		name  string
		addrs []netip.Prefix
		open  bool
	}{
		{"empty group", nil, false},
		{"a's subnet and an IPv6 range", []netip.Prefix{pfx("10.0.0.0/28"), pfx("2001:db8::/64")}, true},
		{"another range", []netip.Prefix{pfx("10.0.0.128/25")}, false},
		{"a's address", []netip.Prefix{pfx("10.0.0.10/32")}, true},
	}
	for _, st := range steps {
		if _, err := d.Apply(state(st.addrs...)); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		err := dialErr(t, ga, "10.0.0.14:8080")
		if st.open && err != nil {
			t.Errorf("%s: a could not connect to e:8080: %v", st.name, err)
		}
		if !st.open && err == nil {
			t.Errorf("%s: a connected to e:8080, want refused", st.name)
		}
	}
}

// TestStatelessGroupNamespaces: e connects out to a's TCP 8080 and pings
// it, with egress open and no ingress rule. In a stateful group the
// replies get in by conntrack; in a stateless one (Neutron's stateful:
// false) they are dropped, until a rule lets in what a sends.
func TestStatelessGroupNamespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTest(t, "tapa", "tape")
	ga := dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.Addr{})
	ge := dataplanetest.Guest(t, d.cfg.Netns, "tape", macE, pfx("10.0.0.14/24"), netip.Addr{})
	serveEcho(t, ga, "10.0.0.10:8080")
	state := func(stateless bool, replies ...Rule) Desired {
		rules := []Rule{
			{Group: "srv", PortMin: -1, PortMax: -1},
			{Group: "srv", Ingress: true, PortMin: -1, PortMax: -1, Remote: pfx("10.0.0.0/24")},
			{Group: "g", PortMin: -1, PortMax: -1},
		}
		return Desired{
			Rules: append(rules, replies...),
			Ports: []Port{
				{ID: "a", Device: "tapa", VLAN: 101, MAC: macA, Security: true, Groups: []string{"srv"}, Addrs: []netip.Prefix{pfx("10.0.0.10/32")}},
				{ID: "e", Device: "tape", VLAN: 101, MAC: macE, Security: true, Groups: []string{"g"}, Stateless: stateless, Addrs: []netip.Prefix{pfx("10.0.0.14/32")}},
			},
		}
	}
	check := func(name string, open bool) {
		t.Helper()
		err := dialErr(t, ge, "10.0.0.10:8080")
		if open && err != nil {
			t.Errorf("%s: e could not connect to a:8080: %v", name, err)
		}
		if !open && err == nil {
			t.Errorf("%s: e connected to a:8080, want its replies dropped", name)
		}
		out, err := ping(t, ge, "10.0.0.10")
		if open && err != nil {
			t.Errorf("%s: e's ping to a got no reply:\n%s", name, out)
		}
		if !open && err == nil {
			t.Errorf("%s: e's ping to a got a reply, want it dropped:\n%s", name, out)
		}
	}

	if _, err := d.Apply(state(false)); err != nil {
		t.Fatal(err)
	}
	check("stateful", true)

	if _, err := d.Apply(state(true)); err != nil {
		t.Fatal(err)
	}
	before, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	check("stateless without a rule for replies", false)
	after, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	if after["drop_sg_ingress"] == before["drop_sg_ingress"] {
		t.Errorf("stateless: nothing was dropped by e's ingress groups")
	}

	// The replies' own rules: TCP from a's port 8080 is matched by its
	// destination port (e's ephemeral one), so the rule names a's address;
	// echo replies are ICMP type 0.
	if _, err := d.Apply(state(true,
		Rule{Group: "g", Ingress: true, Proto: 6, PortMin: -1, PortMax: -1, Remote: pfx("10.0.0.10/32")},
		Rule{Group: "g", Ingress: true, Proto: 1, PortMin: 0, PortMax: -1, Remote: pfx("10.0.0.10/32")})); err != nil {
		t.Fatal(err)
	}
	check("stateless with rules for the replies", true)
}
