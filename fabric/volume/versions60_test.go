package volume

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// 3.60: created_at and updated_at filter volume lists by comparisons;
// a bad operator or time is a 400 naming the filter; before 3.60 the
// value is matched as shown.
func TestVolumeTimeFilters360(t *testing.T) {
	f := newFixture(t)
	ids := map[string]string{}
	for i, name := range []string{"old", "mid", "new"} {
		id := f.createVolume(alice, map[string]any{"size": 1, "name": name})["id"].(string)
		ids[name] = id
		at := time.Date(2024, 1, 1+10*i, 0, 0, 0, 0, time.UTC)
		if _, err := f.svc.changeVolume(context.Background(), id, func(v *volstate.Volume) error { v.CreatedAt = at; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	bob1 := f.createVolume(bob, map[string]any{"size": 1, "name": "bobs"})["id"].(string)
	names := func(minor int, token, query string) map[string]bool {
		out := map[string]bool{}
		for _, x := range f.at(minor, http.StatusOK, "GET", "volumes/detail?"+query, token, nil)["volumes"].([]any) {
			out[x.(map[string]any)["name"].(string)] = true
		}
		return out
	}
	q := func(v string) string { return "created_at=" + url.QueryEscape(v) }
	if got := names(60, alice, q("gt:2024-01-05T00:00:00")); len(got) != 2 || !got["mid"] || !got["new"] {
		t.Fatalf("gt: %v", got)
	}
	if got := names(60, alice, q("gte:2024-01-11T00:00:00,lt:2024-01-21T00:00:00")); len(got) != 1 || !got["mid"] {
		t.Fatalf("gte,lt: %v", got)
	}
	if got := names(60, alice, q("eq:2024-01-01T01:00:00+01:00")); len(got) != 1 || !got["old"] {
		t.Fatalf("eq with an offset: %v", got)
	}
	if got := names(60, alice, q("neq:2024-01-01T00:00:00")); len(got) != 2 || got["old"] {
		t.Fatalf("neq: %v", got)
	}
	if got := names(60, alice, q("lte:2024-01-11")); len(got) != 2 || got["new"] {
		t.Fatalf("lte a date: %v", got)
	}
	// Tenancy: bob's volume is not among alice's, whatever the time.
	if got := names(60, alice, q("gt:2000-01-01T00:00:00")); got["bobs"] || len(got) != 3 {
		t.Fatalf("alice's list: %v", got)
	}
	if got := names(60, bob, q("gt:2000-01-01T00:00:00")); len(got) != 1 || !got["bobs"] {
		t.Fatalf("bob's list (%s): %v", bob1, got)
	}
	if got := names(60, alice, "updated_at="+url.QueryEscape("gte:2026-12-05T12:00:00")); len(got) != 3 {
		t.Fatalf("updated_at: %v", got)
	}
	f.badFieldAs(alice, 60, "GET", "volumes?"+q("after:2024-01-01T00:00:00"), nil, "created_at")
	f.badFieldAs(alice, 60, "GET", "volumes?"+q("gt:yesterday"), nil, "created_at")
	f.badFieldAs(alice, 60, "GET", "volumes?"+q("2024-01-01"), nil, "created_at")
	// Before 3.60: matched as shown.
	if got := names(59, alice, q("gt:2024-01-05T00:00:00")); len(got) != 0 {
		t.Fatalf("at 3.59 a comparison matches nothing: %v", got)
	}
	if got := names(59, alice, q("2024-01-11T00:00:00.000000")); len(got) != 1 || !got["mid"] {
		t.Fatalf("at 3.59 the shown value: %v", got)
	}
}

// attached makes volume id in-use, as Nova's attach leaves it.
func (f *fixture) attached(id string) {
	f.t.Helper()
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: "n1", Device: "/dev/vdc"}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: id, Attachment: att}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttached, volstate.AttachedCmd{VolumeID: id, AttachmentID: att.ID}); err != nil {
		f.t.Fatal(err)
	}
}

// 3.61 shows admins a volume's cluster_name (none here), 3.63 its
// volume_type_id, 3.65 consumes_quota on volumes and snapshots, with the
// consumes_quota list filter; none of them before.
func TestVolumeDetails361to365(t *testing.T) {
	f := newFixture(t)
	typ := f.createType(map[string]any{"name": "fast"})
	vol := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "fast"})["id"].(string)
	show := func(minor int, token string) map[string]any {
		return f.at(minor, http.StatusOK, "GET", "volumes/"+vol, token, nil)["volume"].(map[string]any)
	}
	if v := show(61, admin); !hasKey(v, "cluster_name") || v["cluster_name"] != nil {
		t.Fatalf("admin at 3.61: %v", v)
	}
	if v := show(61, alice); hasKey(v, "cluster_name") {
		t.Fatalf("member at 3.61: %v", v)
	}
	if v := show(60, admin); hasKey(v, "cluster_name") {
		t.Fatalf("admin at 3.60: %v", v)
	}
	if v := show(63, alice); v["volume_type_id"] != typ || v["volume_type"] != "fast" {
		t.Fatalf("at 3.63: %v", v)
	}
	if v := show(62, alice); hasKey(v, "volume_type_id") {
		t.Fatalf("at 3.62: %v", v)
	}
	if v := show(65, alice); v["consumes_quota"] != true {
		t.Fatalf("at 3.65: %v", v)
	}
	if v := show(64, alice); hasKey(v, "consumes_quota") {
		t.Fatalf("at 3.64: %v", v)
	}
	snap := f.at(65, http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}})["snapshot"].(map[string]any)
	if snap["consumes_quota"] != true {
		t.Fatalf("snapshot at 3.65: %v", snap)
	}
	count := func(minor int, path string) int {
		key := strings.SplitN(path, "?", 2)[0]
		key = strings.TrimSuffix(key, "/detail")
		return len(f.at(minor, http.StatusOK, "GET", path, alice, nil)[key].([]any))
	}
	for path, want := range map[string]int{"volumes?consumes_quota=true": 1, "volumes/detail?consumes_quota=false": 0, "snapshots?consumes_quota=false": 0, "snapshots/detail?consumes_quota=1": 1} {
		if got := count(65, path); got != want {
			t.Errorf("%s at 3.65: %d, want %d", path, got, want)
		}
	}
	if got := count(64, "volumes?consumes_quota=false"); got != 1 {
		t.Errorf("consumes_quota at 3.64 filters: %d", got)
	}
	f.badFieldAs(alice, 65, "GET", "volumes?consumes_quota=perhaps", nil, "consumes_quota")
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

