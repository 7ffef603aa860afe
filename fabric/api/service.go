package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/store"
)

// Base is the configuration every HTTP service on the kit has: the store
// it proposes to, who checks tokens, and where it is reached.
type Base struct {
	Repl store.Replicated
	Auth Authenticator
	Log  *slog.Logger
	Now  func() time.Time
	// PublicURL is the base of links (default: the URL the client used);
	// Prefix is where the handler is mounted (default "/" + the service).
	PublicURL string
	Prefix    string
}

// Check is b with its defaults filled in, or an error naming service when
// it lacks a store or an authenticator.
func (b Base) Check(service string) (Base, error) {
	if b.Repl == nil {
		return b, errors.New(service + ": Config.Repl is required")
	}
	if b.Auth == nil {
		return b, errors.New(service + ": Config.Auth is required")
	}
	if b.Log == nil {
		b.Log = slog.Default()
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	if b.Prefix == "" {
		b.Prefix = "/" + service
	}
	return b, nil
}

// URL is where the service is reached: its base URL and mount prefix.
func (b Base) URL(r *http.Request) string {
	return BaseURL(r, b.PublicURL) + b.Prefix
}

// BaseURL is where this cloud is reached: publicURL when configured, or
// the scheme and host the client used (a proxy's X-Forwarded-Proto
// honoured), so that links work behind a TLS terminator.
func BaseURL(r *http.Request, publicURL string) string {
	if base := strings.TrimRight(publicURL, "/"); base != "" {
		return base
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// Router is a router serving routes, answering an unknown path 404 and a
// known path's unknown method 405 in the service's error format. The
// middlewares run before routing.
func (rs Routes) Router(routes []Route, middlewares ...func(http.Handler) http.Handler) chi.Router {
	r := chi.NewRouter()
	r.Use(middlewares...)
	rs.Mount(r, routes)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		rs.Errors(w, r, Problem{Status: http.StatusNotFound, Msg: "The resource could not be found."})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		rs.Errors(w, r, Problem{Status: http.StatusMethodNotAllowed, Msg: "The method is not allowed for the requested URL."})
	})
	return r
}
