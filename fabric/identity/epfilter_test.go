package identity

import (
	"sort"
	"strings"
	"testing"
)

// catalogOf is "type/interface" of every endpoint in a token's catalog.
func (f *fixture) catalogOf(tok string) []string {
	f.t.Helper()
	_, _, body := f.call("GET", "/auth/tokens", f.admin, nil, "X-Subject-Token", tok)
	var out []string
	for _, s := range body["token"].(map[string]any)["catalog"].([]any) {
		svc := s.(map[string]any)
		for _, e := range svc["endpoints"].([]any) {
			out = append(out, svc["type"].(string)+"/"+e.(map[string]any)["interface"].(string))
		}
	}
	sort.Strings(out)
	return out
}

func TestEndpointFilter(t *testing.T) {
	f := newFixture(t)
	pid, _, _ := f.tenant("edge", "ed", "member")
	full := f.catalogOf(f.login("ed", "ed-pw", "edge"))
	if len(full) != 6 {
		t.Fatalf("catalog before any filter: %v", full)
	}
	_, _, body := f.call("GET", "/services?type=identity", f.admin, nil)
	identity := body["services"].([]any)[0].(map[string]any)["id"].(string)
	gid := f.mk("/OS-EP-FILTER/endpoint_groups", "endpoint_group", map[string]any{"name": "idpub", "description": "d",
		"filters": map[string]any{"service_id": identity, "interface": "public"}})
	if code, _, _ := f.call("HEAD", "/OS-EP-FILTER/endpoint_groups/"+gid, f.admin, nil); code != 200 {
		t.Fatalf("HEAD the group: %d", code)
	}
	if code, _, body := f.call("GET", "/OS-EP-FILTER/endpoint_groups/"+gid+"/endpoints", f.admin, nil); code != 200 || len(body["endpoints"].([]any)) != 1 {
		t.Fatalf("the group's endpoints: %d %v", code, body)
	}
	// Associated with the project, the group is all its catalog shows.
	if code, _, _ := f.call("PUT", "/OS-EP-FILTER/endpoint_groups/"+gid+"/projects/"+pid, f.admin, nil); code != 204 {
		t.Fatalf("associate the group: %d", code)
	}
	if code, _, body := f.call("GET", "/OS-EP-FILTER/endpoint_groups/"+gid+"/projects/"+pid, f.admin, nil); code != 200 || body["project"].(map[string]any)["id"] != pid {
		t.Fatalf("check the group's project: %d %v", code, body)
	}
	if got := strings.Join(f.catalogOf(f.login("ed", "ed-pw", "edge")), ","); got != "identity/public" {
		t.Fatalf("catalog through the group: %s", got)
	}
	// An endpoint associated directly adds to it.
	_, _, body = f.call("GET", "/endpoints?interface=internal", f.admin, nil)
	var objInternal string
	for _, e := range body["endpoints"].([]any) {
		if e.(map[string]any)["service_id"] != identity {
			objInternal = e.(map[string]any)["id"].(string)
		}
	}
	if code, _, _ := f.call("PUT", "/OS-EP-FILTER/projects/"+pid+"/endpoints/"+objInternal, f.admin, nil); code != 204 {
		t.Fatalf("associate an endpoint: %d", code)
	}
	if code, _, _ := f.call("HEAD", "/OS-EP-FILTER/projects/"+pid+"/endpoints/"+objInternal, f.admin, nil); code != 204 {
		t.Fatalf("check the endpoint: %d", code)
	}
	if got := strings.Join(f.catalogOf(f.login("ed", "ed-pw", "edge")), ","); got != "identity/public,object-store/internal" {
		t.Fatalf("catalog through the group and the endpoint: %s", got)
	}
	for path, key := range map[string]string{"/OS-EP-FILTER/projects/" + pid + "/endpoints": "endpoints", "/OS-EP-FILTER/projects/" + pid + "/endpoint_groups": "endpoint_groups",
		"/OS-EP-FILTER/endpoint_groups/" + gid + "/projects": "projects", "/OS-EP-FILTER/endpoints/" + objInternal + "/projects": "projects"} {
		want := 1
		if key == "endpoints" {
			want = 2
		}
		if _, _, body := f.call("GET", path, f.admin, nil); len(body[key].([]any)) != want {
			t.Errorf("%s: %v, want %d", path, body, want)
		}
	}
	// Bad groups are refused, naming the field.
	for _, fields := range []map[string]any{{"name": "x"}, {"name": "x", "filters": map[string]any{"color": "red"}}, {"filters": map[string]any{"interface": "public"}}} {
		code, _, body := f.call("POST", "/OS-EP-FILTER/endpoint_groups", f.admin, map[string]any{"endpoint_group": fields})
		if code != 400 {
			t.Errorf("%v: %d %v", fields, code, body)
		}
	}
	// Deleting the group takes its association; removing the endpoint's
	// leaves the project with none: the whole catalog again.
	if code, _, _ := f.call("DELETE", "/OS-EP-FILTER/endpoint_groups/"+gid, f.admin, nil); code != 204 {
		t.Fatalf("delete the group: %d", code)
	}
	if got := strings.Join(f.catalogOf(f.login("ed", "ed-pw", "edge")), ","); got != "object-store/internal" {
		t.Fatalf("catalog after the group was deleted: %s", got)
	}
	if code, _, _ := f.call("DELETE", "/OS-EP-FILTER/projects/"+pid+"/endpoints/"+objInternal, f.admin, nil); code != 204 {
		t.Fatalf("remove the endpoint: %d", code)
	}
	if got := f.catalogOf(f.login("ed", "ed-pw", "edge")); len(got) != 6 {
		t.Fatalf("catalog with no association left: %v", got)
	}
	if code, _, _ := f.call("PUT", "/OS-EP-FILTER/projects/"+pid+"/endpoints/nope", f.admin, nil); code != 404 {
		t.Fatalf("associate a missing endpoint: %d", code)
	}
}
