package identity

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// What every resource kind shares: the collection listing in
// Keystone's shape, and the put and delete commands.

// listing is Keystone's collection listing of key: the kit's filters
// (exact attributes, "name__contains" and the other string operators),
// fields, sorting and paging.
func (s *Service) listing(key string) api.Listing {
	return api.Listing{Key: key, Word: wording{}, Base: func(r *http.Request) string { return s.baseURL(r) + "/identity" },
		// Keystone filters password expiry with operators ("lt:<time>")
		// this service does not keep; the parameter is ignored.
		Reserved: []string{"password_expires_at"}}
}

// writeList answers a collection GET: Keystone's body carries "links"
// (self, previous, next) rather than the kit's "<key>_links".
func (s *Service) writeList(w http.ResponseWriter, r *http.Request, l api.Listing, views []api.View) error {
	body, err := l.Page(r, views)
	if err != nil {
		return err
	}
	links := s.links(r)
	if pages, ok := body[l.Key+"_links"].([]any); ok {
		for _, p := range pages {
			if ln, ok := p.(map[string]any); ok {
				links[ln["rel"].(string)] = ln["href"]
			}
		}
		delete(body, l.Key+"_links")
	}
	body["links"] = links
	api.JSON(w, http.StatusOK, body)
	return nil
}

// notFound is Keystone's 404 for a kind of resource.
func notFoundOf(kind string) func(id string) error {
	return func(id string) error { return notFoundErr(kind, id) }
}

func notFoundErr(kind, id string) error {
	return api.Errorf(http.StatusNotFound, "Could not find %s: %s.", kind, id)
}

// errForbidden is Keystone's 403.
var errForbidden = &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action."}

// put proposes row into table, refusing an existing id when create. An
// update may take access away (a user or project disabled, a credential
// replaced), so it waits like a revocation; a create grants only.
func (s *Service) put(r *http.Request, table string, create bool, row any) error {
	raw, err := json.Marshal(row)
	if err != nil {
		return err
	}
	c := putCmd{Table: table, Create: create, Row: raw, At: s.cfg.Now().UTC()}
	if !create {
		return s.narrow(r.Context(), cmdPut, c)
	}
	_, err = api.Propose(r.Context(), s.cfg.Repl, cmdPut, c, nil)
	return err
}

// remove proposes the deletion of a row with what depends on it; a
// deletion takes access away, so it waits like a revocation.
func (s *Service) remove(r *http.Request, table, id string) error {
	return s.narrow(r.Context(), cmdDelete, deleteCmd{Table: table, ID: id, At: s.cfg.Now().UTC()})
}

// deleteRow is DELETE of /v3/<table>/{id}.
func (s *Service) deleteRow(table string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.remove(r, table, chi.URLParam(r, "id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// The handlers of a resource kind, built from its collection: list and
// show are the collection's, create and update read the request's
// attributes with the kind's read function (old is nil when creating) and
// propose the row.

type collection[T any] func(r *http.Request) api.Collection[T]

type readFunc[T any] func(r *http.Request, in *api.Input, old *T) (*T, error)

func list[T any](s *Service, coll collection[T]) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		c := coll(r)
		return s.writeList(w, r, c.Listing, c.Views(tx, api.PrincipalFrom(r.Context())))
	}
}

func show[T any](s *Service, coll collection[T]) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		return coll(r).Show(w, r, tx, chi.URLParam(r, "id"))
	}
}

func create[T any](s *Service, coll collection[T], read readFunc[T]) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c := coll(r)
		in, err := body(r, c.One)
		if err != nil {
			return err
		}
		row, err := read(r, in, nil)
		if err != nil {
			return err
		}
		if err := s.put(r, c.Table, true, row); err != nil {
			return err
		}
		api.JSON(w, http.StatusCreated, map[string]any{c.One: c.View(nil, api.PrincipalFrom(r.Context()), row)})
		return nil
	}
}

func update[T any](s *Service, coll collection[T], read readFunc[T]) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		c, p := coll(r), api.PrincipalFrom(r.Context())
		old, err := c.Get(tx, p, chi.URLParam(r, "id"))
		if err != nil {
			return err
		}
		in, err := body(r, c.One)
		if err != nil {
			return err
		}
		row, err := read(r, in, old)
		if err != nil {
			return err
		}
		if err := s.put(r, c.Table, false, row); err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{c.One: c.View(nil, p, row)})
		return nil
	}
}
