// Package conductor is the bare-metal node agent of a rackd node with
// provisioning services: it drives the nodes whose Conductor is this rackd
// through Ironic's state machine (verify the BMC, inspect, clean, deploy,
// undeploy, power and boot-device requests, power-state sync), and it is
// the Backend of the provisioning HTTP server (provision/ipxe): it decides
// what a PXE-booting machine boots and answers the ramdisk agent.
//
// Everything it knows is in the node rows (fabric/baremetal/bmstate):
// every change is a revision-checked PutNode, retried when the row moved
// on, and each operation continues from the row after a restart. It talks
// to BMCs, images and the compute service only through the small
// interfaces below, which rackd wires.
package conductor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/node/reconcile"
)

// BMC is one open connection to a node's baseboard management
// controller; provision/bmc's BMC is one (Open there verifies every
// write by reading it back; the conductor reads power back once more, so
// a BMC that ignores a write is an error here whatever the driver).
type BMC interface {
	PowerState(ctx context.Context) (on bool, err error)
	// SetPower is one of the Power* actions.
	SetPower(ctx context.Context, action string) error
	BootDevice(ctx context.Context) (device string, persistent bool, err error)
	SetBootDevice(ctx context.Context, device string, persistent bool) error
	Close(ctx context.Context) error
}

// Ironic's add_ports choices (Conductor.AddPorts).
const (
	AddPortsPXE      = "pxe"
	AddPortsActive   = "active"
	AddPortsAll      = "all"
	AddPortsDisabled = "disabled"
)

// Power actions and boot devices, by provision/bmc's (bmclib's) names.
const (
	PowerOn    = "on"
	PowerOff   = "off"
	PowerReset = "reset"
	BootPXE    = "pxe"
	BootDisk   = "disk"
)

// OpenBMC connects to a BMC of driver (ipmi, redfish, fake-hardware) with
// Ironic's driver_info keys and the unsealed password.
type OpenBMC func(ctx context.Context, driver string, info map[string]string, password string) (BMC, error)

// Unsealer opens a node's sealed secret (Node.Secrets[key]).
type Unsealer interface {
	Unseal(n *bmstate.Node, key string) (string, error)
}

// Images streams an image's bytes by id (the image service).
type Images interface {
	Open(ctx context.Context, id string) (io.ReadCloser, imagestate.Image, error)
}

// Conductor drives this rackd's bare-metal nodes.
type Conductor struct {
	// Name is this rackd node's name: the nodes whose Conductor it is
	// are this conductor's.
	Name string
	// Dir holds the raw image cache (images/) and config drives
	// (configdrives/).
	Dir  string
	Repl store.Replicated
	// Key derives the agent tokens; it must survive restarts.
	Key []byte
	// Row is this conductor's entry in the Conductor table (ID is set
	// from Name).
	Row     bmstate.Conductor
	OpenBMC OpenBMC
	Unseal  Unsealer
	Images  Images
	// Report tells the compute service what became of a server deployed
	// on a node (compute.Service.Report).
	Report func(ctx context.Context, serverID string, o computestate.Observed) error
	Now    func() time.Time
	Log    *slog.Logger

	// CallbackTimeout is how long a booted ramdisk has to call back
	// (default 10 min); HeartbeatTimeout how long it may be silent once
	// it called (default 90 s); HeartbeatWrite how often a heartbeat
	// that changes nothing is written to the row (default 15 s).
	CallbackTimeout  time.Duration
	HeartbeatTimeout time.Duration
	HeartbeatWrite   time.Duration
	// PowerSyncEvery is how often every node's power is read from its
	// BMC (default 60 s); Resync the longest wait between passes
	// (default 2 s), which bounds how late a timeout is seen.
	PowerSyncEvery time.Duration
	Resync         time.Duration
	// RegisterEvery is how often the Conductor row is refreshed, so the
	// API sees this conductor alive (default 60 s).
	RegisterEvery time.Duration
	// BMCTimeout bounds one BMC session (default 2 min).
	BMCTimeout time.Duration
	// AddPorts is which NICs an inspection gives a port when they have
	// none, as Ironic's [inspector] add_ports: AddPortsPXE (the default:
	// the NIC the machine booted from), AddPortsActive (NICs with an
	// IPv4 address), AddPortsAll, or AddPortsDisabled.
	AddPorts string

	imageMu      sync.Mutex
	imageLocks   map[string]*sync.Mutex
	syncMu       sync.Mutex
	lastSync     time.Time
	lastRegister time.Time
	// reported is what each server was last reported as, so a pass
	// reports only changes (a restarted conductor reports each once).
	mu       sync.Mutex
	reported map[string]computestate.Observed

	// Each node is stepped by its own goroutine, so one node's slow BMC
	// session or image conversion holds up no other node's progress
	// (when a pass waited for every step, three deploys at once took
	// twice as long as one: each node's BMC steps queued the others'
	// next moves). busy holds the nodes with a step running; skipped
	// those a pass found busy, which are stepped again once free (the
	// row may have changed under the running step); wake starts that
	// pass.
	workMu  sync.Mutex
	busy    map[string]bool
	skipped map[string]bool
	wake    chan struct{}
	slots   chan struct{}
	steps   sync.WaitGroup
	// bmcErrs counts failed BMC sessions, for metrics.
	bmcErrs bmcErrors
}

