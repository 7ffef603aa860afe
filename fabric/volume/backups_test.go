package volume

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

func (f *fixture) createBackup(token string, attrs map[string]any) string {
	f.t.Helper()
	id := f.expect(http.StatusAccepted, "POST", "backups", token, map[string]any{"backup": attrs}).Body["backup"].(map[string]any)["id"].(string)
	f.waitStatus(token, "backups/"+id, "backup", "available")
	return id
}

// A backup outlives its volume and restores into a new volume or an
// existing one; an incremental backup adds to the latest one, which
// cannot be deleted before it.
func TestBackupLifecycle(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 2, "name": "src", "metadata": map[string]any{"k": "v"}})["id"].(string)
	f.data.setContent(vol, "first")
	full := f.createBackup(alice, map[string]any{"volume_id": vol, "name": "b1"})
	b := f.showBackupAs(alice, full)
	if b["size"] != float64(2) || b["container"] != "volumebackups" || b["is_incremental"] != false || b["object_count"] != float64(2) || b["volume_id"] != vol {
		t.Fatalf("full backup %v", b)
	}
	f.data.setContent(vol, "second")
	incr := f.createBackup(alice, map[string]any{"volume_id": vol, "incremental": true})
	if b := f.showBackupAs(alice, incr); b["is_incremental"] != true {
		t.Fatalf("incremental %v", b)
	}
	if b := f.showBackupAs(alice, full); b["has_dependent_backups"] != true {
		t.Fatalf("parent %v", b)
	}
	f.expect(http.StatusBadRequest, "DELETE", "backups/"+full, alice, nil)
	if list := f.expect(http.StatusOK, "GET", "backups/detail", alice, nil).Body["backups"].([]any); len(list) != 2 {
		t.Fatalf("list %v", list)
	}
	f.expect(http.StatusNotFound, "GET", "backups/"+full, bob, nil)

	// The volume goes; its backups stay.
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+vol, alice, nil)

	r := f.expect(http.StatusAccepted, "POST", "backups/"+full+"/restore", alice, map[string]any{"restore": map[string]any{}}).Body["restore"].(map[string]any)
	restored := r["volume_id"].(string)
	if r["backup_id"] != full || r["volume_name"] != "restore_backup_"+full {
		t.Fatalf("restore answer %v", r)
	}
	f.waitStatus(alice, "volumes/"+restored, "volume", "available")
	f.waitStatus(alice, "backups/"+full, "backup", "available")
	if got := f.data.contentOf(restored); got != "first" {
		t.Fatalf("restored volume holds %q", got)
	}
	if md := f.showVolume(alice, restored)["metadata"].(map[string]any); md["k"] != "v" {
		t.Fatalf("restored volume's metadata %v", md)
	}
	if n, _ := f.blocks.sizeOf(restored); n != 2*volstate.GiB {
		t.Fatalf("restored volume has %d bytes", n)
	}

	// Into an existing volume: large enough and available.
	small := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusBadRequest, "POST", "backups/"+incr+"/restore", alice, map[string]any{"restore": map[string]any{"volume_id": small}})
	f.expect(http.StatusAccepted, "POST", "backups/"+incr+"/restore", alice, map[string]any{"restore": map[string]any{"volume_id": restored}})
	f.waitStatus(alice, "backups/"+incr, "backup", "available")
	f.waitStatus(alice, "volumes/"+restored, "volume", "available")
	if got := f.data.contentOf(restored); got != "second" {
		t.Fatalf("restored volume holds %q", got)
	}

	f.expect(http.StatusAccepted, "DELETE", "backups/"+incr, alice, nil)
	f.waitGone("backups/" + incr)
	f.expect(http.StatusAccepted, "DELETE", "backups/"+full, alice, nil)
	f.waitGone("backups/" + full)
	if f.data.contentOf("volumebackups/"+full) != "" {
		t.Fatal("the backup's objects were kept")
	}
}

func (f *fixture) showBackupAs(token, id string) map[string]any {
	f.t.Helper()
	return f.expect(http.StatusOK, "GET", "backups/"+id, token, nil).Body["backup"].(map[string]any)
}

func (f *fixture) waitGone(path string) {
	f.t.Helper()
	for i := 0; i < 500; i++ {
		if r := f.call("GET", path, alice, nil); r.Code == http.StatusNotFound {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("%s is still there", path)
}

func TestBackupRefusals(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusBadRequest, "POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": vol, "incremental": true}})
	f.expect(http.StatusBadRequest, "POST", "backups", alice, map[string]any{"backup": map[string]any{}})
	f.expect(http.StatusNotFound, "POST", "backups", bob, map[string]any{"backup": map[string]any{"volume_id": vol}})
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: "n1"}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: vol, Attachment: att}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: att.ID}); err != nil {
		t.Fatal(err)
	}
	f.expect(http.StatusBadRequest, "POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": vol}})
	f.createBackup(alice, map[string]any{"volume_id": vol, "force": true})
	// Quotas: backups and backup_gigabytes.
	f.expect(http.StatusOK, "PUT", "os-quota-sets/"+projA, admin, map[string]any{"quota_set": map[string]any{"backups": 1}})
	r := f.call("POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": vol, "force": true}})
	if r.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the backups quota: %d %s", r.Code, r.Raw)
	}
	f.expect(http.StatusOK, "PUT", "os-quota-sets/"+projA, admin, map[string]any{"quota_set": map[string]any{"backups": 10, "backup_gigabytes": 1}})
	if r := f.call("POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": vol, "force": true}}); r.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the backup_gigabytes quota: %d %s", r.Code, r.Raw)
	}
	q := f.expect(http.StatusOK, "GET", "os-quota-sets/"+projA+"?usage=true", admin, nil).Body["quota_set"].(map[string]any)
	if u, _ := q["backups"].(map[string]any); u == nil || u["in_use"] != float64(1) {
		t.Fatalf("backups usage %v", q["backups"])
	}
}

