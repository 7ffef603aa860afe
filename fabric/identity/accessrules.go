package identity

import (
	"net/http"
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
// The rules live in the credentials that use them. A user's rule keeps
// one id across its credentials (a rule asked for again with the same
// service, method and path, or by its id, is the same rule), and
// /v3/users/{id}/access_rules lists them. Keystone keeps a rule after its
// last credential goes; here it goes with it, and a rule in use cannot be
// deleted, as in Keystone.

var accessRuleMethods = map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true}

// userAccessRules are the rules of the user's credentials, by id.
func userAccessRules(tx *memdb.Txn, user string) map[string]api.AccessRule {
	out := map[string]api.AccessRule{}
	for _, a := range store.All[AppCred](tx, tAppCreds, "user", user) {
		for _, r := range a.AccessRules {
			out[r.ID] = r
		}
	}
	return out
}

// readAccessRules reads a create's access rules: each an existing rule
// of the user by id, or a service, method and path (the user's rule with
// those, if it has one).
func (s *Service) readAccessRules(tx *memdb.Txn, user string, asked []map[string]any) ([]api.AccessRule, error) {
	const field = "application_credential.access_rules"
	if len(asked) == 0 {
		return nil, nil
	}
	known := userAccessRules(tx, user)
	types := map[string]bool{}
	for _, sv := range store.All[ServiceRow](tx, tServices, "id") {
		types[sv.Type] = true
	}
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
			case !types[rule.Service] && !types[strings.TrimSuffix(rule.Service, "v3")]:
				return nil, api.BadField(field+".service", "%q is not the type of a service in the catalog", rule.Service)
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
	for _, rule := range userAccessRules(tx, user) {
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

// deleteAccessRule: a rule here exists while a credential uses it, and
// Keystone refuses to delete a rule in use.
func (s *Service) deleteAccessRule(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.local(r.Context())
	if err != nil {
		return err
	}
	if _, ok := userAccessRules(tx, chi.URLParam(r, "id"))[chi.URLParam(r, "rule")]; !ok {
		return notFoundErr("access rule", chi.URLParam(r, "rule"))
	}
	return &api.Error{Status: http.StatusForbidden, Msg: "You are not authorized to perform the requested action: access rule " + chi.URLParam(r, "rule") + " is in use by an application credential; delete the credential."}
}
