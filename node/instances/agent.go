// Package instances is the node agent for servers: it watches the servers
// the scheduler placed on this node and converges the real world to them —
// image fetched once and cached, a qcow2 overlay as root disk, the config
// drive, taps, QEMU through the hypervisor driver — and reports what it
// observes back through Raft. It adopts the guests a previous rackd
// started, and tears down completely what was deleted.
package instances

import (
	"cmp"
	"context"
	"encoding/json"
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
	"golang.org/x/sync/errgroup"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/configdrive"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/metadata"
	"github.com/rackstack/rackstack/node/reconcile"
	"github.com/rackstack/rackstack/node/volumes"
)

// Images streams an image's bytes by id.
type Images interface {
	Open(ctx context.Context, id string) (io.ReadCloser, imagestate.Image, error)
}

// BootVolumes serves the volumes servers boot from over NBD on this
// node (the volume agent's exports): Export opens and serves one
// (exporting an exported volume is not an error), on Socket. Blank
// reports whether an exported volume is blank where a LUKS header goes.
type BootVolumes interface {
	Export(ctx context.Context, id string) (int64, error)
	Socket() string
	Blank(ctx context.Context, id string) (bool, error)
	// Unexport ends the export of a volume (open no more on this node):
	// before its reimage.
	Unexport(ctx context.Context, id string) error
}

// BootReimager reimages a volume-backed server's boot volume for its
// rebuild (Nova's 2.93, see compute's rebuild_volume.go): the volume is
// reserved, then (its export here ended) written with the rebuild's
// image and in-use again.
type BootReimager interface {
	ReserveBootVolume(ctx context.Context, serverID string, rebuildSeq int) error
	ReimageBootVolume(ctx context.Context, serverID string, rebuildSeq int) error
}

// Taps makes and removes the host end of a server's NICs.
type Taps interface {
	Ensure(name string) error // create if missing, set up
	Remove(name string) error // missing is not an error
}

// Agent converges this node's servers.
type Agent struct {
	Node   string
	Dir    string // instances/<id>/ and images/<id> live here
	State  func(ctx context.Context) (*memdb.Txn, error)
	Driver hypervisor.Driver
	Images Images
	// Volumes serves boot volumes; without it a server booted from a
	// volume fails to build.
	Volumes BootVolumes
	// Reimager rebuilds boot volumes; without it the rebuild of a
	// volume-backed server fails saying so.
	Reimager BootReimager
	// Unseal opens an encrypted boot volume's sealed key (bound to the
	// volume's id); without it such a server fails to build.
	Unseal func(sealed string, aad []byte) ([]byte, error)
	Taps   Taps
	Report func(ctx context.Context, id string, o computestate.Observed) error
	// Snapshots stores the images of createImage and Step reports a
	// snapshot's progress (computestate.CmdImageStep); without them a
	// snapshot fails saying so.
	Snapshots SnapshotStore
	Step      func(ctx context.Context, c computestate.ImageStepCmd) error
	// MigrationHost is the address other nodes reach this node's guests'
	// live migrations at (its advertised host); LiveStep reports a live
	// migration's steps (computestate.CmdLiveMigrateStep). Without them
	// a live migration to this node fails saying so.
	MigrationHost string
	LiveStep      func(ctx context.Context, c computestate.LiveMigrateStepCmd) error
	// PowerOffGrace is how long a stop waits for the guest's own shutdown.
	PowerOffGrace time.Duration
	Interval      time.Duration
	Log           *slog.Logger

	mu       sync.Mutex
	reported map[string]computestate.Observed
	failed   map[string]string // server id → build failure already reported
	// pids is the guest process the agent last knew of per server, so
	// that finding one it did not start (a previous rackd's) is logged
	// once, not every pass.
	pids map[string]int
	// nicsSynced is, per server, the guest process and the ports its
	// NICs last matched in full (syncNICs), so that an unchanged guest's
	// NICs are not listed over QMP every pass.
	nicsSynced map[string]nicSync
	// guests are the servers this node runs, as the last pass saw them:
	// what the metrics collector labels a guest process's figures with.
	guests  map[string]guestMeta
	imageMu sync.Mutex
}

