package volume

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// at makes a request at microversion 3.minor and checks its status.
func (f *fixture) at(minor int, code int, method, path, token string, body any) map[string]any {
	f.t.Helper()
	r := f.call(method, path, token, body, "OpenStack-API-Version", "volume "+versionText(minor))
	if r.Code != code {
		f.t.Fatalf("%s %s at 3.%d: %d %s, want %d", method, path, minor, r.Code, r.Raw, code)
	}
	return r.Body
}

// groupType makes a group type with specs and answers its id.
func (f *fixture) groupType(name string, specs map[string]any) string {
	f.t.Helper()
	return f.at(11, http.StatusAccepted, "POST", "group_types", admin, map[string]any{"group_type": map[string]any{"name": name, "group_specs": specs}})["group_type"].(map[string]any)["id"].(string)
}

func (f *fixture) createGroup(token string, attrs map[string]any) string {
	f.t.Helper()
	return f.at(13, http.StatusAccepted, "POST", "groups", token, map[string]any{"group": attrs})["group"].(map[string]any)["id"].(string)
}

func (f *fixture) showGroup(token, id string) map[string]any {
	f.t.Helper()
	return f.at(25, http.StatusOK, "GET", "groups/"+id+"?list_volume=True", token, nil)["group"].(map[string]any)
}

func groupVolumes(g map[string]any) []string {
	var out []string
	for _, v := range g["volumes"].([]any) {
		out = append(out, v.(string))
	}
	slices.Sort(out)
	return out
}

// badField checks a 400 names field.
func (f *fixture) badField(minor int, method, path string, body any, field string) {
	f.t.Helper()
	r := f.call(method, path, alice, body, "OpenStack-API-Version", "volume "+versionText(minor))
	if _, msg := fault(f.t, r); r.Code != http.StatusBadRequest || !strings.Contains(msg, field) {
		f.t.Fatalf("%s %s %v: %d %s, want 400 naming %s", method, path, body, r.Code, r.Raw, field)
	}
}

