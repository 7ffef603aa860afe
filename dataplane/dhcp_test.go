package dataplane

import (
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// TestDHCPReplyExtraOptions: a port's extra options are sent, replacing
// the lease's own of the same code, and PXE's next server and boot file
// fill the BOOTP fields.
func TestDHCPReplyExtraOptions(t *testing.T) {
	l := Lease{
		IP: netip.MustParsePrefix("10.0.0.5/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
		DNS: []netip.Addr{netip.MustParseAddr("10.0.0.2")},
		Extra: []DHCPOption{
			{Code: 66, Value: []byte("10.0.0.9")},
			{Code: 6, Value: []byte{10, 0, 0, 3}},
		},
		NextServer: netip.MustParseAddr("10.0.0.9"), BootFile: "pxelinux.0",
	}
	disc, err := dhcpv4.NewDiscovery(mac("fa:16:3e:00:00:05"))
	if err != nil {
		t.Fatal(err)
	}
	offer, err := reply(disc, l)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(offer.Options.Get(dhcpv4.OptionTFTPServerName)); got != "10.0.0.9" {
		t.Errorf("option 66: %q", got)
	}
	if dns := offer.DNS(); len(dns) != 1 || !dns[0].Equal(net.IPv4(10, 0, 0, 3)) {
		t.Errorf("DNS %v, want the extra option's 10.0.0.3 alone", dns)
	}
	if !offer.ServerIPAddr.Equal(net.IPv4(10, 0, 0, 9)) || offer.BootFileName != "pxelinux.0" {
		t.Errorf("siaddr %s file %q", offer.ServerIPAddr, offer.BootFileName)
	}
}

func TestDHCPReply(t *testing.T) {
	l := Lease{
		IP: netip.MustParsePrefix("10.0.0.5/24"), Gateway: netip.MustParseAddr("10.0.0.1"),
		DNS:      []netip.Addr{netip.MustParseAddr("10.0.0.2")},
		Routes:   []Route{{Dst: netip.MustParsePrefix("192.168.0.0/16"), Nexthop: netip.MustParseAddr("10.0.0.254")}},
		Hostname: "host-10-0-0-5", MTU: 1450,
	}
	hw := mac("fa:16:3e:00:00:05")
	disc, err := dhcpv4.NewDiscovery(hw)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := reply(disc, l)
	if err != nil {
		t.Fatal(err)
	}
	if offer.MessageType() != dhcpv4.MessageTypeOffer || !offer.YourIPAddr.Equal(net.IPv4(10, 0, 0, 5)) {
		t.Fatalf("offer: %s", offer.Summary())
	}
	ones, _ := offer.SubnetMask().Size()
	if ones != 24 || !offer.Router()[0].Equal(net.IPv4(10, 0, 0, 1)) || !offer.DNS()[0].Equal(net.IPv4(10, 0, 0, 2)) ||
		offer.HostName() != "host-10-0-0-5" || !offer.ServerIdentifier().Equal(net.IPv4(10, 0, 0, 1)) {
		t.Errorf("offer options: %s", offer.Summary())
	}
	if routes := offer.ClasslessStaticRoute(); len(routes) != 1 || routes[0].Dest.String() != "192.168.0.0/16" {
		t.Errorf("routes: %v", routes)
	}
	if mtu := offer.Options.Get(dhcpv4.OptionInterfaceMTU); len(mtu) != 2 || int(mtu[0])<<8|int(mtu[1]) != 1450 {
		t.Errorf("mtu option %v", mtu)
	}
	req, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		t.Fatal(err)
	}
	if ack, err := reply(req, l); err != nil || ack.MessageType() != dhcpv4.MessageTypeAck || !ack.YourIPAddr.Equal(net.IPv4(10, 0, 0, 5)) {
		t.Fatalf("ack: %v %v", ack, err)
	}
	// A client asking for another address (say, from an old lease) is told no.
	req.UpdateOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 0, 9)))
	if nak, err := reply(req, l); err != nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Fatalf("request for another address: %v %v", nak, err)
	}
	rel, _ := dhcpv4.New(dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease), dhcpv4.WithHwAddr(hw))
	if r, err := reply(rel, l); r != nil || err != nil {
		t.Errorf("release got a reply: %v %v", r, err)
	}
	// No gateway: the server speaks as the subnet's first address.
	l.Gateway = netip.Addr{}
	if got := serverID(l); !got.Equal(net.IPv4(10, 0, 0, 1)) {
		t.Errorf("server id without gateway: %s", got)
	}
}
