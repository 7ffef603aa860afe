package volumes

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/storage/block"
)

// logDevice records what reaches it, in order; a write waits on block
// when it is set.
type logDevice struct {
	name     string
	mu       sync.Mutex
	log      *[]string
	logMu    *sync.Mutex
	block    chan struct{}
	flushErr error
}

func (d *logDevice) note(s string) {
	d.logMu.Lock()
	*d.log = append(*d.log, d.name+":"+s)
	d.logMu.Unlock()
}

func (d *logDevice) Size() int64                             { return 1 << 20 }
func (d *logDevice) ReadAt(p []byte, off int64) (int, error) { return len(p), nil }
func (d *logDevice) WriteAt(p []byte, off int64) (int, error) {
	d.mu.Lock()
	b := d.block
	d.mu.Unlock()
	if b != nil {
		<-b
	}
	d.note("write")
	return len(p), nil
}
func (d *logDevice) WriteZeroes(off, n int64) error { d.note("zero"); return nil }
func (d *logDevice) Trim(off, n int64) error        { d.note("trim"); return nil }
func (d *logDevice) Flush(context.Context) error {
	d.note("flush")
	return d.flushErr
}
func (d *logDevice) Extents(off, n int64) ([]block.Range, error) { return nil, nil }

func newLogDevice(name string, log *[]string, mu *sync.Mutex) *logDevice {
	return &logDevice{name: name, log: log, logMu: mu}
}

// done runs f and closes the channel when it returns.
func done(f func()) <-chan struct{} {
	ch := make(chan struct{})
	go func() { f(); close(ch) }()
	return ch
}

// writeInFlight starts a write through g and returns once it is in the
// device (which blocks it); the channel closes when the write returns.
func writeInFlight(t *testing.T, g *Gate) <-chan struct{} {
	t.Helper()
	ch := done(func() { g.WriteAt(make([]byte, 4096), 0) })
	for i := 0; ; i++ {
		g.mu.Lock()
		busy := g.busy
		g.mu.Unlock()
		if busy == 1 {
			return ch
		}
		if i == 5000 {
			t.Fatal("the write never reached the device")
		}
		time.Sleep(time.Millisecond)
	}
}

// A hold waits for the write in flight, flushes after it, keeps new
// writes, zeroes and flushes out until released, and lets reads by.
func TestGateHold(t *testing.T) {
	var log []string
	var mu sync.Mutex
	d := newLogDevice("a", &log, &mu)
	g := NewGate(d)
	d.block = make(chan struct{})
	// The write is in the device (blocked there) before the hold starts.
	inflight := writeInFlight(t, g)
	var release func()
	held := done(func() {
		var err error
		if release, err = g.Hold(context.Background()); err != nil {
			t.Error(err)
		}
	})
	select {
	case <-held:
		t.Fatal("hold returned with a write in flight")
	case <-time.After(50 * time.Millisecond):
	}
	d.mu.Lock()
	close(d.block)
	d.block = nil
	d.mu.Unlock()
	<-inflight
	<-held
	later := done(func() {
		g.WriteAt(make([]byte, 4096), 0)
		g.WriteZeroes(0, 4096)
		g.Flush(context.Background())
	})
	if _, err := g.ReadAt(make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-later:
		t.Fatal("a write went through a held gate")
	case <-time.After(50 * time.Millisecond):
	}
	mu.Lock()
	if got := strings.Join(log, " "); got != "a:write a:flush" {
		t.Fatalf("while held: %q", got)
	}
	mu.Unlock()
	release()
	release() // twice is once
	<-later
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(log, " "); got != "a:write a:flush a:write a:zero a:flush" {
		t.Fatalf("after release: %q", got)
	}
}

// A hold that cannot complete (a write stuck past its context, or a
// failed flush) holds nothing.
func TestGateHoldFails(t *testing.T) {
	var log []string
	var mu sync.Mutex
	d := newLogDevice("a", &log, &mu)
	g := NewGate(d)
	d.block = make(chan struct{})
	stuck := writeInFlight(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := g.Hold(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hold past a stuck write: %v", err)
	}
	d.mu.Lock()
	close(d.block)
	d.block = nil
	d.mu.Unlock()
	<-stuck
	<-done(func() { g.WriteAt(make([]byte, 4096), 0) }) // not held
	d.flushErr = errors.New("disk on fire")
	if _, err := g.Hold(context.Background()); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("hold with a failing flush: %v", err)
	}
	<-done(func() { g.WriteAt(make([]byte, 4096), 0) }) // not held
}

type holdWorld struct {
	t     *testing.T
	local *store.Local
	holds *Holds
	now   time.Time
}

