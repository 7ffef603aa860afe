// Package dhcp answers DHCPv4 on the provisioning interface so that racked
// servers network-boot into iPXE and then into Rackstack's boot script.
//
// In proxy mode (the default) it sits beside the site's DHCP server, which
// hands out the addresses, and adds only the boot options, and only for
// PXE clients: an ordinary DHCP client never hears from it. In full mode
// it is the DHCP server of an isolated provisioning network: every client
// gets an address from a range, stable per MAC and kept across restarts.
//
// It chooses the boot file; it does not serve it (provision/tftp does) and
// it does not know nodes (the boot script behind ScriptURL does). It binds
// to one interface and never answers on another.
package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
)

// Mode says whether the server hands out addresses.
type Mode string

const (
	// Proxy answers PXE clients with boot options only, beside the site's
	// DHCP server (proxyDHCP, PXE specification 2.1).
	Proxy Mode = "proxy"
	// Full hands out addresses from a range to every client.
	Full Mode = "full"
)

// The boot files Debian's ipxe package puts in /usr/lib/ipxe.
const (
	BIOSBoot = "undionly.kpxe"
	UEFIBoot = "ipxe.efi"
	// SNPOnly is the UEFI build that drives the NIC through the
	// firmware's own network stack, for NICs iPXE has no driver for.
	SNPOnly = "snponly.efi"
)

// PXEPort is where PXE clients send their boot-server DHCPREQUEST
// (proxyDHCP request).
const PXEPort = 4011

const (
	defaultLease = time.Hour
	// offerHold is how long an offered address is kept for the client it
	// was offered to; PXE firmware takes a few seconds to request it.
	offerHold = time.Minute
)

// Config is what a Server needs. Interface and ScriptURL are required;
// Range and LeaseDir too in full mode.
type Config struct {
	// Interface is the provisioning interface; the server answers only
	// packets that arrive on it.
	Interface string
	// Mode is Proxy (the default when empty) or Full.
	Mode Mode
	// ServerIP is this server's address on Interface: next-server, server
	// identifier, and where TFTP listens. The interface's first IPv4
	// address when unset.
	ServerIP netip.Addr
	// Range is the pool of addresses full mode hands out; it must lie in
	// ServerIP's subnet on Interface, whose mask clients are given.
	Range Range
	// Router and DNS are given to full-mode clients when set.
	Router netip.Addr
	DNS    []netip.Addr
	// Lease is the full-mode lease time (one hour when zero).
	Lease time.Duration
	// LeaseDir is the directory where full mode keeps its leases
	// (dhcp-leases.json), so a restart hands out the same addresses.
	LeaseDir string
	// ScriptURL is the boot file given to a client already running iPXE:
	// the HTTP URL of its boot script.
	ScriptURL func(mac net.HardwareAddr) string
	// UEFIBoot is the boot file for x86-64 UEFI clients: UEFIBoot (the
	// default) or SNPOnly.
	UEFIBoot string
	// Log gets one line per answer and per refusal worth an operator's
	// look; slog.Default() when nil.
	Log *slog.Logger
}

// Range is an inclusive range of IPv4 addresses.
type Range struct {
	Start, End netip.Addr
}

// ParseRange reads "START-END" (as --provision-range gives it).
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Range{}, fmt.Errorf("parse range %q: want START-END", s)
	}
	start, err := netip.ParseAddr(strings.TrimSpace(a))
	if err != nil {
		return Range{}, fmt.Errorf("parse range %q: %w", s, err)
	}
	end, err := netip.ParseAddr(strings.TrimSpace(b))
	if err != nil {
		return Range{}, fmt.Errorf("parse range %q: %w", s, err)
	}
	r := Range{Start: start, End: end}
	if err := r.valid(); err != nil {
		return Range{}, fmt.Errorf("parse range %q: %w", s, err)
	}
	return r, nil
}

func (r Range) String() string { return r.Start.String() + "-" + r.End.String() }

// IsZero reports whether no range is set.
func (r Range) IsZero() bool { return !r.Start.IsValid() && !r.End.IsValid() }

// Contains reports whether a is in the range.
func (r Range) Contains(a netip.Addr) bool {
	return a.Is4() && r.Start.Compare(a) <= 0 && a.Compare(r.End) <= 0
}

