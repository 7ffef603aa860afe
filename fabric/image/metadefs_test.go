package image

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

const mdNS = "/v2/metadefs/namespaces"

func names(list any, key string) []string {
	var out []string
	for _, x := range list.([]any) {
		out = append(out, x.(map[string]any)[key].(string))
	}
	return out
}

func TestMetadefNamespaceLifecycle(t *testing.T) {
	f := newFixture(t)
	body := map[string]any{
		"namespace": "OS::Compute::Test", "display_name": "Test", "description": "d", "visibility": "public", "protected": true,
		"resource_type_associations": []any{map[string]any{"name": "OS::Nova::Flavor", "prefix": "hw:"}},
		"properties":                 map[string]any{"cpu_policy": map[string]any{"title": "CPU Policy", "type": "string", "enum": []any{"shared", "dedicated"}}},
		"objects":                    []any{map[string]any{"name": "CPU Limits", "required": []any{"quota"}, "properties": map[string]any{"quota": map[string]any{"title": "Quota", "type": "integer", "minimum": 0}}}},
		"tags":                       []any{map[string]any{"name": "fast"}},
	}
	res := f.expect(http.StatusCreated, "POST", mdNS, admin, body)
	if res.body["owner"] != projAdm || res.body["protected"] != true || res.body["self"] != mdNS+"/OS::Compute::Test" ||
		res.body["schema"] != "/v2/schemas/metadefs/namespace" || res.body["created_at"] != "2026-11-24T12:00:00Z" {
		t.Fatalf("created: %v", res.body)
	}
	f.expect(http.StatusConflict, "POST", mdNS, admin, map[string]any{"namespace": "OS::Compute::Test"}, "already exists")

	// A member of another project reads a public namespace, all of it.
	show := f.expect(http.StatusOK, "GET", mdNS+"/OS::Compute::Test", bob, nil).body
	props := show["properties"].(map[string]any)
	if fmt.Sprint(props["cpu_policy"]) != "map[enum:[shared dedicated] title:CPU Policy type:string]" {
		t.Fatalf("properties: %v", props)
	}
	if obj := show["objects"].([]any)[0].(map[string]any); obj["name"] != "CPU Limits" || fmt.Sprint(obj["required"]) != "[quota]" {
		t.Fatalf("objects: %v", show["objects"])
	}
	if fmt.Sprint(names(show["tags"], "name")) != "[fast]" || fmt.Sprint(names(show["resource_type_associations"], "name")) != "[OS::Nova::Flavor]" {
		t.Fatalf("tags or associations: %v", show)
	}
	// For the flavor, properties carry the association's prefix.
	flavor := f.expect(http.StatusOK, "GET", mdNS+"/OS::Compute::Test?resource_type=OS::Nova::Flavor", bob, nil).body
	if _, ok := flavor["properties"].(map[string]any)["hw:cpu_policy"]; !ok {
		t.Fatalf("prefixed properties: %v", flavor["properties"])
	}
	list := f.expect(http.StatusOK, "GET", mdNS, bob, nil).body
	if !slices.Contains(names(list["namespaces"], "namespace"), "OS::Compute::Test") || list["schema"] != "/v2/schemas/metadefs/namespaces" {
		t.Fatalf("list: %v", list)
	}

	f.expect(http.StatusForbidden, "DELETE", mdNS+"/OS::Compute::Test", admin, nil, "protected")
	f.expect(http.StatusForbidden, "DELETE", mdNS+"/OS::Compute::Test/tags/fast", admin, nil, "protected")
	f.tick()
	up := f.expect(http.StatusOK, "PUT", mdNS+"/OS::Compute::Test", admin, map[string]any{"namespace": "renamed", "visibility": "private", "protected": false}).body
	if up["namespace"] != "renamed" || up["visibility"] != "private" || up["protected"] != false || up["updated_at"] != "2026-11-24T12:00:01Z" ||
		up["display_name"] != nil || up["tags"] == nil {
		t.Fatalf("updated: %v", up)
	}
	f.expect(http.StatusNotFound, "GET", mdNS+"/OS::Compute::Test", admin, nil, "was not found")
	f.expect(http.StatusNotFound, "GET", mdNS+"/renamed", bob, nil)
	f.expect(http.StatusNoContent, "DELETE", mdNS+"/renamed", admin, nil)
	f.expect(http.StatusNotFound, "GET", mdNS+"/renamed", admin, nil)
	f.expect(http.StatusNotFound, "DELETE", mdNS+"/renamed", admin, nil)
}

