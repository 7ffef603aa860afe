package qemu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

// Live migration with QEMU's own tools (see hypervisor.LiveMigrator):
//
//   - the destination is started with -incoming defer -S; its plugged
//     disks are raw nodes over null-co placeholders ("nbd-<id>-a", the
//     name a plugged disk's first NBD node has) in the source's slots;
//     its first disk, a blank qcow2, is exported writable by QEMU's NBD
//     server (nbd-server-start, block-export-add "root"), and
//     migrate-incoming listens for the stream;
//   - the source mirrors its first disk into that export (blockdev-add
//     of an NBD client node "mig-root", blockdev-mirror sync=full: the
//     destination's copy has no backing file, so it needs no image),
//     and once the mirror is ready runs migrate with
//     pause-before-switchover: at pre-switchover its guest is stopped,
//     the mirror is cancelled in sync (everything written is copied),
//     and migrate-continue completes the migration;
//   - the destination, the stream complete, ends its NBD server, swaps
//     each placeholder for the NBD export of the volume now open on its
//     node (blockdev-reopen, as ResizeDisk swaps a grown export in) and
//     runs the guest (cont).
//
// The stream and the disk's NBD export are plain TCP on the node's
// advertised address, open only while a run prepares and migrates, and
// unauthenticated (QEMU's TLS for both is not set up yet): the nodes'
// network must be trusted, as the Raft peers' is not required to be.
//
// The run's id is written to migrate.run in the run directory before
// migrate is sent, so a phase QEMU keeps from an earlier run (a failed
// one stays "failed" in query-migrate) is never read as this run's.

const (
	mirrorJob   = "mig-root"
	mirrorNode  = "mig-root"
	rootExport  = "root"
	nbdExportID = "mig-root"
	// switchWait bounds the wait for the mirror to end at
	// pre-switchover, while the guest is stopped.
	switchWait = 30 * time.Second
)

var (
	_ hypervisor.Incoming     = (*Driver)(nil)
	_ hypervisor.LiveMigrator = (*vm)(nil)
)

// StartIncoming implements hypervisor.Incoming.
func (d *Driver) StartIncoming(ctx context.Context, spec hypervisor.VMSpec) (hypervisor.VM, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("start incoming %s: %w", spec.ID, err)
	}
	if err := spec.CheckFiles(); err != nil {
		return nil, fmt.Errorf("start incoming %s: %w", spec.ID, err)
	}
	p := newRunPaths(d.runDir, spec.ID)
	lock, err := d.lock(spec.ID)
	if err != nil {
		return nil, fmt.Errorf("start incoming %s: %w", spec.ID, err)
	}
	defer lock.unlock()
	if pid := d.livePID(p); pid != 0 {
		return nil, fmt.Errorf("start incoming %s: a guest runs (pid %d): %w", spec.ID, pid, hypervisor.ErrExists)
	}
	if err := d.boot(ctx, spec, p, true); err != nil {
		return nil, fmt.Errorf("start incoming %s: %w", spec.ID, err)
	}
	return &vm{d: d, id: spec.ID, p: p}, nil
}

// migrateInfo is query-migrate's reply.
type migrateInfo struct {
	Status    string `json:"status"`
	ErrorDesc string `json:"error-desc"`
}

type blockJob struct {
	Device string `json:"device"`
	Ready  bool   `json:"ready"`
}

// FirstDiskSize implements hypervisor.LiveMigrator.
func (v *vm) FirstDiskSize(ctx context.Context) (int64, error) {
	var size int64
	err := v.hotCommand(ctx, "disk size", func(c *qmp.Client) error {
		var devs []struct {
			Device   string `json:"device"`
			Inserted *struct {
				Image struct {
					VirtualSize int64 `json:"virtual-size"`
				} `json:"image"`
			} `json:"inserted"`
		}
		if err := c.Execute(ctx, "query-block", nil, &devs); err != nil {
			return err
		}
		for _, d := range devs {
			if d.Device == "drive-disk0" && d.Inserted != nil {
				size = d.Inserted.Image.VirtualSize
				return nil
			}
		}
		return errors.New("the VM has no first disk")
	})
	return size, err
}