func (r Range) valid() error {
	if !r.Start.Is4() || !r.End.Is4() {
		return errors.New("range must be two IPv4 addresses")
	}
	if r.End.Less(r.Start) {
		return fmt.Errorf("range end %s is before its start %s", r.End, r.Start)
	}
	return nil
}

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("bad dhcp config")

// Server answers DHCP on one interface. New opens its sockets; Serve
// answers until its context ends.
type Server struct {
	cfg    Config
	log    *slog.Logger
	subnet netip.Prefix // ServerIP's subnet on the interface
	leases *leases      // full mode only

	conns []*net.UDPConn // port 67, then PXEPort

	closeOnce sync.Once
}

// New checks cfg against the interface and opens the server's sockets on
// it (ports 67 and 4011). It must run in the network namespace of the
// interface; the sockets stay there whatever goroutine serves them.
func New(cfg Config) (*Server, error) {
	subnet, err := checkConfig(&cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Log.With("iface", cfg.Interface, "mode", string(cfg.Mode)), subnet: subnet}
	if cfg.Mode == Full {
		s.leases, err = openLeases(filepath.Join(cfg.LeaseDir, leaseFile), cfg.Range, s.log)
		if err != nil {
			return nil, err
		}
	}
	for _, port := range []int{dhcpv4.ServerPort, PXEPort} {
		conn, err := server4.NewIPv4UDPConn(cfg.Interface, &net.UDPAddr{Port: port})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("listen on %s port %d: %w", cfg.Interface, port, err)
		}
		s.conns = append(s.conns, conn)
	}
	return s, nil
}

