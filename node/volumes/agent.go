// Package volumes is the node agent for volume attachments: it plugs the
// volumes attached to this node's servers into their running guests, as
// NBD exports this node serves (Exports), unplugs the ones being
// detached, keeps the exports of attached volumes up (across rackd
// restarts and guest restarts), tells guests when a volume grew, and
// reports each step through Raft (volstate.Attached, Detached). It never
// decides what is attached: the compute API does.
package volumes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/reconcile"
)

// Exports serves volumes over NBD on this node, each under its id.
type Exports interface {
	// Export opens volume id for writing (taking its writer fence, so a
	// stale writer elsewhere is refused) and serves it; exporting an
	// exported volume is not an error. It returns the volume's size in
	// bytes, which follows a grow of the open volume.
	Export(ctx context.Context, id string) (int64, error)
	// Unexport ends the export and closes the volume, flushed; a volume
	// not exported is not an error.
	Unexport(ctx context.Context, id string) error
	// Exported lists the exported volumes.
	Exported() []string
	// Socket is the unix socket the exports are served on.
	Socket() string
}

// Agent converges this node's volume attachments.
type Agent struct {
	Node    string
	State   func(ctx context.Context) (*memdb.Txn, error)
	Driver  hypervisor.Driver
	Exports Exports
	Propose func(ctx context.Context, typ string, body any) error
	Now     func() time.Time
	Log     *slog.Logger
	// Interval is the resync period; DetachWait bounds each wait for a
	// guest to let a disk go (the request stands after it).
	Interval   time.Duration
	DetachWait time.Duration
	// Unseal opens a volume's sealed encryption key (bound to the
	// volume's id); without it encrypted volumes are not attached here.
	Unseal func(sealed string, aad []byte) ([]byte, error)
	// Blank reports whether exported volume id is blank where a LUKS
	// header goes: an encrypted volume is given its header on the first
	// attach, and only then (a header that does not open is an error,
	// never overwritten).
	Blank func(ctx context.Context, id string) (bool, error)

	mu sync.Mutex
	// told is the size each plugged volume's guest was last told;
	// limited the I/O limits its disk was last given.
	told    map[string]int64
	limited map[string]hypervisor.IOLimits
}

// Run reconciles until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	loop := &reconcile.Loop{Name: "volumes", Pass: a.Reconcile, Resync: a.Interval, Debounce: 100 * time.Millisecond,
		MaxBackoff: 5 * time.Second, Log: a.Log}
	return loop.Run(ctx)
}

// DiskID is the id a volume's disk has in its guest's hypervisor: the
// volume id without dashes, cut to what QEMU names allow.
func DiskID(volume string) string {
	id := strings.ReplaceAll(volume, "-", "")
	if len(id) > 24 {
		id = id[:24]
	}
	return strings.ToLower(id)
}

// serial is what the guest sees as the disk's serial (its
// /dev/disk/by-id/virtio-… name): the volume id's first 20 characters,
// as Nova sets it.
func serial(volume string) string {
	if len(volume) > 20 {
		return volume[:20]
	}
	return volume
}

