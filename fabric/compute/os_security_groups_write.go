package compute

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's os-security-groups and os-security-group-rules proxy, write
// side, to microversion 2.35: Nova checks a request in its own terms
// (ids are UUIDs; rules are ingress, tcp/udp/icmp, with Nova's port
// ranges) and asks the network service, which owns the groups, to make
// the change with Neutron's own checks and commands, so both APIs show
// the same groups and rules. Nova words the network service's refusals
// its way: a conflict deleting a group (in use, the default one) is a
// 400, a conflict making one (quota) a 403.
//
// Each change is one command of the network service's replicated log,
// answered only once committed, so an acknowledged change survives a
// kill -9; nothing is written here before the checks pass, and an error
// whose outcome is unknown passes through unchanged (never reworded as a
// refusal).

// SecurityGroupEdits is what the write side needs of the network service
// beside SecurityGroupPorts; a Ports without it leaves the writes not
// implemented (501). project scopes each call: another project's group
// or rule is not found; "" is an admin's call, over every project.
type SecurityGroupEdits interface {
	CreateSecurityGroup(ctx context.Context, project, name, description string) (SecurityGroupInfo, error)
	// UpdateSecurityGroup changes the name and description given (nil:
	// unchanged).
	UpdateSecurityGroup(ctx context.Context, project, id string, name, description *string) (SecurityGroupInfo, error)
	// DeleteSecurityGroup refuses (conflict) a group in use or a default
	// group.
	DeleteSecurityGroup(ctx context.Context, project, id string) error
	// CreateSecurityGroupRule adds an ingress rule to group groupID: a
	// conflict is a rule the group has already, or the quota.
	CreateSecurityGroupRule(ctx context.Context, project, groupID string, rule SecurityGroupRuleInfo) (SecurityGroupRuleInfo, error)
	DeleteSecurityGroupRule(ctx context.Context, project, id string) error
}

// groupEdits is the network service's write side, for the caller: 404 at
// 2.36 and later, 403 for a caller who may not change its project's
// groups, 501 without one. scope is the project the caller's writes
// reach ("" : all, an admin).
func (s *Service) groupEdits(r *http.Request, rule string) (edits SecurityGroupEdits, scope string, err error) {
	if atLeast(r, 36) {
		return nil, "", unknownResource()
	}
	p := principal(r)
	if !p.CanWrite(p.ProjectID) {
		return nil, "", policyDenied(rule)
	}
	e, ok := s.cfg.Ports.(SecurityGroupEdits)
	if !ok {
		return nil, "", notImplemented("Security groups cannot be changed from the compute API of this cloud.")
	}
	if p.IsAdmin() {
		return e, "", nil
	}
	return e, p.ProjectID, nil
}

// groupID reads a group (or rule) id as Nova's validate_id does.
func groupID(field, id string) error {
	if !api.UUIDLike(id) {
		return badField(field, id, "Security group id should be uuid")
	}
	return nil
}

// groupText reads a group's name or description: a string of at most
// 255 characters (check_string_length); a name is not blank.
func groupText(in *api.Input, f string, required bool) *string {
	if _, ok := in.Obj[f]; !ok && !required {
		return nil
	}
	v := str(in, f, true, 0, 255)
	if in.Err == nil && f == "name" && strings.TrimSpace(v) == "" {
		in.Fail(badField(f, v, "Security group name cannot be empty"))
	}
	return &v
}

// asInvalid words a conflict of the network service as Nova's 400 (it
// maps Neutron's 409 to exception.Invalid); asForbidden as its 403
// (SecurityGroupLimitExceeded). Other errors, an unknown outcome among
// them, pass unchanged.
func asInvalid(err error) error {
	if store.KindOf(err) == store.KindConflict {
		return badRequest("%s", api.ProblemOf(err).Msg)
	}
	return err
}

func asForbidden(err error) error {
	if store.KindOf(err) == store.KindConflict {
		return forbidden("%s", api.ProblemOf(err).Msg)
	}
	return err
}

// groupByID finds group id among those the caller sees.
func (s *Service) groupByID(r *http.Request, id string) (SecurityGroupInfo, map[string]SecurityGroupInfo, error) {
	groups, err := s.proxyGroups(r, true)
	if err != nil {
		return SecurityGroupInfo{}, nil, err
	}
	byID := map[string]SecurityGroupInfo{}
	for _, g := range groups {
		byID[g.ID] = g
	}
	g, ok := byID[id]
	if !ok {
		return g, byID, notFound("Security group %s not found.", id)
	}
	return g, byID, nil
}

// groupBody reads a group's name and description from a create
// (required) or an update body.
func groupBody(r *http.Request, required bool) (name, desc *string, err error) {
	body, _, err := readBody(r, "security_group")
	if err != nil {
		return nil, nil, err
	}
	if err := allowOnly(body, "name", "description"); err != nil {
		return nil, nil, err
	}
	in := newInput(body)
	name, desc = groupText(in, "name", required), groupText(in, "description", required)
	return name, desc, in.Err
}

