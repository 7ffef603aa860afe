package compute

import (
	"testing"
)

// 2.81's image precache request: Nova's checks in Nova's order, then 202
// (the answer of a Nova whose driver does not pre-cache); before 2.81
// the route is unknown.
func TestAggregateImagesPrecache(t *testing.T) {
	f := newFixture(t)
	id := f.aggregate("a1", "")
	f.aggAction(id, map[string]any{"add_host": map[string]any{"host": "n1"}}, 200, "")
	path := "/v2.1/os-aggregates/" + id + "/images"
	one := map[string]any{"cache": []any{map[string]any{"id": img1}}}
	f.expect("POST", path, admin, "2.80", one, 404, "itemNotFound")
	f.expect("POST", path, admin, "2.81", one, 202, "")
	f.expect("POST", path, admin, "latest", map[string]any{"cache": []any{map[string]any{"id": img1}, map[string]any{"id": imgBig}}}, 202, "")
	// The body, as Nova's schema reads it.
	f.expect("POST", path, admin, "2.81", map[string]any{}, 400, "badRequest", "'cache' is a required property")
	f.expect("POST", path, admin, "2.81", map[string]any{"cache": []any{}}, 400, "badRequest", "cache", "too short")
	f.expect("POST", path, admin, "2.81", map[string]any{"cache": "x"}, 400, "badRequest", "cache", "not of type 'array'")
	f.expect("POST", path, admin, "2.81", map[string]any{"cache": []any{map[string]any{"id": "nope"}}}, 400, "badRequest", "cache/0/id", "'nope' is not a 'uuid'")
	f.expect("POST", path, admin, "2.81", map[string]any{"cache": []any{map[string]any{}}}, 400, "badRequest", "cache/0", "'id' is a required property")
	f.expect("POST", path, admin, "2.81", map[string]any{"cache": []any{map[string]any{"id": img1, "x": 1}}}, 400, "badRequest", "'x' was unexpected")
	f.expect("POST", path, admin, "2.81", map[string]any{"cache": []any{map[string]any{"id": img1}}, "y": 1}, 400, "badRequest", "'y' was unexpected")
	// Admin only; then the id, duplicates and the aggregate.
	f.expect("POST", path, alice, "2.81", one, 403, "forbidden", aggregateImagesRule)
	f.expect("POST", "/v2.1/os-aggregates/x/images", admin, "2.81", one, 400, "badRequest", "id must be an integer")
	f.expect("POST", path, admin, "2.81", map[string]any{"cache": []any{map[string]any{"id": img1}, map[string]any{"id": img1}}}, 400, "badRequest", "Duplicate images in request")
	f.expect("POST", "/v2.1/os-aggregates/999/images", admin, "2.81", one, 404, "itemNotFound")
}
