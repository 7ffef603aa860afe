package compute

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/rackstack/rackstack/fabric/api"
)

// Image precache of an aggregate (2.81): POST /os-aggregates/{id}/images
// {"cache": [{"id": image}, ...]} asks every host of the aggregate to
// fetch those images ahead of the servers that will boot from them.
//
// Nova checks the request (its schema, the admin rule, the id an
// integer, no image twice, the aggregate found), answers 202 and leaves
// the work to each host's virt driver, whose cache_image is optional:
// a driver without it logs "does not support image pre-caching" and the
// request ends there, with nothing shown by the API. This cloud's node
// agents have no precache request to follow (they fetch an image when a
// server needs it), so this is Nova's answer for such a driver: the same
// checks, 202, and the refusal logged for each host.

const aggregateImagesRule = "compute:aggregates:images"

// cacheAggregateImages is POST /os-aggregates/{id}/images.
func (s *Service) cacheAggregateImages(w http.ResponseWriter, r *http.Request) error {
	if !atLeast(r, 81) {
		return notFound("The resource could not be found.")
	}
	top, err := readRaw(r)
	if err != nil {
		return err
	}
	if err := allowOnly(top, "cache"); err != nil {
		return err
	}
	raw, ok := top["cache"]
	if !ok {
		return badRequest("Invalid input for field/attribute cache. Value: %s. 'cache' is a required property", api.Text(top))
	}
	list, ok := raw.([]any)
	if !ok {
		return badField("cache", raw, "%s is not of type 'array'", api.Text(raw))
	}
	if len(list) == 0 {
		return badField("cache", raw, "[] is too short")
	}
	ids := make([]string, 0, len(list))
	for i, item := range list {
		field := fmt.Sprintf("cache/%d", i)
		o, ok := item.(map[string]any)
		if !ok {
			return badField(field, item, "%s is not of type 'object'", api.Text(item))
		}
		if err := allowOnly(o, "id"); err != nil {
			return err
		}
		v, ok := o["id"]
		if !ok {
			return badField(field, item, "'id' is a required property")
		}
		id, ok := v.(string)
		if !ok {
			return badField(field+"/id", v, "%s is not of type 'string'", api.Text(v))
		}
		if !api.UUIDLike(id) {
			return badField(field+"/id", v, "'%s' is not a 'uuid'", id)
		}
		ids = append(ids, id)
	}
	if err := requireAdmin(r, aggregateImagesRule); err != nil {
		return err
	}
	if _, err := aggregateID(r); err != nil {
		return err
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(ids) {
		return badRequest("Duplicate images in request")
	}
	a, _, err := s.readAggregate(r)
	if err != nil {
		return err
	}
	for _, h := range a.Hosts {
		s.log.Warn("compute: image pre-caching is not supported by this host's driver; ignoring request",
			"host", h, "aggregate", a.Seq, "images", ids)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
