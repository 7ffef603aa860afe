package compute

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// fakeBootVolumes makes volumes from images and snapshots as the volume
// service does: available rows in the caller's project.
type fakeBootVolumes struct {
	f       *fixture
	mu      sync.Mutex
	made    map[string]string // volume → image, or "snapshot:" and the snapshot
	deleted []string
	// reimaged are the reimages asked for: project:volume:image.
	reimaged []string
	fail     error
	// failAfter is how many volumes are made before fail applies.
	failAfter int
	// gate, when set, holds each create until it receives (or ctx
	// ends); broken makes each volume in error, as a backend that
	// refuses it does.
	gate   chan struct{}
	broken bool
	// waiting counts the creates that have reached the gate.
	waiting int
}

func (b *fakeBootVolumes) CreateFromImage(ctx context.Context, p *api.Principal, id, image string, size int, name, volumeType string) (string, error) {
	return b.create(ctx, p, id, image, "", size, volumeType)
}

func (b *fakeBootVolumes) CreateBlank(ctx context.Context, p *api.Principal, id string, size int, name, volumeType string) (string, error) {
	return b.create(ctx, p, id, "", "", size, volumeType)
}

// CreateFromSnapshot makes the volume of the snapshot's size (unless
// size is given) and its volume's type (unless volumeType is given); the
// state machine refuses another project's snapshot, one not available or
// a smaller size, as the volume service's create does.
func (b *fakeBootVolumes) CreateFromSnapshot(ctx context.Context, p *api.Principal, id, snapshot string, size int, name, volumeType string) (string, error) {
	tx := b.f.local.State.Txn()
	if sn := store.Get[volstate.Snapshot](tx, volstate.SnapshotTable, snapshot); sn != nil {
		if size == 0 {
			size = sn.Size
		}
		if src := store.Get[volstate.Volume](tx, volstate.VolumeTable, sn.VolumeID); src != nil && volumeType == "" {
			volumeType = src.TypeID
		}
	}
	return b.create(ctx, p, id, "", snapshot, size, volumeType)
}

