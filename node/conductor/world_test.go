package conductor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/provision/agentapi"
	"github.com/rackstack/rackstack/provision/ipxe"
)

// clock is the fake time every conductor of a world reads.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// machine is a racked server behind a fake BMC.
type machine struct {
	mu         sync.Mutex
	password   string
	power      string
	bootDev    string
	persistent bool
	// ignorePower makes the BMC answer OK to power writes and change
	// nothing, as some do.
	ignorePower bool
	// bootErr fails every boot device write.
	bootErr error
	calls   []string
	// block, when set, holds every boot device write until it is
	// closed; entered is signalled as each one starts waiting.
	block   chan struct{}
	entered chan struct{}
}

type fakeBMC struct{ m *machine }

func (b fakeBMC) PowerState(context.Context) (bool, error) {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	return b.m.power == PowerOn, nil
}

func (b fakeBMC) SetPower(_ context.Context, action string) error {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	b.m.calls = append(b.m.calls, "power "+action)
	if b.m.ignorePower {
		return nil
	}
	switch action {
	case PowerOn, PowerReset:
		b.m.power = PowerOn
	case PowerOff:
		b.m.power = PowerOff
	}
	return nil
}

func (b fakeBMC) BootDevice(context.Context) (string, bool, error) {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	return b.m.bootDev, b.m.persistent, nil
}

func (b fakeBMC) SetBootDevice(ctx context.Context, dev string, persistent bool) error {
	b.m.mu.Lock()
	block, entered := b.m.block, b.m.entered
	b.m.mu.Unlock()
	if block != nil {
		entered <- struct{}{}
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	b.m.calls = append(b.m.calls, fmt.Sprintf("boot %s persistent=%t", dev, persistent))
	if b.m.bootErr != nil {
		return b.m.bootErr
	}
	b.m.bootDev, b.m.persistent = dev, persistent
	return nil
}

func (fakeBMC) Close(context.Context) error { return nil }

func (m *machine) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

// sealer "seals" as the API would, by a prefix the fake unseals.
type sealer struct{}

func (sealer) Unseal(n *bmstate.Node, key string) (string, error) {
	v, ok := n.Secrets[key]
	if !ok || !strings.HasPrefix(v, "sealed:") {
		return "", errors.New("not sealed")
	}
	return strings.TrimPrefix(v, "sealed:"), nil
}

// Test commands that stand in for the compute service: put a server row,
// and apply what Report does to the fields the conductor reads.
const (
	cmdPutServer = "test.server.put"
	cmdReport    = "test.server.report"
)

type reportCmd struct {
	ID       string                `json:"id"`
	Observed computestate.Observed `json:"observed"`
}

func computeSchema() store.Schema {
	s := computestate.Schema()
	s.Handlers = map[string]store.Handler{
		cmdPutServer: store.Typed(func(tx *memdb.Txn, sv computestate.Server) (any, error) {
			return nil, tx.Insert(computestate.TableServers, &sv)
		}),
		cmdReport: store.Typed(func(tx *memdb.Txn, c reportCmd) (any, error) {
			sv := store.Get[computestate.Server](tx, computestate.TableServers, c.ID)
			if sv == nil {
				return nil, store.NotFoundf("no server %s", c.ID)
			}
			row := *sv
			if c.Observed.Gone {
				return nil, tx.Delete(computestate.TableServers, &row)
			}
			row.Status = c.Observed.Status
			switch c.Observed.Status {
			case "ACTIVE":
				row.VMState = "active"
			case "SHUTOFF":
				row.VMState = "stopped"
			case "ERROR":
				row.VMState = "error"
				row.Fault = &computestate.Fault{Message: c.Observed.Fault}
			}
			return nil, tx.Insert(computestate.TableServers, &row)
		}),
	}
	return s
}

// world is one cluster state, one rack of machines, and a conductor on
// it (which a test may replace by a "restarted" one).
type world struct {
	t        *testing.T
	ctx      context.Context
	local    *store.Local
	repl     store.Replicated
	clock    *clock
	dir      string
	key      []byte
	machines map[string]*machine // by BMC address
	image    []byte
	format   string
	opens    int
	mu       sync.Mutex
	reports  []reportCmd
	c        *Conductor
}

func newWorld(t *testing.T) *world {
	local, err := store.NewLocal(bmstate.Schema(), computeSchema())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{
		t: t, ctx: context.Background(), local: local, repl: local,
		clock: &clock{t: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)},
		dir:   t.TempDir(), key: []byte("0123456789abcdef0123456789abcdef"),
		machines: map[string]*machine{}, image: bytes.Repeat([]byte("rackstack-image "), 4096), format: "raw",
	}
	w.c = w.conductor()
	if err := w.c.Register(w.ctx); err != nil {
		t.Fatal(err)
	}
	return w
}

// conductor makes this world's conductor, as a (re)started rackd does:
// the state, the key and the data dir are all it keeps.
func (w *world) conductor() *Conductor {
	return &Conductor{
		Name: "rack1", Dir: w.dir, Repl: w.repl, Key: w.key,
		Row:     bmstate.Conductor{Interface: "prov0", Address: "192.0.2.1", BootURL: "http://192.0.2.1:8069", DHCPMode: "proxy", Drivers: []string{"ipmi", "fake-hardware"}},
		OpenBMC: w.open, Unseal: sealer{}, Images: w, Report: w.report, Now: w.clock.Now,
		Log:             slog.New(slog.DiscardHandler),
		CallbackTimeout: 10 * time.Minute, HeartbeatTimeout: 90 * time.Second,
	}
}

