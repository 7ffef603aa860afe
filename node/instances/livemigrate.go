package instances

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/volumes"
)

// Nova's live migration, on the nodes (the API's side, the order of the
// steps and the crash argument are in
// fabric/compute/server_livemigrate.go; QEMU's side in
// node/hypervisor/qemu/livemigrate.go). Each step is keyed by the run's
// Seq; what a node did is read back from QEMU (which outlives rackd) or
// from live.json next to the disks, so a restarted rackd carries on:
//
//   - the source (the server's host) reports its guest's root disk size
//     and plugged disks (step source); once the destination is
//     prepared it drives QEMU's migration one step per pass
//     (MigrateOut) and reports switched, failed or cancelled as QEMU
//     says it ended. A guest that does not run is a failure only while
//     nothing was sent; after, the destination's QEMU knows.
//   - the destination (MigrateTo, not yet the host) makes a blank disk
//     of that size, the taps and the config drive, starts QEMU waiting
//     for the stream with placeholders for the plugged disks, writes
//     the addresses it listens on to live.json, and reports prepared;
//     then it reports switched when its QEMU has the whole stream, or
//     failed when its QEMU says the stream failed, or cancelled after
//     an abort while nothing completed.
//   - once the server is its own, the destination opens the volumes'
//     exports (their writer fences), swaps them in, runs the guest and
//     reports done. The source removes its guest as any guest not its
//     own.

// liveState is what the destination keeps of the run it prepared.
type liveState struct {
	Seq    uint64 `json:"seq"`
	Stream string `json:"stream"`
	Disk   string `json:"disk"`
}

func (a *Agent) liveFile(id string) string { return filepath.Join(a.instanceDir(id), "live.json") }

// liveStep reports a step of the server's run.
func (a *Agent) liveStep(ctx context.Context, s computestate.Server, c computestate.LiveMigrateStepCmd) error {
	if a.LiveStep == nil {
		return errors.New("this node cannot report live migration steps")
	}
	c.ServerID, c.Node, c.Seq = s.ID, a.Node, s.Live.Seq
	a.Log.Info("compute: live migration step", "server", s.ID, "step", c.Step, "run", c.Seq, "fault", c.Fault)
	return a.LiveStep(ctx, c)
}

// liveSource runs the source's part of a live migration: vm is the
// guest on this node, its host.
func (a *Agent) liveSource(ctx context.Context, s computestate.Server, vm hypervisor.VM, state hypervisor.PowerState) error {
	lm := s.Live
	step := func(name, fault string) error {
		return a.liveStep(ctx, s, computestate.LiveMigrateStepCmd{Step: name, Fault: fault})
	}
	lmv, ok := vm.(hypervisor.LiveMigrator)
	if vm == nil || state == hypervisor.Shutdown || state == hypervisor.Crashed || !ok {
		if lm.StreamAddr != "" {
			// The stream may have gone out: the destination's QEMU says
			// whether it arrived.
			a.Log.Warn("compute: the guest of a live migration does not run on its source; the destination decides", "server", s.ID)
			return nil
		}
		if !ok && vm != nil {
			return step(computestate.LiveFailed, "the hypervisor of "+a.Node+" cannot live-migrate guests")
		}
		return step(computestate.LiveFailed, "the guest does not run on "+a.Node)
	}
	if lm.RootBytes == 0 {
		if lm.Abort {
			return step(computestate.LiveCancelled, "")
		}
		size, err := lmv.FirstDiskSize(ctx)
		if err != nil {
			return err
		}
		plugged, err := lmv.PluggedDisks(ctx)
		if err != nil {
			return err
		}
		c := computestate.LiveMigrateStepCmd{Step: computestate.LiveSource, RootBytes: size}
		for _, d := range plugged {
			c.Disks = append(c.Disks, computestate.LiveDisk{ID: d.ID, Slot: d.Slot, Size: d.Size, Serial: d.Serial, ReadOnly: d.ReadOnly})
		}
		return a.liveStep(ctx, s, c)
	}
	if lm.StreamAddr == "" {
		if lm.Abort {
			return step(computestate.LiveCancelled, "")
		}
		return nil // the destination prepares
	}
	phase, why, err := lmv.MigrateOut(ctx, strconv.FormatUint(lm.Seq, 10),
		hypervisor.MigrationTarget{Stream: lm.StreamAddr, Disk: lm.DiskAddr},
		hypervisor.MigrationControl{Abort: lm.Abort, ForceComplete: lm.ForceComplete, Resume: s.Want == "active"})
	if err != nil {
		return fmt.Errorf("live migration of %s: %w", s.ID, err)
	}
	switch phase {
	case hypervisor.MigrationCompleted:
		return step(computestate.LiveSwitched, "")
	case hypervisor.MigrationFailed:
		return step(computestate.LiveFailed, fmt.Sprintf("Live migration of instance %s to %s failed: %s", s.ID, lm.Dest, why))
	case hypervisor.MigrationCancelled:
		return step(computestate.LiveCancelled, "")
	}
	return nil
}

