package volumes

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// fakeExports keeps exported volumes and their sizes in memory.
type fakeExports struct {
	mu   sync.Mutex
	size map[string]int64 // the volumes' sizes in the store
	open map[string]bool
	fail error
	// exporting, when set, runs as id's export begins: what another
	// agent of the node does meanwhile.
	exporting func(id string)
}

func (e *fakeExports) Export(_ context.Context, id string) (int64, error) {
	if e.exporting != nil {
		e.exporting(id)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return 0, e.fail
	}
	e.open[id] = true
	return e.size[id], nil
}

func (e *fakeExports) Unexport(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.open, id)
	return nil
}

func (e *fakeExports) Exported() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for id := range e.open {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

func (e *fakeExports) Socket() string { return "/run/test/nbd.sock" }

type world struct {
	t       *testing.T
	local   *store.Local
	host    *hypervisor.FakeHost
	exports *fakeExports
	agent   *Agent
}

func newWorld(t *testing.T) *world {
	local, err := store.NewLocal(volstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	host := hypervisor.NewFakeHost(t.TempDir())
	ex := &fakeExports{size: map[string]int64{}, open: map[string]bool{}}
	w := &world{t: t, local: local, host: host, exports: ex}
	w.agent = &Agent{
		Node: "n1", State: local.Read, Driver: host.Driver(), Exports: ex, Log: slog.Default(),
		Propose: func(ctx context.Context, typ string, body any) error {
			_, err := local.Propose(ctx, typ, body)
			return err
		},
		DetachWait: time.Second,
	}
	return w
}

func (w *world) vm(id string) hypervisor.VM {
	w.t.Helper()
	disk := filepath.Join(w.t.TempDir(), "root")
	if err := os.WriteFile(disk, make([]byte, 512), 0o600); err != nil {
		w.t.Fatal(err)
	}
	vm, err := w.host.Driver().Start(context.Background(), hypervisor.VMSpec{ID: id, VCPUs: 1, MemoryMB: 64,
		Disks: []hypervisor.Disk{{Path: disk, Format: hypervisor.FormatRaw}}})
	if err != nil {
		w.t.Fatal(err)
	}
	return vm
}

func (w *world) propose(typ string, body any) {
	w.t.Helper()
	if _, err := w.local.Propose(context.Background(), typ, body); err != nil {
		w.t.Fatalf("%s: %v", typ, err)
	}
}

func (w *world) pass() {
	w.t.Helper()
	if _, err := w.agent.Reconcile(context.Background()); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) volume(id string) *volstate.Volume {
	w.t.Helper()
	v, err := volstate.LoadVolume(w.local.State.Txn(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return v
}

// attached makes an available volume of size GiB and attaches it to
// server on host.
func (w *world) attached(id, server, host string, size int) volstate.Attachment {
	w.propose(volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: volstate.Volume{ID: id, Project: "p", Size: size, Status: volstate.StatusAvailable, TypeID: volstate.DefaultTypeID}})
	w.exports.size[id] = int64(size) * volstate.GiB
	a := volstate.Attachment{ID: "att-" + id, ServerID: server, Host: host, Device: "/dev/vdc"}
	w.propose(volstate.CmdAttach, volstate.AttachCmd{VolumeID: id, Attachment: a})
	return a
}

func TestPlugGrowAndUnplug(t *testing.T) {
	w := newWorld(t)
	w.vm("s1")
	const vol = "11111111-2222-3333-4444-555555555555"
	w.attached(vol, "s1", "n1", 1)
	w.pass()
	if got := w.volume(vol).Status; got != volstate.StatusInUse {
		t.Fatalf("status after the pass %s", got)
	}
	if _, ok := w.host.DiskSize("s1", DiskID(vol)); !ok || !w.exports.open[vol] {
		t.Fatalf("not plugged (%v) or not exported (%v)", ok, w.exports.open)
	}
	// The volume grew (the API extended it): the guest is told.
	w.exports.size[vol] = 2 * volstate.GiB
	w.pass()
	if n, _ := w.host.DiskSize("s1", DiskID(vol)); n != 2*volstate.GiB {
		t.Fatalf("guest sees %d bytes", n)
	}
	w.propose(volstate.CmdDetach, volstate.DetachCmd{VolumeID: vol, ServerID: "s1"})
	w.pass()
	v := w.volume(vol)
	if v.Status != volstate.StatusAvailable || len(v.Attachments) != 0 || w.exports.open[vol] {
		t.Fatalf("after detach %+v, exported %v", v, w.exports.open)
	}
	if _, ok := w.host.DiskSize("s1", DiskID(vol)); ok {
		t.Fatal("still plugged")
	}
}

func TestOtherNodesAttachmentsAreLeftAlone(t *testing.T) {
	w := newWorld(t)
	w.vm("s2")
	const vol = "21111111-2222-3333-4444-555555555555"
	w.attached(vol, "s2", "n2", 1)
	w.pass()
	if got := w.volume(vol).Status; got != volstate.StatusAttaching || len(w.exports.Exported()) != 0 {
		t.Fatalf("n1 acted on n2's attachment: %s, %v", got, w.exports.Exported())
	}
}

func TestAttachThatCannotWorkGivesTheVolumeBack(t *testing.T) {
	w := newWorld(t)
	w.vm("s3")
	const vol = "31111111-2222-3333-4444-555555555555"
	w.attached(vol, "s3", "n1", 1)
	w.exports.fail = errors.New("store unreachable")
	w.pass()
	v := w.volume(vol)
	if v.Status != volstate.StatusAvailable || len(v.Attachments) != 0 || v.Reason == "" {
		t.Fatalf("after a failed export %+v", v)
	}
}

func TestExportsOfReleasedVolumesEnd(t *testing.T) {
	w := newWorld(t)
	w.vm("s4")
	const vol = "41111111-2222-3333-4444-555555555555"
	a := w.attached(vol, "s4", "n1", 1)
	w.pass()
	// The attachment went without this agent (a server removal releases
	// its volumes; an admin resets one).
	w.propose(volstate.CmdDetached, volstate.DetachedCmd{VolumeID: vol, AttachmentID: a.ID})
	w.pass()
	if len(w.exports.Exported()) != 0 {
		t.Fatalf("export of a released volume kept: %v", w.exports.Exported())
	}
}

func TestGuestNotRunningWaits(t *testing.T) {
	w := newWorld(t)
	const vol = "51111111-2222-3333-4444-555555555555"
	w.attached(vol, "s5", "n1", 1)
	w.pass()
	if got := w.volume(vol).Status; got != volstate.StatusAttaching {
		t.Fatalf("attached with no guest: %s", got)
	}
	w.vm("s5")
	w.pass()
	if got := w.volume(vol).Status; got != volstate.StatusInUse {
		t.Fatalf("not attached once the guest runs: %s", got)
	}
}

// A boot volume is exported before its guest exists (the guest opens it
// when it starts), becomes in-use once the guest runs, and is never
// hot-plugged.
func TestBootVolumeIsExportedNotPlugged(t *testing.T) {
	w := newWorld(t)
	const vol = "61111111-2222-3333-4444-555555555555"
	w.propose(volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: volstate.Volume{ID: vol, Project: "p", Size: 1, Status: volstate.StatusAvailable, TypeID: volstate.DefaultTypeID}})
	w.exports.size[vol] = volstate.GiB
	w.propose(volstate.CmdAttach, volstate.AttachCmd{VolumeID: vol, Attachment: volstate.Attachment{ID: "s6", ServerID: "s6", Host: "n1", Device: "/dev/vda", Root: true}})
	w.pass()
	if got := w.volume(vol).Status; got != volstate.StatusAttaching || !w.exports.open[vol] {
		t.Fatalf("before the guest: %s, exported %v", got, w.exports.open)
	}
	w.vm("s6")
	w.pass()
	if got := w.volume(vol).Status; got != volstate.StatusInUse {
		t.Fatalf("once the guest runs: %s", got)
	}
	if _, ok := w.host.DiskSize("s6", DiskID(vol)); ok {
		t.Fatal("the boot volume was hot-plugged as well")
	}
}

// A read-only volume is plugged read-only, and a volume whose type has a
// front-end QoS spec is plugged with its limits, which follow a change
// of the spec while it stays plugged.
func TestPlugReadOnlyAndWithTheTypesLimits(t *testing.T) {
	w := newWorld(t)
	w.vm("s1")
	const ro, capped = "aaaaaaaa-2222-3333-4444-555555555555", "bbbbbbbb-2222-3333-4444-555555555555"
	yes := true
	w.propose(volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: volstate.Volume{ID: ro, Project: "p", Size: 1, Status: volstate.StatusAvailable,
		TypeID: volstate.DefaultTypeID, ReadOnly: &yes}})
	w.exports.size[ro] = volstate.GiB
	w.propose(volstate.CmdAttach, volstate.AttachCmd{VolumeID: ro, Attachment: volstate.Attachment{ID: "att-ro", ServerID: "s1", Host: "n1"}})

	w.propose(volstate.CmdCreateQoS, volstate.CreateQoSCmd{Row: volstate.QoSSpec{ID: "q1", Name: "cap", Consumer: volstate.ConsumerFrontEnd,
		Specs: map[string]string{volstate.QoSReadIOPS: "100", volstate.QoSWriteBytes: "1048576"}}})
	w.propose(volstate.CmdCreateType, volstate.CreateTypeCmd{Row: volstate.Type{ID: "t1", Name: "capped", Public: true}})
	w.propose(volstate.CmdPutType, volstate.PutTypeCmd{Row: volstate.Type{ID: "t1", Name: "capped", Public: true, QoSSpecID: "q1"}, Revision: 1})
	w.propose(volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: volstate.Volume{ID: capped, Project: "p", Size: 1, Status: volstate.StatusAvailable, TypeID: "t1"}})
	w.exports.size[capped] = volstate.GiB
	w.propose(volstate.CmdAttach, volstate.AttachCmd{VolumeID: capped, Attachment: volstate.Attachment{ID: "att-capped", ServerID: "s1", Host: "n1"}})
	w.pass()

	d, ok := w.host.HotDisk("s1", DiskID(ro))
	if !ok || !d.ReadOnly || !d.Limits.IsZero() {
		t.Fatalf("read-only volume plugged as %+v (%v)", d, ok)
	}
	d, ok = w.host.HotDisk("s1", DiskID(capped))
	if want := (hypervisor.IOLimits{ReadIOPS: 100, WriteBytes: 1 << 20}); !ok || d.ReadOnly || d.Limits != want {
		t.Fatalf("capped volume plugged as %+v (%v), want limits %+v", d, ok, want)
	}

	w.propose(volstate.CmdPutQoS, volstate.PutQoSCmd{Row: volstate.QoSSpec{ID: "q1", Name: "cap", Consumer: volstate.ConsumerBoth,
		Specs: map[string]string{volstate.QoSTotalIOPS: "50"}}, Revision: 1})
	w.pass()
	if d, _ := w.host.HotDisk("s1", DiskID(capped)); d.Limits != (hypervisor.IOLimits{TotalIOPS: 50}) {
		t.Fatalf("after the spec changed: %+v", d.Limits)
	}
	w.propose(volstate.CmdDeleteQoS, volstate.DeleteQoSCmd{ID: "q1", Force: true})
	w.pass()
	if d, _ := w.host.HotDisk("s1", DiskID(capped)); !d.Limits.IsZero() {
		t.Fatalf("after the spec went: %+v", d.Limits)
	}
}

