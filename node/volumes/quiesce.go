package volumes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/reconcile"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/block/nbd"
)

// Holding volumes still for a group snapshot (volstate.Quiesce): every
// volume this node exports over NBD, to a guest or to an operator, is
// served through a Gate, and Holds answers the quiesce requests that
// ask this node by holding the gates of the volumes they name.

// Device is what an NBD export serves.
type Device = nbd.Device

// Gate serves a device and can hold it: while held, writes, zeroes,
// trims and flushes wait (reads do not); holding waits for the ones in
// flight and then flushes the device, so a held device's durable state
// holds every write acknowledged before the hold and none after.
type Gate struct {
	dev Device

	mu   sync.Mutex
	cond *sync.Cond
	held int // holds taken and not released
	busy int // writes and flushes in the device now
}

// NewGate serves dev through a gate.
func NewGate(dev Device) *Gate {
	g := &Gate{dev: dev}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *Gate) enter() {
	g.mu.Lock()
	for g.held > 0 {
		g.cond.Wait()
	}
	g.busy++
	g.mu.Unlock()
}

func (g *Gate) leave() {
	g.mu.Lock()
	g.busy--
	if g.busy == 0 {
		g.cond.Broadcast()
	}
	g.mu.Unlock()
}

// Hold holds the device: when it returns nil, no write or flush is in
// the device, none will start until release is called, and every write
// completed before is flushed. On an error nothing is held. release may
// be called more than once.
func (g *Gate) Hold(ctx context.Context) (release func(), err error) {
	g.mu.Lock()
	g.held++
	var once sync.Once
	release = func() {
		once.Do(func() {
			g.mu.Lock()
			g.held--
			g.cond.Broadcast()
			g.mu.Unlock()
		})
	}
	// A cond cannot wait on ctx: its end wakes the waiter.
	stop := context.AfterFunc(ctx, func() {
		g.mu.Lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer stop()
	for g.busy > 0 && ctx.Err() == nil {
		g.cond.Wait()
	}
	g.mu.Unlock()
	if err := ctx.Err(); err != nil {
		release()
		return nil, fmt.Errorf("wait for the writes in flight: %w", err)
	}
	if err := g.dev.Flush(ctx); err != nil {
		release()
		return nil, fmt.Errorf("flush: %w", err)
	}
	return release, nil
}

func (g *Gate) Size() int64                             { return g.dev.Size() }
func (g *Gate) ReadAt(p []byte, off int64) (int, error) { return g.dev.ReadAt(p, off) }
func (g *Gate) Extents(off, n int64) ([]block.Range, error) {
	return g.dev.Extents(off, n)
}

// ReadOnly passes on the device's (a snapshot refuses writes).
func (g *Gate) ReadOnly() bool {
	r, ok := g.dev.(interface{ ReadOnly() bool })
	return ok && r.ReadOnly()
}

func (g *Gate) WriteAt(p []byte, off int64) (int, error) {
	g.enter()
	defer g.leave()
	return g.dev.WriteAt(p, off)
}

// WriteOwned hands the payload over when the device takes it (a block
// volume does), and copies it otherwise.
func (g *Gate) WriteOwned(p []byte, off int64, release func()) (int, error) {
	g.enter()
	defer g.leave()
	if ow, ok := g.dev.(interface {
		WriteOwned(p []byte, off int64, release func()) (int, error)
	}); ok {
		return ow.WriteOwned(p, off, release)
	}
	n, err := g.dev.WriteAt(p, off)
	release()
	return n, err
}

func (g *Gate) WriteZeroes(off, n int64) error {
	g.enter()
	defer g.leave()
	return g.dev.WriteZeroes(off, n)
}

func (g *Gate) Trim(off, n int64) error {
	g.enter()
	defer g.leave()
	return g.dev.Trim(off, n)
}

func (g *Gate) Flush(ctx context.Context) error {
	g.enter()
	defer g.leave()
	return g.dev.Flush(ctx)
}

// Holds is this node's gates and the loop that answers quiesce requests
// with them.
type Holds struct {
	Node    string
	State   func(ctx context.Context) (*memdb.Txn, error)
	Propose func(ctx context.Context, typ string, body any) error
	Log     *slog.Logger
	Now     func() time.Time

	mu    sync.Mutex
	gates map[string]*Gate
	// reqs are the requests this node answered and has not let go of
	// (release ends the holds); done the ones it let go of, until they
	// are deleted, so a request is held at most once.
	reqs map[string]func()
	done map[string]bool
}

// Gate serves volume id's device through a gate this node can hold.
func (h *Holds) Gate(id string, dev Device) *Gate {
	g := NewGate(dev)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gates == nil {
		h.gates = map[string]*Gate{}
	}
	h.gates[id] = g
	return g
}

// Forget drops volume id's gate (its export ended), if it is g.
func (h *Holds) Forget(id string, g *Gate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gates[id] == g {
		delete(h.gates, id)
	}
}

// Run answers requests until ctx ends.
func (h *Holds) Run(ctx context.Context) error {
	loop := &reconcile.Loop{Name: "volume-holds", Pass: h.Reconcile, Resync: 5 * time.Second, Debounce: time.Millisecond,
		MaxBackoff: time.Second, Log: h.Log}
	return loop.Run(ctx)
}

// Reconcile is one pass: answer the new requests that ask this node and
// let go of the ones that are gone.
func (h *Holds) Reconcile(ctx context.Context) (memdb.WatchSet, error) {
	if h.Now == nil {
		h.Now = time.Now
	}
	txn, ws, err := reconcile.Read(ctx, h.State, []string{volstate.QuiesceTable})
	if err != nil {
		return nil, fmt.Errorf("state not readable yet: %w", err)
	}
	live := map[string]bool{}
	var todo []*volstate.Quiesce
	h.mu.Lock()
	if h.reqs == nil {
		h.reqs, h.done = map[string]func(){}, map[string]bool{}
	}
	for _, q := range store.All[volstate.Quiesce](txn, volstate.QuiesceTable, "id") {
		live[q.ID] = true
		_, answered := q.Answers[h.Node]
		if !slices.Contains(q.Nodes, h.Node) || answered || h.reqs[q.ID] != nil || h.done[q.ID] {
			continue
		}
		// A request older than its lease is of an API that is gone
		// (this node restarted since, or never saw it in time).
		if h.Now().Sub(q.CreatedAt) > q.Lease {
			h.done[q.ID] = true
			continue
		}
		todo = append(todo, q)
	}
	for id, release := range h.reqs {
		if !live[id] {
			release()
			delete(h.reqs, id)
		}
	}
	for id := range h.done {
		if !live[id] {
			delete(h.done, id)
		}
	}
	h.mu.Unlock()
	for _, q := range todo {
		h.answer(ctx, q)
	}
	return ws, nil
}

// answer holds request q's volumes that have a gate here, for at most
// its lease, and records the answer.
func (h *Holds) answer(ctx context.Context, q *volstate.Quiesce) {
	hctx, cancel := context.WithTimeout(ctx, q.Lease)
	// The holds taken so far; once released (the lease, the request
	// gone, a failure), a hold taken after is let go at once.
	var mu sync.Mutex
	var releases []func()
	released := false
	release := func() {
		mu.Lock()
		rs, was := releases, released
		releases, released = nil, true
		mu.Unlock()
		cancel()
		for _, r := range rs {
			r()
		}
		if !was {
			h.Log.Info("volumes: released held volumes", "request", q.ID)
		}
	}
	keep := func(r func()) bool {
		mu.Lock()
		defer mu.Unlock()
		if released {
			r()
			return false
		}
		releases = append(releases, r)
		return true
	}
	// The lease runs from now, before the first hold: the API counts it
	// from before its request, so it never relies on a hold past it.
	timer := time.AfterFunc(q.Lease, func() {
		release()
		h.mu.Lock()
		if h.reqs[q.ID] != nil {
			delete(h.reqs, q.ID)
			h.done[q.ID] = true
		}
		h.mu.Unlock()
	})
	var ans volstate.QuiesceAnswer
	for _, id := range q.Volumes {
		h.mu.Lock()
		g := h.gates[id]
		h.mu.Unlock()
		if g == nil {
			continue
		}
		r, err := g.Hold(hctx)
		if err == nil && !keep(r) {
			err = errors.New("the lease ran out while holding")
		}
		if err != nil {
			ans = volstate.QuiesceAnswer{Error: fmt.Sprintf("hold volume %s on node %s: %v", id, h.Node, err)}
			break
		}
		ans.Held = append(ans.Held, id)
	}
	if ans.Error != "" {
		ans.Held = nil
		timer.Stop()
		release()
		h.mu.Lock()
		h.done[q.ID] = true
		h.mu.Unlock()
	} else {
		h.mu.Lock()
		h.reqs[q.ID] = func() { timer.Stop(); release() }
		h.mu.Unlock()
	}
	if err := h.Propose(ctx, volstate.CmdAnswerQuiesce, volstate.AnswerQuiesceCmd{ID: q.ID, Node: h.Node, Answer: ans}); err != nil {
		// Unanswered, the API gives up at its lease and deletes the
		// request; the holds end then, or at the lease.
		if errors.Is(err, store.ErrNotFound) {
			h.mu.Lock()
			if r := h.reqs[q.ID]; r != nil {
				r()
				delete(h.reqs, q.ID)
			}
			h.done[q.ID] = true
			h.mu.Unlock()
		}
		h.Log.Warn("volumes: answer a quiesce request", "request", q.ID, "err", err)
		return
	}
	h.Log.Info("volumes: held volumes for a group snapshot", "request", q.ID, "held", ans.Held, "error", ans.Error)
}
