package network

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
)

// The shapes every resource's handlers share: list, show, create (one or
// in bulk), update and delete, each declared per resource in its file.

// listing is how Neutron lists a collection: any attribute filters, and
// tenant_id or project_id filter on the project.
func (s *Service) listing(key string) api.Listing {
	byProject := func(v api.View, want []string) (bool, error) { return api.MatchValue(v["project_id"], want), nil }
	filters := map[string]api.Filter{"tenant_id": byProject, "project_id": byProject, "fixed_ips": byFixedIPs}
	for k, f := range tagFilters() {
		filters[k] = f
	}
	return api.Listing{Key: key, Word: neutronWording{}, Base: s.baseURL, Filters: filters, NeutronLinks: true}
}

// collection is a resource's collection as seen in the state read.
type collection[T any] func(tx *memdb.Txn) api.Collection[T]

// list answers a collection GET.
func list[T any](s *Service, c collection[T]) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		return c(tx).List(w, r, tx)
	}
}

// show answers the GET of one resource, {id}.
func show[T any](s *Service, c collection[T]) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		return c(tx).Show(w, r, tx, chi.URLParam(r, "id"))
	}
}

// creation is how a resource is created, one ({one: {...}}) or in bulk
// ({many: [...]}, all or nothing): each object is parsed into a request,
// the requests make one command, and each row it made is shown.
type creation[Req, Row any] struct {
	one, many string
	parse     func(tx *memdb.Txn, p *api.Principal, o api.Object) (Req, error)
	command   func(tx *memdb.Txn, reqs []Req) (typ string, body any)
	view      func(tx *memdb.Txn, p *api.Principal, row *Row) api.View
	// retry, when set, says a command the state machine refused was
	// built on a choice made from a state that has changed since (a
	// subnet range picked from a pool another subnet took meanwhile):
	// the request is read again from the new state and proposed again. A
	// refused command wrote nothing, so this is no retry of an unknown
	// outcome.
	retry func(reqs []Req, err error) bool
}

// createAttempts bounds the retries of a create whose choices raced.
const createAttempts = 4

// create answers a create POST.
func create[Req, Row any](s *Service, c creation[Req, Row]) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		p := principal(r)
		objs, bulk, err := bodies(r, c.one, c.many)
		if err != nil {
			return err
		}
		var rows []Row
		var tx *memdb.Txn
		for attempt := 1; ; attempt++ {
			if tx, err = s.cfg.Repl.Read(r.Context()); err != nil {
				return err
			}
			reqs := make([]Req, 0, len(objs))
			for _, o := range objs {
				rq, err := c.parse(tx, p, o)
				if err != nil {
					return err
				}
				reqs = append(reqs, rq)
			}
			typ, body := c.command(tx, reqs)
			if tx, err = api.Propose(r.Context(), s.cfg.Repl, typ, body, &rows); err == nil {
				break
			}
			if c.retry == nil || attempt == createAttempts || !api.Rejected(err) || !c.retry(reqs, err) {
				return err
			}
		}
		views := make([]api.View, 0, len(rows))
		for i := range rows {
			views = append(views, c.view(tx, p, &rows[i]))
		}
		if bulk {
			api.JSON(w, http.StatusCreated, map[string]any{c.many: views})
		} else {
			api.JSON(w, http.StatusCreated, map[string]any{c.one: views[0]})
		}
		return nil
	}
}

// writable finds a row the caller may change for action, answering 404
// for one it may not see and 403 for one it may only see.
type writable[T any] func(tx *memdb.Txn, p *api.Principal, id, action string) (*T, error)

// change is what an update works on: the state read, the row the caller
// may change and the attributes of the body.
type change[T any] struct {
	tx    *memdb.Txn
	row   *T
	in    *api.Input
	match ifMatch // the client's If-Match
}

// readChange reads an update (PUT) of the row {id}: find says whether the
// caller may change it; the body {key: {...}} may set only what spec lets
// a PUT set.
func readChange[T any](s *Service, r *http.Request, key string, spec attrSpec, action string, find writable[T]) (change[T], error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return change[T]{}, err
	}
	row, err := find(tx, principal(r), chi.URLParam(r, "id"), action)
	if err != nil {
		return change[T]{}, err
	}
	objs, _, err := bodies(r, key, "")
	if err != nil {
		return change[T]{}, err
	}
	if err := spec.check(objs[0], http.MethodPut); err != nil {
		return change[T]{}, err
	}
	match, err := readIfMatch(r)
	if err != nil {
		return change[T]{}, err
	}
	return change[T]{tx: tx, row: row, in: input(objs[0]), match: match}, nil
}

// remove answers a DELETE of the row {id}: find says whether the caller
// may change it, cmd deletes it.
func remove[T any](s *Service, w http.ResponseWriter, r *http.Request, cmd, action string, find writable[T]) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p, id := principal(r), chi.URLParam(r, "id")
	if _, err := find(tx, p, id, action); err != nil {
		return err
	}
	match, err := readIfMatch(r)
	if err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmd, idCmd{ifMatch: match, ID: id, Admin: p.IsAdmin(), Now: s.now()}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