// A boot volume's export made while a pass converges another volume (the
// instance agent starting a server created after the pass read the
// state) is not ended by that pass: it judges only exports made from
// state it has read. Ending it cut the booting guest's disk.
func TestPassKeepsExportMadeAfterItsRead(t *testing.T) {
	w := newWorld(t)
	w.vm("s1")
	const vol, boot = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
	w.attached(vol, "s1", "n1", 1)
	w.propose(volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: volstate.Volume{ID: boot, Project: "p", Size: 1, Status: volstate.StatusAvailable, TypeID: volstate.DefaultTypeID}})
	w.exports.size[boot] = volstate.GiB
	started := false
	w.exports.exporting = func(id string) {
		if id != vol || started {
			return
		}
		started = true
		// Server s2's create attaches its boot volume here, and the
		// instance agent exports it for the VM it starts.
		w.propose(volstate.CmdAttach, volstate.AttachCmd{VolumeID: boot, Attachment: volstate.Attachment{ID: "s2", ServerID: "s2", Host: "n1", Device: "/dev/vda", Root: true}})
		if _, err := w.exports.Export(context.Background(), boot); err != nil {
			t.Fatal(err)
		}
	}
	w.pass()
	if !started {
		t.Fatal("the pass exported nothing")
	}
	if !w.exports.open[boot] {
		t.Fatal("the pass ended the boot volume's export made after it read the state")
	}
	w.exports.exporting = nil
	w.pass() // the next pass sees it attached here: kept
	if !w.exports.open[boot] || !w.exports.open[vol] {
		t.Fatalf("exports after the next pass: %v", w.exports.Exported())
	}
}