// Groups (3.13): made of a group type and volume types, shown to their
// project (and to an admin asking all_tenants), volumes added and removed
// by update, made in a group by volume create, deleted with their
// volumes; bad input is a 400 naming the field.
func TestGroups(t *testing.T) {
	f := newFixture(t)
	gt := f.groupType("gt", nil)
	t1 := f.createType(map[string]any{"name": "t1"})
	f.at(12, http.StatusNotFound, "GET", "groups", alice, nil)
	f.at(12, http.StatusNotFound, "POST", "groups", alice, map[string]any{"group": map[string]any{"group_type": gt, "volume_types": []any{t1}}})

	f.badField(13, "POST", "groups", map[string]any{"group": map[string]any{"volume_types": []any{t1}}}, "group_type")
	f.badField(13, "POST", "groups", map[string]any{"group": map[string]any{"group_type": gt}}, "volume_types")
	f.badField(13, "POST", "groups", map[string]any{"group": map[string]any{"group_type": gt, "volume_types": []any{}}}, "volume_types")
	f.badField(13, "POST", "groups", map[string]any{"group": map[string]any{"group_type": gt, "volume_types": "t1"}}, "volume_types")
	f.badField(13, "POST", "groups", map[string]any{"group": map[string]any{"group_type": gt, "volume_types": []any{t1}, "colour": "red"}}, "colour")
	f.badField(13, "POST", "groups", map[string]any{"group": map[string]any{"group_type": gt, "volume_types": []any{t1}, "availability_zone": "mars"}}, "availability_zone")
	f.at(13, http.StatusNotFound, "POST", "groups", alice, map[string]any{"group": map[string]any{"group_type": gt, "volume_types": []any{"no-such-type"}}})
	f.at(13, http.StatusNotFound, "POST", "groups", alice, map[string]any{"group": map[string]any{"group_type": "no-such-group-type", "volume_types": []any{t1}}})

	// By names, as the CLI may send them; name and description trimmed.
	g := f.createGroup(alice, map[string]any{"name": " g1 ", "description": "d", "group_type": "gt", "volume_types": []any{"t1"}, "availability_zone": nil})
	got := f.showGroup(alice, g)
	if got["status"] != "available" || got["name"] != "g1" || got["group_type"] != gt || !slices.Equal(got["volume_types"].([]any), []any{t1}) ||
		got["availability_zone"] != "nova" || got["group_snapshot_id"] != nil || len(got["volumes"].([]any)) != 0 || got["project_id"] != nil {
		t.Fatalf("group %v", got)
	}
	if _, ok := f.at(13, http.StatusOK, "GET", "groups/"+g, alice, nil)["group"].(map[string]any)["group_snapshot_id"]; ok {
		t.Fatal("group_snapshot_id shown before 3.14")
	}

	// Tenants: bob does not see alice's group; an admin sees every
	// project's with all_tenants.
	f.at(13, http.StatusNotFound, "GET", "groups/"+g, bob, nil)
	f.at(13, http.StatusNotFound, "PUT", "groups/"+g, bob, map[string]any{"group": map[string]any{"name": "mine"}})
	f.at(13, http.StatusNotFound, "POST", "groups/"+g+"/action", bob, map[string]any{"delete": map[string]any{}})
	bg := f.createGroup(bob, map[string]any{"name": "bobs", "group_type": gt, "volume_types": []any{t1}})
	list := func(token, query string) []string {
		t.Helper()
		var out []string
		for _, x := range f.at(13, http.StatusOK, "GET", "groups/detail"+query, token, nil)["groups"].([]any) {
			out = append(out, x.(map[string]any)["id"].(string))
		}
		slices.Sort(out)
		return out
	}
	if got := list(bob, ""); !slices.Equal(got, []string{bg}) {
		t.Fatalf("bob lists %v", got)
	}
	if got := list(admin, ""); !slices.Equal(got, []string{g}) {
		t.Fatalf("admin lists %v without all_tenants", got)
	}
	want := []string{g, bg}
	slices.Sort(want)
	if got := list(admin, "?all_tenants=1"); !slices.Equal(got, want) {
		t.Fatalf("admin lists %v with all_tenants", got)
	}
	if got := list(admin, "?all_tenants=1&name=bobs"); !slices.Equal(got, []string{bg}) {
		t.Fatalf("name filter %v", got)
	}
	summary := f.at(13, http.StatusOK, "GET", "groups", alice, nil)["groups"].([]any)
	if len(summary) != 1 || len(summary[0].(map[string]any)) != 2 {
		t.Fatalf("summary list %v", summary)
	}

	// Volumes: made in the group (3.13), of one of its types only.
	v1 := f.at(13, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "t1", "group_id": g}})["volume"].(map[string]any)
	if v1["group_id"] != g {
		t.Fatalf("volume made in a group: %v", v1)
	}
	f.at(13, http.StatusBadRequest, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "group_id": g}})
	f.at(13, http.StatusNotFound, "POST", "volumes", bob, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "t1", "group_id": g}})
	f.at(12, http.StatusBadRequest, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "t1", "group_id": g}})
	v2 := f.createVolume(alice, map[string]any{"size": 2, "volume_type": "t1"})["id"].(string)
	plain := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	bobs := f.createVolume(bob, map[string]any{"size": 1, "volume_type": "t1"})["id"].(string)

	// Update adds and removes volumes, all or none.
	f.at(13, http.StatusAccepted, "PUT", "groups/"+g, alice, map[string]any{"group": map[string]any{"add_volumes": v2 + ","}})
	want = []string{v1["id"].(string), v2}
	slices.Sort(want)
	if got := groupVolumes(f.showGroup(alice, g)); !slices.Equal(got, want) {
		t.Fatalf("group volumes %v, want %v", got, want)
	}
	if got := f.at(13, http.StatusOK, "GET", "volumes/"+v2, alice, nil)["volume"].(map[string]any)["group_id"]; got != g {
		t.Fatalf("added volume's group_id %v", got)
	}
	for _, bad := range []string{plain, bobs, api.NewUUID(), v2 + "," + plain} {
		f.at(13, http.StatusBadRequest, "PUT", "groups/"+g, alice, map[string]any{"group": map[string]any{"remove_volumes": v2, "add_volumes": bad}})
	}
	if got := groupVolumes(f.showGroup(alice, g)); !slices.Equal(got, want) {
		t.Fatalf("a refused update changed the group: %v", got)
	}
	f.at(13, http.StatusBadRequest, "PUT", "groups/"+g, alice, map[string]any{"group": map[string]any{"add_volumes": v2}})
	f.badField(13, "PUT", "groups/"+g, map[string]any{"group": map[string]any{"volumes": v2}}, "volumes")
	f.at(13, http.StatusBadRequest, "PUT", "groups/"+g, alice, map[string]any{"group": map[string]any{}})
	// It is not transferred to another project while in the group.
	f.expect(http.StatusBadRequest, "POST", "os-volume-transfer", alice, map[string]any{"transfer": map[string]any{"volume_id": v2}})
	// Its type stays one of the group's.
	f.createType(map[string]any{"name": "t2"})
	f.expect(http.StatusBadRequest, "POST", "volumes/"+v2+"/action", alice, map[string]any{"os-retype": map[string]any{"new_type": "t2"}})
	// A volume in a group is deleted with the group, not alone.
	f.expect(http.StatusBadRequest, "DELETE", "volumes/"+v2, alice, nil)
	f.expect(http.StatusBadRequest, "POST", "volumes/"+v2+"/action", admin, map[string]any{"os-force_delete": map[string]any{}})
	f.at(13, http.StatusAccepted, "PUT", "groups/"+g, alice, map[string]any{"group": map[string]any{"remove_volumes": v2, "name": "g1b"}})
	if got := f.showGroup(alice, g); got["name"] != "g1b" || !slices.Equal(groupVolumes(got), []string{v1["id"].(string)}) {
		t.Fatalf("after removal %v", got)
	}
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+v2, alice, nil)

	// Delete: a group with volumes needs delete-volumes; an attached
	// volume is never deleted with it.
	f.at(13, http.StatusBadRequest, "POST", "groups/"+g+"/action", alice, map[string]any{"delete": map[string]any{"delete-volumes": false}})
	f.badField(13, "POST", "groups/"+g+"/action", map[string]any{"delete": map[string]any{"force": true}}, "force")
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: "n1", Device: "/dev/vdc"}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: v1["id"].(string), Attachment: att}); err != nil {
		t.Fatal(err)
	}
	f.at(13, http.StatusBadRequest, "POST", "groups/"+g+"/action", alice, map[string]any{"delete": map[string]any{"delete-volumes": true}})
	if _, err := f.local.Propose(context.Background(), volstate.CmdDetached, volstate.DetachedCmd{VolumeID: v1["id"].(string), AttachmentID: att.ID}); err != nil {
		t.Fatal(err)
	}
	f.at(13, http.StatusAccepted, "POST", "groups/"+g+"/action", alice, map[string]any{"delete": map[string]any{"delete-volumes": true}})
	f.at(13, http.StatusNotFound, "GET", "groups/"+g, alice, nil)
	f.expect(http.StatusNotFound, "GET", "volumes/"+v1["id"].(string), alice, nil)
	if _, ok := f.blocks.sizeOf(v1["id"].(string)); ok {
		t.Fatal("the group's volume kept its blocks")
	}
	// An empty group is deleted without delete-volumes.
	f.at(13, http.StatusAccepted, "POST", "groups/"+bg+"/action", bob, map[string]any{"delete": map[string]any{}})
	f.at(13, http.StatusNotFound, "GET", "groups/"+bg, bob, nil)
}