// liveIn runs the destination's part before the switch-over.
func (a *Agent) liveIn(ctx context.Context, s computestate.Server, view *netstate.View) error {
	lm := s.Live
	if lm.RootBytes == 0 {
		return nil // the source has not said what it runs yet
	}
	step := func(c computestate.LiveMigrateStepCmd) error { return a.liveStep(ctx, s, c) }
	fail := func(err error) error {
		if ctx.Err() != nil {
			return err
		}
		a.Log.Warn("compute: live migration failed on its destination", "server", s.ID, "err", err)
		return step(computestate.LiveMigrateStepCmd{Step: computestate.LiveFailed,
			Fault: fmt.Sprintf("Live migration of instance %s to %s failed: %v", s.ID, a.Node, err)})
	}
	inc, ok := a.Driver.(hypervisor.Incoming)
	if !ok || a.MigrationHost == "" {
		return fail(errors.New("this node cannot receive live migrations"))
	}
	var kept liveState
	if raw, err := os.ReadFile(a.liveFile(s.ID)); err == nil {
		json.Unmarshal(raw, &kept)
	}
	vm, err := a.Driver.Adopt(ctx, s.ID)
	if err != nil && !errors.Is(err, hypervisor.ErrNotFound) {
		return err
	}
	running := false
	if vm != nil {
		st, err := vm.State(ctx)
		if err != nil {
			return err
		}
		running = st != hypervisor.Shutdown
	}
	if lm.StreamAddr != "" {
		if !running {
			return fail(errors.New("the guest process waiting for the stream is gone"))
		}
		lmv, ok := vm.(hypervisor.LiveMigrator)
		if !ok {
			return fail(errors.New("this node's hypervisor cannot live-migrate guests"))
		}
		phase, why, err := lmv.IncomingPhase(ctx)
		if err != nil {
			return err
		}
		switch {
		case phase == hypervisor.MigrationCompleted:
			return step(computestate.LiveMigrateStepCmd{Step: computestate.LiveSwitched})
		case phase == hypervisor.MigrationFailed:
			return fail(fmt.Errorf("the stream failed: %s", why))
		case lm.Abort:
			// Nothing completed here, and the guest is torn down with
			// the run: it can never run here.
			return step(computestate.LiveMigrateStepCmd{Step: computestate.LiveCancelled})
		}
		return nil
	}
	if kept.Seq != lm.Seq || !running {
		// A fresh start: nothing of an earlier run is reused.
		if vm != nil {
			if err := vm.Destroy(ctx); err != nil {
				return err
			}
		}
		dir := a.instanceDir(s.ID)
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fail(err)
		}
		root, err := a.liveRoot(ctx, s, dir)
		if err != nil {
			return fail(err)
		}
		rec := record{RebootSeq: s.RebootSeq, RebuildSeq: s.RebuildSeq, ResizeSeq: s.ResizeSeq, RescueSeq: s.RescueSeq}
		spec, err := a.vmSpec(ctx, s, view, &rec, root)
		if err != nil {
			return fail(err)
		}
		if vm, err = inc.StartIncoming(ctx, spec); err != nil {
			return fail(err)
		}
		kept = liveState{Seq: lm.Seq, Stream: freeAddr(a.MigrationHost)}
		if s.BootVolume == "" {
			kept.Disk = freeAddr(a.MigrationHost) // the local disk's copy comes here
		}
		raw, _ := json.Marshal(kept)
		if err := os.WriteFile(a.liveFile(s.ID), raw, 0o600); err != nil {
			return fail(err)
		}
	}
	lmv, ok := vm.(hypervisor.LiveMigrator)
	if !ok {
		return fail(errors.New("this node's hypervisor cannot live-migrate guests"))
	}
	var disks []hypervisor.PluggedDisk
	for _, d := range lm.Disks {
		disks = append(disks, hypervisor.PluggedDisk{ID: d.ID, Slot: d.Slot, Size: d.Size, Serial: d.Serial, ReadOnly: d.ReadOnly})
	}
	if err := lmv.PrepareIncoming(ctx, disks, hypervisor.MigrationTarget{Stream: kept.Stream, Disk: kept.Disk}); err != nil {
		return fail(err)
	}
	return step(computestate.LiveMigrateStepCmd{Step: computestate.LivePrepared, StreamAddr: kept.Stream, DiskAddr: kept.Disk})
}

