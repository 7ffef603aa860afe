package network

import (
	"cmp"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var ruleAttrs = newAttrSpec(
	"",
	"security_group_id direction ethertype protocol port_range_min port_range_max remote_ip_prefix remote_group_id "+
		"remote_address_group_id "+
		"description tenant_id project_id",
	"id created_at updated_at revision_number")

// protocols are the IP protocol names Neutron knows.
var protocols = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4,
	"ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// ipv6OnlyProtocols are the protocols (by number) Neutron refuses in an
// IPv4 rule: ipv6-encap, -route, -frag, -icmp, -nonxt, -opts.
var ipv6OnlyProtocols = map[string]bool{"41": true, "43": true, "44": true, "58": true, "59": true, "60": true}

// portProtocols take port ranges; icmpProtocols take type and code.
var (
	portProtocols = map[string]bool{"6": true, "17": true, "132": true, "33": true, "136": true}
	icmpProtocols = map[string]bool{"1": true, "58": true}
)

func ruleView(r *SecurityGroupRule) api.View {
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
		"remote_ip_prefix": nullable(cmp.Or(r.RemoteIPPrefixGiven, r.RemoteIPPrefix)), "remote_group_id": nullable(r.RemoteGroupID), "remote_address_group_id": nullable(r.RemoteAddressGroupID),
		"tenant_id": r.Project, "project_id": r.Project, "description": r.Description,
		"created_at": timeText(r.CreatedAt), "updated_at": timeText(r.UpdatedAt), "revision_number": r.Revision,
	}
}

// rules is the security group rules collection: a project's own.
func (s *Service) rules(*memdb.Txn) api.Collection[SecurityGroupRule] {
	return api.Collection[SecurityGroupRule]{Table: tRules, One: "security_group_rule",
		Project:  func(rl *SecurityGroupRule) string { return rl.Project },
		View:     func(_ *memdb.Txn, _ *api.Principal, rl *SecurityGroupRule) api.View { return ruleView(rl) },
		NotFound: func(id string) error { return notFound("security_group_rule", id) }, Listing: s.listing("security_group_rules")}
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
	g, err := s.groups(tx).Get(tx, p, rl.GroupID)
	if err != nil {
		return rl, err
	}
	if g.Project != project && !p.IsAdmin() {
		if p.CanRead(g.Project) || groupSharedWith(tx, g, p.ProjectID) {
			// Seen (shared with the caller), not its to add rules to.
			return rl, policyDenied("create_security_group_rule")
		}
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
	if ipv6OnlyProtocols[rl.Protocol] && rl.EtherType == "IPv4" {
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
	rl.RemoteAddressGroupID = s.readRemoteAddrGroup(tx, p, rd)
	if rd.Err != nil {
		return rl, rd.Err
	}
	if rl.RemoteAddressGroupID != "" && (prefix != "" || rl.RemoteGroupID != "") {
		return rl, store.Fault(store.KindInvalid, "SecurityGroupMultipleRemoteEntites",
			"Only one of remote_ip_prefix, remote_group_id or remote_address_group_id may be provided.")
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
		rl.RemoteIPPrefix, rl.RemoteIPPrefixGiven = pfx.String(), givenPrefix(prefix, pfx)
	}
	if rl.RemoteGroupID != "" {
		rg := store.Get[SecurityGroup](tx, tGroups, rl.RemoteGroupID)
		if rg == nil || !(p.CanRead(rg.Project) || groupSharedWith(tx, rg, p.ProjectID)) {
			return rl, notFound("security_group", rl.RemoteGroupID)
		}
	}
	return rl, nil
}

// givenPrefix is a rule's range as the client wrote it when that has
// host bits (10.2.3.124/24, as Neutron shows it back), else "".
func givenPrefix(raw string, pfx netip.Prefix) string {
	if p, err := netip.ParsePrefix(strings.TrimSpace(raw)); err == nil && p != pfx {
		return p.String()
	}
	return ""
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

func (s *Service) ruleCreation() creation[SecurityGroupRule, SecurityGroupRule] {
	return creation[SecurityGroupRule, SecurityGroupRule]{one: "security_group_rule", many: "security_group_rules", parse: s.parseRule,
		command: func(_ *memdb.Txn, rls []SecurityGroupRule) (string, any) {
			return cmdRuleCreate, ruleCreateCmd{Rules: rls}
		},
		view: func(_ *memdb.Txn, _ *api.Principal, rl *SecurityGroupRule) api.View { return ruleView(rl) }}
}

func (s *Service) deleteRule(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdRuleDelete, "delete_security_group_rule", s.writableRule)
}

func (s *Service) writableRule(tx *memdb.Txn, p *api.Principal, id, action string) (*SecurityGroupRule, error) {
	rl, err := s.rules(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(rl.Project) {
		return nil, policyDenied(action)
	}
	return rl, nil
}
