package network

import (
	"net/url"
	"slices"
	"testing"
)

func tagsIn(v map[string]any) []string {
	var out []string
	for _, t := range v["tags"].([]any) {
		out = append(out, t.(string))
	}
	return out
}

func TestTagsOnEveryTaggedResource(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	sg := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	fip := f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": w.ext})["id"].(string)
	for coll, id := range map[string]string{"networks": w.net, "subnets": w.subnet, "ports": w.port,
		"security-groups": sg, "routers": w.router, "floatingips": fip} {
		t.Run(coll, func(t *testing.T) {
			one := map[string]string{"networks": "network", "subnets": "subnet", "ports": "port",
				"security-groups": "security_group", "routers": "router", "floatingips": "floatingip"}[coll]
			base := "/v2.0/" + coll + "/" + id
			rev := f.expect("GET", base, alice, nil, 200, "")[one].(map[string]any)["revision_number"].(float64)
			f.expect("PUT", base+"/tags/blue", alice, nil, 201, "")
			f.expect("PUT", base+"/tags/blue", alice, nil, 201, "") // again: no change
			f.expect("GET", base+"/tags/blue", alice, nil, 204, "")
			f.expect("GET", base+"/tags/green", alice, nil, 404, "TagNotFound")
			got := f.expect("GET", base, alice, nil, 200, "")[one].(map[string]any)
			if !slices.Equal(tagsIn(got), []string{"blue"}) || got["revision_number"].(float64) != rev+1 {
				t.Fatalf("after one tag: tags %v revision %v (was %v)", got["tags"], got["revision_number"], rev)
			}
			out := f.expect("PUT", base+"/tags", alice, map[string]any{"tags": []string{"c", "a", "b"}}, 200, "")
			if !slices.Equal(tagsIn(out), []string{"a", "b", "c"}) {
				t.Fatalf("replaced tags: %v", out)
			}
			f.expect("GET", base+"/tags/blue", alice, nil, 404, "TagNotFound")
			f.expect("DELETE", base+"/tags/a", alice, nil, 204, "")
			f.expect("DELETE", base+"/tags/a", alice, nil, 404, "TagNotFound")
			if got := tagsIn(f.expect("GET", base+"/tags", alice, nil, 200, "")); !slices.Equal(got, []string{"b", "c"}) {
				t.Fatalf("after removing a: %v", got)
			}
			// Only who may change the resource tags it; who may not see
			// it gets 404.
			f.expect("PUT", base+"/tags/x", carol, nil, 403, "PolicyNotAuthorized")
			f.expect("PUT", base+"/tags/x", bob, nil, 404, "")
			f.expect("GET", base+"/tags", bob, nil, 404, "")
			f.expect("DELETE", base+"/tags", alice, nil, 204, "")
			if got := tagsIn(f.expect("GET", base+"/tags", alice, nil, 200, "")); len(got) != 0 {
				t.Fatalf("after deleting all: %v", got)
			}
		})
	}
}

func TestTagsRefuseBadInput(t *testing.T) {
	f := newFixture(t)
	n := "/v2.0/networks/" + f.network(alice, "n")["id"].(string)
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'x'
	}
	many := make([]string, maxTags+1)
	for i := range many {
		many[i] = string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	for name, body := range map[string]any{
		"not a list":  map[string]any{"tags": "a"},
		"no tags":     map[string]any{"tag": []string{"a"}},
		"not strings": map[string]any{"tags": []any{1}},
		"duplicates":  map[string]any{"tags": []string{"a", "a"}},
		"too long":    map[string]any{"tags": []string{string(long)}},
		"comma":       map[string]any{"tags": []string{"a,b"}},
		"too many":    map[string]any{"tags": many},
	} {
		t.Run(name, func(t *testing.T) { f.expect("PUT", n+"/tags", alice, body, 400, "", "tags") })
	}
	f.expect("PUT", n+"/tags/"+string(long), alice, nil, 400, "", "tags")
	f.expect("PUT", "/v2.0/networks/nope/tags/a", alice, nil, 404, "NetworkNotFound")
	f.expect("PUT", n+"/tags/two%20words", alice, nil, 201, "")
	if got := tagsIn(f.expect("GET", n+"/tags", alice, nil, 200, "")); !slices.Equal(got, []string{"two words"}) {
		t.Fatalf("an escaped tag: %v", got)
	}
	f.expect("GET", n+"/tags/two%20words", alice, nil, 204, "")
}

func TestListFiltersOnTags(t *testing.T) {
	f := newFixture(t)
	mk := func(name string, tags ...string) {
		id := f.network(alice, name)["id"].(string)
		if tags == nil {
			tags = []string{}
		}
		f.expect("PUT", "/v2.0/networks/"+id+"/tags", alice, map[string]any{"tags": tags}, 200, "")
	}
	mk("ab", "a", "b")
	mk("a", "a")
	mk("c", "c")
	mk("none")
	for q, want := range map[string][]string{
		"tags=a":                              {"a", "ab"},
		"tags=a,b":                            {"ab"},
		"tags=a&tags=b":                       {"ab"},
		"tags-any=b,c":                        {"ab", "c"},
		"not-tags=a,b":                        {"a", "c", "none"},
		"not-tags-any=a,c":                    {"none"},
		"tags=a&not-tags-any=b":               {"a"},
		"tags-any=" + url.QueryEscape("a,zz"): {"a", "ab"},
	} {
		t.Run(q, func(t *testing.T) {
			_, body := f.call("GET", "/v2.0/networks?"+q, alice, nil)
			if got := sortedNames(body["networks"].([]any)); !slices.Equal(got, want) {
				t.Fatalf("%s: %v, want %v", q, got, want)
			}
		})
	}
}