// A backup whose writer died is settled to error; one whose restore died
// is available again.
func TestAbandonedBackupsAreSettled(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	ctx := context.Background()
	for id, status := range map[string]string{"writing": volstate.BackupCreating, "restoring": volstate.BackupRestoring} {
		b := volstate.Backup{ID: id, Project: projA, VolumeID: vol, Status: status, Container: "volumebackups", WorkNode: "n1", WorkRun: "old"}
		if _, err := f.local.Propose(ctx, volstate.CmdCreateBackup, volstate.CreateBackupCmd{Row: b}); err != nil {
			t.Fatal(err)
		}
	}
	f.svc.settle(ctx)
	if got := f.showBackupAs(alice, "writing"); got["status"] != "error" || got["fail_reason"] == nil {
		t.Fatalf("abandoned write %v", got)
	}
	if got := f.showBackupAs(alice, "restoring"); got["status"] != "available" {
		t.Fatalf("abandoned restore %v", got)
	}
}

// An admin backs up another project's volume, as Cinder's admin context
// may, into the admin's own project; an incremental backup adds to the
// newest backup of the caller's project, never to another project's
// (whose objects are in that project's container).
func TestBackupAcrossProjects(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(bob, map[string]any{"size": 1})["id"].(string)
	f.waitStatus(bob, "volumes/"+vol, "volume", "available")
	byAdmin := f.createBackup(admin, map[string]any{"volume_id": vol})
	f.expect(http.StatusNotFound, "GET", "backups/"+byAdmin, bob, nil)
	// Bob has no backup of his own to add to.
	f.expect(http.StatusBadRequest, "POST", "backups", bob, map[string]any{"backup": map[string]any{"volume_id": vol, "incremental": true}})
	byBob := f.createBackup(bob, map[string]any{"volume_id": vol})
	f.waitStatus(admin, "backups/"+f.createBackup(admin, map[string]any{"volume_id": vol, "incremental": true}), "backup", "available")
	if b := f.expect(http.StatusOK, "GET", "backups/"+byBob, bob, nil).Body["backup"].(map[string]any); b["has_dependent_backups"] != false {
		t.Fatalf("the admin's incremental backup added to bob's: %v", b)
	}
	if b := f.showBackupAs(admin, byAdmin); b["has_dependent_backups"] != true {
		t.Fatalf("the admin's incremental backup did not add to the admin's: %v", b)
	}
	f.createBackup(bob, map[string]any{"volume_id": vol, "incremental": true})
	if b := f.expect(http.StatusOK, "GET", "backups/"+byBob, bob, nil).Body["backup"].(map[string]any); b["has_dependent_backups"] != true {
		t.Fatalf("bob's incremental backup did not add to bob's: %v", b)
	}
	// A member still reads only his own project's volumes.
	f.expect(http.StatusNotFound, "POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": vol}})
}

// An admin's os-force_delete deletes a backup still being written (a
// plain delete refuses it); the writer, finding its backup gone when it
// finishes, deletes the objects it wrote after the delete ran.
func TestBackupForceDeleteWhileWritten(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.waitStatus(alice, "volumes/"+vol, "volume", "available")
	f.data.setContent(vol, "data")
	gate := make(chan struct{})
	f.data.mu.Lock()
	f.data.gate = gate
	f.data.mu.Unlock()
	id := f.expect(http.StatusAccepted, "POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": vol}}).Body["backup"].(map[string]any)["id"].(string)
	if got := f.showBackupAs(alice, id); got["status"] != "creating" {
		t.Fatalf("held backup: %v", got)
	}
	force := map[string]any{"os-force_delete": map[string]any{}}
	f.expect(http.StatusBadRequest, "DELETE", "backups/"+id, alice, nil)
	f.expect(http.StatusForbidden, "POST", "backups/"+id+"/action", alice, force)
	f.expect(http.StatusAccepted, "POST", "backups/"+id+"/action", admin, force)
	f.waitGone("backups/" + id)
	f.data.mu.Lock()
	f.data.gate = nil
	f.data.mu.Unlock()
	close(gate)
	for i := 0; ; i++ {
		f.data.mu.Lock()
		_, left := f.data.content["volumebackups/"+id]
		f.data.mu.Unlock()
		if !left && i > 20 {
			break
		}
		if i > 500 {
			t.Fatal("the objects written after the force delete were left")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// An available backup is force-deleted as a plain delete would.
	b := f.createBackup(alice, map[string]any{"volume_id": vol})
	f.expect(http.StatusAccepted, "POST", "backups/"+b+"/action", admin, force)
	f.waitGone("backups/" + b)
	if f.data.contentOf("volumebackups/"+b) != "" {
		t.Fatal("the force-deleted backup's objects were kept")
	}
}