// create makes an available volume of image or snapshot ("" both:
// blank), failing with fail, or once failAfter volumes are made.
func (b *fakeBootVolumes) create(ctx context.Context, p *api.Principal, id, image, snapshot string, size int, volumeType string) (string, error) {
	if b.gate != nil {
		b.mu.Lock()
		b.waiting++
		b.mu.Unlock()
		select {
		case <-b.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	b.mu.Lock()
	n := len(b.made)
	b.mu.Unlock()
	if b.fail != nil && n >= b.failAfter {
		return "", b.fail
	}
	if volumeType == "" {
		volumeType = volstate.DefaultTypeID
	} else if t := volstate.TypeByName(b.f.local.State.Txn(), volumeType); t != nil {
		volumeType = t.ID
	}
	v := volstate.Volume{ID: id, Project: p.ProjectID, Size: size, Status: volstate.StatusAvailable, TypeID: volumeType,
		ImageID: image, Bootable: image != "", SnapshotID: snapshot}
	if b.broken {
		v.Status, v.Reason = volstate.StatusError, "the backend refused it"
	}
	if _, err := b.f.local.Propose(ctx, volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: v}); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.made[v.ID] = image
	if snapshot != "" {
		b.made[v.ID] = "snapshot:" + snapshot
	}
	if b.broken {
		return "", errors.New("make a blank volume: the backend refused it")
	}
	return v.ID, nil
}

// Reimage records the reimage asked for, failing with fail.
func (b *fakeBootVolumes) Reimage(_ context.Context, p *api.Principal, id, image string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	b.reimaged = append(b.reimaged, p.ProjectID+":"+id+":"+image)
	return nil
}

func (b *fakeBootVolumes) Delete(_ context.Context, _ *api.Principal, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deleted = append(b.deleted, id)
	return nil
}

func bfv(source, uuid string, size int, deleteOnTermination bool) []any {
	m := map[string]any{"boot_index": 0, "source_type": source, "destination_type": "volume", "uuid": uuid,
		"delete_on_termination": deleteOnTermination}
	if size > 0 {
		m["volume_size"] = size
	}
	return []any{m}
}

// A server booted from a volume has it attached as its root disk in the
// command that creates it, shows no image, lists the volume, cannot
// detach it, and releases it when it goes.
func TestBootFromVolume(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	vol := f.volume(projA)
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bfv("volume", vol, 0, false))
	sv := f.show(alice, id, "2.79")
	if sv["image"] != "" {
		t.Fatalf("image of a server booted from a volume: %v", sv["image"])
	}
	if va := sv["os-extended-volumes:volumes_attached"].([]any); len(va) != 1 || va[0].(map[string]any)["id"] != vol {
		t.Fatalf("volumes_attached %v", va)
	}
	row := f.row(id)
	v := f.vol(vol)
	if row.BootVolume != vol || row.ImageID != "" || row.RootGB != 0 {
		t.Fatalf("server row %+v", row)
	}
	if v.Status != volstate.StatusAttaching || len(v.Attachments) != 1 || !v.Attachments[0].Root || v.Attachments[0].Host != row.Host || v.Attachments[0].Device != "/dev/vda" {
		t.Fatalf("volume %+v", v)
	}
	f.agentReports(volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: v.Attachments[0].ID, Now: f.now})
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.expect("DELETE", "/v2.1/servers/"+id+"/os-volume_attachments/"+vol, alice, "", nil, 400, "badRequest", "root device")

	// The volume is taken: a second server cannot boot from it.
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm2", "flavorRef": "small",
		"networks": []any{map[string]any{"uuid": netA}}, "block_device_mapping_v2": bfv("volume", vol, 0, false)}}, 400, "badRequest", "in-use")

	// A volume Cinder does not mark bootable is Nova's 400, and taken by
	// nothing; as a data volume it is attached.
	plain := volstate.Volume{ID: api.NewUUID(), Project: projA, Size: 1, Status: volstate.StatusAvailable, TypeID: volstate.DefaultTypeID}
	if _, err := f.local.Propose(context.Background(), volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: plain}); err != nil {
		t.Fatal(err)
	}
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm3", "flavorRef": "small",
		"networks": []any{map[string]any{"uuid": netA}}, "block_device_mapping_v2": bfv("volume", plain.ID, 0, false)}}, 400, "badRequest", "Block Device "+plain.ID+" is not bootable.")
	if got := f.vol(plain.ID); got.Status != volstate.StatusAvailable || len(got.Attachments) != 0 {
		t.Fatalf("the refused boot volume %+v", got)
	}
	// With an imageRef beside it the volume is not asked whether it is
	// bootable, as in Nova (openstacksdk boots a blank volume so).
	withImage := f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm4", "flavorRef": "small", "imageRef": img1,
		"networks": []any{map[string]any{"uuid": netA}}, "block_device_mapping_v2": bfv("volume", plain.ID, 0, false)}}, 202, "")["server"].(map[string]any)["id"].(string)
	if got := f.row(withImage); got.BootVolume != plain.ID {
		t.Fatalf("booted from %q, want %s", got.BootVolume, plain.ID)
	}
	f.expect("DELETE", "/v2.1/servers/"+withImage, alice, "", nil, 204, "")
	f.report(withImage, Observed{Gone: true})

	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	if got := f.vol(vol); got.Status != volstate.StatusAvailable || len(got.Attachments) != 0 {
		t.Fatalf("after the server is gone %+v", got)
	}
}