func TestMetadefTenantsAndPolicy(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, "POST", mdNS, admin, map[string]any{"namespace": "a-private", "owner": projA})
	f.expect(http.StatusCreated, "POST", mdNS, admin, map[string]any{"namespace": "admins"})
	// Writes are admins' (Glance's default policy), even in one's project.
	f.expect(http.StatusForbidden, "POST", mdNS, alice, map[string]any{"namespace": "mine"}, "add_metadef_namespace")
	f.expect(http.StatusForbidden, "POST", mdNS+"/a-private/objects", alice, map[string]any{"name": "o"})
	f.expect(http.StatusForbidden, "PUT", mdNS+"/a-private", alice, map[string]any{"namespace": "a-private"})
	f.expect(http.StatusForbidden, "DELETE", mdNS+"/a-private", alice, nil)

	// The owner's members read it; another project does not see it.
	if f.expect(http.StatusOK, "GET", mdNS+"/a-private", carol, nil).body["visibility"] != "private" {
		t.Fatal("private namespace not shown to its project's reader")
	}
	f.expect(http.StatusNotFound, "GET", mdNS+"/a-private", bob, nil, "Metadata definition namespace=a-private was not found.")
	f.expect(http.StatusNotFound, "GET", mdNS+"/a-private/objects", bob, nil)
	f.expect(http.StatusNotFound, "GET", mdNS+"/a-private/tags", bob, nil)
	got := map[string][]string{}
	for who, tok := range map[string]string{"alice": alice, "bob": bob, "admin": admin} {
		got[who] = names(f.expect(http.StatusOK, "GET", mdNS, tok, nil).body["namespaces"], "namespace")
		slices.Sort(got[who])
	}
	if fmt.Sprint(got) != "map[admin:[a-private admins] alice:[a-private] bob:[]]" {
		t.Fatalf("listings: %v", got)
	}
	f.expect(http.StatusOK, "GET", mdNS+"?visibility=public", bob, nil)
	f.expect(http.StatusBadRequest, "GET", mdNS+"?visibility=nonsense", bob, nil)
}

func TestMetadefPagination(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		f.expect(http.StatusCreated, "POST", mdNS, admin, map[string]any{"namespace": fmt.Sprintf("ns%d", i), "visibility": "public"})
		f.tick()
	}
	var seen []string
	next := mdNS + "?limit=2&sort_key=namespace&sort_dir=asc"
	for range 5 {
		page := f.expect(http.StatusOK, "GET", next, bob, nil).body
		seen = append(seen, names(page["namespaces"], "namespace")...)
		n, ok := page["next"].(string)
		if !ok {
			break
		}
		next = n
	}
	if fmt.Sprint(seen) != "[ns0 ns1 ns2 ns3 ns4]" {
		t.Fatalf("pages: %v", seen)
	}
	if got := f.expect(http.StatusOK, "GET", mdNS+"?limit=0", bob, nil).body; len(got["namespaces"].([]any)) != 0 || got["next"] != nil {
		t.Fatalf("limit 0: %v", got)
	}
	f.expect(http.StatusBadRequest, "GET", mdNS+"?limit=-1", bob, nil, "limit")
	f.expect(http.StatusBadRequest, "GET", mdNS+"?sort_key=owner", bob, nil, "sort key")
	f.expect(http.StatusNotFound, "GET", mdNS+"?marker=nonesuch", bob, nil)
	// Newest first by default.
	if first := names(f.expect(http.StatusOK, "GET", mdNS, bob, nil).body["namespaces"], "namespace"); first[0] != "ns4" {
		t.Fatalf("default order: %v", first)
	}
}

