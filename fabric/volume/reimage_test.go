package volume

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// 3.68: os-reimage writes an image over a volume: new blocks of the same
// size, the image's disk in them, the volume back to its status,
// bootable, with the image's metadata. The image must fit; the volume
// must be available or error (reserved with reimage_reserved); another
// project's volume is not found; before 3.68 the action is not found.
func TestReimage368(t *testing.T) {
	f := newFixture(t)
	f.testImage() // needs a 2 GiB volume
	vol := f.createVolume(alice, map[string]any{"size": 2, "name": "plain"})["id"].(string)
	f.data.setContent(vol, "old data")
	reimage := func(body map[string]any) map[string]any { return map[string]any{"os-reimage": body} }
	path := "volumes/" + vol + "/action"
	f.at(67, http.StatusNotFound, "POST", path, alice, reimage(map[string]any{"image_id": imageID}))
	f.badFieldAs(alice, 68, "POST", path, reimage(map[string]any{}), "image_id")
	f.badFieldAs(alice, 68, "POST", path, reimage(map[string]any{"image_id": "not-a-uuid"}), "image_id")
	f.badFieldAs(alice, 68, "POST", path, reimage(map[string]any{"image_id": imageID, "reimage_reserved": "maybe"}), "reimage_reserved")
	f.at(68, http.StatusNotFound, "POST", path, alice, reimage(map[string]any{"image_id": "99999999-2222-3333-4444-555555555555"}))
	f.at(68, http.StatusNotFound, "POST", path, bob, reimage(map[string]any{"image_id": imageID}))
	small := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.at(68, http.StatusBadRequest, "POST", "volumes/"+small+"/action", alice, reimage(map[string]any{"image_id": imageID}))

	f.at(68, http.StatusAccepted, "POST", path, alice, reimage(map[string]any{"image_id": imageID}))
	got := f.waitStatus(alice, "volumes/"+vol, "volume", "available")
	md, _ := got["volume_image_metadata"].(map[string]any)
	if got["bootable"] != "true" || got["size"] != float64(2) || md["image_id"] != imageID {
		t.Fatalf("reimaged %v", got)
	}
	if c := f.data.contentOf(vol); c != "image:"+imageID {
		t.Fatalf("content %q", c)
	}

	// In use: refused. Reserved: only with reimage_reserved, and it
	// stays reserved.
	f.attached(small)
	f.at(68, http.StatusBadRequest, "POST", "volumes/"+small+"/action", alice, reimage(map[string]any{"image_id": imageID}))
	res := f.createVolume(alice, map[string]any{"size": 2})["id"].(string)
	if _, err := f.svc.changeVolume(context.Background(), res, func(v *volstate.Volume) error { v.Status = volstate.StatusReserved; return nil }); err != nil {
		t.Fatal(err)
	}
	f.at(68, http.StatusBadRequest, "POST", "volumes/"+res+"/action", alice, reimage(map[string]any{"image_id": imageID}))
	f.at(68, http.StatusAccepted, "POST", "volumes/"+res+"/action", alice, reimage(map[string]any{"image_id": imageID, "reimage_reserved": true}))
	f.waitStatus(alice, "volumes/"+res, "volume", "reserved")
	if c := f.data.contentOf(res); c != "image:"+imageID {
		t.Fatalf("reserved volume content %q", c)
	}
}

// An encrypted volume is reimaged too, keeping its key: Data writes the
// image under a LUKS header sealed by the volume's key, as it does for a
// volume made from an image.
func TestReimageEncryptedVolume(t *testing.T) {
	_, opt := withSecrets(t)
	f := newFixture(t, opt)
	f.testImage()
	typ := f.encryptedType("secret")
	vol := f.createVolume(alice, map[string]any{"size": 2, "volume_type": typ})["id"].(string)
	key := f.volumeRow(vol).Key
	if key == "" {
		t.Fatal("encrypted volume without a key")
	}
	f.at(68, http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice, map[string]any{"os-reimage": map[string]any{"image_id": imageID}})
	got := f.waitStatus(alice, "volumes/"+vol, "volume", "available")
	if got["encrypted"] != true || got["bootable"] != "true" {
		t.Fatalf("reimaged encrypted volume %v", got)
	}
	if c := f.data.contentOf(vol); c != "image:"+imageID {
		t.Fatalf("content %q", c)
	}
	if f.volumeRow(vol).Key != key {
		t.Fatal("reimage changed the volume's key")
	}
}

// A reimage whose process died is settled to error with the reason.
func TestAbandonedReimageIsSettled(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	if _, err := f.svc.changeVolume(context.Background(), vol, func(v *volstate.Volume) error {
		v.Status, v.PreviousStatus, v.WorkNode, v.WorkRun = volstate.StatusDownloading, volstate.StatusAvailable, "n1", "old-run"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.svc.settle(context.Background())
	if got := f.showVolume(admin, vol); got["status"] != "error" || got["rackstack:error_reason"] == nil {
		t.Fatalf("settled to %v", got)
	}
}

// 3.71: os-extend_volume_completion is an admin's; no volume here waits
// for it (an extend completes when the blocks have grown), so it is a
// 400 saying so, never taken silently; a bad body names the field.
func TestExtendVolumeCompletion371(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.attached(vol)
	f.at(71, http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice, map[string]any{"os-extend": map[string]any{"new_size": 2}})
	path := "volumes/" + vol + "/action"
	done := map[string]any{"os-extend_volume_completion": map[string]any{"error": false}}
	f.at(71, http.StatusForbidden, "POST", path, alice, done)
	f.badFieldAs(admin, 71, "POST", path, map[string]any{"os-extend_volume_completion": map[string]any{"error": "no", "extra": 1}}, "extra")
	r := f.call("POST", path, admin, done, mv("71")...)
	if _, msg := fault(t, r); r.Code != http.StatusBadRequest || !strings.Contains(msg, "not waiting") {
		t.Fatalf("completion: %d %s", r.Code, r.Raw)
	}
	if got := f.showVolume(alice, vol); got["status"] != "in-use" || got["size"] != float64(2) {
		t.Fatalf("volume after %v", got)
	}
}
