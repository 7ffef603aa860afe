package cluster

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// api.JSONError writes the Keystone-style error body the cluster API uses.
// Handler serves the cluster API (see types.go) under /rackstack/v1. Join
// is authenticated by its token; everything else needs an admin token.
func (n *Node) Handler(auth api.Authenticator) http.Handler {
	r := chi.NewRouter()
	r.Post("/cluster/join", n.HandleJoin)
	r.Group(func(r chi.Router) {
		r.Use(api.RequireAuth(auth, api.JSONError))
		r.Use(api.RequireAdmin(api.JSONError))
		r.Get("/cluster/status", func(w http.ResponseWriter, r *http.Request) {
			st, err := n.Status()
			if err != nil {
				api.Fail(w, r, api.JSONError, err)
				return
			}
			api.JSON(w, http.StatusOK, st)
		})
		r.Post("/cluster/join-tokens", func(w http.ResponseWriter, r *http.Request) {
			var req JoinTokenRequest
			if err := api.Decode(r, &req); err != nil {
				api.Fail(w, r, api.JSONError, err)
				return
			}
			ttl, err := time.ParseDuration(req.TTL)
			if err != nil {
				api.Fail(w, r, api.JSONError, api.BadField("ttl", "not a duration like 1h or 30m: %q", req.TTL))
				return
			}
			resp, err := n.CreateJoinToken(r.Context(), ttl, req.Uses)
			if err != nil {
				api.Fail(w, r, api.JSONError, err)
				return
			}
			api.JSON(w, http.StatusCreated, resp)
		})
		r.Get("/nodes", func(w http.ResponseWriter, r *http.Request) {
			if _, err := n.Read(r.Context()); err != nil {
				api.Fail(w, r, api.JSONError, err)
				return
			}
			nodes, err := n.Nodes()
			if err != nil {
				api.Fail(w, r, api.JSONError, err)
				return
			}
			api.JSON(w, http.StatusOK, map[string]any{"nodes": nodes})
		})
		r.Get("/nodes/{name}", func(w http.ResponseWriter, r *http.Request) {
			node, err := n.NodeByName(chi.URLParam(r, "name"))
			if err != nil {
				api.Fail(w, r, api.JSONError, err)
				return
			}
			api.JSON(w, http.StatusOK, map[string]any{"node": node})
		})
	})
	return r
}
