package qemu

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

var _ hypervisor.Hotplug = (*vm)(nil)

// A plugged disk is a virtio-blk-pci device "disk-<id>" in one of the
// VM's hot-plug root ports ("hp<n>", see buildArgs), on a raw node
// "vol-<id>" over an NBD node "nbd-<id>-a" or "-b" (QEMU's NBD client on
// the node's export). The raw node lets a grown export be swapped in
// under the device (ResizeDisk). The NBD client reconnects for a while if
// the export goes away, so a restart of rackd (which serves the exports)
// pauses the disk's I/O instead of failing it.
const reconnectDelay = 60 // seconds

func hotNode(id string) string   { return "vol-" + id }
func hotDevice(id string) string { return "disk-" + id }

// secretID names the QEMU secret object holding an encrypted disk's
// passphrase. The passphrase goes to QEMU over QMP (a boot disk's
// through an inherited pipe, bootkey.go): never on a command line
// (which ps shows) nor in a file.
func secretID(id string) string { return "sec-" + id }

// nbdNodes are the two names a disk's NBD node alternates between.
func nbdNodes(id string) [2]string { return [2]string{"nbd-" + id + "-a", "nbd-" + id + "-b"} }

func addNBD(ctx context.Context, c *qmp.Client, name string, d hypervisor.HotDisk) error {
	err := c.Execute(ctx, "blockdev-add", map[string]any{
		"driver": "nbd", "node-name": name, "export": d.Export,
		"server":          map[string]any{"type": "unix", "path": d.Socket},
		"reconnect-delay": reconnectDelay, "discard": "unmap", "read-only": d.ReadOnly,
	}, nil)
	if err != nil {
		return fmt.Errorf("open nbd export %s: %w", d.Export, err)
	}
	return nil
}

// delNodes removes the disk's nodes that exist, the raw one first.
func delNodes(ctx context.Context, c *qmp.Client, id string) error {
	nodes, err := blockNodes(ctx, c)
	if err != nil {
		return err
	}
	nbd := nbdNodes(id)
	for _, n := range []string{hotNode(id), nbd[0], nbd[1]} {
		if nodes[n] {
			if err := c.Execute(ctx, "blockdev-del", map[string]any{"node-name": n}, nil); err != nil {
				return fmt.Errorf("close block node %s: %w", n, err)
			}
		}
	}
	return delSecret(ctx, c, id)
}

// delSecret removes the disk's secret object, if it has one.
func delSecret(ctx context.Context, c *qmp.Client, id string) error {
	var objs []struct {
		Name string `json:"name"`
	}
	if err := c.Execute(ctx, "qom-list", map[string]any{"path": "/objects"}, &objs); err != nil {
		return err
	}
	for _, o := range objs {
		if o.Name == secretID(id) {
			if err := c.Execute(ctx, "object-del", map[string]any{"id": secretID(id)}, nil); err != nil {
				return fmt.Errorf("remove the secret of disk %s: %w", id, err)
			}
		}
	}
	return nil
}

// addSecret gives QEMU the passphrase of d's LUKS layer.
func addSecret(ctx context.Context, c *qmp.Client, d hypervisor.HotDisk) error {
	err := c.Execute(ctx, "object-add", map[string]any{
		"qom-type": "secret", "id": secretID(d.ID), "format": "base64",
		"data": base64.StdEncoding.EncodeToString(d.Encryption.Passphrase),
	}, nil)
	if err != nil {
		return fmt.Errorf("give the key of disk %s: %w", d.ID, err)
	}
	return nil
}

// luksIterTime is the time QEMU spends stretching the passphrase into a
// key slot's key (PBKDF2), in ms. The passphrase is a random 256-bit key,
// not a password a person chose, so stretching adds no strength; a short
// one keeps each attach from costing seconds of CPU.
const luksIterTime = 100

// luksTries bounds formatLUKS's attempts. QEMU sizes the key slot's
// PBKDF2 by timing a first round on its thread's CPU clock, and fails the
// job with errCPUClock when that clock did not move (getrusage's
// per-thread time can stall for a few ms on a busy host): nothing is
// written then, so the job is simply run again.
const luksTries = 5

