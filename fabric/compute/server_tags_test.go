package compute

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Nova's server tags (2.26): add (201 new, 204 there), check (204/404),
// replace all, delete one and all; bad tags and too many are refused
// naming why; other projects do not find the server, readers do not
// change it; the view shows them and a list filters on them; a create
// from 2.52 sets them.
func TestServerTags(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "web")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	other := f.server(alice, "db")
	f.report(other, Observed{Status: "ACTIVE", PowerState: 1})
	path := "/v2.1/servers/" + id + "/tags"
	const v = "2.26"
	tags := func(sid string) []string {
		t.Helper()
		var out []string
		for _, x := range f.expect("GET", "/v2.1/servers/"+sid+"/tags", alice, v, nil, 200, "")["tags"].([]any) {
			out = append(out, x.(string))
		}
		return out
	}
	f.expect("GET", path, alice, "2.25", nil, 404, "itemNotFound")
	if got := tags(id); len(got) != 0 {
		t.Fatalf("tags of a new server: %v", got)
	}
	r := f.do("PUT", path+"/a", alice, v, nil)
	if r.code != 201 || !strings.HasSuffix(r.header.Get("Location"), "/servers/"+id+"/tags/a") {
		t.Fatalf("add: %d %v", r.code, r.header)
	}
	f.expect("PUT", path+"/a", alice, v, nil, 204, "")
	f.expect("GET", path+"/a", alice, v, nil, 204, "")
	f.expect("GET", path+"/b", alice, v, nil, 404, "itemNotFound")
	f.expect("PUT", path+"/a,b", alice, v, nil, 400, "badRequest", "tag")
	f.expect("PUT", path+"/"+strings.Repeat("x", 61), alice, v, nil, 400, "badRequest", "tag")
	f.expect("PUT", path+"/b", carol, v, nil, 403, "forbidden")
	f.expect("PUT", path+"/b", bob, v, nil, 404, "itemNotFound")
	f.expect("GET", path, bob, v, nil, 404, "itemNotFound")

	got := f.expect("PUT", path, alice, v, map[string]any{"tags": []any{"x", "y", "x"}}, 200, "")["tags"].([]any)
	if len(got) != 2 || !slices.Equal(tags(id), []string{"x", "y"}) {
		t.Fatalf("replace: %v, then %v", got, tags(id))
	}
	f.expect("PUT", path, alice, v, map[string]any{"tags": "x"}, 400, "badRequest", "tags")
	f.expect("PUT", path, alice, v, map[string]any{}, 400, "badRequest", "tags")
	f.expect("PUT", path, alice, v, map[string]any{"tags": []any{"ok", "no/slash"}}, 400, "badRequest", "tags")
	many := []any{}
	for i := range 51 {
		many = append(many, fmt.Sprintf("t%d", i))
	}
	f.expect("PUT", path, alice, v, map[string]any{"tags": many}, 400, "badRequest", "limit 50")
	f.expect("PUT", path, alice, v, map[string]any{"tags": many[:50]}, 200, "")
	f.expect("PUT", path+"/one-more", alice, v, nil, 400, "badRequest", "limit 50")
	f.expect("PUT", path, alice, v, map[string]any{"tags": []any{"x", "y"}}, 200, "")

	if sv := f.show(alice, id, v); fmt.Sprint(sv["tags"]) != "[x y]" {
		t.Fatalf("view tags %v", sv["tags"])
	}
	if sv := f.show(alice, other, v); fmt.Sprint(sv["tags"]) != "[]" {
		t.Fatalf("untagged view tags %v", sv["tags"])
	}
	f.expect("PUT", "/v2.1/servers/"+other+"/tags/y", alice, v, nil, 201, "")
	ids := func(query string) []string {
		t.Helper()
		var out []string
		for _, s := range f.expect("GET", "/v2.1/servers?"+query, alice, v, nil, 200, "")["servers"].([]any) {
			out = append(out, s.(map[string]any)["id"].(string))
		}
		return out
	}
	for query, want := range map[string][]string{
		"tags=x,y": {id}, "tags=y": {id, other}, "tags-any=x,z": {id}, "not-tags=x,y": {other},
		"not-tags-any=x": {other}, "not-tags-any=y": nil, "tags=y&not-tags-any=x": {other},
	} {
		if got := ids(query); !sameSet(got, want) {
			t.Errorf("?%s: %v, want %v", query, got, want)
		}
	}

	f.expect("DELETE", path+"/x", alice, v, nil, 204, "")
	f.expect("DELETE", path+"/x", alice, v, nil, 404, "itemNotFound")
	if !slices.Equal(tags(id), []string{"y"}) {
		t.Fatalf("after delete: %v", tags(id))
	}
	f.expect("DELETE", path, alice, v, nil, 204, "")
	if len(tags(id)) != 0 {
		t.Fatalf("after delete all: %v", tags(id))
	}

	// Create: tags from 2.52, refused before; bad ones named.
	f.expect("POST", "/v2.1/servers", alice, "2.51", serverBody("tags", []any{"a"}), 400, "badRequest", "tags")
	f.expect("POST", "/v2.1/servers", alice, "2.52", serverBody("tags", []any{"a/b"}), 400, "badRequest", "tags")
	made := f.expect("POST", "/v2.1/servers", alice, "2.52", serverBody("tags", []any{"a", "b"}), 202, "")["server"].(map[string]any)["id"].(string)
	if !slices.Equal(tags(made), []string{"a", "b"}) {
		t.Fatalf("created with tags: %v", tags(made))
	}
}
