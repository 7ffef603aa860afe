package volume

import (
	"net/http"
	"testing"
)

// Consistency groups (the deprecated API, at 3.0): made of volume types
// as a comma-separated string, in the consistency group type the first
// create makes; volumes made in one by consistencygroup_id show it;
// a cgsnapshot snapshots each volume; a group is made from a cgsnapshot
// or another consistency group; delete with force deletes the volumes.
// A generic group of another type is no consistency group.
func TestConsistencyGroups(t *testing.T) {
	f := newFixture(t)
	t1 := f.createType(map[string]any{"name": "t1"})
	t2 := f.createType(map[string]any{"name": "t2"})
	f.at(0, http.StatusOK, "GET", "consistencygroups", alice, nil)
	f.badField(0, "POST", "consistencygroups", map[string]any{"consistencygroup": map[string]any{"name": "cg"}}, "volume_types")
	f.badField(0, "POST", "consistencygroups", map[string]any{"consistencygroup": map[string]any{"volume_types": t1, "colour": "red"}}, "colour")
	f.at(0, http.StatusNotFound, "POST", "consistencygroups", alice, map[string]any{"consistencygroup": map[string]any{"volume_types": "no-such-type"}})

	cg := f.at(0, http.StatusAccepted, "POST", "consistencygroups", alice,
		map[string]any{"consistencygroup": map[string]any{"name": "cg1", "description": "d", "volume_types": t1 + "," + t2}})["consistencygroup"].(map[string]any)
	id := cg["id"].(string)
	if cg["name"] != "cg1" {
		t.Fatalf("create answered %v", cg)
	}
	shown := f.at(0, http.StatusOK, "GET", "consistencygroups/"+id, alice, nil)["consistencygroup"].(map[string]any)
	if shown["status"] != "available" || shown["description"] != "d" || len(shown["volume_types"].([]any)) != 2 || shown["project_id"] != nil {
		t.Fatalf("show: %v", shown)
	}
	f.at(0, http.StatusNotFound, "GET", "consistencygroups/"+id, bob, nil)
	// The type it is made in is a group type with consistent snapshots.
	gts := f.at(11, http.StatusOK, "GET", "group_types", admin, nil)["group_types"].([]any)
	if len(gts) != 1 || gts[0].(map[string]any)["name"] != cgTypeName ||
		gts[0].(map[string]any)["group_specs"].(map[string]any)[consistentSpec] != "<is> True" {
		t.Fatalf("group types: %v", gts)
	}

	// A generic group of another type is not a consistency group.
	gt := f.groupType("gt", nil)
	other := f.createGroup(alice, map[string]any{"group_type": gt, "volume_types": []any{t1}})
	f.at(0, http.StatusNotFound, "GET", "consistencygroups/"+other, alice, nil)
	f.at(0, http.StatusNotFound, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "volume_type": t1, "consistencygroup_id": other}})
	list := f.at(0, http.StatusOK, "GET", "consistencygroups/detail", alice, nil)["consistencygroups"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != id || list[0].(map[string]any)["volume_types"] == nil {
		t.Fatalf("detail list: %v", list)
	}
	if l := f.at(0, http.StatusOK, "GET", "consistencygroups", alice, nil)["consistencygroups"].([]any); len(l) != 1 || len(l[0].(map[string]any)) != 2 {
		t.Fatalf("list: %v", l)
	}

	vol := f.createVolume(alice, map[string]any{"size": 1, "volume_type": t1, "consistencygroup_id": id})
	vid := vol["id"].(string)
	f.waitStatus(alice, "volumes/"+vid, "volume", "available")
	if v := f.showVolume(alice, vid); v["consistencygroup_id"] != id {
		t.Fatalf("volume in the group shows consistencygroup_id %v", v["consistencygroup_id"])
	}
	if v := f.at(13, http.StatusOK, "GET", "volumes/"+vid, alice, nil)["volume"].(map[string]any); v["group_id"] != id {
		t.Fatalf("volume in the group shows group_id %v", v["group_id"])
	}
	f.at(0, http.StatusAccepted, "PUT", "consistencygroups/"+id+"/update", alice, map[string]any{"consistencygroup": map[string]any{"name": "cg1b"}})
	if n := f.at(0, http.StatusOK, "GET", "consistencygroups/"+id, alice, nil)["consistencygroup"].(map[string]any)["name"]; n != "cg1b" {
		t.Fatalf("renamed to %v", n)
	}

	f.badField(0, "POST", "cgsnapshots", map[string]any{"cgsnapshot": map[string]any{"name": "s"}}, "consistencygroup_id")
	f.at(0, http.StatusNotFound, "POST", "cgsnapshots", alice, map[string]any{"cgsnapshot": map[string]any{"consistencygroup_id": other}})
	cs := f.at(0, http.StatusAccepted, "POST", "cgsnapshots", alice, map[string]any{"cgsnapshot": map[string]any{"consistencygroup_id": id, "name": "cs1"}})["cgsnapshot"].(map[string]any)
	csID := cs["id"].(string)
	shownCS := f.at(0, http.StatusOK, "GET", "cgsnapshots/"+csID, alice, nil)["cgsnapshot"].(map[string]any)
	if shownCS["status"] != "available" || shownCS["consistencygroup_id"] != id || shownCS["name"] != "cs1" {
		t.Fatalf("cgsnapshot: %v", shownCS)
	}
	if l := f.at(0, http.StatusOK, "GET", "cgsnapshots/detail", alice, nil)["cgsnapshots"].([]any); len(l) != 1 {
		t.Fatalf("cgsnapshots: %v", l)
	}
	snaps := f.at(0, http.StatusOK, "GET", "snapshots/detail", alice, nil)["snapshots"].([]any)
	if len(snaps) != 1 || snaps[0].(map[string]any)["volume_id"] != vid {
		t.Fatalf("snapshots of the cgsnapshot: %v", snaps)
	}

	for _, src := range []map[string]any{{"cgsnapshot_id": csID}, {"source_cgid": id}} {
		src["name"] = "copy"
		made := f.at(0, http.StatusAccepted, "POST", "consistencygroups/create_from_src", alice, map[string]any{"consistencygroup-from-src": src})["consistencygroup"].(map[string]any)
		g := f.at(0, http.StatusOK, "GET", "consistencygroups/"+made["id"].(string), alice, nil)["consistencygroup"].(map[string]any)
		if g["status"] != "available" || g["name"] != "copy" {
			t.Fatalf("made from %v: %v", src, g)
		}
		f.at(0, http.StatusAccepted, "POST", "consistencygroups/"+made["id"].(string)+"/delete", alice, map[string]any{"consistencygroup": map[string]any{"force": true}})
		f.at(0, http.StatusNotFound, "GET", "consistencygroups/"+made["id"].(string), alice, nil)
	}
	f.at(0, http.StatusNotFound, "POST", "consistencygroups/create_from_src", alice, map[string]any{"consistencygroup-from-src": map[string]any{"source_cgid": other}})

	f.at(0, http.StatusNotFound, "DELETE", "cgsnapshots/"+csID, bob, nil)
	f.at(0, http.StatusAccepted, "DELETE", "cgsnapshots/"+csID, alice, nil)
	f.at(0, http.StatusNotFound, "GET", "cgsnapshots/"+csID, alice, nil)
	// Without force a group with volumes stays.
	f.at(0, http.StatusBadRequest, "POST", "consistencygroups/"+id+"/delete", alice, map[string]any{"consistencygroup": map[string]any{"force": false}})
	f.at(0, http.StatusAccepted, "POST", "consistencygroups/"+id+"/delete", alice, map[string]any{"consistencygroup": map[string]any{"force": true}})
	f.at(0, http.StatusNotFound, "GET", "consistencygroups/"+id, alice, nil)
	f.expect(http.StatusNotFound, "GET", "volumes/"+vid, alice, nil)
}