// --boot-from-volume: the volume is made from the image by the volume
// service first; with delete_on_termination it is left deleting (for
// the volume service to delete) when the server goes.
func TestBootFromImageVolumeDeletedWithTheServer(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	bv := &fakeBootVolumes{f: f, made: map[string]string{}}
	f.svc.cfg.Volumes = bv
	id := f.server(alice, "vm", "block_device_mapping_v2", bfv("image", img1, 2, true))
	row := f.row(id)
	if bv.made[row.BootVolume] != img1 {
		t.Fatalf("boot volume %q made from %v", row.BootVolume, bv.made)
	}
	sv := f.show(alice, id, "2.79")
	if va := sv["os-extended-volumes:volumes_attached"].([]any); len(va) != 1 || va[0].(map[string]any)["delete_on_termination"] != true {
		t.Fatalf("volumes_attached %v", va)
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	if got := f.vol(row.BootVolume); got.Status != volstate.StatusDeleting || len(got.Attachments) != 0 {
		t.Fatalf("after the server is gone %+v", got)
	}

	// A server over quota is refused before any volume is made.
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"instances": 0}}, 200, "")
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm3", "flavorRef": "small",
		"networks": []any{map[string]any{"uuid": netA}}, "block_device_mapping_v2": bfv("image", img1, 2, false)}}, 403, "")
	if len(bv.made) != 1 || len(bv.deleted) != 0 {
		t.Fatalf("made %v, deleted %v", bv.made, bv.deleted)
	}
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"instances": 10}}, 200, "")

	// No host for it once its volume is made: the server is in ERROR,
	// attached to nothing; the volume made for it with
	// delete_on_termination goes, as Nova's aborted build cleans up.
	f.hosts.hosts = nil
	id = f.server(alice, "vm5", "block_device_mapping_v2", bfv("image", img1, 2, true))
	if row := f.row(id); row.Host != "" || row.Status != "ERROR" || len(bv.deleted) != 1 || bv.made[bv.deleted[0]] != img1 ||
		len(f.vol(bv.deleted[0]).Attachments) != 0 {
		t.Fatalf("unplaced server %+v; deleted %v", row, bv.deleted)
	}
	bv.fail = errors.New("no space")
	id = f.server(alice, "vm4", "block_device_mapping_v2", bfv("image", img1, 2, false))
	if row := f.row(id); row.Status != "ERROR" || row.Fault == nil || row.Fault.Message != "Build of instance "+id+" aborted: no space" {
		t.Fatalf("server whose volume was not made %+v", row)
	}
}

