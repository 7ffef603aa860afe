package ports

import (
	"net/netip"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// Metering labels and address scopes as one node enforces them on the
// routers of its ports.

// addMeters adds to d the metering labels that count on d's routers with
// an external gateway: a label counts on its project's routers, a shared
// one on every router.
func addMeters(d *dataplane.Desired, v *netstate.View) {
	project := map[string]string{}
	for _, r := range v.Routers {
		project[r.ID] = r.Project
	}
	rules := map[string][]netstate.MeteringRule{}
	for _, m := range v.Meters {
		rules[m.LabelID] = append(rules[m.LabelID], m)
	}
	for _, l := range v.Labels {
		var routers []string
		for _, r := range d.Routers {
			if r.Gateway != nil && (l.Shared || project[r.ID] == l.Project) {
				routers = append(routers, r.ID)
			}
		}
		if len(routers) == 0 {
			continue
		}
		me := dataplane.Meter{Label: l.ID, Project: l.Project, Routers: routers}
		for _, m := range rules[l.ID] {
			me.Rules = append(me.Rules, meterRule(m))
		}
		d.Meters = append(d.Meters, me)
	}
}

// meterRule is m with its sides named as the router sees them: remote_ip_prefix
// is the outside; source and destination are the port's side and the
// outside's by direction. An unparsable or absent prefix is any.
func meterRule(m netstate.MeteringRule) dataplane.MeterRule {
	parse := func(s string) netip.Prefix {
		p, _ := netip.ParsePrefix(s)
		return p
	}
	r := dataplane.MeterRule{Egress: m.Direction == "egress", Excluded: m.Excluded}
	if m.Remote != "" {
		r.Remote = parse(m.Remote)
		return r
	}
	src, dst := parse(m.Source), parse(m.Destination)
	if r.Egress {
		r.Local, r.Remote = src, dst
	} else {
		r.Local, r.Remote = dst, src
	}
	return r
}

// subnetScopes maps each subnet from a pool of an address scope to that
// scope; a subnet in none is not in it.
func subnetScopes(v *netstate.View) map[string]string {
	pools := map[string]string{} // pool → its scope
	for _, p := range v.Pools {
		pools[p.ID] = p.AddressScopeID
	}
	scopeOf := map[string]string{}
	for _, s := range v.Subnets {
		if s.SubnetPoolID != "" && pools[s.SubnetPoolID] != "" {
			scopeOf[s.ID] = pools[s.SubnetPoolID]
		}
	}
	return scopeOf
}

// markSameScope marks dr's interfaces on subnets in the address scope of
// its gateway's subnet: Neutron routes them to the external network
// without SNAT, their addresses being unique in the scope. It sets the
// gateway's scope (that of its IPv4 subnet) too.
func markSameScope(dr *dataplane.Router, gw netstate.Port, scopeOf map[string]string) {
	var scope string
	for _, f := range gw.FixedIPs {
		if a, err := netip.ParseAddr(f.IP); err == nil && a.Is4() {
			scope = scopeOf[f.SubnetID]
			break
		}
	}
	dr.Gateway.Scope = scope
	if scope == "" {
		return
	}
	for i := range dr.Interfaces {
		if dr.Interfaces[i].Scope == scope {
			dr.Interfaces[i].NoSNAT = true
		}
	}
}
