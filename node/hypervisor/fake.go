package hypervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"
)

// FakeHost stands for a node's machine in unit tests: the VMs that any Fake
// driver on it starts outlive that driver, as QEMU processes outlive rackd,
// so a second driver from the same host can Adopt them. Guests are entries
// in memory; each VM's console log is a real file under dir.
type FakeHost struct {
	dir string

	mu      sync.Mutex
	guests  map[string]*fakeGuest
	nextPID int
}

type fakeGuest struct {
	spec  VMSpec
	state PowerState
	pid   int // 0 when there is no "process"
	// disks are the hot-plugged disks and the sizes the guest sees.
	disks map[string]int64
	// hot are the plugged disks as plugged, with their current limits.
	hot map[string]HotDisk
	// bootLimits are the first disk's limits once LimitBootDisk set them.
	bootLimits *IOLimits
	// grown are the sizes ResizeDisk told of the spec's disks with an ID.
	grown map[string]int64
	// hotNICs are the NICs plugged since the start; downNICs the boot
	// NICs whose link a detach set down.
	hotNICs  []NIC
	downNICs map[string]bool
	// out is the live migration it sends, in the one it waits for
	// (fake_livemigrate.go).
	out *fakeOut
	in  *fakeIn
}

// NewFakeHost returns an empty host keeping console logs under dir.
func NewFakeHost(dir string) *FakeHost {
	return &FakeHost{dir: dir, guests: map[string]*fakeGuest{}, nextPID: 1000}
}

// Driver returns a new driver instance on the host, as a restarted rackd
// would make.
func (h *FakeHost) Driver() *Fake { return &Fake{Host: h} }

// NewFake returns a driver on a new FakeHost.
func NewFake(dir string) *Fake { return NewFakeHost(dir).Driver() }

// SetState forces a guest's state, to play what a guest does on its own:
// Crashed (a panic), Shutdown (it powered itself off: the process is gone),
// Running, Paused.
func (h *FakeHost) SetState(id string, s PowerState) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[id]
	if !ok {
		return fmt.Errorf("set state of %s: %w", id, ErrNotFound)
	}
	switch s {
	case Shutdown:
		g.state, g.pid = Shutdown, 0
	case Running, Paused, Crashed:
		if g.pid == 0 {
			g.pid = h.newPIDLocked()
		}
		g.state = s
	default:
		return fmt.Errorf("set state of %s: unknown state %q", id, s)
	}
	return nil
}

// Spec returns the spec a guest was last started with.
func (h *FakeHost) Spec(id string) (VMSpec, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[id]
	if !ok {
		return VMSpec{}, false
	}
	return g.spec, true
}

func (h *FakeHost) newPIDLocked() int {
	h.nextPID++
	return h.nextPID
}

func (h *FakeHost) console(id string) string { return filepath.Join(h.dir, id, "console.log") }

func (h *FakeHost) logLocked(id, format string, args ...any) {
	f, err := os.OpenFile(h.console(id), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "fake %s: %s\n", id, fmt.Sprintf(format, args...))
}

// Fake is an in-memory Driver. Set the error fields to make calls fail.
type Fake struct {
	Host *FakeHost
	// Accel is what Accelerator reports; "tcg" if empty.
	Accel string
	// StartErr and AdoptErr, when set, are returned by Start and Adopt
	// before they do anything.
	StartErr error
	AdoptErr error
	// OpErr, when set, is called before every VM operation with the VM's id
	// and the operation ("state", "poweroff", "kill", "reboot", "pause",
	// "resume", "destroy"); a non-nil result is returned instead.
	OpErr func(id, op string) error
}

var _ Driver = (*Fake)(nil)

