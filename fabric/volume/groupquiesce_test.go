package volume

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/volumes"
	"github.com/rackstack/rackstack/storage/block"
)

// events is one ordered record of what reaches the held devices and the
// block store.
type events struct {
	mu  sync.Mutex
	log []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.log = append(e.log, s)
	e.mu.Unlock()
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.log...)
}

// heldDevice is a volume's device on the node: it records its writes
// and flushes; flushErr fails flushes.
type heldDevice struct {
	id       string
	ev       *events
	flushErr error
}

func (d *heldDevice) Size() int64                             { return 1 << 20 }
func (d *heldDevice) ReadAt(p []byte, off int64) (int, error) { return len(p), nil }
func (d *heldDevice) WriteAt(p []byte, off int64) (int, error) {
	d.ev.add(d.id + ":write")
	return len(p), nil
}
func (d *heldDevice) WriteZeroes(off, n int64) error { return nil }
func (d *heldDevice) Trim(off, n int64) error        { return nil }
func (d *heldDevice) Flush(context.Context) error {
	if d.flushErr != nil {
		return d.flushErr
	}
	d.ev.add(d.id + ":flush")
	return nil
}
func (d *heldDevice) Extents(off, n int64) ([]block.Range, error) { return nil, nil }

// groupBlocks is the fake block store with SnapshotGroup, which records
// the one command.
type groupBlocks struct {
	*fakeBlocks
	ev    *events
	mu    sync.Mutex
	calls [][]SnapshotPair
	fail  error
}

func (b *groupBlocks) SnapshotGroup(ctx context.Context, pairs []SnapshotPair) error {
	b.mu.Lock()
	b.calls = append(b.calls, pairs)
	fail := b.fail
	b.mu.Unlock()
	if fail != nil {
		return fail
	}
	b.ev.add("snapshot")
	for _, p := range pairs {
		if err := b.fakeBlocks.Snapshot(ctx, p.ID, p.Volume); err != nil {
			return err
		}
	}
	return nil
}

type holdFixture struct {
	*fixture
	ev     *events
	blocks *groupBlocks
	holds  *volumes.Holds
	nodes  []string
}

// newHoldFixture is the service with group snapshots held (lease), and
// node n1's real holds agent answering on the same state.
func newHoldFixture(t *testing.T, lease time.Duration) *holdFixture {
	h := &holdFixture{ev: &events{}, nodes: []string{"n1"}}
	f := newFixture(t, func(c *Config) {
		h.blocks = &groupBlocks{fakeBlocks: c.Blocks.(*fakeBlocks), ev: h.ev}
		c.Blocks, c.HoldLease = h.blocks, lease
		c.HoldNodes = func(context.Context) ([]string, error) { return h.nodes, nil }
	})
	h.fixture = f
	h.holds = h.agent("n1")
	return h
}

// agent runs node's real holds agent on the fixture's state until the
// test ends.
func (h *holdFixture) agent(node string) *volumes.Holds {
	a := &volumes.Holds{Node: node, State: h.local.Read, Log: slog.New(slog.NewTextHandler(os.Stderr, nil)), Now: h.svc.cfg.Now,
		Propose: func(ctx context.Context, typ string, body any) error {
			_, err := h.local.Propose(ctx, typ, body)
			return err
		}}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { a.Run(ctx); close(ran) }()
	h.t.Cleanup(func() { cancel(); <-ran })
	return a
}

// writing writes through each gate until the returned stop is called
// (bounded), which waits for the writers.
func writing(gates ...*volumes.Gate) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for _, gt := range gates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-quit:
					return
				default:
				}
				gt.WriteAt(make([]byte, 512), 0)
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	return func() { close(quit); wg.Wait() }
}

