package volume

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// unsureRepl applies every command, but answers the command types in
// lose as a follower does when the leader died right after committing
// one: the outcome is unknown.
type unsureRepl struct {
	*store.Local
	mu   sync.Mutex
	lose map[string]bool
}

func (u *unsureRepl) losing(typ string, lose bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.lose[typ] = lose
}

func (u *unsureRepl) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	res, err := u.Local.Propose(ctx, typ, body)
	u.mu.Lock()
	lose := u.lose[typ]
	u.mu.Unlock()
	if err == nil && lose {
		return store.Result{}, fmt.Errorf("forward %s to n2: %w: leader changed", typ, store.ErrOutcomeUnknown)
	}
	return res, err
}

// A request whose proposal committed after it gave up (503, outcome
// unknown) leaves its volume creating or deleting, marked as this live
// process's work, which nothing carries on: the settle finishes it
// instead of leaving it so until the process restarts. Work this
// process has in hand is left alone.
func TestUnknownOutcomeWorkIsSettled(t *testing.T) {
	var u *unsureRepl
	f := newFixture(t, func(c *Config) {
		u = &unsureRepl{Local: c.Repl.(*store.Local), lose: map[string]bool{}}
		c.Repl = u
	})
	ctx := context.Background()

	u.losing(volstate.CmdCreateVolume, true)
	r := f.call("POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "name": "lost-create"}})
	u.losing(volstate.CmdCreateVolume, false)
	if r.Code != http.StatusServiceUnavailable {
		t.Fatalf("create with an unknown outcome: %d %s", r.Code, r.Raw)
	}
	var created string
	for _, v := range store.All[volstate.Volume](f.local.State.Txn(), volstate.VolumeTable, "id") {
		if v.Name == "lost-create" {
			created = v.ID
		}
	}
	if created == "" || f.volumeRow(created).Status != volstate.StatusCreating {
		t.Fatalf("the create's row did not commit creating: %q", created)
	}

	deleted := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	u.losing(volstate.CmdPutVolume, true)
	r = f.call("DELETE", "volumes/"+deleted, alice, nil)
	u.losing(volstate.CmdPutVolume, false)
	if r.Code != http.StatusServiceUnavailable || f.volumeRow(deleted).Status != volstate.StatusDeleting {
		t.Fatalf("delete with an unknown outcome: %d %s, row %+v", r.Code, r.Raw, f.volumeRow(deleted))
	}

	// Work in hand: a volume this process is deleting right now.
	inHand := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	release := f.svc.carry(inHand)
	if _, err := f.svc.changeVolume(ctx, inHand, func(v *volstate.Volume) error {
		v.Status = volstate.StatusDeleting
		f.svc.worked(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	f.svc.settle(ctx)
	if v := f.volumeRow(created); v == nil || v.Status != volstate.StatusError || v.Reason == "" {
		t.Errorf("the create of unknown outcome after the settle: %+v, want error with a reason (no blocks were made)", v)
	}
	row := func(id string) *volstate.Volume {
		return store.Get[volstate.Volume](f.local.State.Txn(), volstate.VolumeTable, id)
	}
	if v := row(deleted); v != nil {
		t.Errorf("the delete of unknown outcome after the settle: %+v, want it deleted", v)
	}
	if _, ok := f.blocks.sizeOf(deleted); ok {
		t.Errorf("the blocks of %s are still there", deleted)
	}
	if v := f.volumeRow(inHand); v == nil || v.Status != volstate.StatusDeleting {
		t.Errorf("work in hand was settled: %+v", v)
	}
	release()
	f.svc.settle(ctx)
	if v := row(inHand); v != nil {
		t.Errorf("work released without finishing it is not settled: %+v", v)
	}
}

// A snapshot's create or delete abandoned (its proposal's outcome
// unknown, or its process dead) is settled as a volume's: a create is
// available if its blocks were made, else error; a delete is done again.
func TestAbandonedSnapshotWorkIsSettled(t *testing.T) {
	var u *unsureRepl
	f := newFixture(t, func(c *Config) {
		u = &unsureRepl{Local: c.Repl.(*store.Local), lose: map[string]bool{}}
		c.Repl = u
	})
	ctx := context.Background()
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	snapRow := func(id string) *volstate.Snapshot {
		return store.Get[volstate.Snapshot](f.local.State.Txn(), volstate.SnapshotTable, id)
	}
	named := func(name string) *volstate.Snapshot {
		for _, sn := range store.All[volstate.Snapshot](f.local.State.Txn(), volstate.SnapshotTable, "id") {
			if sn.Name == name {
				return sn
			}
		}
		t.Fatalf("no snapshot %s", name)
		return nil
	}

	// Its create committed after the request gave up: no blocks.
	u.losing(volstate.CmdCreateSnapshot, true)
	r := f.call("POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol, "name": "lost-create"}})
	u.losing(volstate.CmdCreateSnapshot, false)
	if r.Code != http.StatusServiceUnavailable || named("lost-create").Status != volstate.SnapStatusCreating {
		t.Fatalf("snapshot create with an unknown outcome: %d %s", r.Code, r.Raw)
	}
	lostCreate := named("lost-create").ID
	// Its blocks made, then the status's outcome unknown.
	u.losing(volstate.CmdPutSnapshot, true)
	r = f.call("POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol, "name": "lost-status"}})
	u.losing(volstate.CmdPutSnapshot, false)
	if r.Code != http.StatusServiceUnavailable {
		t.Fatalf("snapshot status with an unknown outcome: %d %s", r.Code, r.Raw)
	}
	lostStatus := named("lost-status").ID
	// Its delete's deleting mark committed after the request gave up.
	gone := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol, "name": "lost-delete"}}).Body["snapshot"].(map[string]any)["id"].(string)
	u.losing(volstate.CmdPutSnapshot, true)
	r = f.call("DELETE", "snapshots/"+gone, alice, nil)
	u.losing(volstate.CmdPutSnapshot, false)
	if r.Code != http.StatusServiceUnavailable || snapRow(gone).Status != volstate.SnapStatusDeleting {
		t.Fatalf("snapshot delete with an unknown outcome: %d %s", r.Code, r.Raw)
	}
	// A create of a process of this node that died, its blocks made.
	dead := volstate.Snapshot{ID: "dead-create", Project: projA, VolumeID: vol, Size: 1, Status: volstate.SnapStatusCreating, WorkNode: "n1", WorkRun: "old-run"}
	if _, err := f.local.Propose(ctx, volstate.CmdCreateSnapshot, volstate.CreateSnapshotCmd{Row: dead}); err != nil {
		t.Fatal(err)
	}
	if err := f.blocks.Snapshot(ctx, dead.ID, vol); err != nil {
		t.Fatal(err)
	}

	f.svc.settle(ctx)
	for id, want := range map[string]string{lostCreate: volstate.SnapStatusError, lostStatus: volstate.SnapStatusAvailable, dead.ID: volstate.SnapStatusAvailable} {
		if sn := snapRow(id); sn == nil || sn.Status != want || sn.WorkRun != "" {
			t.Errorf("snapshot %s after the settle: %+v, want %s", id, sn, want)
		}
	}
	if sn := snapRow(gone); sn != nil {
		t.Errorf("the snapshot delete of unknown outcome after the settle: %+v, want it deleted", sn)
	}
	if _, ok := f.blocks.sizeOf(gone); ok {
		t.Errorf("the blocks of snapshot %s are still there", gone)
	}
}

// The same for backups: a backup create or delete whose proposal's
// outcome was unknown leaves the backup creating or deleting, marked as
// this live process's work that nothing carries on; the settle ends it
// (a create as error, a delete done again) instead of leaving it so until
// the process restarts. A backup this process is writing is left alone.
func TestUnknownOutcomeBackupWorkIsSettled(t *testing.T) {
	var u *unsureRepl
	f := newFixture(t, func(c *Config) {
		u = &unsureRepl{Local: c.Repl.(*store.Local), lose: map[string]bool{}}
		c.Repl = u
	})
	ctx := context.Background()
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	backupRow := func(id string) *volstate.Backup {
		return store.Get[volstate.Backup](f.local.State.Txn(), volstate.BackupTable, id)
	}

	u.losing(volstate.CmdCreateBackup, true)
	r := f.call("POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": vol, "name": "lost"}})
	u.losing(volstate.CmdCreateBackup, false)
	if r.Code != http.StatusServiceUnavailable {
		t.Fatalf("backup create with an unknown outcome: %d %s", r.Code, r.Raw)
	}
	var lost string
	for _, b := range store.All[volstate.Backup](f.local.State.Txn(), volstate.BackupTable, "id") {
		if b.Name == "lost" {
			lost = b.ID
		}
	}
	if lost == "" || backupRow(lost).Status != volstate.BackupCreating {
		t.Fatalf("the create's row did not commit creating: %q", lost)
	}

	deleted := f.createBackup(alice, map[string]any{"volume_id": vol})
	f.waitStatus(alice, "backups/"+deleted, "backup", "available")
	u.losing(volstate.CmdPutBackup, true)
	r = f.call("DELETE", "backups/"+deleted, alice, nil)
	u.losing(volstate.CmdPutBackup, false)
	if r.Code != http.StatusServiceUnavailable || backupRow(deleted).Status != volstate.BackupDeleting {
		t.Fatalf("backup delete with an unknown outcome: %d %s, row %+v", r.Code, r.Raw, backupRow(deleted))
	}

	// Work in hand: a backup this process is writing right now.
	inHand := f.createBackup(alice, map[string]any{"volume_id": vol})
	f.waitStatus(alice, "backups/"+inHand, "backup", "available")
	release := f.svc.carry(inHand)
	if _, err := f.svc.changeBackup(ctx, inHand, func(b *volstate.Backup) error {
		b.Status, b.WorkNode, b.WorkRun = volstate.BackupCreating, f.svc.cfg.Node, f.svc.run
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	f.svc.settle(ctx)
	if b := backupRow(lost); b == nil || b.Status != volstate.BackupError || b.Reason == "" {
		t.Errorf("the backup create of unknown outcome after the settle: %+v, want error with a reason", b)
	}
	if b := backupRow(deleted); b != nil {
		t.Errorf("the backup delete of unknown outcome after the settle: %+v, want it gone", b)
	}
	if b := backupRow(inHand); b.Status != volstate.BackupCreating {
		t.Errorf("a backup in hand was settled: %+v", b)
	}
	release()
	f.svc.settle(ctx)
	if b := backupRow(inHand); b.Status != volstate.BackupError {
		t.Errorf("a backup released without an end: %+v, want error", b)
	}
}