// record is what the agent keeps next to a server's disks, so a restarted
// rackd knows the taps to remove and the reboots it already did.
type record struct {
	Taps      []string `json:"taps"`
	RebootSeq int      `json:"reboot_seq"`
	// RebuildSeq is the last rebuild (Server.RebuildSeq) done, failed
	// or not: a rebuild is tried once per request.
	RebuildSeq int `json:"rebuild_seq,omitempty"`
	// ResizeSeq is the last resize or revert (Server.ResizeSeq) done,
	// failed or not: each is tried once per request.
	ResizeSeq int `json:"resize_seq,omitempty"`
	// RescueSeq is the last rescue or unrescue (Server.RescueSeq) done,
	// failed or not: each is tried once per request.
	RescueSeq int `json:"rescue_seq,omitempty"`
	// DownTaps are the boot NICs whose port was detached from the
	// running guest (link down, see syncNICs), until the next start.
	DownTaps []string `json:"down_taps,omitempty"`
}

// observed is a report of the guest in status and power state that
// carries every step the node has done (reboots, rebuilds, resizes,
// rescues): each report, not only the one that ends a step, so that a
// step's lost report does not leave its server waiting for it.
func (rec *record) observed(status string, power int) computestate.Observed {
	return computestate.Observed{Status: status, PowerState: power, RebootSeq: rec.RebootSeq, RebuildSeq: rec.RebuildSeq,
		ResizeSeq: rec.ResizeSeq, RescueSeq: rec.RescueSeq}
}

// withFault is o with the fault a failed step reports.
func withFault(o computestate.Observed, fault string) computestate.Observed {
	o.Fault = fault
	return o
}

// Run reconciles until ctx ends: at once when a server changes, and every
// Interval for guests whose state changed on their own.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	a.reported = map[string]computestate.Observed{}
	a.failed = map[string]string{}
	a.pids = map[string]int{}
	a.nicsSynced = map[string]nicSync{}
	a.mu.Unlock()
	for _, d := range []string{"instances", "images"} {
		if err := os.MkdirAll(filepath.Join(a.Dir, d), 0o700); err != nil {
			return err
		}
	}
	a.Log.Info("compute agent started", "node", a.Node, "accelerator", a.Driver.Accelerator(), "dir", a.Dir)
	// A burst of launches is met by one pass, which builds them side by
	// side. The loop's default resync (2 s) is the agent's.
	loop := &reconcile.Loop{
		Name: "compute", Pass: a.reconcile, Resync: a.Interval, Debounce: 100 * time.Millisecond,
		MaxBackoff: 5 * time.Second, Log: a.Log,
	}
	return loop.Run(ctx)
}

