package compute

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestServerTags(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "web")
	path := "/v2.1/servers/" + id + "/tags"
	const v = "2.26"
	tags := func(want ...string) {
		t.Helper()
		got := f.expect("GET", path, carol, v, nil, 200, "")["tags"].([]any)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("tags %v, want %v", got, want)
		}
		shown := f.show(alice, id, v)["tags"].([]any)
		if fmt.Sprint(shown) != fmt.Sprint(want) {
			t.Fatalf("server view tags %v, want %v", shown, want)
		}
		if row := f.row(id); fmt.Sprint(row.Tags) != fmt.Sprint(want) && len(want) > 0 {
			t.Fatalf("row tags %v, want %v", row.Tags, want)
		}
	}

	// Below 2.26 the API does not exist.
	f.expect("GET", path, alice, "2.25", nil, 404, "itemNotFound")
	f.expect("PUT", path+"/a", alice, "2.25", nil, 404, "itemNotFound")
	if _, ok := f.show(alice, id, "2.25")["tags"]; ok {
		t.Fatal("tags shown before 2.26")
	}
	tags()

	// A building server's tags cannot change (Nova's vm_states).
	f.expect("PUT", path+"/a", alice, v, nil, 409, "conflictingRequest", "Cannot 'update tag' instance "+id+" while it is in vm_state building")
	f.expect("PUT", path, alice, v, map[string]any{"tags": []any{"a"}}, 409, "conflictingRequest", "'update tags'")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})

	// One tag: 201 with its Location, then 204; case-sensitive.
	r := f.do("PUT", path+"/b", alice, v, nil)
	if r.code != 201 || !strings.HasSuffix(r.header.Get("Location"), "/servers/"+id+"/tags/b") {
		t.Fatalf("add: %d %q", r.code, r.header.Get("Location"))
	}
	if r := f.do("PUT", path+"/b", alice, v, nil); r.code != 204 {
		t.Fatalf("add again: %d", r.code)
	}
	f.expect("PUT", path+"/B", alice, v, nil, 201, "")
	f.expect("PUT", path+"/a%20c", alice, v, nil, 201, "")
	tags("B", "a c", "b")
	f.expect("GET", path+"/b", carol, v, nil, 204, "")
	f.expect("GET", path+"/a%20c", carol, v, nil, 204, "")
	f.expect("GET", path+"/x", alice, v, nil, 404, "itemNotFound", "has no tag 'x'")

	// Bad tags name themselves; nothing changes.
	f.expect("PUT", path+"/a,b", alice, v, nil, 400, "badRequest", "Tag 'a,b' is invalid")
	f.expect("PUT", path+"/"+strings.Repeat("x", 61), alice, v, nil, 400, "badRequest", "is too long")
	f.expect("PUT", path, alice, v, map[string]any{"tags": []any{"ok", "a/b"}}, 400, "badRequest", "tags", "a/b")
	f.expect("PUT", path, alice, v, map[string]any{"tags": []any{""}}, 400, "badRequest", "tags")
	f.expect("PUT", path, alice, v, map[string]any{"tags": "a"}, 400, "badRequest", "tags")
	f.expect("PUT", path, alice, v, map[string]any{"tags": []any{1}}, 400, "badRequest", "tags")
	f.expect("PUT", path, alice, v, map[string]any{}, 400, "badRequest", "tags")
	f.expect("PUT", path, alice, v, map[string]any{"tags": []any{}, "x": 1}, 400, "badRequest", "x")
	var many []any
	for i := 0; i < 51; i++ {
		many = append(many, fmt.Sprintf("t%02d", i))
	}
	f.expect("PUT", path, alice, v, map[string]any{"tags": many}, 400, "badRequest", "over the limit")
	tags("B", "a c", "b")

	// Policy: a reader reads only, another project sees nothing.
	f.expect("PUT", path+"/z", carol, v, nil, 403, "forbidden", "os_compute_api:os-server-tags:update")
	f.expect("PUT", path, carol, v, map[string]any{"tags": []any{}}, 403, "forbidden", "update_all")
	f.expect("DELETE", path+"/b", carol, v, nil, 403, "forbidden", "os-server-tags:delete")
	f.expect("DELETE", path, carol, v, nil, 403, "forbidden", "delete_all")
	f.expect("GET", path, bob, v, nil, 404, "itemNotFound")
	f.expect("GET", path+"/b", bob, v, nil, 404, "itemNotFound")
	f.expect("PUT", path+"/z", bob, v, nil, 404, "itemNotFound")
	f.expect("DELETE", path, bob, v, nil, 404, "itemNotFound")
	tags("B", "a c", "b")

	// Replace (duplicates collapse), the limit of 50, delete one and all.
	got := f.expect("PUT", path, dave, v, map[string]any{"tags": []any{"y", "x", "y"}}, 200, "")["tags"].([]any)
	if fmt.Sprint(got) != "[x y]" {
		t.Fatalf("replace answered %v", got)
	}
	tags("x", "y")
	f.expect("PUT", path, alice, v, map[string]any{"tags": many[:50]}, 200, "")
	f.expect("PUT", path+"/one-more", alice, v, nil, 400, "badRequest", "exceeded the per-server limit 50")
	if n := len(f.row(id).Tags); n != 50 {
		t.Fatalf("%d tags after a refused add", n)
	}
	f.expect("DELETE", path+"/t00", alice, v, nil, 204, "")
	f.expect("DELETE", path+"/t00", alice, v, nil, 404, "itemNotFound", "has no tag 't00'")
	if n := len(f.row(id).Tags); n != 49 || slices.Contains(f.row(id).Tags, "t00") {
		t.Fatalf("after delete: %v", f.row(id).Tags)
	}
	f.expect("DELETE", path, alice, v, nil, 204, "")
	tags()

	// A locked server's tags still change, as in Nova (no lock check).
	f.action(admin, id, map[string]any{"lock": nil}, 202)
	f.expect("PUT", path+"/locked", alice, v, nil, 201, "")
	tags("locked")
}

