package volume

import (
	"net/http"
	"slices"
	"testing"
)

// GET /resource_filters (3.33) names each list's filters, one resource
// with ?resource=; before 3.33 there is no such resource. The volume
// list really filters by what it names.
func TestResourceFilters(t *testing.T) {
	f := newFixture(t)
	if r := f.call("GET", "resource_filters", alice, nil, "OpenStack-API-Version", "volume 3.32"); r.Code != http.StatusNotFound {
		t.Fatalf("at 3.32: %d %s", r.Code, r.Raw)
	}
	r := f.call("GET", "resource_filters", alice, nil, "OpenStack-API-Version", "volume 3.33")
	if r.Code != http.StatusOK {
		t.Fatalf("list: %d %s", r.Code, r.Raw)
	}
	byResource := map[string][]any{}
	for _, rf := range r.Body["resource_filters"].([]any) {
		m := rf.(map[string]any)
		byResource[m["resource"].(string)] = m["filters"].([]any)
	}
	for _, want := range []string{"volume", "snapshot", "backup", "attachment", "message", "group", "group_snapshot", "volume_type"} {
		if _, ok := byResource[want]; !ok {
			t.Errorf("no filters for %s: %s", want, r.Raw)
		}
	}
	one := f.call("GET", "resource_filters?resource=volume", alice, nil, "OpenStack-API-Version", "volume 3.33")
	list := one.Body["resource_filters"].([]any)
	if one.Code != http.StatusOK || len(list) != 1 || list[0].(map[string]any)["resource"] != "volume" {
		t.Fatalf("?resource=volume: %d %s", one.Code, one.Raw)
	}
	if !slices.Contains(list[0].(map[string]any)["filters"].([]any), any("size")) {
		t.Fatalf("volume filters %v lack size", list[0])
	}

	small := f.createVolume(alice, map[string]any{"size": 1, "name": "small"})["id"]
	big := f.createVolume(alice, map[string]any{"size": 2, "name": "big", "metadata": map[string]any{"k": "v"}})["id"]
	for query, want := range map[string]any{"name=small": small, "size=2": big, "metadata={'k':'v'}": big, "status=available&name=big": big} {
		got := f.call("GET", "volumes/detail?"+query, alice, nil, "OpenStack-API-Version", "volume 3.33")
		vols := got.Body["volumes"].([]any)
		if got.Code != http.StatusOK || len(vols) != 1 || vols[0].(map[string]any)["id"] != want {
			t.Errorf("volumes?%s: %d %s", query, got.Code, got.Raw)
		}
	}
}
