package dhcp

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/vishvananda/netlink"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func scriptURL(mac net.HardwareAddr) string {
	return "http://10.9.0.1:8069/boot.ipxe?mac=" + mac.String()
}

// What the firmware and iPXE put in their DISCOVERs.
var (
	biosPXE = []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 0}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 2, 1}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, append([]byte{0}, bytes.Repeat([]byte{0xab}, 16)...)),
	}
	uefiPXE = []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")),
		dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 7}),
		dhcpv4.WithGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 3, 16}),
	}
	// Some UEFI firmware says 9 (EFI x86-64) and only in the vendor class.
	uefi9VendorOnly = []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00009:UNDI:003016")),
	}
	// iPXE (QEMU's NIC ROM, or undionly.kpxe once loaded) sends the
	// firmware's vendor class plus user class "iPXE", unencoded.
	inIPXE = []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 0}),
		dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE")),
	}
	arm64PXE = []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00011:UNDI:003000")),
		dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 11}),
	}
	// An ordinary client (udhcpc, an installed OS) names no boot class.
	ordinary = []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("udhcp 1.36.1")),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer),
	}
)

func discover(t *testing.T, c *testClient, mods []dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	p, err := dhcpv4.NewDiscovery(c.mac, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkBootOffer checks what PXE firmware needs in an answer that points
// it at file on the server.
func checkBootOffer(t *testing.T, resp *dhcpv4.DHCPv4, srv netip.Addr, file string) {
	t.Helper()
	ip := net.IP(srv.AsSlice())
	if resp.BootFileName != file {
		t.Errorf("boot file %q, want %q", resp.BootFileName, file)
	}
	if !resp.ServerIPAddr.Equal(ip) {
		t.Errorf("next-server %s, want %s", resp.ServerIPAddr, ip)
	}
	if sid := resp.ServerIdentifier(); !sid.Equal(ip) {
		t.Errorf("server identifier %s, want %s", sid, ip)
	}
	if v := resp.ClassIdentifier(); v != "PXEClient" {
		t.Errorf("option 60 %q, want PXEClient", v)
	}
	if v := resp.GetOneOption(dhcpv4.OptionVendorSpecificInformation); !bytes.Equal(v, []byte{6, 1, 8, 255}) {
		t.Errorf("option 43 %v, want discovery control 8 (boot the file in the header)", v)
	}
}

func TestProxyBootFileByClient(t *testing.T) {
	seg := newSegment(t)
	seg.serve(t, Config{})
	for name, tc := range map[string]struct {
		mods []dhcpv4.Modifier
		mac  string
		want string
	}{
		"bios":               {biosPXE, "52:54:00:00:00:01", BIOSBoot},
		"uefi":               {uefiPXE, "52:54:00:00:00:02", UEFIBoot},
		"uefi arch 9 vendor": {uefi9VendorOnly, "52:54:00:00:00:03", UEFIBoot},
		"ipxe":               {inIPXE, "52:54:00:00:00:04", "http://10.9.0.1:8069/boot.ipxe?mac=52:54:00:00:00:04"},
	} {
		t.Run(name, func(t *testing.T) {
			c := seg.client(t, tc.mac)
			req := discover(t, c, tc.mods)
			offer := c.exchange(t, req, dhcpv4.MessageTypeOffer)
			checkBootOffer(t, offer, seg.srvIP, tc.want)
			if !offer.YourIPAddr.IsUnspecified() {
				t.Errorf("proxy offer gives address %s; the site's server does that", offer.YourIPAddr)
			}
			if offer.TransactionID != req.TransactionID {
				t.Errorf("xid %s, want %s", offer.TransactionID, req.TransactionID)
			}
			if guid := req.GetOneOption(dhcpv4.OptionClientMachineIdentifier); guid != nil &&
				!bytes.Equal(offer.GetOneOption(dhcpv4.OptionClientMachineIdentifier), guid) {
				t.Errorf("client UUID (option 97) not echoed")
			}
		})
	}
}

func TestProxyAnswersOnlyPXEClients(t *testing.T) {
	seg := newSegment(t)
	seg.serve(t, Config{Mode: Proxy})
	c := seg.client(t, "52:54:00:00:01:01")
	c.silence(t, discover(t, c, ordinary))
	c.silence(t, discover(t, c, nil))
	// A PXE client we have no boot file for is left to others too.
	c.silence(t, discover(t, c, arm64PXE))
	// The same server answers the same MAC once it is a PXE client.
	offer := c.exchange(t, discover(t, c, biosPXE), dhcpv4.MessageTypeOffer)
	checkBootOffer(t, offer, seg.srvIP, BIOSBoot)
	// The REQUEST for the site server's offer is not ours to answer.
	req, err := dhcpv4.NewDiscovery(c.mac, append(biosPXE,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 9, 0, 254))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(10, 9, 0, 77))))...)
	if err != nil {
		t.Fatal(err)
	}
	c.silence(t, req)
	// Firmware that took our offer and requests from us gets the file.
	req, err = dhcpv4.NewDiscovery(c.mac, append(biosPXE,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(seg.srvIP.AsSlice()))))...)
	if err != nil {
		t.Fatal(err)
	}
	checkBootOffer(t, c.exchange(t, req, dhcpv4.MessageTypeAck), seg.srvIP, BIOSBoot)
}

