package volume

import (
	"net/http"
	"testing"
)

// 3.62: an admin sets a project's default volume type; that project's
// volumes made without a type are of it, other projects' are not; a
// project reads its own default only; a type that is a default is not
// deleted; before 3.62 the resource does not exist.
func TestProjectDefaultTypes362(t *testing.T) {
	f := newFixture(t)
	typ := f.createType(map[string]any{"name": "fast"})
	path := "/v3/default-types/" + projA
	set := map[string]any{"default_type": map[string]any{"volume_type": "fast"}}
	f.at(61, http.StatusNotFound, "PUT", path, admin, set)
	f.at(62, http.StatusForbidden, "PUT", path, alice, set)
	f.badFieldAs(admin, 62, "PUT", path, map[string]any{"default_type": map[string]any{"volume_type": ""}}, "volume_type")
	f.badFieldAs(admin, 62, "PUT", path, map[string]any{"default_type": map[string]any{"volume_type": "fast", "x": 1}}, "x")
	f.at(62, http.StatusNotFound, "PUT", path, admin, map[string]any{"default_type": map[string]any{"volume_type": "no-such-type"}})
	got := f.at(62, http.StatusOK, "PUT", path, admin, set)["default_type"].(map[string]any)
	if got["project_id"] != projA || got["volume_type_id"] != typ {
		t.Fatalf("set %v", got)
	}
	if got := f.at(62, http.StatusOK, "GET", path, alice, nil)["default_type"].(map[string]any); got["volume_type_id"] != typ {
		t.Fatalf("alice reads %v", got)
	}
	f.at(62, http.StatusForbidden, "GET", path, bob, nil)
	f.at(62, http.StatusNotFound, "GET", "/v3/default-types/"+projB, bob, nil)
	f.at(62, http.StatusForbidden, "GET", "/v3/default-types", alice, nil)
	if l := f.at(62, http.StatusOK, "GET", "/v3/default-types", admin, nil)["default_types"].([]any); len(l) != 1 {
		t.Fatalf("list %v", l)
	}
	// Volumes without a type: alice's are of her default, bob's of the
	// cloud's; types/default says the same.
	if v := f.createVolume(alice, map[string]any{"size": 1}); v["volume_type"] != "fast" {
		t.Fatalf("alice's volume %v", v["volume_type"])
	}
	if v := f.createVolume(bob, map[string]any{"size": 1}); v["volume_type"] != "__DEFAULT__" {
		t.Fatalf("bob's volume %v", v["volume_type"])
	}
	if d := f.at(3, http.StatusOK, "GET", "types/default", alice, nil)["volume_type"].(map[string]any); d["id"] != typ {
		t.Fatalf("alice's types/default %v", d)
	}
	f.at(62, http.StatusBadRequest, "DELETE", "types/"+typ, admin, nil)
	f.at(62, http.StatusForbidden, "DELETE", path, alice, nil)
	f.at(62, http.StatusNoContent, "DELETE", path, admin, nil)
	f.at(62, http.StatusNotFound, "DELETE", path, admin, nil)
	f.at(62, http.StatusNotFound, "GET", path, alice, nil)
	if v := f.createVolume(alice, map[string]any{"size": 1}); v["volume_type"] != "__DEFAULT__" {
		t.Fatalf("alice's volume after the unset %v", v["volume_type"])
	}
}
