package network

import "testing"

func TestExtraRoutesAtomic(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	path := "/v2.0/routers/" + w.router
	route := func(dst, hop string) map[string]any { return map[string]any{"destination": dst, "nexthop": hop} }
	body := func(rs ...map[string]any) map[string]any {
		l := []any{}
		for _, r := range rs {
			l = append(l, r)
		}
		return map[string]any{"router": map[string]any{"routes": l}}
	}
	routes := func(out map[string]any) []string {
		var got []string
		for _, r := range out["router"].(map[string]any)["routes"].([]any) {
			m := r.(map[string]any)
			got = append(got, m["destination"].(string)+">"+m["nexthop"].(string))
		}
		return got
	}
	f.expect("PUT", path, alice, map[string]any{"router": map[string]any{"routes": []any{route("10.9.0.0/16", "10.1.0.9")}}}, 200, "")
	// Added to what the router has; one it has already is no error.
	out := f.expect("PUT", path+"/add_extraroutes", alice, body(route("10.8.0.0/16", "10.1.0.8"), route("10.9.0.0/16", "10.1.0.9")), 200, "")
	if got := routes(out); len(got) != 2 || got[0] != "10.8.0.0/16>10.1.0.8" || got[1] != "10.9.0.0/16>10.1.0.9" {
		t.Fatalf("after add: %v", got)
	}
	if out["router"].(map[string]any)["id"] != w.router {
		t.Fatalf("answer is not the router: %v", out)
	}
	// The same destination by another next hop is another route.
	out = f.expect("PUT", path+"/add_extraroutes", alice, body(route("10.8.0.0/16", "10.1.0.7")), 200, "")
	if got := routes(out); len(got) != 3 {
		t.Fatalf("after adding a second next hop: %v", got)
	}
	// Removing takes out those named; one the router has not is no error.
	out = f.expect("PUT", path+"/remove_extraroutes", alice, body(route("10.8.0.0/16", "10.1.0.8"), route("10.7.0.0/16", "10.1.0.7")), 200, "")
	if got := routes(out); len(got) != 2 || got[0] != "10.8.0.0/16>10.1.0.7" {
		t.Fatalf("after remove: %v", got)
	}
	// A next hop on none of the router's subnets, bad input, another's router.
	f.expect("PUT", path+"/add_extraroutes", alice, body(route("10.6.0.0/16", "192.168.9.9")), 400, "InvalidRoutes")
	f.expect("PUT", path+"/add_extraroutes", alice, body(route("nonsense", "10.1.0.9")), 400, "HTTPBadRequest", "routes")
	f.expect("PUT", path+"/add_extraroutes", alice, map[string]any{"router": map[string]any{}}, 400, "HTTPBadRequest", "routes")
	f.expect("PUT", path+"/add_extraroutes", alice, map[string]any{"router": map[string]any{"name": "x", "routes": []any{}}}, 400, "HTTPBadRequest", "name")
	f.expect("PUT", path+"/add_extraroutes", bob, body(route("10.6.0.0/16", "10.1.0.6")), 404, "RouterNotFound")
	f.expect("PUT", path+"/remove_extraroutes", carol, body(route("10.8.0.0/16", "10.1.0.7")), 403, "PolicyNotAuthorized")
	f.expect("PUT", "/v2.0/routers/nope/add_extraroutes", alice, body(), 404, "RouterNotFound")
	if got := routes(f.expect("GET", path, alice, nil, 200, "")); len(got) != 2 {
		t.Fatalf("refused requests changed the routes: %v", got)
	}
	if ext := f.expect("GET", "/v2.0/extensions/extraroute-atomic", alice, nil, 200, ""); ext["extension"] == nil {
		t.Fatalf("extension not listed: %v", ext)
	}
}