// TestAnswersOnlyOnItsInterface: a PXE client on another link of the same
// host (a tenant network, say) is not answered.
func TestAnswersOnlyOnItsInterface(t *testing.T) {
	seg := newSegment(t)
	other := &segment{srv: seg.srv, cli: seg.cli, srvIf: "other0", cliIf: "othernode0", srvIP: netip.MustParseAddr("10.8.0.1")}
	other.makeLink(t)
	seg.serve(t, Config{})
	elsewhere := other.client(t, "52:54:00:00:07:01")
	elsewhere.silence(t, discover(t, elsewhere, biosPXE))
	here := seg.client(t, "52:54:00:00:07:02")
	checkBootOffer(t, here.exchange(t, discover(t, here, biosPXE), dhcpv4.MessageTypeOffer), seg.srvIP, BIOSBoot)
}

// TestProxyBootServerRequest is the second half of proxyDHCP: a client
// that has its address from the site's server asks us on port 4011, from
// that address, for its boot file (iPXE always does this).
func TestProxyBootServerRequest(t *testing.T) {
	seg := newSegment(t)
	seg.serve(t, Config{})
	clientIP := netip.MustParseAddr("10.9.0.77")
	h, err := netlink.NewHandleAt(seg.cli)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	link, err := h.LinkByName(seg.cliIf)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr(clientIP.String() + "/24")
	if err := h.AddrAdd(link, a); err != nil {
		t.Fatal(err)
	}
	var conn *net.UDPConn
	in(t, seg.cli, func() {
		conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IP(clientIP.AsSlice()), Port: dhcpv4.ClientPort})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mac, _ := net.ParseMAC("52:54:00:00:02:01")
	for name, tc := range map[string]struct {
		mods []dhcpv4.Modifier
		want string
	}{
		"uefi": {uefiPXE, UEFIBoot},
		"ipxe": {inIPXE, scriptURL(mac)},
	} {
		t.Run(name, func(t *testing.T) {
			req, err := dhcpv4.NewDiscovery(mac, append(tc.mods,
				dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
				dhcpv4.WithClientIP(net.IP(clientIP.AsSlice())),
				dhcpv4.WithBroadcast(false),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(seg.srvIP.AsSlice()))))...)
			if err != nil {
				t.Fatal(err)
			}
			dst := &net.UDPAddr{IP: net.IP(seg.srvIP.AsSlice()), Port: PXEPort}
			ack := readReply(t, conn, dst, req)
			if ack.MessageType() != dhcpv4.MessageTypeAck {
				t.Fatalf("reply is %s, want ACK", ack.MessageType())
			}
			checkBootOffer(t, ack, seg.srvIP, tc.want)
			if !ack.ClientIPAddr.Equal(net.IP(clientIP.AsSlice())) {
				t.Errorf("ciaddr %s, want %s", ack.ClientIPAddr, clientIP)
			}
		})
	}
}

