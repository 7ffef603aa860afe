// Package ports is the node agent for the tenant dataplane: it watches
// the ports bound to this node, with their networks, subnets and security
// groups, makes the node's eBPF dataplane enforce them, checks now and
// then that the kernel still holds what it applied, and reports each port
// ACTIVE or DOWN back through Raft.
package ports

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/node/reconcile"
)

// Dataplane is the node's loaded eBPF dataplane, as the agent drives it.
type Dataplane interface {
	Apply(want dataplane.Desired) (plugged []string, err error)
	Verify() (dataplane.Drift, error)
	PinDir() string
}

// Agent keeps a node's dataplane equal to the replicated network state: it
// re-applies whenever a networking table changes, and every Interval for
// devices that appeared or went away. Every VerifyInterval it also checks
// the kernel's maps against what it applied, and repairs what something
// else changed. It reports each of its ports ACTIVE once enforced, DOWN
// otherwise.
type Agent struct {
	DP     Dataplane
	Node   string
	Uplink string
	// State reads the network state once it is known to be current (read
	// index): a node that just started must not apply a state that has not
	// caught up with the log, or it would unplug live ports for a moment.
	State          func(ctx context.Context) (*memdb.Txn, error)
	Report         func(ctx context.Context, portID, status string) error
	Interval       time.Duration // default 1 s
	VerifyInterval time.Duration // default 10 s
	// Registry, if set, gets rackstack_dataplane_drift_repaired_total.
	Registry prometheus.Registerer
	Log      *slog.Logger

	// Layer3 asks the dataplane to route, NAT and redirect metadata for
	// the node's ports (Desired.Routers, Floating, Externals, Metadata);
	// false leaves them out, for a dataplane that does not enforce them.
	Layer3 bool
	Reach  Reach
	// MetadataDevice is where the node's metadata server listens ("":
	// no metadata redirection).
	MetadataDevice string
	// ReportFloating, if set, records each floating IP of the node's
	// ports ACTIVE once applied, DOWN otherwise.
	ReportFloating func(ctx context.Context, id, status string) error

	drift      *prometheus.CounterVec
	lastVerify time.Time

	mu   sync.Mutex
	meta map[string]netip.Addr // port → the metadata source address applied
}

// MetadataPort is the port whose metadata requests the dataplane sends
// from addr, as last applied: the metadata server knows a request's port
// by this alone.
func (a *Agent) MetadataPort(addr netip.Addr) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, m := range a.meta {
		if m == addr {
			return id, true
		}
	}
	return "", false
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
	loop := &reconcile.Loop{
		Name: "dataplane", Pass: a.reconcile, Resync: interval, Debounce: 20 * time.Millisecond,
		MaxBackoff: 5 * time.Second, Log: a.Log,
	}
	return loop.Run(ctx)
}

func (a *Agent) reconcile(ctx context.Context) (memdb.WatchSet, error) {
	txn, ws, err := reconcile.Read(ctx, a.State, netstate.TableNames())
	if err != nil {
		// No current state (no leader yet): leave the kernel as it is.
		return nil, fmt.Errorf("network state not readable yet; keeping what is enforced: %w", err)
	}
	view, err := netstate.Load(txn)
	if err != nil {
		a.Log.Warn("dataplane: read network state", "err", err)
		return nil, fmt.Errorf("read network state: %w", err)
	}
	want := FromView(view, a.Node)
	want.Uplink = a.Uplink
	if a.Layer3 {
		a.addLayer3(&want, view)
	}
	plugged, err := a.DP.Apply(want)
	if err != nil {
		a.Log.Warn("dataplane: apply", "err", err)
	}
	a.reportFloating(ctx, view, want, plugged, err)
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
	return ws, nil
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

// addLayer3 adds the routers, floating IPs and external networks of the
// node's ports, and their metadata source addresses, to want.
func (a *Agent) addLayer3(want *dataplane.Desired, view *netstate.View) {
	addL3(want, view, a.Node, a.Reach)
	if a.MetadataDevice == "" {
		return
	}
	want.Metadata = &dataplane.Metadata{Device: a.MetadataDevice}
	ids := make([]string, 0, len(want.Ports))
	for _, p := range want.Ports {
		ids = append(ids, p.ID)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.meta = metaAddrs(ids, a.meta)
	for i := range want.Ports {
		want.Ports[i].MetaAddr = a.meta[want.Ports[i].ID]
	}
}

// reportFloating says which floating IPs of the node's ports are
// forwarded: those applied without error whose port is plugged.
func (a *Agent) reportFloating(ctx context.Context, view *netstate.View, want dataplane.Desired, plugged []string, applyErr error) {
	if a.ReportFloating == nil {
		return
	}
	up := map[string]bool{}
	for _, id := range plugged {
		up[id] = true
	}
	applied := map[string]bool{}
	for _, f := range want.Floating {
		applied[f.IP.String()] = applyErr == nil && up[f.Port]
	}
	mine := map[string]bool{}
	for _, p := range want.Ports {
		mine[p.ID] = true
	}
	for _, f := range view.Floating {
		if !mine[f.FixedPortID] {
			continue
		}
		status := "DOWN"
		if applied[f.IP] {
			status = "ACTIVE"
		}
		if f.Status == status {
			continue
		}
		if err := a.ReportFloating(ctx, f.ID, status); err != nil {
			a.Log.Warn("dataplane: report floating IP status", "floating_ip", f.IP, "status", status, "err", err)
		}
	}
}
