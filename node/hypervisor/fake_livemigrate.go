package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// The fake's live migration: a destination started by StartIncoming and
// prepared listens on its stream address in fakeStreams (shared by every
// FakeHost, as TCP reaches across nodes); the source's first MigrateOut
// finds it there and begins, the second completes it (the destination's
// IncomingPhase then says completed, the source's guest is paused for
// good, as QEMU's postmigrate). A destination whose guest is gone fails
// the source's migration.

var fakeStreams = struct {
	sync.Mutex
	m map[string]*fakeIn
}{m: map[string]*fakeIn{}}

type fakeIn struct {
	host     *FakeHost
	id       string
	disks    []PluggedDisk
	prepared bool
	done     bool
	failed   bool
}

type fakeOut struct {
	run   string
	phase MigrationPhase
	to    *fakeIn
}

var (
	_ Incoming     = (*Fake)(nil)
	_ LiveMigrator = (*fakeVM)(nil)
)

// StartIncoming implements Incoming: a guest that waits, paused.
func (f *Fake) StartIncoming(ctx context.Context, spec VMSpec) (VM, error) {
	vm, err := f.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	f.Host.mu.Lock()
	defer f.Host.mu.Unlock()
	g := f.Host.guests[spec.ID]
	g.state, g.in, g.out = Paused, &fakeIn{host: f.Host, id: spec.ID}, nil
	return vm, nil
}

func (v *fakeVM) FirstDiskSize(ctx context.Context) (int64, error) { return 1 << 30, nil }

func (v *fakeVM) PluggedDisks(ctx context.Context) ([]PluggedDisk, error) {
	var out []PluggedDisk
	err := v.guest(ctx, "plugged disks", func(g *fakeGuest) error {
		ids := make([]string, 0, len(g.hot))
		for id := range g.hot {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for i, id := range ids {
			d := g.hot[id]
			out = append(out, PluggedDisk{ID: id, Slot: fmt.Sprintf("hp%d", i), Size: max(g.disks[id], 1<<30), Serial: d.Serial, ReadOnly: d.ReadOnly})
		}
		return nil
	})
	return out, err
}

func (v *fakeVM) MigrateOut(ctx context.Context, run string, t MigrationTarget, c MigrationControl) (MigrationPhase, string, error) {
	phase, why := MigrationRunning, ""
	err := v.guest(ctx, "migrate", func(g *fakeGuest) error {
		if g.pid == 0 {
			return fmt.Errorf("migrate %s: %w", v.id, ErrNotRunning)
		}
		fakeStreams.Lock()
		defer fakeStreams.Unlock()
		o := g.out
		if o == nil || o.run != run {
			if c.Abort {
				phase = MigrationCancelled
				return nil
			}
			in := fakeStreams.m[t.Stream]
			if in == nil || !in.prepared {
				phase, why = MigrationFailed, "connection refused"
				return nil
			}
			g.out = &fakeOut{run: run, phase: MigrationRunning, to: in}
			return nil
		}
		switch {
		case o.phase != MigrationRunning:
		case c.Abort:
			o.phase, o.to.failed = MigrationCancelled, true
		case o.to.failed || !o.to.host.alive(o.to.id):
			o.phase, why = MigrationFailed, "the destination went away"
		default:
			o.phase, o.to.done = MigrationCompleted, true
			g.state = Paused
		}
		phase = o.phase
		if phase != MigrationCompleted && phase != MigrationRunning && c.Resume && g.state == Paused {
			g.state = Running
		}
		return nil
	})
	return phase, why, err
}

// alive says whether guest id has a process on h.
func (h *FakeHost) alive(id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[id]
	return ok && g.pid != 0
}

func (v *fakeVM) PrepareIncoming(ctx context.Context, disks []PluggedDisk, t MigrationTarget) error {
	return v.guest(ctx, "prepare incoming", func(g *fakeGuest) error {
		if g.in == nil || g.pid == 0 {
			return ErrNotIncoming
		}
		fakeStreams.Lock()
		defer fakeStreams.Unlock()
		g.in.disks, g.in.prepared = slices.Clone(disks), true
		fakeStreams.m[t.Stream] = g.in
		return nil
	})
}

func (v *fakeVM) IncomingPhase(ctx context.Context) (MigrationPhase, string, error) {
	phase := MigrationRunning
	err := v.guest(ctx, "incoming phase", func(g *fakeGuest) error {
		fakeStreams.Lock()
		defer fakeStreams.Unlock()
		switch {
		case g.in == nil:
			phase = MigrationCompleted // finished: it runs the guest
		case g.in.done:
			phase = MigrationCompleted
		case g.in.failed:
			phase = MigrationFailed
		}
		return nil
	})
	return phase, "", err
}

func (v *fakeVM) FinishIncoming(ctx context.Context, disks []HotDisk, paused bool) error {
	return v.guest(ctx, "finish incoming", func(g *fakeGuest) error {
		if g.in == nil {
			return nil
		}
		fakeStreams.Lock()
		done := g.in.done
		fakeStreams.Unlock()
		if !done {
			return errors.New("the incoming migration has not completed")
		}
		for _, d := range disks {
			if g.hot == nil {
				g.hot = map[string]HotDisk{}
			}
			if g.disks == nil {
				g.disks = map[string]int64{}
			}
			g.hot[d.ID] = d
			g.disks[d.ID] = 1 << 30
		}
		g.in = nil
		if !paused {
			g.state = Running
		}
		return nil
	})
}