// readReply sends req to dst from conn and reads the reply with its xid,
// resending a few times as a client would.
func readReply(t *testing.T, conn *net.UDPConn, dst *net.UDPAddr, req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	t.Helper()
	buf := make([]byte, 1500)
	for range 5 {
		if _, err := conn.WriteToUDP(req.ToBytes(), dst); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				break // resend
			}
			resp, err := dhcpv4.FromBytes(buf[:n])
			if err == nil && resp.OpCode == dhcpv4.OpcodeBootReply && resp.TransactionID == req.TransactionID {
				return resp
			}
		}
	}
	t.Fatalf("no reply from %s", dst)
	return nil
}

func fullConfig(t *testing.T, dir string, start, end string) Config {
	return Config{
		Mode:     Full,
		Range:    Range{Start: netip.MustParseAddr(start), End: netip.MustParseAddr(end)},
		Router:   netip.MustParseAddr("10.9.0.254"),
		DNS:      []netip.Addr{netip.MustParseAddr("10.9.0.53")},
		Lease:    10 * time.Minute,
		LeaseDir: dir,
	}
}

// lease runs DISCOVER-OFFER-REQUEST-ACK for c with mods and returns the ACK.
func lease(t *testing.T, c *testClient, mods []dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l, err := c.Request(ctx, mods...)
	if err != nil {
		t.Fatalf("lease for %s: %v", c.mac, err)
	}
	return l.ACK
}

func TestFullModeAnswersEveryClient(t *testing.T) {
	seg := newSegment(t)
	seg.serve(t, fullConfig(t, t.TempDir(), "10.9.0.100", "10.9.0.110"))

	plain := seg.client(t, "52:54:00:00:03:01")
	ack := lease(t, plain, ordinary)
	got := addr(ack.YourIPAddr)
	if !netip.MustParseAddr("10.9.0.100").Less(got.Next()) || netip.MustParseAddr("10.9.0.110").Less(got) {
		t.Errorf("address %s is outside the range", got)
	}
	if m := ack.SubnetMask(); m.String() != net.CIDRMask(24, 32).String() {
		t.Errorf("netmask %s, want /24", m)
	}
	if r := ack.Router(); len(r) != 1 || !r[0].Equal(net.IPv4(10, 9, 0, 254)) {
		t.Errorf("router %v, want 10.9.0.254", r)
	}
	if d := ack.DNS(); len(d) != 1 || !d[0].Equal(net.IPv4(10, 9, 0, 53)) {
		t.Errorf("dns %v, want 10.9.0.53", d)
	}
	if lt := ack.IPAddressLeaseTime(0); lt != 10*time.Minute {
		t.Errorf("lease time %s, want 10m", lt)
	}
	if ack.BootFileName != "" {
		t.Errorf("an ordinary client was given boot file %q", ack.BootFileName)
	}

	pxe := seg.client(t, "52:54:00:00:03:02")
	offer := pxe.exchange(t, discover(t, pxe, uefiPXE), dhcpv4.MessageTypeOffer)
	checkBootOffer(t, offer, seg.srvIP, UEFIBoot)
	if offer.YourIPAddr.IsUnspecified() || offer.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Errorf("PXE client offered %s beside %s's %s", offer.YourIPAddr, plain.mac, ack.YourIPAddr)
	}
	pack := lease(t, pxe, uefiPXE)
	checkBootOffer(t, pack, seg.srvIP, UEFIBoot)
	if !pack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Errorf("acked %s after offering %s", pack.YourIPAddr, offer.YourIPAddr)
	}

	// The same MAC asking again gets the same address.
	again := lease(t, plain, ordinary)
	if !again.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Errorf("second lease for %s is %s, first was %s", plain.mac, again.YourIPAddr, ack.YourIPAddr)
	}
}

