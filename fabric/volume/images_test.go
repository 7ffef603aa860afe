package volume

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

const imageID = "11111111-2222-3333-4444-555555555555"

func (f *fixture) testImage() {
	f.data.addImage(ImageInfo{ID: imageID, Name: "cirros", Status: "active", DiskFormat: "qcow2", ContainerFormat: "bare",
		Checksum: "abc", Size: 20 << 20, VirtualSize: (1 << 30) + 1, MinRAM: 64, Properties: map[string]string{"hw_disk_bus": "virtio"}})
}

// A volume made from an image is creating until the image is copied in,
// then available, bootable, with the image's metadata; its size defaults
// to the image's disk, rounded up to GiB.
func TestVolumeFromImage(t *testing.T) {
	f := newFixture(t)
	f.testImage()
	gate := make(chan struct{})
	f.data.gate = gate
	v := f.createVolume(alice, map[string]any{"imageRef": imageID, "name": "boot"})
	id := v["id"].(string)
	if v["status"] != "creating" || v["size"] != float64(2) || v["bootable"] != "true" {
		t.Fatalf("created %v", v)
	}
	if got := f.showVolume(alice, id); got["status"] != "creating" {
		t.Fatalf("before the copy: %v", got["status"])
	}
	close(gate)
	got := f.waitStatus(alice, "volumes/"+id, "volume", "available")
	md, _ := got["volume_image_metadata"].(map[string]any)
	if md["image_id"] != imageID || md["image_name"] != "cirros" || md["disk_format"] != "qcow2" || md["hw_disk_bus"] != "virtio" || md["min_ram"] != "64" {
		t.Fatalf("volume_image_metadata %v", md)
	}
	if f.data.contentOf(id) != "image:"+imageID {
		t.Fatalf("volume holds %q", f.data.contentOf(id))
	}
	if n, _ := f.blocks.sizeOf(id); n != 2*volstate.GiB {
		t.Fatalf("blocks %d", n)
	}
}

func TestVolumeFromImageRefusals(t *testing.T) {
	f := newFixture(t)
	f.testImage()
	f.data.addImage(ImageInfo{ID: "22222222-2222-3333-4444-555555555555", Status: "queued", DiskFormat: "raw"})
	f.data.addImage(ImageInfo{ID: "33333333-2222-3333-4444-555555555555", Status: "active", DiskFormat: "iso", Size: 1 << 20})
	f.data.addImage(ImageInfo{ID: "44444444-2222-3333-4444-555555555555", Status: "active", DiskFormat: "raw", Size: 1 << 20, MinDisk: 3})
	tests := map[string]struct {
		attrs map[string]any
		code  int
	}{
		"too small":      {map[string]any{"imageRef": imageID, "size": 1}, http.StatusBadRequest},
		"not active":     {map[string]any{"imageRef": "22222222-2222-3333-4444-555555555555", "size": 1}, http.StatusBadRequest},
		"iso":            {map[string]any{"imageRef": "33333333-2222-3333-4444-555555555555", "size": 1}, http.StatusBadRequest},
		"below min_disk": {map[string]any{"imageRef": "44444444-2222-3333-4444-555555555555", "size": 2}, http.StatusBadRequest},
		"unknown":        {map[string]any{"imageRef": "55555555-2222-3333-4444-555555555555", "size": 1}, http.StatusNotFound},
		"and a snapshot": {map[string]any{"imageRef": imageID, "snapshot_id": "66666666-2222-3333-4444-555555555555", "size": 2}, http.StatusBadRequest},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if r := f.call("POST", "volumes", alice, map[string]any{"volume": tc.attrs}); r.Code != tc.code {
				t.Fatalf("%d %s, want %d", r.Code, r.Raw, tc.code)
			}
		})
	}
	if r := f.expect(http.StatusOK, "GET", "volumes", alice, nil); len(r.Body["volumes"].([]any)) != 0 {
		t.Fatalf("refused creates left volumes: %s", r.Raw)
	}
}

// A copy that fails leaves the volume in error with the reason.
func TestVolumeFromImageCopyFails(t *testing.T) {
	f := newFixture(t)
	f.testImage()
	f.data.fail = errors.New("qemu-img convert: image is corrupt")
	id := f.createVolume(alice, map[string]any{"imageRef": imageID, "size": 2})["id"].(string)
	got := f.waitStatus(admin, "volumes/"+id, "volume", "error")
	if got["rackstack:error_reason"] != "copy image "+imageID+" into the volume: qemu-img convert: image is corrupt" {
		t.Fatalf("reason %v", got["rackstack:error_reason"])
	}
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+id, alice, nil)
}