// 3.64 shows an encrypted backup's encryption_key_id.
func TestBackupKeyID364(t *testing.T) {
	_, opt := withSecrets(t)
	f := newFixture(t, opt)
	f.encryptedType("secret")
	vol := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "secret"})
	b := f.at(64, http.StatusAccepted, "POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": vol["id"]}})["backup"].(map[string]any)["id"].(string)
	f.waitStatus(alice, "backups/"+b, "backup", "available")
	got := f.at(64, http.StatusOK, "GET", "backups/"+b, alice, nil)["backup"].(map[string]any)
	keyID, _ := got["encryption_key_id"].(string)
	if keyID == "" {
		t.Fatalf("backup at 3.64: %v", got)
	}
	if got := f.at(63, http.StatusOK, "GET", "backups/"+b, alice, nil)["backup"].(map[string]any); hasKey(got, "encryption_key_id") {
		t.Fatalf("backup at 3.63: %v", got)
	}
}

// 3.66: an in-use volume is snapshotted without force; force=false is
// refused, force=true ignored. Before, in-use needs force.
func TestSnapshotInUse366(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.attached(vol)
	snap := func(body map[string]any) map[string]any {
		body["volume_id"] = vol
		return map[string]any{"snapshot": body}
	}
	f.at(65, http.StatusBadRequest, "POST", "snapshots", alice, snap(map[string]any{}))
	f.at(65, http.StatusAccepted, "POST", "snapshots", alice, snap(map[string]any{"force": true}))
	f.at(66, http.StatusAccepted, "POST", "snapshots", alice, snap(map[string]any{}))
	f.at(66, http.StatusAccepted, "POST", "snapshots", alice, snap(map[string]any{"force": "true"}))
	f.badFieldAs(alice, 66, "POST", "snapshots", snap(map[string]any{"force": false}), "force")
	f.at(66, http.StatusNotFound, "POST", "snapshots", bob, snap(map[string]any{}))
}

// 3.67: the API is also served without the project in the URL, acting in
// the token's project; links then name no project.
func TestNoProjectInURL367(t *testing.T) {
	f := newFixture(t)
	made := f.at(67, http.StatusAccepted, "POST", "/v3/volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "name": "short"}})["volume"].(map[string]any)
	id := made["id"].(string)
	if got := f.showVolume(alice, id); got["os-vol-tenant-attr:tenant_id"] != projA {
		t.Fatalf("made in %v", got["os-vol-tenant-attr:tenant_id"])
	}
	self := made["links"].([]any)[0].(map[string]any)["href"].(string)
	if !strings.HasSuffix(self, "/volume/v3/volumes/"+id) {
		t.Fatalf("self link %s", self)
	}
	if got := f.at(67, http.StatusOK, "GET", "/v3/volumes/"+id, alice, nil)["volume"].(map[string]any); got["name"] != "short" {
		t.Fatalf("shown %v", got)
	}
	f.at(67, http.StatusNotFound, "GET", "/v3/volumes/"+id, bob, nil)
	if l := f.at(67, http.StatusOK, "GET", "/v3/volumes", bob, nil)["volumes"].([]any); len(l) != 0 {
		t.Fatalf("bob lists %v", l)
	}
	f.at(67, http.StatusOK, "PUT", "/v3/volumes/"+id, alice, map[string]any{"volume": map[string]any{"name": "renamed"}})
	f.badFieldAs(alice, 67, "PUT", "/v3/volumes/"+id, map[string]any{"volume": map[string]any{"colour": "x"}}, "colour")
	f.at(67, http.StatusForbidden, "POST", "/v3/types", alice, map[string]any{"volume_type": map[string]any{"name": "x"}})
	// The project form still holds its check.
	f.at(67, http.StatusForbidden, "GET", "/v3/"+projA+"/volumes", bob, nil)
}

// 3.69 lets shared_targets be null (unknown); here it is known: no
// target is shared (each volume is its own NBD export), so it stays
// false at every version from 3.48.
func TestSharedTargets369(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	for _, minor := range []int{48, 68, 69} {
		if got := f.at(minor, http.StatusOK, "GET", "volumes/"+vol, alice, nil)["volume"].(map[string]any); got["shared_targets"] != false {
			t.Fatalf("at 3.%d: %v", minor, got["shared_targets"])
		}
	}
}