func TestMetadefObjectsAndProperties(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, "POST", mdNS, admin, map[string]any{"namespace": "n", "visibility": "public"})
	obj := f.expect(http.StatusCreated, "POST", mdNS+"/n/objects", admin, map[string]any{
		"name": "o1", "description": "first", "properties": map[string]any{"p": map[string]any{"title": "P", "type": "boolean"}}}).body
	if obj["self"] != mdNS+"/n/objects/o1" || obj["schema"] != "/v2/schemas/metadefs/object" || obj["created_at"] == nil {
		t.Fatalf("object: %v", obj)
	}
	f.expect(http.StatusConflict, "POST", mdNS+"/n/objects", admin, map[string]any{"name": "o1"})
	up := f.expect(http.StatusOK, "PUT", mdNS+"/n/objects/o1", admin, map[string]any{"name": "o2"}).body
	if up["name"] != "o2" || up["description"] != nil {
		t.Fatalf("updated object: %v", up)
	}
	f.expect(http.StatusNotFound, "GET", mdNS+"/n/objects/o1", bob, nil)
	if f.expect(http.StatusOK, "GET", mdNS+"/n/objects/o2", bob, nil).body["name"] != "o2" {
		t.Fatal("renamed object not shown")
	}
	f.expect(http.StatusNoContent, "DELETE", mdNS+"/n/objects/o2", admin, nil)
	if objs := f.expect(http.StatusOK, "GET", mdNS+"/n/objects", bob, nil).body["objects"].([]any); len(objs) != 0 {
		t.Fatalf("objects after delete: %v", objs)
	}

	prop := f.expect(http.StatusCreated, "POST", mdNS+"/n/properties", admin, map[string]any{
		"name": "hypervisor", "title": "Hypervisor", "type": "string", "enum": []any{"qemu", "kvm"}}).body
	if prop["name"] != "hypervisor" || prop["title"] != "Hypervisor" || fmt.Sprint(prop["enum"]) != "[qemu kvm]" {
		t.Fatalf("property: %v", prop)
	}
	f.expect(http.StatusConflict, "POST", mdNS+"/n/properties", admin, map[string]any{"name": "hypervisor", "title": "x", "type": "string"})
	up = f.expect(http.StatusOK, "PUT", mdNS+"/n/properties/hypervisor", admin, map[string]any{
		"name": "hypervisor", "title": "HV", "type": "array", "items": map[string]any{"type": "string", "enum": []any{"a"}}}).body
	if up["title"] != "HV" || fmt.Sprint(up["items"]) != "map[enum:[a] type:string]" {
		t.Fatalf("updated property: %v", up)
	}
	all := f.expect(http.StatusOK, "GET", mdNS+"/n/properties", bob, nil).body["properties"].(map[string]any)
	if len(all) != 1 || all["hypervisor"].(map[string]any)["title"] != "HV" {
		t.Fatalf("properties: %v", all)
	}
	f.expect(http.StatusNoContent, "DELETE", mdNS+"/n/properties/hypervisor", admin, nil)
	f.expect(http.StatusNotFound, "GET", mdNS+"/n/properties/hypervisor", bob, nil)
	f.expect(http.StatusNotFound, "DELETE", mdNS+"/n/properties/hypervisor", admin, nil)
}

func TestMetadefTags(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, "POST", mdNS, admin, map[string]any{"namespace": "n", "visibility": "public", "tags": []any{map[string]any{"name": "old"}}})
	tagNames := func() string {
		return fmt.Sprint(names(f.expect(http.StatusOK, "GET", mdNS+"/n/tags", bob, nil).body["tags"], "name"))
	}
	// A bulk create replaces the tags, unless told to append.
	f.expect(http.StatusCreated, "POST", mdNS+"/n/tags", admin, map[string]any{"tags": []any{map[string]any{"name": "a"}, map[string]any{"name": "b"}}})
	if got := tagNames(); got != "[a b]" {
		t.Fatalf("replaced tags: %s", got)
	}
	res := f.do("POST", mdNS+"/n/tags", admin, map[string]any{"tags": []any{map[string]any{"name": "c"}}}, "X-Openstack-Append", "true")
	if res.code != http.StatusCreated || fmt.Sprint(names(res.body["tags"], "name")) != "[c]" {
		t.Fatalf("append: %d %s", res.code, res.raw)
	}
	if got := tagNames(); got != "[a b c]" {
		t.Fatalf("appended tags: %s", got)
	}
	if res := f.do("POST", mdNS+"/n/tags", admin, map[string]any{"tags": []any{map[string]any{"name": "A"}}}, "X-Openstack-Append", "true"); res.code != http.StatusConflict {
		t.Fatalf("appending an existing tag (other case): %d %s", res.code, res.raw)
	}
	f.expect(http.StatusConflict, "POST", mdNS+"/n/tags", admin, map[string]any{"tags": []any{map[string]any{"name": "x"}, map[string]any{"name": "X"}}})
	if got := tagNames(); got != "[a b c]" {
		t.Fatalf("tags after refused requests: %s", got)
	}
	// Single tags.
	if tag := f.expect(http.StatusCreated, "POST", mdNS+"/n/tags/d", admin, nil).body; tag["name"] != "d" || tag["created_at"] == nil {
		t.Fatalf("tag: %v", tag)
	}
	f.expect(http.StatusConflict, "POST", mdNS+"/n/tags/D", admin, nil, "case insensitive")
	f.expect(http.StatusConflict, "PUT", mdNS+"/n/tags/d", admin, map[string]any{"name": "a"})
	if tag := f.expect(http.StatusOK, "PUT", mdNS+"/n/tags/d", admin, map[string]any{"name": "e"}).body; tag["name"] != "e" {
		t.Fatalf("renamed tag: %v", tag)
	}
	f.expect(http.StatusOK, "GET", mdNS+"/n/tags/e", bob, nil)
	f.expect(http.StatusNoContent, "DELETE", mdNS+"/n/tags/e", admin, nil)
	f.expect(http.StatusNotFound, "GET", mdNS+"/n/tags/e", bob, nil)
	f.expect(http.StatusNoContent, "DELETE", mdNS+"/n/tags", admin, nil)
	if got := tagNames(); got != "[]" {
		t.Fatalf("tags after deleting all: %s", got)
	}
}

