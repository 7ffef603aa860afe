package compute

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// bdmCreate posts a create that boots from a volume made from an image
// (delete_on_termination bootDel) with a blank data volume (dataDel),
// and returns the server's id.
func (f *fixture) bdmCreate(name string, bootDel, dataDel bool) string {
	f.t.Helper()
	bdm := append(bfv("image", img1, 2, bootDel),
		map[string]any{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "delete_on_termination": dataDel})
	return f.server(alice, name, "imageRef", "", "block_device_mapping_v2", bdm)
}

// blockDevice is the server's made volume of the boot disk (boot) or
// its data volume.
func (f *fixture) madeVolume(id string, boot bool) string {
	f.t.Helper()
	for _, d := range f.row(id).BlockDevices {
		if d.Boot == boot && d.Source != "volume" {
			return d.VolumeID
		}
	}
	f.t.Fatalf("server %s names no made volume (boot %v): %+v", id, boot, f.row(id).BlockDevices)
	return ""
}

// A create whose volumes must be made answers 202 at once: the server is
// in BUILD, task_state block_device_mapping, on no host, seen by its
// project only; once its volumes are made it is placed and they are
// attached (the root disk on vda), its ports bound, and it runs.
func TestBlockDeviceMappingBuildsAfterTheAnswer(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	bv.gate = make(chan struct{})
	f.async = true
	id := f.bdmCreate("vm", true, false)
	boot, data := f.madeVolume(id, true), f.madeVolume(id, false)
	sv := f.show(alice, id, "2.79")
	if sv["status"] != "BUILD" || sv["OS-EXT-STS:task_state"] != "block_device_mapping" || sv["OS-EXT-STS:vm_state"] != "building" {
		t.Fatalf("while its volumes are made: %v %v %v", sv["status"], sv["OS-EXT-STS:task_state"], sv["OS-EXT-STS:vm_state"])
	}
	if row := f.row(id); row.Host != "" || row.BootVolume != "" || len(bv.made) != 0 {
		t.Fatalf("placed before its volumes exist: %+v, made %v", row, bv.made)
	}
	f.expect("GET", "/v2.1/servers/"+id, bob, "", nil, 404, "itemNotFound")

	bv.gate <- struct{}{}
	bv.gate <- struct{}{}
	f.svc.bg.Wait()
	f.async = false
	row := f.row(id)
	if row.Host == "" || row.TaskState != "spawning" || row.BootVolume != boot || len(row.BlockDevices) != 0 || row.BuildRun != "" {
		t.Fatalf("once its volumes are made: %+v", row)
	}
	if bv.made[boot] != img1 || bv.made[data] != "" || len(bv.made) != 2 {
		t.Fatalf("made %v", bv.made)
	}
	for _, want := range []struct {
		vol, device string
		root, del   bool
	}{{boot, "/dev/vda", true, true}, {data, "/dev/vdc", false, false}} {
		v := f.vol(want.vol)
		if len(v.Attachments) != 1 || v.Attachments[0].ServerID != id || v.Attachments[0].Host != row.Host || v.Attachments[0].Device != want.device ||
			v.Attachments[0].Root != want.root || v.Attachments[0].DeleteOnTermination != want.del {
			t.Fatalf("volume %s: %+v", want.vol, v)
		}
	}
	for _, pt := range row.Ports {
		if p, _ := f.ports.get(pt); p.Host != row.Host {
			t.Fatalf("port %s not bound to %s: %+v", pt, row.Host, p)
		}
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	if sv := f.show(alice, id, "2.79"); sv["status"] != "ACTIVE" || len(sv["os-extended-volumes:volumes_attached"].([]any)) != 2 {
		t.Fatalf("active: %v %v", sv["status"], sv["os-extended-volumes:volumes_attached"])
	}
}

// A volume that cannot be made (the backend leaves it in error) puts the
// server in ERROR with Nova's fault and a failed build event on its
// create action; its ports go, the volumes made with
// delete_on_termination (and the one in error) are deleted, the others
// kept; the server stays until deleted.
func TestBlockDeviceMappingVolumeInErrorFailsTheBuild(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	ports := f.ports.count()
	// The boot volume is made; the data volume goes to error.
	bv.gate = make(chan struct{})
	f.async = true
	id := f.bdmCreate("vm", false, true)
	bv.gate <- struct{}{}
	waitFor(t, func() bool { return bv.count() == 1 })
	bv.broken = true
	bv.gate <- struct{}{}
	f.svc.bg.Wait()
	f.async = false
	boot, data := f.madeVolume(id, true), f.madeVolume(id, false)
	sv := f.show(alice, id, "2.79")
	fault, _ := sv["fault"].(map[string]any)
	msg, _ := fault["message"].(string)
	if sv["status"] != "ERROR" || sv["OS-EXT-STS:task_state"] != nil || fault["code"] != float64(500) ||
		!strings.HasPrefix(msg, fmt.Sprintf("Build of instance %s aborted: Volume %s did not finish being created even after we waited ", id, data)) ||
		!strings.HasSuffix(msg, " seconds or 1 attempts. And its status is error.") {
		t.Fatalf("failed build: status %v task %v fault %v", sv["status"], sv["OS-EXT-STS:task_state"], fault)
	}
	if f.ports.count() != ports {
		t.Fatalf("%d ports after a failed build, %d before", f.ports.count(), ports)
	}
	// The data volume (in error, delete_on_termination) is deleted; the
	// boot volume (not delete_on_termination) is the caller's now.
	if len(bv.deleted) != 1 || bv.deleted[0] != data || f.vol(boot).Status != volstate.StatusAvailable || len(f.vol(boot).Attachments) != 0 {
		t.Fatalf("deleted %v; boot volume %+v", bv.deleted, f.vol(boot))
	}
	acts := f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions", alice, "2.79", nil, 200, "")["instanceActions"].([]any)
	create := acts[len(acts)-1].(map[string]any)
	act := f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions/"+create["request_id"].(string), alice, "2.79", nil, 200, "")["instanceAction"].(map[string]any)
	evs := act["events"].([]any)
	if act["action"] != "create" || act["message"] != "Error" || len(evs) != 1 || evs[0].(map[string]any)["event"] != "compute__do_build_and_run_instance" ||
		evs[0].(map[string]any)["result"] != "Error" {
		t.Fatalf("create action %v", act)
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	if f.row(id) != nil || f.vol(boot).Status != volstate.StatusAvailable {
		t.Fatalf("after delete: %+v, boot %+v", f.row(id), f.vol(boot))
	}

	// With delete_on_termination the made boot volume goes with the
	// server once it is deleted (Nova deletes it when the build aborts).
	bv.gate, bv.broken, bv.deleted = nil, false, nil
	bv.fail, bv.failAfter = fmt.Errorf("no space"), len(bv.made)+1
	id = f.bdmCreate("vm2", true, false)
	boot = f.madeVolume(id, true)
	if f.row(id).Status != "ERROR" || len(bv.deleted) != 1 || bv.deleted[0] != boot {
		t.Fatalf("failed build %+v, deleted %v", f.row(id), bv.deleted)
	}
}

// A server deleted while its volumes are made is gone for the API (and
// its quota) at once; its build removes it once the volume in hand is
// made, deleting the volumes made with delete_on_termination and its
// ports, and makes no other.
func TestBlockDeviceMappingDeletedWhileMade(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	ports := f.ports.count()
	bv.gate = make(chan struct{})
	f.async = true
	id := f.bdmCreate("vm", true, false)
	boot := f.madeVolume(id, true)
	// The build is making the volume when the server is deleted: a build
	// that had not started yet would see the deletion and make nothing,
	// and the gate below would wait for it forever.
	waitFor(t, func() bool { bv.mu.Lock(); defer bv.mu.Unlock(); return bv.waiting == 1 })
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.expect("GET", "/v2.1/servers/"+id, alice, "", nil, 404, "itemNotFound")
	if u := projectUsage(f.local.State.Txn(), projA); u.Instances != 0 {
		t.Fatalf("a deleted server still counts: %+v", u)
	}
	bv.gate <- struct{}{}
	f.svc.bg.Wait()
	f.async = false
	if f.row(id) != nil || len(bv.made) != 1 || bv.made[boot] != img1 || len(bv.deleted) != 1 || bv.deleted[0] != boot {
		t.Fatalf("after the build: row %+v, made %v, deleted %v", f.row(id), bv.made, bv.deleted)
	}
	if f.ports.count() != ports {
		t.Fatalf("%d ports, %d before", f.ports.count(), ports)
	}
}

// A process that stops while a server's volumes are made leaves the
// build: the next process of its node resumes it from the volumes that
// exist, and the leader resumes the build of a lost node; a server is
// never left in block_device_mapping.
func TestBlockDeviceMappingResumedAfterRestart(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	bv.gate = make(chan struct{})
	f.async = true
	id := f.bdmCreate("vm", true, true)
	// The boot volume is made; the process stops while the data volume
	// is made.
	bv.gate <- struct{}{}
	waitFor(t, func() bool { return bv.count() == 1 })
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.svc.Run(stopped); err != nil {
		t.Fatal(err)
	}
	f.async = false
	if row := f.row(id); row.TaskState != "block_device_mapping" || row.BuildRun == "" || row.Fault != nil {
		t.Fatalf("stopped build %+v", row)
	}
	// The next process on the node resumes it: the boot volume is not
	// made again.
	bv.gate = nil
	next, err := New(f.svc.cfg)
	if err != nil {
		t.Fatal(err)
	}
	next.resumeBuilds(context.Background())
	next.bg.Wait()
	row := f.row(id)
	if row.Host == "" || row.TaskState != "spawning" || bv.count() != 2 || row.BuildRun != "" || len(f.vol(row.BootVolume).Attachments) != 1 {
		t.Fatalf("resumed build %+v, made %v", row, bv.made)
	}

	// A build of a node that is lost is the leader's to resume; not
	// while the node is up. (The API's process has stopped: it starts
	// no build.)
	id = f.bdmCreate("vm2", true, true)
	if row := f.row(id); row.TaskState != "block_device_mapping" || bv.count() != 2 {
		t.Fatalf("a stopped process built %+v", row)
	}
	lost := false
	cfg := f.svc.cfg
	cfg.Node, cfg.NodeLost = "n2", func(n string) bool { return n == f.svc.cfg.Node && lost }
	n2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n2.resumeBuilds(context.Background())
	n2.bg.Wait()
	if row := f.row(id); row.BuildRun != f.svc.run || row.TaskState != "block_device_mapping" {
		t.Fatalf("a live node's build was taken: %+v", row)
	}
	lost = true
	n2.resumeBuilds(context.Background())
	n2.bg.Wait()
	if row := f.row(id); row.Host == "" || row.TaskState != "spawning" || row.BuildRun != "" || bv.count() != 4 {
		t.Fatalf("a lost node's build: %+v", row)
	}
}

// waitFor waits, at most 10 s, for cond.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 10000; i++ {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("condition not met in 10 s")
}

func (b *fakeBootVolumes) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.made)
}

