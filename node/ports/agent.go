package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/network"
)

// DeviceName is the interface a port is plugged through on its node: "tap"
// and the first 11 characters of the port id, as Nova and Neutron name it.
// Whoever creates the device (the compute agent, a test) uses this name.
func DeviceName(portID string) string {
	if len(portID) > 11 {
		portID = portID[:11]
	}
	return "tap" + portID
}

// FromView is what node must enforce: its ports (binding:host_id = node,
// admin state up), the rules of their groups, and the addresses of every
// group member cluster-wide.
func FromView(v *network.View, node string) Desired {
	nets := map[string]network.Network{}
	for _, n := range v.Networks {
		nets[n.ID] = n
	}
	subnets := map[string]network.Subnet{}
	for _, s := range v.Subnets {
		subnets[s.ID] = s
	}
	d := Desired{Members: map[string][]netip.Prefix{}}
	used := map[string]bool{}
	for _, p := range v.Ports {
		addrs := portAddrs(p)
		for _, g := range p.SecurityGroups {
			d.Members[g] = append(d.Members[g], addrs...)
		}
		n, ok := nets[p.NetworkID]
		if p.HostID != node || !ok || !p.AdminStateUp || n.SegmentationID <= 0 {
			continue
		}
		mac, err := net.ParseMAC(p.MAC)
		if err != nil {
			continue
		}
		port := Port{
			ID: p.ID, Device: DeviceName(p.ID), VLAN: uint16(n.SegmentationID), MAC: mac,
			Addrs: addrs, Security: p.PortSecurity, Groups: p.SecurityGroups,
			DHCP: lease(p, n, subnets),
		}
		for _, pair := range p.AllowedAddressPairs {
			if m, err := net.ParseMAC(pair.MAC); err == nil {
				port.MACs = append(port.MACs, m)
			}
		}
		if p.PortSecurity {
			for _, g := range p.SecurityGroups {
				used[g] = true
			}
		}
		d.Ports = append(d.Ports, port)
	}
	for _, r := range v.Rules {
		if !used[r.GroupID] {
			continue
		}
		rule := Rule{
			Group: r.GroupID, Ingress: r.Direction == "ingress", IPv6: r.EtherType == "IPv6",
			PortMin: -1, PortMax: -1, RemoteGroup: r.RemoteGroupID,
		}
		if r.Protocol != "" {
			proto, err := strconv.Atoi(r.Protocol)
			if err != nil || proto < 0 || proto > 255 {
				continue
			}
			rule.Proto = uint8(proto)
		}
		if r.PortMin != nil {
			rule.PortMin = *r.PortMin
		}
		if r.PortMax != nil {
			rule.PortMax = *r.PortMax
		}
		if r.RemoteIPPrefix != "" {
			pfx, err := netip.ParsePrefix(r.RemoteIPPrefix)
			if err != nil {
				continue
			}
			rule.Remote = pfx
		}
		d.Rules = append(d.Rules, rule)
	}
	return d
}