// Start implements Driver.
func (f *Fake) Start(ctx context.Context, spec VMSpec) (VM, error) {
	if f.StartErr != nil {
		return nil, f.StartErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if err := spec.CheckFiles(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	h := f.Host
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[spec.ID]
	if ok && g.pid != 0 {
		if !g.spec.Equal(spec) {
			return nil, fmt.Errorf("start %s: running with a different spec: %w", spec.ID, ErrExists)
		}
		return &fakeVM{f: f, id: spec.ID}, nil
	}
	if err := os.MkdirAll(filepath.Join(h.dir, spec.ID), 0o750); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.ID, err)
	}
	if !ok {
		g = &fakeGuest{}
		h.guests[spec.ID] = g
	}
	g.spec, g.state, g.pid, g.bootLimits = spec, Running, h.newPIDLocked(), nil
	g.hotNICs, g.downNICs = nil, nil // a new process has the spec's NICs only
	h.logLocked(spec.ID, "booting %d vcpus, %d MB", spec.VCPUs, spec.MemoryMB)
	return &fakeVM{f: f, id: spec.ID}, nil
}

// Adopt implements Driver.
func (f *Fake) Adopt(ctx context.Context, id string) (VM, error) {
	if f.AdoptErr != nil {
		return nil, f.AdoptErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.Host.mu.Lock()
	defer f.Host.mu.Unlock()
	if _, ok := f.Host.guests[id]; !ok {
		return nil, fmt.Errorf("adopt %s: %w", id, ErrNotFound)
	}
	return &fakeVM{f: f, id: id}, nil
}

// List implements Driver.
func (f *Fake) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.Host.mu.Lock()
	defer f.Host.mu.Unlock()
	ids := make([]string, 0, len(f.Host.guests))
	for id := range f.Host.guests {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Accelerator implements Driver.
func (f *Fake) Accelerator() string {
	if f.Accel == "" {
		return "tcg"
	}
	return f.Accel
}

type fakeVM struct {
	f  *Fake
	id string
}

// guest runs fn on the guest under the host lock, after the fault hook.
func (v *fakeVM) guest(ctx context.Context, op string, fn func(g *fakeGuest) error) error {
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if v.f.OpErr != nil {
		if err := v.f.OpErr(v.id, op); err != nil {
			return err
		}
	}
	h := v.f.Host
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[v.id]
	if !ok {
		return fmt.Errorf("%s %s: %w", op, v.id, ErrNotFound)
	}
	return fn(g)
}

func (v *fakeVM) ID() string { return v.id }

func (v *fakeVM) State(ctx context.Context) (PowerState, error) {
	var s PowerState
	err := v.guest(ctx, "state", func(g *fakeGuest) error {
		s = g.state
		return nil
	})
	return s, err
}

func (v *fakeVM) PowerOff(ctx context.Context, grace time.Duration) error {
	return v.guest(ctx, "poweroff", func(g *fakeGuest) error {
		if g.pid != 0 {
			v.f.Host.logLocked(v.id, "power off")
		}
		g.state, g.pid = Shutdown, 0
		return nil
	})
}

func (v *fakeVM) Kill() error {
	return v.guest(nil, "kill", func(g *fakeGuest) error {
		g.state, g.pid = Shutdown, 0
		return nil
	})
}

func (v *fakeVM) Reboot(ctx context.Context, kind RebootKind, grace time.Duration) error {
	return v.guest(ctx, "reboot", func(g *fakeGuest) error {
		if g.pid == 0 {
			return fmt.Errorf("reboot %s: %w", v.id, ErrNotRunning)
		}
		g.state = Running
		v.f.Host.logLocked(v.id, "%s reboot", kind)
		return nil
	})
}

func (v *fakeVM) Pause(ctx context.Context) error {
	return v.guest(ctx, "pause", func(g *fakeGuest) error {
		if g.pid == 0 {
			return fmt.Errorf("pause %s: %w", v.id, ErrNotRunning)
		}
		g.state = Paused
		return nil
	})
}

func (v *fakeVM) Resume(ctx context.Context) error {
	return v.guest(ctx, "resume", func(g *fakeGuest) error {
		if g.pid == 0 {
			return fmt.Errorf("resume %s: %w", v.id, ErrNotRunning)
		}
		g.state = Running
		return nil
	})
}

func (v *fakeVM) Console() string { return v.f.Host.console(v.id) }

func (v *fakeVM) SerialSocket() string { return "" }
func (v *fakeVM) VNCSocket() string    { return "" }

func (v *fakeVM) PID() int {
	h := v.f.Host
	h.mu.Lock()
	defer h.mu.Unlock()
	if g, ok := h.guests[v.id]; ok {
		return g.pid
	}
	return 0
}

func (v *fakeVM) Destroy(ctx context.Context) error {
	err := v.guest(ctx, "destroy", func(g *fakeGuest) error {
		delete(v.f.Host.guests, v.id)
		return os.RemoveAll(filepath.Join(v.f.Host.dir, v.id))
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

var _ Hotplug = (*fakeVM)(nil)

// AttachDisk implements Hotplug: the guest sees the disk (size 0 until a
// ResizeDisk says otherwise).
func (v *fakeVM) AttachDisk(ctx context.Context, d HotDisk) error {
	return v.guest(ctx, "attach disk", func(g *fakeGuest) error {
		if g.pid == 0 {
			return fmt.Errorf("attach disk %s: %w", v.id, ErrNotRunning)
		}
		if d.ID == "" || d.Socket == "" || d.Export == "" {
			return fmt.Errorf("attach disk %s: %+v: %w", v.id, d, ErrInvalidSpec)
		}
		if g.disks == nil {
			g.disks = map[string]int64{}
		}
		if _, ok := g.disks[d.ID]; !ok && len(g.disks) >= HotplugSlots {
			return ErrNoHotplugSlot
		}
		if _, ok := g.disks[d.ID]; !ok {
			g.disks[d.ID] = 0
			if g.hot == nil {
				g.hot = map[string]HotDisk{}
			}
			if d.Encryption != nil {
				// As plugged: the caller may wipe its passphrase after.
				e := *d.Encryption
				e.Passphrase = slices.Clone(e.Passphrase)
				d.Encryption = &e
			}
			g.hot[d.ID] = d
		}
		return nil
	})
}

// LimitDisk implements Hotplug.
func (v *fakeVM) LimitDisk(ctx context.Context, id string, l IOLimits) error {
	return v.guest(ctx, "limit disk", func(g *fakeGuest) error {
		d, ok := g.hot[id]
		if !ok {
			return fmt.Errorf("limit disk %s: %w", id, ErrNotFound)
		}
		d.Limits = l
		g.hot[id] = d
		return nil
	})
}

// LimitBootDisk implements Hotplug: the limits of the spec's first disk
// change, as QEMU's would.
func (v *fakeVM) LimitBootDisk(ctx context.Context, l IOLimits) error {
	return v.guest(ctx, "limit boot disk", func(g *fakeGuest) error {
		if g.pid == 0 || len(g.spec.Disks) == 0 {
			return fmt.Errorf("limit boot disk of %s: %w", v.id, ErrNotFound)
		}
		g.bootLimits = &l
		return nil
	})
}

// BootDiskLimits is the I/O limits the first disk of the guest of id
// has now, and whether the guest exists.
func (h *FakeHost) BootDiskLimits(id string) (IOLimits, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[id]
	if !ok || len(g.spec.Disks) == 0 {
		return IOLimits{}, false
	}
	if g.bootLimits != nil {
		return *g.bootLimits, true
	}
	return g.spec.Disks[0].Limits, true
}

// HotDisk is hot disk disk of the guest of id as it was plugged, with
// the limits it has now, and whether it is plugged.
func (h *FakeHost) HotDisk(id, disk string) (HotDisk, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[id]
	if !ok {
		return HotDisk{}, false
	}
	d, ok := g.hot[disk]
	return d, ok
}

// DetachDisk implements Hotplug; the fake guest always lets go.
func (v *fakeVM) DetachDisk(ctx context.Context, id string) error {
	return v.guest(ctx, "detach disk", func(g *fakeGuest) error {
		delete(g.disks, id)
		delete(g.hot, id)
		return nil
	})
}

// ResizeDisk implements Hotplug.
func (v *fakeVM) ResizeDisk(ctx context.Context, d HotDisk, size int64) error {
	return v.guest(ctx, "resize disk", func(g *fakeGuest) error {
		if _, ok := g.disks[d.ID]; ok {
			g.disks[d.ID] = size
			return nil
		}
		for _, sd := range g.spec.Disks {
			if sd.ID != "" && sd.ID == d.ID {
				if g.grown == nil {
					g.grown = map[string]int64{}
				}
				g.grown[d.ID] = size
				return nil
			}
		}
		return fmt.Errorf("resize disk %s: %w", d.ID, ErrNotFound)
	})
}

// HotDisks implements Hotplug.
func (v *fakeVM) HotDisks(ctx context.Context) ([]string, error) {
	var out []string
	err := v.guest(ctx, "list disks", func(g *fakeGuest) error {
		for id := range g.disks {
			out = append(out, id)
		}
		sort.Strings(out)
		return nil
	})
	return out, err
}

// GrownDisk is the size ResizeDisk last told the guest of id of the
// disk it was started with whose ID is disk, and whether it did.
func (h *FakeHost) GrownDisk(id, disk string) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[id]
	if !ok {
		return 0, false
	}
	n, ok := g.grown[disk]
	return n, ok
}

// DiskSize is the size the guest of id sees of hot disk disk, and
// whether it has it.
func (h *FakeHost) DiskSize(id, disk string) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[id]
	if !ok {
		return 0, false
	}
	n, ok := g.disks[disk]
	return n, ok
}

var _ NICHotplug = (*fakeVM)(nil)

// AttachNIC implements NICHotplug; plugged NICs share the disks' slots.
func (v *fakeVM) AttachNIC(ctx context.Context, n NIC) error {
	return v.guest(ctx, "attach nic", func(g *fakeGuest) error {
		if g.pid == 0 {
			return fmt.Errorf("attach nic %s: %w", v.id, ErrNotRunning)
		}
		if err := (VMSpec{ID: v.id, VCPUs: 1, MemoryMB: 1, NICs: []NIC{n}}).Validate(); err != nil {
			return fmt.Errorf("attach nic %s: %w", v.id, err)
		}
		for _, b := range g.spec.NICs {
			if b.Tap == n.Tap {
				delete(g.downNICs, n.Tap)
				return nil
			}
		}
		if slices.ContainsFunc(g.hotNICs, func(h NIC) bool { return h.Tap == n.Tap }) {
			return nil
		}
		if len(g.disks)+len(g.hotNICs) >= HotplugSlots {
			return ErrNoHotplugSlot
		}
		g.hotNICs = append(g.hotNICs, n)
		return nil
	})
}

// DetachNIC implements NICHotplug; the fake guest always lets go of a
// plugged NIC, and a boot NIC's link goes down as QEMU's would.
func (v *fakeVM) DetachNIC(ctx context.Context, tap string) error {
	return v.guest(ctx, "detach nic", func(g *fakeGuest) error {
		for _, b := range g.spec.NICs {
			if b.Tap == tap {
				if g.downNICs == nil {
					g.downNICs = map[string]bool{}
				}
				g.downNICs[tap] = true
				return ErrBootNIC
			}
		}
		g.hotNICs = slices.DeleteFunc(g.hotNICs, func(h NIC) bool { return h.Tap == tap })
		return nil
	})
}

// NICs implements NICHotplug.
func (v *fakeVM) NICs(ctx context.Context) ([]GuestNIC, error) {
	var out []GuestNIC
	err := v.guest(ctx, "list nics", func(g *fakeGuest) error {
		if g.pid == 0 {
			return fmt.Errorf("list nics %s: %w", v.id, ErrNotRunning)
		}
		for _, n := range g.spec.NICs {
			out = append(out, GuestNIC{NIC: n})
		}
		for _, n := range g.hotNICs {
			out = append(out, GuestNIC{NIC: n, Hot: true})
		}
		return nil
	})
	return out, err
}

// DownNICs are the taps of the guest's boot NICs whose link a detach
// set down.
func (h *FakeHost) DownNICs(id string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	if g, ok := h.guests[id]; ok {
		for t := range g.downNICs {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// HotNICs are the NICs plugged into the guest of id since it started.
func (h *FakeHost) HotNICs(id string) []NIC {
	h.mu.Lock()
	defer h.mu.Unlock()
	if g, ok := h.guests[id]; ok {
		return slices.Clone(g.hotNICs)
	}
	return nil
}
