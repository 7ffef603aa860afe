package compute

import (
	"context"
	"slices"
	"testing"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// 2.93: a volume-backed server is rebuilt: REBUILD with the image to
// write over its boot volume; the node's two steps reserve the volume,
// have the volume service reimage it and put it in use again, each only
// for the rebuild waiting; the node's report ends it. Before 2.93, and
// with an image bigger than the volume, refused.
func TestRebuildVolumeBacked(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	vol := f.volume(projA)
	out := f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "bfv",
		"flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}},
		"block_device_mapping_v2": bfv("volume", vol, 0, false)}}, 202, "")
	id := out["server"].(map[string]any)["id"].(string)
	f.agentReports(volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: f.vol(vol).Attachments[0].ID, Now: f.now})
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	bv := &fakeBootVolumes{f: f, made: map[string]string{}}
	f.svc.cfg.Volumes = bv
	path := "/v2.1/servers/" + id + "/action"
	rebuild := func(version, image string, status int, inMsg ...string) map[string]any {
		t.Helper()
		fault := ""
		if status == 400 {
			fault = "badRequest"
		}
		return f.expect("POST", path, alice, version, map[string]any{"rebuild": map[string]any{"imageRef": image}}, status, fault, inMsg...)
	}
	rebuild("2.92", img1, 400, "boots from volume")
	wide := "66666666-6666-4666-8666-666666666666"
	f.svc.cfg.Images.(fakeImages)[wide] = ImageInfo{ID: wide, Status: "active", MinDisk: 10}
	rebuild("2.93", wide, 400, "Volume is smaller than the minimum size specified in image metadata. Volume size is 1073741824 bytes, minimum size is 10737418240 bytes.")
	if err := f.svc.ReserveBootVolume(context.Background(), id, 1); err == nil {
		t.Fatal("a boot volume reserved with no rebuild waiting")
	}
	got := rebuild("2.93", img1, 202)["server"].(map[string]any)
	sv := f.row(id)
	if got["status"] != "REBUILD" || got["image"] != "" || sv.ReimageImage != img1 || sv.ReimageSeq != 1 || sv.ImageID != "" || sv.RebuildSeq != 1 {
		t.Fatalf("rebuilding: %v / %+v", got["status"], sv)
	}
	ctx := context.Background()
	if err := f.svc.ReserveBootVolume(ctx, id, 2); err == nil {
		t.Fatal("a boot volume reserved for another rebuild")
	}
	if err := f.svc.ReserveBootVolume(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if v := f.vol(vol); v.Status != volstate.StatusReserved || len(v.Attachments) != 1 || !v.Attachments[0].Root {
		t.Fatalf("boot volume after the reserve: %s %+v", v.Status, v.Attachments)
	}
	// Again, as a restarted node does it: still reserved.
	if err := f.svc.ReserveBootVolume(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.ReimageBootVolume(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bv.reimaged, []string{projA + ":" + vol + ":" + img1}) {
		t.Fatalf("reimages asked for: %v", bv.reimaged)
	}
	if v := f.vol(vol); v.Status != volstate.StatusInUse {
		t.Fatalf("boot volume after the reimage: %s", v.Status)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1})
	if sv := f.row(id); sv.Status != "ACTIVE" {
		t.Fatalf("after the node's rebuild: %s", sv.Status)
	}
	if err := f.svc.ReimageBootVolume(ctx, id, 1); err == nil {
		t.Fatal("a reimage done after the rebuild ended")
	}
}
