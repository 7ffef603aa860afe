package network

import (
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var groupAttrs = newAttrSpec(
	"name description stateful",
	"tenant_id project_id",
	"id security_group_rules shared created_at updated_at revision_number tags")

var ruleAttrs = newAttrSpec(
	"",
	"security_group_id direction ethertype protocol port_range_min port_range_max remote_ip_prefix remote_group_id "+
		"description tenant_id project_id",
	"id created_at updated_at revision_number")

// protocols are the IP protocol names Neutron knows.
var protocols = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4,
	"ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// portProtocols take port ranges; icmpProtocols take type and code.
var (
	portProtocols = map[string]bool{"6": true, "17": true, "132": true, "33": true, "136": true}
	icmpProtocols = map[string]bool{"1": true, "58": true}
)

func groupView(tx *memdb.Txn, g *SecurityGroup) map[string]any {
	rules := make([]map[string]any, 0)
	for _, r := range store.All[SecurityGroupRule](tx, tRules, "group", g.ID) {
		rules = append(rules, ruleView(r))
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i]["id"].(string) < rules[j]["id"].(string) })
	return map[string]any{
		"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.Project, "project_id": g.Project,
		"security_group_rules": rules, "stateful": true, "shared": false,
		"created_at": timeText(g.CreatedAt), "updated_at": timeText(g.UpdatedAt), "revision_number": g.Revision, "tags": []string{},
	}
}

func ruleView(r *SecurityGroupRule) map[string]any {
	var proto any
	if r.Protocol != "" {
		proto = r.Protocol
		if r.ProtocolName != "" {
			proto = r.ProtocolName
		}
	}
	intOrNil := func(p *int) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return map[string]any{
		"id": r.ID, "security_group_id": r.GroupID, "direction": r.Direction, "ethertype": r.EtherType, "protocol": proto,
		"port_range_min": intOrNil(r.PortMin), "port_range_max": intOrNil(r.PortMax),
		"remote_ip_prefix": nullable(r.RemoteIPPrefix), "remote_group_id": nullable(r.RemoteGroupID), "remote_address_group_id": nil,
		"tenant_id": r.Project, "project_id": r.Project, "description": r.Description,
		"created_at": timeText(r.CreatedAt), "updated_at": timeText(r.UpdatedAt), "revision_number": r.Revision,
	}
}

func visibleGroup(tx *memdb.Txn, p *api.Principal, id string) (*SecurityGroup, error) {
	g := store.Get[SecurityGroup](tx, tGroups, id)
	if g == nil || !p.CanRead(g.Project) {
		return nil, notFound("security_group", id)
	}
	return g, nil
}