// maxSteps bounds the nodes stepped at once (BMC sessions, mostly), as
// Ironic's conductor bounds its worker pool.
const maxSteps = 64

func (c *Conductor) now() time.Time {
	if c.Now != nil {
		return c.Now().UTC()
	}
	return time.Now().UTC()
}

func (c *Conductor) log() *slog.Logger {
	if c.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Log
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Run registers the conductor and drives its nodes until ctx ends.
func (c *Conductor) Run(ctx context.Context) error {
	for _, d := range []string{"images", "configdrives"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o700); err != nil {
			return fmt.Errorf("create conductor dir: %w", err)
		}
	}
	for {
		err := c.Register(ctx)
		if err == nil {
			break
		}
		c.log().Warn("conductor: register; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
	c.log().Info("conductor started", "node", c.Name, "boot_url", c.Row.BootURL)
	loop := &reconcile.Loop{
		Name: "conductor", Pass: c.Pass, Resync: orDefault(c.Resync, 2*time.Second),
		Debounce: 50 * time.Millisecond, MaxBackoff: 10 * time.Second, Log: c.log(),
	}
	err := loop.Run(ctx)
	// Steps end with ctx; none outlives Run.
	c.steps.Wait()
	return err
}

// Register records this conductor in the Conductor table.
func (c *Conductor) Register(ctx context.Context) error {
	row := c.Row
	row.ID, row.Updated = c.Name, c.now()
	if _, err := c.Repl.Propose(ctx, bmstate.CmdPutConductor, bmstate.PutConductorCmd{Row: row}); err != nil {
		return fmt.Errorf("register conductor %s: %w", c.Name, err)
	}
	c.syncMu.Lock()
	c.lastRegister = row.Updated
	c.syncMu.Unlock()
	return nil
}

// Pass does one round over the nodes: adopts the nodes nobody conducts,
// moves this conductor's nodes on, and syncs power states when due. The
// state's watch starts the next pass as soon as a node changes.
func (c *Conductor) Pass(ctx context.Context) (memdb.WatchSet, error) {
	txn, ws, err := reconcile.Read(ctx, c.Repl.Read, bmstate.TableNames())
	if err != nil {
		return nil, fmt.Errorf("state not readable yet: %w", err)
	}
	syncPower, register := false, false
	c.syncMu.Lock()
	now := c.now()
	if now.Sub(c.lastSync) >= orDefault(c.PowerSyncEvery, time.Minute) {
		syncPower, c.lastSync = true, now
	}
	if now.Sub(c.lastRegister) >= orDefault(c.RegisterEvery, time.Minute) {
		register = true
	}
	c.syncMu.Unlock()
	if register {
		// The API counts a conductor whose row is not refreshed within a
		// few minutes as dead, and gives it no new nodes.
		if err := c.Register(ctx); err != nil {
			c.log().Warn("conductor: refresh registration", "err", err)
		}
	}
	for _, row := range store.All[bmstate.Node](txn, bmstate.NodeTable, "id") {
		n := row.Clone()
		if n.Conductor == "" {
			if c.drives(n.Driver) {
				c.launch(n.ID, func() { c.adopt(ctx, n) })
			}
			continue
		}
		if n.Conductor != c.Name {
			continue
		}
		c.launch(n.ID, func() {
			if err := c.step(ctx, txn, n, syncPower); err != nil && ctx.Err() == nil {
				c.log().Warn("conductor: node", "node", n.ID, "state", n.ProvisionState, "err", err)
			}
		})
	}
	c.allocate(ctx, txn)
	ws.Add(c.wakeCh())
	return ws, nil
}

// drives reports whether this conductor drives hardware type driver
// (Row.Drivers; none listed: every one).
func (c *Conductor) drives(driver string) bool {
	return len(c.Row.Drivers) == 0 || slices.Contains(c.Row.Drivers, driver)
}

// allocate processes the allocations still allocating: the apply picks
// the node (bmstate.ProcessAllocationCmd), so every conductor may
// propose it and the first wins; the others find it processed.
//
// A node whose power state is unknown is no candidate, so while some
// available node's first power request is still being carried out
// (openstacksdk forces power off, then allocates) the allocations wait
// for the pass its change starts rather than fail for want of it.
func (c *Conductor) allocate(ctx context.Context, txn *memdb.Txn) {
	for _, n := range store.All[bmstate.Node](txn, bmstate.NodeTable, "id") {
		if n.ProvisionState == bmstate.StateAvailable && n.PowerState == "" && n.TargetPowerState != "" {
			return
		}
	}
	for _, a := range store.All[bmstate.Allocation](txn, bmstate.AllocationTable, "id") {
		if a.State != bmstate.AllocAllocating {
			continue
		}
		_, err := c.Repl.Propose(ctx, bmstate.CmdProcessAllocation, bmstate.ProcessAllocationCmd{ID: a.ID, Now: c.now()})
		if err != nil && !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			// An unknown outcome is read again by the next pass.
			c.log().Warn("conductor: process allocation", "allocation", a.ID, "err", err)
		}
	}
}

// launch runs do for node id in its own goroutine unless a step of that
// node is running; then the node is stepped again by the pass that
// starts when that step ends.
func (c *Conductor) launch(id string, do func()) {
	c.workMu.Lock()
	defer c.workMu.Unlock()
	if c.busy[id] {
		if c.skipped == nil {
			c.skipped = map[string]bool{}
		}
		c.skipped[id] = true
		return
	}
	if c.busy == nil {
		c.busy = map[string]bool{}
	}
	c.busy[id] = true
	if c.slots == nil {
		c.slots = make(chan struct{}, maxSteps)
	}
	slots := c.slots
	c.steps.Add(1)
	go func() {
		defer c.steps.Done()
		slots <- struct{}{}
		do()
		<-slots
		c.workMu.Lock()
		delete(c.busy, id)
		again := c.skipped[id]
		delete(c.skipped, id)
		c.workMu.Unlock()
		if again {
			select {
			case c.wakeCh() <- struct{}{}:
			default: // a pass is due already
			}
		}
	}()
}

// wakeCh is the channel a pass's watch set holds so that a node skipped
// while busy is stepped again.
func (c *Conductor) wakeCh() chan struct{} {
	c.workMu.Lock()
	defer c.workMu.Unlock()
	if c.wake == nil {
		c.wake = make(chan struct{}, 1)
	}
	return c.wake
}

// settle waits until no step runs (tests step a pass to its end).
func (c *Conductor) settle() { c.steps.Wait() }

// adopt makes this conductor the node's: a node created through the API
// names no conductor, and every conductor offers; the revision check lets
// one win.
func (c *Conductor) adopt(ctx context.Context, n *bmstate.Node) {
	_, _, err := c.change(ctx, n.ID, func(n *bmstate.Node) bool {
		if n.Conductor != "" {
			return false
		}
		n.Conductor = c.Name
		c.event(n, "INFO", "conductor", "conductor "+c.Name+" took the node over")
		return true
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log().Warn("conductor: adopt", "node", n.ID, "err", err)
	}
}

// change reads node id, lets edit change a copy, and proposes it with the
// revision read. edit returns false when there is nothing to do (the
// node moved on): it must check the row, because on a stale revision, or
// a proposal whose outcome is unknown, the row is read again and edit
// runs again on what is there now — an unknown outcome may have been
// applied, and is never taken for a failure.
func (c *Conductor) change(ctx context.Context, id string, edit func(n *bmstate.Node) bool) (*bmstate.Node, bool, error) {
	for attempt := 0; ; attempt++ {
		if attempt == 20 {
			return nil, false, fmt.Errorf("update node %s: still changing under us after %d attempts", id, attempt)
		}
		txn, err := c.Repl.Read(ctx)
		if err != nil {
			return nil, false, fmt.Errorf("read node %s: %w", id, err)
		}
		n, err := bmstate.LoadNode(txn, id)
		if err != nil {
			return nil, false, err
		}
		rev := n.Revision
		lastEvent := ""
		if len(n.History) > 0 {
			lastEvent = n.History[len(n.History)-1].ID
		}
		if !edit(n) {
			return n, false, nil
		}
		n.UpdatedAt = c.now()
		_, err = c.Repl.Propose(ctx, bmstate.CmdPutNode, bmstate.PutNodeCmd{Row: *n, Revision: rev})
		switch {
		case err == nil:
			n.Revision = rev + 1
			c.logEvents(n, lastEvent)
			return n, true, nil
		case bmstate.IsStale(err):
			continue
		case errors.Is(err, store.ErrOutcomeUnknown):
			c.log().Warn("conductor: node update outcome unknown; reading it again", "node", id, "err", err)
			select {
			case <-ctx.Done():
				return nil, false, ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
			continue
		default:
			return nil, false, fmt.Errorf("update node %s: %w", id, err)
		}
	}
}

// logEvents logs the history events a committed change added to n (those
// after the event whose id was last before the change): the node's
// history keeps whole seconds, as Ironic's API shows them, and the log
// has each step of every node to the millisecond, which is where one
// reads how a node's time went and whether nodes waited for each other.
func (c *Conductor) logEvents(n *bmstate.Node, last string) {
	i := len(n.History)
	for i > 0 && n.History[i-1].ID != last {
		i--
	}
	for _, ev := range n.History[i:] {
		level := slog.LevelInfo
		if ev.Severity == "ERROR" {
			level = slog.LevelWarn
		}
		c.log().Log(context.Background(), level, "conductor: node event", "node", n.ID, "state", n.ProvisionState, "type", ev.EventType, "event", ev.Event)
	}
}

// event records a history event on n (which the caller then writes).
func (c *Conductor) event(n *bmstate.Node, severity, typ, msg string) {
	n.Record(bmstate.HistoryEvent{
		ID: newUUID(), CreatedAt: c.now(), Severity: severity, EventType: typ, Event: msg, Conductor: c.Name,
	})
}

// withBMC opens the node's BMC with its unsealed password and runs do.
func (c *Conductor) withBMC(ctx context.Context, n *bmstate.Node, do func(context.Context, BMC) error) error {
	if n.Driver == "" {
		return errors.New("the node has no driver: set one with its driver_info")
	}
	password := ""
	for _, key := range []string{n.Driver + "_password", "ipmi_password", "redfish_password"} {
		if _, ok := n.Secrets[key]; !ok {
			continue
		}
		p, err := c.Unseal.Unseal(n, key)
		if err != nil {
			return fmt.Errorf("unseal %s: %w", key, err)
		}
		password = p
		break
	}
	// One session is bounded: a BMC that stops answering fails the step
	// (and the node, with last_error) instead of holding the pass.
	ctx, cancel := context.WithTimeout(ctx, orDefault(c.BMCTimeout, 2*time.Minute))
	defer cancel()
	b, err := c.OpenBMC(ctx, n.Driver, n.DriverInfo, password)
	if err != nil {
		c.bmcErrs.add(n.Driver)
		return err
	}
	defer b.Close(ctx)
	if err := do(ctx, b); err != nil {
		c.bmcErrs.add(n.Driver)
		return err
	}
	return nil
}

// readPower returns the node's power state as the API shows it. Ironic's
// fake power interface reports the state recorded on the node (none
// until a power request sets one), so a fake-hardware node's power
// changes only when asked, as in Ironic.
func (c *Conductor) readPower(ctx context.Context, n *bmstate.Node) (string, error) {
	if n.Interfaces["power"] == "fake" {
		return n.PowerState, nil
	}
	var state string
	err := c.withBMC(ctx, n, func(ctx context.Context, b BMC) error {
		on, err := b.PowerState(ctx)
		state = apiPower(on)
		return err
	})
	return state, err
}

func apiPower(on bool) string {
	if on {
		return bmstate.PowerOn
	}
	return bmstate.PowerOff
}

// setPower asks for action and reads the state back: a BMC that answers
// OK and ignores the write is an error, not a success.
func setPower(ctx context.Context, b BMC, action string) (string, error) {
	want := action != PowerOff
	if err := b.SetPower(ctx, action); err != nil {
		return "", fmt.Errorf("power %s: %w", action, err)
	}
	on, err := b.PowerState(ctx)
	if err != nil {
		return "", fmt.Errorf("read power state after power %s: %w", action, err)
	}
	if on != want {
		return apiPower(on), fmt.Errorf("power %s: the BMC accepted it but reports %s", action, apiPower(on))
	}
	return apiPower(on), nil
}

// bootFrom sets the boot device and starts the machine from it: a reset
// when it is on, power on when it is off.
func bootFrom(ctx context.Context, b BMC, device string, persistent bool) (string, error) {
	if err := b.SetBootDevice(ctx, device, persistent); err != nil {
		return "", fmt.Errorf("set boot device %s: %w", device, err)
	}
	on, err := b.PowerState(ctx)
	if err != nil {
		return "", fmt.Errorf("read power state: %w", err)
	}
	action := PowerOn
	if on {
		action = PowerReset
	}
	return setPower(ctx, b, action)
}

// newUUID returns a random (version 4) UUID, for node, port, boot,
// command and history event ids.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
