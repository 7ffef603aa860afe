package identity

import (
	"net/http"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
)

// Policies are Keystone's /v3/policies: opaque policy documents (a blob
// of a MIME type) that Keystone stores for other services to fetch and
// never reads itself. Rackstack's services enforce the policy in their
// code (fabric/api's route Access), so these are stored and served, as
// Keystone does, and enforced by nothing here either.

// Policy is one stored policy document.
type Policy struct {
	ID        string         `json:"id"`
	Type      string         `json:"type"`
	Blob      string         `json:"blob"`
	ProjectID string         `json:"project_id,omitempty"`
	UserID    string         `json:"user_id,omitempty"`
	Extra     map[string]any `json:"extra,omitempty"`
}

// maxPolicyBlob bounds a document (Keystone's column is a TEXT, 64 KiB).
const maxPolicyBlob = 65535

func (s *Service) policies(r *http.Request) api.Collection[Policy] {
	return api.Collection[Policy]{
		Table: tPolicies, One: "policy", NotFound: notFoundOf("policy"), Listing: s.listing("policies"),
		Visible: func(*api.Principal, *Policy) bool { return true },
		View:    func(_ *memdb.Txn, _ *api.Principal, p *Policy) api.View { return s.policyView(r, p) },
	}
}

func (s *Service) policyView(r *http.Request, p *Policy) api.View {
	v := api.View{"id": p.ID, "type": p.Type, "blob": p.Blob, "links": s.self(r, "policies", p.ID)}
	if p.ProjectID != "" {
		v["project_id"] = p.ProjectID
	}
	if p.UserID != "" {
		v["user_id"] = p.UserID
	}
	return withExtras(p.Extra, v)
}

func readPolicy(_ *http.Request, in *api.Input, old *Policy) (*Policy, error) {
	p := Policy{ID: api.NewHexID()}
	if old != nil {
		p = *old
		p.Type = str(in, "type", p.Type)
		p.Blob = in.Str("blob", p.Blob, maxPolicyBlob)
	} else {
		p.Type = required(in, "type")
		p.Blob = in.Required("blob", maxPolicyBlob)
	}
	p.ProjectID = str(in, "project_id", p.ProjectID)
	p.UserID = str(in, "user_id", p.UserID)
	known := []string{"type", "blob", "project_id", "user_id"}
	if old != nil {
		p.Extra = mergeExtras(old.Extra, in, known...)
	} else {
		p.Extra = extras(in, known...)
	}
	return &p, in.Err
}
