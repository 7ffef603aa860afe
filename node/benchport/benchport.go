// Package benchport makes benchmark ports on a node: a network namespace
// with a veth whose node end is named and plugged exactly as a guest's tap
// (dataplane.DeviceName of a Neutron port bound to this node), so that
// `rackbench dataplane --cloud` measures tenant traffic through the real
// dataplane without a guest. Each port serves a TCP sink and an echo
// server, and runs the client side of a measurement against another port.
//
// It must not touch anything it did not make: it only removes namespaces
// and devices of ports it created, and bounds how many ports and how long
// a measurement may run.
package benchport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/dataplane"
)

// Ports the servers of a bench port listen on.
const (
	SinkPort = 5201 // TCP stream: everything read is dropped
	EchoPort = 5202 // request/response: one byte back for each byte in
)

// Bounds on what a caller may ask.
const (
	MaxPorts    = 8
	MaxDuration = 60 * time.Second
	MaxStreams  = 16
	// NSPrefix names the namespaces this package makes, so that they can
	// be told from everyone else's.
	NSPrefix = "rackbench-"
)

// Errors a caller maps to 4xx.
var (
	ErrInvalid  = errors.New("invalid request")
	ErrNotFound = errors.New("no such bench port")
	ErrExists   = errors.New("bench port exists")
	ErrTooMany  = errors.New("too many bench ports")
)

// Spec is a port to make: the Neutron port it stands for (bound to this
// node), its MAC and its address with the subnet's length.
type Spec struct {
	PortID  string `json:"port_id"`
	MAC     string `json:"mac_address"`
	Address string `json:"address"` // e.g. 10.250.0.10/24
}

// Port is a bench port as listed.
type Port struct {
	Spec
	Namespace string `json:"namespace"`
	Device    string `json:"device"`
}

// Test is one measurement, run from a port against another's servers.
type Test struct {
	Kind     string `json:"kind"`   // stream, rr or crr
	Target   string `json:"target"` // the server port's IPv4 address
	Streams  int    `json:"streams,omitempty"`
	Duration string `json:"duration"`
}

// Result is a measurement's figure.
type Result struct {
	Value float64 `json:"value"`
	Unit  string  `json:"unit"` // Gbit/s, transactions/s, connections/s
	Count int64   `json:"count"`
}

// Manager holds this node's bench ports.
type Manager struct {
	// DataplaneNetns is the namespace the dataplane's devices live in
	// (rackd --dataplane-netns); "" is rackd's own.
	DataplaneNetns string
	Log            *slog.Logger

	mu    sync.Mutex
	ports map[string]*port
}

type port struct {
	Port
	nsPath string
	stop   context.CancelFunc
	done   sync.WaitGroup
	lns    []net.Listener
}

func (s Spec) checkID() error {
	if s.PortID == "" || len(s.PortID) > 64 || strings.ContainsAny(s.PortID, "/ \x00") || strings.HasPrefix(s.PortID, ".") {
		return fmt.Errorf("%w: port_id must be a port id", ErrInvalid)
	}
	return nil
}

func (s Spec) check() (net.HardwareAddr, netip.Prefix, error) {
	if err := s.checkID(); err != nil {
		return nil, netip.Prefix{}, err
	}
	mac, err := net.ParseMAC(s.MAC)
	if err != nil || len(mac) != 6 {
		return nil, netip.Prefix{}, fmt.Errorf("%w: mac_address %q is not a MAC address", ErrInvalid, s.MAC)
	}
	pfx, err := netip.ParsePrefix(s.Address)
	if err != nil || !pfx.Addr().Is4() {
		return nil, netip.Prefix{}, fmt.Errorf("%w: address %q is not an IPv4 address with a prefix length", ErrInvalid, s.Address)
	}
	return mac, pfx, nil
}

// nsName is the namespace of a port: the prefix and the port's id.
func nsName(portID string) string { return NSPrefix + portID }

