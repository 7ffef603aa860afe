package volume

import (
	"net/http"
	"strings"
	"testing"
)

func (f *fixture) createType(body map[string]any) string {
	f.t.Helper()
	return f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": body}).Body["volume_type"].(map[string]any)["id"].(string)
}

// A private type is seen and used only by the projects given access (and
// admins); access is added once and removed once; public types have no
// access list.
func TestVolumeTypeAccess(t *testing.T) {
	f := newFixture(t)
	priv := f.createType(map[string]any{"name": "gold", "os-volume-type-access:is_public": false})
	pub := f.createType(map[string]any{"name": "silver"})
	f.expect(http.StatusNotFound, "GET", "types/"+priv, alice, nil)
	f.expect(http.StatusNotFound, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "volume_type": priv}})
	f.expect(http.StatusNotFound, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "gold"}})
	add := map[string]any{"addProjectAccess": map[string]any{"project": projA}}
	f.expect(http.StatusForbidden, "POST", "types/"+priv+"/action", alice, add)
	f.expect(http.StatusAccepted, "POST", "types/"+priv+"/action", admin, add)
	f.expect(http.StatusConflict, "POST", "types/"+priv+"/action", admin, add)
	f.expect(http.StatusBadRequest, "POST", "types/"+pub+"/action", admin, add)
	access := f.expect(http.StatusOK, "GET", "types/"+priv+"/os-volume-type-access", admin, nil).Body["volume_type_access"].([]any)
	if len(access) != 1 || access[0].(map[string]any)["project_id"] != projA || access[0].(map[string]any)["volume_type_id"] != priv {
		t.Fatalf("access %v", access)
	}
	f.expect(http.StatusOK, "GET", "types/"+priv, alice, nil)
	if v := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "gold"}); v["volume_type"] != "gold" {
		t.Fatalf("volume %v", v)
	}
	f.expect(http.StatusNotFound, "GET", "types/"+priv, bob, nil)
	types := f.expect(http.StatusOK, "GET", "types", alice, nil).Body["volume_types"].([]any)
	if len(types) != 3 {
		t.Fatalf("alice lists %v", types)
	}
	remove := map[string]any{"removeProjectAccess": map[string]any{"project": projA}}
	f.expect(http.StatusAccepted, "POST", "types/"+priv+"/action", admin, remove)
	f.expect(http.StatusNotFound, "POST", "types/"+priv+"/action", admin, remove)
	f.expect(http.StatusNotFound, "GET", "types/"+priv, alice, nil)
	f.expect(http.StatusBadRequest, "POST", "types/"+priv+"/action", admin, map[string]any{"addProjectAccess": map[string]any{}})
	// A project that cannot be an id is refused, as Cinder refuses it,
	// and nothing is added; any id-like one is taken (Cinder does not ask
	// Keystone either).
	for _, action := range []string{"addProjectAccess", "removeProjectAccess"} {
		r := f.expect(http.StatusBadRequest, "POST", "types/"+priv+"/action", admin, map[string]any{action: map[string]any{"project": "BAD_PROJECT_ID"}})
		if !strings.Contains(string(r.Raw), "BAD_PROJECT_ID") {
			t.Fatalf("%s of a bad project: %s", action, r.Raw)
		}
	}
	if access := f.expect(http.StatusOK, "GET", "types/"+priv+"/os-volume-type-access", admin, nil).Body["volume_type_access"].([]any); len(access) != 0 {
		t.Fatalf("access after refused adds %v", access)
	}
	noSuch := map[string]any{"project": "00000000-0000-0000-0000-000000000000"}
	f.expect(http.StatusAccepted, "POST", "types/"+priv+"/action", admin, map[string]any{"addProjectAccess": noSuch})
	f.expect(http.StatusAccepted, "POST", "types/"+priv+"/action", admin, map[string]any{"removeProjectAccess": noSuch})
}

// Retype swaps types of the same storage policy at once; between
// policies it is refused, and the volume keeps its type.
func TestRetype(t *testing.T) {
	f := newFixture(t)
	f.createType(map[string]any{"name": "a"})
	f.createType(map[string]any{"name": "b"})
	f.createType(map[string]any{"name": "rep", "extra_specs": map[string]any{"rackstack:policy": "replicated:3"}})
	vol := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "a"})["id"].(string)
	retype := func(to string) map[string]any {
		return map[string]any{"os-retype": map[string]any{"new_type": to, "migration_policy": "on-demand"}}
	}
	f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice, retype("b"))
	if got := f.showVolume(alice, vol)["volume_type"]; got != "b" {
		t.Fatalf("after retype: %v", got)
	}
	f.expect(http.StatusBadRequest, "POST", "volumes/"+vol+"/action", alice, retype("b"))
	f.expect(http.StatusBadRequest, "POST", "volumes/"+vol+"/action", alice, retype("rep"))
	f.expect(http.StatusNotFound, "POST", "volumes/"+vol+"/action", alice, retype("nope"))
	f.expect(http.StatusBadRequest, "POST", "volumes/"+vol+"/action", alice, map[string]any{"os-retype": map[string]any{"new_type": "a", "migration_policy": "sometimes"}})
	if got := f.showVolume(alice, vol)["volume_type"]; got != "b" {
		t.Fatalf("after refusals: %v", got)
	}
}

// Extra specs of null are refused, not answered as null.
func TestNullExtraSpecs(t *testing.T) {
	f := newFixture(t)
	typ := f.createType(map[string]any{"name": "t"})
	f.expect(http.StatusBadRequest, "POST", "types/"+typ+"/extra_specs", admin, map[string]any{"extra_specs": nil})
}
