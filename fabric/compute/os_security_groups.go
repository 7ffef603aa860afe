package compute

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// Nova's os-security-groups proxy, read side: the security groups of the
// caller's project as Nova shows them from Neutron (ingress rules only),
// up to microversion 2.35, where Nova removed its network proxies. The
// openstack CLI finds a group through it before add/remove security
// group. Making and deleting groups is Neutron's API, not this one.

// proxyGroups lists the groups p may see: its project's; an admin's
// show (all) also another project's.
func (s *Service) proxyGroups(r *http.Request, all bool) ([]SecurityGroupInfo, error) {
	if atLeast(r, 36) {
		return nil, unknownResource()
	}
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

// novaGroup is Nova's view of a group: its ingress rules, each with its
// ports (a whole range for TCP/UDP, -1 for others, when the rule has
// none) and its source, a group or an address range.
func novaGroup(g SecurityGroupInfo, groups map[string]SecurityGroupInfo) map[string]any {
	rules := []any{}
	for _, rl := range g.Rules {
		if rl.Direction != "ingress" {
			continue
		}
		var proto any
		var from, to any = intOrNil(rl.PortMin), intOrNil(rl.PortMax)
		if rl.Protocol != "" {
			proto = rl.Protocol
			if rl.PortMin == nil && rl.PortMax == nil {
				from, to = -1, -1
				if p := strings.ToUpper(rl.Protocol); p == "TCP" || p == "UDP" || p == "6" || p == "17" {
					from, to = 1, 65535
				}
			}
		}
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
		rules = append(rules, v)
	}
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.Project, "rules": rules}
}

func intOrNil(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
