package network

import (
	"context"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

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

// Making and changing groups and rules for Nova's os-security-groups and
// os-security-group-rules proxy: the same commands, state and checks as
// Neutron's own API, so both APIs see the same groups. project scopes
// each call: another project's group or rule does not exist for it;
// "" is an admin's call, which reaches every project's, as Neutron lets
// an admin.

// projectGroup finds group id in project ("" : any project).
func projectGroup(tx *memdb.Txn, project, id string) (*SecurityGroup, error) {
	g := store.Get[SecurityGroup](tx, tGroups, id)
	if g == nil || (project != "" && g.Project != project) {
		return nil, notFound("security_group", id)
	}
	return g, nil
}

// CreateSecurityGroup makes a group in project (and the project's
// default group first if it has none), with Neutron's egress rules.
func (sp *ServerPorts) CreateSecurityGroup(ctx context.Context, project, name, description string) (SecurityGroup, error) {
	s := sp.s
	if project == "" {
		return SecurityGroup{}, badInput("project_id", "a security group needs a project")
	}
	if err := defaultNameTaken(name); err != nil {
		return SecurityGroup{}, err
	}
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return SecurityGroup{}, err
	}
	now := s.now()
	g := SecurityGroup{ID: api.NewUUID(), Project: project, Name: name, Description: description, CreatedAt: now, UpdatedAt: now}
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdGroupCreate, s.groupCreation(tx, g), nil); err != nil {
		return SecurityGroup{}, err
	}
	return g, nil
}

// UpdateSecurityGroup renames or redescribes project's group id (nil:
// unchanged); the default group keeps its name.
func (sp *ServerPorts) UpdateSecurityGroup(ctx context.Context, project, id string, name, description *string) (SecurityGroup, error) {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return SecurityGroup{}, err
	}
	g, err := projectGroup(tx, project, id)
	if err != nil {
		return SecurityGroup{}, err
	}
	if name != nil && !g.Default {
		if err := defaultNameTaken(*name); err != nil {
			return SecurityGroup{}, err
		}
	}
	var row SecurityGroup
	c := groupUpdateCmd{ID: id, Name: name, Description: description, Now: s.now()}
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdGroupUpdate, c, &row); err != nil {
		return SecurityGroup{}, err
	}
	return row, nil
}

// DeleteSecurityGroup deletes project's group id with its rules; a
// group a port uses, or a project's default group (but for an admin),
// is a conflict.
func (sp *ServerPorts) DeleteSecurityGroup(ctx context.Context, project, id string) error {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	if _, err := projectGroup(tx, project, id); err != nil {
		return err
	}
	_, err = api.Propose(ctx, s.cfg.Repl, cmdGroupDelete, idCmd{ID: id, Admin: project == "", Now: s.now()}, nil)
	return err
}

// CreateSecurityGroupRule adds an ingress rule to project's group
// rl.GroupID: rl.Protocol is a protocol name or number ("" any),
// RemoteIPPrefix an address range or RemoteGroupID a group of the same
// project, PortMin and PortMax as Neutron reads them. The ether type
// follows the address range (IPv4 without one), as Nova sends it.
func (sp *ServerPorts) CreateSecurityGroupRule(ctx context.Context, project string, rl SecurityGroupRule) (SecurityGroupRule, error) {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return rl, err
	}
	g, err := projectGroup(tx, project, rl.GroupID)
	if err != nil {
		return rl, err
	}
	now := s.now()
	rl.ID, rl.Project, rl.Direction, rl.EtherType, rl.CreatedAt, rl.UpdatedAt = api.NewUUID(), g.Project, "ingress", "IPv4", now, now
	if rl.RemoteIPPrefix != "" && rl.RemoteGroupID != "" {
		return rl, store.Fault(store.KindInvalid, "SecurityGroupRemoteGroupAndRemoteIpPrefix", "Only remote_ip_prefix or remote_group_id may be provided.")
	}
	if rl.RemoteIPPrefix != "" {
		pfx, err := parseCIDROrIP(rl.RemoteIPPrefix)
		if err != nil {
			return rl, badInput("remote_ip_prefix", "%v", err)
		}
		if ipVersion(pfx.Addr()) == 6 {
			rl.EtherType = "IPv6"
		}
		rl.RemoteIPPrefix, rl.RemoteIPPrefixGiven = pfx.String(), givenPrefix(rl.RemoteIPPrefix, pfx)
	}
	if rl.RemoteGroupID != "" {
		if _, err := projectGroup(tx, g.Project, rl.RemoteGroupID); err != nil {
			return rl, err
		}
	}
	if rl.Protocol, rl.ProtocolName, err = parseProtocol(rl.Protocol); err != nil {
		return rl, err
	}
	if rl.Protocol == "1" && rl.EtherType == "IPv6" {
		rl.Protocol = "58" // ICMP over IPv6 is ICMPv6
	}
	if err := checkPorts(&rl); err != nil {
		return rl, err
	}
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdRuleCreate, ruleCreateCmd{Rules: []SecurityGroupRule{rl}}, nil); err != nil {
		return rl, err
	}
	return rl, nil
}

// DeleteSecurityGroupRule deletes project's rule id.
func (sp *ServerPorts) DeleteSecurityGroupRule(ctx context.Context, project, id string) error {
	s := sp.s
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	rl := store.Get[SecurityGroupRule](tx, tRules, id)
	if rl == nil || (project != "" && rl.Project != project) {
		return notFound("security_group_rule", id)
	}
	_, err = api.Propose(ctx, s.cfg.Repl, cmdRuleDelete, idCmd{ID: id, Now: s.now()}, nil)
	return err
}
