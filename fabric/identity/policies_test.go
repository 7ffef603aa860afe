package identity

import (
	"strings"
	"testing"
)

func TestPolicyDocuments(t *testing.T) {
	f := newFixture(t)
	blob := `{"compute:get": ""}`
	id := f.mk("/policies", "policy", map[string]any{"type": "application/json", "blob": blob, "project_id": "p1"})
	code, _, body := f.call("GET", "/policies/"+id, f.admin, nil)
	p, _ := body["policy"].(map[string]any)
	if code != 200 || p["blob"] != blob || p["type"] != "application/json" || p["project_id"] != "p1" || !strings.HasSuffix(p["links"].(map[string]any)["self"].(string), "/v3/policies/"+id) {
		t.Fatalf("show: %d %v", code, body)
	}
	if code, _, body := f.call("PATCH", "/policies/"+id, f.admin, map[string]any{"policy": map[string]any{"type": "text/yaml"}}); code != 200 || body["policy"].(map[string]any)["blob"] != blob {
		t.Fatalf("update: %d %v", code, body)
	}
	f.mk("/policies", "policy", map[string]any{"type": "application/json", "blob": "{}"})
	_, _, body = f.call("GET", "/policies?type=text/yaml", f.admin, nil)
	if l := body["policies"].([]any); len(l) != 1 || l[0].(map[string]any)["id"] != id {
		t.Fatalf("list ?type=text/yaml: %v", body)
	}
	for _, c := range []struct {
		fields map[string]any
		field  string
	}{
		{map[string]any{"blob": "{}"}, "type"},
		{map[string]any{"type": "application/json"}, "blob"},
		{map[string]any{"type": "application/json", "blob": strings.Repeat("x", maxPolicyBlob+1)}, "blob"},
	} {
		code, _, body := f.call("POST", "/policies", f.admin, map[string]any{"policy": c.fields})
		if msg, _ := body["error"].(map[string]any)["message"].(string); code != 400 || !strings.Contains(msg, c.field) {
			t.Errorf("%v: %d %v", c.fields, code, body)
		}
	}
	_, _, tok := f.tenant("pp", "pat", "member")
	if code, _, _ := f.call("GET", "/policies", tok, nil); code != 403 {
		t.Fatalf("a member lists policies: %d", code)
	}
	if code, _, _ := f.call("DELETE", "/policies/"+id, f.admin, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code, _, _ := f.call("GET", "/policies/"+id, f.admin, nil); code != 404 {
		t.Fatalf("show a deleted policy: %d", code)
	}
}