// Work that died with a process of this node is settled by the next
// one: a create whose blocks exist becomes available, one without them
// and an interrupted image copy become error with a reason; work the
// current process has in hand and work of another (live) node are left
// alone.
func TestAbandonedCreatesAreSettled(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.IsLeader = func() bool { return false } })
	ctx := context.Background()
	row := func(id, node, run, image string) {
		v := volstate.Volume{ID: id, Project: projA, Size: 1, Status: volstate.StatusCreating, TypeID: volstate.DefaultTypeID,
			ImageID: image, WorkNode: node, WorkRun: run}
		if _, err := f.local.Propose(ctx, volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: v}); err != nil {
			t.Fatal(err)
		}
	}
	f.blocks.Create(ctx, "made", volstate.GiB, volstate.Policy{})
	row("made", "n1", "old-run", "")
	row("unmade", "n1", "old-run", "")
	row("copying", "n1", "old-run", imageID)
	row("mine", "n1", f.svc.run, imageID)
	row("elsewhere", "n2", "its-run", "")
	defer f.svc.carry("mine")() // the copy in hand
	f.svc.settle(ctx)
	want := map[string]string{"made": "available", "unmade": "error", "copying": "error", "mine": "creating", "elsewhere": "creating"}
	for id, status := range want {
		got := f.showVolume(admin, id)
		if got["status"] != status {
			t.Errorf("%s: %v, want %s", id, got["status"], status)
		}
		if status == "error" && got["rackstack:error_reason"] == nil {
			t.Errorf("%s: no reason", id)
		}
	}
}

// Nova's boot from a volume made from an image: the call returns once
// the volume is available, in the caller's project; DeleteVolume gives
// it back.
func TestCreateFromImageForNova(t *testing.T) {
	f := newFixture(t)
	f.testImage()
	p := &api.Principal{UserID: "alice", ProjectID: projA, Roles: []string{"member"}}
	ctx := context.Background()
	id, err := f.svc.CreateFromImage(ctx, p, "", imageID, 2, "vm-root", "")
	if err != nil {
		t.Fatal(err)
	}
	got := f.showVolume(alice, id)
	if got["status"] != "available" || got["bootable"] != "true" || got["name"] != "vm-root" || f.data.contentOf(id) != "image:"+imageID {
		t.Fatalf("boot volume %v", got)
	}
	if _, err := f.svc.CreateFromImage(ctx, p, "", imageID, 1, "small", ""); api.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("a volume smaller than the image: %v", err)
	}
	other := &api.Principal{UserID: "bob", ProjectID: projB, Roles: []string{"member"}}
	if err := f.svc.DeleteVolume(ctx, other, id); err == nil {
		t.Fatal("another project deleted the volume")
	}
	if err := f.svc.DeleteVolume(ctx, p, id); err != nil {
		t.Fatal(err)
	}
	f.expect(http.StatusNotFound, "GET", "volumes/"+id, alice, nil)
}

// Nova's blank data volume of a server create: empty, of the type the
// entry names (or the default), not bootable; a type not found or private
// to other projects is refused.
func TestCreateBlankForNova(t *testing.T) {
	f := newFixture(t)
	p := &api.Principal{UserID: "alice", ProjectID: projA, Roles: []string{"member"}}
	ctx := context.Background()
	fast := f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "fast"}}).Body["volume_type"].(map[string]any)["id"].(string)
	f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "private", "os-volume-type-access:is_public": false}})
	id, err := f.svc.CreateBlank(ctx, p, "", 3, "vm-blank", "fast")
	if err != nil {
		t.Fatal(err)
	}
	got := f.showVolume(alice, id)
	if got["status"] != "available" || got["bootable"] != "false" || got["size"] != float64(3) || got["volume_type"] != "fast" {
		t.Fatalf("blank volume %v", got)
	}
	if v := f.showVolume(admin, id); v["volume_type_id"] != nil && v["volume_type_id"] != fast {
		t.Fatalf("blank volume's type %v, want %s", v["volume_type_id"], fast)
	}
	if id, err = f.svc.CreateBlank(ctx, p, "", 1, "vm-blank2", ""); err != nil || f.showVolume(alice, id)["volume_type"] == "fast" {
		t.Fatalf("blank volume of the default type: %v %v", err, f.showVolume(alice, id))
	}
	for _, ref := range []string{"slow", "private"} {
		if _, err := f.svc.CreateBlank(ctx, p, "", 1, "x", ref); api.StatusOf(err) != http.StatusNotFound {
			t.Fatalf("blank volume of type %s: %v", ref, err)
		}
	}
	if _, err := f.svc.CreateBlank(ctx, p, "", 0, "x", ""); api.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("blank volume of 0 GiB: %v", err)
	}
}

