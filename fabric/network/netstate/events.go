package netstate

import (
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
)

// EventResources are how networks, subnets, ports, routers, floating IPs,
// security groups and their rules, and subnet pools appear in the event
// log. Networks, subnets and routers keep no
// status (a network's is always ACTIVE, a router's is the node's
// forwarding, neither a change of the row): their creation, deletion and
// the changes of what Detail names are their events.
func EventResources() []eventstate.Resource {
	return []eventstate.Resource{
		{Table: TableNetworks, Type: eventstate.Network, Describe: func(row any) eventstate.Subject {
			n := row.(*Network)
			return eventstate.Subject{ID: n.ID, Project: n.Project, Status: "ACTIVE", Detail: adminDown(n.AdminStateUp)}
		}},
		{Table: TableSubnets, Type: eventstate.Subnet, Describe: func(row any) eventstate.Subject {
			s := row.(*Subnet)
			return eventstate.Subject{ID: s.ID, Project: s.Project, Detail: s.CIDR + " on network " + s.NetworkID}
		}},
		{Table: TablePorts, Type: eventstate.Port, Describe: func(row any) eventstate.Subject {
			p := row.(*Port)
			s := eventstate.Subject{ID: p.ID, Project: p.Project, Status: p.Status}
			if p.DeviceID != "" {
				s.Detail = "on " + p.DeviceOwner + " " + p.DeviceID
			}
			return s
		}},
		{Table: TableRouters, Type: eventstate.Router, Describe: func(row any) eventstate.Subject {
			r := row.(*Router)
			s := eventstate.Subject{ID: r.ID, Project: r.Project, Detail: adminDown(r.AdminStateUp)}
			if r.Gateway != nil {
				s.Detail = join(s.Detail, "gateway on network "+r.Gateway.NetworkID)
			}
			return s
		}},
		{Table: TableFloatingIPs, Type: eventstate.FloatingIP, Describe: func(row any) eventstate.Subject {
			f := row.(*FloatingIP)
			s := eventstate.Subject{ID: f.ID, Project: f.Project, Status: f.Status}
			if f.FixedPortID != "" {
				s.Detail = "associated with port " + f.FixedPortID + " (" + f.FixedIP + ")"
			}
			return s
		}},
		{Table: TableGroups, Type: eventstate.SecurityGroup, Describe: func(row any) eventstate.Subject {
			g := row.(*SecurityGroup)
			return eventstate.Subject{ID: g.ID, Project: g.Project}
		}},
		// A rule's event names its group, so the rules a group gained and
		// lost can be read beside it.
		{Table: TableRules, Type: eventstate.SGRule, Describe: func(row any) eventstate.Subject {
			r := row.(*SecurityGroupRule)
			return eventstate.Subject{ID: r.ID, Project: r.Project, Detail: ruleText(r)}
		}},
		{Table: TableSubnetPools, Type: eventstate.SubnetPool, Describe: func(row any) eventstate.Subject {
			p := row.(*SubnetPool)
			return eventstate.Subject{ID: p.ID, Project: p.Project, Detail: strings.Join(p.Prefixes, " ")}
		}},
	}
}

// ruleText says what a rule lets through, for its events.
func ruleText(r *SecurityGroupRule) string {
	proto := r.ProtocolName
	if proto == "" {
		proto = "any"
	}
	s := r.Direction + " " + r.EtherType + " " + proto
	if r.PortMin != nil {
		s += " " + strconv.Itoa(*r.PortMin)
		if r.PortMax != nil && *r.PortMax != *r.PortMin {
			s += "-" + strconv.Itoa(*r.PortMax)
		}
	}
	switch {
	case r.RemoteIPPrefix != "":
		s += " from " + r.RemoteIPPrefix
	case r.RemoteGroupID != "":
		s += " from group " + r.RemoteGroupID
	case r.RemoteAddressGroupID != "":
		s += " from address group " + r.RemoteAddressGroupID
	}
	return s + " in group " + r.GroupID
}

func adminDown(up bool) string {
	if up {
		return ""
	}
	return "admin state down"
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}
