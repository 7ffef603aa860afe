package compute

import (
	"net/http"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's os-security-groups proxy, read side: the security groups of the
// caller's project as Nova shows them from Neutron (ingress rules only),
// up to microversion 2.35, where Nova removed its network proxies. The
// openstack CLI finds a group through it before add/remove security
// group. The write side (os_security_groups_write.go) makes and changes
// groups and rules through the network service, as Nova asks Neutron.

// proxyGroups lists the groups p may see: its project's; an admin's
// show (all) also another project's.
func (s *Service) proxyGroups(r *http.Request, all bool) ([]SecurityGroupInfo, error) {
	if atLeast(r, 36) {
		return nil, unknownResource()
	}
	return s.visibleGroups(r, all)
}

// visibleGroups is proxyGroups at any microversion.
func (s *Service) visibleGroups(r *http.Request, all bool) ([]SecurityGroupInfo, error) {
	sgp, ok := s.cfg.Ports.(SecurityGroupPorts)
	if !ok {
		return nil, notImplemented("Security groups are not available from the compute API of this cloud.")
	}
	project := principal(r).ProjectID
	if all && principal(r).IsAdmin() {
		project = ""
	}
	return sgp.SecurityGroups(r.Context(), project)
}

func (s *Service) listSecurityGroups(w http.ResponseWriter, r *http.Request) error {
	groups, err := s.proxyGroups(r, false)
	if err != nil {
		return err
	}
	names := map[string]SecurityGroupInfo{}
	for _, g := range groups {
		names[g.ID] = g
	}
	out := []any{}
	for _, g := range groups {
		out = append(out, novaGroup(g, names))
	}
	api.JSON(w, http.StatusOK, map[string]any{"security_groups": out})
	return nil
}

func (s *Service) showSecurityGroup(w http.ResponseWriter, r *http.Request) error {
	groups, err := s.proxyGroups(r, true)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	names := map[string]SecurityGroupInfo{}
	for _, g := range groups {
		names[g.ID] = g
	}
	g, ok := names[id]
	if !ok {
		return notFound("Security group %s not found.", id)
	}
	api.JSON(w, http.StatusOK, map[string]any{"security_group": novaGroup(g, names)})
	return nil
}

// listServerSecurityGroups lists the groups on a server's ports, as Nova
// finds them from the server's ports in Neutron, sorted as Nova sorts
// them (project, then name). Nova keeps it after 2.35.
func (s *Service) listServerSecurityGroups(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "")
	if err != nil {
		return err
	}
	groups, err := s.visibleGroups(r, true)
	if err != nil {
		return err
	}
	on := map[string]bool{}
	for _, id := range sv.Ports {
		pt, err := s.cfg.Ports.Port(r.Context(), nil, id)
		if store.KindOf(err) == store.KindNotFound {
			continue // a port deleted since the server was read
		}
		if err != nil {
			return err
		}
		for _, g := range pt.SecurityGroups {
			on[g] = true
		}
	}
	byID := map[string]SecurityGroupInfo{}
	for _, g := range groups {
		byID[g.ID] = g
	}
	var mine []SecurityGroupInfo
	for _, g := range groups {
		if on[g.ID] {
			mine = append(mine, g)
		}
	}
	sort.SliceStable(mine, func(i, j int) bool {
		return mine[i].Project < mine[j].Project || (mine[i].Project == mine[j].Project && mine[i].Name < mine[j].Name)
	})
	out := []any{}
	for _, g := range mine {
		out = append(out, novaGroup(g, byID))
	}
	api.JSON(w, http.StatusOK, map[string]any{"security_groups": out})
	return nil
}

// novaGroup is Nova's view of a group: its ingress rules in Nova's shape.
func novaGroup(g SecurityGroupInfo, groups map[string]SecurityGroupInfo) map[string]any {
	rules := []any{}
	for _, rl := range g.Rules {
		if rl.Direction == "ingress" {
			rules = append(rules, novaRule(g, rl, groups))
		}
	}
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.Project, "rules": rules}
}

// novaRule is Nova's view of an ingress rule of g: its ports and its
// source, a group or an address range.
func novaRule(g SecurityGroupInfo, rl SecurityGroupRuleInfo, groups map[string]SecurityGroupInfo) map[string]any {
	var proto any
	if rl.Protocol != "" {
		proto = rl.Protocol
	}
	from, to := novaPorts(rl)
	v := map[string]any{"id": rl.ID, "parent_group_id": g.ID, "ip_protocol": proto, "from_port": from, "to_port": to,
		"group": map[string]any{}, "ip_range": map[string]any{}}
	switch {
	case rl.RemoteGroupID != "":
		v["group"] = map[string]any{"name": groups[rl.RemoteGroupID].Name, "tenant_id": g.Project}
	case rl.RemoteIPPrefix != "":
		v["ip_range"] = map[string]any{"cidr": rl.RemoteIPPrefix}
	default:
		v["ip_range"] = map[string]any{"cidr": "0.0.0.0/0"}
	}
	return v
}

// novaPorts are a rule's ports as Nova shows them: a whole range for
// TCP/UDP, -1 for others, when a rule with a protocol has none.
func novaPorts(rl SecurityGroupRuleInfo) (from, to any) {
	from, to = intOrNil(rl.PortMin), intOrNil(rl.PortMax)
	if rl.Protocol != "" && rl.PortMin == nil && rl.PortMax == nil {
		from, to = -1, -1
		if p := strings.ToUpper(rl.Protocol); p == "TCP" || p == "UDP" || p == "6" || p == "17" {
			from, to = 1, 65535
		}
	}
	return from, to
}

func intOrNil(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