// heldAround waits for the snapshot command and a write of every volume
// after it (they were let go), stops the writers, and checks that each
// volume's last event before the command is its hold's flush.
func (h *holdFixture) heldAround(vols []string, stop func()) {
	h.t.Helper()
	for i := 0; ; i++ {
		log := h.ev.all()
		at := slicesIndex(log, "snapshot")
		after := at >= 0
		for _, id := range vols {
			after = after && slicesIndex(log[at:], id+":write") >= 0
		}
		if after {
			break
		}
		if i > 2000 {
			h.t.Fatalf("no snapshot command, or no write after it: %v", log[max(0, len(log)-20):])
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	log := h.ev.all()
	at := slicesIndex(log, "snapshot")
	for _, id := range vols {
		last := ""
		for _, e := range log[:at] {
			if strings.HasPrefix(e, id+":") {
				last = e
			}
		}
		if last != id+":flush" {
			h.t.Fatalf("volume %s's last event before the snapshot is %q, not its hold's flush", id, last)
		}
	}
}

// consistentGroup makes a group of a consistent group type with two
// volumes, the first attached to a server on host.
func (h *holdFixture) consistentGroup(host string) (string, []string) {
	h.t.Helper()
	h.groupType("consistent", map[string]any{"consistent_group_snapshot_enabled": "<is> True"})
	g := h.createGroup(alice, map[string]any{"group_type": "consistent", "volume_types": []any{volstate.DefaultTypeName}})
	var vols []string
	for range 2 {
		vols = append(vols, h.at(13, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "group_id": g}})["volume"].(map[string]any)["id"].(string))
	}
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: host, Device: "/dev/vdc"}
	if _, err := h.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: vols[0], Attachment: att}); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.local.Propose(context.Background(), volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vols[0], AttachmentID: att.ID}); err != nil {
		h.t.Fatal(err)
	}
	return g, vols
}

func (h *holdFixture) requestsLeft() int {
	return len(store.All[volstate.Quiesce](h.local.Local(), volstate.QuiesceTable, "id"))
}

// A consistent group snapshot of volumes being written: both are held
// (flushed, no write between their flush and the one snapshot command),
// snapshotted in one command, and let go after it.
func TestGroupSnapshotHeld(t *testing.T) {
	h := newHoldFixture(t, time.Minute)
	g, vols := h.consistentGroup("n1")
	var gates []*volumes.Gate
	for _, id := range vols {
		gates = append(gates, h.holds.Gate(id, &heldDevice{id: id, ev: h.ev}))
	}
	// Writers on both volumes until the snapshot is checked (bounded).
	stop := writing(gates...)
	gs := h.at(14, http.StatusAccepted, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": g}})["group_snapshot"].(map[string]any)["id"].(string)
	// Writes go on after the snapshot: the volumes were let go.
	h.heldAround(vols, stop)
	if len(h.blocks.calls) != 1 || len(h.blocks.calls[0]) != 2 {
		t.Fatalf("snapshot commands %v", h.blocks.calls)
	}
	row := h.at(14, http.StatusOK, "GET", "group_snapshots/"+gs, alice, nil)["group_snapshot"].(map[string]any)
	if row["status"] != "available" {
		t.Fatalf("group snapshot %v", row)
	}
	if n := h.requestsLeft(); n != 0 {
		t.Fatalf("%d hold requests left", n)
	}
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// A volume that cannot be held, a node that does not answer, and an
// attached volume whose node is not up are each a 409 naming the cause,
// with nothing made and nothing left held.
func TestGroupSnapshotHoldFailures(t *testing.T) {
	h := newHoldFixture(t, 2*time.Second)
	g, vols := h.consistentGroup("n1")
	h.holds.Gate(vols[0], &heldDevice{id: vols[0], ev: h.ev, flushErr: errors.New("writer fenced")})
	gb := h.holds.Gate(vols[1], &heldDevice{id: vols[1], ev: h.ev})
	nothingMade := func(what string) {
		t.Helper()
		if l := h.at(14, http.StatusOK, "GET", "group_snapshots", alice, nil)["group_snapshots"].([]any); len(l) != 0 {
			t.Fatalf("%s: group snapshots %v", what, l)
		}
		if l := h.expect(http.StatusOK, "GET", "snapshots", alice, nil).Body["snapshots"].([]any); len(l) != 0 {
			t.Fatalf("%s: snapshots %v", what, l)
		}
		if n := h.requestsLeft(); n != 0 {
			t.Fatalf("%s: %d hold requests left", what, n)
		}
		// The volume that was held is let go.
		writes(t, gb)
	}
	post := func() reply {
		r := h.call("POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": g}}, "OpenStack-API-Version", "volume 3.14")
		_, msg := fault(t, r)
		return reply{r.Code, msg}
	}
	if r := post(); r.code != http.StatusConflict || !strings.Contains(r.msg, "volume "+vols[0]+" on node n1") || !strings.Contains(r.msg, "writer fenced") {
		t.Fatalf("a volume that cannot be held: %+v", r)
	}
	nothingMade("cannot hold")

	h.holds.Forget(vols[0], nil) // no-op: not its gate
	h.holds.Gate(vols[0], &heldDevice{id: vols[0], ev: h.ev})
	h.nodes = []string{"n1", "n2"} // n2 runs no agent
	if r := post(); r.code != http.StatusConflict || !strings.Contains(r.msg, "node n2 did not hold") {
		t.Fatalf("a node that does not answer: %+v", r)
	}
	nothingMade("no answer")

	h.nodes = []string{"n2"} // n1, the attached volume's host, is not up
	if r := post(); r.code != http.StatusConflict || !strings.Contains(r.msg, "volume "+vols[0]+"'s writer on node n1") {
		t.Fatalf("an attached volume's node down: %+v", r)
	}
	nothingMade("host down")

	// The one command fails: the group snapshot and its snapshots are
	// error with the cause, and the volumes are let go.
	h.nodes = []string{"n1"}
	h.blocks.fail = errors.New("disk on fire")
	if r := post(); r.code != http.StatusInternalServerError {
		t.Fatalf("a failed snapshot command: %+v", r)
	}
	l := h.at(14, http.StatusOK, "GET", "group_snapshots/detail", admin, nil)["group_snapshots"].([]any)
	if len(l) != 1 || l[0].(map[string]any)["status"] != "error" || !strings.Contains(l[0].(map[string]any)["rackstack:error_reason"].(string), "disk on fire") {
		t.Fatalf("group snapshots %v", l)
	}
	for _, s := range h.expect(http.StatusOK, "GET", "snapshots/detail", alice, nil).Body["snapshots"].([]any) {
		if s.(map[string]any)["status"] != "error" {
			t.Fatalf("snapshot %v", s)
		}
	}
	if n := h.requestsLeft(); n != 0 {
		t.Fatalf("%d hold requests left", n)
	}
	writes(t, gb)
}