func TestBlockDeviceMappingV2DataVolumes(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	mine := f.volume(projA)
	bdm := []any{
		map[string]any{"uuid": img1, "boot_index": 0, "source_type": "image", "destination_type": "local", "delete_on_termination": true},
		map[string]any{"uuid": mine, "boot_index": -1, "source_type": "volume", "destination_type": "volume", "delete_on_termination": false},
		map[string]any{"boot_index": "none", "source_type": "blank", "destination_type": "volume", "volume_size": 1,
			"delete_on_termination": true, "volume_type": "fast"},
		map[string]any{"uuid": img1, "boot_index": 1, "source_type": "image", "destination_type": "volume", "volume_size": 2},
	}
	sv := map[string]any{"name": "vm", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}},
		"block_device_mapping_v2": bdm}
	id := f.expect("POST", "/v2.1/servers", alice, "2.67", map[string]any{"server": sv}, 202, "")["server"].(map[string]any)["id"].(string)
	row := f.row(id)
	if row.ImageID != img1 || row.BootVolume != "" || len(bv.made) != 2 {
		t.Fatalf("server row %+v, made %v", row, bv.made)
	}
	var blank, fromImage string
	for v, img := range bv.made {
		if img == "" {
			blank = v
		} else {
			fromImage = v
		}
	}
	if f.vol(blank).TypeID != "t-fast" || f.vol(fromImage).ImageID != img1 || f.vol(fromImage).Size != 2 {
		t.Fatalf("made blank %+v, from image %+v", f.vol(blank), f.vol(fromImage))
	}
	// Boot index 1 first, then the others as listed.
	for i, want := range []struct {
		vol, device string
		del         bool
	}{{fromImage, "/dev/vdc", false}, {mine, "/dev/vdd", false}, {blank, "/dev/vde", true}} {
		v := f.vol(want.vol)
		if len(v.Attachments) != 1 || v.Attachments[0].ServerID != id || v.Attachments[0].Host != row.Host || v.Attachments[0].Root ||
			v.Attachments[0].Device != want.device || v.Attachments[0].DeleteOnTermination != want.del {
			t.Fatalf("data volume %d: %+v", i, v)
		}
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	if va := f.show(alice, id, "2.79")["os-extended-volumes:volumes_attached"].([]any); len(va) != 3 {
		t.Fatalf("volumes_attached %v", va)
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	for _, want := range []struct{ vol, status string }{{mine, volstate.StatusAvailable}, {fromImage, volstate.StatusAvailable}, {blank, volstate.StatusDeleting}} {
		if v := f.vol(want.vol); v.Status != want.status || len(v.Attachments) != 0 {
			t.Fatalf("after the server is gone, want %s: %+v", want.status, v)
		}
	}

	// A volume that cannot be made puts the server in ERROR: the
	// caller's volume is not taken, the one made before it is kept
	// (not delete_on_termination).
	bv.fail, bv.failAfter = &api.Error{Status: 413, Msg: "VolumeSizeExceedsAvailableQuota: quota exceeded for gigabytes"}, len(bv.made)+1
	two := []any{
		map[string]any{"uuid": mine, "source_type": "volume", "destination_type": "volume"},
		map[string]any{"source_type": "blank", "destination_type": "volume", "volume_size": 1},
		map[string]any{"source_type": "blank", "destination_type": "volume", "volume_size": 1},
	}
	id = f.server(alice, "vm2", "block_device_mapping_v2", two)
	if row := f.row(id); row.Status != "ERROR" || row.Fault == nil || !strings.Contains(row.Fault.Message, "quota") || row.Host != "" {
		t.Fatalf("server whose volume was not made %+v", row)
	}
	if len(bv.made) != 3 || len(bv.deleted) != 0 {
		t.Fatalf("made %v, deleted %v", bv.made, bv.deleted)
	}
	if v := f.vol(mine); v.Status != volstate.StatusAvailable {
		t.Fatalf("a failed create took volume %+v", v)
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	bv.fail = nil

	// No host: the server is in ERROR and the volume made for it is gone.
	hosts := f.hosts.hosts
	f.hosts.hosts = nil
	id = f.server(alice, "vm3", "block_device_mapping_v2", []any{map[string]any{"source_type": "blank", "destination_type": "volume",
		"volume_size": 1, "delete_on_termination": true}})
	if f.row(id).Host != "" || len(bv.made) != 4 || len(bv.deleted) != 1 || bv.made[bv.deleted[0]] != "" {
		t.Fatalf("unplaced server %+v: made %v, deleted %v", f.row(id), bv.made, bv.deleted)
	}
	f.hosts.hosts = hosts

	// Refused at the API before anything is made, naming the field.
	theirs, used := f.volume(projB), f.volume(projA)
	f.server(alice, "user", "block_device_mapping_v2", []any{map[string]any{"uuid": used, "source_type": "volume", "destination_type": "volume"}})
	made := len(bv.made)
	data := func(kv ...any) []any {
		m := map[string]any{"destination_type": "volume"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return []any{m}
	}
	tests := map[string]struct {
		version string
		bdm     []any
		msg     string
	}{
		"in use":               {"", data("source_type", "volume", "uuid", used), "not available"},
		"others' volume":       {"", data("source_type", "volume", "uuid", theirs), theirs},
		"no such volume":       {"", data("source_type", "volume", "uuid", api.NewUUID()), "failed to get volume"},
		"blank, no size":       {"", data("source_type", "blank"), "volume_size"},
		"blank with uuid":      {"", data("source_type", "blank", "uuid", mine, "volume_size", 1), "uuid"},
		"volume, not snapshot": {"", data("source_type", "snapshot", "uuid", mine), "block_device_mapping_v2.uuid"},
		"bad source":           {"", data("source_type", "disk", "uuid", mine), "source_type"},
		"bad destination":      {"", data("source_type", "blank", "destination_type", "cloud", "volume_size", 1), "destination_type"},
		"ephemeral ext4":       {"", data("source_type", "blank", "destination_type", "local", "guest_format", "ext4", "volume_size", 1), "Ephemeral disks requested are larger than the instance type allows"},
		"swap":                 {"", data("source_type", "blank", "destination_type", "local", "guest_format", "swap", "volume_size", 1), "Swap drive requested is larger than instance type allows"},
		"ephemeral":            {"", data("source_type", "blank", "destination_type", "local", "volume_size", 1), "Ephemeral disks requested are larger"},
		"tag at 2.33":          {"2.33", data("source_type", "blank", "volume_size", 1, "tag", "db"), "'tag' was unexpected"},
		"tag with a slash":     {"2.42", data("source_type", "blank", "volume_size", 1, "tag", "d/b"), "block_device_mapping_v2.tag"},
		"tag too long":         {"2.42", data("source_type", "blank", "volume_size", 1, "tag", strings.Repeat("t", 61)), "tag"},
		"no such type":         {"2.67", data("source_type", "blank", "volume_size", 1, "volume_type", "slow"), "volume_type"},
		"type before 2.67":     {"2.66", data("source_type", "blank", "volume_size", 1, "volume_type", "fast"), "volume_type"},
		"type of existing":     {"2.67", data("source_type", "volume", "uuid", mine, "volume_type", "fast"), "volume_type"},
		"no such image":        {"", data("source_type", "image", "uuid", api.NewUUID(), "volume_size", 1), "Image"},
		"bad uuid":             {"", data("source_type", "volume", "uuid", "x"), "uuid"},
		"boot image clash":     {"", []any{map[string]any{"uuid": imgBig, "boot_index": 0, "source_type": "image", "destination_type": "local"}}, "imageRef"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sv := map[string]any{"name": "x", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}},
				"block_device_mapping_v2": tc.bdm}
			f.expect("POST", "/v2.1/servers", alice, tc.version, map[string]any{"server": sv}, 400, "badRequest", tc.msg)
		})
	}
	if len(bv.made) != made || f.vol(mine).Status != volstate.StatusAvailable {
		t.Fatalf("a refused create made %v or took %+v", bv.made, f.vol(mine))
	}
}