func (s *Service) createSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	edits, _, err := s.groupEdits(r, "os_compute_api:os-security-groups:create")
	if err != nil {
		return err
	}
	name, desc, err := groupBody(r, true)
	if err != nil {
		return err
	}
	g, err := edits.CreateSecurityGroup(r.Context(), principal(r).ProjectID, *name, *desc)
	if err != nil {
		return asForbidden(err)
	}
	api.JSON(w, http.StatusOK, map[string]any{"security_group": novaGroup(g, nil)})
	return nil
}

func (s *Service) updateSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	edits, scope, err := s.groupEdits(r, "os_compute_api:os-security-groups:update")
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	if err := groupID("id", id); err != nil {
		return err
	}
	if _, _, err := s.groupByID(r, id); err != nil {
		return err
	}
	name, desc, err := groupBody(r, false)
	if err != nil {
		return err
	}
	if _, err := edits.UpdateSecurityGroup(r.Context(), scope, id, name, desc); err != nil {
		return asInvalid(err)
	}
	g, byID, err := s.groupByID(r, id)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"security_group": novaGroup(g, byID)})
	return nil
}

func (s *Service) deleteSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	return s.deleteByID(w, r, "os_compute_api:os-security-groups:delete", SecurityGroupEdits.DeleteSecurityGroup)
}

