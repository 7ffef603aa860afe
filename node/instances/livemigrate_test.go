package instances

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// liveSteps records the live migration steps the agents report.
type liveSteps struct {
	mu    sync.Mutex
	steps []computestate.LiveMigrateStepCmd
}

func (l *liveSteps) step(_ context.Context, c computestate.LiveMigrateStepCmd) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.steps = append(l.steps, c)
	return nil
}

// last is the last step node reported, "" for none.
func (l *liveSteps) last(node string) computestate.LiveMigrateStepCmd {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.steps) - 1; i >= 0; i-- {
		if l.steps[i].Node == node {
			return l.steps[i]
		}
	}
	return computestate.LiveMigrateStepCmd{}
}

func (l *liveSteps) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.steps)
}

// liveWorld is a running server s1 on n1 and a second node n2, their
// agents reporting steps to steps.
func liveWorld(t *testing.T) (*world, *Agent, *Agent, *hypervisor.FakeHost, *liveSteps) {
	t.Helper()
	needTools(t)
	w, src, _ := oneGuestAgent(t, computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1})
	hostB := hypervisor.NewFakeHost(t.TempDir())
	dst := newAgent(t, w, hostB, t.TempDir(), &logs{})
	dst.Node = "n2"
	steps := &liveSteps{}
	src.LiveStep, dst.LiveStep = steps.step, steps.step
	src.MigrationHost, dst.MigrationHost = "127.0.0.1", "127.0.0.1"
	return w, src, dst, hostB, steps
}

func putServer(w *world, change func(*computestate.Server)) {
	s := w.server("s1")
	change(&s)
	w.Put("compute_servers", &s)
}

// TestAgentLiveMigrate follows one live migration through both nodes'
// agents as the API moves the row: the source says what it runs, the
// destination prepares (and, restarted, reports the same addresses from
// live.json), the source migrates and reports the switch only once the
// migration completed, the destination finishes and reports done, and
// the source removes its guest; the destination then runs it as its own,
// not rebooted.
func TestAgentLiveMigrate(t *testing.T) {
	w, src, dst, hostB, steps := liveWorld(t)
	ctx := context.Background()
	pass := func() { src.reconcile(ctx); dst.reconcile(ctx) }
	putServer(w, func(s *computestate.Server) {
		s.VMState, s.TaskState, s.RebootSeq = "active", computestate.TaskMigrating, 2
		s.MigrateTo, s.Live = "n2", &computestate.LiveMigration{Seq: 7, Source: "n1", Dest: "n2"}
	})
	pass()
	if c := steps.last("n1"); c.Step != computestate.LiveSource || c.RootBytes == 0 || c.Seq != 7 {
		t.Fatalf("the source's first step: %+v", c)
	}
	if c := steps.last("n2"); c.Step != "" {
		t.Fatalf("the destination stepped before the source said what it runs: %+v", c)
	}
	putServer(w, func(s *computestate.Server) { s.Live.RootBytes = 1 << 30 })
	pass()
	prep := steps.last("n2")
	if prep.Step != computestate.LivePrepared || prep.StreamAddr == "" || prep.DiskAddr == "" {
		t.Fatalf("the destination's step: %+v", prep)
	}
	if _, err := os.Stat(filepath.Join(dst.Dir, "instances", "s1", "disk")); err != nil {
		t.Fatalf("no disk made on the destination: %v", err)
	}
	// A restarted destination reports the addresses its guest listens on.
	again := newAgent(t, w, hostB, dst.Dir, &logs{})
	again.Node, again.LiveStep, again.MigrationHost = "n2", steps.step, "127.0.0.1"
	again.reconcile(ctx)
	if c := steps.last("n2"); c.StreamAddr != prep.StreamAddr || c.DiskAddr != prep.DiskAddr {
		t.Fatalf("the restarted destination reported %+v, was %+v", c, prep)
	}
	putServer(w, func(s *computestate.Server) { s.Live.StreamAddr, s.Live.DiskAddr = prep.StreamAddr, prep.DiskAddr })
	n := steps.count()
	src.reconcile(ctx) // the migration begins: no step yet
	if c := steps.last("n1"); steps.count() != n || c.Step != computestate.LiveSource {
		t.Fatalf("the source stepped as the migration began: %+v", c)
	}
	src.reconcile(ctx)
	if c := steps.last("n1"); c.Step != computestate.LiveSwitched {
		t.Fatalf("the source's step once the migration completed: %+v", c)
	}
	putServer(w, func(s *computestate.Server) { s.Host, s.MigrateTo = "n2", "" })
	pass()
	if c := steps.last("n2"); c.Step != computestate.LiveDone {
		t.Fatalf("the destination's last step: %+v", c)
	}
	if _, err := src.Driver.Adopt(ctx, "s1"); err == nil {
		t.Fatalf("the source kept its guest after the switch")
	}
	putServer(w, func(s *computestate.Server) { s.Live, s.TaskState = nil, "" })
	pass()
	if o := w.last(); o.Status != "ACTIVE" || o.Node != "n2" || o.RebootSeq != 2 {
		t.Fatalf("the destination's report after the migration: %+v", o)
	}
	if st, _ := mustAdopt(t, dst, "s1").State(ctx); st != hypervisor.Running {
		t.Fatalf("the guest on the destination is %s", st)
	}
}

