package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// Extensions is an OpenStack service's extension list, served as
// GET …/extensions and …/extensions/{alias}. Each row is alias, name and
// description, shown by View; an alias not listed answers NotFound(alias)
// (each service words its 404 its own way).
type Extensions struct {
	List     [][3]string
	View     func(alias, name, desc string) map[string]any
	NotFound func(alias string) error
}

// ListAll answers the list of every extension.
func (x Extensions) ListAll(w http.ResponseWriter, r *http.Request) error {
	out := make([]any, 0, len(x.List))
	for _, e := range x.List {
		out = append(out, x.View(e[0], e[1], e[2]))
	}
	JSON(w, http.StatusOK, map[string]any{"extensions": out})
	return nil
}

// Show answers the extension of the path's {alias}.
func (x Extensions) Show(w http.ResponseWriter, r *http.Request) error {
	alias := chi.URLParam(r, "alias")
	for _, e := range x.List {
		if e[0] == alias {
			JSON(w, http.StatusOK, map[string]any{"extension": x.View(e[0], e[1], e[2])})
			return nil
		}
	}
	return x.NotFound(alias)
}