// firstDiskNode is the node name of the VM's first disk (QEMU names a
// -drive's node itself).
func firstDiskNode(ctx context.Context, c *qmp.Client) (string, error) {
	var devs []struct {
		Device   string `json:"device"`
		Inserted *struct {
			NodeName string `json:"node-name"`
		} `json:"inserted"`
	}
	if err := c.Execute(ctx, "query-block", nil, &devs); err != nil {
		return "", err
	}
	for _, d := range devs {
		if d.Device == "drive-disk0" && d.Inserted != nil {
			return d.Inserted.NodeName, nil
		}
	}
	return "", errors.New("the VM has no first disk")
}

// PluggedDisks implements hypervisor.LiveMigrator.
func (v *vm) PluggedDisks(ctx context.Context) ([]hypervisor.PluggedDisk, error) {
	var out []hypervisor.PluggedDisk
	err := v.hotCommand(ctx, "list plugged disks", func(c *qmp.Client) error {
		devs, err := peripherals(ctx, c)
		if err != nil {
			return err
		}
		var nodes []struct {
			NodeName string `json:"node-name"`
			ReadOnly bool   `json:"ro"`
			Image    struct {
				VirtualSize int64 `json:"virtual-size"`
			} `json:"image"`
		}
		if err := c.Execute(ctx, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
			return err
		}
		for dev := range devs {
			id, ok := strings.CutPrefix(dev, "disk-")
			if !ok {
				continue
			}
			d := hypervisor.PluggedDisk{ID: id}
			var bus string
			if err := c.Execute(ctx, "qom-get", map[string]any{"path": "/machine/peripheral/" + dev, "property": "parent_bus"}, &bus); err != nil {
				return fmt.Errorf("slot of disk %s: %w", id, err)
			}
			d.Slot = path.Base(bus)
			if err := c.Execute(ctx, "qom-get", map[string]any{"path": "/machine/peripheral/" + dev, "property": "serial"}, &d.Serial); err != nil {
				return fmt.Errorf("serial of disk %s: %w", id, err)
			}
			for _, n := range nodes {
				if n.NodeName == hotNode(id) {
					d.Size, d.ReadOnly = n.Image.VirtualSize, n.ReadOnly
				}
			}
			if d.Size == 0 {
				return fmt.Errorf("disk %s has no node %s", id, hotNode(id))
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// runFile is where the source records the run it sent migrate for.
func (v *vm) runFile() string { return filepath.Join(v.p.dir, "migrate.run") }

// MigrateOut implements hypervisor.LiveMigrator.
func (v *vm) MigrateOut(ctx context.Context, run string, t hypervisor.MigrationTarget, mc hypervisor.MigrationControl) (hypervisor.MigrationPhase, string, error) {
	phase, why := hypervisor.MigrationRunning, ""
	err := v.hotCommand(ctx, "migrate", func(c *qmp.Client) error {
		var mi migrateInfo
		if err := c.Execute(ctx, "query-migrate", nil, &mi); err != nil {
			return err
		}
		sent, _ := os.ReadFile(v.runFile())
		if string(sent) != run {
			mi = migrateInfo{Status: "none"} // an earlier run's, if any
		}
		switch mi.Status {
		case "completed":
			phase = hypervisor.MigrationCompleted
			return endMirror(ctx, c)
		case "failed", "cancelled":
			phase, why = hypervisor.MigrationFailed, mi.ErrorDesc
			if mi.Status == "cancelled" || mc.Abort {
				phase = hypervisor.MigrationCancelled
			}
			return v.settleFailed(ctx, c, mc)
		case "pre-switchover":
			if mc.Abort {
				return c.Execute(ctx, "migrate_cancel", nil, nil)
			}
			// The guest is stopped: the mirror, ready, is in sync once
			// its last writes are copied, which cancelling it does.
			if err := endMirror(ctx, c); err != nil {
				return err
			}
			return c.Execute(ctx, "migrate-continue", map[string]any{"state": "pre-switchover"}, nil)
		case "none":
		default: // setup, active, device and the like: under way
			if mc.Abort {
				return c.Execute(ctx, "migrate_cancel", nil, nil)
			}
			if mc.ForceComplete {
				return pauseGuest(ctx, c)
			}
			return nil
		}
		// Not sent yet: the mirror first (of a local first disk: a
		// volume has no t.Disk), then the stream.
		if mc.Abort {
			phase = hypervisor.MigrationCancelled
			return v.settleFailed(ctx, c, mc)
		}
		jobs, err := blockJobs(ctx, c)
		if err != nil {
			return err
		}
		job, mirroring := jobs[mirrorJob]
		if t.Disk == "" {
			job, mirroring = blockJob{Ready: true}, true
		}
		if !mirroring {
			if err := startMirror(ctx, c, t); err != nil {
				phase, why = hypervisor.MigrationFailed, err.Error()
				return v.settleFailed(ctx, c, mc)
			}
			return nil
		}
		if !job.Ready {
			return nil
		}
		if err := c.Execute(ctx, "migrate-set-capabilities", map[string]any{"capabilities": []any{
			map[string]any{"capability": "pause-before-switchover", "state": true},
			// The destination acknowledges what it loaded: completed
			// here means the guest's state is all there.
			map[string]any{"capability": "return-path", "state": true},
		}}, nil); err != nil {
			return err
		}
		if err := writeFileSync(v.runFile(), []byte(run)); err != nil {
			return err
		}
		if err := c.Execute(ctx, "migrate", map[string]any{"uri": "tcp:" + t.Stream}, nil); err != nil {
			// Refused outright: nothing was sent.
			phase, why = hypervisor.MigrationFailed, err.Error()
			return v.settleFailed(ctx, c, mc)
		}
		return nil
	})
	return phase, why, err
}

// startMirror opens the destination's export and mirrors the first
// disk into it, all of it.
func startMirror(ctx context.Context, c *qmp.Client, t hypervisor.MigrationTarget) error {
	host, port, err := net.SplitHostPort(t.Disk)
	if err != nil {
		return fmt.Errorf("disk address %q: %w", t.Disk, err)
	}
	nodes, err := blockNodes(ctx, c)
	if err != nil {
		return err
	}
	if nodes[mirrorNode] {
		// With no mirror running, it is an earlier run's, whose
		// destination may be gone: opened again, to this one's.
		if err := c.Execute(ctx, "blockdev-del", map[string]any{"node-name": mirrorNode}, nil); err != nil {
			return fmt.Errorf("close an earlier run's destination disk: %w", err)
		}
	}
	export := t.DiskExport
	if export == "" {
		export = rootExport
	}
	if err := c.Execute(ctx, "blockdev-add", map[string]any{"driver": "nbd", "node-name": mirrorNode, "export": export,
		"server": map[string]any{"type": "inet", "host": host, "port": port}}, nil); err != nil {
		return fmt.Errorf("open the destination's disk: %w", err)
	}
	root, err := firstDiskNode(ctx, c)
	if err != nil {
		return err
	}
	if err := c.Execute(ctx, "blockdev-mirror", map[string]any{"job-id": mirrorJob, "device": root, "target": mirrorNode,
		"sync": "full", "auto-dismiss": true}, nil); err != nil {
		_ = c.Execute(ctx, "blockdev-del", map[string]any{"node-name": mirrorNode}, nil)
		return fmt.Errorf("mirror the disk: %w", err)
	}
	return nil
}

// endMirror cancels the mirror (in sync when the guest is stopped),
// waits for it to go, and closes the destination's export.
func endMirror(ctx context.Context, c *qmp.Client) error {
	deadline := time.Now().Add(switchWait)
	for {
		jobs, err := blockJobs(ctx, c)
		if err != nil {
			return err
		}
		if _, ok := jobs[mirrorJob]; !ok {
			break
		}
		if err := c.Execute(ctx, "block-job-cancel", map[string]any{"device": mirrorJob}, nil); err != nil && !isQMPClass(err, "DeviceNotActive") {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("the disk mirror did not end")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	nodes, err := blockNodes(ctx, c)
	if err != nil {
		return err
	}
	if nodes[mirrorNode] {
		return c.Execute(ctx, "blockdev-del", map[string]any{"node-name": mirrorNode}, nil)
	}
	return nil
}

// settleFailed leaves the source as if no migration had begun: the
// mirror ended, the guest running if it ran and a force_complete
// paused it.
func (v *vm) settleFailed(ctx context.Context, c *qmp.Client, mc hypervisor.MigrationControl) error {
	if err := endMirror(ctx, c); err != nil {
		return err
	}
	if mc.Resume {
		var st status
		if err := c.Execute(ctx, "query-status", nil, &st); err != nil {
			return err
		}
		if st.Status == "paused" || st.Status == "finish-migrate" || st.Status == "postmigrate" {
			return c.Execute(ctx, "cont", nil, nil)
		}
	}
	return nil
}

func pauseGuest(ctx context.Context, c *qmp.Client) error {
	var st status
	if err := c.Execute(ctx, "query-status", nil, &st); err != nil {
		return err
	}
	if st.Running {
		return c.Execute(ctx, "stop", nil, nil)
	}
	return nil
}

func blockJobs(ctx context.Context, c *qmp.Client) (map[string]blockJob, error) {
	var jobs []blockJob
	if err := c.Execute(ctx, "query-block-jobs", nil, &jobs); err != nil {
		return nil, err
	}
	out := map[string]blockJob{}
	for _, j := range jobs {
		out[j.Device] = j
	}
	return out, nil
}

func isQMPClass(err error, class string) bool {
	var qerr *qmp.Error
	return errors.As(err, &qerr) && qerr.Class == class
}

// PrepareIncoming implements hypervisor.LiveMigrator.
func (v *vm) PrepareIncoming(ctx context.Context, disks []hypervisor.PluggedDisk, t hypervisor.MigrationTarget) error {
	return v.hotCommand(ctx, "prepare incoming", func(c *qmp.Client) error {
		var st status
		if err := c.Execute(ctx, "query-status", nil, &st); err != nil {
			return err
		}
		if st.Status != "inmigrate" {
			return hypervisor.ErrNotIncoming
		}
		var mi migrateInfo
		if err := c.Execute(ctx, "query-migrate", nil, &mi); err != nil {
			return err
		}
		if mi.Status != "" && mi.Status != "none" {
			return nil // listening already
		}
		devs, err := peripherals(ctx, c)
		if err != nil {
			return err
		}
		nodes, err := blockNodes(ctx, c)
		if err != nil {
			return err
		}
		for _, d := range disks {
			if err := checkHotID(d.ID); err != nil {
				return err
			}
			if devs[hotDevice(d.ID)] {
				continue
			}
			// Opened by no one: the volume's export stays the source's
			// until the switch-over (FinishIncoming).
			holder := nbdNodes(d.ID)[0]
			if !nodes[holder] {
				if err := c.Execute(ctx, "blockdev-add", map[string]any{"driver": "null-co", "node-name": holder, "size": d.Size, "read-zeroes": true}, nil); err != nil {
					return fmt.Errorf("placeholder of disk %s: %w", d.ID, err)
				}
			}
			if !nodes[hotNode(d.ID)] {
				if err := c.Execute(ctx, "blockdev-add", map[string]any{"driver": "raw", "node-name": hotNode(d.ID), "file": holder,
					"discard": "unmap", "read-only": d.ReadOnly}, nil); err != nil {
					return fmt.Errorf("raw node of disk %s: %w", d.ID, err)
				}
			}
			args := map[string]any{"driver": "virtio-blk-pci", "id": hotDevice(d.ID), "drive": hotNode(d.ID), "bus": d.Slot, "addr": "0"}
			if d.Serial != "" {
				args["serial"] = d.Serial
			}
			if err := c.Execute(ctx, "device_add", args, nil); err != nil {
				return fmt.Errorf("plug disk %s: %w", d.ID, err)
			}
		}
		// Not late-block-activate: the block nodes are activated as the
		// stream completes, even for a guest left paused, which could
		// not be migrated again with its nodes inactive (QEMU 7.2
		// aborts). Nothing here is shared with the source: the first
		// disk is this node's copy, the volumes placeholders until
		// FinishIncoming.
		if err := c.Execute(ctx, "migrate-set-capabilities", map[string]any{"capabilities": []any{
			map[string]any{"capability": "return-path", "state": true},
		}}, nil); err != nil {
			return err
		}
		if t.Disk != "" {
			if err := startNBDServer(ctx, c, t.Disk); err != nil {
				return err
			}
			root, err := firstDiskNode(ctx, c)
			if err != nil {
				return err
			}
			if err := c.Execute(ctx, "block-export-add", map[string]any{"type": "nbd", "id": nbdExportID, "node-name": root,
				"name": rootExport, "writable": true}, nil); err != nil && !strings.Contains(err.Error(), "already") {
				return fmt.Errorf("export the disk: %w", err)
			}
		}
		return c.Execute(ctx, "migrate-incoming", map[string]any{"uri": "tcp:" + t.Stream}, nil)
	})
}

func startNBDServer(ctx context.Context, c *qmp.Client, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("disk address %q: %w", addr, err)
	}
	err = c.Execute(ctx, "nbd-server-start", map[string]any{"addr": map[string]any{"type": "inet",
		"data": map[string]any{"host": host, "port": port}}}, nil)
	if err != nil && !strings.Contains(err.Error(), "already running") {
		return fmt.Errorf("serve the disk: %w", err)
	}
	return nil
}

// IncomingPhase implements hypervisor.LiveMigrator.
func (v *vm) IncomingPhase(ctx context.Context) (hypervisor.MigrationPhase, string, error) {
	var mi migrateInfo
	err := v.hotCommand(ctx, "incoming phase", func(c *qmp.Client) error {
		return c.Execute(ctx, "query-migrate", nil, &mi)
	})
	if err != nil {
		return "", "", err
	}
	switch mi.Status {
	case "completed":
		return hypervisor.MigrationCompleted, "", nil
	case "failed", "cancelled":
		return hypervisor.MigrationFailed, mi.ErrorDesc, nil
	}
	return hypervisor.MigrationRunning, "", nil
}

// FinishIncoming implements hypervisor.LiveMigrator.
func (v *vm) FinishIncoming(ctx context.Context, disks []hypervisor.HotDisk, paused bool) error {
	return v.hotCommand(ctx, "finish incoming", func(c *qmp.Client) error {
		var mi migrateInfo
		if err := c.Execute(ctx, "query-migrate", nil, &mi); err != nil {
			return err
		}
		if mi.Status != "completed" {
			return fmt.Errorf("the incoming migration is %s: %w", mi.Status, hypervisor.ErrNotIncoming)
		}
		var exports []struct {
			ID string `json:"id"`
		}
		if err := c.Execute(ctx, "query-block-exports", nil, &exports); err != nil {
			return err
		}
		for _, e := range exports {
			if e.ID == nbdExportID {
				if err := c.Execute(ctx, "block-export-del", map[string]any{"id": nbdExportID}, nil); err != nil {
					return err
				}
			}
		}
		if err := c.Execute(ctx, "nbd-server-stop", nil, nil); err != nil && !strings.Contains(err.Error(), "not running") {
			return err
		}
		nodes, err := blockNodes(ctx, c)
		if err != nil {
			return err
		}
		for _, d := range disks {
			holder, real := nbdNodes(d.ID)[0], nbdNodes(d.ID)[1]
			if !nodes[holder] {
				continue // swapped already
			}
			if !nodes[real] {
				if err := addNBD(ctx, c, real, d); err != nil {
					return err
				}
			}
			if err := c.Execute(ctx, "blockdev-reopen", map[string]any{"options": []any{rawNode(d, real)}}, nil); err != nil {
				return fmt.Errorf("put volume %s in: %w", d.ID, err)
			}
			// A boot disk's placeholder came with its -drive: QEMU drops
			// it itself once unused. A plugged disk's stays until
			// deleted.
			left, err := blockNodes(ctx, c)
			if err != nil {
				return err
			}
			if left[holder] {
				if err := c.Execute(ctx, "blockdev-del", map[string]any{"node-name": holder}, nil); err != nil {
					return fmt.Errorf("drop the placeholder of %s: %w", d.ID, err)
				}
			}
		}
		var st status
		if err := c.Execute(ctx, "query-status", nil, &st); err != nil {
			return err
		}
		if !paused && !st.Running {
			return c.Execute(ctx, "cont", nil, nil)
		}
		return nil
	})
}

// writeFileSync writes path whole and durably (a crash leaves the old
// or the new contents).
func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