// writes checks that a write goes through g (bounded).
func writes(t *testing.T, g *volumes.Gate) {
	t.Helper()
	ch := make(chan struct{})
	go func() { g.WriteAt(make([]byte, 512), 0); close(ch) }()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatal("a volume stays held")
	}
}

type reply struct {
	code int
	msg  string
}

// A held group snapshot whose process died after its one command is
// settled with its snapshots kept but the group snapshot in error (it
// cannot be known to be of one instant), and its hold request deleted.
func TestAbandonedHeldGroupSnapshot(t *testing.T) {
	h := newHoldFixture(t, time.Minute)
	g, vols := h.consistentGroup("n1")
	for _, id := range vols {
		h.holds.Gate(id, &heldDevice{id: id, ev: h.ev})
	}
	gs := h.at(14, http.StatusAccepted, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": g}})["group_snapshot"].(map[string]any)["id"].(string)
	ctx := context.Background()
	// As the dead process left it: creating, its snapshots creating, its
	// request standing.
	tx, _ := h.local.Read(ctx)
	members := volstate.GroupSnapshotMembers(tx, gs)
	for _, sn := range members {
		if _, err := h.svc.changeSnapshot(ctx, sn.ID, func(s *volstate.Snapshot) error { s.Status = volstate.SnapStatusCreating; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	h.putGroupSnapshotAs(gs, volstate.GroupCreating, "n1", "old-run")
	q := volstate.Quiesce{ID: gs, Volumes: vols, Nodes: []string{"n9"}, Lease: time.Minute, CreatedAt: h.svc.cfg.Now()}
	if _, err := h.local.Propose(ctx, volstate.CmdPutQuiesce, volstate.PutQuiesceCmd{Row: q}); err != nil {
		t.Fatal(err)
	}
	h.svc.settle(ctx)
	got := h.at(14, http.StatusOK, "GET", "group_snapshots/"+gs, admin, nil)["group_snapshot"].(map[string]any)
	if got["status"] != "error" || !strings.Contains(got["rackstack:error_reason"].(string), "one instant") {
		t.Fatalf("abandoned held group snapshot %v", got)
	}
	for _, sn := range members {
		if s := h.at(14, http.StatusOK, "GET", "snapshots/"+sn.ID, alice, nil)["snapshot"].(map[string]any); s["status"] != "available" {
			t.Fatalf("snapshot %v", s)
		}
	}
	if n := h.requestsLeft(); n != 0 {
		t.Fatalf("%d hold requests left", n)
	}
}

// A single snapshot of a volume attached on another node is made held
// there, as a group's: the node's writes end with its flush before the
// one snapshot command, and go on after it. Without the hold the block
// store could flush only a volume open on the API's own node.
func TestSnapshotHeldOnTheWritersNode(t *testing.T) {
	h := newHoldFixture(t, time.Minute)
	h.nodes = []string{"n1", "n2"}
	n2 := h.agent("n2")
	_, vols := h.consistentGroup("n2")
	// Attached to a server on n2; once n2 is not up it is made as it
	// stands, not held (no writer there can commit a flush any more).
	h.singleSnapshotHeld(n2, vols[0])
}

// singleSnapshotHeld writes vol through node's gate while a single
// snapshot of it is taken through n1's API: the snapshot is made in one
// command after node's hold flushed vol and before its next write, and
// the hold is released; with only n1 up, a second snapshot is made with
// no hold.
func (h *holdFixture) singleSnapshotHeld(node *volumes.Holds, vol string) {
	t := h.t
	t.Helper()
	gate := node.Gate(vol, &heldDevice{id: vol, ev: h.ev})
	stop := writing(gate)
	sn := h.at(66, http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}})["snapshot"].(map[string]any)["id"].(string)
	h.heldAround([]string{vol}, stop)
	if len(h.blocks.calls) != 1 || len(h.blocks.calls[0]) != 1 || h.blocks.calls[0][0] != (SnapshotPair{ID: sn, Volume: vol}) {
		t.Fatalf("snapshot commands %v", h.blocks.calls)
	}
	if s := h.at(66, http.StatusOK, "GET", "snapshots/"+sn, alice, nil)["snapshot"].(map[string]any); s["status"] != "available" {
		t.Fatalf("snapshot %v", s)
	}
	if n := h.requestsLeft(); n != 0 {
		t.Fatalf("%d hold requests left", n)
	}
	h.nodes = []string{"n1"}
	sn2 := h.at(66, http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}})["snapshot"].(map[string]any)
	if sn2["status"] != "available" || len(h.blocks.calls) != 1 {
		t.Fatalf("snapshot with no other node up: %v, commands %v", sn2, h.blocks.calls)
	}
}