func (a *Agent) reconcile(ctx context.Context) (memdb.WatchSet, error) {
	txn, ws, err := reconcile.Read(ctx, a.State, computestate.TableNames())
	if err != nil {
		return nil, fmt.Errorf("state not readable yet: %w", err)
	}
	servers, err := computestate.Load(txn)
	if err != nil {
		a.Log.Warn("compute: read servers", "err", err)
		return nil, fmt.Errorf("read servers: %w", err)
	}
	view, err := netstate.Load(txn)
	if err != nil {
		a.Log.Warn("compute: read ports", "err", err)
		return nil, fmt.Errorf("read ports: %w", err)
	}
	// Servers converge side by side (a burst of launches builds in
	// parallel), a few at a time; the pass ends when all have.
	mine := map[string]bool{}
	guests := map[string]guestMeta{}
	var g errgroup.Group
	g.SetLimit(4)
	for _, s := range servers {
		if s.Live != nil && s.Host != a.Node && s.Live.Dest == a.Node && s.MigrateTo == a.Node && s.Want != "deleted" {
			// The destination of a live migration, before its switch
			// (livemigrate.go).
			mine[s.ID] = true
			g.Go(func() error {
				if err := a.liveIn(ctx, s, view); err != nil && ctx.Err() == nil {
					a.Log.Warn("compute: live migration in", "server", s.ID, "err", err)
				}
				return nil
			})
			continue
		}
		if s.Host != a.Node && s.MigrateFrom == a.Node && s.Baremetal == "" {
			// Migrated away, not confirmed yet: its disk stays here, the
			// guest off, for a revert (migrate.go).
			mine[s.ID] = true
			g.Go(func() error { a.keepSource(ctx, s.ID); return nil })
			continue
		}
		if s.Host != a.Node || s.Baremetal != "" {
			// A bare-metal server's Host is its node's conductor, which
			// drives the machine: there is no guest here to run.
			continue
		}
		mine[s.ID] = true
		if s.Want != "deleted" {
			guests[s.ID] = guestMeta{project: s.Project, ports: s.Ports}
		}
		g.Go(func() error {
			if err := a.converge(ctx, s, view); err != nil && ctx.Err() == nil {
				a.Log.Warn("compute: converge", "server", s.ID, "err", err)
			}
			return nil
		})
	}
	g.Wait()
	a.mu.Lock()
	a.guests = guests
	a.mu.Unlock()
	// Guests and leftovers of servers that are not ours any more.
	ids, _ := a.Driver.List(ctx)
	entries, _ := os.ReadDir(filepath.Join(a.Dir, "instances"))
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	for _, id := range ids {
		if !mine[id] {
			a.Log.Info("compute: removing a guest with no server here", "server", id)
			a.teardown(ctx, id)
			// Forgotten too: were the server placed here again (an
			// unshelve), its first report is not taken for one made.
			a.mu.Lock()
			delete(a.reported, id)
			delete(a.failed, id)
			delete(a.pids, id)
			a.mu.Unlock()
		}
	}
	return ws, nil
}

func powerState(p hypervisor.PowerState) int {
	switch p {
	case hypervisor.Running:
		return 1
	case hypervisor.Paused:
		return 3
	case hypervisor.Shutdown:
		return 4
	case hypervisor.Crashed:
		return 6
	}
	return 0
}

func (a *Agent) report(ctx context.Context, id string, o computestate.Observed) error {
	o.Node = a.Node
	a.mu.Lock()
	last, ok := a.reported[id]
	a.mu.Unlock()
	if ok && last == o {
		return nil
	}
	if err := a.Report(ctx, id, o); err != nil {
		return err
	}
	a.mu.Lock()
	a.reported[id] = o
	a.mu.Unlock()
	return nil
}

