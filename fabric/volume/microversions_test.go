package volume

import (
	"context"
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

func mv(minor string) []string { return []string{"OpenStack-API-Version", "volume 3." + minor} }

// 3.44: os-complete turns an attachment made here from reserved to
// in-use; one Nova made completes when its node plugs it, not before.
func TestAttachmentComplete(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	a := f.expectV(http.StatusOK, "POST", "attachments", alice, map[string]any{"attachment": map[string]any{"volume_uuid": vol, "instance_uuid": api.NewUUID()}}, v327...)["attachment"].(map[string]any)
	complete := map[string]any{"os-complete": nil}
	path := "attachments/" + a["id"].(string) + "/action"
	f.expectV(http.StatusNotFound, "POST", path, alice, complete, mv("43")...)
	f.expectV(http.StatusNotFound, "POST", path, bob, complete, mv("44")...)
	f.expectV(http.StatusBadRequest, "POST", path, alice, map[string]any{"os-finish": nil}, mv("44")...)
	f.expectV(http.StatusNoContent, "POST", path, alice, complete, mv("44")...)
	if got := f.showVolume(alice, vol)["status"]; got != "in-use" {
		t.Fatalf("after os-complete: %v", got)
	}
	f.expectV(http.StatusNoContent, "POST", path, alice, complete, mv("44")...)

	other := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: "n1", Device: "/dev/vdc"}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: other, Attachment: att}); err != nil {
		t.Fatal(err)
	}
	f.expectV(http.StatusBadRequest, "POST", "attachments/"+att.ID+"/action", alice, complete, mv("44")...)
	if got := f.showVolume(alice, other)["status"]; got != "attaching" {
		t.Fatalf("Nova's attachment completed by a client: %v", got)
	}
}

// 3.45: with_count=true adds how many rows match the filters, whatever
// the page; before 3.45 it is not there.
func TestListCount(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"a", "b", "c"} {
		f.createVolume(alice, map[string]any{"size": 1, "name": name})
	}
	f.createVolume(alice, map[string]any{"size": 2, "name": "d"})
	body := f.expectV(http.StatusOK, "GET", "volumes?with_count=true&limit=1&size=1", alice, nil, mv("45")...)
	if body["count"] != float64(3) || len(body["volumes"].([]any)) != 1 {
		t.Fatalf("count %v, page %v", body["count"], body["volumes"])
	}
	if body := f.expectV(http.StatusOK, "GET", "volumes/detail?with_count=true", alice, nil, mv("45")...); body["count"] != float64(4) {
		t.Fatalf("detail count %v", body["count"])
	}
	if body := f.expectV(http.StatusOK, "GET", "volumes?with_count=true", alice, nil, mv("44")...); body["count"] != nil {
		t.Fatalf("count at 3.44: %v", body["count"])
	}
	if body := f.expectV(http.StatusOK, "GET", "volumes", alice, nil, mv("45")...); body["count"] != nil {
		t.Fatalf("count without with_count: %v", body["count"])
	}
	if body := f.expectV(http.StatusOK, "GET", "snapshots?with_count=true", alice, nil, mv("45")...); body["count"] != float64(0) {
		t.Fatalf("snapshot count %v", body["count"])
	}
	if body := f.expectV(http.StatusOK, "GET", "backups/detail?with_count=true", alice, nil, mv("45")...); body["count"] != float64(0) {
		t.Fatalf("backup count %v", body["count"])
	}
}