// dataVolume is a block_device_mapping_v2 entry attaching existing
// volume vol as a data volume.
func dataVolume(vol string, del bool) map[string]any {
	return map[string]any{"source_type": "volume", "destination_type": "volume", "uuid": vol, "delete_on_termination": del}
}

// reservation checks that vol is reserved for server id under its one
// attachment att, on no host yet, and returns it.
func (f *fixture) reservation(vol, id, att string) volstate.Attachment {
	f.t.Helper()
	v := f.vol(vol)
	if v.Status != volstate.StatusReserved || len(v.Attachments) != 1 || v.Attachments[0].ServerID != id ||
		v.Attachments[0].ID != att || v.Attachments[0].Host != "" {
		f.t.Fatalf("volume %s is not reserved for server %s (attachment %s): %+v", vol, id, att, v)
	}
	return v.Attachments[0]
}

// existingDevice is the attachment id a server's row keeps for existing
// volume vol.
func (f *fixture) existingDevice(id, vol string) BlockDevice {
	f.t.Helper()
	for _, d := range f.row(id).BlockDevices {
		if d.Source == "volume" && d.VolumeID == vol {
			return d
		}
	}
	f.t.Fatalf("server %s names no volume %s: %+v", id, vol, f.row(id).BlockDevices)
	return BlockDevice{}
}

