// Package ra answers IPv6 router solicitations on a provisioning segment
// that Rackstack owns (full DHCP mode) with a router advertisement of
// router lifetime 0: no default router, no prefix, no DHCPv6 flags.
//
// Why: iPXE, the firmware's and QEMU's NIC ROM, waits for an IPv6 router
// before it boots, and with none on the segment that wait lasts about 16 s
// and polls the NIC without halting the CPU (provision/README.md has the
// figures). An advertisement that offers nothing still ends the wait at
// once, and changes nothing for any host on the segment. On the site's
// network (proxy mode) the routers are the site's, and this server never
// runs there.
package ra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/dataplane/ndp"
)

// DefaultInterval is how often an unsolicited advertisement goes out,
// for a host whose solicitation was lost (a bridge port still learning):
// RFC 4861 allows no less than 3 s between them.
const DefaultInterval = 10 * time.Second

// Config is one segment's advertiser.
type Config struct {
	Interface string
	Interval  time.Duration // 0: DefaultInterval
	Log       *slog.Logger
}

// Server advertises on one interface. New opens its socket (in the
// caller's network namespace); Serve answers until its context ends.
type Server struct {
	cfg     Config
	ifindex int
	fd      int
	frame   []byte
}

// allRouters is the MAC of ff02::2, where solicitations go: joined so that
// a NIC's multicast filter passes them.
var allRouters = [6]byte{0x33, 0x33, 0, 0, 0, 2}

// New opens a packet socket for IPv6 on cfg.Interface and builds the
// advertisement, from the interface's MAC and its link-local address (the
// MAC's EUI-64 one when it has none).
func New(cfg Config) (*Server, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ifc, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("find interface %s: %w", cfg.Interface, err)
	}
	if len(ifc.HardwareAddr) != 6 {
		return nil, fmt.Errorf("advertise a router on %s: no Ethernet address", cfg.Interface)
	}
	ra := ndp.RA{MAC: [6]byte(ifc.HardwareAddr)}
	ra.LLA = ndp.LinkLocal(ra.MAC)
	if addrs, err := ifc.Addrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
					ra.LLA = ip.As16()
					break
				}
			}
		}
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IPV6)))
	if err != nil {
		return nil, fmt.Errorf("open packet socket on %s: %w", cfg.Interface, err)
	}
	s := &Server{cfg: cfg, ifindex: ifc.Index, fd: fd, frame: ra.Frame()}
	if err := s.setup(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open packet socket on %s: %w", cfg.Interface, err)
	}
	return s, nil
}

func (s *Server) setup() error {
	if err := unix.Bind(s.fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: s.ifindex}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	mr := unix.PacketMreq{Ifindex: int32(s.ifindex), Type: unix.PACKET_MR_MULTICAST, Alen: 6}
	copy(mr.Address[:], allRouters[:])
	if err := unix.SetsockoptPacketMreq(s.fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mr); err != nil {
		return fmt.Errorf("join ff02::2: %w", err)
	}
	// The read loop wakes this often to see whether its context ended.
	tv := unix.NsecToTimeval(int64(200 * time.Millisecond))
	if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("set receive timeout: %w", err)
	}
	return nil
}

// Serve advertises once, then answers every solicitation and advertises
// again every Interval, until ctx ends; it closes the socket and returns
// nil then, or an error when the socket fails.
func (s *Server) Serve(ctx context.Context) error {
	defer s.Close()
	s.cfg.Log.Info("advertising no router on the provisioning segment, so that iPXE stops waiting for one", "interface", s.cfg.Interface)
	buf := make([]byte, 1600)
	next := time.Now()
	for ctx.Err() == nil {
		if now := time.Now(); !now.Before(next) {
			s.advertise("unsolicited")
			next = now.Add(s.cfg.Interval)
		}
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read router solicitations on %s: %w", s.cfg.Interface, err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if ndp.IsRouterSolicitation(buf[:n]) {
			s.advertise("solicited")
		}
	}
	return nil
}

func (s *Server) advertise(why string) {
	if err := ndp.SendOn(s.fd, s.ifindex, s.frame); err != nil {
		s.cfg.Log.Warn("advertise no router", "interface", s.cfg.Interface, "why", why, "err", err)
	}
}

// Close closes the socket; call it only for a server never served.
func (s *Server) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