// Create makes the namespace, the veth (node end in the dataplane's
// namespace, named as the port's tap), and starts the port's servers.
// On error, what it made is removed.
func (m *Manager) Create(s Spec) (Port, error) {
	mac, pfx, err := s.check()
	if err != nil {
		return Port{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ports == nil {
		m.ports = map[string]*port{}
	}
	if _, ok := m.ports[s.PortID]; ok {
		return Port{}, fmt.Errorf("%w: %s", ErrExists, s.PortID)
	}
	if len(m.ports) >= MaxPorts {
		return Port{}, fmt.Errorf("%w: a node holds at most %d", ErrTooMany, MaxPorts)
	}
	p := &port{Port: Port{Spec: s, Namespace: nsName(s.PortID), Device: dataplane.DeviceName(s.PortID)}}
	p.nsPath = "/run/netns/" + p.Namespace
	if err := p.make(m.DataplaneNetns, mac, pfx); err != nil {
		p.remove(m.DataplaneNetns)
		return Port{}, err
	}
	if err := p.serve(m.Log); err != nil {
		p.remove(m.DataplaneNetns)
		return Port{}, err
	}
	m.ports[s.PortID] = p
	return p.Port, nil
}

func (p *port) make(dpNetns string, mac net.HardwareAddr, pfx netip.Prefix) error {
	if out, err := exec.Command("ip", "netns", "add", p.Namespace).CombinedOutput(); err != nil {
		return fmt.Errorf("add netns %s: %v: %s", p.Namespace, err, strings.TrimSpace(string(out)))
	}
	bench, err := netns.GetFromPath(p.nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", p.Namespace, err)
	}
	defer bench.Close()
	host, err := handleAt(dpNetns)
	if err != nil {
		return err
	}
	defer host.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: p.Device, MTU: 1500}, PeerName: "eth0",
		PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(int(bench))}
	if err := host.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", p.Device, err)
	}
	l, err := host.LinkByName(p.Device)
	if err != nil {
		return fmt.Errorf("find %s: %w", p.Device, err)
	}
	if err := host.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", p.Device, err)
	}
	in, err := netlink.NewHandleAt(bench)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", p.Namespace, err)
	}
	defer in.Close()
	for _, name := range []string{"lo", "eth0"} {
		l, err := in.LinkByName(name)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", name, p.Namespace, err)
		}
		if name == "eth0" {
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: pfx.Addr().AsSlice(), Mask: net.CIDRMask(pfx.Bits(), 32)}}
			if err := in.AddrAdd(l, addr); err != nil {
				return fmt.Errorf("address eth0 in %s: %w", p.Namespace, err)
			}
		}
		if err := in.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up in %s: %w", name, p.Namespace, err)
		}
	}
	return nil
}

func handleAt(path string) (*netlink.Handle, error) {
	if path == "" {
		return netlink.NewHandle()
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("open dataplane netns %s: %w", path, err)
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

// serve starts the sink and the echo server in the port's namespace.
func (p *port) serve(log *slog.Logger) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.stop = cancel
	for _, lp := range []struct {
		port  int
		serve func(net.Conn)
	}{{SinkPort, func(c net.Conn) { io.Copy(io.Discard, c) }}, {EchoPort, echo}} {
		var ln net.Listener
		err := InNetns(p.nsPath, func() error {
			var err error
			ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", lp.port))
			return err
		})
		if err != nil {
			return fmt.Errorf("listen on %d in %s: %w", lp.port, p.Namespace, err)
		}
		p.lns = append(p.lns, ln)
		p.done.Add(1)
		go func() {
			defer p.done.Done()
			var conns sync.WaitGroup
			defer conns.Wait()
			for {
				c, err := ln.Accept()
				if err != nil {
					return // closed by remove
				}
				conns.Add(1)
				go func() {
					defer conns.Done()
					defer c.Close()
					stop := context.AfterFunc(ctx, func() { c.Close() })
					defer stop()
					lp.serve(c)
				}()
			}
		}()
	}
	return nil
}

// echo answers each byte read with one byte.
func echo(c net.Conn) {
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// remove stops the servers and deletes the device and the namespace; a
// part already gone is fine.
func (p *port) remove(dpNetns string) error {
	if p.stop != nil {
		p.stop()
	}
	for _, ln := range p.lns {
		ln.Close()
	}
	p.done.Wait()
	var errs []error
	if host, err := handleAt(dpNetns); err == nil {
		if l, err := host.LinkByName(p.Device); err == nil {
			if err := host.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete %s: %w", p.Device, err))
			}
		}
		host.Close()
	} else {
		errs = append(errs, err)
	}
	if _, err := os.Stat(p.nsPath); err == nil {
		if out, err := exec.Command("ip", "netns", "delete", p.Namespace).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("delete netns %s: %v: %s", p.Namespace, err, strings.TrimSpace(string(out))))
		}
	}
	return errors.Join(errs...)
}

// Remove deletes a bench port. One this Manager does not hold (made
// before rackd restarted) is removed too if its namespace is there: the
// namespace's name says it is a bench port's, and the device goes with it.
func (m *Manager) Remove(portID string) error {
	if err := (Spec{PortID: portID}).checkID(); err != nil {
		return err
	}
	m.mu.Lock()
	p, ok := m.ports[portID]
	delete(m.ports, portID)
	m.mu.Unlock()
	if !ok {
		p = &port{Port: Port{Spec: Spec{PortID: portID}, Namespace: nsName(portID), Device: dataplane.DeviceName(portID)}}
		p.nsPath = "/run/netns/" + p.Namespace
		if _, err := os.Stat(p.nsPath); err != nil {
			return fmt.Errorf("%w: %s", ErrNotFound, portID)
		}
	}
	return p.remove(m.DataplaneNetns)
}

// List returns the bench ports, by port id.
func (m *Manager) List() []Port {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Port, 0, len(m.ports))
	for _, p := range m.ports {
		out = append(out, p.Port)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PortID < out[j].PortID })
	return out
}

// Close removes every bench port (rackd stopping).
func (m *Manager) Close() error {
	var errs []error
	for _, p := range m.List() {
		errs = append(errs, m.Remove(p.PortID))
	}
	return errors.Join(errs...)
}