func writableGroup(tx *memdb.Txn, p *api.Principal, id, action string) (*SecurityGroup, error) {
	g, err := visibleGroup(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(g.Project) {
		return nil, policyDenied(action)
	}
	return g, nil
}

// touchProject makes the caller's project's default group, as Neutron does
// when a project first lists its security groups.
func (s *Service) touchProject(w http.ResponseWriter, r *http.Request, tx *memdb.Txn) (*memdb.Txn, bool) {
	p := principal(r)
	if p.ProjectID == "" || !p.CanWrite(p.ProjectID) || defaultGroupOf(tx, p.ProjectID) != nil {
		return tx, true
	}
	if err := s.ensureDefaultGroup(r.Context(), tx, p.ProjectID); err != nil {
		api.Fail(w, r, writeError, err)
		return nil, false
	}
	tx, err := s.afterWrite(r.Context())
	if err != nil {
		api.Fail(w, r, writeError, err)
		return nil, false
	}
	return tx, true
}

func (s *Service) listGroups(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	if tx, ok = s.touchProject(w, r, tx); !ok {
		return
	}
	p := principal(r)
	var views []map[string]any
	for _, g := range store.All[SecurityGroup](tx, tGroups, "id") {
		if p.CanRead(g.Project) {
			views = append(views, groupView(tx, g))
		}
	}
	s.list(w, r, "security_groups", views)
}

func (s *Service) showGroup(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	g, err := visibleGroup(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	show(w, r, "security_group", groupView(tx, g))
}

// readGroupName reads a group's name: "default" belongs to the group
// every project gets.
func readGroupName(rd *api.Input, def string) string {
	name := rd.Str("name", def, 255)
	if rd.Err == nil && strings.EqualFold(strings.TrimSpace(name), "default") {
		rd.Fail(store.Fault(store.KindConflict, "SecurityGroupDefaultAlreadyExists", "Default security group already exists."))
	}
	return name
}

func readStateful(rd *api.Input) {
	if rd.Has("stateful") && !rd.Bool("stateful", true) {
		rd.Fail(badInput("stateful", "stateless security groups are not supported"))
	}
}

func (s *Service) createGroup(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	objs, _, err := bodies(r, "security_group", "")
	if err == nil {
		err = groupAttrs.check(objs[0], http.MethodPost)
	}
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	rd := input(objs[0])
	now := s.now()
	g := SecurityGroup{ID: api.NewUUID(), CreatedAt: now, UpdatedAt: now}
	g.Name = readGroupName(rd, "")
	g.Description = rd.Str("description", "", 255)
	g.Project = readProject(rd, p)
	readStateful(rd)
	if rd.Err != nil {
		api.Fail(w, r, writeError, rd.Err)
		return
	}
	c := groupCreateCmd{Group: g, Defaults: s.defaultsFor(tx, g.Project)}
	for _, et := range []string{"IPv4", "IPv6"} {
		c.Rules = append(c.Rules, SecurityGroupRule{ID: api.NewUUID(), GroupID: g.ID, Project: g.Project, Direction: "egress",
			EtherType: et, CreatedAt: now, UpdatedAt: now})
	}
	if !s.propose(w, r, cmdGroupCreate, c, nil) {
		return
	}
	if tx, err = s.afterWrite(r.Context()); err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	api.JSON(w, http.StatusCreated, map[string]any{"security_group": groupView(tx, &g)})
}

func (s *Service) updateGroup(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	g, err := writableGroup(tx, p, chi.URLParam(r, "id"), "update_security_group")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	objs, _, err := bodies(r, "security_group", "")
	if err == nil {
		err = groupAttrs.check(objs[0], http.MethodPut)
	}
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := input(objs[0])
	c := groupUpdateCmd{ID: g.ID, Now: s.now()}
	if rd.Has("name") {
		var v string
		if g.Default {
			v = rd.Str("name", "", 255)
		} else {
			v = readGroupName(rd, "")
		}
		c.Name = &v
	}
	if rd.Has("description") {
		v := rd.Str("description", "", 255)
		c.Description = &v
	}
	readStateful(rd)
	if rd.Err != nil {
		api.Fail(w, r, writeError, rd.Err)
		return
	}
	var row SecurityGroup
	if !s.propose(w, r, cmdGroupUpdate, c, &row) {
		return
	}
	if tx, err = s.afterWrite(r.Context()); err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"security_group": groupView(tx, &row)})
}