// errCPUClock is QEMU's message for that failed timing.
const errCPUClock = "Unable to get accurate CPU usage"

// formatLUKS writes a new LUKS header on the NBD node file, with a random
// master key sealed by d's passphrase, through a blockdev-create job.
// Size 0: the payload is what follows the header, to the export's end.
func formatLUKS(ctx context.Context, c *qmp.Client, d hypervisor.HotDisk, file string) error {
	var err error
	for try := 0; try < luksTries; try++ {
		if err = formatLUKSOnce(ctx, c, d, file); err == nil || !strings.Contains(err.Error(), errCPUClock) {
			return err
		}
	}
	return err
}

func formatLUKSOnce(ctx context.Context, c *qmp.Client, d hypervisor.HotDisk, file string) error {
	job := "fmt-" + d.ID
	err := c.Execute(ctx, "blockdev-create", map[string]any{"job-id": job, "options": map[string]any{
		"driver": "luks", "file": file, "size": 0, "key-secret": secretID(d.ID),
		"cipher-alg": d.Encryption.CipherAlg, "cipher-mode": "xts", "ivgen-alg": "plain64", "hash-alg": "sha256",
		"iter-time": luksIterTime,
	}}, nil)
	if err != nil {
		return fmt.Errorf("write the luks header of disk %s: %w", d.ID, err)
	}
	for {
		var jobs []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := c.Execute(ctx, "query-jobs", nil, &jobs); err != nil {
			return err
		}
		for _, j := range jobs {
			if j.ID != job || j.Status != "concluded" {
				continue
			}
			if err := c.Execute(ctx, "job-dismiss", map[string]any{"id": job}, nil); err != nil {
				return fmt.Errorf("dismiss the luks format of disk %s: %w", d.ID, err)
			}
			if j.Error != "" {
				return fmt.Errorf("write the luks header of disk %s: %s", d.ID, j.Error)
			}
			return nil
		}
		select {
		case <-c.Events():
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("write the luks header of disk %s: %w", d.ID, ctx.Err())
		}
	}
}

// checkHotID refuses ids QEMU would not take as (part of) a node name.
func checkHotID(id string) error {
	if id == "" || len(id) > 24 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return fmt.Errorf("hot disk id %q: want 1-24 of [a-z0-9-]: %w", id, hypervisor.ErrInvalidSpec)
	}
	return nil
}

// hotCommand runs fn on the running VM's monitor under the VM's lock.
func (v *vm) hotCommand(ctx context.Context, op string, fn func(c *qmp.Client) error) error {
	lock, err := v.d.lock(v.id)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, v.id, err)
	}
	defer lock.unlock()
	if _, err := v.running(op); err != nil {
		return err
	}
	if err := v.d.monitor(ctx, v.p, fn); err != nil {
		return fmt.Errorf("%s %s: %w", op, v.id, err)
	}
	return nil
}

// peripherals lists the ids of the VM's devices that have one.
func peripherals(ctx context.Context, c *qmp.Client) (map[string]bool, error) {
	var props []struct {
		Name string `json:"name"`
	}
	if err := c.Execute(ctx, "qom-list", map[string]any{"path": "/machine/peripheral"}, &props); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, p := range props {
		out[p.Name] = true
	}
	return out, nil
}

