package dataplane

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/nclient6"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// TestDHCPv6Namespaces: d's subnet is dhcpv6-stateful, a's
// dhcpv6-stateless. d's DHCPv6 client, in its namespace, solicits and
// requests and gets its fixed address and the DNS server from the node; a
// asks for information only and gets the DNS server.
func TestDHCPv6Namespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	dns := netip.MustParseAddr("2001:db8::53")
	d := openTest(t, "tapa", "tapd", "up0")
	ga := dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.Addr{})
	gd := dataplanetest.Guest(t, d.cfg.Netns, "tapd", macD, pfx("10.0.1.20/24"), netip.Addr{})
	want := l3v6State()
	want.Ports[0].DHCP6 = &Lease6{DNS: []netip.Addr{dns}}
	want.Ports[1].DHCP6 = &Lease6{IP: netip.MustParseAddr("2001:db8:2::20"), DNS: []netip.Addr{dns}}
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	dataplanetest.IPv6(t, ga, "tapap")
	dataplanetest.IPv6(t, gd, "tapdp")

	// Each guest's client speaks from its link-local address: wait for it.
	for _, g := range []struct{ ns, dev string }{{ga, "tapap"}, {gd, "tapdp"}} {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			out, _ := ipIn(g.ns, "-6", "addr", "show", "dev", g.dev, "scope", "link")
			if strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no link-local address on %s:\n%s", g.dev, out)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := func(ns, dev string, fn func(c *nclient6.Client) error) {
		t.Helper()
		if err := dataplanetest.In(t, ns, func() error {
			c, err := nclient6.New(dev, nclient6.WithTimeout(time.Second), nclient6.WithRetry(5))
			if err != nil {
				return err
			}
			defer c.Close()
			return fn(c)
		}); err != nil {
			t.Fatalf("DHCPv6 in %s: %v", dev, err)
		}
	}

	var rep *dhcpv6.Message
	client(gd, "tapdp", func(c *nclient6.Client) error {
		adv, err := c.Solicit(ctx)
		if err != nil {
			return err
		}
		rep, err = c.Request(ctx, adv)
		return err
	})
	var got []string
	if ia := rep.Options.OneIANA(); ia != nil {
		for _, a := range ia.Options.Addresses() {
			got = append(got, a.IPv6Addr.String())
		}
	}
	if rep.Type() != dhcpv6.MessageTypeReply || len(got) != 1 || got[0] != "2001:db8:2::20" {
		t.Errorf("d's reply %s with addresses %v, want 2001:db8:2::20", rep.Type(), got)
	}
	if ds := rep.Options.DNS(); len(ds) != 1 || !ds[0].Equal(net.IP(dns.AsSlice())) {
		t.Errorf("d's DNS servers %v, want %s", ds, dns)
	}

	client(ga, "tapap", func(c *nclient6.Client) error {
		msg, err := dhcpv6.NewMessage()
		if err != nil {
			return err
		}
		msg.MessageType = dhcpv6.MessageTypeInformationRequest
		msg.AddOption(dhcpv6.OptClientID(&dhcpv6.DUIDLL{HWType: 1, LinkLayerAddr: macA}))
		msg.AddOption(dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer))
		rep, err = c.SendAndRead(ctx, nclient6.AllDHCPRelayAgentsAndServers, msg, nclient6.IsMessageType(dhcpv6.MessageTypeReply))
		return err
	})
	if ds := rep.Options.DNS(); len(ds) != 1 || !ds[0].Equal(net.IP(dns.AsSlice())) || rep.Options.OneIANA() != nil {
		t.Errorf("a's information reply: DNS %v, IA_NA %v; want %s and no address", ds, rep.Options.OneIANA(), dns)
	}
}
