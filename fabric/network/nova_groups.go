package network

import (
	"context"
	"slices"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Security groups of a server's ports, for Nova's addSecurityGroup and
// removeSecurityGroup: the compute service finds the group in the
// server's project and adds it to (removes it from) each of the
// server's ports; the dataplane enforces the ports' groups.

// SecurityGroup finds project's security group by id or name ("default"
// is the project's default group, made on first use). None is not
// found; a name that several of the project's groups have is a conflict.
func (sp *ServerPorts) SecurityGroup(ctx context.Context, project, nameOrID string) (SecurityGroup, error) {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return SecurityGroup{}, err
	}
	if nameOrID == "default" {
		if tx, err = s.ensureDefaultGroup(ctx, tx, project); err != nil {
			return SecurityGroup{}, err
		}
	}
	var found []*SecurityGroup
	for _, g := range store.All[SecurityGroup](tx, tGroups, "project", project) {
		if g.ID == nameOrID {
			return *g, nil
		}
		if g.Name == nameOrID || (nameOrID == "default" && g.Default) {
			found = append(found, g)
		}
	}
	switch len(found) {
	case 0:
		return SecurityGroup{}, store.Fault(store.KindNotFound, "SecurityGroupNotFound", "Security group %s is not found for project %s", nameOrID, project)
	case 1:
		return *found[0], nil
	}
	return SecurityGroup{}, store.Fault(store.KindConflict, "NoUniqueMatch", "Multiple security_group matches found for name '%s', use an ID to be more specific.", nameOrID)
}

// portGroupTries bounds the retries of a port's group change that lost a
// race with another change of the port.
const portGroupTries = 5

// SetPortSecurityGroup adds (on) or removes a security group on a port;
// changed is false when the port already had (or lacked) it. The change
// is made at the revision it was read at, so that a concurrent change of
// the port's groups is not overwritten.
func (sp *ServerPorts) SetPortSecurityGroup(ctx context.Context, portID, groupID string, on bool) (changed bool, err error) {
	s := sp.s
	for range portGroupTries {
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return false, err
		}
		pt := store.Get[Port](tx, tPorts, portID)
		if pt == nil {
			return false, notFound("port", portID)
		}
		if slices.Contains(pt.SecurityGroups, groupID) == on {
			return false, nil
		}
		groups := slices.Clone(pt.SecurityGroups)
		if on {
			groups = append(groups, groupID)
		} else {
			groups = slices.DeleteFunc(groups, func(g string) bool { return g == groupID })
		}
		rev := pt.Revision
		c := portUpdateCmd{ifMatch: ifMatch{IfRevision: &rev}, ID: portID, Groups: &groups, Now: s.now()}
		_, err = api.Propose(ctx, s.cfg.Repl, cmdPortUpdate, c, nil)
		if store.KindOf(err) == store.KindPrecondition {
			continue
		}
		return err == nil, err
	}
	return false, store.Fault(store.KindConflict, "", "port %s kept changing; its security groups were not changed", portID)
}

// SecurityGroups lists project's security groups ("" : every project's)
// with their rules, for Nova's os-security-groups proxy; a project's
// default group is made on first use, as Neutron lists it.
func (sp *ServerPorts) SecurityGroups(ctx context.Context, project string) ([]SecurityGroup, map[string][]SecurityGroupRule, error) {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil, nil, err
	}
	if project != "" {
		if tx, err = s.ensureDefaultGroup(ctx, tx, project); err != nil {
			return nil, nil, err
		}
	}
	all := store.All[SecurityGroup](tx, tGroups, "id")
	if project != "" {
		all = store.All[SecurityGroup](tx, tGroups, "project", project)
	}
	var groups []SecurityGroup
	rules := map[string][]SecurityGroupRule{}
	for _, g := range all {
		groups = append(groups, *g)
		for _, r := range store.All[SecurityGroupRule](tx, tRules, "group", g.ID) {
			rules[g.ID] = append(rules[g.ID], *r)
		}
	}
	return groups, rules, nil
}