// Nova's volume made from a volume snapshot (source_type snapshot): a
// copy-on-write copy of the snapshot of the snapshot's size, or bigger,
// of its volume's type unless one is named, bootable as its volume is;
// another project's snapshot is not found, a smaller size or a snapshot
// not available is refused, and nothing is made for them.
func TestCreateFromSnapshotForNova(t *testing.T) {
	f := newFixture(t)
	p := &api.Principal{UserID: "alice", ProjectID: projA, Roles: []string{"member"}}
	ctx := context.Background()
	f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "fast"}})
	vol := f.createVolume(alice, map[string]any{"size": 2, "volume_type": "fast"})["id"].(string)
	if _, err := f.svc.changeVolume(ctx, vol, func(v *volstate.Volume) error { v.Bootable = true; return nil }); err != nil {
		t.Fatal(err)
	}
	sn := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}}).Body["snapshot"].(map[string]any)["id"].(string)
	id, err := f.svc.CreateFromSnapshot(ctx, p, "", sn, 0, "vm-root", "")
	if err != nil {
		t.Fatal(err)
	}
	got := f.showVolume(alice, id)
	if got["status"] != "available" || got["size"] != float64(2) || got["snapshot_id"] != sn || got["volume_type"] != "fast" ||
		got["bootable"] != "true" || got["name"] != "vm-root" || f.blocks.parent[id] != sn {
		t.Fatalf("volume from a snapshot %v (blocks from %q)", got, f.blocks.parent[id])
	}
	if id, err = f.svc.CreateFromSnapshot(ctx, p, "", sn, 3, "bigger", ""); err != nil {
		t.Fatal(err)
	}
	if size, _ := f.blocks.sizeOf(id); f.showVolume(alice, id)["size"] != float64(3) || size != 3*volstate.GiB {
		t.Fatalf("3 GiB volume from a snapshot: %v, blocks %d", f.showVolume(alice, id), size)
	}
	volumes := len(f.expect(http.StatusOK, "GET", "volumes", alice, nil).Body["volumes"].([]any))
	bob := &api.Principal{UserID: "bob", ProjectID: projB, Roles: []string{"member"}}
	if _, err := f.svc.CreateFromSnapshot(ctx, bob, "", sn, 0, "x", ""); api.StatusOf(err) != http.StatusNotFound {
		t.Fatalf("another project's snapshot: %v", err)
	}
	if _, err := f.svc.CreateFromSnapshot(ctx, p, "", sn, 1, "x", ""); api.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("smaller than the snapshot: %v", err)
	}
	f.expect(http.StatusAccepted, "POST", "snapshots/"+sn+"/action", admin, action("os-reset_status", map[string]any{"status": "error"}))
	if _, err := f.svc.CreateFromSnapshot(ctx, p, "", sn, 0, "x", ""); api.StatusOf(err) != http.StatusBadRequest {
		t.Fatalf("from a snapshot in error: %v", err)
	}
	if n := len(f.expect(http.StatusOK, "GET", "volumes", alice, nil).Body["volumes"].([]any)); n != volumes {
		t.Fatalf("%d volumes after refused creates, %d before", n, volumes)
	}
}