// 3.46: a volume made from Nova's snapshot image of a volume-backed
// server (no data, a block_device_mapping naming a snapshot) is made
// from that snapshot.
func TestVolumeFromNovaSnapshotImage(t *testing.T) {
	f := newFixture(t)
	src := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.data.setContent(src, "disk of the server")
	snap := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": src}}).Body["snapshot"].(map[string]any)["id"].(string)
	f.waitStatus(alice, "snapshots/"+snap, "snapshot", "available")
	const novaImage = "99999999-2222-3333-4444-555555555555"
	f.data.addImage(ImageInfo{ID: novaImage, Name: "server-snap", Status: "active", DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{"bdm_v2": "True", "block_device_mapping": `[{"boot_index": 0, "source_type": "snapshot", "destination_type": "volume", "snapshot_id": "` + snap + `", "volume_size": 1}]`}})
	v := f.expectV(http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"imageRef": novaImage}}, mv("46")...)["volume"].(map[string]any)
	if v["snapshot_id"] != snap || v["size"] != float64(1) {
		t.Fatalf("volume from a Nova image: %v", v)
	}
	if _, ok := f.blocks.sizeOf(v["id"].(string)); !ok {
		t.Fatal("no blocks")
	}
	// Before 3.46 the image is an image: its empty data is copied.
	if v := f.expectV(http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"imageRef": novaImage, "size": 1}}, mv("45")...)["volume"].(map[string]any); v["snapshot_id"] != nil {
		t.Fatalf("at 3.45: %v", v)
	}
}

// 3.47: a volume is made from a backup, which is restored into it; the
// backup's size is the least it may be, and before 3.47 backup_id is
// refused as it was.
func TestVolumeFromBackup(t *testing.T) {
	f := newFixture(t)
	src := f.createVolume(alice, map[string]any{"size": 2})["id"].(string)
	f.data.setContent(src, "backed up")
	backup := f.createBackup(alice, map[string]any{"volume_id": src})
	f.waitStatus(alice, "backups/"+backup, "backup", "available")
	f.expectV(http.StatusBadRequest, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"backup_id": backup}}, mv("46")...)
	f.expectV(http.StatusBadRequest, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"backup_id": backup, "size": 1}}, mv("47")...)
	f.expectV(http.StatusNotFound, "POST", "volumes", bob, map[string]any{"volume": map[string]any{"backup_id": backup}}, mv("47")...)
	f.expectV(http.StatusBadRequest, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"backup_id": backup, "source_volid": src}}, mv("47")...)
	v := f.expectV(http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"backup_id": backup, "name": "fromb"}}, mv("47")...)["volume"].(map[string]any)
	id := v["id"].(string)
	if v["size"] != float64(2) {
		t.Fatalf("volume from backup: %v", v)
	}
	f.waitStatus(alice, "volumes/"+id, "volume", "available")
	f.waitStatus(alice, "backups/"+backup, "backup", "available")
	if got := f.data.contentOf(id); got != "backed up" {
		t.Fatalf("the new volume holds %q", got)
	}
}

// An encrypted backup made into a volume (3.47) gives it the key.
func TestEncryptedVolumeFromBackup(t *testing.T) {
	ring, opt := withSecrets(t)
	f := newFixture(t, opt)
	f.encryptedType("secret")
	src := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "secret"})["id"].(string)
	key := openKey(t, ring, f.volumeRow(src).Key, src)
	backup := f.createBackup(alice, map[string]any{"volume_id": src})
	f.waitStatus(alice, "backups/"+backup, "backup", "available")
	f.createType(map[string]any{"name": "plain"})
	f.expectV(http.StatusBadRequest, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"backup_id": backup, "volume_type": "plain"}}, mv("47")...)
	id := f.expectV(http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"backup_id": backup}}, mv("47")...)["volume"].(map[string]any)["id"].(string)
	f.waitStatus(alice, "volumes/"+id, "volume", "available")
	if openKey(t, ring, f.volumeRow(id).Key, id) != key {
		t.Fatal("a volume from an encrypted backup has another key")
	}
}

