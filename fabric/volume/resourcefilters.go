package volume

import (
	"net/http"
	"slices"

	"github.com/rackstack/rackstack/fabric/api"
)

// resourceFilters are the filters each list takes, by Cinder's resource
// name, as GET /resource_filters (3.33) shows them: Cinder's defaults
// (its resource_filters.json) where this cloud's list honours them, so
// a client asks only for what a list really filters by.
var resourceFilters = []struct {
	resource string
	filters  []string
}{
	{"attachment", []string{"volume_id", "status", "instance_id"}},
	{"backup", []string{"name", "status", "volume_id"}},
	{"group", []string{}},
	{"group_snapshot", []string{"status", "group_id"}},
	{"message", []string{"resource_uuid", "resource_type", "event_id", "request_id", "message_level"}},
	{"snapshot", []string{"name", "status", "volume_id", "metadata"}},
	{"volume", []string{"name", "status", "metadata", "bootable", "migration_status", "availability_zone", "group_id", "size", "created_at", "updated_at"}},
	{"volume_type", []string{"is_public"}},
}

// listResourceFilters answers GET /resource_filters, narrowed to one
// resource by ?resource= (an unknown one has none, as in Cinder).
func (s *Service) listResourceFilters(w http.ResponseWriter, r *http.Request) error {
	if !atLeast(r, 33) {
		return &api.Error{Status: http.StatusNotFound, Msg: "The resource could not be found: resource filters need microversion 3.33 or later."}
	}
	want := r.URL.Query()["resource"]
	out := []any{}
	for _, rf := range resourceFilters {
		if len(want) > 0 && !slices.Contains(want, rf.resource) {
			continue
		}
		out = append(out, map[string]any{"resource": rf.resource, "filters": rf.filters})
	}
	api.JSON(w, http.StatusOK, map[string]any{"resource_filters": out})
	return nil
}