// bdmSnapshot takes a snapshot (available) of a new volume of project of
// size GiB and type typeID, and returns its id.
func (f *fixture) bdmSnapshot(project string, size int, typeID string) string {
	f.t.Helper()
	ctx := context.Background()
	v := volstate.Volume{ID: api.NewUUID(), Project: project, Size: size, Status: volstate.StatusAvailable, TypeID: typeID}
	if _, err := f.local.Propose(ctx, volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: v}); err != nil {
		f.t.Fatal(err)
	}
	sn := volstate.Snapshot{ID: api.NewUUID(), Project: project, VolumeID: v.ID, Status: volstate.SnapStatusAvailable}
	if _, err := f.local.Propose(ctx, volstate.CmdCreateSnapshot, volstate.CreateSnapshotCmd{Row: sn}); err != nil {
		f.t.Fatal(err)
	}
	return sn.ID
}

// openstack server create --snapshot SNAP (and Horizon's boot from a
// volume snapshot): boot_index 0, source snapshot, destination volume. A
// new volume is made from the caller's snapshot, of its size or the
// volume_size given, of its volume's type or the volume_type given
// (2.67); it is the server's root disk, deleted with the server when
// delete_on_termination says so.
func TestBootFromVolumeSnapshot(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	sn := f.bdmSnapshot(projA, 2, "t-fast")
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bfv("snapshot", sn, 0, true))
	row := f.row(id)
	v := f.vol(row.BootVolume)
	if bv.made[row.BootVolume] != "snapshot:"+sn || row.ImageID != "" || row.RootGB != 0 {
		t.Fatalf("server row %+v; made %v", row, bv.made)
	}
	if v.SnapshotID != sn || v.Size != 2 || v.TypeID != "t-fast" || len(v.Attachments) != 1 || !v.Attachments[0].Root ||
		v.Attachments[0].Device != "/dev/vda" || !v.Attachments[0].DeleteOnTermination {
		t.Fatalf("boot volume %+v", v)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	if got := f.vol(row.BootVolume); got.Status != volstate.StatusDeleting {
		t.Fatalf("delete_on_termination boot volume after the server is gone %+v", got)
	}

	// A bigger volume, of the type named, kept after the server.
	bdm := bfv("snapshot", sn, 3, false)
	bdm[0].(map[string]any)["volume_type"] = volstate.DefaultTypeID
	sv := map[string]any{"name": "vm2", "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}}, "block_device_mapping_v2": bdm}
	id = f.expect("POST", "/v2.1/servers", alice, "2.67", map[string]any{"server": sv}, 202, "")["server"].(map[string]any)["id"].(string)
	row = f.row(id)
	if v := f.vol(row.BootVolume); v.SnapshotID != sn || v.Size != 3 || v.TypeID != volstate.DefaultTypeID || v.Attachments[0].DeleteOnTermination {
		t.Fatalf("3 GiB boot volume %+v", v)
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	if got := f.vol(row.BootVolume); got.Status != volstate.StatusAvailable {
		t.Fatalf("kept boot volume after the server is gone %+v", got)
	}

	// The legacy mapping's snapshot_id on vda is the same boot volume.
	id = f.server(alice, "vm3", "imageRef", "", "block_device_mapping", []any{map[string]any{"snapshot_id": sn, "device_name": "/dev/vda", "volume_size": 2}})
	if row := f.row(id); bv.made[row.BootVolume] != "snapshot:"+sn || !f.vol(row.BootVolume).Attachments[0].Root {
		t.Fatalf("server on a legacy snapshot_id %+v", row)
	}

	// A data volume that cannot be made puts the server in ERROR, and
	// the boot volume made for it (delete_on_termination) is deleted.
	bv.fail, bv.failAfter = &api.Error{Status: 413, Msg: "VolumeSizeExceedsAvailableQuota: quota exceeded for gigabytes"}, len(bv.made)+1
	id = f.server(alice, "vm4", "imageRef", "", "block_device_mapping_v2", append(bfv("snapshot", sn, 0, true),
		map[string]any{"source_type": "blank", "destination_type": "volume", "volume_size": 1}))
	if row := f.row(id); row.Status != "ERROR" || row.Fault == nil || !strings.Contains(row.Fault.Message, "quota") {
		t.Fatalf("server whose data volume was not made %+v", row)
	}
	if len(bv.deleted) != 1 || bv.made[bv.deleted[0]] != "snapshot:"+sn {
		t.Fatalf("made %v, deleted %v", bv.made, bv.deleted)
	}
}

// source_type snapshot with another boot index: a data volume made from
// the caller's snapshot and attached at create, as the other sources
// are; what cannot be made from is refused before anything is made,
// naming the field.
func TestBlockDeviceMappingSnapshotDataVolume(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	bv := &fakeBootVolumes{f: f, made: map[string]string{}}
	f.svc.cfg.Volumes = bv
	sn := f.bdmSnapshot(projA, 2, volstate.DefaultTypeID)
	bdm := []any{
		map[string]any{"uuid": sn, "source_type": "snapshot", "destination_type": "volume", "delete_on_termination": true},
		map[string]any{"uuid": sn, "boot_index": 1, "source_type": "snapshot", "destination_type": "volume", "volume_size": 4},
	}
	id := f.server(alice, "vm", "block_device_mapping_v2", bdm)
	row := f.row(id)
	if row.ImageID != img1 || row.BootVolume != "" || len(bv.made) != 2 {
		t.Fatalf("server row %+v, made %v", row, bv.made)
	}
	for vid := range bv.made {
		v := f.vol(vid)
		big := v.Size == 4
		if v.SnapshotID != sn || !big && v.Size != 2 || len(v.Attachments) != 1 || v.Attachments[0].Root || v.Attachments[0].ServerID != id ||
			v.Attachments[0].Device != map[bool]string{true: "/dev/vdc", false: "/dev/vdd"}[big] || v.Attachments[0].DeleteOnTermination == big {
			t.Fatalf("data volume from the snapshot %+v", v)
		}
	}
	// The legacy mapping's snapshot_id off vda is a data volume too.
	id = f.server(alice, "vm2", "block_device_mapping", []any{map[string]any{"snapshot_id": sn, "device_name": "vdb"}})
	var legacy []*volstate.Volume
	for vid, src := range bv.made {
		if v := f.vol(vid); src == "snapshot:"+sn && len(v.Attachments) == 1 && v.Attachments[0].ServerID == id && !v.Attachments[0].Root {
			legacy = append(legacy, v)
		}
	}
	if len(bv.made) != 3 || len(legacy) != 1 {
		t.Fatalf("legacy data volume from the snapshot: made %v, attached to %s: %v", bv.made, id, legacy)
	}

	theirs := f.bdmSnapshot(projB, 1, volstate.DefaultTypeID)
	broken := f.bdmSnapshot(projA, 1, volstate.DefaultTypeID)
	b := store.Get[volstate.Snapshot](f.local.State.Txn(), volstate.SnapshotTable, broken).Clone()
	b.Status = volstate.SnapStatusError
	if _, err := f.local.Propose(context.Background(), volstate.CmdPutSnapshot, volstate.PutSnapshotCmd{Row: *b, Revision: b.Revision}); err != nil {
		t.Fatal(err)
	}
	made := len(bv.made)
	entry := func(index int, kv ...any) []any {
		m := map[string]any{"source_type": "snapshot", "destination_type": "volume", "boot_index": index}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return []any{m}
	}
	tests := map[string]struct {
		bdm       []any
		msg, msg2 string
	}{
		"others' snapshot":       {entry(1, "uuid", theirs), "block_device_mapping_v2.uuid", "failed to get snapshot"},
		"others' boot snapshot":  {entry(0, "uuid", theirs), "block_device_mapping_v2.uuid", "failed to get snapshot"},
		"no such snapshot":       {entry(-1, "uuid", api.NewUUID()), "block_device_mapping_v2.uuid", "failed to get snapshot"},
		"snapshot in error":      {entry(1, "uuid", broken), "block_device_mapping_v2.uuid", "not available"},
		"boot snapshot in error": {entry(0, "uuid", broken), "block_device_mapping_v2.uuid", "not available"},
		"smaller":                {entry(1, "uuid", sn, "volume_size", 1), "block_device_mapping_v2.volume_size", "smaller"},
		"smaller boot volume":    {entry(0, "uuid", sn, "volume_size", 1), "block_device_mapping_v2.volume_size", "smaller"},
		"bad uuid":               {entry(1, "uuid", "x"), "block_device_mapping_v2.uuid", "UUID"},
		"no uuid":                {entry(1), "block_device_mapping_v2.uuid", "UUID"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sv := map[string]any{"name": "x", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}},
				"block_device_mapping_v2": tc.bdm}
			f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": sv}, 400, "badRequest", tc.msg, tc.msg2)
		})
	}
	for name, l := range map[string][]any{
		"legacy others' snapshot": {map[string]any{"snapshot_id": theirs, "device_name": "vdb"}},
		"legacy smaller":          {map[string]any{"snapshot_id": sn, "volume_size": 1}},
	} {
		t.Run(name, func(t *testing.T) {
			sv := map[string]any{"name": "x", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}},
				"block_device_mapping": l}
			f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": sv}, 400, "badRequest", "block_device_mapping.")
		})
	}
	if len(bv.made) != made {
		t.Fatalf("a refused create made %v", bv.made)
	}
}

