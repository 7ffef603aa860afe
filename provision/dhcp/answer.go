package dhcp

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Client architectures (RFC 4578 option 93) that have an iPXE build here.
const (
	archBIOS      = 0
	archEFIBC     = 7 // what x86-64 UEFI firmware sends in practice
	archEFIX86_64 = 9
)

// client is what a request says about its sender.
type client struct {
	// pxe: the sender is network-booting (vendor class PXEClient, or iPXE).
	pxe bool
	// ipxe: the sender already runs iPXE (user class "iPXE").
	ipxe bool
	// arch is the client architecture, -1 when it gave none.
	arch int
}

func classify(req *dhcpv4.DHCPv4) client {
	c := client{arch: -1}
	vendor := req.ClassIdentifier()
	c.ipxe = slices.Contains(req.UserClass(), "iPXE")
	c.pxe = strings.HasPrefix(vendor, "PXEClient") || c.ipxe
	if archs := req.ClientArch(); len(archs) > 0 {
		c.arch = int(archs[0])
	} else if rest, ok := strings.CutPrefix(vendor, "PXEClient:Arch:"); ok {
		// Option 93 is required of PXE clients, but the vendor class
		// carries the same number ("PXEClient:Arch:00007:UNDI:003016").
		num, _, _ := strings.Cut(rest, ":")
		if n, err := strconv.ParseUint(num, 10, 16); err == nil {
			c.arch = int(n)
		}
	}
	return c
}

// bootFile is what c should boot, or "" when nothing here fits it: a
// client in iPXE gets its boot script's URL, firmware the iPXE build for
// its architecture.
func (s *Server) bootFile(c client, mac net.HardwareAddr) string {
	switch {
	case !c.pxe:
		return ""
	case c.ipxe:
		return s.cfg.ScriptURL(mac)
	case c.arch == archBIOS:
		return BIOSBoot
	case c.arch == archEFIBC, c.arch == archEFIX86_64:
		return s.cfg.UEFIBoot
	}
	return ""
}

// answer is the reply to req, received on port, and where to send it; nil
// when req gets none.
func (s *Server) answer(req *dhcpv4.DHCPv4, peer *net.UDPAddr, port int) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	if req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, nil // our own broadcast replies come back to us
	}
	if req.HWType != iana.HWTypeEthernet || len(req.ClientHWAddr) != 6 {
		s.log.Debug("dhcp: not ethernet", "htype", req.HWType)
		return nil, nil
	}
	mac := req.ClientHWAddr
	c := classify(req)
	log := s.log.With("mac", mac.String(), "xid", req.TransactionID.String(), "type", req.MessageType().String(), "port", port)
	file := s.bootFile(c, mac)
	if c.pxe && file == "" {
		log.Info("dhcp: no boot file for this PXE client", "arch", c.arch, "vendor_class", req.ClassIdentifier(), "ipxe", c.ipxe)
	}
	if len(file) > 127 {
		log.Error("dhcp: boot file name longer than the 127 bytes BOOTP has for it", "file", file)
		file = ""
	}

	if port == PXEPort {
		// A boot server request (PXE 2.1 §2.2.4, iPXE's ProxyDHCPREQUEST):
		// the client has its address and asks for the boot file only.
		if req.MessageType() != dhcpv4.MessageTypeRequest || file == "" {
			return nil, nil
		}
		resp := s.bootReply(req, dhcpv4.MessageTypeAck, file)
		dst := &net.UDPAddr{IP: peer.IP, Port: peer.Port}
		if peer.IP.IsUnspecified() {
			dst.IP = net.IPv4bcast
		}
		log.Info("dhcp: boot server ack", "file", file, "to", dst)
		return resp, dst
	}

	if s.cfg.Mode == Proxy {
		return s.proxyAnswer(req, file, log)
	}
	return s.fullAnswer(req, file, log)
}

// proxyAnswer offers the boot file to a PXE client beside the site's
// server, never an address; others are not answered at all.
func (s *Server) proxyAnswer(req *dhcpv4.DHCPv4, file string, log *slog.Logger) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	if file == "" {
		log.Debug("dhcp: not a PXE client we can boot; no proxy answer")
		return nil, nil
	}
	var typ dhcpv4.MessageType
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		typ = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		// A request to the site's server is none of our business; one
		// naming us (firmware that took our offer) gets the boot file.
		if sid := req.ServerIdentifier(); sid == nil || !sid.Equal(s.ip()) {
			return nil, nil
		}
		typ = dhcpv4.MessageTypeAck
	default:
		return nil, nil
	}
	resp := s.bootReply(req, typ, file)
	dst := replyTo(req, typ)
	log.Info("dhcp: proxy "+strings.ToLower(typ.String()), "file", file, "to", dst)
	return resp, dst
}

