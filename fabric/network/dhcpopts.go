package network

import (
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// Extra DHCP options (Neutron's extra_dhcp_opt): a port's
// extra_dhcp_opts, [{opt_name, opt_value, ip_version}], which the node's
// DHCP server adds to its answers to the port.

// maxDHCPOpts bounds one port's options; dnsmasq has a few hundred option
// names, and no port needs them all.
const maxDHCPOpts = 64

// DHCPOption is an extra DHCP option of a port.
type DHCPOption = netstate.DHCPOption

// dhcpOptChange is one entry of an update: a nil Value removes the option
// of that name and IP version, as in Neutron.
type dhcpOptChange struct {
	Name      string  `json:"opt_name"`
	Value     *string `json:"opt_value"`
	IPVersion int     `json:"ip_version"`
}

// readDHCPOpts reads extra_dhcp_opts: a list of {opt_name, opt_value,
// ip_version (4 or 6, default 4)}; opt_value null means "remove".
func readDHCPOpts(rd *api.Input) []dhcpOptChange {
	dicts := rd.Objects("extra_dhcp_opts")
	if rd.Err != nil {
		return nil
	}
	if len(dicts) > maxDHCPOpts {
		rd.Fail(badInput("extra_dhcp_opts", "a port has at most %d extra DHCP options", maxDHCPOpts))
		return nil
	}
	out := make([]dhcpOptChange, 0, len(dicts))
	type key struct {
		name    string
		version int
	}
	seen := map[key]bool{}
	for _, d := range dicts {
		for k := range d {
			if k != "opt_name" && k != "opt_value" && k != "ip_version" {
				rd.Fail(badInput("extra_dhcp_opts", "Unrecognized attribute(s) '%s'", k))
				return nil
			}
		}
		sub := input(d)
		o := dhcpOptChange{Name: strings.TrimSpace(sub.Str("opt_name", "", 64)), IPVersion: 4}
		if !sub.IsNull("opt_value") {
			v := sub.Str("opt_value", "", 255)
			if sub.Err == nil && strings.TrimSpace(v) == "" {
				rd.Fail(badInput("extra_dhcp_opts", "opt_value of %s is empty", o.Name))
				return nil
			}
			o.Value = &v
		}
		if sub.Has("ip_version") {
			v := integer(sub, "ip_version")
			if sub.Err == nil && (v == nil || *v != 4 && *v != 6) {
				rd.Fail(badInput("extra_dhcp_opts", "ip_version must be 4 or 6"))
				return nil
			}
			if v != nil {
				o.IPVersion = *v
			}
		}
		switch {
		case sub.Err != nil:
			rd.Fail(badInput("extra_dhcp_opts", "%v", sub.Err))
			return nil
		case o.Name == "":
			rd.Fail(badInput("extra_dhcp_opts", "opt_name is required"))
			return nil
		}
		k := key{o.Name, o.IPVersion}
		if seen[k] {
			rd.Fail(badInput("extra_dhcp_opts", "Duplicate option %s for IPv%d", o.Name, o.IPVersion))
			return nil
		}
		seen[k] = true
		out = append(out, o)
	}
	return out
}

// mergeDHCPOpts applies changes to opts as Neutron does: an option of the
// same name and IP version is replaced, or removed by a null value;
// others are added.
func mergeDHCPOpts(opts []DHCPOption, changes []dhcpOptChange) []DHCPOption {
	out := append([]DHCPOption{}, opts...)
	for _, c := range changes {
		i := -1
		for j, o := range out {
			if o.Name == c.Name && o.IPVersion == c.IPVersion {
				i = j
			}
		}
		switch {
		case c.Value == nil && i >= 0:
			out = append(out[:i], out[i+1:]...)
		case c.Value == nil:
		case i >= 0:
			out[i].Value = *c.Value
		default:
			out = append(out, DHCPOption{Name: c.Name, Value: *c.Value, IPVersion: c.IPVersion})
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func dhcpOptsView(opts []DHCPOption) []map[string]any {
	out := make([]map[string]any, 0, len(opts))
	for _, o := range opts {
		out = append(out, map[string]any{"opt_name": o.Name, "opt_value": o.Value, "ip_version": o.IPVersion})
	}
	return out
}