// newBlockDeviceFixture is a fixture with the volume tables, the
// standard flavors, a fake volume service recording what it makes, and
// a public volume type "fast" (id t-fast).
func newBlockDeviceFixture(t *testing.T) (*fixture, *fakeBootVolumes) {
	t.Helper()
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	bv := &fakeBootVolumes{f: f, made: map[string]string{}}
	f.svc.cfg.Volumes = bv
	if _, err := f.local.Propose(context.Background(), volstate.CmdCreateType, volstate.CreateTypeCmd{Row: volstate.Type{ID: "t-fast", Name: "fast", Public: true}}); err != nil {
		t.Fatal(err)
	}
	return f, bv
}

// A blank volume at boot_index 0 is the server's root disk, as Nova's
// _validate_bdm allows (tempest's stable-rescue test boots one and
// rescues it): the volume service makes it empty, and the server is
// placed with it attached as its root; without volume_size it is
// refused, naming the field, before anything is made.
func TestBootFromBlankVolume(t *testing.T) {
	f, bv := newBlockDeviceFixture(t)
	blank := []any{map[string]any{"boot_index": "0", "source_type": "blank", "destination_type": "volume", "volume_size": 1,
		"delete_on_termination": true}}
	id := f.server(alice, "vm", "imageRef", img1, "block_device_mapping_v2", blank)
	row := f.row(id)
	if row.BootVolume == "" || row.Host == "" {
		t.Fatalf("server booted from a blank volume %+v", row)
	}
	if image, ok := bv.made[row.BootVolume]; !ok || image != "" {
		t.Fatalf("boot volume %s made as %v (want blank)", row.BootVolume, bv.made)
	}
	v := f.vol(row.BootVolume)
	if v.Size != 1 || len(v.Attachments) != 1 || !v.Attachments[0].Root || v.Attachments[0].ServerID != id {
		t.Fatalf("blank boot volume %+v", v)
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	if got := f.vol(row.BootVolume); got.Status != volstate.StatusDeleting || len(got.Attachments) != 0 {
		t.Fatalf("after the server is gone %+v", got)
	}

	made := len(bv.made)
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm2", "flavorRef": "small", "imageRef": img1,
		"networks": []any{map[string]any{"uuid": netA}}, "block_device_mapping_v2": []any{map[string]any{"boot_index": 0,
			"source_type": "blank", "destination_type": "volume"}}}}, 400, "badRequest", "volume_size")
	if len(bv.made) != made {
		t.Fatalf("a refused create made volumes: %v", bv.made)
	}
}