// blockNodes lists the VM's named block nodes.
func blockNodes(ctx context.Context, c *qmp.Client) (map[string]bool, error) {
	var nodes []struct {
		NodeName string `json:"node-name"`
	}
	if err := c.Execute(ctx, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range nodes {
		out[n.NodeName] = true
	}
	return out, nil
}

// AttachDisk implements hypervisor.Hotplug.
func (v *vm) AttachDisk(ctx context.Context, d hypervisor.HotDisk) error {
	if err := checkHotID(d.ID); err != nil {
		return err
	}
	if len(d.Serial) > 20 {
		return fmt.Errorf("hot disk %s: serial %q is longer than 20 characters: %w", d.ID, d.Serial, hypervisor.ErrInvalidSpec)
	}
	return v.hotCommand(ctx, "attach disk", func(c *qmp.Client) error {
		devs, err := peripherals(ctx, c)
		if err != nil {
			return err
		}
		if devs[hotDevice(d.ID)] {
			return nil
		}
		// Leftovers of a plug that failed half-way go first.
		if err := delNodes(ctx, c, d.ID); err != nil {
			return err
		}
		nbdNode := nbdNodes(d.ID)[0]
		if d.Encryption != nil {
			if err := addSecret(ctx, c, d); err != nil {
				return err
			}
		}
		if err := addNBD(ctx, c, nbdNode, d); err != nil {
			_ = delNodes(ctx, c, d.ID)
			return err
		}
		if d.Encryption != nil && d.Encryption.Format {
			if err := formatLUKS(ctx, c, d, nbdNode); err != nil {
				_ = delNodes(ctx, c, d.ID)
				return err
			}
		}
		if err := c.Execute(ctx, "blockdev-add", rawNode(d, nbdNode), nil); err != nil {
			_ = delNodes(ctx, c, d.ID)
			return fmt.Errorf("open raw node of %s: %w", d.ID, err)
		}
		slot := freeSlot(ctx, c, devs)
		if slot == "" {
			_ = delNodes(ctx, c, d.ID)
			return hypervisor.ErrNoHotplugSlot
		}
		// addr 0: a root port's link reaches device 0 only, the one
		// the guest scans; QEMU would put a device into a taken port
		// at the next free address, which the guest never sees.
		args := map[string]any{"driver": "virtio-blk-pci", "id": hotDevice(d.ID), "drive": hotNode(d.ID), "bus": slot, "addr": "0"}
		if d.Serial != "" {
			args["serial"] = d.Serial
		}
		if err := c.Execute(ctx, "device_add", args, nil); err != nil {
			_ = delNodes(ctx, c, d.ID)
			return fmt.Errorf("plug disk %s: %w", d.ID, err)
		}
		// The guest has not seen the disk yet: its first I/O is capped.
		if !d.Limits.IsZero() {
			if err := setThrottle(ctx, c, d.ID, d.Limits); err != nil {
				_ = c.Execute(ctx, "device_del", map[string]any{"id": hotDevice(d.ID)}, nil)
				return err
			}
		}
		return nil
	})
}

// rawNode is the blockdev-add (or -reopen) options of d's raw node over
// the NBD node file; for an encrypted disk it is a luks node instead,
// which decrypts what it reads from file and encrypts what it writes.
func rawNode(d hypervisor.HotDisk, file string) map[string]any {
	opts := map[string]any{"driver": "raw", "node-name": hotNode(d.ID), "file": file, "discard": "unmap", "read-only": d.ReadOnly}
	if d.Encryption != nil {
		opts["driver"], opts["key-secret"] = "luks", secretID(d.ID)
	}
	return opts
}

// setThrottle sets the device's I/O limits with QEMU's throttling on its
// block backend, which stays with the device when ResizeDisk swaps the
// nodes under it (all six values are required; 0 is no limit). The
// backend belongs to the virtio-blk device inside the PCI proxy, which
// only its QOM path names.
func setThrottle(ctx context.Context, c *qmp.Client, id string, l hypervisor.IOLimits) error {
	return throttleDevice(ctx, c, hotDevice(id), l)
}

// throttleDevice sets the I/O limits of the virtio-blk device dev.
func throttleDevice(ctx context.Context, c *qmp.Client, id string, l hypervisor.IOLimits) error {
	err := c.Execute(ctx, "block_set_io_throttle", map[string]any{
		"id":   "/machine/peripheral/" + id + "/virtio-backend",
		"iops": l.TotalIOPS, "iops_rd": l.ReadIOPS, "iops_wr": l.WriteIOPS,
		"bps": l.TotalBytes, "bps_rd": l.ReadBytes, "bps_wr": l.WriteBytes,
	}, nil)
	if err != nil {
		return fmt.Errorf("set the i/o limits of disk %s: %w", id, err)
	}
	return nil
}

// LimitDisk implements hypervisor.Hotplug.
func (v *vm) LimitDisk(ctx context.Context, id string, l hypervisor.IOLimits) error {
	if err := checkHotID(id); err != nil {
		return err
	}
	return v.hotCommand(ctx, "limit disk", func(c *qmp.Client) error {
		devs, err := peripherals(ctx, c)
		if err != nil {
			return err
		}
		if !devs[hotDevice(id)] {
			return fmt.Errorf("limit disk %s: %w", id, hypervisor.ErrNotFound)
		}
		return setThrottle(ctx, c, id, l)
	})
}

// portUsed reports whether root port holds a device: its bus lists one.
// A bus lists its devices as "child[N]" properties of type
// link<driver> (the devices are QOM children of /machine/peripheral, not
// of the bus), so the name is what tells.
// freeSlot is the first hot-plug root port with nothing in it, "" when
// all are taken; a VM started before it had root ports (devs, its
// peripherals, lack hp0) has none either.
func freeSlot(ctx context.Context, c *qmp.Client, devs map[string]bool) string {
	if !devs["hp0"] {
		return ""
	}
	for i := 0; i < hypervisor.HotplugSlots; i++ {
		if port := "hp" + strconv.Itoa(i); !portUsed(ctx, c, port) {
			return port
		}
	}
	return ""
}

func portUsed(ctx context.Context, c *qmp.Client, port string) bool {
	var children []struct {
		Name string `json:"name"`
	}
	if err := c.Execute(ctx, "qom-list", map[string]any{"path": "/machine/peripheral/" + port + "/" + port}, &children); err != nil {
		return true
	}
	for _, ch := range children {
		if strings.HasPrefix(ch.Name, "child[") {
			return true
		}
	}
	return false
}

// DetachDisk implements hypervisor.Hotplug: device_del, then the wait for
// the guest's DEVICE_DELETED, then the NBD node goes.
func (v *vm) DetachDisk(ctx context.Context, id string) error {
	if err := checkHotID(id); err != nil {
		return err
	}
	return v.hotCommand(ctx, "detach disk", func(c *qmp.Client) error {
		if err := unplugDevice(ctx, c, hotDevice(id), "disk "+id); err != nil {
			return err
		}
		return delNodes(ctx, c, id)
	})
}

// unplugDevice asks the guest to release hot-plugged device dev (what
// names it in errors) and waits for its DEVICE_DELETED; a device that is
// not there is done.
func unplugDevice(ctx context.Context, c *qmp.Client, dev, what string) error {
	devs, err := peripherals(ctx, c)
	if err != nil || !devs[dev] {
		return err
	}
	err = c.Execute(ctx, "device_del", map[string]any{"id": dev}, nil)
	var qerr *qmp.Error
	// A second request while the first is pending is refused; it still
	// stands.
	if err != nil && !(errors.As(err, &qerr) && strings.Contains(qerr.Desc, "in the process of unplug")) {
		return fmt.Errorf("unplug %s: %w", what, err)
	}
	return waitDeleted(ctx, c, dev)
}

// waitDeleted waits for DEVICE_DELETED of device, or for it to be gone
// (the event may have come before this connection).
func waitDeleted(ctx context.Context, c *qmp.Client, device string) error {
	for {
		devs, err := peripherals(ctx, c)
		if err != nil {
			return err
		}
		if !devs[device] {
			return nil
		}
		select {
		case ev := <-c.Events():
			if ev.Name == "DEVICE_DELETED" {
				var data struct {
					Device string `json:"device"`
				}
				if json.Unmarshal(ev.Data, &data) == nil && data.Device == device {
					return nil
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("unplug %s: %w", device, hypervisor.ErrDetachPending)
		}
	}
}

// ResizeDisk implements hypervisor.Hotplug. QEMU's NBD client learns an
// export's size when it connects and cannot grow a node, so a second NBD
// node is opened on the grown export, swapped in under the raw node, and
// the raw node (with the device on it) resized to the new size.
func (v *vm) ResizeDisk(ctx context.Context, d hypervisor.HotDisk, size int64) error {
	if err := checkHotID(d.ID); err != nil {
		return err
	}
	return v.hotCommand(ctx, "resize disk", func(c *qmp.Client) error {
		have, err := blockNodes(ctx, c)
		if err != nil {
			return err
		}
		if !have[hotNode(d.ID)] {
			return fmt.Errorf("resize disk %s: %w", d.ID, hypervisor.ErrNotFound)
		}
		names := nbdNodes(d.ID)
		cur, next := names[0], names[1]
		if !have[cur] {
			cur, next = names[1], names[0]
		}
		if have[next] && have[cur] {
			// A swap that failed half-way: which one the raw node uses is
			// unknown, so neither is dropped; the new one is the spare.
			return fmt.Errorf("resize disk %s: both nbd nodes are open; a previous resize did not finish", d.ID)
		}
		if err := addNBD(ctx, c, next, d); err != nil {
			return err
		}
		err = c.Execute(ctx, "blockdev-reopen", map[string]any{"options": []any{rawNode(d, next)}}, nil)
		if err != nil {
			_ = c.Execute(ctx, "blockdev-del", map[string]any{"node-name": next}, nil)
			return fmt.Errorf("swap the grown export in under %s: %w", d.ID, err)
		}
		// A boot disk's first NBD node came with its -drive, not
		// blockdev-add: QEMU drops it itself once the swap leaves it
		// unused. One of blockdev-add's stays until it is deleted.
		if have, err = blockNodes(ctx, c); err != nil {
			return err
		}
		if have[cur] {
			if err := c.Execute(ctx, "blockdev-del", map[string]any{"node-name": cur}, nil); err != nil {
				return fmt.Errorf("close the old nbd node of %s: %w", d.ID, err)
			}
		}
		if d.Encryption != nil {
			// The guest sees what follows the LUKS header.
			off, err := payloadOffset(ctx, c, hotNode(d.ID))
			if err != nil {
				return err
			}
			size -= off
		}
		if err := c.Execute(ctx, "block_resize", map[string]any{"node-name": hotNode(d.ID), "size": size}, nil); err != nil {
			return fmt.Errorf("resize disk %s: %w", d.ID, err)
		}
		return nil
	})
}

// payloadOffset is where the data of the luks node starts in its file:
// the size of its header.
func payloadOffset(ctx context.Context, c *qmp.Client, node string) (int64, error) {
	var nodes []struct {
		NodeName string `json:"node-name"`
		Image    struct {
			FormatSpecific struct {
				Type string `json:"type"`
				Data struct {
					PayloadOffset int64 `json:"payload-offset"`
				} `json:"data"`
			} `json:"format-specific"`
		} `json:"image"`
	}
	if err := c.Execute(ctx, "query-named-block-nodes", map[string]any{"flat": true}, &nodes); err != nil {
		return 0, err
	}
	for _, n := range nodes {
		if n.NodeName == node && n.Image.FormatSpecific.Type == "luks" {
			return n.Image.FormatSpecific.Data.PayloadOffset, nil
		}
	}
	return 0, fmt.Errorf("find the luks header size of %s: not a luks node", node)
}

// LimitBootDisk implements hypervisor.Hotplug: the first disk is
// "disk0" (buildArgs), throttled on its block backend as a hot disk is.
func (v *vm) LimitBootDisk(ctx context.Context, l hypervisor.IOLimits) error {
	return v.hotCommand(ctx, "limit boot disk", func(c *qmp.Client) error {
		devs, err := peripherals(ctx, c)
		if err != nil {
			return err
		}
		if !devs[bootDevice] {
			return fmt.Errorf("limit boot disk: %w", hypervisor.ErrNotFound)
		}
		return throttleDevice(ctx, c, bootDevice, l)
	})
}

// bootDevice is the id buildArgs gives the VM's first disk.
const bootDevice = "disk0"

// HotDisks implements hypervisor.Hotplug.
func (v *vm) HotDisks(ctx context.Context) ([]string, error) {
	var out []string
	err := v.hotCommand(ctx, "list disks", func(c *qmp.Client) error {
		devs, err := peripherals(ctx, c)
		if err != nil {
			return err
		}
		for d := range devs {
			if id, ok := strings.CutPrefix(d, "disk-"); ok {
				out = append(out, id)
			}
		}
		return nil
	})
	return out, err
}
