package volume

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func (f *fixture) typeWith(name string, specs map[string]any) string {
	f.t.Helper()
	return f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": name, "extra_specs": specs}}).Body["volume_type"].(map[string]any)["id"].(string)
}

// 3.50: a type whose multiattach spec asks for volumes on several
// servers is refused clearly (at create and retype), not served as a
// volume that attaches once.
func TestMultiattachTypeRefused(t *testing.T) {
	f := newFixture(t)
	f.typeWith("shared", map[string]any{"multiattach": "<is> True"})
	f.typeWith("single", map[string]any{"multiattach": "<is> False"})
	r := f.call("POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "shared"}}, "OpenStack-API-Version", "volume 3.50")
	if r.Code != http.StatusBadRequest || !strings.Contains(string(r.Raw), "multiattach") {
		t.Fatalf("multiattach type: %d %s", r.Code, r.Raw)
	}
	id := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "single"})["id"].(string)
	r = f.call("POST", "volumes/"+id+"/action", alice, map[string]any{"os-retype": map[string]any{"new_type": "shared"}}, "OpenStack-API-Version", "volume 3.50")
	if r.Code != http.StatusBadRequest || !strings.Contains(string(r.Raw), "multiattach") {
		t.Fatalf("retype to a multiattach type: %d %s", r.Code, r.Raw)
	}
}

// 3.52: RESKEY:availability_zones bounds where a type's volumes go.
func TestTypeAvailabilityZones(t *testing.T) {
	f := newFixture(t)
	f.typeWith("elsewhere", map[string]any{"RESKEY:availability_zones": "az1, az2"})
	f.typeWith("here", map[string]any{"RESKEY:availability_zones": "az1,nova"})
	r := f.call("POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "elsewhere"}})
	if r.Code != http.StatusBadRequest || !strings.Contains(string(r.Raw), "availability zone nova") {
		t.Fatalf("type outside the zone: %d %s", r.Code, r.Raw)
	}
	f.createVolume(alice, map[string]any{"size": 1, "volume_type": "here"})
}

// 3.52: the type list filters by extra_specs (a non-admin by the
// user-visible ones only); before 3.52 the parameter is ignored.
func TestTypeListExtraSpecsFilter(t *testing.T) {
	f := newFixture(t)
	f.typeWith("a", map[string]any{"RESKEY:availability_zones": "nova", "k": "1"})
	f.typeWith("b", map[string]any{"RESKEY:availability_zones": "nova", "k": "2"})
	f.typeWith("c", map[string]any{"k": "1"})
	names := func(token, version, filter string) (int, []string) {
		t.Helper()
		r := f.call("GET", "types?extra_specs="+url.QueryEscape(filter), token, nil, "OpenStack-API-Version", "volume "+version)
		if r.Code != http.StatusOK {
			return r.Code, nil
		}
		var out []string
		for _, v := range r.Body["volume_types"].([]any) {
			out = append(out, v.(map[string]any)["name"].(string))
		}
		slices.Sort(out)
		return r.Code, out
	}
	for _, tc := range []struct {
		token, version, filter string
		code                   int
		want                   []string
	}{
		{admin, "3.52", `{"k":"1"}`, 200, []string{"a", "c"}},
		{admin, "3.52", `{'RESKEY:availability_zones':'nova','k':'2'}`, 200, []string{"b"}},
		{alice, "3.52", `{"RESKEY:availability_zones":"nova"}`, 200, []string{"a", "b"}},
		{alice, "3.52", `{"k":"1"}`, 400, nil},
		{admin, "3.52", `not json`, 400, nil},
		{admin, "3.51", `{"k":"1"}`, 200, []string{"__DEFAULT__", "a", "b", "c"}},
	} {
		code, got := names(tc.token, tc.version, tc.filter)
		if code != tc.code || !slices.Equal(got, tc.want) {
			t.Errorf("%s at %s by %s: %d %v, want %d %v", tc.filter, tc.version, tc.token, code, got, tc.code, tc.want)
		}
	}
}

// 3.51: a backup names its availability zone; before, the field is
// refused as Cinder's schema refuses it.
func TestBackupAvailabilityZone(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	for _, tc := range []struct {
		version, az string
		code        int
	}{
		{"3.50", "nova", 400},
		{"3.51", "elsewhere", 400},
		{"3.51", "nova", 202},
	} {
		r := f.call("POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": vol, "availability_zone": tc.az}}, "OpenStack-API-Version", "volume "+tc.version)
		if r.Code != tc.code || (tc.code == 400 && !strings.Contains(string(r.Raw), "availability_zone")) {
			t.Errorf("%s at %s: %d %s", tc.az, tc.version, r.Code, r.Raw)
		}
	}
}