func newHoldWorld(t *testing.T) *holdWorld {
	local, err := store.NewLocal(volstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	w := &holdWorld{t: t, local: local, now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	w.holds = &Holds{Node: "n1", State: local.Read, Log: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Now: func() time.Time { return w.now },
		Propose: func(ctx context.Context, typ string, body any) error {
			_, err := local.Propose(ctx, typ, body)
			return err
		}}
	return w
}

func (w *holdWorld) request(id string, lease time.Duration, vols ...string) {
	w.t.Helper()
	q := volstate.Quiesce{ID: id, Volumes: vols, Nodes: []string{"n1", "n2"}, Lease: lease, CreatedAt: w.now}
	if _, err := w.local.Propose(context.Background(), volstate.CmdPutQuiesce, volstate.PutQuiesceCmd{Row: q}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *holdWorld) pass() {
	w.t.Helper()
	if _, err := w.holds.Reconcile(context.Background()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *holdWorld) answer(id string) (volstate.QuiesceAnswer, bool) {
	q := store.Get[volstate.Quiesce](w.local.Local(), volstate.QuiesceTable, id)
	if q == nil {
		return volstate.QuiesceAnswer{}, false
	}
	a, ok := q.Answers["n1"]
	return a, ok
}

// A request is answered with the volumes held here (not the others');
// they stay held until the request is deleted.
func TestHoldsAnswerAndRelease(t *testing.T) {
	w := newHoldWorld(t)
	var log []string
	var mu sync.Mutex
	ga := w.holds.Gate("a", newLogDevice("a", &log, &mu))
	w.holds.Gate("b", newLogDevice("b", &log, &mu))
	w.request("gs1", time.Minute, "a", "c")
	w.pass()
	a, ok := w.answer("gs1")
	if !ok || a.Error != "" || strings.Join(a.Held, ",") != "a" {
		t.Fatalf("answer %+v %v", a, ok)
	}
	write := done(func() { ga.WriteAt(make([]byte, 4096), 0) })
	w.pass() // answered once only
	select {
	case <-write:
		t.Fatal("a held volume was written")
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := w.local.Propose(context.Background(), volstate.CmdDeleteQuiesce, volstate.DeleteQuiesceCmd{ID: "gs1"}); err != nil {
		t.Fatal(err)
	}
	w.pass()
	<-write
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(log, " "); got != "a:flush a:write" {
		t.Fatalf("log %q", got)
	}
}

// A hold ends by itself at the lease when nobody deletes the request
// (its API died), and is not taken again; a request older than its
// lease is not held at all.
func TestHoldsLease(t *testing.T) {
	w := newHoldWorld(t)
	var log []string
	var mu sync.Mutex
	ga := w.holds.Gate("a", newLogDevice("a", &log, &mu))
	w.request("gs1", 100*time.Millisecond, "a")
	w.pass()
	if a, ok := w.answer("gs1"); !ok || len(a.Held) != 1 {
		t.Fatalf("answer %+v", a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case <-done(func() { ga.WriteAt(make([]byte, 4096), 0) }):
	case <-ctx.Done():
		t.Fatal("the hold outlived its lease")
	}
	w.pass()
	<-done(func() { ga.WriteAt(make([]byte, 4096), 0) }) // not held again

	w.now = w.now.Add(time.Hour)
	w.request("old", time.Minute, "a")
	w.now = w.now.Add(2 * time.Minute)
	w.pass()
	if _, ok := w.answer("old"); ok {
		t.Fatal("a request past its lease was answered")
	}
	<-done(func() { ga.WriteAt(make([]byte, 4096), 0) })
}

// A volume that cannot be held makes the answer an error naming it, and
// nothing stays held.
func TestHoldsCannotHold(t *testing.T) {
	w := newHoldWorld(t)
	var log []string
	var mu sync.Mutex
	ga := w.holds.Gate("a", newLogDevice("a", &log, &mu))
	db := newLogDevice("b", &log, &mu)
	db.flushErr = errors.New("fenced")
	w.holds.Gate("b", db)
	w.request("gs1", time.Minute, "a", "b")
	w.pass()
	a, ok := w.answer("gs1")
	if !ok || len(a.Held) != 0 || !strings.Contains(a.Error, "volume b on node n1") || !strings.Contains(a.Error, "fenced") {
		t.Fatalf("answer %+v %v", a, ok)
	}
	<-done(func() { ga.WriteAt(make([]byte, 4096), 0) }) // a was let go
}

// A lease that runs out while a volume is still being held (a write
// stuck in it) makes the answer an error, and the volumes held before
// it are let go.
func TestHoldsLeaseRunsOutWhileHolding(t *testing.T) {
	w := newHoldWorld(t)
	var log []string
	var mu sync.Mutex
	ga := w.holds.Gate("a", newLogDevice("a", &log, &mu))
	db := newLogDevice("b", &log, &mu)
	db.block = make(chan struct{})
	gb := w.holds.Gate("b", db)
	stuck := done(func() { gb.WriteAt(make([]byte, 4096), 0) })
	for i := 0; i < 1000; i++ {
		gb.mu.Lock()
		busy := gb.busy
		gb.mu.Unlock()
		if busy == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	w.request("gs1", 100*time.Millisecond, "a", "b")
	w.pass()
	a, ok := w.answer("gs1")
	if !ok || len(a.Held) != 0 || !strings.Contains(a.Error, "volume b on node n1") {
		t.Fatalf("answer %+v %v", a, ok)
	}
	select {
	case <-done(func() { ga.WriteAt(make([]byte, 4096), 0) }):
	case <-time.After(20 * time.Second):
		t.Fatal("volume a stays held")
	}
	db.mu.Lock()
	close(db.block)
	db.block = nil
	db.mu.Unlock()
	<-stuck
}
