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

func (s *Service) createGroup(w http.ResponseWriter, r *http.Request) {
	if !requireMember(w, r, "os_compute_api:os-server-groups:create") {
		return
	}
	p := principal(r)
	o, _, err := body(r, "server_group")
	if err == nil {
		if atLeast(r, 64) {
			err = allowOnly(o, "name", "policy", "rules")
		} else {
			err = allowOnly(o, "name", "policies")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	policies := []string{"anti-affinity", "affinity"}
	if atLeast(r, 15) {
		policies = append(policies, "soft-anti-affinity", "soft-affinity")
	}
	rd := &reader{o: o}
	g := ServerGroup{ID: api.NewUUID(), Project: p.ProjectID, UserID: p.UserID, Members: []string{}, Created: s.now()}
	g.Name = rd.str("name", true, 1, 255)
	if atLeast(r, 64) {
		g.Policy = rd.str("policy", true, 1, 255)
		if rd.err == nil && !slices.Contains(policies, g.Policy) {
			rd.fail(badField("policy", g.Policy, "'%s' is not one of %s", g.Policy, pyList(policies)))
		}
		if v, ok := o["rules"]; ok && rd.err == nil {
			rules, ok := v.(map[string]any)
			if !ok {
				rd.fail(badField("rules", v, "%s is not of type 'object'", valueText(v)))
			} else if err := allowOnly(rules, "max_server_per_host"); err != nil {
				rd.fail(err)
			} else if _, has := rules["max_server_per_host"]; has {
				if g.Policy != "anti-affinity" {
					rd.fail(badRequest("Only anti-affinity policy supports rules."))
				}
				rr := &reader{o: rules}
				g.MaxPerHost = rr.integer("max_server_per_host", true, 0, 1, 1<<31-1)
				rd.fail(rr.err)
			}
		}
	} else {
		list, ok := o["policies"].([]any)
		switch {
		case rd.err != nil:
		case !ok:
			rd.fail(badRequest("Invalid input for field/attribute server_group. Value: %s. 'policies' is a required property", valueText(map[string]any(o))))
		case len(list) != 1:
			rd.fail(badField("policies", list, "%s is not valid under any of the given schemas: exactly one policy is required", valueText(list)))
		default:
			g.Policy, _ = list[0].(string)
			if !slices.Contains(policies, g.Policy) {
				rd.fail(badField("policies", list, "'%s' is not one of %s", valueText(list[0]), pyList(policies)))
			}
		}
	}
	if rd.err != nil {
		s.fail(w, r, rd.err)
		return
	}
	var row ServerGroup
	if err := s.propose(r.Context(), cmdGroupCreate, groupCreateCmd{Group: g}, &row); err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"server_group": s.groupView(r, &row)})
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

func (s *Service) listGroups(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	p := principal(r)
	q := r.URL.Query()
	all := false
	if v := q.Get("all_projects"); v != "" {
		b, _ := toBool(v)
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
}

func (s *Service) visibleGroup(w http.ResponseWriter, r *http.Request) (*ServerGroup, bool) {
	tx, ok := s.read(w, r)
	if !ok {
		return nil, false
	}
	id := chi.URLParam(r, "id")
	g := store.Get[ServerGroup](tx, tGroups, id)
	if g == nil || !principal(r).CanRead(g.Project) {
		s.fail(w, r, groupNotFound(id))
		return nil, false
	}
	return g, true
}

func (s *Service) showGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := s.visibleGroup(w, r)
	if !ok {
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"server_group": s.groupView(r, g)})
}

func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request) {
	g, ok := s.visibleGroup(w, r)
	if !ok {
		return
	}
	if !principal(r).CanWrite(g.Project) {
		s.fail(w, r, policyDenied("os_compute_api:os-server-groups:delete"))
		return
	}
	if err := s.propose(r.Context(), cmdGroupDelete, idCmd{ID: g.ID}, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
