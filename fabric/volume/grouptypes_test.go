package volume

import (
	"net/http"
	"slices"
	"testing"
)

func (f *fixture) gcall(method, path, token string, body any) (int, map[string]any) {
	f.t.Helper()
	r := f.call(method, path, token, body, "OpenStack-API-Version", "volume 3.11")
	return r.Code, r.Body
}

// Group types (3.11): an admin makes, changes and deletes them and
// their group specs; the list shows an admin the public ones unless
// is_public says otherwise, and members only the public ones.
func TestGroupTypes(t *testing.T) {
	f := newFixture(t)
	if r := f.call("GET", "group_types", admin, nil, "OpenStack-API-Version", "volume 3.10"); r.Code != http.StatusNotFound {
		t.Fatalf("group types at 3.10: %d", r.Code)
	}
	if code, _ := f.gcall("POST", "group_types", alice, map[string]any{"group_type": map[string]any{"name": "x"}}); code != http.StatusForbidden {
		t.Fatalf("member creates: %d", code)
	}
	code, body := f.gcall("POST", "group_types", admin, map[string]any{"group_type": map[string]any{"name": "a", "description": "d",
		"group_specs": map[string]any{"consistent_group_snapshot_enabled": "<is> False"}, "is_public": true}})
	if code != http.StatusAccepted {
		t.Fatalf("create: %d %v", code, body)
	}
	a := body["group_type"].(map[string]any)
	if a["name"] != "a" || a["description"] != "d" || a["is_public"] != true || a["group_specs"].(map[string]any)["consistent_group_snapshot_enabled"] != "<is> False" {
		t.Fatalf("created %v", a)
	}
	if code, _ := f.gcall("POST", "group_types", admin, map[string]any{"group_type": map[string]any{"name": "a"}}); code != http.StatusConflict {
		t.Fatalf("a second 'a': %d", code)
	}
	code, body = f.gcall("POST", "group_types", admin, map[string]any{"group_type": map[string]any{"name": "b", "is_public": false}})
	if code != http.StatusAccepted {
		t.Fatalf("create b: %d", code)
	}
	b := body["group_type"].(map[string]any)["id"].(string)
	names := func(token, query string) []string {
		t.Helper()
		code, body := f.gcall("GET", "group_types"+query, token, nil)
		if code != http.StatusOK {
			t.Fatalf("list%s: %d %v", query, code, body)
		}
		var out []string
		for _, g := range body["group_types"].([]any) {
			out = append(out, g.(map[string]any)["name"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		token, query string
		want         []string
	}{
		{admin, "", []string{"a"}},
		{admin, "?is_public=False", []string{"b"}},
		{admin, "?is_public=None&sort=name:asc", []string{"a", "b"}},
		{admin, "?is_public=None&sort=name:desc", []string{"b", "a"}},
		{alice, "?is_public=None", []string{"a"}},
	} {
		if got := names(tc.token, tc.query); !slices.Equal(got, tc.want) {
			t.Errorf("%s by %s: %v, want %v", tc.query, tc.token, got, tc.want)
		}
	}
	if code, _ := f.gcall("GET", "group_types/"+b, alice, nil); code != http.StatusNotFound {
		t.Fatalf("member shows a private group type: %d", code)
	}
	code, body = f.gcall("PUT", "group_types/"+b, admin, map[string]any{"group_type": map[string]any{"name": "b2", "description": "new"}})
	if g := body["group_type"].(map[string]any); code != http.StatusOK || g["name"] != "b2" || g["description"] != "new" || g["is_public"] != false {
		t.Fatalf("update: %d %v", code, body)
	}
	if code, _ := f.gcall("GET", "group_types/default", admin, nil); code != http.StatusNotFound {
		t.Fatalf("default with none set: %d", code)
	}

	// Group specs.
	base := "group_types/" + b + "/group_specs"
	if code, body := f.gcall("POST", base, admin, map[string]any{"group_specs": map[string]any{"k1": "v1", "k2": "v2"}}); code != http.StatusAccepted || len(body["group_specs"].(map[string]any)) != 2 {
		t.Fatalf("set specs: %d %v", code, body)
	}
	if code, body := f.gcall("PUT", base+"/k1", admin, map[string]any{"k1": "v9"}); code != http.StatusOK || body["k1"] != "v9" {
		t.Fatalf("put spec: %d %v", code, body)
	}
	if code, _ := f.gcall("PUT", base+"/k1", admin, map[string]any{"k2": "v9"}); code != http.StatusBadRequest {
		t.Fatalf("put a spec the URL does not name: %d", code)
	}
	if code, body := f.gcall("GET", base+"/k1", admin, nil); code != http.StatusOK || body["k1"] != "v9" {
		t.Fatalf("show spec: %d %v", code, body)
	}
	if code, _ := f.gcall("DELETE", base+"/k2", admin, nil); code != http.StatusAccepted {
		t.Fatalf("delete spec: %d", code)
	}
	if code, _ := f.gcall("GET", base+"/k2", admin, nil); code != http.StatusNotFound {
		t.Fatalf("deleted spec: %d", code)
	}
	if code, body := f.gcall("GET", base, admin, nil); code != http.StatusOK || len(body["group_specs"].(map[string]any)) != 1 {
		t.Fatalf("list specs: %d %v", code, body)
	}
	if code, _ := f.gcall("DELETE", "group_types/"+b, admin, nil); code != http.StatusAccepted {
		t.Fatalf("delete: %d", code)
	}
	if got := names(admin, "?is_public=None"); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("after delete %v", got)
	}
	// A group type (and a volume type) some group is of stays.
	vt := f.createType(map[string]any{"name": "vt"})
	g := f.createGroup(alice, map[string]any{"group_type": "a", "volume_types": []any{vt}})
	f.at(13, http.StatusBadRequest, "DELETE", "group_types/"+a["id"].(string), admin, nil)
	f.at(13, http.StatusBadRequest, "DELETE", "types/"+vt, admin, nil)
	f.at(13, http.StatusAccepted, "POST", "groups/"+g+"/action", alice, map[string]any{"delete": map[string]any{}})
	f.at(13, http.StatusAccepted, "DELETE", "group_types/"+a["id"].(string), admin, nil)
	f.at(13, http.StatusAccepted, "DELETE", "types/"+vt, admin, nil)
}