// A volume attached nowhere may still be written on another node: an
// operator's NBD export there (rackctl volume export), which only that
// node knows of. Its snapshot is held on the up nodes, so the exporting
// node flushes it and keeps its writes waiting until the snapshot
// command; with no other node up it is made here as it stands.
func TestSnapshotOfAnExportHeldOnItsNode(t *testing.T) {
	h := newHoldFixture(t, time.Minute)
	h.nodes = []string{"n1", "n2"}
	n2 := h.agent("n2")
	h.singleSnapshotHeld(n2, h.createVolume(alice, map[string]any{"size": 1})["id"].(string))
}

// Hold requests that outlived their lease twice over (their process
// died) are deleted by the settle; younger ones are left alone.
func TestStaleHoldRequestsAreDeleted(t *testing.T) {
	h := newHoldFixture(t, time.Minute)
	ctx := context.Background()
	now := h.svc.cfg.Now()
	for id, at := range map[string]time.Time{"old": now.Add(-time.Hour), "young": now.Add(-time.Second)} {
		q := volstate.Quiesce{ID: id, Volumes: []string{"v"}, Nodes: []string{"n9"}, Lease: 20 * time.Second, CreatedAt: at}
		if _, err := h.local.Propose(ctx, volstate.CmdPutQuiesce, volstate.PutQuiesceCmd{Row: q}); err != nil {
			t.Fatal(err)
		}
	}
	h.svc.settle(ctx)
	left := store.All[volstate.Quiesce](h.local.Local(), volstate.QuiesceTable, "id")
	if len(left) != 1 || left[0].ID != "young" {
		t.Fatalf("requests left: %v", left)
	}
}