// checkConfig fills in the defaults (ServerIP from the interface) and
// refuses a config the server could not honour; it returns ServerIP's
// subnet.
func checkConfig(cfg *Config) (netip.Prefix, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Mode == "" {
		cfg.Mode = Proxy
	}
	if cfg.Lease == 0 {
		cfg.Lease = defaultLease
	}
	if cfg.UEFIBoot == "" {
		cfg.UEFIBoot = UEFIBoot
	}
	bad := func(format string, a ...any) (netip.Prefix, error) {
		return netip.Prefix{}, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, a...))
	}
	if cfg.Interface == "" {
		return bad("interface is required")
	}
	if cfg.Mode != Proxy && cfg.Mode != Full {
		return bad("mode %q: want %q or %q", cfg.Mode, Proxy, Full)
	}
	if cfg.ScriptURL == nil {
		return bad("ScriptURL is required: without it a client in iPXE would be sent iPXE again")
	}
	if cfg.UEFIBoot != filepath.Base(cfg.UEFIBoot) || strings.ContainsAny(cfg.UEFIBoot, `/\`) {
		return bad("UEFI boot file %q must be a file name", cfg.UEFIBoot)
	}
	if cfg.Lease < 0 {
		return bad("lease time %s is negative", cfg.Lease)
	}
	addrs, err := interfaceAddrs(cfg.Interface)
	if err != nil {
		return bad("%v", err)
	}
	var subnet netip.Prefix
	for _, a := range addrs {
		if !cfg.ServerIP.IsValid() {
			cfg.ServerIP = a.Addr()
		}
		if a.Addr() == cfg.ServerIP {
			subnet = a.Masked()
			break
		}
	}
	switch {
	case !cfg.ServerIP.IsValid():
		return bad("interface %q has no IPv4 address", cfg.Interface)
	case !subnet.IsValid():
		return bad("server address %s is not on interface %q", cfg.ServerIP, cfg.Interface)
	}
	if cfg.Mode == Proxy {
		if !cfg.Range.IsZero() {
			return bad("a range (%s) is for full mode; proxy mode hands out no addresses", cfg.Range)
		}
		return subnet, nil
	}
	if cfg.Range.IsZero() {
		return bad("full mode needs a range")
	}
	if err := cfg.Range.valid(); err != nil {
		return bad("%v", err)
	}
	if size(cfg.Range) > maxRange {
		return bad("range %s has more than %d addresses", cfg.Range, maxRange)
	}
	if !subnet.Contains(cfg.Range.Start) || !subnet.Contains(cfg.Range.End) {
		return bad("range %s is outside %s, the subnet of %s on %q", cfg.Range, subnet, cfg.ServerIP, cfg.Interface)
	}
	if cfg.Range.Contains(cfg.ServerIP) {
		return bad("range %s holds the server's own address %s", cfg.Range, cfg.ServerIP)
	}
	if cfg.Range.Contains(subnet.Addr()) || cfg.Range.Contains(broadcast(subnet)) {
		return bad("range %s holds the network or broadcast address of %s", cfg.Range, subnet)
	}
	if cfg.Router.IsValid() {
		if !cfg.Router.Is4() || !subnet.Contains(cfg.Router) {
			return bad("router %s is outside %s", cfg.Router, subnet)
		}
		if cfg.Range.Contains(cfg.Router) {
			return bad("range %s holds the router %s", cfg.Range, cfg.Router)
		}
	}
	for _, d := range cfg.DNS {
		if !d.Is4() {
			return bad("DNS server %s is not IPv4", d)
		}
	}
	if cfg.LeaseDir == "" {
		return bad("full mode needs a lease directory")
	}
	return subnet, nil
}

// maxRange bounds the pool: the server walks it to find a free address.
const maxRange = 1 << 16

func size(r Range) uint64 {
	s, e := r.Start.As4(), r.End.As4()
	return uint64(be32(e)) - uint64(be32(s)) + 1
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// InterfaceAddr is the first IPv4 address of the named interface, with its
// prefix: the address a Server with no ServerIP answers as, for a caller
// that needs it first (to build the script URL, to bind TFTP and HTTP).
func InterfaceAddr(name string) (netip.Prefix, error) {
	addrs, err := interfaceAddrs(name)
	if err != nil {
		return netip.Prefix{}, err
	}
	if len(addrs) == 0 {
		return netip.Prefix{}, fmt.Errorf("interface %q has no IPv4 address", name)
	}
	return addrs[0], nil
}

func interfaceAddrs(name string) ([]netip.Prefix, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", name, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, fmt.Errorf("addresses of %q: %w", name, err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || !ip.Unmap().Is4() {
			continue
		}
		ones, _ := ipn.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	for i := range 4 {
		b[3-i] |= byte(host >> (8 * i))
	}
	return netip.AddrFrom4(b)
}

// ServerIP is the address the server answers as.
func (s *Server) ServerIP() netip.Addr { return s.cfg.ServerIP }

// Serve answers until ctx ends, then closes the sockets and returns nil;
// it returns an error only when a socket fails.
func (s *Server) Serve(ctx context.Context) error {
	if s.cfg.Mode == Full {
		s.log.Info("dhcp: serving", "server_ip", s.cfg.ServerIP, "range", s.cfg.Range, "lease", s.cfg.Lease)
	} else {
		s.log.Info("dhcp: serving", "server_ip", s.cfg.ServerIP)
	}
	errc := make(chan error, len(s.conns))
	for _, conn := range s.conns {
		go func() { errc <- s.serveConn(conn) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.Close()
	for range len(s.conns) - 1 {
		<-errc
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Close closes the sockets; Serve returns.
func (s *Server) Close() error {
	var errs []error
	s.closeOnce.Do(func() {
		for _, c := range s.conns {
			errs = append(errs, c.Close())
		}
	})
	return errors.Join(errs...)
}

// serveConn answers one socket's packets one at a time: a provisioning
// network is small, and in order is what makes a RELEASE followed by a
// DISCOVER see the address free.
func (s *Server) serveConn(conn *net.UDPConn) error {
	port := conn.LocalAddr().(*net.UDPAddr).Port
	buf := make([]byte, 4096)
	for {
		n, peer, err := conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("read dhcp on port %d: %w", port, err)
		}
		req, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			s.log.Debug("dhcp: not a dhcp packet", "peer", peer, "err", err)
			continue
		}
		resp, dst := s.answer(req, peer, port)
		if resp == nil {
			continue
		}
		if _, err := conn.WriteToUDP(resp.ToBytes(), dst); err != nil {
			s.log.Warn("dhcp: send reply", "mac", req.ClientHWAddr, "to", dst, "err", err)
		}
	}
}
