package volume

import (
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Volume type access (admin): the projects a private type is given to,
// which see it and make volumes of it.

func (s *Service) listTypeAccess(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if t.Public {
		return badRequest("Invalid volume type: Access list not available for public volume types.")
	}
	out := []any{}
	for _, p := range t.Projects {
		out = append(out, map[string]any{"volume_type_id": t.ID, "project_id": p})
	}
	api.JSON(w, http.StatusOK, map[string]any{"volume_type_access": out})
	return nil
}

// typeAction serves addProjectAccess and removeProjectAccess.
func (s *Service) typeAction(w http.ResponseWriter, r *http.Request) error {
	action, arg, err := readAction(r)
	if err != nil {
		return err
	}
	if action != "addProjectAccess" && action != "removeProjectAccess" {
		return badRequest("There is no such action: %s", action)
	}
	in, err := actionArg(arg, action)
	if err != nil {
		return err
	}
	project := in.Required("project", 255)
	if in.Err != nil {
		return in.Err
	}
	// Cinder's _check_body: a project that cannot be an id is a typo, not
	// a project to give the type to (or to look for in its list).
	if !api.UUIDLike(project) {
		return badRequest("Bad project format: project is not in proper format (%s)", project)
	}
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if _, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
		if t.Public {
			return badRequest("Invalid volume type: Type access modification is not applicable to public volume type.")
		}
		at := slices.Index(t.Projects, project)
		switch {
		case action == "addProjectAccess" && at >= 0:
			return store.Fault(store.KindConflict, "conflictingRequest", "Volume type access for %s / %s combination already exists.", t.ID, project)
		case action == "addProjectAccess":
			t.Projects = append(t.Projects, project)
		case at < 0:
			return store.Fault(store.KindNotFound, "itemNotFound", "Volume type access not found for %s / %s combination.", t.ID, project)
		default:
			t.Projects = slices.Delete(t.Projects, at, at+1)
		}
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
