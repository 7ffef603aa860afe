package identity

import (
	"strings"
	"testing"
)

func (f *fixture) serviceID(typ string) string {
	f.t.Helper()
	_, _, body := f.call("GET", "/services?type="+typ, f.admin, nil)
	l, _ := body["services"].([]any)
	if len(l) != 1 {
		f.t.Fatalf("services of type %s: %v", typ, body)
	}
	return l[0].(map[string]any)["id"].(string)
}

// post creates a batch and returns the status, the created objects and the body.
func (f *fixture) postBatch(tok, path, key string, items ...map[string]any) (int, []any, map[string]any) {
	f.t.Helper()
	list := make([]any, len(items))
	for i, it := range items {
		list[i] = it
	}
	code, _, body := f.call("POST", path, tok, map[string]any{key: list})
	out, _ := body[key].([]any)
	return code, out, body
}

func idOf(v any) string { return v.(map[string]any)["id"].(string) }

func errMsg(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func TestRegisteredLimits(t *testing.T) {
	f := newFixture(t)
	svc, swift := f.serviceID("identity"), f.serviceID("object-store")
	code, regs, body := f.postBatch(f.admin, "/registered_limits", "registered_limits",
		map[string]any{"service_id": svc, "region_id": "RegionOne", "resource_name": "users", "default_limit": 10, "description": "d"},
		map[string]any{"service_id": swift, "resource_name": "containers", "default_limit": 0})
	if code != 201 || len(regs) != 2 {
		t.Fatalf("create: %d %v", code, body)
	}
	r0 := regs[0].(map[string]any)
	if r0["region_id"] != "RegionOne" || r0["default_limit"] != float64(10) || r0["description"] != "d" || regs[1].(map[string]any)["region_id"] != nil || regs[1].(map[string]any)["description"] != nil {
		t.Fatalf("created: %v", regs)
	}
	id := idOf(r0)
	code, _, body = f.call("GET", "/registered_limits/"+id, f.admin, nil)
	if code != 200 || body["registered_limit"].(map[string]any)["resource_name"] != "users" {
		t.Fatalf("show: %d %v", code, body)
	}
	for q, want := range map[string]int{"": 2, "?service_id=" + svc: 1, "?region_id=RegionOne": 1, "?resource_name=containers": 1, "?resource_name=nope": 0} {
		_, _, body := f.call("GET", "/registered_limits"+q, f.admin, nil)
		if n := len(body["registered_limits"].([]any)); n != want {
			t.Errorf("list %q: %d, want %d", q, n, want)
		}
	}
	// Anyone authenticated reads them; only admins write.
	_, _, tok := f.tenant("rl", "rob", "member")
	if code, _, _ := f.call("GET", "/registered_limits/"+id, tok, nil); code != 200 {
		t.Fatalf("member show: %d", code)
	}
	if code, _, _ := f.postBatch(tok, "/registered_limits", "registered_limits", map[string]any{"service_id": svc, "resource_name": "x", "default_limit": 1}); code != 403 {
		t.Fatalf("member create: %d", code)
	}

	for _, c := range []struct {
		item  map[string]any
		code  int
		field string
	}{
		{map[string]any{"service_id": svc, "region_id": "RegionOne", "resource_name": "users", "default_limit": 3}, 409, "Duplicate"},
		{map[string]any{"service_id": "nope", "resource_name": "r", "default_limit": 3}, 400, "service_id"},
		{map[string]any{"service_id": svc, "region_id": "nowhere", "resource_name": "r", "default_limit": 3}, 400, "region_id"},
		{map[string]any{"service_id": svc, "resource_name": "r"}, 400, "default_limit"},
		{map[string]any{"service_id": svc, "resource_name": "r", "default_limit": "5"}, 400, "default_limit"},
		{map[string]any{"service_id": svc, "resource_name": "r", "default_limit": -2}, 400, "default_limit"},
		{map[string]any{"service_id": svc, "resource_name": "", "default_limit": 1}, 400, "resource_name"},
		{map[string]any{"service_id": svc, "resource_name": "r", "default_limit": 1, "colour": "red"}, 400, "colour"},
	} {
		code, _, body := f.postBatch(f.admin, "/registered_limits", "registered_limits", c.item)
		if code != c.code || !strings.Contains(errMsg(body), c.field) {
			t.Errorf("%v: %d %v, want %d naming %s", c.item, code, body, c.code, c.field)
		}
	}
	// A batch is created whole or not at all: a duplicate inside it
	// leaves nothing behind.
	code, _, body = f.postBatch(f.admin, "/registered_limits", "registered_limits",
		map[string]any{"service_id": svc, "resource_name": "twice", "default_limit": 1},
		map[string]any{"service_id": svc, "resource_name": "twice", "default_limit": 2})
	if code != 409 {
		t.Fatalf("duplicate inside a batch: %d %v", code, body)
	}
	if _, _, body := f.call("GET", "/registered_limits?resource_name=twice", f.admin, nil); len(body["registered_limits"].([]any)) != 0 {
		t.Fatalf("half a batch was created: %v", body)
	}

	code, _, body = f.call("PATCH", "/registered_limits/"+id, f.admin, map[string]any{"registered_limit": map[string]any{"default_limit": 20, "resource_name": "users2", "description": nil}})
	if u := body["registered_limit"].(map[string]any); code != 200 || u["default_limit"] != float64(20) || u["resource_name"] != "users2" || u["description"] != nil || u["region_id"] != "RegionOne" {
		t.Fatalf("update: %d %v", code, body)
	}
	if code, _, body := f.call("PATCH", "/registered_limits/"+id, f.admin, map[string]any{"registered_limit": map[string]any{"service_id": swift, "region_id": nil, "resource_name": "containers"}}); code != 409 {
		t.Fatalf("update onto another's key: %d %v", code, body)
	}
	if code, _, _ := f.call("PATCH", "/registered_limits/"+id, f.admin, map[string]any{"registered_limit": map[string]any{}}); code != 400 {
		t.Fatalf("empty update: %d", code)
	}
	// A service or region named by a registered limit cannot go.
	if code, _, body := f.call("DELETE", "/services/"+swift, f.admin, nil); code != 409 {
		t.Fatalf("delete a limited service: %d %v", code, body)
	}
	if code, _, _ := f.call("DELETE", "/registered_limits/"+id, f.admin, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := f.call("GET", "/registered_limits/"+id, f.admin, nil); code != 404 {
		t.Fatalf("show deleted: %d", code)
	}
}

func TestLimits(t *testing.T) {
	f := newFixture(t)
	svc := f.serviceID("identity")
	_, regs, body := f.postBatch(f.admin, "/registered_limits", "registered_limits",
		map[string]any{"service_id": svc, "region_id": "RegionOne", "resource_name": "cores", "default_limit": 10},
		map[string]any{"service_id": svc, "resource_name": "ram", "default_limit": 100})
	if len(regs) != 2 {
		t.Fatalf("registered: %v", body)
	}
	cores := idOf(regs[0])
	p1, _, tok1 := f.tenant("p1", "ann", "member")
	p2, _, tok2 := f.tenant("p2", "bob", "member")
	code, lims, body := f.postBatch(f.admin, "/limits", "limits",
		map[string]any{"project_id": p1, "service_id": svc, "region_id": "RegionOne", "resource_name": "cores", "resource_limit": 5, "description": "p1 cores"},
		map[string]any{"project_id": p2, "service_id": svc, "region_id": "RegionOne", "resource_name": "cores", "resource_limit": 7},
		map[string]any{"domain_id": "default", "service_id": svc, "resource_name": "ram", "resource_limit": -1})
	if code != 201 || len(lims) != 3 {
		t.Fatalf("create: %d %v", code, body)
	}
	l1 := lims[0].(map[string]any)
	if l1["project_id"] != p1 || l1["domain_id"] != nil || l1["resource_limit"] != float64(5) || l1["region_id"] != "RegionOne" || l1["description"] != "p1 cores" {
		t.Fatalf("created: %v", l1)
	}
	if d := lims[2].(map[string]any); d["domain_id"] != "default" || d["project_id"] != nil || d["resource_limit"] != float64(-1) {
		t.Fatalf("domain limit: %v", d)
	}
	id1, id2 := idOf(l1), idOf(lims[1])

	for _, c := range []struct {
		item  map[string]any
		code  int
		field string
	}{
		{map[string]any{"project_id": p1, "service_id": svc, "region_id": "RegionOne", "resource_name": "cores", "resource_limit": 1}, 409, "Duplicate"},
		{map[string]any{"project_id": p1, "service_id": svc, "resource_name": "cores", "resource_limit": 1}, 403, "registered limit"},
		{map[string]any{"project_id": "nope", "service_id": svc, "resource_name": "ram", "resource_limit": 1}, 400, "project_id"},
		{map[string]any{"domain_id": "nope", "service_id": svc, "resource_name": "ram", "resource_limit": 1}, 400, "domain_id"},
		{map[string]any{"service_id": svc, "resource_name": "ram", "resource_limit": 1}, 400, "project_id"},
		{map[string]any{"project_id": p1, "domain_id": "default", "service_id": svc, "resource_name": "ram", "resource_limit": 1}, 400, "project_id"},
		{map[string]any{"project_id": p1, "service_id": svc, "resource_name": "ram", "resource_limit": 1.5}, 400, "resource_limit"},
	} {
		code, _, body := f.postBatch(f.admin, "/limits", "limits", c.item)
		if code != c.code || !strings.Contains(errMsg(body), c.field) {
			t.Errorf("%v: %d %v, want %d naming %s", c.item, code, body, c.code, c.field)
		}
	}

	// An admin sees every limit and filters them; a member its project's.
	for q, want := range map[string]int{"": 3, "?project_id=" + p2: 1, "?resource_name=ram": 1, "?region_id=RegionOne": 2, "?service_id=" + svc: 3, "?domain_id=default": 1} {
		_, _, body := f.call("GET", "/limits"+q, f.admin, nil)
		if n := len(body["limits"].([]any)); n != want {
			t.Errorf("admin list %q: %d, want %d", q, n, want)
		}
	}
	_, _, body = f.call("GET", "/limits", tok1, nil)
	if l := body["limits"].([]any); len(l) != 1 || idOf(l[0]) != id1 {
		t.Fatalf("p1's member lists: %v", body)
	}
	if code, _, _ := f.call("GET", "/limits/"+id1, tok1, nil); code != 200 {
		t.Fatalf("p1's member shows its limit: %d", code)
	}
	if code, _, _ := f.call("GET", "/limits/"+id1, tok2, nil); code != 404 {
		t.Fatalf("p2's member shows p1's limit: %d", code)
	}
	if code, _, _ := f.call("PATCH", "/limits/"+id1, tok1, map[string]any{"limit": map[string]any{"resource_limit": 99}}); code != 403 {
		t.Fatalf("a member updates its limit: %d", code)
	}
	_, _, body = f.call("GET", "/limits/model", tok1, nil)
	if m := body["model"].(map[string]any); m["name"] != "flat" {
		t.Fatalf("model: %v", body)
	}

	code, _, body = f.call("PATCH", "/limits/"+id1, f.admin, map[string]any{"limit": map[string]any{"resource_limit": 8, "description": "more"}})
	if u := body["limit"].(map[string]any); code != 200 || u["resource_limit"] != float64(8) || u["description"] != "more" || u["project_id"] != p1 {
		t.Fatalf("update: %d %v", code, body)
	}
	if code, _, body := f.call("PATCH", "/limits/"+id1, f.admin, map[string]any{"limit": map[string]any{"project_id": p2}}); code != 400 || !strings.Contains(errMsg(body), "project_id") {
		t.Fatalf("update the project: %d %v", code, body)
	}

	// The registered limit a limit overrides keeps its key and stays.
	if code, _, body := f.call("DELETE", "/registered_limits/"+cores, f.admin, nil); code != 403 {
		t.Fatalf("delete an overridden registered limit: %d %v", code, body)
	}
	if code, _, body := f.call("PATCH", "/registered_limits/"+cores, f.admin, map[string]any{"registered_limit": map[string]any{"resource_name": "vcpus"}}); code != 403 {
		t.Fatalf("re-key an overridden registered limit: %d %v", code, body)
	}
	if code, _, body := f.call("PATCH", "/registered_limits/"+cores, f.admin, map[string]any{"registered_limit": map[string]any{"default_limit": 12}}); code != 200 {
		t.Fatalf("change an overridden registered limit's default: %d %v", code, body)
	}

	// A project takes its limits with it.
	f.call("PATCH", "/projects/"+p2, f.admin, map[string]any{"project": map[string]any{"enabled": false}})
	if code, _, _ := f.call("DELETE", "/projects/"+p2, f.admin, nil); code != 204 {
		t.Fatalf("delete project: %d", code)
	}
	if code, _, _ := f.call("GET", "/limits/"+id2, f.admin, nil); code != 404 {
		t.Fatalf("a deleted project's limit: %d", code)
	}
	if code, _, _ := f.call("DELETE", "/limits/"+id1, f.admin, nil); code != 204 {
		t.Fatalf("delete limit: %d", code)
	}
	if code, _, body := f.call("DELETE", "/registered_limits/"+cores, f.admin, nil); code != 204 {
		t.Fatalf("delete a registered limit no longer overridden: %d %v", code, body)
	}
}

// A domain-scoped token sees the limits of its domain and of the
// projects in it, and no other.
func TestLimitsOfADomain(t *testing.T) {
	f := newFixture(t)
	svc := f.serviceID("identity")
	if code, _, body := f.postBatch(f.admin, "/registered_limits", "registered_limits", map[string]any{"service_id": svc, "resource_name": "ram", "default_limit": 1}); code != 201 {
		t.Fatalf("registered: %d %v", code, body)
	}
	d := f.mk("/domains", "domain", map[string]any{"name": "d2"})
	inD := f.mk("/projects", "project", map[string]any{"name": "in-d2", "domain_id": d})
	outside, uid, _ := f.tenant("outside", "dave", "member")
	if code, _, _ := f.call("PUT", "/domains/"+d+"/users/"+uid+"/roles/"+f.roleID("reader"), f.admin, nil); code != 204 {
		t.Fatalf("grant on the domain: %d", code)
	}
	_, lims, body := f.postBatch(f.admin, "/limits", "limits",
		map[string]any{"project_id": inD, "service_id": svc, "resource_name": "ram", "resource_limit": 2},
		map[string]any{"domain_id": d, "service_id": svc, "resource_name": "ram", "resource_limit": 3},
		map[string]any{"project_id": outside, "service_id": svc, "resource_name": "ram", "resource_limit": 4})
	if len(lims) != 3 {
		t.Fatalf("limits: %v", body)
	}
	auth := passwordAuth("dave", "dave-pw", "")
	auth["auth"].(map[string]any)["scope"] = map[string]any{"domain": map[string]any{"id": d}}
	code, h, body := f.call("POST", "/auth/tokens", "", auth)
	if code != 201 {
		t.Fatalf("domain-scoped login: %d %v", code, body)
	}
	_, _, body = f.call("GET", "/limits", h.Get("X-Subject-Token"), nil)
	got := map[string]bool{}
	for _, l := range body["limits"].([]any) {
		got[idOf(l)] = true
	}
	if len(got) != 2 || !got[idOf(lims[0])] || !got[idOf(lims[1])] {
		t.Fatalf("the domain's token lists %v, want %s and %s", body, idOf(lims[0]), idOf(lims[1]))
	}
	if code, _, _ := f.call("GET", "/limits/"+idOf(lims[2]), h.Get("X-Subject-Token"), nil); code != 404 {
		t.Fatalf("the domain's token shows another domain's project's limit: %d", code)
	}
}