// 3.48 shows shared_targets and service_uuid on volumes; 3.49 the back
// end's state on the cinder-volume service.
func TestVolumeServiceFields(t *testing.T) {
	f := newFixture(t)
	id := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	if v := f.expectV(http.StatusOK, "GET", "volumes/"+id, alice, nil, mv("47")...)["volume"].(map[string]any); v["shared_targets"] != nil || v["service_uuid"] != nil {
		t.Fatalf("at 3.47: %v", v)
	}
	v := f.expectV(http.StatusOK, "GET", "volumes/"+id, alice, nil, mv("48")...)["volume"].(map[string]any)
	if v["shared_targets"] != false || v["service_uuid"] != blockServiceUUID {
		t.Fatalf("at 3.48: %v %v", v["shared_targets"], v["service_uuid"])
	}
	for minor, want := range map[string]any{"48": nil, "49": "up"} {
		found := false
		for _, sv := range f.expectV(http.StatusOK, "GET", "os-services", admin, nil, mv(minor)...)["services"].([]any) {
			s := sv.(map[string]any)
			if s["binary"] == "cinder-volume" {
				found = true
				if s["backend_state"] != want {
					t.Errorf("at 3.%s: backend_state %v", minor, s["backend_state"])
				}
			} else if s["backend_state"] != nil {
				t.Errorf("%s has a backend_state", s["binary"])
			}
		}
		if !found {
			t.Fatal("no cinder-volume service")
		}
	}
}

// 3.12: the summary of the project's volumes; 3.36 adds their metadata.
func TestVolumeSummary(t *testing.T) {
	f := newFixture(t)
	f.createVolume(alice, map[string]any{"size": 1, "metadata": map[string]any{"tier": "gold"}})
	f.createVolume(alice, map[string]any{"size": 3, "metadata": map[string]any{"tier": "silver"}})
	f.createVolume(bob, map[string]any{"size": 5})
	f.expectV(http.StatusNotFound, "GET", "volumes/summary", alice, nil, mv("11")...)
	sum := f.expectV(http.StatusOK, "GET", "volumes/summary", alice, nil, mv("12")...)["volume-summary"].(map[string]any)
	if sum["total_count"] != float64(2) || sum["total_size"] != float64(4) || sum["metadata"] != nil {
		t.Fatalf("summary at 3.12: %v", sum)
	}
	sum = f.expectV(http.StatusOK, "GET", "volumes/summary", alice, nil, mv("36")...)["volume-summary"].(map[string]any)
	if tiers := sum["metadata"].(map[string]any)["tier"].([]any); len(tiers) != 2 || tiers[0] != "gold" || tiers[1] != "silver" {
		t.Fatalf("summary metadata at 3.36: %v", sum)
	}
}

// 3.9: a backup's name and description change; 3.43 its metadata too.
func TestUpdateBackup(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	backup := f.createBackup(alice, map[string]any{"volume_id": vol, "name": "old"})
	f.waitStatus(alice, "backups/"+backup, "backup", "available")
	change := map[string]any{"backup": map[string]any{"name": "new", "description": "d"}}
	f.expectV(http.StatusNotFound, "PUT", "backups/"+backup, alice, change, mv("8")...)
	f.expectV(http.StatusNotFound, "PUT", "backups/"+backup, bob, change, mv("9")...)
	f.expectV(http.StatusBadRequest, "PUT", "backups/"+backup, alice, map[string]any{"backup": map[string]any{"metadata": map[string]any{"a": "b"}}}, mv("9")...)
	if got := f.expectV(http.StatusOK, "PUT", "backups/"+backup, alice, change, mv("9")...)["backup"].(map[string]any); got["id"] != backup || got["name"] != "new" {
		t.Fatalf("update answer %v", got)
	}
	f.expectV(http.StatusOK, "PUT", "backups/"+backup, alice, map[string]any{"backup": map[string]any{"metadata": map[string]any{"a": "b"}}}, mv("43")...)
	got := f.expectV(http.StatusOK, "GET", "backups/"+backup, alice, nil, mv("43")...)["backup"].(map[string]any)
	if got["name"] != "new" || got["description"] != "d" || got["metadata"].(map[string]any)["a"] != "b" {
		t.Fatalf("backup after updates %v", got)
	}
}