// converge brings one server's guest to what its row wants.
func (a *Agent) converge(ctx context.Context, s computestate.Server, view *netstate.View) error {
	if s.Want == "deleted" {
		if s.SnapshotImage != "" && a.Snapshots != nil {
			// Deleted while a snapshot of it ran: the image goes too.
			if err := a.Snapshots.DiscardUnfinished(ctx, s.SnapshotImage); err != nil && !errors.Is(err, store.ErrNotFound) {
				a.Log.Warn("compute: delete the image of a deleted server's snapshot", "server", s.ID, "image", s.SnapshotImage, "err", err)
			}
		}
		if s.MigrateImage != "" && a.Snapshots != nil {
			// Deleted while migrating: its disk's copy goes too.
			if err := a.Snapshots.Discard(ctx, s.MigrateImage); err != nil && !errors.Is(err, store.ErrNotFound) {
				a.Log.Warn("compute: delete the image of a deleted server's migration", "server", s.ID, "image", s.MigrateImage, "err", err)
			}
		}
		a.teardown(ctx, s.ID)
		err := a.Report(ctx, s.ID, computestate.Observed{Gone: true})
		a.mu.Lock()
		delete(a.reported, s.ID)
		delete(a.failed, s.ID)
		delete(a.pids, s.ID)
		a.mu.Unlock()
		return err
	}
	rec := a.readRecord(s.ID)
	vm, err := a.Driver.Adopt(ctx, s.ID)
	if err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
		return err
	}
	state := hypervisor.Shutdown
	if vm != nil {
		if state, err = vm.State(ctx); err != nil {
			return err
		}
		a.noteGuest(s.ID, vm.PID())
	}
	if s.SnapshotImage != "" {
		return a.snapshot(ctx, s, vm, state)
	}
	if s.Live != nil {
		if s.Live.Dest == a.Node {
			return a.liveFinish(ctx, s, vm, &rec)
		}
		return a.liveSource(ctx, s, vm, state)
	}
	if migratingOut(s, rec) {
		return a.migrateOut(ctx, s, vm, state, &rec)
	}
	if resizing(s, rec) {
		return a.resize(ctx, s, view, vm, state, &rec)
	}
	if rescuing(s, rec) {
		return a.rescue(ctx, s, view, vm, state, &rec)
	}
	starting := s.VMState == "building" || s.TaskState == "powering-on" || s.TaskState == "rebooting" || s.TaskState == "rebooting_hard" ||
		s.TaskState == computestate.TaskUnshelving
	switch s.Want {
	case "active":
		if s.RebuildSeq > rec.RebuildSeq {
			return a.rebuild(ctx, s, view, vm, state, &rec)
		}
		if vm == nil || state == hypervisor.Shutdown {
			if !starting {
				if s.VMState == "error" {
					return nil
				}
				// It died or shut itself down: say so; the API records
				// it stopped, with a stop by the system in its action
				// log, as Nova's power-state sync does.
				if s.VMState == "active" && s.TaskState == "" {
					a.Log.Warn("compute: instance shutdown by itself; stopping it", "server", s.ID,
						"vm_state", s.VMState, "task_state", s.TaskState, "db_power_state", s.PowerState, "vm_power_state", state)
				}
				return a.report(ctx, s.ID, rec.observed("SHUTOFF", 4))
			}
			a.mu.Lock()
			failed := a.failed[s.ID]
			a.mu.Unlock()
			if failed != "" {
				return nil
			}
			if vm, err = a.build(ctx, s, view, &rec); err != nil {
				a.mu.Lock()
				a.failed[s.ID] = err.Error()
				a.mu.Unlock()
				return a.report(ctx, s.ID, computestate.Observed{Status: "ERROR", Fault: fmt.Sprintf("Build of instance %s failed: %v", s.ID, err)})
			}
			a.mu.Lock()
			a.pids[s.ID] = vm.PID() // started here: nothing to adopt
			// A guest started by a build is reported whatever the last
			// report said: an unshelve that came before this agent saw
			// the offload left that report (ACTIVE, from before the
			// shelve) in place, and the row waits in unshelving for one.
			delete(a.reported, s.ID)
			a.mu.Unlock()
			a.unshelved(ctx, s)
			if s.RebootSeq > rec.RebootSeq {
				rec.RebootSeq = s.RebootSeq // a fresh boot is the reboot
				a.writeRecord(s.ID, rec)
			}
			return a.report(ctx, s.ID, rec.observed("ACTIVE", 1))
		}
		if state == hypervisor.Crashed && s.RebootSeq <= rec.RebootSeq {
			// A crash of a running server is met as a shutdown is (the
			// stop then ends the crashed process), but the stop's event
			// says it failed and why.
			if s.VMState == "active" && s.TaskState == "" {
				a.Log.Warn("compute: instance crashed; stopping it", "server", s.ID, "pid", vm.PID())
				return a.report(ctx, s.ID, withFault(rec.observed("SHUTOFF", 6), "the guest crashed (guest-panicked or a hypervisor internal error)"))
			}
			return a.report(ctx, s.ID, computestate.Observed{Status: "ERROR", PowerState: 6, Fault: "the guest crashed"})
		}
		if s.RebootSeq > rec.RebootSeq {
			kind := hypervisor.SoftReboot
			if s.RebootHard {
				kind = hypervisor.HardReboot
			}
			if err := vm.Reboot(ctx, kind, a.grace()); err != nil {
				return err
			}
			rec.RebootSeq = s.RebootSeq
			a.writeRecord(s.ID, rec)
		} else if state == hypervisor.Paused {
			if err := vm.Resume(ctx); err != nil {
				return err
			}
		}
		a.syncNICs(ctx, s, view, vm, &rec, true)
		return a.report(ctx, s.ID, rec.observed("ACTIVE", 1))
	case "stopped":
		if vm != nil && state != hypervisor.Shutdown {
			if err := vm.PowerOff(ctx, a.grace()); err != nil {
				return err
			}
		}
		return a.report(ctx, s.ID, rec.observed("SHUTOFF", 4))
	case "paused", "suspended":
		// Suspend keeps the guest paused in memory here (no save to disk).
		if vm == nil || state == hypervisor.Shutdown {
			return a.report(ctx, s.ID, rec.observed("SHUTOFF", 4))
		}
		if state == hypervisor.Running {
			if err := vm.Pause(ctx); err != nil {
				return err
			}
		}
		a.syncNICs(ctx, s, view, vm, &rec, false)
		if s.Want == "suspended" {
			return a.report(ctx, s.ID, rec.observed("SUSPENDED", 7))
		}
		return a.report(ctx, s.ID, rec.observed("PAUSED", 3))
	}
	return nil
}