// The "groups" quota counts a project's groups.
func TestGroupQuota(t *testing.T) {
	f := newFixture(t)
	f.groupType("gt", nil)
	f.expect(http.StatusOK, "PUT", "os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"groups": 1}})
	f.createGroup(bob, map[string]any{"group_type": "gt", "volume_types": []any{volstate.DefaultTypeName}})
	f.at(13, http.StatusRequestEntityTooLarge, "POST", "groups", bob, map[string]any{"group": map[string]any{"group_type": "gt", "volume_types": []any{volstate.DefaultTypeName}}})
	q := f.expect(http.StatusOK, "GET", "os-quota-sets/"+projB+"?usage=True", admin, nil).Body["quota_set"].(map[string]any)["groups"].(map[string]any)
	if q["in_use"] != float64(1) || q["limit"] != float64(1) {
		t.Fatalf("groups quota %v", q)
	}
}

// reset_status is an admin's, from 3.20 for groups and 3.19 for group
// snapshots; replication actions are not built (501).
func TestGroupResetStatus(t *testing.T) {
	f := newFixture(t)
	f.groupType("gt", nil)
	g := f.createGroup(alice, map[string]any{"group_type": "gt", "volume_types": []any{volstate.DefaultTypeName}})
	reset := func(status string) map[string]any {
		return map[string]any{"reset_status": map[string]any{"status": status}}
	}
	f.at(19, http.StatusNotFound, "POST", "groups/"+g+"/action", admin, reset("error"))
	f.at(20, http.StatusForbidden, "POST", "groups/"+g+"/action", alice, reset("error"))
	f.at(20, http.StatusBadRequest, "POST", "groups/"+g+"/action", admin, reset("melted"))
	f.at(20, http.StatusAccepted, "POST", "groups/"+g+"/action", admin, reset("ERROR"))
	if got := f.showGroup(alice, g)["status"]; got != "error" {
		t.Fatalf("status %v", got)
	}
	// A group in error is not updated, but is deleted.
	f.at(20, http.StatusBadRequest, "PUT", "groups/"+g, alice, map[string]any{"group": map[string]any{"name": "x"}})
	f.at(38, http.StatusNotImplemented, "POST", "groups/"+g+"/action", alice, map[string]any{"enable_replication": map[string]any{}})
	f.at(37, http.StatusNotFound, "POST", "groups/"+g+"/action", alice, map[string]any{"enable_replication": map[string]any{}})
	f.at(20, http.StatusAccepted, "POST", "groups/"+g+"/action", admin, reset("available"))

	f.createVolume(alice, map[string]any{"size": 1})
	vol := f.at(13, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "group_id": g}})["volume"].(map[string]any)["id"].(string)
	gs := f.at(14, http.StatusAccepted, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": g}})["group_snapshot"].(map[string]any)["id"].(string)
	f.at(18, http.StatusNotFound, "POST", "group_snapshots/"+gs+"/action", admin, reset("error"))
	f.at(19, http.StatusForbidden, "POST", "group_snapshots/"+gs+"/action", alice, reset("error"))
	f.at(19, http.StatusBadRequest, "POST", "group_snapshots/"+gs+"/action", admin, reset("in-use"))
	f.at(19, http.StatusAccepted, "POST", "group_snapshots/"+gs+"/action", admin, reset("creating"))
	f.at(14, http.StatusBadRequest, "DELETE", "group_snapshots/"+gs, alice, nil)
	f.at(19, http.StatusAccepted, "POST", "group_snapshots/"+gs+"/action", admin, reset("error"))
	f.at(14, http.StatusAccepted, "DELETE", "group_snapshots/"+gs, alice, nil)
	_ = vol
}