// TestFullModeLeasesSurviveRestart: two leases fill a two-address range;
// after a restart both clients keep their addresses and a third finds the
// range exhausted (a server that forgot would hand it an address in use),
// until one of them releases its address.
func TestFullModeLeasesSurviveRestart(t *testing.T) {
	seg := newSegment(t)
	dir := t.TempDir()
	cfg := fullConfig(t, dir, "10.9.0.100", "10.9.0.101")
	stop := seg.serve(t, cfg)
	a, b, c := seg.client(t, "52:54:00:00:04:01"), seg.client(t, "52:54:00:00:04:02"), seg.client(t, "52:54:00:00:04:03")
	ackA, ackB := lease(t, a, ordinary), lease(t, b, biosPXE)
	if ackA.YourIPAddr.Equal(ackB.YourIPAddr) {
		t.Fatalf("both clients got %s", ackA.YourIPAddr)
	}
	c.silence(t, discover(t, c, ordinary))
	stop()

	seg.serve(t, cfg)
	c.silence(t, discover(t, c, ordinary))
	offerA := a.exchange(t, discover(t, a, ordinary), dhcpv4.MessageTypeOffer)
	if !offerA.YourIPAddr.Equal(ackA.YourIPAddr) {
		t.Errorf("after restart %s is offered %s, had %s", a.mac, offerA.YourIPAddr, ackA.YourIPAddr)
	}
	if again := lease(t, b, biosPXE); !again.YourIPAddr.Equal(ackB.YourIPAddr) {
		t.Errorf("after restart %s got %s, had %s", b.mac, again.YourIPAddr, ackB.YourIPAddr)
	}

	rel, err := dhcpv4.NewReleaseFromACK(ackA)
	if err != nil {
		t.Fatal(err)
	}
	a.send(t, rel)
	if got := lease(t, c, ordinary); !got.YourIPAddr.Equal(ackA.YourIPAddr) {
		t.Errorf("after %s released %s, %s got %s", a.mac, ackA.YourIPAddr, c.mac, got.YourIPAddr)
	}
}

// TestFullModeDecline: a client that finds its address in use declines it
// and is given another; the declined address is not handed out again.
func TestFullModeDecline(t *testing.T) {
	seg := newSegment(t)
	seg.serve(t, fullConfig(t, t.TempDir(), "10.9.0.100", "10.9.0.101"))
	a, b := seg.client(t, "52:54:00:00:05:01"), seg.client(t, "52:54:00:00:05:02")
	first := lease(t, a, ordinary)
	decline, err := dhcpv4.New(
		dhcpv4.WithHwAddr(a.mac),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(first.YourIPAddr)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(first.ServerIdentifier())),
	)
	if err != nil {
		t.Fatal(err)
	}
	a.send(t, decline)
	second := lease(t, a, ordinary)
	if second.YourIPAddr.Equal(first.YourIPAddr) {
		t.Fatalf("declined address %s handed out again", first.YourIPAddr)
	}
	// The range is now the declined address and a's: nothing for b.
	b.silence(t, discover(t, b, ordinary))
}

// TestFullModeNaksAnotherClientsAddress: a client asking for an address
// held by another client is refused, so no address is leased twice.
func TestFullModeNaksAnotherClientsAddress(t *testing.T) {
	seg := newSegment(t)
	seg.serve(t, fullConfig(t, t.TempDir(), "10.9.0.100", "10.9.0.110"))
	a, b := seg.client(t, "52:54:00:00:06:01"), seg.client(t, "52:54:00:00:06:02")
	ackA := lease(t, a, ordinary)
	req, err := dhcpv4.NewDiscovery(b.mac, append(ordinary,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ackA.YourIPAddr)))...)
	if err != nil {
		t.Fatal(err)
	}
	b.exchange(t, req, dhcpv4.MessageTypeNak)
	// And one for a free address in the range is granted (INIT-REBOOT).
	free := netip.MustParseAddr("10.9.0.109")
	req, err = dhcpv4.NewDiscovery(b.mac, append(ordinary,
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IP(free.AsSlice()))))...)
	if err != nil {
		t.Fatal(err)
	}
	if ack := b.exchange(t, req, dhcpv4.MessageTypeAck); addr(ack.YourIPAddr) != free {
		t.Errorf("acked %s, asked for %s", ack.YourIPAddr, free)
	}
}