// noteGuest logs a guest process the agent did not start and had not
// seen yet: one a previous rackd left running, adopted now.
func (a *Agent) noteGuest(id string, pid int) {
	a.mu.Lock()
	known := a.pids[id]
	if pid == 0 {
		delete(a.pids, id)
	} else {
		a.pids[id] = pid
	}
	a.mu.Unlock()
	if pid != 0 && pid != known {
		a.Log.Info("compute: adopted a running guest", "server", id, "pid", pid)
	}
}

func (a *Agent) grace() time.Duration {
	if a.PowerOffGrace > 0 {
		return a.PowerOffGrace
	}
	return 30 * time.Second
}

func (a *Agent) instanceDir(id string) string { return filepath.Join(a.Dir, "instances", id) }

func (a *Agent) readRecord(id string) record {
	var r record
	raw, err := os.ReadFile(filepath.Join(a.instanceDir(id), "record.json"))
	if err == nil {
		json.Unmarshal(raw, &r)
	}
	return r
}

func (a *Agent) writeRecord(id string, r record) error {
	raw, _ := json.Marshal(r)
	p := filepath.Join(a.instanceDir(id), "record.json")
	if err := os.WriteFile(p+".tmp", raw, 0o600); err != nil {
		return err
	}
	return os.Rename(p+".tmp", p)
}

