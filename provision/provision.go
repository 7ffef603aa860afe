// Package provision composes the provisioning services of one rackd node
// on its provisioning interface: DHCP (proxy or full) and TFTP for the PXE
// firmware, and the HTTP server of provision/ipxe for boot scripts, the
// ramdisk and the agent. It finds the interface's IPv4 address, binds
// every server to that address only (tenants and the API listener never
// see them), runs them until the context ends, and stops them all when one
// fails. DHCP and TFTP are provision/dhcp and provision/tftp unless Hooks
// give others (tests give fakes).
package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rackstack/rackstack/provision/dhcp"
	"github.com/rackstack/rackstack/provision/ipxe"
	"github.com/rackstack/rackstack/provision/ra"
	"github.com/rackstack/rackstack/provision/tftp"
)

// DHCP modes.
const (
	// DHCPProxy adds boot options beside the site's DHCP server and hands
	// out no address.
	DHCPProxy = "proxy"
	// DHCPFull is the only DHCP server of an isolated provisioning
	// network: it leases addresses from Range.
	DHCPFull = "full"
)

// DefaultHTTPPort is where the provisioning HTTP server listens unless
// told otherwise (Ironic's conductor serves iPXE on 8088; 8069 is free of
// both Ironic's and rackd's own ports).
const DefaultHTTPPort = 8069

// Config is one node's provisioning settings.
type Config struct {
	Interface string
	DHCPMode  string // DHCPProxy or DHCPFull
	// Range bounds the leases of DHCPFull.
	Range dhcp.Range
	// RamdiskDir holds ipxe.Kernel and ipxe.Initrd.
	RamdiskDir string
	// HTTPPort is the HTTP server's port; 0 picks a free one (tests).
	HTTPPort int
	// LeaseDir keeps full DHCP's leases across restarts.
	LeaseDir string
	// TFTPDir holds the iPXE binaries (default DefaultTFTPDir); UEFIBoot
	// is the UEFI one (dhcp.UEFIBoot, the default, or dhcp.SNPOnly).
	TFTPDir  string
	UEFIBoot string
	Log      *slog.Logger
}

// DefaultTFTPDir is where Debian's ipxe package puts its binaries.
const DefaultTFTPDir = "/usr/lib/ipxe"

// Site is what the protocol servers need to know of where they run.
type Site struct {
	Interface string
	// IP is the interface's IPv4 address; every server binds to it.
	IP netip.Addr
	// Prefix is the interface's network (for full DHCP's subnet mask).
	Prefix   netip.Prefix
	DHCPMode string
	Range    dhcp.Range
	// HTTPURL is the provisioning HTTP server, "http://IP:PORT".
	HTTPURL string
	// BootScriptURL is the script iPXE chains to; ScriptURL gives the
	// machine's MAC.
	BootScriptURL string
}

// ScriptURL is the boot script URL of one machine.
func (s Site) ScriptURL(mac string) string { return s.BootScriptURL + "?mac=" + mac }

// Server is a protocol server: it serves until ctx ends (then returns nil)
// or it fails.
type Server interface {
	Serve(ctx context.Context) error
}

// Hooks make the DHCP and TFTP servers for a site, and in full DHCP mode
// its router advertiser; a nil hook is the real server (provision/dhcp,
// provision/tftp on port 69, provision/ra).
type Hooks struct {
	DHCP func(Site) (Server, error)
	TFTP func(Site) (Server, error)
	RA   func(Site) (Server, error)
}

// realHooks fills the hooks hooks leaves nil with the real servers.
func realHooks(cfg Config, hooks Hooks) Hooks {
	if hooks.DHCP == nil {
		hooks.DHCP = func(s Site) (Server, error) {
			return dhcp.New(dhcp.Config{
				Interface: s.Interface, Mode: dhcp.Mode(s.DHCPMode), ServerIP: s.IP,
				Range:    s.Range,
				LeaseDir: cfg.LeaseDir, UEFIBoot: cfg.UEFIBoot, Log: cfg.Log,
				ScriptURL: func(mac net.HardwareAddr) string { return s.ScriptURL(mac.String()) },
			})
		}
	}
	if hooks.TFTP == nil {
		dir := cfg.TFTPDir
		if dir == "" {
			dir = DefaultTFTPDir
		}
		hooks.TFTP = func(s Site) (Server, error) {
			return tftp.New(tftp.Config{Addr: netip.AddrPortFrom(s.IP, 69), Dir: dir, Log: cfg.Log})
		}
	}
	if hooks.RA == nil {
		hooks.RA = func(s Site) (Server, error) {
			return ra.New(ra.Config{Interface: s.Interface, Log: cfg.Log})
		}
	}
	return hooks
}