// liveRoot is the destination's first disk: a blank qcow2 of the
// source's disk's size, which the source mirrors its local disk into,
// or the boot volume's placeholder, which FinishIncoming replaces with
// the volume's export once the server is this node's.
func (a *Agent) liveRoot(ctx context.Context, s computestate.Server, dir string) (hypervisor.Disk, error) {
	if s.BootVolume != "" {
		if a.Volumes == nil {
			return hypervisor.Disk{}, errors.New("this node cannot serve boot volumes")
		}
		return hypervisor.Disk{NBDSocket: a.Volumes.Socket(), NBDExport: s.BootVolume, Format: hypervisor.FormatRaw,
			Serial: volumeSerial(s.BootVolume), ID: volumes.DiskID(s.BootVolume), Placeholder: s.Live.RootBytes}, nil
	}
	disk := filepath.Join(dir, "disk")
	if out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", disk, strconv.FormatInt(s.Live.RootBytes, 10)).CombinedOutput(); err != nil {
		return hypervisor.Disk{}, fmt.Errorf("qemu-img create: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return hypervisor.Disk{Path: disk, Format: hypervisor.FormatQCOW2, Serial: "root"}, nil
}

// volumeSerial is a volume's serial in its guest, as Nova sets it: its
// id's first 20 characters.
func volumeSerial(id string) string { return id[:min(len(id), 20)] }

// liveFinish runs the destination's part after the switch-over: the
// server is this node's now.
func (a *Agent) liveFinish(ctx context.Context, s computestate.Server, vm hypervisor.VM, rec *record) error {
	lmv, ok := vm.(hypervisor.LiveMigrator)
	if vm == nil || !ok {
		return fmt.Errorf("live migration of %s: no guest here to finish it with", s.ID)
	}
	phase, _, err := lmv.IncomingPhase(ctx)
	if err != nil {
		return err
	}
	if phase != hypervisor.MigrationCompleted {
		return nil // the stream's last bytes are still coming
	}
	var hot []hypervisor.HotDisk
	if s.BootVolume != "" {
		if a.Volumes == nil {
			return errors.New("this node cannot serve boot volumes")
		}
		// The export takes the volume's writer fence, as below.
		if _, err := a.Volumes.Export(ctx, s.BootVolume); err != nil {
			return fmt.Errorf("export boot volume %s: %w", s.BootVolume, err)
		}
		hot = append(hot, hypervisor.HotDisk{ID: volumes.DiskID(s.BootVolume), Socket: a.Volumes.Socket(), Export: s.BootVolume,
			Serial: volumeSerial(s.BootVolume)})
	}
	if len(s.Live.Disks) > 0 {
		if a.Volumes == nil {
			return errors.New("this node cannot serve the volumes of a migrated server")
		}
		tx, err := a.State(ctx)
		if err != nil {
			return err
		}
		byDisk := map[string]*volstate.Volume{}
		for _, v := range volstate.VolumesOfServer(tx, s.ID) {
			byDisk[volumes.DiskID(v.ID)] = v
		}
		for _, d := range s.Live.Disks {
			v := byDisk[d.ID]
			if v == nil {
				continue // detached meanwhile: its placeholder stays empty
			}
			// The export takes the volume's writer fence: the source,
			// stopped for good, can write it no more.
			if _, err := a.Volumes.Export(ctx, v.ID); err != nil {
				return fmt.Errorf("export volume %s: %w", v.ID, err)
			}
			hot = append(hot, hypervisor.HotDisk{ID: d.ID, Socket: a.Volumes.Socket(), Export: v.ID, Serial: d.Serial, ReadOnly: d.ReadOnly})
		}
	}
	if err := lmv.FinishIncoming(ctx, hot, s.Want == "paused" || s.Want == "suspended"); err != nil {
		return err
	}
	a.mu.Lock()
	a.pids[s.ID] = vm.PID()
	a.mu.Unlock()
	os.Remove(a.liveFile(s.ID))
	*rec = a.readRecord(s.ID)
	a.Log.Info("compute: live migration done", "server", s.ID, "from", s.Live.Source, "pid", vm.PID())
	return a.liveStep(ctx, s, computestate.LiveMigrateStepCmd{Step: computestate.LiveDone})
}

// freeAddr is host with a TCP port free now, for QEMU to listen on.
func freeAddr(host string) string {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return net.JoinHostPort(host, "0")
	}
	defer l.Close()
	return l.Addr().String()
}
