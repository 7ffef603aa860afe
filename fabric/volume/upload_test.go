package volume

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

var v31 = []string{"OpenStack-API-Version", "volume 3.1"}

func uploadAction(attrs map[string]any) map[string]any {
	return map[string]any{"os-volume_upload_image": attrs}
}

// Uploading a volume makes an image in the caller's project holding the
// volume's bytes as asked (read from a snapshot of it, which goes away
// after); the volume is uploading meanwhile, then available again.
func TestUploadVolumeToImage(t *testing.T) {
	f := newFixture(t)
	f.testImage()
	vol := f.createVolume(alice, map[string]any{"imageRef": imageID, "size": 2})["id"].(string)
	f.waitStatus(alice, "volumes/"+vol, "volume", "available")
	f.data.setContent(vol, "guest bytes")
	gate := make(chan struct{})
	f.data.gate = gate
	up := f.expectV(http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice,
		uploadAction(map[string]any{"image_name": "img1", "disk_format": "qcow2", "visibility": "shared", "protected": true}), v31...)["os-volume_upload_image"].(map[string]any)
	imgID, _ := up["image_id"].(string)
	typ, _ := up["volume_type"].(map[string]any)
	if up["id"] != vol || up["status"] != "uploading" || up["image_name"] != "img1" || up["disk_format"] != "qcow2" ||
		up["container_format"] != "bare" || up["size"] != float64(2) || up["visibility"] != "shared" || up["protected"] != true ||
		typ["name"] != volstate.DefaultTypeName || imgID == "" {
		t.Fatalf("answer %v", up)
	}
	if got := f.showVolume(alice, vol)["status"]; got != "uploading" {
		t.Fatalf("volume during the upload: %v", got)
	}
	// Not deleted, attached or uploaded again meanwhile.
	f.expect(http.StatusBadRequest, "DELETE", "volumes/"+vol, alice, nil)
	f.expect(http.StatusBadRequest, "POST", "volumes/"+vol+"/action", alice, uploadAction(map[string]any{"image_name": "img2"}))
	close(gate)
	f.waitStatus(alice, "volumes/"+vol, "volume", "available")
	img, ok := f.data.madeImage(imgID)
	if !ok || img.status != "active" || img.project != projA || img.Name != "img1" || img.Visibility != "shared" || !img.Protected {
		t.Fatalf("image %+v (%v)", img, ok)
	}
	if got := f.data.contentOf(imgID); got != "qcow2:guest bytes" {
		t.Fatalf("image holds %q", got)
	}
	// The source image's own properties come along; what described it
	// does not.
	if img.Properties["hw_disk_bus"] != "virtio" || img.Properties["image_id"] != "" || img.Properties["checksum"] != "" {
		t.Fatalf("properties %v", img.Properties)
	}
	if _, ok := f.blocks.sizeOf(uploadSnapshot(vol)); ok {
		t.Fatal("the upload's snapshot is left")
	}
}

// Before 3.1 visibility and protected are not read: the image is private.
func TestUploadVolumeBefore31IsPrivate(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	up := f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice,
		uploadAction(map[string]any{"image_name": "img", "visibility": "public"})).Body["os-volume_upload_image"].(map[string]any)
	if _, ok := up["visibility"]; ok {
		t.Fatalf("3.0 answer %v", up)
	}
	f.waitStatus(alice, "volumes/"+vol, "volume", "available")
	if img, _ := f.data.madeImage(up["image_id"].(string)); img.Visibility != "private" || img.DiskFormat != "raw" {
		t.Fatalf("image %+v", img)
	}
}

