package image

import (
	"net/http"
	"testing"
)

// Filters are read and checked before any image is: a bad value is a 400
// even where nothing would be listed.
func TestListFiltersAreCheckedUpFront(t *testing.T) {
	f := newFixture(t)
	tests := map[string]string{
		"status":     "status=bogus",
		"status in":  "status=in:active,bogus",
		"size":       "size_min=-1",
		"time":       "created_at=gte:yesterday",
		"operator":   "updated_at=around:2026-11-24T12:00:00Z",
		"protected":  "protected=maybe",
		"visibility": "visibility=everyone",
	}
	for name, q := range tests {
		t.Run(name, func(t *testing.T) {
			f.t = t
			f.expect(http.StatusBadRequest, "GET", "/v2/images?"+q, alice, nil)
		})
	}
}

// A parameter that is no attribute filters on an extra property: images
// without it are not listed, and attributes that are not filtered on
// (the image's links, its tag list) list nothing.
func TestListPropertyFilters(t *testing.T) {
	f := newFixture(t)
	with := f.create(alice, map[string]any{"name": "with", "os_distro": "debian"})["id"].(string)
	f.create(alice, map[string]any{"name": "without"})
	tests := map[string]struct {
		query string
		want  []string
	}{
		"has it":         {"os_distro=debian", []string{with}},
		"other value":    {"os_distro=fedora", nil},
		"nobody has it":  {"hw_disk_bus=virtio", nil},
		"a link":         {"self=/v2/images/" + with, nil},
		"the tag list":   {"tags=x", nil},
		"no data, size":  {"size=0", nil},
		"name, no props": {"name=with&os_distro=debian", []string{with}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f.t = t
			got := ids(f.expect(http.StatusOK, "GET", "/v2/images?"+tc.query, alice, nil).body)
			if len(got) != len(tc.want) || len(got) == 1 && got[0] != tc.want[0] {
				t.Fatalf("%s: got %v, want %v", tc.query, got, tc.want)
			}
		})
	}
}