// TestAgentLiveMigrateFails: a destination whose guest died reports the
// failure, and the source, its migration failed, reports it too with
// its guest running on; a source whose guest is gone before anything was
// sent fails the run, after leaves it to the destination.
func TestAgentLiveMigrateFails(t *testing.T) {
	w, src, dst, hostB, steps := liveWorld(t)
	ctx := context.Background()
	putServer(w, func(s *computestate.Server) {
		s.VMState, s.TaskState = "active", computestate.TaskMigrating
		s.MigrateTo, s.Live = "n2", &computestate.LiveMigration{Seq: 9, Source: "n1", Dest: "n2", RootBytes: 1 << 30}
	})
	dst.reconcile(ctx)
	prep := steps.last("n2")
	putServer(w, func(s *computestate.Server) { s.Live.StreamAddr, s.Live.DiskAddr = prep.StreamAddr, prep.DiskAddr })
	src.reconcile(ctx) // begins
	if err := hostB.SetState("s1", hypervisor.Shutdown); err != nil {
		t.Fatal(err)
	}
	dst.reconcile(ctx)
	if c := steps.last("n2"); c.Step != computestate.LiveFailed || c.Fault == "" {
		t.Fatalf("the destination's step with its guest gone: %+v", c)
	}
	src.reconcile(ctx)
	if c := steps.last("n1"); c.Step != computestate.LiveFailed {
		t.Fatalf("the source's step with the destination gone: %+v", c)
	}
	if st, _ := mustAdopt(t, src, "s1").State(ctx); st != hypervisor.Running {
		t.Fatalf("the source's guest is %s after the failure", st)
	}
	// The source's guest gone: a failure before anything was sent...
	putServer(w, func(s *computestate.Server) {
		s.Live = &computestate.LiveMigration{Seq: 10, Source: "n1", Dest: "n2", RootBytes: 1 << 30}
	})
	mustAdopt(t, src, "s1").Kill()
	n := steps.count()
	src.reconcile(ctx)
	if c := steps.last("n1"); steps.count() == n || c.Step != computestate.LiveFailed || c.Seq != 10 {
		t.Fatalf("the source's step with its guest gone before the stream: %+v", c)
	}
	// ... and after, none: the destination's QEMU knows what arrived.
	putServer(w, func(s *computestate.Server) {
		s.Live = &computestate.LiveMigration{Seq: 11, Source: "n1", Dest: "n2", RootBytes: 1 << 30, StreamAddr: "127.0.0.1:1", DiskAddr: "127.0.0.1:2"}
	})
	n = steps.count()
	src.reconcile(ctx)
	if steps.count() != n {
		t.Fatalf("the source stepped with its guest gone after the stream began: %+v", steps.last("n1"))
	}
}