// build makes everything the guest needs and starts it.
func (a *Agent) build(ctx context.Context, s computestate.Server, view *netstate.View, rec *record) (hypervisor.VM, error) {
	dir := a.instanceDir(s.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	root, err := a.rootDisk(ctx, s, dir)
	if err != nil {
		return nil, err
	}
	spec, err := a.vmSpec(ctx, s, view, rec, root)
	if err != nil {
		if e := root.Encryption; e != nil {
			clear(e.Passphrase)
		}
		return nil, err
	}
	vm, err := a.Driver.Start(ctx, spec)
	if e := root.Encryption; e != nil {
		clear(e.Passphrase) // QEMU has it, or it failed
	}
	return vm, err
}

// vmSpec is the VM a server's guest runs in, with root as its root
// disk: its taps made and recorded in rec, its config drive built.
func (a *Agent) vmSpec(ctx context.Context, s computestate.Server, view *netstate.View, rec *record, root hypervisor.Disk) (hypervisor.VMSpec, error) {
	dir := a.instanceDir(s.ID)
	ports := map[string]netstate.Port{}
	for _, p := range view.Ports {
		ports[p.ID] = p
	}
	mtus := map[string]int{}
	for _, n := range view.Networks {
		mtus[n.ID] = n.MTU
	}
	// The ephemeral and swap disks follow the root disk (vdb, ...), as
	// the metadata's block-device-mapping says (localdisks.go).
	local, err := localDisks(ctx, s, dir)
	if err != nil {
		return hypervisor.VMSpec{}, err
	}
	spec := hypervisor.VMSpec{
		ID: s.ID, Name: computestate.Hostname(&s), VCPUs: s.Flavor.VCPUs, MemoryMB: s.Flavor.RAM,
		Disks: append([]hypervisor.Disk{root}, local...),
	}
	if s.RescueImage != "" {
		// Rescued: the firmware boots the rescue disk; the server's own
		// disk is the second, for the rescue to repair. A stable rescue
		// keeps the own disks first and adds the rescue disk after them.
		rescue, err := a.rescueDisk(ctx, s, dir)
		if err != nil {
			return hypervisor.VMSpec{}, err
		}
		spec.Disks = append([]hypervisor.Disk{rescue, root}, local...)
		if s.RescueStable {
			rescue.Boot = true
			spec.Disks = append(append([]hypervisor.Disk{root}, local...), rescue)
		}
	}
	cd := metadata.Describe(s)
	if tx, err := a.State(ctx); err == nil {
		// Its tagged devices, without addresses: the guest is not
		// placed yet (the metadata service gives them).
		cd.Devices = metadata.Devices(tx, &s, nil)
	}
	rec.Taps, rec.DownTaps = nil, nil
	for _, id := range s.Ports {
		p, ok := ports[id]
		if !ok {
			return hypervisor.VMSpec{}, fmt.Errorf("port %s does not exist", id)
		}
		tap := dataplane.DeviceName(id)
		if err := a.Taps.Ensure(tap); err != nil {
			return hypervisor.VMSpec{}, fmt.Errorf("tap %s: %w", tap, err)
		}
		rec.Taps = append(rec.Taps, tap)
		spec.NICs = append(spec.NICs, hypervisor.NIC{Tap: tap, MAC: p.MAC})
		cd.NICs = append(cd.NICs, metadata.NIC(p, tap, mtus[p.NetworkID]))
	}
	if err := a.writeRecord(s.ID, *rec); err != nil {
		return hypervisor.VMSpec{}, err
	}
	// Every server gets a config drive: there is no metadata service.
	spec.ConfigDrive = filepath.Join(dir, "disk.config")
	if err := configdrive.Build(ctx, spec.ConfigDrive, cd); err != nil {
		return hypervisor.VMSpec{}, err
	}
	return spec, nil
}

// rootDisk is the disk a server boots from: its volume, served over NBD
// by this node, or a qcow2 overlay of its image.
func (a *Agent) rootDisk(ctx context.Context, s computestate.Server, dir string) (hypervisor.Disk, error) {
	if s.BootVolume != "" {
		if a.Volumes == nil {
			return hypervisor.Disk{}, errors.New("this node cannot boot servers from volumes")
		}
		if _, err := a.Volumes.Export(ctx, s.BootVolume); err != nil {
			return hypervisor.Disk{}, fmt.Errorf("export boot volume %s: %w", s.BootVolume, err)
		}
		serial := s.BootVolume
		if len(serial) > 20 {
			serial = serial[:20] // as Nova sets a volume's serial
		}
		// Its nodes are named as a plugged volume's, so the volume
		// agent grows it in the guest as it does those.
		disk := hypervisor.Disk{NBDSocket: a.Volumes.Socket(), NBDExport: s.BootVolume, Format: hypervisor.FormatRaw, Serial: serial,
			ID: volumes.DiskID(s.BootVolume)}
		// The volume's attachment mode and its type's QoS limits hold
		// from the VM's start, as for a volume plugged later.
		tx, err := a.State(ctx)
		if err != nil {
			return hypervisor.Disk{}, err
		}
		if v, err := volstate.LoadVolume(tx, s.BootVolume); err == nil {
			disk.ReadOnly = len(v.Attachments) == 1 && v.Attachments[0].Mode == volstate.AttachReadOnly
			disk.Limits = volumes.Limits(tx, v.TypeID)
			if v.Key != "" {
				if disk.Encryption, err = a.bootKey(ctx, tx, v); err != nil {
					return hypervisor.Disk{}, err
				}
			}
		}
		return disk, nil
	}
	// An unshelved server boots from the image its disk was shelved in.
	// A disk made already is the server's (a migrated server's was made
	// from its migration's image, which is gone): no image is needed.
	disk := filepath.Join(dir, "disk")
	if _, err := os.Stat(disk); err != nil {
		from := cmp.Or(s.ShelvedImage, s.ImageID)
		base, img, err := a.cachedImage(ctx, from)
		if err != nil {
			return hypervisor.Disk{}, fmt.Errorf("image %s: %w", from, err)
		}
		if err := overlay(ctx, base, imageFormat(img), disk, s.RootGB); err != nil {
			return hypervisor.Disk{}, err
		}
	}
	return hypervisor.Disk{Path: disk, Format: hypervisor.FormatQCOW2, Serial: "root"}, nil
}

// bootKey is how QEMU opens encrypted boot volume v: its key, and
// whether its LUKS header is still to be written (a blank volume). The
// caller clears the passphrase once the VM has it.
func (a *Agent) bootKey(ctx context.Context, tx *memdb.Txn, v *volstate.Volume) (*hypervisor.DiskEncryption, error) {
	if a.Unseal == nil {
		return nil, fmt.Errorf("boot volume %s is encrypted and this node cannot open volume keys", v.ID)
	}
	pass, err := a.Unseal(v.Key, []byte(v.ID))
	if err != nil {
		return nil, fmt.Errorf("open the key of boot volume %s: %w", v.ID, err)
	}
	blank, err := a.Volumes.Blank(ctx, v.ID)
	if err != nil {
		clear(pass)
		return nil, fmt.Errorf("read the header of boot volume %s: %w", v.ID, err)
	}
	return &hypervisor.DiskEncryption{Passphrase: pass, CipherAlg: volumes.CipherAlg(tx, v), Format: blank}, nil
}

// rebuild gives the guest a new root disk from the server's image (the
// rebuild's, by now in the row) and boots it again with a config drive
// built from the server as it is: its NICs, taps and MACs stay, and the
// volume agent plugs its volumes back into the new guest process. The
// new disk is made beside the old one and replaces it only once made, so
// a rebuild whose image cannot be had leaves the old disk, and the
// server in ERROR saying why. A failed rebuild is not tried again: the
// next rebuild request is.
func (a *Agent) rebuild(ctx context.Context, s computestate.Server, view *netstate.View, vm hypervisor.VM, state hypervisor.PowerState, rec *record) error {
	a.Log.Info("compute: rebuilding", "server", s.ID, "image", s.ImageID, "rebuild", s.RebuildSeq)
	if vm != nil && state != hypervisor.Shutdown {
		// Stopped as Nova does, with the guest's own shutdown first; an
		// error here is retried on the next pass.
		if err := vm.PowerOff(ctx, a.grace()); err != nil {
			return fmt.Errorf("stop guest for rebuild: %w", err)
		}
	}
	fail := func(err error) error {
		if ctx.Err() != nil {
			return err // shutting down: the next rackd rebuilds it
		}
		rec.RebuildSeq = s.RebuildSeq
		if werr := a.writeRecord(s.ID, *rec); werr != nil {
			return werr
		}
		return a.report(ctx, s.ID, withFault(rec.observed("ERROR", 4), fmt.Sprintf("Rebuild of instance %s failed: %v", s.ID, err)))
	}
	if computestate.Reimaging(&s) {
		// Its root disk is its boot volume: reimaged (2.93), off and
		// not exported here meanwhile.
		if err := a.reimageBoot(ctx, s); err != nil {
			return fail(err)
		}
	}
	dir := a.instanceDir(s.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	if !s.PreserveEphemeral {
		// Its ephemeral and swap disks are made anew, empty, by the
		// start below (Nova's rebuild without preserve_ephemeral).
		if err := dropLocalDisks(s, dir); err != nil {
			return fail(fmt.Errorf("remove ephemeral disks: %w", err))
		}
	}
	// A server booted from a volume keeps it: an evacuated one
	// (server_evacuate.go) boots from it on its new host.
	if s.BootVolume == "" {
		fresh := filepath.Join(dir, "disk.rebuild")
		os.Remove(fresh)
		base, img, err := a.cachedImage(ctx, s.ImageID)
		if err != nil {
			return fail(fmt.Errorf("image %s: %w", s.ImageID, err))
		}
		if err := overlay(ctx, base, imageFormat(img), fresh, s.RootGB); err != nil {
			return fail(err)
		}
		if err := os.Rename(fresh, filepath.Join(dir, "disk")); err != nil {
			return fail(fmt.Errorf("replace root disk: %w", err))
		}
	}
	vm, err := a.build(ctx, s, view, rec)
	if err != nil {
		return fail(err)
	}
	a.mu.Lock()
	a.pids[s.ID] = vm.PID() // started here: nothing to adopt
	delete(a.failed, s.ID)
	a.mu.Unlock()
	// The fresh boot is also any reboot asked for meanwhile.
	rec.RebuildSeq, rec.RebootSeq = s.RebuildSeq, max(rec.RebootSeq, s.RebootSeq)
	if err := a.writeRecord(s.ID, *rec); err != nil {
		return err
	}
	a.Log.Info("compute: rebuilt", "server", s.ID, "image", s.ImageID, "pid", vm.PID())
	return a.report(ctx, s.ID, rec.observed("ACTIVE", 1))
}

// imageFormat is how the hypervisor reads a cached image.
func imageFormat(img imagestate.Image) string {
	if img.DiskFormat == "qcow2" {
		return hypervisor.FormatQCOW2
	}
	return hypervisor.FormatRaw
}

// teardown removes everything of a server on this node: the guest, its
// run files, its taps and its disks.
func (a *Agent) teardown(ctx context.Context, id string) {
	if vm, err := a.Driver.Adopt(ctx, id); err == nil {
		if err := vm.Destroy(ctx); err != nil {
			a.Log.Warn("compute: destroy guest", "server", id, "err", err)
		}
	}
	rec := a.readRecord(id)
	for _, tap := range rec.Taps {
		if err := a.Taps.Remove(tap); err != nil {
			a.Log.Warn("compute: remove tap", "tap", tap, "err", err)
		}
	}
	os.RemoveAll(a.instanceDir(id))
}

// cachedImage returns the path of the image's bytes on this node, fetched
// once and checked against the image's hash.
func (a *Agent) cachedImage(ctx context.Context, id string) (string, imagestate.Image, error) {
	a.imageMu.Lock()
	defer a.imageMu.Unlock()
	path := filepath.Join(a.Dir, "images", id)
	var img imagestate.Image
	if raw, err := os.ReadFile(path + ".json"); err == nil && json.Unmarshal(raw, &img) == nil {
		if _, err := os.Stat(path); err == nil {
			return path, img, nil
		}
	}
	rc, img, err := a.Images.Open(ctx, id)
	if err != nil {
		return "", img, err
	}
	defer rc.Close()
	if err := fetch(rc, path, img); err != nil {
		return "", img, err
	}
	raw, _ := json.Marshal(img)
	if err := os.WriteFile(path+".json", raw, 0o600); err != nil {
		return "", img, err
	}
	return path, img, nil
}

// Purge tears down every server this node has: the guests the driver
// knows and the taps and disks recorded for them. It is for removing a
// node's compute for good (rackd dev --purge), not for a running agent.
func (a *Agent) Purge(ctx context.Context) ([]string, error) {
	ids, err := a.Driver.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list guests: %w", err)
	}
	entries, err := os.ReadDir(filepath.Join(a.Dir, "instances"))
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("list instance records: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && !slices.Contains(ids, e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	for _, id := range ids {
		a.teardown(ctx, id)
	}
	return ids, nil
}

// reimageBoot has a volume-backed server's boot volume reimaged for its
// rebuild (the guest is off): reserved, its export here ended, then
// written with the image and in-use again.
func (a *Agent) reimageBoot(ctx context.Context, s computestate.Server) error {
	if a.Reimager == nil || a.Volumes == nil {
		return errors.New("this node cannot rebuild servers booted from volumes")
	}
	if err := a.Reimager.ReserveBootVolume(ctx, s.ID, s.RebuildSeq); err != nil {
		return fmt.Errorf("reserve boot volume %s: %w", s.BootVolume, err)
	}
	if err := a.Volumes.Unexport(ctx, s.BootVolume); err != nil {
		return fmt.Errorf("end the export of boot volume %s: %w", s.BootVolume, err)
	}
	return a.Reimager.ReimageBootVolume(ctx, s.ID, s.RebuildSeq)
}