// An attached volume is uploaded only with force, and is in-use again
// after.
func TestUploadAttachedVolumeNeedsForce(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	if _, err := f.svc.changeVolume(context.Background(), vol, func(v *volstate.Volume) error {
		v.Status, v.Attachments = volstate.StatusInUse, []volstate.Attachment{{ID: "a1", ServerID: "s1"}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := f.expect(http.StatusBadRequest, "POST", "volumes/"+vol+"/action", alice, uploadAction(map[string]any{"image_name": "img"}))
	if _, msg := fault(t, r); msg == "" {
		t.Fatalf("refusal %s", r.Raw)
	}
	f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice, uploadAction(map[string]any{"image_name": "img", "force": "True"}))
	f.waitStatus(alice, "volumes/"+vol, "volume", "in-use")
	if len(f.data.made) != 1 {
		t.Fatalf("images %v", f.data.made)
	}
}

// A copy that fails deletes the image it made; the volume, only read,
// is available again.
func TestUploadVolumeCopyFails(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.data.fail = errors.New("disk on fire")
	up := f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice, uploadAction(map[string]any{"image_name": "img"})).Body["os-volume_upload_image"].(map[string]any)
	f.waitStatus(alice, "volumes/"+vol, "volume", "available")
	if _, ok := f.data.madeImage(up["image_id"].(string)); ok {
		t.Fatal("the image of a failed upload is left")
	}
}

func TestUploadVolumeRefusals(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	broken := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusAccepted, "POST", "volumes/"+broken+"/action", admin, map[string]any{"os-reset_status": map[string]any{"status": "error"}})
	tests := map[string]struct {
		vol, token string
		attrs      map[string]any
		code       int
	}{
		"no name":           {vol, alice, map[string]any{"disk_format": "raw"}, http.StatusBadRequest},
		"vmdk":              {vol, alice, map[string]any{"image_name": "i", "disk_format": "vmdk"}, http.StatusBadRequest},
		"ovf":               {vol, alice, map[string]any{"image_name": "i", "container_format": "ovf"}, http.StatusBadRequest},
		"name not a string": {vol, alice, map[string]any{"image_name": 7}, http.StatusBadRequest},
		"in error":          {broken, alice, map[string]any{"image_name": "i"}, http.StatusBadRequest},
		"another project":   {vol, bob, map[string]any{"image_name": "i"}, http.StatusNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if r := f.call("POST", "volumes/"+tc.vol+"/action", tc.token, uploadAction(tc.attrs)); r.Code != tc.code {
				t.Fatalf("%d %s, want %d", r.Code, r.Raw, tc.code)
			}
		})
	}
	if len(f.data.made) != 0 {
		t.Fatalf("refused uploads made images: %v", f.data.made)
	}
}

// An upload whose process died is settled: the volume gets its status
// back and the snapshot it read goes.
func TestAbandonedUploadIsSettled(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	if err := f.blocks.Snapshot(context.Background(), uploadSnapshot(vol), vol); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.changeVolume(context.Background(), vol, func(v *volstate.Volume) error {
		v.Status, v.WorkNode, v.WorkRun = volstate.StatusUploading, "n1", "an-earlier-run"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.svc.settle(context.Background())
	if got := f.showVolume(alice, vol)["status"]; got != "available" {
		t.Fatalf("settled to %v", got)
	}
	if _, ok := f.blocks.sizeOf(uploadSnapshot(vol)); ok {
		t.Fatal("the abandoned upload's snapshot is left")
	}
}

// The image an upload was making when its process died does not stay
// queued for ever: settling the upload deletes it — unless it was
// finished, when it is kept.
func TestAbandonedUploadsImageIsDeletedUnlessFinished(t *testing.T) {
	for name, finished := range map[string]bool{"unfinished": false, "finished": true} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
			img, err := f.data.CreateImage(context.Background(), &api.Principal{ProjectID: projA}, NewImage{Name: "half"})
			if err != nil {
				t.Fatal(err)
			}
			if finished {
				f.data.mu.Lock()
				f.data.made[img].status = "active"
				f.data.mu.Unlock()
			}
			if _, err := f.svc.changeVolume(context.Background(), vol, func(v *volstate.Volume) error {
				v.Status, v.WorkNode, v.WorkRun, v.UploadImage = volstate.StatusUploading, "n1", "an-earlier-run", img
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			f.svc.settle(context.Background())
			if got := f.showVolume(alice, vol)["status"]; got != "available" {
				t.Fatalf("settled to %v", got)
			}
			if _, kept := f.data.madeImage(img); kept != finished {
				t.Fatalf("image kept %v, want %v", kept, finished)
			}
		})
	}
}