// An existing volume named by a create that is placed later (its other
// volumes are made first) is reserved for the server from the 202 on, as
// Nova's API reserves it with Cinder's attachment_create: another create
// or an attach naming it is refused at once with 400 naming it, even
// one that passed the API's check (the command recording the server
// refuses it, recording nothing); once placed, the server has it under
// the reservation's attachment, the only one.
func TestBlockDeviceMappingReservesExistingVolumes(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	data, boot := f.volume(projA), f.volume(projA)
	other := f.server(alice, "other")
	f.report(other, Observed{Status: "ACTIVE", PowerState: 1})
	bv.gate = make(chan struct{})
	f.async = true
	bdm := append(bfv("image", img1, 2, true), dataVolume(data, true))
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bdm)
	att := f.existingDevice(id, data).AttachmentID
	a := f.reservation(data, id, att)
	if a.Root || !a.DeleteOnTermination {
		t.Fatalf("reservation %+v", a)
	}
	// Cinder's view: reserved, attached to the server.
	if va := f.show(alice, id, "2.79")["os-extended-volumes:volumes_attached"].([]any); len(va) != 1 || va[0].(map[string]any)["id"] != data {
		t.Fatalf("volumes_attached while building: %v", va)
	}

	// A second create naming it, deferred or not, and an attach.
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm2", "flavorRef": "small",
		"networks": []any{map[string]any{"uuid": netA}}, "block_device_mapping_v2": append(bfv("image", img1, 2, true), dataVolume(data, false))}},
		400, "badRequest", data, "reserved")
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm3", "flavorRef": "small",
		"networks": []any{map[string]any{"uuid": netA}}, "block_device_mapping_v2": bfv("volume", data, 0, false)}},
		400, "badRequest", data, "reserved")
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm4", "flavorRef": "small", "imageRef": img1,
		"networks": []any{map[string]any{"uuid": netA}}, "block_device_mapping": []any{map[string]any{"device_name": "vdb", "volume_id": data}}}},
		400, "badRequest", data, "reserved")
	f.expect("POST", "/v2.1/servers/"+other+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": data}},
		400, "badRequest", data, "reserved")
	// Nor can it be detached from the building server.
	f.expect("DELETE", "/v2.1/servers/"+id+"/os-volume_attachments/"+data, alice, "", nil, 409, "conflictingRequest")

	// A create that passed the API's check before the first was
	// recorded: its command refuses the volume and records nothing.
	race := *f.row(id)
	race.ID, race.Ports, race.CreatedPorts = "race-"+id, []string{}, nil
	race.BlockDevices = []BlockDevice{{Boot: true, Source: "volume", UUID: boot, VolumeID: boot},
		{Source: "volume", UUID: data, VolumeID: data, AttachmentID: "race-att"}}
	_, err := f.local.Propose(context.Background(), cmdServerCreate, serverCreateCmd{Servers: []Server{race}, Deferred: true, RequestID: "req-race", Now: f.now})
	if err == nil || !strings.Contains(err.Error(), data) {
		t.Fatalf("a create naming a reserved volume was recorded: %v", err)
	}
	if f.row(race.ID) != nil || f.vol(boot).Status != volstate.StatusAvailable || len(f.vol(boot).Attachments) != 0 {
		t.Fatalf("half-written create: %+v, boot volume %+v", f.row(race.ID), f.vol(boot))
	}
	f.reservation(data, id, att)

	// Placed: the reservation is the attachment, the only one.
	bv.gate <- struct{}{}
	f.svc.bg.Wait()
	f.async = false
	row := f.row(id)
	v := f.vol(data)
	if row.Host == "" || v.Status != volstate.StatusAttaching || len(v.Attachments) != 1 || v.Attachments[0].ID != att ||
		v.Attachments[0].ServerID != id || v.Attachments[0].Host != row.Host || v.Attachments[0].Device != "/dev/vdc" || !v.Attachments[0].DeleteOnTermination {
		t.Fatalf("placed %+v; volume %+v", row, v)
	}
	f.agentReports(volstate.CmdAttached, volstate.AttachedCmd{VolumeID: data, AttachmentID: att, Now: f.now})
	if v := f.vol(data); v.Status != volstate.StatusInUse || len(v.Attachments) != 1 {
		t.Fatalf("in use: %+v", v)
	}
}