func TestMetadefResourceTypes(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, "POST", mdNS, admin, map[string]any{"namespace": "n", "visibility": "public"})
	a := f.expect(http.StatusCreated, "POST", mdNS+"/n/resource_types", admin, map[string]any{"name": "OS::Glance::Image", "prefix": "p_", "properties_target": "image"}).body
	if a["name"] != "OS::Glance::Image" || a["prefix"] != "p_" || a["properties_target"] != "image" {
		t.Fatalf("association: %v", a)
	}
	f.expect(http.StatusConflict, "POST", mdNS+"/n/resource_types", admin, map[string]any{"name": "OS::Glance::Image"})
	f.expect(http.StatusCreated, "POST", mdNS+"/n/resource_types", admin, map[string]any{"name": "OS::Custom::Thing"})
	types := names(f.expect(http.StatusOK, "GET", "/v2/metadefs/resource_types", bob, nil).body["resource_types"], "name")
	if !slices.Contains(types, "OS::Nova::Flavor") || !slices.Contains(types, "OS::Custom::Thing") {
		t.Fatalf("resource types: %v", types)
	}
	// A private namespace's resource types are its project's to see.
	f.expect(http.StatusCreated, "POST", mdNS, admin, map[string]any{"namespace": "secret", "owner": projA,
		"resource_type_associations": []any{map[string]any{"name": "OS::Secret::Thing"}}})
	for tok, want := range map[string]bool{alice: true, bob: false} {
		types := names(f.expect(http.StatusOK, "GET", "/v2/metadefs/resource_types", tok, nil).body["resource_types"], "name")
		if slices.Contains(types, "OS::Secret::Thing") != want {
			t.Fatalf("%s sees resource types %v", tok, types)
		}
	}
	// Filter namespaces by the types they apply to.
	if got := names(f.expect(http.StatusOK, "GET", mdNS+"?resource_types=OS::Nova::Flavor", bob, nil).body["namespaces"], "namespace"); len(got) != 0 {
		t.Fatalf("namespaces of flavors: %v", got)
	}
	if got := names(f.expect(http.StatusOK, "GET", mdNS+"?resource_types=OS::Glance::Image", bob, nil).body["namespaces"], "namespace"); fmt.Sprint(got) != "[n]" {
		t.Fatalf("namespaces of images: %v", got)
	}
	f.expect(http.StatusNoContent, "DELETE", mdNS+"/n/resource_types/OS::Glance::Image", admin, nil)
	f.expect(http.StatusNotFound, "DELETE", mdNS+"/n/resource_types/OS::Glance::Image", admin, nil)
	got := names(f.expect(http.StatusOK, "GET", mdNS+"/n/resource_types", bob, nil).body["resource_type_associations"], "name")
	if fmt.Sprint(got) != "[OS::Custom::Thing]" {
		t.Fatalf("associations: %v", got)
	}
}