// fullAnswer hands out addresses to every client and boot options to the
// PXE ones.
func (s *Server) fullAnswer(req *dhcpv4.DHCPv4, file string, log *slog.Logger) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	mac := req.ClientHWAddr.String()
	now := time.Now()
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		ip, err := s.leases.offer(mac, addr(req.RequestedIPAddress()), now)
		if errors.Is(err, errExhausted) {
			log.Warn("dhcp: address range exhausted; no offer", "range", s.cfg.Range)
			return nil, nil
		}
		resp := s.addressReply(req, dhcpv4.MessageTypeOffer, ip, file)
		log.Info("dhcp: offer", "ip", ip, "file", file)
		return resp, replyTo(req, dhcpv4.MessageTypeOffer)

	case dhcpv4.MessageTypeRequest:
		if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(s.ip()) {
			s.leases.withdraw(mac, now) // it took another server's offer
			return nil, nil
		}
		ip := addr(req.RequestedIPAddress())
		if !ip.IsValid() {
			ip = addr(req.ClientIPAddr)
		}
		if !ip.IsValid() {
			return nil, nil
		}
		ok, err := s.leases.bind(mac, ip, now, s.cfg.Lease)
		if err != nil {
			// Unrecorded, the address could go to another client after
			// a restart: better no lease now; the client asks again.
			log.Error("dhcp: record lease", "ip", ip, "err", err)
			return nil, nil
		}
		if !ok {
			log.Info("dhcp: nak", "ip", ip)
			resp, _ := dhcpv4.NewReplyFromRequest(req,
				dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
				dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.ip())))
			return resp, replyTo(req, dhcpv4.MessageTypeNak)
		}
		resp := s.addressReply(req, dhcpv4.MessageTypeAck, ip, file)
		log.Info("dhcp: ack", "ip", ip, "file", file, "lease", s.cfg.Lease)
		return resp, replyTo(req, dhcpv4.MessageTypeAck)

	case dhcpv4.MessageTypeRelease:
		if err := s.leases.release(mac, addr(req.ClientIPAddr), now); err != nil {
			log.Error("dhcp: record release", "err", err)
		} else {
			log.Info("dhcp: released", "ip", addr(req.ClientIPAddr))
		}
	case dhcpv4.MessageTypeDecline:
		ip := addr(req.RequestedIPAddress())
		if err := s.leases.decline(mac, ip, now, s.cfg.Lease); err != nil {
			log.Error("dhcp: record decline", "err", err)
		} else {
			log.Warn("dhcp: client declined its address: another host uses it", "ip", ip)
		}
	}
	return nil, nil
}

// bootReply is a reply that carries boot options and no address: the
// proxy offer and the boot server ack.
func (s *Server) bootReply(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType, file string) *dhcpv4.DHCPv4 {
	resp, _ := dhcpv4.NewReplyFromRequest(req,
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.ip())),
		dhcpv4.WithClientIP(req.ClientIPAddr),
	)
	s.addBoot(resp, req, file)
	return resp
}

// addressReply is a full-mode offer or ack of ip, with boot options when
// file is set.
func (s *Server) addressReply(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType, ip netip.Addr, file string) *dhcpv4.DHCPv4 {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.ip())),
		dhcpv4.WithYourIP(net.IP(ip.AsSlice())),
		dhcpv4.WithNetmask(net.CIDRMask(s.subnet.Bits(), 32)),
		dhcpv4.WithLeaseTime(uint32(s.cfg.Lease / time.Second)),
	}
	if s.cfg.Router.IsValid() {
		mods = append(mods, dhcpv4.WithRouter(net.IP(s.cfg.Router.AsSlice())))
	}
	if len(s.cfg.DNS) > 0 {
		dns := make([]net.IP, 0, len(s.cfg.DNS))
		for _, d := range s.cfg.DNS {
			dns = append(dns, net.IP(d.AsSlice()))
		}
		mods = append(mods, dhcpv4.WithDNS(dns...))
	}
	resp, _ := dhcpv4.NewReplyFromRequest(req, mods...)
	if file != "" {
		s.addBoot(resp, req, file)
	}
	return resp
}

// addBoot adds what PXE firmware needs to boot file from this server.
func (s *Server) addBoot(resp, req *dhcpv4.DHCPv4, file string) {
	resp.ServerIPAddr = s.ip() // next-server: where TFTP is
	resp.BootFileName = file
	// A server that does PXE says so in option 60, or the firmware
	// ignores its boot options (PXE 2.1 §2.2.1).
	resp.UpdateOption(dhcpv4.OptClassIdentifier("PXEClient"))
	// Option 43, sub-option 6 (discovery control) = 8: boot the file in
	// the header, skip boot-server discovery and menus (PXE 2.1 §2.4.5);
	// the encapsulated options end with 255 as the firmware parses them.
	resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, []byte{6, 1, 8, 255}))
	// Firmware matches the reply to itself by its UUID too.
	if guid := req.GetOneOption(dhcpv4.OptionClientMachineIdentifier); guid != nil {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, guid))
	}
}

func (s *Server) ip() net.IP { return net.IP(s.cfg.ServerIP.AsSlice()) }

// replyTo is where a reply to a request received on port 67 goes: the
// relay, the client's own address when it has one, else broadcast (a
// client without an address cannot answer ARP for the one offered).
func replyTo(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType) *net.UDPAddr {
	if gi := req.GatewayIPAddr; gi != nil && !gi.IsUnspecified() {
		return &net.UDPAddr{IP: gi, Port: dhcpv4.ServerPort}
	}
	if ci := req.ClientIPAddr; typ != dhcpv4.MessageTypeNak && ci != nil && !ci.IsUnspecified() {
		return &net.UDPAddr{IP: ci, Port: dhcpv4.ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}

// addr is ip as a netip.Addr, invalid for nil or 0.0.0.0.
func addr(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || a.Unmap().IsUnspecified() {
		return netip.Addr{}
	}
	return a.Unmap()
}
