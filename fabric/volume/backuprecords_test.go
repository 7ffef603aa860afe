package volume

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
)

// An exported backup record imports (with a new id, into the importer's
// project) as a backup reading the same objects: it restores what the
// original holds, outlives the original's delete, and its own delete
// takes the objects once no other backup reads them.
func TestBackupExportImport(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 2})["id"].(string)
	f.data.setContent(vol, "payload")
	orig := f.createBackup(alice, map[string]any{"volume_id": vol, "name": "b"})
	f.expect(http.StatusForbidden, "GET", "backups/"+orig+"/export_record", alice, nil)
	rec := f.expect(http.StatusOK, "GET", "backups/"+orig+"/export_record", admin, nil).Body["backup-record"].(map[string]any)
	if rec["backup_service"] != backupService {
		t.Fatalf("record %v", rec)
	}
	raw, err := base64.StdEncoding.DecodeString(rec["backup_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil {
		t.Fatal(err)
	}
	const newID = "9b0d2a6e-1c1f-4c57-a7f7-0d6a9e3c2b11"
	fields["id"] = newID
	raw, _ = json.Marshal(fields)
	url := base64.StdEncoding.EncodeToString(raw)
	imp := func(token, service, url string) int {
		return f.call("POST", "backups/import_record", token, map[string]any{"backup-record": map[string]any{"backup_service": service, "backup_url": url}}).Code
	}
	if c := imp(admin, "cinder.backup.drivers.swift.SwiftBackupDriver", url); c != http.StatusBadRequest {
		t.Fatalf("another driver's record: %d", c)
	}
	if c := imp(admin, backupService, "not base64!"); c != http.StatusBadRequest {
		t.Fatalf("garbage: %d", c)
	}
	if c := imp(admin, backupService, rec["backup_url"].(string)); c != http.StatusBadRequest {
		t.Fatalf("the original's own id imported again: %d", c)
	}
	got := f.expect(http.StatusCreated, "POST", "backups/import_record", admin, map[string]any{"backup-record": map[string]any{"backup_service": backupService, "backup_url": url}}).Body["backup"].(map[string]any)
	if got["id"] != newID {
		t.Fatalf("imported %v", got)
	}
	b := f.showBackupAs(admin, newID)
	if b["status"] != "available" || b["size"] != float64(2) || b["name"] != "b" {
		t.Fatalf("imported backup %v", b)
	}
	// The original goes; the import still restores its bytes.
	f.expect(http.StatusAccepted, "DELETE", "backups/"+orig, alice, nil)
	f.waitGone("backups/" + orig)
	restored := f.expect(http.StatusAccepted, "POST", "backups/"+newID+"/restore", admin, map[string]any{"restore": map[string]any{"name": "r"}}).Body["restore"].(map[string]any)["volume_id"].(string)
	f.waitStatus(admin, "volumes/"+restored, "volume", "available")
	if got := f.data.contentOf(restored); got != "payload" {
		t.Fatalf("restored %q", got)
	}
	// The backup leaves restoring in its own step after the volume.
	f.waitStatus(admin, "backups/"+newID, "backup", "available")
	f.expect(http.StatusAccepted, "DELETE", "backups/"+newID, admin, nil)
	f.waitGone("backups/" + newID)
	if got := f.data.contentOf("volumebackups/" + orig); got != "" {
		t.Fatalf("objects left after the last backup reading them went: %q", got)
	}
	// A record whose objects are gone is not imported.
	if c := imp(admin, backupService, url); c != http.StatusBadRequest {
		t.Fatalf("record of deleted objects: %d", c)
	}
}