// Services are the running provisioning servers of a node.
type Services struct {
	Site   Site
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

// Check validates cfg (without looking at the machine).
func (cfg *Config) Check() error {
	if cfg.Interface == "" {
		return errors.New("provisioning: no interface")
	}
	switch cfg.DHCPMode {
	case DHCPProxy:
		if !cfg.Range.IsZero() {
			return errors.New("provisioning: a range is only for full DHCP (proxy DHCP hands out no addresses)")
		}
	case DHCPFull:
		if cfg.Range.IsZero() {
			return errors.New("provisioning: full DHCP needs a range of addresses to lease")
		}
	default:
		return fmt.Errorf("provisioning: DHCP mode %q: want proxy or full", cfg.DHCPMode)
	}
	if cfg.HTTPPort < 0 || cfg.HTTPPort > 65535 {
		return fmt.Errorf("provisioning: HTTP port %d out of range", cfg.HTTPPort)
	}
	return ipxe.CheckRamdisk(cfg.RamdiskDir)
}

// Start finds the interface's address, binds the HTTP server to it and
// starts the servers; they run until ctx ends or Close. A bind or hook
// failure stops what was started and returns the error.
func Start(ctx context.Context, cfg Config, backend ipxe.Backend, hooks Hooks) (*Services, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	prefix, err := dhcp.InterfaceAddr(cfg.Interface)
	if err != nil {
		return nil, err
	}
	ip := prefix.Addr()
	if cfg.DHCPMode == DHCPFull && (!prefix.Contains(cfg.Range.Start) || !prefix.Contains(cfg.Range.End)) {
		return nil, fmt.Errorf("provisioning: range %s is not inside %s's network %s", cfg.Range, cfg.Interface, prefix.Masked())
	}
	if cfg.DHCPMode == DHCPFull && cfg.LeaseDir == "" {
		return nil, errors.New("provisioning: full DHCP needs a lease directory")
	}
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(ip, uint16(cfg.HTTPPort)).String())
	if err != nil {
		return nil, fmt.Errorf("listen for provisioning HTTP on %s: %w", cfg.Interface, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	base := "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(port))
	site := Site{
		Interface: cfg.Interface, IP: ip, Prefix: prefix.Masked(), DHCPMode: cfg.DHCPMode,
		Range: cfg.Range, HTTPURL: base, BootScriptURL: base + "/boot.ipxe",
	}
	hooks = realHooks(cfg, hooks)
	type maker struct {
		name string
		make func(Site) (Server, error)
	}
	makers := []maker{{"dhcp", hooks.DHCP}, {"tftp", hooks.TFTP}}
	if cfg.DHCPMode == DHCPFull {
		// The segment is ours alone: a router advertisement that offers
		// nothing ends iPXE's wait for an IPv6 router. On the site's
		// network (proxy mode) the routers are the site's business.
		makers = append(makers, maker{"router advertisements", hooks.RA})
	}
	var servers []namedServer
	for _, h := range makers {
		srv, err := h.make(site)
		if err != nil {
			ln.Close()
			for _, ns := range servers {
				closeServer(ns.srv)
			}
			return nil, fmt.Errorf("start provisioning %s on %s: %w", h.name, cfg.Interface, err)
		}
		servers = append(servers, namedServer{h.name, srv})
	}
	httpSrv := &http.Server{
		Handler:           ipxe.New(ipxe.Config{URL: base, RamdiskDir: cfg.RamdiskDir, Backend: backend, Log: cfg.Log}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	rctx, cancel := context.WithCancel(ctx)
	s := &Services{Site: site, cancel: cancel, done: make(chan struct{})}
	g, gctx := errgroup.WithContext(rctx)
	g.Go(func() error {
		if err := httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve provisioning http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		return httpSrv.Shutdown(sctx)
	})
	for _, ns := range servers {
		g.Go(func() error {
			if err := ns.srv.Serve(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("serve provisioning %s: %w", ns.name, err)
			}
			return nil
		})
	}
	go func() {
		err := g.Wait()
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		close(s.done)
	}()
	cfg.Log.Info("provisioning services started", "interface", cfg.Interface, "ip", ip, "http", base, "dhcp", cfg.DHCPMode, "servers", len(servers)+1)
	return s, nil
}

// closeServer releases the sockets of a server made but never served
// (dhcp's Close returns an error, tftp's nothing).
func closeServer(srv Server) {
	switch c := srv.(type) {
	case interface{ Close() error }:
		c.Close()
	case interface{ Close() }:
		c.Close()
	}
}

type namedServer struct {
	name string
	srv  Server
}

// Done is closed when every server has stopped.
func (s *Services) Done() <-chan struct{} { return s.done }

// Err is why the servers stopped (nil when by Close or the context).
func (s *Services) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops the servers and waits for them.
func (s *Services) Close() error {
	s.cancel()
	<-s.done
	return s.Err()
}
