package dataplane

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/dhcpv6/server6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dhcp6Servers answers DHCPv6 on each local port's device whose port has a
// Lease6, as dhcpServers answers DHCPv4: port_in passes the port's DHCPv6
// client messages up to the node's stack (PORT_DHCP6), where a socket bound
// to that device receives them, and the answer goes back out of the device
// from its link-local address.
type dhcp6Servers = portServers[*dhcp6Server]

type dhcp6Server struct {
	srv     *server6.Server
	ifindex int
	duid    dhcpv6.DUID
	mu      sync.Mutex
	mac     net.HardwareAddr
	lease   Lease6
}

func newDHCP6Servers(d *Dataplane, log *slog.Logger) *dhcp6Servers {
	return &dhcp6Servers{
		kind:    "dhcpv6",
		wants:   func(p Port) bool { return p.DHCP6 != nil },
		servers: map[string]*dhcp6Server{},
		start: func(dev string, p Port, dv device) (*dhcp6Server, error) {
			srv := &dhcp6Server{
				ifindex: int(dv.ifindex), mac: p.MAC, lease: *p.DHCP6,
				duid: &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr(dv.mac[:])},
			}
			err := d.inNetns(func() error {
				if err := hostIPv6(dev); err != nil {
					return err
				}
				var err error
				// Bound to the device, on ff02::1:2 and ff05::1:3.
				srv.srv, err = server6.NewServer(dev, nil, srv.handle(d, log, dev))
				return err
			})
			if err != nil {
				return nil, err
			}
			go srv.srv.Serve()
			return srv, nil
		},
	}
}

func (srv *dhcp6Server) update(p Port) {
	srv.mu.Lock()
	srv.mac, srv.lease = p.MAC, *p.DHCP6
	srv.mu.Unlock()
}

func (srv *dhcp6Server) stop() { srv.srv.Close() }

// hostIPv6 turns IPv6 on for the node's side of a port's device, as far as
// a DHCPv6 server needs: a link-local address to answer from, at once (no
// duplicate address detection), and nothing learnt from the guest's
// router advertisements. It runs in the dataplane's namespace, whose
// /proc/sys/net the calling thread sees.
func hostIPv6(dev string) error {
	for _, c := range []struct{ key, val string }{
		{"accept_dad", "0"}, {"accept_ra", "0"}, {"autoconf", "0"}, {"router_solicitations", "0"}, {"disable_ipv6", "0"},
	} {
		p := filepath.Join("/proc/sys/net/ipv6/conf", dev, c.key)
		if err := os.WriteFile(p, []byte(c.val), 0o644); err != nil {
			return fmt.Errorf("ipv6 on %s: %w", dev, err)
		}
	}
	return nil
}

func (srv *dhcp6Server) handle(d *Dataplane, log *slog.Logger, dev string) server6.Handler {
	return func(conn net.PacketConn, peer net.Addr, m dhcpv6.DHCPv6) {
		msg, ok := m.(*dhcpv6.Message)
		to, isUDP := peer.(*net.UDPAddr)
		if !ok || !isUDP {
			return // relayed: no relay reaches a port's device
		}
		srv.mu.Lock()
		mac, lease := srv.mac, srv.lease
		srv.mu.Unlock()
		resp, err := reply6(msg, lease, srv.duid)
		if err != nil {
			log.Debug("dhcpv6: no reply", "dev", dev, "err", err)
			return
		}
		if resp == nil {
			return
		}
		// port_in takes the port's neighbour advertisements to the network,
		// never up to this stack: the neighbour is the port's MAC, said
		// here before the kernel would ask.
		err = d.nl.NeighSet(&netlink.Neigh{LinkIndex: srv.ifindex, Family: unix.AF_INET6, State: netlink.NUD_PERMANENT, IP: to.IP, HardwareAddr: mac})
		if err != nil {
			log.Warn("dhcpv6: set the port's neighbour", "dev", dev, "ip", to.IP, "err", err)
			return
		}
		if _, err := conn.WriteTo(resp.ToBytes(), peer); err != nil {
			log.Warn("dhcpv6: send reply", "dev", dev, "err", err)
		}
	}
}

// reply6 builds the answer to msg from the port's lease: its address in
// the IA_NA the client asked for (an ADVERTISE to a SOLICIT, a REPLY to
// one with rapid commit and to REQUEST, RENEW, REBIND and CONFIRM), and
// the DNS servers; INFORMATION-REQUEST (dhcpv6-stateless) gets the DNS
// servers only. nil: nothing to say.
func reply6(msg *dhcpv6.Message, l Lease6, duid dhcpv6.DUID) (*dhcpv6.Message, error) {
	mods := []dhcpv6.Modifier{dhcpv6.WithServerID(duid)}
	if len(l.DNS) > 0 {
		dns := make([]net.IP, 0, len(l.DNS))
		for _, a := range l.DNS {
			dns = append(dns, net.IP(a.AsSlice()))
		}
		mods = append(mods, dhcpv6.WithDNS(dns...))
	}
	if msg.Type() == dhcpv6.MessageTypeInformationRequest {
		return dhcpv6.NewReplyFromMessage(msg, mods...)
	}
	switch msg.Type() {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew,
		dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeConfirm:
	default:
		return nil, nil // RELEASE, DECLINE: nothing to say
	}
	ia := msg.Options.OneIANA()
	if !l.IP.IsValid() || ia == nil {
		return nil, nil // stateless, or no address asked for
	}
	mods = append(mods, dhcpv6.WithOption(&dhcpv6.OptIANA{
		IaId: ia.IaId, T1: leaseTime / 2, T2: leaseTime * 4 / 5,
		Options: dhcpv6.IdentityOptions{Options: []dhcpv6.Option{
			&dhcpv6.OptIAAddress{IPv6Addr: net.IP(l.IP.AsSlice()), PreferredLifetime: leaseTime, ValidLifetime: leaseTime},
		}},
	}))
	if msg.Type() == dhcpv6.MessageTypeSolicit && msg.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
		return dhcpv6.NewAdvertiseFromSolicit(msg, mods...)
	}
	return dhcpv6.NewReplyFromMessage(msg, mods...)
}