// A volume released deleting by its server's removal (delete on
// termination) has no worker: the maintenance deletes it.
func TestReleasedDeletingVolumeIsDeleted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	// As volstate.ReleaseServer leaves it (compute's tests check that).
	if _, err := f.svc.changeVolume(ctx, id, func(v *volstate.Volume) error {
		v.Status, v.WorkNode, v.WorkRun = volstate.StatusDeleting, "", ""
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.svc.settle(ctx)
	f.expect(http.StatusNotFound, "GET", "volumes/"+id, alice, nil)
	if _, ok := f.blocks.sizeOf(id); ok {
		t.Fatal("blocks left")
	}
}

// A copy of a volume made from an image, or of its snapshot, is bootable
// with the image's metadata, as Cinder copies them.
func TestCopiesOfABootableVolumeAreBootable(t *testing.T) {
	f := newFixture(t)
	f.testImage()
	src := f.createVolume(alice, map[string]any{"imageRef": imageID})["id"].(string)
	f.waitStatus(alice, "volumes/"+src, "volume", "available")
	sn := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": src}}).Body["snapshot"].(map[string]any)["id"].(string)
	for _, attrs := range []map[string]any{{"source_volid": src}, {"snapshot_id": sn}} {
		id := f.createVolume(alice, attrs)["id"].(string)
		got := f.showVolume(alice, id)
		md, _ := got["volume_image_metadata"].(map[string]any)
		if got["bootable"] != "true" || md["image_id"] != imageID || md["image_name"] != "cirros" {
			t.Fatalf("copy %v: %v", attrs, got)
		}
	}
	plain := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	copied := f.createVolume(alice, map[string]any{"source_volid": plain})["id"].(string)
	if got := f.showVolume(alice, copied); got["bootable"] != "false" || got["volume_image_metadata"] != nil {
		t.Fatalf("copy of a plain volume: %v", got)
	}
}

// A volume's image metadata is shown, merged and unset by key through
// the volume actions; image_id stays.
func TestVolumeImageMetadataActions(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	path := "volumes/" + vol + "/action"
	got := f.expect(http.StatusOK, "POST", path, alice, map[string]any{"os-set_image_metadata": map[string]any{"metadata": map[string]any{"a": "1", "b": "2"}}}).Body["metadata"].(map[string]any)
	if len(got) != 2 || got["a"] != "1" {
		t.Fatalf("set %v", got)
	}
	f.expect(http.StatusOK, "POST", path, alice, map[string]any{"os-unset_image_metadata": map[string]any{"key": "a"}})
	f.expect(http.StatusNotFound, "POST", path, alice, map[string]any{"os-unset_image_metadata": map[string]any{"key": "a"}})
	got = f.expect(http.StatusOK, "POST", path, alice, map[string]any{"os-show_image_metadata": map[string]any{}}).Body["metadata"].(map[string]any)
	if len(got) != 1 || got["b"] != "2" {
		t.Fatalf("show %v", got)
	}
	if md := f.showVolume(alice, vol)["volume_image_metadata"].(map[string]any); md["b"] != "2" {
		t.Fatalf("volume shows %v", md)
	}
	f.expect(http.StatusBadRequest, "POST", path, alice, map[string]any{"os-set_image_metadata": map[string]any{"metadata": map[string]any{"a": 1}}})
	f.expect(http.StatusNotFound, "POST", path, bob, map[string]any{"os-show_image_metadata": map[string]any{}})
}

// image_id in a volume's image metadata may be set, as Cinder lets it.
func TestVolumeImageMetadataSetsImageID(t *testing.T) {
	f := newFixture(t)
	f.testImage()
	vol := f.createVolume(alice, map[string]any{"imageRef": imageID})["id"].(string)
	f.waitStatus(alice, "volumes/"+vol, "volume", "available")
	const other = "5137a025-3c5f-43c1-bc64-5f41270040a5"
	f.expect(http.StatusOK, "POST", "volumes/"+vol+"/action", alice, map[string]any{"os-set_image_metadata": map[string]any{"metadata": map[string]any{"image_id": other}}})
	if md := f.showVolume(alice, vol)["volume_image_metadata"].(map[string]any); md["image_id"] != other {
		t.Fatalf("image metadata %v", md)
	}
}

// A volume made from an image with the property cinder_img_volume_type,
// whose create names no type, takes that type (by name or id), as in
// Cinder; a named type wins; a type not found, or private to other
// projects, leaves the default.
func TestImageVolumeType(t *testing.T) {
	f := newFixture(t)
	gold := f.typeWith("gold", nil)
	f.typeWith("silver", nil)
	priv := f.createType(map[string]any{"name": "hidden", "os-volume-type-access:is_public": false})
	for i, ref := range []string{"gold", gold, "silver", "nosuch", priv} {
		id := fmt.Sprintf("5555555%d-2222-3333-4444-555555555555", i)
		f.data.addImage(ImageInfo{ID: id, Status: "active", DiskFormat: "raw", Size: 1 << 20, Properties: map[string]string{"cinder_img_volume_type": ref}})
		want := map[string]string{"gold": "gold", gold: "gold", "silver": "gold", "nosuch": "__DEFAULT__", priv: "__DEFAULT__"}[ref]
		attrs := map[string]any{"imageRef": id}
		if ref == "silver" {
			attrs["volume_type"] = "gold"
		}
		v := f.createVolume(alice, attrs)
		if got := f.showVolume(alice, v["id"].(string))["volume_type"]; got != want {
			t.Errorf("image with cinder_img_volume_type %q: volume_type %v, want %s", ref, got, want)
		}
	}
}
