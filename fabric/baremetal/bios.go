package baremetal

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// A node's BIOS settings (1.40) are what Ironic's conductor cached from
// the machine's BIOS interface. No driver here reads or applies BIOS
// settings (the ipmi and redfish hardware types run no-bios, and no
// clean or deploy step touches the BIOS), so a node has none: the list
// is empty and a named setting is not found, as Ironic answers for a
// node whose BIOS interface has cached nothing.

// biosListSince is where the list took ?detail and ?fields (1.74).
const biosListSince = 74

func (s *Service) listBIOS(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for _, p := range []string{"detail", "fields"} {
		if q.Has(p) && versionOf(r.Context()) < biosListSince {
			return versionError(p, biosListSince)
		}
	}
	if q.Has("detail") {
		if _, ok := api.ToBool(q.Get("detail")); !ok {
			return badRequestf("Invalid value for detail: %q is not a boolean.", q.Get("detail"))
		}
		if q.Has("fields") {
			return badRequestf("Can not specify ?detail=True and fields in the same request.")
		}
	}
	if _, _, err := s.readNode(r); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"bios": []any{}})
	return nil
}

func (s *Service) showBIOS(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	return notFoundf("Node %s doesn't have a BIOS setting '%s'", n.ID, chi.URLParam(r, "setting"))
}