func (w *world) open(_ context.Context, driver string, info map[string]string, password string) (BMC, error) {
	if driver != "ipmi" {
		return nil, fmt.Errorf("driver %s: not in this test", driver)
	}
	addr := info["ipmi_address"]
	m := w.machines[addr]
	if m == nil {
		return nil, fmt.Errorf("ipmi %s: no route to host", addr)
	}
	if password != m.password {
		return nil, fmt.Errorf("ipmi %s: authentication failed", addr)
	}
	return fakeBMC{m}, nil
}

func (w *world) Open(_ context.Context, id string) (io.ReadCloser, imagestate.Image, error) {
	w.mu.Lock()
	w.opens++
	w.mu.Unlock()
	return io.NopCloser(bytes.NewReader(w.image)), imagestate.Image{ID: id, DiskFormat: w.format, Size: int64(len(w.image))}, nil
}

func (w *world) report(ctx context.Context, id string, o computestate.Observed) error {
	w.mu.Lock()
	w.reports = append(w.reports, reportCmd{id, o})
	w.mu.Unlock()
	_, err := w.local.Propose(ctx, cmdReport, reportCmd{id, o})
	return err
}

func (w *world) Reports() []reportCmd {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]reportCmd(nil), w.reports...)
}

// rack adds a machine and a node for it (as the API creates one) in
// state, conducted here.
func (w *world) rack(id, mac, state string) (*bmstate.Node, *machine) {
	w.t.Helper()
	addr := "10.0.0." + id[len(id)-1:]
	m := &machine{password: "good", power: PowerOff}
	w.machines[addr] = m
	n := bmstate.Node{
		ID: id, Driver: "ipmi", DriverInfo: map[string]string{"ipmi_address": addr, "ipmi_username": "admin"},
		Secrets: map[string]string{"ipmi_password": "sealed:good"}, ProvisionState: state, Conductor: "rack1",
		CreatedAt: w.clock.Now(),
		Inventory: &agentapi.Inventory{
			Interfaces: []agentapi.Interface{{Name: "eth0", MACAddress: mac}},
			Disks:      []agentapi.Disk{{Name: "/dev/vda", Size: 8 << 30}, {Name: "/dev/vdb", Size: 20 << 30}},
		},
	}
	if _, err := w.local.Propose(w.ctx, bmstate.CmdCreateNode, bmstate.CreateNodeCmd{Row: n}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.local.Propose(w.ctx, bmstate.CmdCreatePort, bmstate.CreatePortCmd{Row: bmstate.Port{ID: "port-" + id, Address: mac, NodeID: id, PXEEnabled: true}}); err != nil {
		w.t.Fatal(err)
	}
	return w.node(id), m
}

func (w *world) node(id string) *bmstate.Node {
	w.t.Helper()
	n, err := bmstate.LoadNode(w.local.Local(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return n
}

// set changes a node as the API does (read, change, PutNode).
func (w *world) set(id string, edit func(n *bmstate.Node)) {
	w.t.Helper()
	n := w.node(id)
	rev := n.Revision
	edit(n)
	if _, err := w.local.Propose(w.ctx, bmstate.CmdPutNode, bmstate.PutNodeCmd{Row: *n, Revision: rev}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) pass() {
	w.t.Helper()
	if _, err := w.c.Pass(w.ctx); err != nil {
		w.t.Fatal(err)
	}
	w.c.settle()
}

// passes runs passes until the node is in state (at most a few).
func (w *world) passUntil(id, state string) *bmstate.Node {
	w.t.Helper()
	for i := 0; i < 5; i++ {
		if n := w.node(id); n.ProvisionState == state {
			return n
		}
		w.pass()
	}
	n := w.node(id)
	if n.ProvisionState != state {
		w.t.Fatalf("node %s is %s (last_error %q), want %s", id, n.ProvisionState, n.LastError, state)
	}
	return n
}

// agent is the ramdisk a machine boots: it reads its token from the boot
// decision, as rack-agent reads it from the kernel command line.
type agent struct {
	w     *world
	token string
}

func (w *world) boot(mac string) ipxe.Boot {
	w.t.Helper()
	b, err := w.c.Boot(w.ctx, mac)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

func (w *world) agent(mac string) *agent {
	w.t.Helper()
	b := w.boot(mac)
	if b.Kind != ipxe.BootAgent {
		w.t.Fatalf("machine %s boots %s (%s), not the agent", mac, b.Kind, b.Reason)
	}
	return &agent{w: w, token: b.Token}
}

func (a *agent) heartbeat() agentapi.Command {
	a.w.t.Helper()
	r, err := a.w.c.Heartbeat(a.w.ctx, a.token, agentapi.Heartbeat{Progress: "working"})
	if err != nil {
		a.w.t.Fatalf("heartbeat: %v", err)
	}
	return r.Command
}

func (a *agent) result(cmd agentapi.Command, ok bool, msg string) {
	a.w.t.Helper()
	r := agentapi.Result{CommandID: cmd.ID, Op: cmd.Op, OK: ok, Message: msg}
	if !ok {
		r.Error, r.Message = msg, ""
	}
	if err := a.w.c.Result(a.w.ctx, a.token, r); err != nil {
		a.w.t.Fatalf("result: %v", err)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func hasEvent(n *bmstate.Node, severity, substr string) bool {
	for _, ev := range n.History {
		if ev.Severity == severity && strings.Contains(ev.Event, substr) {
			return true
		}
	}
	return false
}

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