// A group snapshot (3.14) is a snapshot of each of the group's volumes,
// made through the block store's snapshot; groups are made from it and
// from another group (create-from-src), each volume copied from its
// source.
func TestGroupSnapshots(t *testing.T) {
	f := newFixture(t)
	f.groupType("gt", nil)
	t1 := f.createType(map[string]any{"name": "t1"})
	g := f.createGroup(alice, map[string]any{"name": "src", "group_type": "gt", "volume_types": []any{"t1", volstate.DefaultTypeName}})
	var vols []string
	for _, typ := range []string{"t1", volstate.DefaultTypeName} {
		vols = append(vols, f.at(13, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 2, "volume_type": typ, "group_id": g}})["volume"].(map[string]any)["id"].(string))
	}
	f.at(13, http.StatusNotFound, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": g}})
	f.badField(14, "POST", "group_snapshots", map[string]any{"group_snapshot": map[string]any{"name": "x"}}, "group_id")
	f.badField(14, "POST", "group_snapshots", map[string]any{"group_snapshot": map[string]any{"group_id": g, "force": true}}, "force")
	f.at(14, http.StatusNotFound, "POST", "group_snapshots", bob, map[string]any{"group_snapshot": map[string]any{"group_id": g}})

	made := f.at(14, http.StatusAccepted, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": g, "name": "gs"}})["group_snapshot"].(map[string]any)
	gs := made["id"].(string)
	if made["name"] != "gs" || made["group_type_id"] == nil || len(made) != 3 {
		t.Fatalf("created %v", made)
	}
	shown := f.at(14, http.StatusOK, "GET", "group_snapshots/"+gs, alice, nil)["group_snapshot"].(map[string]any)
	if shown["status"] != "available" || shown["group_id"] != g || shown["group_type_id"] != made["group_type_id"] || shown["description"] != nil {
		t.Fatalf("shown %v", shown)
	}
	f.at(14, http.StatusNotFound, "GET", "group_snapshots/"+gs, bob, nil)
	if got := f.at(14, http.StatusOK, "GET", "group_snapshots", bob, nil)["group_snapshots"].([]any); len(got) != 0 {
		t.Fatalf("bob lists %v", got)
	}
	if got := f.at(14, http.StatusOK, "GET", "group_snapshots?all_tenants=1", admin, nil)["group_snapshots"].([]any); len(got) != 1 || len(got[0].(map[string]any)) != 2 {
		t.Fatalf("admin lists %v", got)
	}
	// One snapshot of each volume, through the block store.
	members := map[string]string{} // volume → snapshot
	for _, x := range f.at(14, http.StatusOK, "GET", "snapshots/detail", alice, nil)["snapshots"].([]any) {
		sn := x.(map[string]any)
		if sn["group_snapshot_id"] != gs || sn["status"] != "available" || sn["name"] != "gs" {
			t.Fatalf("member snapshot %v", sn)
		}
		members[sn["volume_id"].(string)] = sn["id"].(string)
	}
	for _, v := range vols {
		sn, ok := members[v]
		f.blocks.mu.Lock()
		of := f.blocks.snapshot[sn]
		f.blocks.mu.Unlock()
		if !ok || of != v {
			t.Fatalf("volume %s: snapshot %q of %q in the block store", v, sn, of)
		}
	}
	f.at(14, http.StatusBadRequest, "DELETE", "snapshots/"+members[vols[0]], alice, nil)
	f.at(14, http.StatusBadRequest, "POST", "groups/"+g+"/action", alice, map[string]any{"delete": map[string]any{"delete-volumes": true}})

	// From the group snapshot: a volume of each snapshot, of its volume's
	// type and size, in the new group.
	f.at(13, http.StatusNotFound, "POST", "groups/action", alice, map[string]any{"create-from-src": map[string]any{"group_snapshot_id": gs}})
	f.badField(14, "POST", "groups/action", map[string]any{"create-from-src": map[string]any{"group_snapshot_id": gs, "source_group_id": g}}, "create-from-src")
	f.badField(14, "POST", "groups/action", map[string]any{"create-from-src": map[string]any{"name": "x"}}, "create-from-src")
	f.at(14, http.StatusNotFound, "POST", "groups/action", bob, map[string]any{"create-from-src": map[string]any{"group_snapshot_id": gs}})
	fromSnap := f.at(14, http.StatusAccepted, "POST", "groups/action", alice, map[string]any{"create-from-src": map[string]any{"group_snapshot_id": gs, "name": "copy"}})["group"].(map[string]any)["id"].(string)
	fromGroup := f.at(14, http.StatusAccepted, "POST", "groups/action", alice, map[string]any{"create-from-src": map[string]any{"source_group_id": g}})["group"].(map[string]any)["id"].(string)
	for _, c := range []struct {
		group, field string
		source       func(vol string) string
	}{
		{fromSnap, "snapshot_id", func(v string) string { return members[v] }},
		{fromGroup, "source_volid", func(v string) string { return v }},
	} {
		got := f.showGroup(alice, c.group)
		if got["status"] != "available" || len(got["volumes"].([]any)) != 2 || !slices.Contains(got["volume_types"].([]any), any(t1)) {
			t.Fatalf("group from source %v", got)
		}
		if c.group == fromSnap && got["group_snapshot_id"] != gs || c.group == fromGroup && got["source_group_id"] != g {
			t.Fatalf("group's source %v", got)
		}
		sources := map[string]bool{}
		for _, id := range got["volumes"].([]any) {
			v := f.at(14, http.StatusOK, "GET", "volumes/"+id.(string), alice, nil)["volume"].(map[string]any)
			src, _ := v[c.field].(string)
			f.blocks.mu.Lock()
			parent := f.blocks.parent[id.(string)]
			f.blocks.mu.Unlock()
			if v["status"] != "available" || v["group_id"] != c.group || v["size"] != float64(2) || parent != src {
				t.Fatalf("volume %v (blocks from %q)", v, parent)
			}
			sources[src] = true
		}
		for _, v := range vols {
			if !sources[c.source(v)] {
				t.Fatalf("group %s has no copy of %s: %v", c.group, c.source(v), sources)
			}
		}
	}

	// The group snapshot goes with its snapshots; then its group may go.
	f.at(14, http.StatusAccepted, "DELETE", "group_snapshots/"+gs, alice, nil)
	f.at(14, http.StatusNotFound, "GET", "group_snapshots/"+gs, alice, nil)
	for _, sn := range members {
		f.expect(http.StatusNotFound, "GET", "snapshots/"+sn, alice, nil)
	}
	for _, grp := range []string{g, fromSnap, fromGroup} {
		f.at(14, http.StatusAccepted, "POST", "groups/"+grp+"/action", alice, map[string]any{"delete": map[string]any{"delete-volumes": true}})
	}
	if got := f.expect(http.StatusOK, "GET", "volumes", alice, nil).Body["volumes"].([]any); len(got) != 0 {
		t.Fatalf("volumes left %v", got)
	}
}

// A block store failure leaves the group snapshot in error with the
// cause; a group type asking for consistent snapshots is refused one of
// an attached volume.
func TestGroupSnapshotFailures(t *testing.T) {
	f := newFixture(t)
	f.groupType("gt", nil)
	f.groupType("consistent", map[string]any{"consistent_group_snapshot_enabled": "<is> True"})
	g := f.createGroup(alice, map[string]any{"group_type": "gt", "volume_types": []any{volstate.DefaultTypeName}})
	f.at(13, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "group_id": g}})
	f.blocks.setFail(errors.New("disk on fire"))
	f.at(14, http.StatusInternalServerError, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": g}})
	f.blocks.setFail(nil)
	list := f.at(14, http.StatusOK, "GET", "group_snapshots/detail", admin, nil)["group_snapshots"].([]any)
	if len(list) != 1 {
		t.Fatalf("group snapshots %v", list)
	}
	gs := list[0].(map[string]any)
	if gs["status"] != "error" || !strings.Contains(gs["rackstack:error_reason"].(string), "disk on fire") {
		t.Fatalf("failed group snapshot %v", gs)
	}
	f.at(14, http.StatusAccepted, "DELETE", "group_snapshots/"+gs["id"].(string), alice, nil)

	cg := f.createGroup(alice, map[string]any{"group_type": "consistent", "volume_types": []any{volstate.DefaultTypeName}})
	vol := f.at(13, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "group_id": cg}})["volume"].(map[string]any)["id"].(string)
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: "n1", Device: "/dev/vdc"}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: vol, Attachment: att}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: att.ID}); err != nil {
		t.Fatal(err)
	}
	r := f.call("POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": cg}}, "OpenStack-API-Version", "volume 3.14")
	if _, msg := fault(t, r); r.Code != http.StatusBadRequest || !strings.Contains(msg, "consistent") {
		t.Fatalf("consistent snapshot of an attached volume: %d %s", r.Code, r.Raw)
	}
	if _, err := f.local.Propose(context.Background(), volstate.CmdDetached, volstate.DetachedCmd{VolumeID: vol, AttachmentID: att.ID}); err != nil {
		t.Fatal(err)
	}
	f.at(14, http.StatusAccepted, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": cg}})
}
