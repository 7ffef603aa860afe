package volumes

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

const putAction = "test.action.put"

// extendWorld is a world whose state has the compute tables too, where
// putAction stands for Nova recording an extend, and whose agent's
// ExtendDone reports are kept (not applied: Nova's handler is tested
// with it).
func extendWorld(t *testing.T) (*world, *[]computestate.ExtendDoneCmd) {
	cs := computestate.Schema()
	cs.Handlers = map[string]store.Handler{putAction: store.Typed(func(tx *memdb.Txn, a computestate.Action) (any, error) {
		return nil, tx.Insert(computestate.TableActions, &a)
	})}
	local, err := store.NewLocal(volstate.Schema(), cs)
	if err != nil {
		t.Fatal(err)
	}
	host := hypervisor.NewFakeHost(t.TempDir())
	ex := &fakeExports{size: map[string]int64{}, open: map[string]bool{}}
	w := &world{t: t, local: local, host: host, exports: ex}
	var done []computestate.ExtendDoneCmd
	w.agent = &Agent{
		Node: "n1", State: local.Read, Driver: host.Driver(), Exports: ex, Log: slog.Default(),
		Propose: func(ctx context.Context, typ string, body any) error {
			if typ == computestate.CmdExtendDone {
				// Through JSON, as Raft carries it.
				raw, _ := json.Marshal(body)
				var c computestate.ExtendDoneCmd
				if err := json.Unmarshal(raw, &c); err != nil {
					t.Fatal(err)
				}
				done = append(done, c)
				return nil
			}
			_, err := local.Propose(ctx, typ, body)
			return err
		},
		DetachWait: time.Second,
	}
	return w, &done
}

// An extend Nova recorded is reported done once the running guest has
// been told the new size, with that size; none is reported when no
// extend is open.
func TestExtendReportedOnceTheGuestSeesIt(t *testing.T) {
	w, done := extendWorld(t)
	w.vm("s1")
	const vol = "51111111-2222-3333-4444-555555555555"
	w.attached(vol, "s1", "n1", 1)
	w.pass()
	if len(*done) != 0 {
		t.Fatalf("done with no extend open: %+v", *done)
	}
	w.exports.size[vol] = 2 * volstate.GiB
	w.propose(putAction, computestate.Action{ID: "s1/req-1", ServerID: "s1", Action: computestate.ActionExtendVolume, RequestID: "req-1",
		Volume: vol, Size: 2 * volstate.GiB, Events: []computestate.ActionEvent{{Event: computestate.EventExtendVolume}}})
	w.pass()
	if n, _ := w.host.DiskSize("s1", DiskID(vol)); n != 2*volstate.GiB {
		t.Fatalf("guest sees %d bytes", n)
	}
	if len(*done) != 1 || (*done)[0] != (computestate.ExtendDoneCmd{ServerID: "s1", VolumeID: vol, Size: 2 * volstate.GiB, Result: "Success", Now: (*done)[0].Now}) {
		t.Fatalf("done %+v", *done)
	}
}

// A guest that is not running sees the size when it starts: the extend
// is done at once, as Nova's is for a server that is off.
func TestExtendOfAStoppedServerIsDone(t *testing.T) {
	w, done := extendWorld(t)
	const vol = "61111111-2222-3333-4444-555555555555"
	w.attached(vol, "s2", "n1", 1)
	w.propose(volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: "att-" + vol})
	w.exports.size[vol] = 3 * volstate.GiB
	w.propose(putAction, computestate.Action{ID: "s2/req-1", ServerID: "s2", Action: computestate.ActionExtendVolume, RequestID: "req-1",
		Volume: vol, Size: 3 * volstate.GiB, Events: []computestate.ActionEvent{{Event: computestate.EventExtendVolume}}})
	w.pass()
	if len(*done) != 1 || (*done)[0].Result != "Success" || (*done)[0].Size != 3*volstate.GiB {
		t.Fatalf("done %+v", *done)
	}
}

// A boot volume extended while its server runs is grown in the guest
// (its disk's nodes are named as a plugged one's), and the extend is a
// Success; a guest started before its boot disk had named nodes records
// the extend as an Error.
func TestExtendOfABootVolumeReachesTheGuest(t *testing.T) {
	w, done := extendWorld(t)
	const vol, old = "71111111-2222-3333-4444-555555555555", "72222222-2222-3333-4444-555555555555"
	for server, id := range map[string]string{"s3": DiskID(vol), "s4": ""} {
		if _, err := w.host.Driver().Start(context.Background(), hypervisor.VMSpec{ID: server, VCPUs: 1, MemoryMB: 64,
			Disks: []hypervisor.Disk{{NBDSocket: "/run/test/nbd.sock", NBDExport: map[string]string{"s3": vol, "s4": old}[server],
				Format: hypervisor.FormatRaw, ID: id}}}); err != nil {
			t.Fatal(err)
		}
	}
	for server, id := range map[string]string{"s3": vol, "s4": old} {
		w.propose(volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: volstate.Volume{ID: id, Project: "p", Size: 1, Status: volstate.StatusAvailable, TypeID: volstate.DefaultTypeID}})
		w.exports.size[id] = volstate.GiB
		w.propose(volstate.CmdAttach, volstate.AttachCmd{VolumeID: id, Attachment: volstate.Attachment{ID: server, ServerID: server, Host: "n1", Device: "/dev/vda", Root: true}})
	}
	w.pass()
	if len(*done) != 0 {
		t.Fatalf("done with no extend open: %+v", *done)
	}
	if _, ok := w.host.GrownDisk("s3", DiskID(vol)); ok {
		t.Fatal("a boot disk that did not grow was resized")
	}
	for server, id := range map[string]string{"s3": vol, "s4": old} {
		w.exports.size[id] = 2 * volstate.GiB
		w.propose(putAction, computestate.Action{ID: server + "/req-1", ServerID: server, Action: computestate.ActionExtendVolume, RequestID: "req-1",
			Volume: id, Size: 2 * volstate.GiB, Events: []computestate.ActionEvent{{Event: computestate.EventExtendVolume}}})
	}
	w.pass()
	if n, ok := w.host.GrownDisk("s3", DiskID(vol)); !ok || n != 2*volstate.GiB {
		t.Fatalf("the guest was told %d bytes (%v)", n, ok)
	}
	results := map[string]string{}
	for _, d := range *done {
		results[d.ServerID] += d.Result
	}
	if results["s3"] != "Success" || results["s4"] != "Error" {
		t.Fatalf("done %+v", *done)
	}
}
