package instances

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
)

// A createBackup's snapshot, once its image is made, keeps the
// rotation newest backups of the server's type and deletes the older
// ones, oldest first; other types, servers, projects, snapshots and a
// protected backup are left. Rotation 0 deletes them all, the new one
// too, as Nova's _rotate_backups.
func TestAgentBackupRotation(t *testing.T) {
	needTools(t)
	w, a, snaps, _, _ := snapshotAgent(t)
	ctx := context.Background()

	now := time.Now().UTC()
	img := func(id, owner, kind, typ, server string, age time.Duration, protected bool) {
		w.Put(imagestate.Table, &imagestate.Image{ID: id, Owner: owner, Visibility: "private", Status: imagestate.StatusActive,
			Protected: protected, CreatedAt: now.Add(-age),
			Properties: map[string]string{"image_type": kind, "backup_type": typ, "instance_uuid": server}})
	}
	img("d1", "p1", "backup", "daily", "s1", 4*time.Hour, false)
	img("d2", "p1", "backup", "daily", "s1", 3*time.Hour, true)
	img("d3", "p1", "backup", "daily", "s1", 2*time.Hour, false)
	img("d4", "p1", "backup", "daily", "s1", time.Hour, false)
	img("w1", "p1", "backup", "weekly", "s1", 5*time.Hour, false)
	img("o1", "p1", "backup", "daily", "s2", 6*time.Hour, false)
	img("x1", "p2", "backup", "daily", "s1", 6*time.Hour, false)
	img("snap", "p1", "snapshot", "daily", "s1", 7*time.Hour, false)
	backup := func(image string, rotation int) {
		t.Helper()
		w.Put(imagestate.Table, &imagestate.Image{ID: image, Owner: "p1", Visibility: "private", Status: imagestate.StatusQueued, CreatedAt: time.Now().UTC(),
			Properties: map[string]string{"image_type": "backup", "backup_type": "daily", "instance_uuid": "s1"}})
		s := w.server("s1")
		s.SnapshotImage, s.SnapshotBackup, s.TaskState = image, &computestate.Backup{Type: "daily", Rotation: rotation}, computestate.TaskImageBackup
		w.Put("compute_servers", &s)
		a.reconcile(ctx)
		if got := snaps.stepsOf(image); !slices.Equal(got, []string{"image_pending_upload", "image_uploading", "Success"}) {
			t.Fatalf("backup %s steps: %v", image, got)
		}
	}
	exists := func() []string {
		var ids []string
		for _, id := range []string{"d1", "d2", "d3", "d4", "w1", "o1", "x1", "snap", "new", "zero"} {
			if _, err := imagestate.Load(w.DB.Txn(false), id); err == nil {
				ids = append(ids, id)
			}
		}
		return ids
	}

	backup("new", 2)
	if !slices.Equal(snaps.deleted, []string{"d1", "d3"}) {
		t.Fatalf("rotation 2 deleted %v", snaps.deleted)
	}
	if got := exists(); !slices.Equal(got, []string{"d2", "d4", "w1", "o1", "x1", "snap", "new"}) {
		t.Fatalf("after rotation 2: %v", got)
	}

	snaps.deleted = nil
	backup("zero", 0)
	if !slices.Equal(snaps.deleted, []string{"d4", "new", "zero"}) {
		t.Fatalf("rotation 0 deleted %v", snaps.deleted)
	}
	if got := exists(); !slices.Equal(got, []string{"d2", "w1", "o1", "x1", "snap"}) {
		t.Fatalf("after rotation 0: %v", got)
	}

	// A plain createImage rotates nothing.
	snaps.deleted = nil
	w.Put(imagestate.Table, &imagestate.Image{ID: "plain", Owner: "p1", Visibility: "private", Status: imagestate.StatusQueued})
	s := w.server("s1")
	s.SnapshotImage, s.TaskState = "plain", computestate.TaskImageSnapshot
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if len(snaps.deleted) != 0 || len(snaps.stepsOf("plain")) != 3 {
		t.Fatalf("createImage deleted %v, steps %v", snaps.deleted, snaps.stepsOf("plain"))
	}
}
