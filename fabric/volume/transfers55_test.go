package volume

import (
	"net/http"
	"testing"
)

// 3.55: a transfer may leave the volume's snapshots with the giver
// (no_snapshots), shown from 3.55; before, the key is unknown. 3.57
// shows the transfer's history (source project, not accepted yet).
func TestTransferNoSnapshots355(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	snap := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}}).Body["snapshot"].(map[string]any)["id"].(string)
	body := map[string]any{"transfer": map[string]any{"volume_id": vol, "no_snapshots": true}}
	f.badFieldAs(alice, 54, "POST", "volume-transfers", body, "no_snapshots")
	f.badFieldAs(alice, 55, "POST", "volume-transfers", map[string]any{"transfer": map[string]any{"volume_id": vol, "no_snapshots": "often"}}, "no_snapshots")
	f.at(55, http.StatusNotFound, "POST", "volume-transfers", bob, body)
	tr := f.at(55, http.StatusAccepted, "POST", "volume-transfers", alice, body)["transfer"].(map[string]any)
	if tr["no_snapshots"] != true || tr["source_project_id"] != nil {
		t.Fatalf("made at 3.55: %v", tr)
	}
	id := tr["id"].(string)
	shown := f.at(57, http.StatusOK, "GET", "volume-transfers/"+id, alice, nil)["transfer"].(map[string]any)
	if shown["no_snapshots"] != true || shown["source_project_id"] != projA || shown["accepted"] != false || shown["destination_project_id"] != nil {
		t.Fatalf("shown at 3.57: %v", shown)
	}
	if shown := f.at(54, http.StatusOK, "GET", "volume-transfers/"+id, alice, nil)["transfer"].(map[string]any); shown["no_snapshots"] != nil {
		t.Fatalf("shown at 3.54: %v", shown)
	}
	f.at(55, http.StatusAccepted, "POST", "volume-transfers/"+id+"/accept", bob, map[string]any{"accept": map[string]any{"auth_key": tr["auth_key"]}})
	if got := f.showVolume(bob, vol); got["status"] != "available" {
		t.Fatalf("accepted volume %v", got)
	}
	// The snapshot stayed with alice.
	f.expect(http.StatusOK, "GET", "snapshots/"+snap, alice, nil)
	f.expect(http.StatusNotFound, "GET", "snapshots/"+snap, bob, nil)
}

// 3.59: transfer lists are sorted and paged; before, the parameters are
// ignored, as Cinder ignores them.
func TestTransferPaging359(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"b", "a", "c"} {
		vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
		f.at(55, http.StatusAccepted, "POST", "volume-transfers", alice, map[string]any{"transfer": map[string]any{"volume_id": vol, "name": name}})
	}
	names := func(minor int, query string) []string {
		var out []string
		for _, x := range f.at(minor, http.StatusOK, "GET", "volume-transfers/detail"+query, alice, nil)["transfers"].([]any) {
			out = append(out, x.(map[string]any)["name"].(string))
		}
		return out
	}
	if got := names(59, "?sort=name:asc&limit=2"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("at 3.59: %v", got)
	}
	if got := names(58, "?sort=name:asc&limit=2"); len(got) != 3 {
		t.Fatalf("at 3.58 the paging is ignored: %v", got)
	}
}

// 3.70: an encrypted volume is transferred, with its snapshots only;
// before, it is refused, as Cinder refuses it.
func TestEncryptedTransfer370(t *testing.T) {
	_, opt := withSecrets(t)
	f := newFixture(t, opt)
	f.encryptedType("secret")
	vol := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "secret"})["id"].(string)
	f.at(69, http.StatusBadRequest, "POST", "volume-transfers", alice, map[string]any{"transfer": map[string]any{"volume_id": vol}})
	f.at(70, http.StatusBadRequest, "POST", "volume-transfers", alice, map[string]any{"transfer": map[string]any{"volume_id": vol, "no_snapshots": true}})
	if got := f.showVolume(alice, vol); got["status"] != "available" {
		t.Fatalf("after the refusals: %v", got)
	}
	tr := f.at(70, http.StatusAccepted, "POST", "volume-transfers", alice, map[string]any{"transfer": map[string]any{"volume_id": vol}})["transfer"].(map[string]any)
	f.at(70, http.StatusAccepted, "POST", "volume-transfers/"+tr["id"].(string)+"/accept", bob, map[string]any{"accept": map[string]any{"auth_key": tr["auth_key"]}})
	if got := f.showVolume(bob, vol); got["status"] != "available" || got["encrypted"] != true {
		t.Fatalf("accepted encrypted volume %v", got)
	}
}

// 3.58: a group's and a group snapshot's detail show project_id to
// admins; never to members, never before.
func TestGroupProjectID358(t *testing.T) {
	f := newFixture(t)
	f.groupType("gt", nil)
	g := f.createGroup(alice, map[string]any{"name": "g", "group_type": "gt", "volume_types": []any{"__DEFAULT__"}})
	f.at(13, http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "group_id": g}})
	if got := f.at(58, http.StatusOK, "GET", "groups/"+g, admin, nil)["group"].(map[string]any); got["project_id"] != projA {
		t.Fatalf("admin at 3.58: %v", got)
	}
	if got := f.at(57, http.StatusOK, "GET", "groups/"+g, admin, nil)["group"].(map[string]any); got["project_id"] != nil {
		t.Fatalf("admin at 3.57: %v", got)
	}
	if got := f.at(58, http.StatusOK, "GET", "groups/"+g, alice, nil)["group"].(map[string]any); got["project_id"] != nil {
		t.Fatalf("member at 3.58: %v", got)
	}
	l := f.at(58, http.StatusOK, "GET", "groups/detail?all_tenants=1", admin, nil)["groups"].([]any)
	if len(l) != 1 || l[0].(map[string]any)["project_id"] != projA {
		t.Fatalf("admin detail list at 3.58: %v", l)
	}
	gs := f.at(58, http.StatusAccepted, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": g}})["group_snapshot"].(map[string]any)["id"].(string)
	if got := f.at(58, http.StatusOK, "GET", "group_snapshots/"+gs, admin, nil)["group_snapshot"].(map[string]any); got["project_id"] != projA {
		t.Fatalf("admin group snapshot at 3.58: %v", got)
	}
	if got := f.at(58, http.StatusOK, "GET", "group_snapshots/"+gs, alice, nil)["group_snapshot"].(map[string]any); got["project_id"] != nil {
		t.Fatalf("member group snapshot at 3.58: %v", got)
	}
}
