package compute

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// realBootVolumes is the volume service as rackd gives it to compute.
type realBootVolumes struct{ *volume.Service }

func (b realBootVolumes) Reimage(ctx context.Context, p *api.Principal, id, image string) error {
	return b.ReimageForServer(ctx, p, id, image)
}

func (b realBootVolumes) Delete(ctx context.Context, p *api.Principal, id string) error {
	return b.DeleteVolume(ctx, p, id)
}

// createImage of a server booted from a volume snapshots each of its
// volumes through the volume service and makes an empty image mapping
// the snapshots, as Nova's snapshot_volume_backed; a server created
// from that image boots from a volume made from the root snapshot, with
// a data volume made from the other. A snapshot that cannot be made
// deletes those made before, and no image is made.
func TestCreateImageOfVolumeBackedServer(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	blocks := &memBlocks{ids: map[string]int64{}}
	vs, err := volume.New(volume.Config{Repl: f.local, Auth: f.svc.cfg.Auth, Blocks: blocks, Node: "n1", Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.VolumeAPI, f.svc.cfg.Volumes = vs.Handler(), realBootVolumes{vs}
	snaps := f.withSnapshots()

	root := f.proxyVolume(alice)["id"].(string)
	data := f.proxyVolume(alice, "size", 2)["id"].(string)
	// Nova boots only a bootable volume: the owner marks it so.
	cinder := apitest.Serve(t, "/volume", vs.Handler())
	if res := apitest.Call(t, "POST", cinder.URL+"/volume/v3/"+projA+"/volumes/"+root+"/action", alice,
		map[string]any{"os-set_bootable": map[string]any{"bootable": true}}); res.Code != 200 {
		t.Fatalf("os-set_bootable: %d %v", res.Code, res.Body)
	}
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", []any{
		bfv("volume", root, 0, false)[0],
		map[string]any{"source_type": "volume", "destination_type": "volume", "uuid": data, "delete_on_termination": true}})
	for _, v := range []string{root, data} {
		f.agentReports(volstate.CmdAttached, volstate.AttachedCmd{VolumeID: v, AttachmentID: f.vol(v).Attachments[0].ID, Now: f.now})
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})

	imageID := f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "2.45",
		map[string]any{"createImage": map[string]any{"name": "bfv-snap", "metadata": map[string]any{"k": "v"}}}, 202, "")["image_id"].(string)
	made := snaps.made[imageID]
	if !made.Mapping || made.Project != projA || made.Properties["bdm_v2"] != "True" || made.Properties["root_device_name"] != "/dev/vda" ||
		made.Properties["instance_uuid"] != id || made.Properties["image_type"] != "snapshot" || made.Properties["k"] != "v" {
		t.Fatalf("image %+v", made)
	}
	var mapping []map[string]any
	if err := json.Unmarshal([]byte(made.Properties["block_device_mapping"]), &mapping); err != nil || len(mapping) != 2 {
		t.Fatalf("block_device_mapping %q: %v", made.Properties["block_device_mapping"], err)
	}
	tx := f.local.State.Txn()
	for i, want := range []struct {
		vol       string
		size      float64
		boot      any
		deleteToo bool
	}{{root, 1, float64(0), false}, {data, 2, nil, true}} {
		m := mapping[i]
		sn := store.Get[volstate.Snapshot](tx, volstate.SnapshotTable, m["snapshot_id"].(string))
		if sn == nil || sn.VolumeID != want.vol || sn.Status != volstate.SnapStatusAvailable || m["source_type"] != "snapshot" ||
			m["destination_type"] != "volume" || m["volume_size"] != want.size || m["boot_index"] != want.boot || m["delete_on_termination"] != want.deleteToo {
			t.Fatalf("mapping %d %v, snapshot %+v", i, m, sn)
		}
	}

	// Booting from the image: a new boot volume from the root snapshot
	// and a data volume from the other, deleted with the server as
	// mapped.
	// (The fake image service's ids are not UUIDs: it is served under one.)
	served := api.NewUUID()
	f.svc.cfg.Images.(fakeImages)[served] = ImageInfo{ID: served, Status: "active", DiskFormat: "qcow2", Properties: made.Properties}
	id2 := f.server(alice, "vm2", "imageRef", served)
	row := f.row(id2)
	boot := f.vol(row.BootVolume)
	if row.ImageID != "" || boot == nil || boot.SnapshotID != mapping[0]["snapshot_id"] || boot.ID == root {
		t.Fatalf("server from the image: %+v, boot volume %+v", row, boot)
	}
	vols := volstate.VolumesOfServer(f.local.State.Txn(), id2)
	if len(vols) != 2 {
		t.Fatalf("volumes of the server from the image: %d", len(vols))
	}
	for _, v := range vols {
		if v.ID != row.BootVolume && (v.SnapshotID != mapping[1]["snapshot_id"] || !v.Attachments[0].DeleteOnTermination) {
			t.Fatalf("data volume %+v", v)
		}
	}

	// The data volume's blocks are gone: its snapshot fails, the root's
	// is deleted again and no image is made.
	before := snaps.n
	if err := blocks.Delete(t.Context(), data); err != nil {
		t.Fatal(err)
	}
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "2.45", map[string]any{"createImage": map[string]any{"name": "again"}}, 500, "")
	if snaps.n != before {
		t.Fatalf("a failed volume-backed createImage made an image")
	}
	n := 0
	for _, sn := range store.All[volstate.Snapshot](f.local.State.Txn(), volstate.SnapshotTable, "id") {
		if sn.VolumeID == root && sn.Status != volstate.SnapStatusDeleting {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d snapshots of the root volume left, want the first image's only", n)
	}
}
