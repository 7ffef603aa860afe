package compute

import (
	"net/http"
	"slices"
	"sort"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

func (s *Service) groupView(r *http.Request, g *ServerGroup) map[string]any {
	members := g.Members
	if members == nil {
		members = []string{}
	}
	v := map[string]any{"id": g.ID, "name": g.Name, "members": members}
	if atLeast(r, 64) {
		rules := map[string]any{}
		if g.MaxPerHost > 0 {
			rules["max_server_per_host"] = g.MaxPerHost
		}
		v["policy"], v["rules"] = g.Policy, rules
	} else {
		v["policies"], v["metadata"] = []string{g.Policy}, map[string]any{}
	}
	if atLeast(r, 13) {
		v["project_id"], v["user_id"] = g.Project, g.UserID
	}
	return v
}

func (s *Service) createGroup(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	o, _, err := readBody(r, "server_group")
	if err != nil {
		return err
	}
	g := ServerGroup{ID: api.NewUUID(), Project: p.ProjectID, UserID: p.UserID, Members: []string{}, Created: s.now()}
	if atLeast(r, 64) {
		err = readGroupPolicy(r, o, &g)
	} else {
		err = readGroupPolicies(r, o, &g)
	}
	if err != nil {
		return err
	}
	var row ServerGroup
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdGroupCreate, groupCreateCmd{Group: g}, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"server_group": s.groupView(r, &row)})
	return nil
}

// groupPolicies are the policies a request's microversion knows.
func groupPolicies(r *http.Request) []string {
	policies := []string{"anti-affinity", "affinity"}
	if atLeast(r, 15) {
		policies = append(policies, "soft-anti-affinity", "soft-affinity")
	}
	return policies
}

// readGroupPolicy reads a group from 2.64 on: one policy and its rules.
func readGroupPolicy(r *http.Request, o api.Object, g *ServerGroup) error {
	if err := allowOnly(o, "name", "policy", "rules"); err != nil {
		return err
	}
	policies := groupPolicies(r)
	in := newInput(o)
	g.Name = str(in, "name", true, 1, 255)
	g.Policy = str(in, "policy", true, 1, 255)
	if in.Err == nil && !slices.Contains(policies, g.Policy) {
		in.Fail(badField("policy", g.Policy, "'%s' is not one of %s", g.Policy, pyList(policies)))
	}
	v, ok := o["rules"]
	if !ok || in.Err != nil {
		return in.Err
	}
	rules, ok := v.(map[string]any)
	if !ok {
		return badField("rules", v, "%s is not of type 'object'", api.Text(v))
	}
	if err := allowOnly(rules, "max_server_per_host"); err != nil {
		return err
	}
	if _, has := rules["max_server_per_host"]; has {
		if g.Policy != "anti-affinity" {
			return badRequest("Only anti-affinity policy supports rules.")
		}
		rin := newInput(rules)
		g.MaxPerHost = integer(rin, "max_server_per_host", true, 0, 1, 1<<31-1)
		return rin.Err
	}
	return nil
}

// readGroupPolicies reads a group before 2.64: a list of one policy.
func readGroupPolicies(r *http.Request, o api.Object, g *ServerGroup) error {
	if err := allowOnly(o, "name", "policies"); err != nil {
		return err
	}
	policies := groupPolicies(r)
	in := newInput(o)
	g.Name = str(in, "name", true, 1, 255)
	if in.Err != nil {
		return in.Err
	}
	list, ok := o["policies"].([]any)
	switch {
	case !ok:
		return badRequest("Invalid input for field/attribute server_group. Value: %s. 'policies' is a required property", api.Text(o))
	case len(list) != 1:
		return badField("policies", list, "%s is not valid under any of the given schemas: exactly one policy is required", api.Text(list))
	}
	g.Policy, _ = list[0].(string)
	if !slices.Contains(policies, g.Policy) {
		return badField("policies", list, "'%s' is not one of %s", api.Text(list[0]), pyList(policies))
	}
	return nil
}

func pyList(items []string) string {
	out := "["
	for i, it := range items {
		if i > 0 {
			out += ", "
		}
		out += "'" + it + "'"
	}
	return out + "]"
}

func (s *Service) listGroups(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p := principal(r)
	q := r.URL.Query()
	all := false
	if v := q.Get("all_projects"); v != "" {
		b, _ := api.ToBool(v)
		all = b && p.IsAdmin()
	}
	var rows []*ServerGroup
	if all {
		rows = store.All[ServerGroup](tx, tGroups, "id")
	} else {
		rows = store.All[ServerGroup](tx, tGroups, "project", p.ProjectID)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	off, _ := strconv.Atoi(q.Get("offset"))
	if off > 0 {
		rows = rows[min(off, len(rows)):]
	}
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l >= 0 && l < len(rows) {
		rows = rows[:l]
	}
	out := make([]any, 0, len(rows))
	for _, g := range rows {
		out = append(out, s.groupView(r, g))
	}
	api.JSON(w, http.StatusOK, map[string]any{"server_groups": out})
	return nil
}

// groups are the server groups as a collection: another project's group
// does not exist for the caller.
func groups() api.Collection[ServerGroup] {
	return api.Collection[ServerGroup]{
		Table: tGroups, One: "server_group",
		Project:  func(g *ServerGroup) string { return g.Project },
		NotFound: groupNotFound,
	}
}

func (s *Service) showGroup(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	g, err := groups().Get(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"server_group": s.groupView(r, g)})
	return nil
}

func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p := principal(r)
	g, err := groups().Get(tx, p, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if !p.CanWrite(g.Project) {
		return policyDenied("os_compute_api:os-server-groups:delete")
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdGroupDelete, idCmd{ID: g.ID}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
