package network

import (
	"net/http"
	"sort"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var groupAttrs = newAttrSpec(
	"name description stateful",
	"tenant_id project_id",
	"id security_group_rules shared created_at updated_at revision_number tags")

// groupView is g as Neutron shows it; shared says whether a policy
// shares it with the caller's project (or every project).
func groupView(tx *memdb.Txn, g *SecurityGroup, shared bool) api.View {
	rules := make([]api.View, 0)
	for _, r := range store.All[SecurityGroupRule](tx, tRules, "group", g.ID) {
		rules = append(rules, ruleView(r))
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i]["id"].(string) < rules[j]["id"].(string) })
	return map[string]any{
		"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.Project, "project_id": g.Project,
		"security_group_rules": rules, "stateful": !g.Stateless, "shared": shared,
		"created_at": timeText(g.CreatedAt), "updated_at": timeText(g.UpdatedAt), "revision_number": g.Revision, "tags": tagList(g.Tags),
	}
}

// groups is the security groups collection: a project's own (an admin's:
// all) and those shared with it by RBAC policies.
func (s *Service) groups(tx *memdb.Txn) api.Collection[SecurityGroup] {
	return api.Collection[SecurityGroup]{Table: tGroups, One: "security_group",
		Project: func(g *SecurityGroup) string { return g.Project },
		Visible: func(p *api.Principal, g *SecurityGroup) bool {
			return p.CanRead(g.Project) || groupSharedWith(tx, g, p.ProjectID)
		},
		View: func(tx *memdb.Txn, p *api.Principal, g *SecurityGroup) api.View {
			return groupView(tx, g, groupSharedByPolicy(tx, g.ID, p.ProjectID))
		},
		NotFound: func(id string) error { return notFound("security_group", id) }, Listing: s.listing("security_groups")}
}

func (s *Service) writableGroup(tx *memdb.Txn, p *api.Principal, id, action string) (*SecurityGroup, error) {
	g, err := s.groups(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(g.Project) {
		// Seen (its project's reader, or shared with the caller), not
		// the caller's to change: Neutron's 403 for a visible object.
		return nil, policyDenied(action)
	}
	return g, nil
}

// touchProject makes the caller's project's default group, as Neutron does
// when a project first lists its security groups.
func (s *Service) touchProject(r *http.Request, tx *memdb.Txn) (*memdb.Txn, error) {
	p := principal(r)
	if p.ProjectID == "" || !p.CanWrite(p.ProjectID) {
		return tx, nil
	}
	return s.ensureDefaultGroup(r.Context(), tx, p.ProjectID)
}

// listGroups lists security groups, first making the caller's project's
// default group as Neutron does when a project first lists them.
func (s *Service) listGroups(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if tx, err = s.touchProject(r, tx); err != nil {
		return err
	}
	return s.groups(tx).List(w, r, tx)
}

// readGroupName reads a group's name: "default" belongs to the group
// every project gets.
func readGroupName(rd *api.Input, def string) string {
	name := rd.Str("name", def, 255)
	if rd.Err == nil {
		if err := defaultNameTaken(name); err != nil {
			rd.Fail(err)
		}
	}
	return name
}

// defaultNameTaken refuses the name "default" to a group that is not the
// project's default one.
func defaultNameTaken(name string) error {
	if strings.EqualFold(strings.TrimSpace(name), "default") {
		return store.Fault(store.KindConflict, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
	}
	return nil
}

// readStateful reads "stateful" (stateful-security-group): nil when the
// body has none.
func readStateful(rd *api.Input) *bool {
	if !rd.Has("stateful") {
		return nil
	}
	if rd.IsNull("stateful") {
		rd.Fail(badInput("stateful", "'None' is not a valid boolean value"))
		return nil
	}
	v := rd.Bool("stateful", true)
	return &v
}

// createGroup makes one security group ({"security_group": {...}}) or
// several ({"security_groups": [...]}, all or none).
func (s *Service) createGroup(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	objs, bulk, err := bodies(r, "security_group", "security_groups")
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	cmds := make([]groupCreateCmd, 0, len(objs))
	for _, o := range objs {
		g, err := s.parseGroup(p, o)
		if err != nil {
			return err
		}
		cmds = append(cmds, s.groupCreation(tx, g))
	}
	if !bulk {
		if tx, err = api.Propose(r.Context(), s.cfg.Repl, cmdGroupCreate, cmds[0], nil); err != nil {
			return err
		}
		api.JSON(w, http.StatusCreated, map[string]any{"security_group": groupView(tx, &cmds[0].Group, false)})
		return nil
	}
	if tx, err = api.Propose(r.Context(), s.cfg.Repl, cmdGroupBulk, groupBulkCmd{Groups: cmds}, nil); err != nil {
		return err
	}
	views := make([]api.View, 0, len(cmds))
	for i := range cmds {
		views = append(views, groupView(tx, &cmds[i].Group, false))
	}
	api.JSON(w, http.StatusCreated, map[string]any{"security_groups": views})
	return nil
}

// parseGroup reads one group of a create.
func (s *Service) parseGroup(p *api.Principal, o api.Object) (SecurityGroup, error) {
	if err := groupAttrs.check(o, http.MethodPost); err != nil {
		return SecurityGroup{}, err
	}
	rd := input(o)
	now := s.now()
	g := SecurityGroup{ID: api.NewUUID(), CreatedAt: now, UpdatedAt: now}
	g.Name = readGroupName(rd, "")
	g.Description = rd.Str("description", "", 255)
	g.Project = readProject(rd, p)
	if st := readStateful(rd); st != nil {
		g.Stateless = !*st
	}
	return g, rd.Err
}

// groupCreation is the command that makes g with Neutron's two egress
// rules, and its project's default group first if it has none yet.
func (s *Service) groupCreation(tx *memdb.Txn, g SecurityGroup) groupCreateCmd {
	c := groupCreateCmd{Group: g, Defaults: s.defaultsFor(tx, g.Project)}
	for _, et := range []string{"IPv4", "IPv6"} {
		c.Rules = append(c.Rules, SecurityGroupRule{ID: api.NewUUID(), GroupID: g.ID, Project: g.Project, Direction: "egress",
			EtherType: et, CreatedAt: g.CreatedAt, UpdatedAt: g.CreatedAt})
	}
	return c
}

func (s *Service) updateGroup(w http.ResponseWriter, r *http.Request) error {
	ch, err := readChange(s, r, "security_group", groupAttrs, "update_security_group", s.writableGroup)
	if err != nil {
		return err
	}
	g, rd := ch.row, ch.in
	c := groupUpdateCmd{ifMatch: ch.match, ID: g.ID, Now: s.now()}
	if rd.Has("name") {
		var v string
		if g.Default {
			v = rd.Str("name", "", 255)
		} else {
			v = readGroupName(rd, "")
		}
		c.Name = &v
	}
	c.Description = optStr(rd, "description", 255)
	if st := readStateful(rd); st != nil {
		stateless := !*st
		c.Stateless = &stateless
	}
	if rd.Err != nil {
		return rd.Err
	}
	var row SecurityGroup
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdGroupUpdate, c, &row)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"security_group": groupView(tx, &row, groupSharedByPolicy(tx, row.ID, principal(r).ProjectID))})
	return nil
}

func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdGroupDelete, "delete_security_group", s.writableGroup)
}
