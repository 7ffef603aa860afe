package cluster

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// Handler serves the cluster API (see clusterapi) under /rackstack/v1,
// with the Keystone-style error body. Join is authenticated by its join
// token; everything else needs an admin token.
func (n *Node) Handler(auth api.Authenticator) http.Handler {
	r := chi.NewRouter()
	r.Post("/cluster/join", n.HandleJoin)
	api.Routes{Auth: auth, Errors: api.JSONError}.Mount(r, []api.Route{
		{Method: http.MethodGet, Path: "/cluster/status", Access: api.Admin, Rule: "cluster:status", Handle: n.getStatus},
		{Method: http.MethodPost, Path: "/cluster/join-tokens", Access: api.Admin, Rule: "cluster:join_token:create", Handle: n.postJoinToken},
		{Method: http.MethodGet, Path: "/cluster/join-tokens", Access: api.Admin, Rule: "cluster:join_token:list", Handle: n.listJoinTokens},
		{Method: http.MethodDelete, Path: "/cluster/join-tokens/{id}", Access: api.Admin, Rule: "cluster:join_token:revoke", Handle: n.deleteJoinToken},
		{Method: http.MethodGet, Path: "/nodes", Access: api.Admin, Rule: "cluster:node:list", Handle: n.listNodes},
		{Method: http.MethodGet, Path: "/nodes/{name}", Access: api.Admin, Rule: "cluster:node:show", Handle: n.showNode},
	})
	return r
}

func (n *Node) getStatus(w http.ResponseWriter, _ *http.Request) error {
	st, err := n.Status()
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, st)
	return nil
}

func (n *Node) postJoinToken(w http.ResponseWriter, r *http.Request) error {
	var req JoinTokenRequest
	if err := api.Decode(r, &req); err != nil {
		return err
	}
	ttl, err := time.ParseDuration(req.TTL)
	if err != nil {
		return api.BadField("ttl", "not a duration like 1h or 30m: %q", req.TTL)
	}
	uses := 1
	if req.Uses != nil {
		uses = *req.Uses
	}
	resp, err := n.CreateJoinToken(r.Context(), ttl, uses)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, resp)
	return nil
}

func (n *Node) listJoinTokens(w http.ResponseWriter, r *http.Request) error {
	if _, err := n.Read(r.Context()); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"join_tokens": n.JoinTokens()})
	return nil
}

func (n *Node) deleteJoinToken(w http.ResponseWriter, r *http.Request) error {
	if err := n.RevokeJoinToken(r.Context(), chi.URLParam(r, "id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (n *Node) listNodes(w http.ResponseWriter, r *http.Request) error {
	if _, err := n.Read(r.Context()); err != nil {
		return err
	}
	nodes, err := n.Nodes()
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"nodes": nodes})
	return nil
}

func (n *Node) showNode(w http.ResponseWriter, r *http.Request) error {
	node, err := n.NodeByName(chi.URLParam(r, "name"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"node": node})
	return nil
}