// Reconcile is one pass (Run's, or a test's).
func (a *Agent) Reconcile(ctx context.Context) (memdb.WatchSet, error) {
	a.mu.Lock()
	if a.told == nil {
		a.told = map[string]int64{}
		a.limited = map[string]hypervisor.IOLimits{}
	}
	a.mu.Unlock()
	if a.Now == nil {
		a.Now = time.Now
	}
	if a.DetachWait == 0 {
		a.DetachWait = 30 * time.Second
	}
	// The exports are listed before the state is read. An export listed
	// was made from this node's state as it was then (the instance
	// agent's for a booting server, whose create attached its volume;
	// this agent's own), and this node's state only moves forward, so
	// the read below shows what it was made for: its volume not attached
	// here means it was detached or moved. An export made after the read
	// is for state the read does not show; judged by it, it would be
	// ended under a guest that has just opened it (a boot volume's
	// firmware reads failing, the guest hung at its boot loader).
	exported := a.Exports.Exported()
	// Types and QoS specs too: a volume's limits follow its type's spec.
	// Instance actions: an extend_volume one is finished once the guest
	// sees the size.
	txn, ws, err := reconcile.Read(ctx, a.State, []string{volstate.VolumeTable, volstate.TypeTable, volstate.QoSTable, computestate.TableActions})
	if err != nil {
		return nil, fmt.Errorf("state not readable yet: %w", err)
	}
	mine := map[string]bool{}
	for _, v := range store.All[volstate.Volume](txn, volstate.VolumeTable, "id") {
		if len(v.Attachments) != 1 || v.Attachments[0].Host != a.Node {
			continue
		}
		mine[v.ID] = true
		extends := len(computestate.OpenExtends(txn, v.Attachments[0].ServerID, v.ID)) > 0
		if err := a.converge(ctx, v.Clone(), Limits(txn, v.TypeID), CipherAlg(txn, v), extends); err != nil && ctx.Err() == nil {
			a.Log.Warn("volumes: converge", "volume", v.ID, "server", v.Attachments[0].ServerID, "err", err)
		}
	}
	// Exports of volumes no longer attached here: their server was
	// removed (its VM with it) or they moved.
	for _, id := range exported {
		if !mine[id] {
			if err := a.Exports.Unexport(ctx, id); err != nil {
				a.Log.Warn("volumes: unexport", "volume", id, "err", err)
				continue
			}
			a.forget(id)
			a.Log.Info("volume export ended", "volume", id)
		}
	}
	return ws, nil
}