func TestServerTagsListFiltersAndCreate(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	create := func(version string, tags any, status int, inMsg ...string) string {
		t.Helper()
		sv := map[string]any{"name": "s", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}}, "tags": tags}
		body := f.expect("POST", "/v2.1/servers", alice, version, map[string]any{"server": sv}, status, "", inMsg...)
		if status != 202 {
			return ""
		}
		return body["server"].(map[string]any)["id"].(string)
	}
	// tags at create: refused before 2.52 as an unknown attribute, checked
	// as the tags API checks them from it.
	create("2.51", []any{"a"}, 400, "tags")
	create("2.52", []any{"a,b"}, 400, "tags", "a,b")
	create("2.52", []any{strings.Repeat("x", 61)}, 400, "tags", "too long")
	create("2.52", "a", 400, "tags")
	if n := len(f.expect("GET", "/v2.1/servers", alice, "", nil, 200, "")["servers"].([]any)); n != 0 {
		t.Fatalf("a refused create made %d servers", n)
	}
	ab := create("2.52", []any{"b", "a"}, 202)
	bc := create("2.52", []any{"b", "c"}, 202)
	none := create("2.52", []any{}, 202)
	if got := f.show(alice, ab, "2.52")["tags"].([]any); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("created with tags %v", got)
	}

	ids := func(q, version string) string {
		t.Helper()
		var out []string
		for _, s := range f.expect("GET", "/v2.1/servers/detail"+q, alice, version, nil, 200, "")["servers"].([]any) {
			out = append(out, s.(map[string]any)["id"].(string))
		}
		slices.Sort(out)
		return strings.Join(out, " ")
	}
	set := func(xs ...string) string {
		slices.Sort(xs)
		return strings.Join(xs, " ")
	}
	for _, c := range []struct{ q, want string }{
		{"?tags=a", set(ab)},
		{"?tags=b", set(ab, bc)},
		{"?tags=a,b", set(ab)},
		{"?tags=a,c", ""},
		{"?tags=B", ""},
		{"?tags-any=a,c", set(ab, bc)},
		{"?not-tags=a,b", set(bc, none)},
		{"?not-tags=b", set(none)},
		{"?not-tags-any=a,c", set(none)},
		{"?tags=b&not-tags-any=c", set(ab)},
	} {
		if got := ids(c.q, "2.26"); got != c.want {
			t.Fatalf("%s: %q, want %q", c.q, got, c.want)
		}
	}
	// Before 2.26 the filters are not Nova's: ignored.
	if got := ids("?tags=a", "2.25"); got != set(ab, bc, none) {
		t.Fatalf("2.25 tags filter: %q", got)
	}
	// The detail list shows them.
	for _, s := range f.expect("GET", "/v2.1/servers/detail?tags=c", alice, "2.26", nil, 200, "")["servers"].([]any) {
		if got := s.(map[string]any)["tags"].([]any); fmt.Sprint(got) != "[b c]" {
			t.Fatalf("detail tags %v", got)
		}
	}
}
