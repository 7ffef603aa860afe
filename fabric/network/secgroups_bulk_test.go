package network

import (
	"sort"
	"testing"
)

// groupNames lists the names of the security groups tok sees.
func groupNames(f *fixture, tok string) []string {
	var out []string
	for _, g := range f.expect("GET", "/v2.0/security-groups", tok, nil, 200, "")["security_groups"].([]any) {
		out = append(out, g.(map[string]any)["name"].(string))
	}
	sort.Strings(out)
	return out
}

// TestSecurityGroupBulkCreate: a list body makes every group, each with
// its egress rules, or, when one is refused (bad input, quota), none.
func TestSecurityGroupBulkCreate(t *testing.T) {
	f := newFixture(t)
	bulk := func(names ...string) map[string]any {
		var l []any
		for _, n := range names {
			l = append(l, map[string]any{"name": n})
		}
		return map[string]any{"security_groups": l}
	}
	out := f.expect("POST", "/v2.0/security-groups", alice, bulk("a", "b"), 201, "")["security_groups"].([]any)
	if len(out) != 2 || out[0].(map[string]any)["name"] != "a" || out[1].(map[string]any)["name"] != "b" {
		t.Fatalf("created %v", out)
	}
	for _, g := range out {
		id := g.(map[string]any)["id"].(string)
		sg := f.expect("GET", "/v2.0/security-groups/"+id, alice, nil, 200, "")["security_group"].(map[string]any)
		if rules := sg["security_group_rules"].([]any); len(rules) != 2 {
			t.Errorf("group %s has rules %v, want the two egress ones", id, rules)
		}
	}
	// Items may also come wrapped, {"security_group": {...}}, as Neutron
	// takes them (and tempest sends them).
	wrapped := f.expect("POST", "/v2.0/security-groups", alice, map[string]any{"security_groups": []any{
		map[string]any{"security_group": map[string]any{"name": "w1"}}, map[string]any{"name": "w2"}}}, 201, "")["security_groups"].([]any)
	if len(wrapped) != 2 || wrapped[0].(map[string]any)["name"] != "w1" || wrapped[1].(map[string]any)["name"] != "w2" {
		t.Fatalf("wrapped bulk made %v", wrapped)
	}
	f.expect("POST", "/v2.0/security-groups", alice, map[string]any{"security_groups": []any{
		map[string]any{"security_group": "x"}}}, 400, "HTTPBadRequest", "security_groups")
	for _, g := range wrapped {
		f.expect("DELETE", "/v2.0/security-groups/"+g.(map[string]any)["id"].(string), alice, nil, 204, "")
	}
	// Ports too.
	n := f.network(alice, "n")["id"].(string)
	ports := f.expect("POST", "/v2.0/ports", alice, map[string]any{"ports": []any{
		map[string]any{"port": map[string]any{"network_id": n, "name": "p1"}}}}, 201, "")["ports"].([]any)
	if len(ports) != 1 || ports[0].(map[string]any)["name"] != "p1" {
		t.Fatalf("wrapped port bulk made %v", ports)
	}
	// One bad object: none made, the field named.
	f.expect("POST", "/v2.0/security-groups", alice, map[string]any{"security_groups": []any{
		map[string]any{"name": "c"}, map[string]any{"name": "d", "bogus": 1}}}, 400, "HTTPBadRequest", "bogus")
	f.expect("POST", "/v2.0/security-groups", alice, bulk("e", "default"), 409, "SecurityGroupDefaultAlreadyExists")
	f.expect("POST", "/v2.0/security-groups", alice, map[string]any{"security_groups": []any{}}, 400, "HTTPBadRequest", "security_groups")
	f.expect("POST", "/v2.0/security-groups", alice, map[string]any{"security_groups": []any{"x"}}, 400, "HTTPBadRequest", "security_groups")
	// Over quota by the last one: none made.
	f.expect("PUT", "/v2.0/quotas/"+projA, admin, map[string]any{"quota": map[string]any{"security_group": 5}}, 200, "")
	f.expect("POST", "/v2.0/security-groups", alice, bulk("f", "g", "h"), 409, "OverQuota")
	if got := groupNames(f, alice); len(got) != 3 || got[0] != "a" || got[1] != "b" || got[2] != "default" {
		t.Fatalf("groups after refused bulks: %v", got)
	}
	f.expect("POST", "/v2.0/security-groups", alice, bulk("f", "g"), 201, "")
}

// TestPortTagsOnCreation: a port create (one or bulk) may name its tags
// (tag-ports-during-bulk-creation): kept sorted, found by the tags
// filter; bad tags are refused naming the field, and nothing is made.
func TestPortTagsOnCreation(t *testing.T) {
	f := newFixture(t)
	n := f.network(alice, "n")["id"].(string)
	p := f.port(alice, n, "tags", []string{"tag-2", "tag-1"})
	if got := p["tags"].([]any); len(got) != 2 || got[0] != "tag-1" || got[1] != "tag-2" {
		t.Fatalf("tags on create: %v", got)
	}
	out := f.expect("POST", "/v2.0/ports", alice, map[string]any{"ports": []any{
		map[string]any{"port": map[string]any{"network_id": n, "name": "b1", "tags": []string{"tag-3"}}},
		map[string]any{"network_id": n, "name": "b2"}}}, 201, "")["ports"].([]any)
	if got := out[0].(map[string]any)["tags"].([]any); len(got) != 1 || got[0] != "tag-3" {
		t.Errorf("bulk port's tags: %v", got)
	}
	if got := out[1].(map[string]any)["tags"].([]any); len(got) != 0 {
		t.Errorf("untagged bulk port's tags: %v", got)
	}
	if l := f.expect("GET", "/v2.0/ports?tags=tag-3", alice, nil, 200, "")["ports"].([]any); len(l) != 1 {
		t.Errorf("tags filter: %v", l)
	}
	for _, bad := range []any{[]string{"a", "a"}, []string{"a,b"}, []string{""}, "a"} {
		f.expect("POST", "/v2.0/ports", alice, map[string]any{"ports": []any{
			map[string]any{"network_id": n, "name": "ok"}, map[string]any{"network_id": n, "name": "bad", "tags": bad}}}, 400, "HTTPBadRequest", "tags")
	}
	if l := f.expect("GET", "/v2.0/ports?name=ok", alice, nil, 200, "")["ports"].([]any); len(l) != 0 {
		t.Errorf("a refused bulk made %v", l)
	}
}