// portAddrs is what a port may send from: its fixed IPs and its allowed
// address pairs.
func portAddrs(p network.Port) []netip.Prefix {
	var out []netip.Prefix
	for _, f := range p.FixedIPs {
		if a, err := netip.ParseAddr(f.IP); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for _, pair := range p.AllowedAddressPairs {
		if pfx, err := netip.ParsePrefix(pair.IP); err == nil {
			out = append(out, pfx.Masked())
		} else if a, err := netip.ParseAddr(pair.IP); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// lease is the DHCP answer for the port's first IPv4 address on a subnet
// with DHCP enabled.
func lease(p network.Port, n network.Network, subnets map[string]network.Subnet) *Lease {
	for _, f := range p.FixedIPs {
		s, ok := subnets[f.SubnetID]
		if !ok || !s.EnableDHCP || s.IPVersion != 4 {
			continue
		}
		ip, err := netip.ParseAddr(f.IP)
		cidr, cerr := netip.ParsePrefix(s.CIDR)
		if err != nil || cerr != nil || !ip.Is4() {
			continue
		}
		l := &Lease{
			IP:       netip.PrefixFrom(ip, cidr.Bits()),
			Hostname: "host-" + strings.ReplaceAll(ip.String(), ".", "-"),
			MTU:      uint16(n.MTU),
		}
		if gw, err := netip.ParseAddr(s.GatewayIP); err == nil {
			l.Gateway = gw
		}
		for _, dns := range s.DNSNameservers {
			if a, err := netip.ParseAddr(dns); err == nil && a.Is4() {
				l.DNS = append(l.DNS, a)
			}
		}
		for _, r := range s.HostRoutes {
			dst, err1 := netip.ParsePrefix(r.Destination)
			hop, err2 := netip.ParseAddr(r.Nexthop)
			if err1 == nil && err2 == nil && dst.Addr().Is4() {
				l.Routes = append(l.Routes, Route{Dst: dst, Nexthop: hop})
			}
		}
		return l
	}
	return nil
}

// Agent keeps a node's dataplane equal to the replicated network state: it
// re-applies whenever a networking table changes, and every Interval for
// devices that appeared or went away. Every VerifyInterval it also checks
// the kernel's maps against what it applied, and repairs what something
// else changed. It reports each of its ports ACTIVE once enforced, DOWN
// otherwise.
type Agent struct {
	DP     *Dataplane
	Node   string
	Uplink string
	// State reads the network state once it is known to be current (read
	// index): a node that just started must not apply a state that has not
	// caught up with the log, or it would unplug live ports for a moment.
	State          func(ctx context.Context) (*memdb.Txn, error)
	Report         func(ctx context.Context, portID, status string) error
	Interval       time.Duration
	VerifyInterval time.Duration // default 10 s
	// Registry, if set, gets rackstack_dataplane_drift_repaired_total.
	Registry prometheus.Registerer
	Log      *slog.Logger

	drift      *prometheus.CounterVec
	lastVerify time.Time
}

// Run reconciles until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	a.drift = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rackstack_dataplane_drift_repaired_total",
		Help: "Kernel map entries and pins found to differ from the applied state and written back, by map.",
	}, []string{"map"})
	if a.Registry != nil {
		if err := a.Registry.Register(a.drift); err != nil {
			return fmt.Errorf("register dataplane metrics: %w", err)
		}
		defer a.Registry.Unregister(a.drift)
	}
	interval := a.Interval
	if interval <= 0 {
		interval = time.Second
	}
	for ctx.Err() == nil {
		ws := a.reconcile(ctx)
		wctx, cancel := context.WithTimeout(ctx, interval)
		ws.WatchCtx(wctx)
		cancel()
	}
	return nil
}

func (a *Agent) reconcile(ctx context.Context) memdb.WatchSet {
	ws := memdb.NewWatchSet()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	txn, err := a.State(rctx)
	cancel()
	if err != nil {
		// No current state (no leader yet): leave the kernel as it is.
		a.Log.Debug("dataplane: network state not readable yet; keeping what is enforced", "err", err)
		return ws
	}
	for _, table := range network.TableNames() {
		if it, err := txn.Get(table, "id"); err == nil {
			ws.Add(it.WatchCh())
		}
	}
	view, err := network.Load(txn)
	if err != nil {
		a.Log.Warn("dataplane: read network state", "err", err)
		return ws
	}
	want := FromView(view, a.Node)
	want.Uplink = a.Uplink
	plugged, err := a.DP.Apply(want)
	if err != nil {
		a.Log.Warn("dataplane: apply", "err", err)
	}
	a.verify()
	up := map[string]bool{}
	for _, id := range plugged {
		up[id] = true
	}
	for _, p := range view.Ports {
		if p.HostID != a.Node {
			continue
		}
		status := "DOWN"
		if up[p.ID] {
			status = "ACTIVE"
		}
		if p.Status == status {
			continue
		}
		if err := a.Report(ctx, p.ID, status); err != nil {
			a.Log.Warn("dataplane: report port status", "port", p.ID, "status", status, "err", err)
		}
	}
	return ws
}

// verify checks the kernel against the last apply when it is due: the
// maps are read whole, too much to do on every pass.
func (a *Agent) verify() {
	every := a.VerifyInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	if time.Since(a.lastVerify) < every {
		return
	}
	a.lastVerify = time.Now()
	drift, err := a.DP.Verify()
	for name, n := range drift {
		a.drift.WithLabelValues(name).Add(float64(n))
	}
	if drift.Total() > 0 {
		a.Log.Warn("dataplane: the kernel's maps differed from the applied state; repaired (is something else writing the pins?)",
			"entries", drift.Total(), "drift", drift.String(), "pins", a.DP.PinDir())
	}
	if err != nil {
		a.Log.Warn("dataplane: verify", "err", err)
	}
}
