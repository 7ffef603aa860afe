package identity

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Access rules (Keystone's application credential access_rules): an
// application credential may name the only requests its tokens can make,
// each a service type, a method and a path under the service's endpoint
// ({name} and * one segment, ** any). The token carries them
// (api.Principal.AccessRules) and every service checks them before its
// handler runs (api.RequireAuthFor); a handler that names no service
// refuses such a token, so nothing is reachable by default.
//
// A user's rules are rows of their own (AccessRuleRow), made in the same
// command as the credential that first names them (cmdAppCredCreate), and
// each credential keeps a copy of its rules, which its tokens carry. A
// rule asked for again with the same service, method and path, or by its
// id, is the same rule. As in Keystone, /v3/users/{id}/access_rules lists
// them, a rule outlives its credentials until deleted, and one that a
// credential uses cannot be deleted.

const (
	tAccessRules     = "access_rules"
	cmdAppCredCreate = "identity.appcred.create"
)

// AccessRuleRow is one user's access rule.
type AccessRuleRow struct {
	api.AccessRule
	UserID string `json:"user_id"`
	// Order is when it was made (Unix ns, plus its place in the create):
	// rules list in the order they were made, as Keystone's.
	Order int64 `json:"order"`
}

// appCredCreate makes a credential and the rules it names first.
type appCredCreate struct {
	Cred  AppCred         `json:"cred"`
	Rules []AccessRuleRow `json:"rules,omitempty"`
}

func applyAppCredCreate(tx *memdb.Txn, c appCredCreate) (any, error) {
	for _, r := range c.Rules {
		if old := store.Get[AccessRuleRow](tx, tAccessRules, r.ID); old != nil {
			if old.UserID != r.UserID || old.AccessRule != r.AccessRule {
				return nil, conflict("access rule %s is another", r.ID)
			}
			continue
		}
		if r.UserID != c.Cred.UserID || !exists(tx, tUsers, r.UserID) {
			return nil, notFound("Could not find user: %s.", r.UserID)
		}
		row := r
		if err := tx.Insert(tAccessRules, &row); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(&c.Cred)
	if err != nil {
		return nil, err
	}
	return applyPut(tx, putCmd{Table: tAppCreds, Create: true, Row: raw})
}

var accessRuleMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// userAccessRules are the user's rules, by id.
func userAccessRules(tx *memdb.Txn, user string) map[string]api.AccessRule {
	out := map[string]api.AccessRule{}
	for _, r := range store.All[AccessRuleRow](tx, tAccessRules, "user", user) {
		out[r.ID] = r.AccessRule
	}
	return out
}

// ruleInUse reports whether a credential of the user names the rule.
func ruleInUse(tx *memdb.Txn, user, id string) bool {
	for _, a := range store.All[AppCred](tx, tAppCreds, "user", user) {
		for _, r := range a.AccessRules {
			if r.ID == id {
				return true
			}
		}
	}
	return false
}

// readAccessRules reads a create's access rules: each an existing rule
// of the user by id, or a service, method and path (the user's rule with
// those, if it has one).
func (s *Service) readAccessRules(tx *memdb.Txn, user string, asked []map[string]any) ([]api.AccessRule, error) {
	const field = "application_credential.access_rules"
	if len(asked) == 0 {
		return nil, nil
	}
	// As Keystone's default (permissive) access_rules_config, any
	// service type is taken: a rule for a service this cloud does not
	// run matches nothing.
	known := userAccessRules(tx, user)
	var out []api.AccessRule
	seen := map[string]bool{}
	for _, ref := range asked {
		var rule api.AccessRule
		if id, _ := ref["id"].(string); id != "" {
			r, ok := known[id]
			if !ok {
				return nil, api.BadField(field, "access rule %s is not one of this user's", id)
			}
			rule = r
		} else {
			rule.Service, _ = ref["service"].(string)
			rule.Method, _ = ref["method"].(string)
			rule.Path, _ = ref["path"].(string)
			rule.Method = strings.ToUpper(rule.Method)
			switch {
			case rule.Service == "" || len(rule.Service) > maxName || strings.ContainsAny(rule.Service, " /?#\n"):
				return nil, api.BadField(field+".service", "%q is not a service type", rule.Service)
			case !accessRuleMethods[rule.Method]:
				return nil, api.BadField(field+".method", "%q is not GET, HEAD, POST, PUT, PATCH or DELETE", rule.Method)
			case !strings.HasPrefix(rule.Path, "/") || len(rule.Path) > maxName || strings.ContainsAny(rule.Path, "?#\n"):
				return nil, api.BadField(field+".path", "%q is not a path under the service's endpoint", rule.Path)
			}
			rule.ID = api.NewHexID()
			for _, k := range known {
				if k.Service == rule.Service && k.Method == rule.Method && k.Path == rule.Path {
					rule.ID = k.ID
				}
			}
		}
		if !seen[rule.ID] {
			seen[rule.ID] = true
			out = append(out, rule)
		}
	}
	return out, nil
}

func accessRulesView(rules []api.AccessRule) []api.View {
	out := []api.View{}
	for _, r := range rules {
		out = append(out, api.View{"id": r.ID, "service": r.Service, "method": r.Method, "path": r.Path})
	}
	return out
}

func (s *Service) accessRuleView(r *http.Request, user string, rule api.AccessRule) api.View {
	v := api.View{"id": rule.ID, "service": rule.Service, "method": rule.Method, "path": rule.Path}
	v["links"] = map[string]any{"self": s.baseURL(r) + "/identity/v3/users/" + user + "/access_rules/" + rule.ID}
	return v
}

func (s *Service) listAccessRules(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	user := chi.URLParam(r, "id")
	q := r.URL.Query()
	out := []api.View{}
	rows := store.All[AccessRuleRow](tx, tAccessRules, "user", user)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Order < rows[j].Order })
	for _, row := range rows {
		rule := row.AccessRule
		if q.Has("service") && q.Get("service") != rule.Service || q.Has("method") && q.Get("method") != rule.Method || q.Has("path") && q.Get("path") != rule.Path {
			continue
		}
		out = append(out, s.accessRuleView(r, user, rule))
	}
	api.JSON(w, http.StatusOK, map[string]any{"access_rules": out, "links": s.links(r)})
	return nil
}

func (s *Service) showAccessRule(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	user := chi.URLParam(r, "id")
	rule, ok := userAccessRules(tx, user)[chi.URLParam(r, "rule")]
	if !ok {
		return notFoundErr("access rule", chi.URLParam(r, "rule"))
	}
	api.JSON(w, http.StatusOK, map[string]any{"access_rule": s.accessRuleView(r, user, rule)})
	return nil
}

// deleteAccessRule deletes a rule no credential uses, as Keystone.
func (s *Service) deleteAccessRule(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	user, id := chi.URLParam(r, "id"), chi.URLParam(r, "rule")
	if _, ok := userAccessRules(tx, user)[id]; !ok {
		return notFoundErr("access rule", id)
	}
	if ruleInUse(tx, user, id) {
		return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: access rule " + id + " is in use by an application credential; delete the credential first."}
	}
	if err := s.remove(r, tAccessRules, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