func TestMetadefBadInput(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusCreated, "POST", mdNS, admin, map[string]any{"namespace": "n"})
	for _, tc := range []struct {
		path  string
		body  any
		field string
	}{
		{mdNS, map[string]any{"display_name": "x"}, "attribute namespace"},
		{mdNS, map[string]any{"namespace": strings.Repeat("x", 81)}, "attribute namespace"},
		{mdNS, map[string]any{"namespace": "a/b"}, "attribute namespace"},
		{mdNS, map[string]any{"namespace": "v", "visibility": "shared"}, "attribute visibility"},
		{mdNS, map[string]any{"namespace": "v", "protected": "maybe"}, "attribute protected"},
		{mdNS, map[string]any{"namespace": "v", "bogus": 1}, "attribute bogus"},
		{mdNS, map[string]any{"namespace": "v", "properties": map[string]any{"p": map[string]any{"title": "t", "type": "text"}}}, "attribute properties/p/type"},
		{mdNS, map[string]any{"namespace": "v", "properties": map[string]any{"p": map[string]any{"type": "string"}}}, "attribute properties/p/title"},
		{mdNS, map[string]any{"namespace": "v", "objects": []any{map[string]any{"description": "no name"}}}, "attribute objects/0/name"},
		{mdNS, map[string]any{"namespace": "v", "tags": []any{map[string]any{"name": strings.Repeat("t", 256)}}}, "attribute tags/0/name"},
		{mdNS, map[string]any{"namespace": "v", "resource_type_associations": []any{map[string]any{"prefix": "x"}}}, "attribute resource_type_associations/0/name"},
		{mdNS + "/n/properties", map[string]any{"name": "p", "title": "t", "type": "integer", "minimum": "zero"}, "attribute minimum"},
		{mdNS + "/n/properties", map[string]any{"name": "p", "title": "t", "type": "string", "pattern": "("}, "attribute pattern"},
		{mdNS + "/n/objects", map[string]any{"name": "o", "required": "x"}, "attribute required"},
		{mdNS + "/n/tags", map[string]any{"tags": "x"}, "attribute tags"},
	} {
		f.expect(http.StatusBadRequest, "POST", tc.path, admin, tc.body, tc.field)
	}
	f.expect(http.StatusForbidden, "POST", mdNS, admin, map[string]any{"namespace": "v", "created_at": "now"}, "read-only")
	// A namespace grows in many requests, each under the body limit; its
	// row stays bounded.
	big := map[string]any{}
	for i := range 900 {
		big[fmt.Sprintf("p%d", i)] = map[string]any{"title": "t", "type": "string", "description": strings.Repeat("d", 500)}
	}
	f.expect(http.StatusCreated, "POST", mdNS+"/n/objects", admin, map[string]any{"name": "o1", "properties": big})
	f.expect(http.StatusCreated, "POST", mdNS+"/n/objects", admin, map[string]any{"name": "o2", "properties": big})
	f.expect(http.StatusRequestEntityTooLarge, "POST", mdNS+"/n/objects", admin, map[string]any{"name": "o3", "properties": big}, "more than the maximum")
	if objs := f.expect(http.StatusOK, "GET", mdNS+"/n/objects", admin, nil).body["objects"].([]any); len(objs) != 2 {
		t.Fatalf("%d objects after a refused one", len(objs))
	}
	f.expect(http.StatusBadRequest, "POST", mdNS, admin, "not json")
	// Nothing was half-written.
	if got := names(f.expect(http.StatusOK, "GET", mdNS, admin, nil).body["namespaces"], "namespace"); fmt.Sprint(got) != "[n]" {
		t.Fatalf("namespaces after refused creates: %v", got)
	}
}

func TestMetadefSchemas(t *testing.T) {
	f := newFixture(t)
	for path, name := range map[string]string{
		"namespace": "namespace", "namespaces": "namespaces", "resource_type": "resource_type_association",
		"resource_types": "resource_type_associations", "object": "object", "objects": "objects",
		"property": "property", "properties": "properties", "tag": "tag", "tags": "tags",
	} {
		if got := f.expect(http.StatusOK, "GET", "/v2/schemas/metadefs/"+path, bob, nil).body["name"]; got != name {
			t.Errorf("schema %s is named %v, want %s", path, got, name)
		}
	}
	ns := f.expect(http.StatusOK, "GET", "/v2/schemas/metadefs/namespace", bob, nil).body
	if ns["additionalProperties"] != false || ns["definitions"].(map[string]any)["property"] == nil {
		t.Fatalf("namespace schema: %v", ns)
	}
	f.expect(http.StatusNotFound, "GET", "/v2/schemas/metadefs/nonsense", bob, nil)
}