// deleteByID deletes the group or rule the path names with del, checked
// by policy rule, and answers 202 as Nova does.
func (s *Service) deleteByID(w http.ResponseWriter, r *http.Request, rule string, del func(SecurityGroupEdits, context.Context, string, string) error) error {
	edits, scope, err := s.groupEdits(r, rule)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	if err := groupID("id", id); err != nil {
		return err
	}
	if err := del(edits, r.Context(), scope, id); err != nil {
		return asInvalid(err)
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// ruleRequest is a rule as Nova reads it from os-security-group-rules.
type ruleRequest struct {
	parent, group, cidr, proto string
	from, to                   *int
}

// readRuleRequest reads and checks a rule as Nova's _new_ingress_rule
// does, in its words: its ports default to every port (every ICMP type)
// for a rule from a group; a rule from an address range names its
// protocol and ports.
func readRuleRequest(o api.Object) (ruleRequest, error) {
	var q ruleRequest
	if err := allowOnly(o, "parent_group_id", "ip_protocol", "from_port", "to_port", "cidr", "group_id"); err != nil {
		return q, err
	}
	text := func(f string) (string, error) {
		switch v := o[f].(type) {
		case nil:
			return "", nil
		case string:
			return v, nil
		default:
			return "", badField(f, v, "%s is not of type 'string'", api.Text(v))
		}
	}
	var err error
	for f, dst := range map[string]*string{"parent_group_id": &q.parent, "group_id": &q.group, "cidr": &q.cidr, "ip_protocol": &q.proto} {
		if *dst, err = text(f); err != nil {
			return q, err
		}
	}
	if err := groupID("parent_group_id", q.parent); err != nil {
		return q, err
	}
	if q.group != "" && q.cidr != "" {
		return q, badField("cidr", q.cidr, "Only one of cidr and group_id may be given.")
	}
	if q.group != "" {
		if err := groupID("group_id", q.group); err != nil {
			return q, err
		}
	} else if q.cidr, err = ruleCIDR(q.cidr); err != nil {
		return q, err
	}
	proto := strings.ToUpper(q.proto)
	if proto != "" && proto != "TCP" && proto != "UDP" && proto != "ICMP" {
		return q, badField("ip_protocol", q.proto, "Invalid IP protocol %s.", q.proto)
	}
	_, hasFrom := o["from_port"]
	_, hasTo := o["to_port"]
	hasFrom, hasTo = hasFrom && o["from_port"] != nil, hasTo && o["to_port"] != nil
	if q.group != "" && !hasFrom && !hasTo {
		switch proto {
		case "ICMP":
			q.from, q.to = intPtr(-1), intPtr(-1)
		case "TCP", "UDP":
			q.from, q.to = intPtr(1), intPtr(65535)
		}
		if q.from != nil {
			hasFrom, hasTo = true, true
			o = api.Object{"from_port": float64(*q.from), "to_port": float64(*q.to)}
		}
	}
	if q.proto == "" || !hasFrom || !hasTo {
		if q.group == "" {
			return q, badRequest("Not enough parameters to build a valid rule.")
		}
		if q.proto != "" || hasFrom || hasTo {
			// Nova keeps a group rule with a partial protocol and ports
			// as a rule of every protocol; Neutron would refuse ports
			// without a protocol. Name what is missing instead.
			return q, badRequest("Invalid input for field/attribute ip_protocol. A rule with a protocol needs from_port and to_port, and ports need a protocol.")
		}
		return q, nil
	}
	from, okFrom := api.ToInt(o["from_port"])
	to, okTo := api.ToInt(o["to_port"])
	if !okFrom || !okTo {
		field, v := "from_port", o["from_port"]
		if okFrom {
			field, v = "to_port", o["to_port"]
		}
		if proto == "ICMP" {
			return q, badField(field, v, "Type and Code must be integers for ICMP protocol type")
		}
		return q, badField(field, v, "To and From ports must be integers")
	}
	// rangeErr is Nova's InvalidPortRange, naming the port at fault:
	// from_port unless only to_port is out of range.
	rangeErr := func(toAtFault bool, msg string) error {
		field, v := "from_port", from
		if toAtFault {
			field, v = "to_port", to
		}
		return badField(field, v, "Invalid port range %d:%d. %s", from, to, msg)
	}
	switch proto {
	case "TCP", "UDP":
		if from > to {
			return q, rangeErr(false, "Former value cannot be greater than the later")
		}
		if from < 1 || to > 65535 {
			return q, rangeErr(from >= 1, "Valid "+proto+" ports should be between 1-65535")
		}
	case "ICMP":
		if from < -1 || from > 255 || to < -1 || to > 255 {
			return q, rangeErr(from >= -1 && from <= 255, "For ICMP, the type:code must be valid")
		}
	}
	q.proto = strings.ToLower(q.proto)
	q.from, q.to = intPtr(from), intPtr(to)
	return q, nil
}

func intPtr(n int) *int { return &n }

// ruleCIDR reads a rule's address range as Nova's parse_cidr: none is
// every IPv4 address; a network of prefix 0 is only 0.0.0.0 or ::; an
// address alone is a range of one.
func ruleCIDR(cidr string) (string, error) {
	if cidr == "" {
		return "0.0.0.0/0", nil
	}
	raw := cidr
	if u, err := url.PathUnescape(cidr); err == nil {
		cidr = u
	}
	bad := func(format string) error { return badField("cidr", raw, format, raw) }
	pfx, err := netip.ParsePrefix(cidr)
	if err != nil {
		a, aerr := netip.ParseAddr(cidr)
		if aerr != nil || a.Zone() != "" {
			return "", bad("%s is not a valid IP network.")
		}
		return netip.PrefixFrom(a, a.BitLen()).String(), nil
	}
	if pfx.Bits() == 0 && !pfx.Addr().IsUnspecified() {
		return "", bad("Bad prefix for network in cidr %s")
	}
	return pfx.String(), nil
}

// sameNovaRule is Nova's _rule_exists: the same source, protocol and
// ports, as Nova shows them.
func sameNovaRule(have SecurityGroupRuleInfo, q ruleRequest) bool {
	if have.Direction != "ingress" || have.RemoteGroupID != q.group || !strings.EqualFold(have.Protocol, q.proto) {
		return false
	}
	if q.group == "" && anyNet(have.RemoteIPPrefix) != anyNet(q.cidr) {
		return false
	}
	from, to := novaPorts(have)
	want := func(p *int) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return from == want(q.from) && to == want(q.to)
}

// anyNet is a range by its network ("" for every IPv4 address), so that
// 10.2.3.124/24 is the same rule as 10.2.3.0/24, as Neutron finds it.
func anyNet(cidr string) string {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		cidr = p.Masked().String()
	}
	if cidr == "" || cidr == "0.0.0.0/0" {
		return ""
	}
	return cidr
}

func (s *Service) createSecurityGroupRule(w http.ResponseWriter, r *http.Request) error {
	edits, scope, err := s.groupEdits(r, "os_compute_api:os-security-groups:rule:create")
	if err != nil {
		return err
	}
	body, _, err := readBody(r, "security_group_rule")
	if err != nil {
		return err
	}
	q, err := readRuleRequest(body)
	if err != nil {
		return err
	}
	g, byID, err := s.groupByID(r, q.parent)
	if err != nil {
		return err
	}
	if q.group != "" {
		if _, ok := byID[q.group]; !ok {
			return notFound("Security group %s not found.", q.group)
		}
	}
	for _, rl := range g.Rules {
		if sameNovaRule(rl, q) {
			return badRequest("This rule already exists in group %s", g.ID)
		}
	}
	rule := SecurityGroupRuleInfo{Direction: "ingress", Protocol: q.proto, RemoteGroupID: q.group}
	if q.group == "" {
		rule.RemoteIPPrefix = q.cidr
	}
	// Nova leaves a port of -1 (any ICMP type or code) out of the rule.
	if q.from != nil && *q.from != -1 {
		rule.PortMin = q.from
	}
	if q.to != nil && *q.to != -1 {
		rule.PortMax = q.to
	}
	made, err := edits.CreateSecurityGroupRule(r.Context(), scope, g.ID, rule)
	switch {
	case store.KindOf(err) == store.KindConflict && api.ProblemOf(err).Fault == "SecurityGroupRuleExists":
		return badRequest("This rule already exists in group %s", g.ID)
	case err != nil:
		return asForbidden(err)
	}
	api.JSON(w, http.StatusOK, map[string]any{"security_group_rule": novaRule(g, made, byID)})
	return nil
}

func (s *Service) deleteSecurityGroupRule(w http.ResponseWriter, r *http.Request) error {
	return s.deleteByID(w, r, "os_compute_api:os-security-groups:rule:delete", SecurityGroupEdits.DeleteSecurityGroupRule)
}