// hotplugVM is the running VM of server, if this node runs it.
func (a *Agent) hotplugVM(ctx context.Context, server string) (hypervisor.Hotplug, bool, error) {
	vm, err := a.Driver.Adopt(ctx, server)
	if errors.Is(err, hypervisor.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	st, err := vm.State(ctx)
	if err != nil || (st != hypervisor.Running && st != hypervisor.Paused) {
		return nil, false, err
	}
	hp, ok := vm.(hypervisor.Hotplug)
	if !ok {
		return nil, true, nil
	}
	return hp, true, nil
}

// Limits is the I/O limits of a volume of type typeID in its guest: its
// type's QoS spec's, as the hypervisor takes them.
func Limits(tx *memdb.Txn, typeID string) hypervisor.IOLimits {
	return ioLimits(volstate.QoSLimits(tx, typeID))
}

func ioLimits(q map[string]int64) hypervisor.IOLimits {
	return hypervisor.IOLimits{
		ReadIOPS: q[volstate.QoSReadIOPS], WriteIOPS: q[volstate.QoSWriteIOPS], TotalIOPS: q[volstate.QoSTotalIOPS],
		ReadBytes: q[volstate.QoSReadBytes], WriteBytes: q[volstate.QoSWriteBytes], TotalBytes: q[volstate.QoSTotalBytes],
	}
}

// CipherAlg is the cipher of a new LUKS header of encrypted volume v,
// from its type ("" when v is not encrypted).
func CipherAlg(tx *memdb.Txn, v *volstate.Volume) string {
	if v.Key == "" {
		return ""
	}
	if t, err := volstate.LoadType(tx, v.TypeID); err == nil && t.Encryption != nil {
		return t.Encryption.CipherAlg()
	}
	// A type's encryption cannot change while it has volumes; this is
	// only a header already written, whose cipher the header says.
	return "aes-256"
}

// converge plugs, keeps or unplugs v's disk; limits are the I/O limits
// of its type's QoS spec, which a plugged disk is kept at; alg the cipher
// of an encrypted volume's LUKS layer; extends says whether Nova's
// record of an extend of v waits for the guest to be told.
func (a *Agent) converge(ctx context.Context, v *volstate.Volume, limits hypervisor.IOLimits, alg string, extends bool) error {
	att := v.Attachments[0]
	disk := hypervisor.HotDisk{ID: DiskID(v.ID), Socket: a.Exports.Socket(), Export: v.ID, Serial: serial(v.ID),
		ReadOnly: att.Mode == volstate.AttachReadOnly, Limits: limits}
	if v.Key != "" {
		disk.Encryption = &hypervisor.DiskEncryption{CipherAlg: alg}
	}
	if att.Root {
		return a.convergeRoot(ctx, v, disk, limits, extends)
	}
	switch v.Status {
	case volstate.StatusAttaching, volstate.StatusInUse:
		hp, running, err := a.hotplugVM(ctx, att.ServerID)
		if err != nil {
			return err
		}
		if running && hp == nil {
			return a.failAttach(ctx, v, "this node's hypervisor cannot plug disks into running guests")
		}
		size, err := a.Exports.Export(ctx, v.ID)
		if err != nil {
			if v.Status == volstate.StatusAttaching {
				return a.failAttach(ctx, v, "export the volume: "+err.Error())
			}
			return fmt.Errorf("export volume %s: %w", v.ID, err)
		}
		if !running {
			// The guest is not running (stopped, or not built yet): it
			// is plugged when it runs, at the size it has then, so an
			// extend is done (as Nova's is for a guest that is off).
			if extends {
				return a.extendDone(ctx, v, size, "Success", "")
			}
			return nil
		}
		plugged, err := hp.HotDisks(ctx)
		if err != nil {
			return err
		}
		if !contains(plugged, disk.ID) {
			if disk.Encryption != nil {
				if err := a.unlock(ctx, v, disk.Encryption); err != nil {
					if v.Status == volstate.StatusAttaching {
						_ = a.Exports.Unexport(ctx, v.ID)
						return a.failAttach(ctx, v, err.Error())
					}
					return err
				}
			}
			err := hp.AttachDisk(ctx, disk)
			if disk.Encryption != nil {
				clear(disk.Encryption.Passphrase)
			}
			if err != nil {
				if v.Status == volstate.StatusAttaching && (errors.Is(err, hypervisor.ErrNoHotplugSlot) || errors.Is(err, hypervisor.ErrInvalidSpec)) {
					_ = a.Exports.Unexport(ctx, v.ID)
					return a.failAttach(ctx, v, "plug the volume into the server: "+err.Error())
				}
				return fmt.Errorf("plug volume %s into %s: %w", v.ID, att.ServerID, err)
			}
			a.setTold(v.ID, size)
			a.setLimited(v.ID, limits)
			a.Log.Info("volume plugged", "volume", v.ID, "server", att.ServerID, "size", size, "read_only", disk.ReadOnly)
		}
		// Limits are set on every plug (above) and again whenever they
		// differ from what this process last set: after its restart, or
		// a change of the type's spec.
		if had, ok := a.limitedTo(v.ID); !ok || had != limits {
			if err := hp.LimitDisk(ctx, disk.ID, limits); err != nil {
				return fmt.Errorf("limit the i/o of volume %s in %s: %w", v.ID, att.ServerID, err)
			}
			a.setLimited(v.ID, limits)
			a.Log.Info("volume i/o limits set", "volume", v.ID, "server", att.ServerID, "limits", fmt.Sprintf("%+v", limits))
		}
		if told, ok := a.toldSize(v.ID); !ok {
			a.setTold(v.ID, size)
		} else if size != told {
			if err := hp.ResizeDisk(ctx, disk, size); err != nil {
				err = fmt.Errorf("tell %s that volume %s grew: %w", att.ServerID, v.ID, err)
				if extends {
					// Nova's event fails with the step; the next pass
					// tries the guest again.
					return errors.Join(err, a.extendDone(ctx, v, size, "Error", err.Error()))
				}
				return err
			}
			a.setTold(v.ID, size)
			a.Log.Info("volume grown in its guest", "volume", v.ID, "server", att.ServerID, "size", size)
		}
		if extends {
			if err := a.extendDone(ctx, v, size, "Success", ""); err != nil {
				return err
			}
		}
		if v.Status == volstate.StatusAttaching {
			return a.propose(ctx, volstate.CmdAttached, volstate.AttachedCmd{VolumeID: v.ID, AttachmentID: att.ID, Now: a.Now().UTC()})
		}
		return nil
	case volstate.StatusDetaching:
		hp, running, err := a.hotplugVM(ctx, att.ServerID)
		if err != nil {
			return err
		}
		if running && hp != nil {
			dctx, cancel := context.WithTimeout(ctx, a.DetachWait)
			err := hp.DetachDisk(dctx, disk.ID)
			cancel()
			if errors.Is(err, hypervisor.ErrDetachPending) {
				a.Log.Info("volume detach waits for the guest", "volume", v.ID, "server", att.ServerID)
				return nil
			}
			if err != nil {
				return fmt.Errorf("unplug volume %s from %s: %w", v.ID, att.ServerID, err)
			}
		}
		if err := a.Exports.Unexport(ctx, v.ID); err != nil {
			return err
		}
		a.forget(v.ID)
		a.Log.Info("volume unplugged", "volume", v.ID, "server", att.ServerID)
		return a.propose(ctx, volstate.CmdDetached, volstate.DetachedCmd{VolumeID: v.ID, AttachmentID: att.ID, Now: a.Now().UTC()})
	}
	return nil
}

// unlock gives e the passphrase of encrypted volume v, and says whether
// its LUKS header is still to be written.
func (a *Agent) unlock(ctx context.Context, v *volstate.Volume, e *hypervisor.DiskEncryption) error {
	if a.Unseal == nil || a.Blank == nil {
		return errors.New("volume " + v.ID + " is encrypted and this node cannot open volume keys")
	}
	pass, err := a.Unseal(v.Key, []byte(v.ID))
	if err != nil {
		return fmt.Errorf("open the key of volume %s: %w", v.ID, err)
	}
	blank, err := a.Blank(ctx, v.ID)
	if err != nil {
		clear(pass)
		return fmt.Errorf("read the header of volume %s: %w", v.ID, err)
	}
	e.Passphrase, e.Format = pass, blank
	return nil
}

// convergeRoot keeps a boot volume exported; the VM opens it itself when
// it starts (the servers agent builds it with the volume as its first
// disk, its nodes named as disk's), and once it runs the volume is
// in-use. It is never plugged or unplugged: it goes with its server. Its
// I/O limits follow its type's QoS spec while it runs, and its guest is
// told when it grew, as for a plugged disk.
func (a *Agent) convergeRoot(ctx context.Context, v *volstate.Volume, disk hypervisor.HotDisk, limits hypervisor.IOLimits, extends bool) error {
	att := v.Attachments[0]
	if v.Status != volstate.StatusAttaching && v.Status != volstate.StatusInUse {
		return nil
	}
	size, err := a.Exports.Export(ctx, v.ID)
	if err != nil {
		return fmt.Errorf("export boot volume %s: %w", v.ID, err)
	}
	hp, running, err := a.hotplugVM(ctx, att.ServerID)
	if err != nil {
		return err
	}
	if !running {
		// The guest sees the size when it next starts, as Nova's
		// extend of a server that is off is done.
		if extends {
			return a.extendDone(ctx, v, size, "Success", "")
		}
		return nil
	}
	if err := a.growRoot(ctx, v, hp, disk, size, extends); err != nil {
		return err
	}
	// The VM was started with its spec's limits; a change since (or
	// what this process has not set yet) is set now.
	if had, ok := a.limitedTo(v.ID); hp != nil && (!ok || had != limits) {
		if err := hp.LimitBootDisk(ctx, limits); err != nil {
			return fmt.Errorf("limit the i/o of boot volume %s in %s: %w", v.ID, att.ServerID, err)
		}
		a.setLimited(v.ID, limits)
		a.Log.Info("boot volume i/o limits set", "volume", v.ID, "server", att.ServerID, "limits", fmt.Sprintf("%+v", limits))
	}
	if v.Status != volstate.StatusAttaching {
		return nil
	}
	a.Log.Info("boot volume in use", "volume", v.ID, "server", att.ServerID)
	return a.propose(ctx, volstate.CmdAttached, volstate.AttachedCmd{VolumeID: v.ID, AttachmentID: att.ID, Now: a.Now().UTC()})
}

// growRoot tells the running guest of boot volume v that its disk is
// size bytes when it grew since the guest was last told, or an extend
// waits for it (telling it the size it has is harmless), then finishes
// the extend's record.
func (a *Agent) growRoot(ctx context.Context, v *volstate.Volume, hp hypervisor.Hotplug, disk hypervisor.HotDisk, size int64, extends bool) error {
	att := v.Attachments[0]
	told, ok := a.toldSize(v.ID)
	if !extends && (!ok || told == size) {
		// Started at the size it has: told when it was started.
		a.setTold(v.ID, size)
		return nil
	}
	var err error
	if hp == nil {
		err = errors.New("this node's hypervisor cannot tell a running guest that its disk grew")
	} else {
		err = hp.ResizeDisk(ctx, disk, size)
	}
	if err != nil {
		err = fmt.Errorf("tell %s that boot volume %s grew: %w", att.ServerID, v.ID, err)
		if hp == nil || errors.Is(err, hypervisor.ErrNotFound) {
			// A guest started before its boot disk had named nodes
			// sees the size when it next starts: not tried again.
			a.setTold(v.ID, size)
		}
		if extends {
			return errors.Join(err, a.extendDone(ctx, v, size, "Error", err.Error()))
		}
		return err
	}
	a.setTold(v.ID, size)
	a.Log.Info("boot volume grown in its guest", "volume", v.ID, "server", att.ServerID, "size", size)
	if extends {
		return a.extendDone(ctx, v, size, "Success", "")
	}
	return nil
}

// failAttach gives the volume back (available, with why) when this node
// cannot plug it.
func (a *Agent) failAttach(ctx context.Context, v *volstate.Volume, reason string) error {
	if v.Status != volstate.StatusAttaching {
		return errors.New(reason)
	}
	a.Log.Warn("volume attach failed", "volume", v.ID, "server", v.Attachments[0].ServerID, "reason", reason)
	return a.propose(ctx, volstate.CmdDetached, volstate.DetachedCmd{VolumeID: v.ID, AttachmentID: v.Attachments[0].ID, Reason: "attach failed: " + reason, Now: a.Now().UTC()})
}

// extendDone finishes Nova's record of the extends of v that the guest
// now sees (size bytes), or of every open one with result Error.
func (a *Agent) extendDone(ctx context.Context, v *volstate.Volume, size int64, result, details string) error {
	a.Log.Info("volume extend recorded", "volume", v.ID, "server", v.Attachments[0].ServerID, "result", result, "details", details)
	return a.propose(ctx, computestate.CmdExtendDone, computestate.ExtendDoneCmd{ServerID: v.Attachments[0].ServerID, VolumeID: v.ID,
		Size: size, Result: result, Details: details, Now: a.Now().UTC()})
}

// propose reports a step; a conflict means the volume moved on (the
// next pass sees where to).
func (a *Agent) propose(ctx context.Context, typ string, body any) error {
	err := a.Propose(ctx, typ, body)
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

func (a *Agent) setTold(id string, n int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.told[id] = n
}

func (a *Agent) setLimited(id string, l hypervisor.IOLimits) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.limited[id] = l
}

func (a *Agent) limitedTo(id string) (hypervisor.IOLimits, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.limited[id]
	return l, ok
}

// forget drops what this process told a volume's guest, once unplugged.
func (a *Agent) forget(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.told, id)
	delete(a.limited, id)
}

func (a *Agent) toldSize(id string) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.told[id]
	return n, ok
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