func (s *Service) deleteGroup(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	g, err := writableGroup(tx, p, chi.URLParam(r, "id"), "delete_security_group")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	if s.propose(w, r, cmdGroupDelete, idCmd{ID: g.ID, Admin: p.IsAdmin(), Now: s.now()}, nil) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// Rules.

func (s *Service) listRules(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	p := principal(r)
	var views []map[string]any
	for _, rl := range store.All[SecurityGroupRule](tx, tRules, "id") {
		if p.CanRead(rl.Project) {
			views = append(views, ruleView(rl))
		}
	}
	s.list(w, r, "security_group_rules", views)
}

func (s *Service) showRule(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	rl := store.Get[SecurityGroupRule](tx, tRules, id)
	if rl == nil || !principal(r).CanRead(rl.Project) {
		api.Fail(w, r, writeError, notFound("security_group_rule", id))
		return
	}
	show(w, r, "security_group_rule", ruleView(rl))
}

// parseProtocol normalizes a protocol to its decimal number ("" for any)
// and the form shown back to clients.
func parseProtocol(v any) (num, name string, err error) {
	bad := func(x string) error {
		return store.Fault(store.KindInvalid, "SecurityGroupRuleInvalidProtocol",
			"Security group rule protocol %s not supported. Only protocol values [None, ah, dccp, egp, esp, gre, hopopt, icmp, igmp, ipip, ipv6-encap, ipv6-frag, ipv6-icmp, icmpv6, ipv6-nonxt, ipv6-opts, ipv6-route, ospf, pgm, rsvp, sctp, tcp, udp, udplite, vrrp] and integer representations [0 to 255] are supported.", x)
	}
	switch x := v.(type) {
	case nil:
		return "", "", nil
	case float64:
		n, ok := api.ToInt(x)
		if !ok || n < 0 || n > 255 {
			return "", "", bad(api.Text(v))
		}
		return strconv.Itoa(n), strconv.Itoa(n), nil
	case string:
		s := strings.ToLower(strings.TrimSpace(x))
		if s == "" || s == "any" {
			return "", "", nil
		}
		if n, err := strconv.Atoi(s); err == nil {
			if n < 0 || n > 255 {
				return "", "", bad(x)
			}
			return strconv.Itoa(n), s, nil
		}
		if n, ok := protocols[s]; ok {
			return strconv.Itoa(n), s, nil
		}
		return "", "", bad(x)
	}
	return "", "", bad(api.Text(v))
}

func (s *Service) parseRule(tx *memdb.Txn, p *api.Principal, o api.Object) (SecurityGroupRule, error) {
	var rl SecurityGroupRule
	if err := ruleAttrs.check(o, http.MethodPost); err != nil {
		return rl, err
	}
	rd := input(o)
	now := s.now()
	rl = SecurityGroupRule{ID: api.NewUUID(), CreatedAt: now, UpdatedAt: now}
	rl.GroupID = rd.Str("security_group_id", "", 64)
	rl.Description = rd.Str("description", "", 255)
	project := readProject(rd, p)
	if rd.Err != nil {
		return rl, rd.Err
	}
	if rl.GroupID == "" {
		return rl, badInput("security_group_id", "'security_group_id' is a required property")
	}
	g, err := visibleGroup(tx, p, rl.GroupID)
	if err != nil {
		return rl, err
	}
	if g.Project != project && !p.IsAdmin() {
		return rl, notFound("security_group", rl.GroupID)
	}
	rl.Project = g.Project
	rl.Direction = rd.Str("direction", "", 16)
	if rd.Err == nil && rl.Direction != "ingress" && rl.Direction != "egress" {
		return rl, badInput("direction", "'%s' is not in ['ingress', 'egress']", api.Text(o["direction"]))
	}
	et := rd.Str("ethertype", "IPv4", 16)
	switch strings.ToLower(et) {
	case "ipv4":
		rl.EtherType = "IPv4"
	case "ipv6":
		rl.EtherType = "IPv6"
	default:
		if rd.Err == nil {
			return rl, badInput("ethertype", "'%s' is not in ['IPv4', 'IPv6']", et)
		}
	}
	if rd.Err != nil {
		return rl, rd.Err
	}
	rl.Protocol, rl.ProtocolName, err = parseProtocol(o["protocol"])
	if err != nil {
		return rl, err
	}
	if rl.Protocol == "58" && rl.EtherType == "IPv4" {
		return rl, store.Fault(store.KindInvalid, "SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype %s for protocol %s.", rl.EtherType, rl.ProtocolName)
	}
	if rl.Protocol == "1" && rl.EtherType == "IPv6" {
		rl.Protocol = "58" // ICMP over IPv6 is ICMPv6
	}
	rl.PortMin, rl.PortMax = integer(rd, "port_range_min"), integer(rd, "port_range_max")
	if rd.Err != nil {
		return rl, rd.Err
	}
	if err := checkPorts(&rl); err != nil {
		return rl, err
	}
	prefix := rd.Str("remote_ip_prefix", "", 64)
	rl.RemoteGroupID = rd.Str("remote_group_id", "", 64)
	if rd.Err != nil {
		return rl, rd.Err
	}
	if prefix != "" && rl.RemoteGroupID != "" {
		return rl, store.Fault(store.KindInvalid, "SecurityGroupRemoteGroupAndRemoteIpPrefix", "Only remote_ip_prefix or remote_group_id may be provided.")
	}
	if prefix != "" {
		pfx, err := parseCIDROrIP(prefix)
		if err != nil {
			return rl, badInput("remote_ip_prefix", "%v", err)
		}
		if (ipVersion(pfx.Addr()) == 4) != (rl.EtherType == "IPv4") {
			return rl, store.Fault(store.KindInvalid, "SecurityGroupRuleParameterConflict", "Conflicting value ethertype %s for CIDR %s", rl.EtherType, prefix)
		}
		rl.RemoteIPPrefix = pfx.String()
	}
	if rl.RemoteGroupID != "" {
		rg := store.Get[SecurityGroup](tx, tGroups, rl.RemoteGroupID)
		if rg == nil || !p.CanRead(rg.Project) {
			return rl, notFound("security_group", rl.RemoteGroupID)
		}
	}
	return rl, nil
}

// checkPorts validates port_range_min/max for the rule's protocol.
func checkPorts(rl *SecurityGroupRule) error {
	lo, hi := rl.PortMin, rl.PortMax
	if lo == nil && hi == nil {
		return nil
	}
	for f, v := range map[string]*int{"port_range_min": lo, "port_range_max": hi} {
		if v != nil && (*v < 0 || *v > 65535) {
			return badInput(f, "Invalid value for port %d", *v)
		}
	}
	switch {
	case rl.Protocol == "":
		return store.Fault(store.KindInvalid, "SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given.")
	case portProtocols[rl.Protocol]:
		if (lo != nil && *lo == 0) || (hi != nil && *hi == 0) {
			return store.Fault(store.KindInvalid, "SecurityGroupInvalidPortValue", "Invalid value for port 0.")
		}
		if lo == nil || hi == nil || *lo > *hi {
			return store.Fault(store.KindInvalid, "SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
		}
	case icmpProtocols[rl.Protocol]:
		if lo == nil {
			return store.Fault(store.KindInvalid, "SecurityGroupMissingIcmpType", "ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", *hi)
		}
		for f, v := range map[string]*int{"type": lo, "code": hi} {
			if v != nil && *v > 255 {
				return store.Fault(store.KindInvalid, "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP %s (port-range-%s): %d. It must be 0 to 255.", f, map[string]string{"type": "min", "code": "max"}[f], *v)
			}
		}
	default:
		return store.Fault(store.KindInvalid, "SecurityGroupInvalidProtocolForPort", "Invalid protocol %s for port range, only supported for TCP, UDP, UDPLITE, SCTP and DCCP.", rl.ProtocolName)
	}
	return nil
}

func (s *Service) createRules(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	objs, bulk, err := bodies(r, "security_group_rule", "security_group_rules")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	var c ruleCreateCmd
	for _, o := range objs {
		rl, err := s.parseRule(tx, p, o)
		if err != nil {
			api.Fail(w, r, writeError, err)
			return
		}
		c.Rules = append(c.Rules, rl)
	}
	var rows []SecurityGroupRule
	if !s.propose(w, r, cmdRuleCreate, c, &rows) {
		return
	}
	views := make([]map[string]any, 0, len(rows))
	for i := range rows {
		views = append(views, ruleView(&rows[i]))
	}
	created(w, "security_group_rule", "security_group_rules", bulk, views)
}

func (s *Service) deleteRule(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	rl := store.Get[SecurityGroupRule](tx, tRules, id)
	if rl == nil || !p.CanRead(rl.Project) {
		api.Fail(w, r, writeError, notFound("security_group_rule", id))
		return
	}
	if !p.CanWrite(rl.Project) {
		api.Fail(w, r, writeError, policyDenied("delete_security_group_rule"))
		return
	}
	if s.propose(w, r, cmdRuleDelete, idCmd{ID: rl.ID, Now: s.now()}, nil) {
		w.WriteHeader(http.StatusNoContent)
	}
}
