package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// HandlerFunc is a handler that returns its error instead of writing it:
// the service's ErrorWriter writes it, in one place.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Access is who may call a route, checked before its handler runs. Finer
// checks (whose project a resource is in) stay in the handler.
type Access int

const (
	// Public routes need no token (version discovery, token issue).
	Public Access = iota
	// Authenticated routes need a valid token of any scope.
	Authenticated
	// Reader routes need the reader role (or better) on the token's
	// project or on the system, or admin.
	Reader
	// Member routes need the member role on the token's project, or admin
	// on a project. They act in the token's project, so a system-scoped
	// token, which has none, is refused (as OpenStack's project-scoped
	// policies refuse it).
	Member
	// Admin routes need the admin role, on a project or on the system.
	Admin
)

func (a Access) allows(p *Principal) bool {
	switch a {
	case Public, Authenticated:
		return true
	case Reader:
		return p.IsAdmin() || ((p.ProjectID != "" || p.System) && p.HasRole("reader"))
	case Member:
		return !p.System && (p.IsAdmin() || (p.ProjectID != "" && p.HasRole("member")))
	case Admin:
		return p.IsAdmin()
	}
	return false
}

// Route is one endpoint, declared as data so that a service's policy reads
// as one table. Rule names the policy rule a 403 cites.
type Route struct {
	Method string
	Path   string
	Access Access
	Rule   string
	Handle HandlerFunc
	// Body, when set, is the schema the request's body must fit (nil
	// for this request, e.g. below the microversion that brought it):
	// a body that does not is refused with a 400 naming the field
	// before Handle runs, after the caller's access is checked.
	Body func(r *http.Request) *Schema
}

// Routes mounts a service's routes with its authentication and error
// format.
type Routes struct {
	Auth   Authenticator
	Errors ErrorWriter
	// Denied is the service's 403 for a rule the caller does not pass
	// (Neutron's PolicyNotAuthorized, Nova's "Policy doesn't allow").
	Denied func(rule string) error
	// Word words the 400s of bodies that do not fit a Route's Body
	// (default: jsonschema's words).
	Word Wording
	// Service is the catalog type the routes serve, which application
	// credentials' access rules name; tokens restricted by access rules
	// are refused by routes without one.
	Service string
}

// Mount adds routes to r: token-checked unless Public, role-checked by
// Access, errors written with the service's ErrorWriter.
func (rs Routes) Mount(r chi.Router, routes []Route) {
	for _, rt := range routes {
		h := rs.Handler(rs.checked(rt))
		if rt.Access != Public {
			h = rs.guard(rt, h)
		}
		r.Method(rt.Method, rt.Path, h)
	}
}

// Handler adapts h to net/http, writing its error in the service's format.
func (rs Routes) Handler(h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			Fail(w, r, rs.Errors, err)
		}
	})
}

func (rs Routes) guard(rt Route, next http.Handler) http.Handler {
	authed := RequireAuthFor(rs.Auth, rs.Errors, rs.Service)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.Access.allows(PrincipalFrom(r.Context())) {
			err := error(&Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: " + rt.Rule + "."})
			if rs.Denied != nil {
				err = rs.Denied(rt.Rule)
			}
			Fail(w, r, rs.Errors, err)
			return
		}
		next.ServeHTTP(w, r)
	}))
	return authed
}

// checked is rt's handler behind its Body schema.
func (rs Routes) checked(rt Route) HandlerFunc {
	if rt.Body == nil {
		return rt.Handle
	}
	word := rs.Word
	if word == nil {
		word = schemaWording{}
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		if s := rt.Body(r); s != nil {
			if err := validateBody(r, s, word); err != nil {
				return err
			}
		}
		return rt.Handle(w, r)
	}
}
