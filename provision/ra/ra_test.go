package ra

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
	"github.com/rackstack/rackstack/dataplane/ndp"
	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestAdvertisesNoRouterNamespaces: on a veth between the segment's
// namespace (where the server runs, with no IPv6 address at all) and a
// host's, the host's kernel receives an advertisement at once, and
// another for its router solicitation; each says no default router, no
// prefix and no DHCPv6, from the server's MAC and link-local address, with
// hop limit 255 and a checksum the kernel accepted.
func TestAdvertisesNoRouterNamespaces(t *testing.T) {
	testenv.RequireRoot(t, "create network namespaces and send router advertisements in them")
	seg := dataplanetest.Netns(t)
	dataplanetest.Veths(t, seg, "prov0")
	hostMAC := net.HardwareAddr{0x52, 0x54, 0, 0x11, 0x22, 0x33}
	host := dataplanetest.Guest(t, seg, "prov0", hostMAC, netip.MustParsePrefix("10.9.0.10/24"), netip.Addr{})
	dataplanetest.IPv6(t, host, "prov0p")

	// The host's ICMPv6 socket, open before the first advertisement.
	var icmp int
	if err := dataplanetest.In(t, host, func() error {
		var err error
		if icmp, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(icmp, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(10 * time.Second))
		return unix.SetsockoptTimeval(icmp, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(icmp)

	var s *Server
	var srvMAC net.HardwareAddr
	if err := dataplanetest.In(t, seg, func() error {
		ifc, err := net.InterfaceByName("prov0")
		if err != nil {
			return err
		}
		srvMAC = ifc.HardwareAddr
		s, err = New(Config{Interface: "prov0", Interval: time.Hour, Log: slog.New(slog.NewTextHandler(t.Output(), nil))})
		return err
	}); err != nil {
		t.Fatalf("new: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	wantFrom := netip.AddrFrom16(ndp.LinkLocal([6]byte(srvMAC)))
	check := func(what string) {
		t.Helper()
		from, hops, msg := readRA(t, icmp)
		if from != wantFrom || hops != 255 {
			t.Fatalf("%s advertisement from %s with hop limit %d, want %s and 255", what, from, hops, wantFrom)
		}
		// Flags (M, O) 0 and router lifetime 0, then only the source
		// link-layer address option.
		want := append([]byte{ndp.TypeRouterAdvertisement, 0, msg[2], msg[3], 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1}, srvMAC...)
		if string(msg) != string(want) {
			t.Fatalf("%s advertisement\n%x\nwant\n%x", what, msg, want)
		}
	}
	check("unsolicited")

	// A solicitation, as iPXE sends it (from ::, no options); the interval
	// is an hour, so what answers is the solicitation's advertisement.
	if err := dataplanetest.In(t, host, func() error {
		ifc, err := net.InterfaceByName("prov0p")
		if err != nil {
			return err
		}
		return ndp.Send(ifc.Index, solicitation(hostMAC))
	}); err != nil {
		t.Fatal(err)
	}
	check("solicited")
}

// readRA returns the next router advertisement the socket receives.
func readRA(t *testing.T, fd int) (netip.Addr, int, []byte) {
	t.Helper()
	buf, oob := make([]byte, 1500), make([]byte, 128)
	for {
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
		if err != nil {
			t.Fatalf("no router advertisement: %v", err)
		}
		if n == 0 || buf[0] != ndp.TypeRouterAdvertisement {
			continue
		}
		hops := -1
		cms, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, cm := range cms {
			if cm.Header.Level == unix.IPPROTO_IPV6 && cm.Header.Type == unix.IPV6_HOPLIMIT && len(cm.Data) >= 4 {
				hops = int(cm.Data[0]) // host byte order: little-endian here
			}
		}
		sa, _ := from.(*unix.SockaddrInet6)
		if sa == nil {
			t.Fatalf("advertisement from %v", from)
		}
		return netip.AddrFrom16(sa.Addr), hops, append([]byte(nil), buf[:n]...)
	}
}

// solicitation is a router solicitation frame from mac and ::.
func solicitation(mac net.HardwareAddr) []byte {
	var src [16]byte
	dst := netip.MustParseAddr("ff02::2").As16()
	msg := []byte{ndp.TypeRouterSolicitation, 0, 0, 0, 0, 0, 0, 0}
	sum := ndp.Checksum(src, dst, msg)
	msg[2], msg[3] = byte(sum>>8), byte(sum)
	f := append([]byte{0x33, 0x33, 0, 0, 0, 2}, mac...)
	f = append(f, 0x86, 0xdd, 0x60, 0, 0, 0, 0, byte(len(msg)), 58, 255)
	return append(append(append(f, src[:]...), dst[:]...), msg...)
}