// Run measures from portID's namespace against t.Target's servers.
func (m *Manager) Run(ctx context.Context, portID string, t Test) (Result, error) {
	d, err := time.ParseDuration(t.Duration)
	if err != nil || d <= 0 || d > MaxDuration {
		return Result{}, fmt.Errorf("%w: duration %q must be a duration up to %s", ErrInvalid, t.Duration, MaxDuration)
	}
	target, err := netip.ParseAddr(t.Target)
	if err != nil || !target.Is4() {
		return Result{}, fmt.Errorf("%w: target %q is not an IPv4 address", ErrInvalid, t.Target)
	}
	m.mu.Lock()
	p, ok := m.ports[portID]
	m.mu.Unlock()
	if !ok {
		return Result{}, fmt.Errorf("%w: %s", ErrNotFound, portID)
	}
	ctx, cancel := context.WithTimeout(ctx, d+10*time.Second)
	defer cancel()
	switch t.Kind {
	case "stream":
		if t.Streams < 1 || t.Streams > MaxStreams {
			return Result{}, fmt.Errorf("%w: streams must be 1 to %d", ErrInvalid, MaxStreams)
		}
		return stream(ctx, p.nsPath, netip.AddrPortFrom(target, SinkPort), t.Streams, d)
	case "rr":
		return requestResponse(ctx, p.nsPath, netip.AddrPortFrom(target, EchoPort), d)
	case "crr":
		return connectRequestResponse(ctx, p.nsPath, netip.AddrPortFrom(target, EchoPort), d)
	}
	return Result{}, fmt.Errorf("%w: kind %q must be stream, rr or crr", ErrInvalid, t.Kind)
}

// dialIn connects from the namespace at nsPath: the socket is made there,
// and stays there whichever thread uses it later.
func dialIn(ctx context.Context, nsPath string, to netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := InNetns(nsPath, func() error {
		var err error
		c, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp4", to.String())
		return err
	})
	return c, err
}

func stream(ctx context.Context, nsPath string, to netip.AddrPort, streams int, d time.Duration) (Result, error) {
	conns := make([]net.Conn, 0, streams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < streams; i++ {
		c, err := dialIn(ctx, nsPath, to)
		if err != nil {
			return Result{}, fmt.Errorf("connect to %s: %w", to, err)
		}
		conns = append(conns, c)
	}
	buf := make([]byte, 128<<10)
	var mu sync.Mutex
	var total int64
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetWriteDeadline(deadline)
			var n int64
			for time.Now().Before(deadline) && ctx.Err() == nil {
				w, err := c.Write(buf)
				n += int64(w)
				if err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						mu.Lock()
						firstErr = cmpErr(firstErr, err)
						mu.Unlock()
					}
					break
				}
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return Result{}, fmt.Errorf("stream to %s: %w", to, firstErr)
	}
	secs := time.Since(start).Seconds()
	return Result{Value: float64(total) * 8 / secs / 1e9, Unit: "Gbit/s", Count: total}, nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// transact sends one byte and waits for it to come back.
func transact(c net.Conn, b []byte) error {
	if _, err := c.Write(b[:1]); err != nil {
		return err
	}
	_, err := io.ReadFull(c, b[:1])
	return err
}

func requestResponse(ctx context.Context, nsPath string, to netip.AddrPort, d time.Duration) (Result, error) {
	c, err := dialIn(ctx, nsPath, to)
	if err != nil {
		return Result{}, fmt.Errorf("connect to %s: %w", to, err)
	}
	defer c.Close()
	b := make([]byte, 1)
	start := time.Now()
	deadline := start.Add(d)
	c.SetDeadline(deadline.Add(5 * time.Second))
	var n int64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if err := transact(c, b); err != nil {
			return Result{}, fmt.Errorf("request/response with %s: %w", to, err)
		}
		n++
	}
	return Result{Value: float64(n) / time.Since(start).Seconds(), Unit: "transactions/s", Count: n}, nil
}

// connectRequestResponse opens a connection per transaction, on one
// thread kept in the namespace for the whole run.
func connectRequestResponse(ctx context.Context, nsPath string, to netip.AddrPort, d time.Duration) (Result, error) {
	var n int64
	var elapsed time.Duration
	err := InNetns(nsPath, func() error {
		b := make([]byte, 1)
		start := time.Now()
		deadline := start.Add(d)
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		for time.Now().Before(deadline) && ctx.Err() == nil {
			c, err := dialer.DialContext(ctx, "tcp4", to.String())
			if err != nil {
				return err
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			err = transact(c, b)
			c.Close()
			if err != nil {
				return err
			}
			n++
		}
		elapsed = time.Since(start)
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("connect/request/response with %s: %w", to, err)
	}
	return Result{Value: float64(n) / elapsed.Seconds(), Unit: "connections/s", Count: n}, nil
}

// InNetns runs fn on a thread moved into the namespace at path. If the
// thread cannot move back, it stays locked and dies with the goroutine.
func InNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open netns: %w", err)
			return
		}
		defer unix.Close(target)
		runtime.LockOSThread()
		orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave netns: %w", err))
			return // the thread stays locked and ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
