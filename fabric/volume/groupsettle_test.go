package volume

import (
	"context"
	"net/http"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// putGroupAs rewrites a group row as a process that died would have left
// it: status and work markers set without the service's bookkeeping.
func (f *fixture) putGroupAs(id, status, node, run string) {
	f.t.Helper()
	if _, err := changeRow(context.Background(), f.local, func(tx *memdb.Txn) (*volstate.Group, error) { return volstate.LoadGroup(tx, id) },
		func(cur *volstate.Group) (string, any, error) {
			next := cur.Clone()
			next.Status, next.WorkNode, next.WorkRun = status, node, run
			return volstate.CmdPutGroup, volstate.PutGroupCmd{Row: *next, Revision: cur.Revision}, nil
		}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) putGroupSnapshotAs(id, status, node, run string) {
	f.t.Helper()
	if _, err := changeRow(context.Background(), f.local, func(tx *memdb.Txn) (*volstate.GroupSnapshot, error) { return volstate.LoadGroupSnapshot(tx, id) },
		func(cur *volstate.GroupSnapshot) (string, any, error) {
			next := cur.Clone()
			next.Status, next.WorkNode, next.WorkRun = status, node, run
			return volstate.CmdPutGroupSnapshot, volstate.PutGroupSnapshotCmd{Row: *next, Revision: cur.Revision}, nil
		}); err != nil {
		f.t.Fatal(err)
	}
}

// A group or group snapshot a dead process left creating or deleting is
// settled as volumes are: a delete is done again, a create gets the
// status its parts show; the current process's work and a live node's
// are left alone.
func TestAbandonedGroupsAreSettled(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.IsLeader = func() bool { return false } })
	ctx := context.Background()
	f.groupType("gt", nil)
	newGroup := func(name string) string {
		return f.createGroup(alice, map[string]any{"name": name, "group_type": "gt", "volume_types": []any{volstate.DefaultTypeName}})
	}
	addVolume := func(g string) string {
		return f.at(13, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "group_id": g}})["volume"].(map[string]any)["id"].(string)
	}
	made, mine, elsewhere, deleting, fromSrc := newGroup("made"), newGroup("mine"), newGroup("elsewhere"), newGroup("deleting"), newGroup("from-src")
	doomed := addVolume(deleting)
	f.putGroupAs(made, volstate.GroupCreating, "n1", "old-run")
	f.putGroupAs(mine, volstate.GroupCreating, "n1", f.svc.run)
	releaseMine := f.svc.carry(mine) // a request of this process is making it
	f.putGroupAs(elsewhere, volstate.GroupDeleting, "n2", "its-run")
	f.putGroupAs(deleting, volstate.GroupDeleting, "n1", "old-run")
	// A copy of a group whose process died before it made any volume.
	if _, err := f.svc.changeGroup(ctx, fromSrc, func(g *volstate.Group) error { g.SourceGroupID = made; return nil }); err != nil {
		t.Fatal(err)
	}
	addVolume(made)
	f.putGroupAs(fromSrc, volstate.GroupCreating, "n1", "old-run")

	// A group snapshot of two volumes whose process died after it made
	// the first one's blocks; another whose delete died.
	snapGroup := newGroup("snapped")
	vols := []string{addVolume(snapGroup), addVolume(snapGroup)}
	snap := func(name string) string {
		return f.at(14, http.StatusAccepted, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": snapGroup, "name": name}})["group_snapshot"].(map[string]any)["id"].(string)
	}
	half, gone := snap("half"), snap("gone")
	tx, _ := f.local.Read(ctx)
	members := volstate.GroupSnapshotMembers(tx, half)
	var unmade, madeSnap string
	for _, sn := range members {
		if _, err := f.svc.changeSnapshot(ctx, sn.ID, func(s *volstate.Snapshot) error { s.Status = volstate.SnapStatusCreating; return nil }); err != nil {
			t.Fatal(err)
		}
		if sn.VolumeID == vols[1] {
			unmade = sn.ID
			if err := f.blocks.Delete(ctx, sn.ID); err != nil {
				t.Fatal(err)
			}
		} else {
			madeSnap = sn.ID
		}
	}
	f.putGroupSnapshotAs(half, volstate.GroupCreating, "n1", "old-run")
	goneMembers := volstate.GroupSnapshotMembers(tx, gone)
	f.putGroupSnapshotAs(gone, volstate.GroupDeleting, "n1", "old-run")

	f.svc.settle(ctx)

	for id, want := range map[string]string{made: "available", mine: "creating", elsewhere: "deleting", fromSrc: "error"} {
		if got := f.showGroup(alice, id); got["status"] != want {
			t.Errorf("group %s: %v, want %s", id, got["status"], want)
		}
	}
	f.at(14, http.StatusNotFound, "GET", "groups/"+deleting, alice, nil)
	f.expect(http.StatusNotFound, "GET", "volumes/"+doomed, alice, nil)
	if _, ok := f.blocks.sizeOf(doomed); ok {
		t.Fatal("the abandoned group delete left its volume's blocks")
	}
	got := f.at(14, http.StatusOK, "GET", "group_snapshots/"+half, alice, nil)["group_snapshot"].(map[string]any)
	if got["status"] != "error" {
		t.Errorf("half-made group snapshot: %v", got["status"])
	}
	for id, want := range map[string]string{madeSnap: "available", unmade: "error"} {
		if got := f.at(14, http.StatusOK, "GET", "snapshots/"+id, alice, nil)["snapshot"].(map[string]any); got["status"] != want {
			t.Errorf("snapshot %s: %v, want %s", id, got["status"], want)
		}
	}
	f.at(14, http.StatusNotFound, "GET", "group_snapshots/"+gone, alice, nil)
	for _, sn := range goneMembers {
		f.at(14, http.StatusNotFound, "GET", "snapshots/"+sn.ID, alice, nil)
	}
	// Settled rows name no process; a second settle changes nothing.
	tx, _ = f.local.Read(ctx)
	if g, _ := volstate.LoadGroup(tx, made); g.WorkNode != "" || g.WorkRun != "" {
		t.Fatalf("settled group still names %s/%s", g.WorkNode, g.WorkRun)
	}
	f.svc.settle(ctx)
	if got := f.showGroup(alice, mine); got["status"] != "creating" {
		t.Fatalf("the current process's group: %v", got["status"])
	}
	// Once no request of this process carries it (its proposal's outcome
	// was unknown and it gave up), it is settled like a dead one's.
	releaseMine()
	f.svc.settle(ctx)
	if got := f.showGroup(alice, mine); got["status"] == "creating" {
		t.Fatalf("the current process's group, carried by nothing: %v", got["status"])
	}
}

// A group made or deleted by a request names the process only while it
// works: an available group names none.
func TestGroupWorkMarkers(t *testing.T) {
	f := newFixture(t)
	f.groupType("gt", nil)
	g := f.createGroup(alice, map[string]any{"name": "g", "group_type": "gt", "volume_types": []any{volstate.DefaultTypeName}})
	tx, _ := f.local.Read(context.Background())
	row, err := volstate.LoadGroup(tx, g)
	if err != nil || row.Status != volstate.GroupAvailable || row.WorkNode != "" || row.WorkRun != "" {
		t.Fatalf("made group %+v %v", row, err)
	}
}
