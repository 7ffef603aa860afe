package dataplane

import (
	"encoding/binary"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// leaseTime is long: the address is the port's for as long as it exists.
const leaseTime = 24 * time.Hour

// dhcpServers answers DHCP on each local port's device from the port's own
// fixed IP: no central agent, no lease database. port_in passes a port's
// DHCP requests up to the node's stack, where the socket bound to that
// device receives them.
type dhcpServers = portServers[*dhcpServer]

type dhcpServer struct {
	srv   *server4.Server
	mu    sync.Mutex
	mac   net.HardwareAddr
	lease Lease
}

func newDHCPServers(d *Dataplane, log *slog.Logger) *dhcpServers {
	return &dhcpServers{
		kind:    "dhcp",
		wants:   func(p Port) bool { return p.DHCP != nil && p.DHCP.IP.Addr().Is4() },
		servers: map[string]*dhcpServer{},
		start: func(dev string, p Port, _ device) (*dhcpServer, error) {
			srv := &dhcpServer{mac: p.MAC, lease: *p.DHCP}
			var conn *net.UDPConn
			err := d.inNetns(func() error {
				var err error
				conn, err = server4.NewIPv4UDPConn(dev, &net.UDPAddr{Port: dhcpv4.ServerPort})
				return err
			})
			if err != nil {
				return nil, err
			}
			srv.srv, err = server4.NewServer("", nil, srv.handle(log, dev), server4.WithConn(conn))
			if err != nil {
				conn.Close()
				return nil, err
			}
			go srv.srv.Serve()
			return srv, nil
		},
	}
}

func (srv *dhcpServer) update(p Port) {
	srv.mu.Lock()
	srv.mac, srv.lease = p.MAC, *p.DHCP
	srv.mu.Unlock()
}

func (srv *dhcpServer) stop() { srv.srv.Close() }

func (srv *dhcpServer) handle(log *slog.Logger, dev string) server4.Handler {
	return func(conn net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
		srv.mu.Lock()
		mac, lease := srv.mac, srv.lease
		srv.mu.Unlock()
		if req.OpCode != dhcpv4.OpcodeBootRequest || req.ClientHWAddr.String() != mac.String() {
			return // only the port's own MAC gets its address
		}
		resp, err := reply(req, lease)
		if err != nil {
			log.Debug("dhcp: no reply", "dev", dev, "err", err)
			return
		}
		if resp == nil {
			return
		}
		if _, err := conn.WriteTo(resp.ToBytes(), peer); err != nil {
			log.Warn("dhcp: send reply", "dev", dev, "err", err)
		}
	}
}

// reply builds the answer to req from the port's lease: OFFER to DISCOVER,
// ACK to a REQUEST for the port's address, NAK to one for another.
func reply(req *dhcpv4.DHCPv4, l Lease) (*dhcpv4.DHCPv4, error) {
	ip := net.IP(l.IP.Addr().AsSlice())
	var typ dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		typ = dhcpv4.MessageTypeAck
		asked := req.RequestedIPAddress()
		if asked == nil || asked.IsUnspecified() {
			asked = req.ClientIPAddr
		}
		if asked != nil && !asked.IsUnspecified() && !asked.Equal(ip) {
			typ = dhcpv4.MessageTypeNak
		}
	case dhcpv4.MessageTypeInform:
		typ = dhcpv4.MessageTypeAck
	default:
		return nil, nil // RELEASE, DECLINE: nothing to say
	}
	server := serverID(l)
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)),
	}
	if typ != dhcpv4.MessageTypeNak {
		mods = append(mods,
			dhcpv4.WithYourIP(ip),
			dhcpv4.WithNetmask(net.CIDRMask(l.IP.Bits(), 32)),
			dhcpv4.WithLeaseTime(uint32(leaseTime/time.Second)),
		)
		if l.Gateway.IsValid() {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRouter(net.IP(l.Gateway.AsSlice()))))
		}
		if len(l.DNS) > 0 {
			dns := make([]net.IP, 0, len(l.DNS))
			for _, a := range l.DNS {
				dns = append(dns, net.IP(a.AsSlice()))
			}
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(dns...)))
		}
		if len(l.Routes) > 0 {
			var routes []*dhcpv4.Route
			for _, r := range l.Routes {
				routes = append(routes, &dhcpv4.Route{
					Dest:   &net.IPNet{IP: net.IP(r.Dst.Masked().Addr().AsSlice()), Mask: net.CIDRMask(r.Dst.Bits(), 32)},
					Router: net.IP(r.Nexthop.AsSlice()),
				})
			}
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(routes...)))
		}
		if l.Hostname != "" {
			mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(l.Hostname)))
		}
		if l.MTU > 0 {
			var b [2]byte
			binary.BigEndian.PutUint16(b[:], l.MTU)
			mods = append(mods, dhcpv4.WithGeneric(dhcpv4.OptionInterfaceMTU, b[:]))
		}
		for _, o := range l.Extra {
			mods = append(mods, dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(o.Code), o.Value))
		}
		if l.NextServer.Is4() {
			mods = append(mods, dhcpv4.WithServerIP(net.IP(l.NextServer.AsSlice())))
		}
		if l.BootFile != "" {
			mods = append(mods, func(d *dhcpv4.DHCPv4) { d.BootFileName = l.BootFile })
		}
	}
	return dhcpv4.NewReplyFromRequest(req, mods...)
}

// serverID is the address the server speaks as: the gateway, or else the
// subnet's first address.
func serverID(l Lease) net.IP {
	if l.Gateway.IsValid() {
		return net.IP(l.Gateway.AsSlice())
	}
	first := l.IP.Masked().Addr().Next()
	if first == l.IP.Addr() {
		first = first.Next()
	}
	return net.IP(first.AsSlice())
}