// The boot volume of a create that makes its data volume is reserved
// too (attachment: the server's id, as its root disk's); a build that
// fails gives it back, available, with no attachment, and so does a
// server that finds no host; neither deletes it, whatever
// delete_on_termination says (it was never the server's disk).
func TestBlockDeviceMappingFailedBuildReleasesReservation(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	boot := f.volume(projA)
	blank := map[string]any{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "delete_on_termination": true}
	bv.gate = make(chan struct{})
	f.async = true
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", append(bfv("volume", boot, 0, true), blank))
	if a := f.reservation(boot, id, id); !a.Root || a.Device != "/dev/vda" {
		t.Fatalf("boot reservation %+v", a)
	}
	bv.broken = true
	bv.gate <- struct{}{}
	f.svc.bg.Wait()
	f.async = false
	if row := f.row(id); row.Status != "ERROR" {
		t.Fatalf("failed build %+v", row)
	}
	if v := f.vol(boot); v.Status != volstate.StatusAvailable || len(v.Attachments) != 0 || slices.Contains(bv.deleted, boot) {
		t.Fatalf("after a failed build: %+v, deleted %v", v, bv.deleted)
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")

	// No valid host: the server is in ERROR, holding no volume.
	bv.broken, bv.gate = false, nil
	f.hosts.hosts = nil
	id = f.server(alice, "vm2", "imageRef", "", "block_device_mapping_v2", append(bfv("volume", boot, 0, true), blank))
	if row := f.row(id); row.Status != "ERROR" || row.Host != "" {
		t.Fatalf("unplaced %+v", row)
	}
	if v := f.vol(boot); v.Status != volstate.StatusAvailable || len(v.Attachments) != 0 || slices.Contains(bv.deleted, boot) {
		t.Fatalf("after no valid host: %+v, deleted %v", v, bv.deleted)
	}
}

// A server deleted before it is placed gives its reserved volumes back
// at once (its build then removes it without touching them); a process
// that stops keeps the reservation in the state, and the next one
// places the server under it.
func TestBlockDeviceMappingReservationDeletedOrResumed(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	data := f.volume(projA)
	bv.gate = make(chan struct{})
	f.async = true
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", append(bfv("image", img1, 2, true), dataVolume(data, true)))
	f.reservation(data, id, f.existingDevice(id, data).AttachmentID)
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	if v := f.vol(data); v.Status != volstate.StatusAvailable || len(v.Attachments) != 0 {
		t.Fatalf("reserved for a deleted server: %+v", v)
	}
	bv.gate <- struct{}{}
	f.svc.bg.Wait()
	if v := f.vol(data); f.row(id) != nil || v.Status != volstate.StatusAvailable || len(v.Attachments) != 0 || slices.Contains(bv.deleted, data) {
		t.Fatalf("after the build: row %+v, volume %+v, deleted %v", f.row(id), v, bv.deleted)
	}

	// Stopped mid-build: the reservation stays; resumed, it is attached.
	id = f.server(alice, "vm2", "imageRef", "", "block_device_mapping_v2", append(bfv("image", img1, 2, true), dataVolume(data, false)))
	att := f.existingDevice(id, data).AttachmentID
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.svc.Run(stopped); err != nil {
		t.Fatal(err)
	}
	f.async = false
	f.reservation(data, id, att)
	bv.gate = nil
	next, err := New(f.svc.cfg)
	if err != nil {
		t.Fatal(err)
	}
	next.resumeBuilds(context.Background())
	next.bg.Wait()
	row, v := f.row(id), f.vol(data)
	if row.Host == "" || len(v.Attachments) != 1 || v.Attachments[0].ID != att || v.Attachments[0].Host != row.Host || v.Status != volstate.StatusAttaching {
		t.Fatalf("resumed %+v; volume %+v", row, v)
	}
}
