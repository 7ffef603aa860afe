package network

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var portAttrs = newAttrSpec(
	"name description admin_state_up fixed_ips device_id device_owner security_groups port_security_enabled "+
		"allowed_address_pairs binding:host_id binding:vnic_type binding:profile mac_address extra_dhcp_opts qos_policy_id",
	"network_id tenant_id project_id tags",
	"id status binding:vif_type binding:vif_details created_at updated_at revision_number qos_network_policy_id")

// maxAddressPairs is Neutron's default max_allowed_address_pair.
const maxAddressPairs = 10

// canSeePort: the port's project and the network's owner see a port.
func canSeePort(tx *memdb.Txn, p *api.Principal, pt *Port) bool {
	if p.CanRead(pt.Project) {
		return true
	}
	n := store.Get[Network](tx, tNetworks, pt.NetworkID)
	return n != nil && p.CanRead(n.Project)
}

// ports is the ports collection as seen in tx.
func (s *Service) ports(tx *memdb.Txn) api.Collection[Port] {
	return api.Collection[Port]{Table: tPorts, One: "port",
		Visible:  func(p *api.Principal, pt *Port) bool { return canSeePort(tx, p, pt) },
		View:     func(tx *memdb.Txn, _ *api.Principal, pt *Port) api.View { return s.portView(tx, pt) },
		NotFound: func(id string) error { return notFound("port", id) }, Listing: s.listing("ports")}
}

// writablePort returns the port if the caller may change it: its
// project's or its network's owner.
func (s *Service) writablePort(tx *memdb.Txn, p *api.Principal, id, action string) (*Port, error) {
	pt, err := s.ports(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(pt.Project) {
		if n := store.Get[Network](tx, tNetworks, pt.NetworkID); n == nil || !p.CanWrite(n.Project) {
			return nil, policyDenied(action)
		}
	}
	return pt, nil
}

// portView shows a port, with the status portStatus gives it.
func (s *Service) portView(tx *memdb.Txn, pt *Port) api.View {
	// Neutron lists a port's addresses ordered by address (as text), then
	// subnet, whatever order they were asked for in; clients index them.
	fixed := slices.Clone(pt.FixedIPs)
	slices.SortStableFunc(fixed, func(a, b FixedIP) int {
		return cmp.Or(strings.Compare(a.IP, b.IP), strings.Compare(a.SubnetID, b.SubnetID))
	})
	ips := make([]map[string]any, 0, len(fixed))
	for _, f := range fixed {
		ips = append(ips, map[string]any{"subnet_id": f.SubnetID, "ip_address": f.IP})
	}
	pairs := make([]map[string]any, 0, len(pt.AllowedAddressPairs))
	for _, a := range pt.AllowedAddressPairs {
		pairs = append(pairs, map[string]any{"ip_address": a.IP, "mac_address": a.MAC})
	}
	groups := pt.SecurityGroups
	if groups == nil {
		groups = []string{}
	}
	vif := "unbound"
	if pt.HostID != "" {
		vif = "tap"
	}
	v := map[string]any{
		"id": pt.ID, "name": pt.Name, "description": pt.Description, "network_id": pt.NetworkID,
		"tenant_id": pt.Project, "project_id": pt.Project, "mac_address": pt.MAC, "admin_state_up": pt.AdminStateUp,
		"status": s.portStatus(tx, pt), "device_id": pt.DeviceID, "device_owner": pt.DeviceOwner, "fixed_ips": ips,
		"allowed_address_pairs": pairs, "security_groups": groups, "port_security_enabled": pt.PortSecurity,
		"binding:host_id": pt.HostID, "binding:vif_type": vif, "binding:vif_details": map[string]any{},
		"binding:vnic_type": pt.VNICType, "binding:profile": profileView(pt.BindingProfile), "extra_dhcp_opts": dhcpOptsView(pt.ExtraDHCPOpts),
		"created_at": timeText(pt.CreatedAt), "updated_at": timeText(pt.UpdatedAt), "revision_number": pt.Revision, "tags": tagList(pt.Tags),
		"qos_policy_id": nullable(pt.QoSPolicyID), "qos_network_policy_id": qosNetworkPolicy(tx, pt),
	}
	if d := trunkDetails(tx, pt); d != nil {
		v["trunk_details"] = d
	}
	return v
}

// byFixedIPs filters ports by fixed_ips=ip_address=X, subnet_id=Y or
// ip_address_substr=Z: a port passes if one of its addresses satisfies
// every key given.
func byFixedIPs(v api.View, want []string) (bool, error) {
	conds := map[string][]string{}
	for _, w := range want {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			continue
		}
		conds[k] = append(conds[k], v)
	}
	ips, _ := v["fixed_ips"].([]map[string]any)
	for _, ip := range ips {
		all := true
		for k, vs := range conds {
			val := fmt.Sprint(ip[strings.TrimSuffix(k, "_substr")])
			hit := false
			for _, v := range vs {
				if val == v || strings.HasSuffix(k, "_substr") && strings.Contains(val, v) {
					hit = true
				}
			}
			all = all && hit
		}
		if all {
			return true, nil
		}
	}
	return false, nil
}

// readFixedIPs reads fixed_ips: [{subnet_id}, {ip_address}, or both].
// ownsNetwork says whether the caller may pick addresses itself.
func readFixedIPs(rd *api.Input, ownsNetwork bool) []ipRequest {
	dicts := rd.Objects("fixed_ips")
	out := make([]ipRequest, 0, len(dicts))
	seen := map[string]bool{}
	for _, d := range dicts {
		for k := range d {
			if k != "subnet_id" && k != "ip_address" {
				rd.Fail(badInput("fixed_ips", "Unrecognized attribute(s) '%s'", k))
				return nil
			}
		}
		sub := input(d)
		rq := ipRequest{SubnetID: sub.Str("subnet_id", "", 64), IP: sub.Str("ip_address", "", 64)}
		if sub.Err != nil {
			rd.Fail(badInput("fixed_ips", "%v", sub.Err))
			return nil
		}
		if rq.SubnetID == "" && rq.IP == "" {
			rd.Fail(badInput("fixed_ips", "each entry needs a subnet_id or an ip_address"))
			return nil
		}
		if rq.IP != "" {
			a, err := parseIP(rq.IP)
			if err != nil {
				rd.Fail(badInput("fixed_ips", "%v", err))
				return nil
			}
			rq.IP = a.String()
			if seen[rq.IP] {
				rd.Fail(badInput("fixed_ips", "Duplicate IP address '%s'", rq.IP))
				return nil
			}
			seen[rq.IP] = true
			if !ownsNetwork {
				rd.Fail(policyDenied("create_port:fixed_ips:ip_address"))
				return nil
			}
		}
		out = append(out, rq)
	}
	return out
}

// readPairs reads allowed_address_pairs.
func readPairs(rd *api.Input) []AddressPair {
	dicts := rd.Objects("allowed_address_pairs")
	if len(dicts) > maxAddressPairs {
		rd.Fail(store.Fault(store.KindInvalid, "AllowedAddressPairExhausted", "The number of allowed address pair exceeds the maximum %d.", maxAddressPairs))
		return nil
	}
	out := make([]AddressPair, 0, len(dicts))
	seen := map[AddressPair]bool{}
	for _, d := range dicts {
		for k := range d {
			if k != "ip_address" && k != "mac_address" {
				rd.Fail(badInput("allowed_address_pairs", "Unrecognized attribute(s) '%s'", k))
				return nil
			}
		}
		sub := input(d)
		ap := AddressPair{IP: strings.TrimSpace(sub.Str("ip_address", "", 64)), MAC: sub.Str("mac_address", "", 64)}
		if sub.Err != nil {
			rd.Fail(badInput("allowed_address_pairs", "%v", sub.Err))
			return nil
		}
		if ap.IP == "" {
			rd.Fail(store.Fault(store.KindInvalid, "AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address"))
			return nil
		}
		if _, err := parseCIDROrIP(ap.IP); err != nil {
			rd.Fail(badInput("allowed_address_pairs", "%v", err))
			return nil
		}
		if ap.MAC != "" {
			m, ok := validMAC(ap.MAC)
			if !ok {
				rd.Fail(badInput("allowed_address_pairs", "'%s' is not a valid MAC address", ap.MAC))
				return nil
			}
			ap.MAC = m
		}
		if seen[ap] {
			rd.Fail(store.Fault(store.KindInvalid, "DuplicateAddressPairInRequest", "Request contains duplicate address pair: mac_address %s ip_address %s.", ap.MAC, ap.IP))
			return nil
		}
		seen[ap] = true
		out = append(out, ap)
	}
	return out
}

// readGroups reads security_groups: a group named twice is refused, as
// neutron-lib's uuid_list validator does.
func readGroups(rd *api.Input) []string {
	list := rd.Strs("security_groups")
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, g := range list {
		if seen[g] {
			rd.Fail(badInput("security_groups", "Duplicate items in the list: '%s'", g))
			return nil
		}
		seen[g] = true
		out = append(out, g)
	}
	return out
}

// maxBindingProfile is the most binding:profile may take as JSON, as
// Neutron's column for it holds.
const maxBindingProfile = 4095

// readBinding reads binding:vnic_type and binding:profile; profile is
// nil when the request has none, an empty map when it clears it (null or
// {}). As in Neutron's policy, only an admin sets a profile that is not
// empty.
func readBinding(rd *api.Input, p *api.Principal) (profile *map[string]any) {
	if v := rd.Str("binding:vnic_type", "normal", 64); rd.Err == nil && v != "normal" {
		rd.Fail(badInput("binding:vnic_type", "%s is not in ['normal']", v))
	}
	if !rd.Has("binding:profile") || rd.Err != nil {
		return nil
	}
	m := map[string]any{}
	if !rd.IsNull("binding:profile") {
		v, ok := rd.Obj["binding:profile"].(map[string]any)
		if !ok {
			rd.Fail(badInput("binding:profile", "'%v' is not a dictionary", rd.Obj["binding:profile"]))
			return nil
		}
		if b, err := json.Marshal(v); err != nil || len(b) > maxBindingProfile {
			rd.Fail(badInput("binding:profile", "the profile is more than %d bytes of JSON", maxBindingProfile))
			return nil
		}
		m = v
	}
	if len(m) > 0 && !p.IsAdmin() {
		rd.Fail(policyDenied("port:binding:profile"))
		return nil
	}
	return &m
}

// profileView is a port's binding:profile as shown: {} when it has none.
func profileView(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func (s *Service) parsePort(tx *memdb.Txn, p *api.Principal, o api.Object) (portSpec, error) {
	var sp portSpec
	if err := portAttrs.check(o, http.MethodPost); err != nil {
		return sp, err
	}
	rd := input(o)
	now := s.now()
	pt := Port{ID: api.NewUUID(), Status: "DOWN", VNICType: "normal", CreatedAt: now, UpdatedAt: now}
	pt.NetworkID = rd.Str("network_id", "", 64)
	if rd.Err == nil && pt.NetworkID == "" {
		return sp, badInput("network_id", "'network_id' is a required property")
	}
	if rd.Err != nil {
		return sp, rd.Err
	}
	n, err := s.networks(tx).Get(tx, p, pt.NetworkID)
	if err != nil {
		return sp, err
	}
	owns := p.CanWrite(n.Project)
	pt.Project = readProject(rd, p)
	if rd.Err == nil {
		if err := checkNetworkOwnership(tx, p, n, pt.Project, "port"); err != nil {
			return sp, err
		}
		// Allowed by sharing alone: checked again when applied, in case
		// the sharing went in between.
		sp.BySharing = !p.IsAdmin() && n.Project != pt.Project
	}
	pt.Name = rd.Str("name", "", 255)
	pt.Description = rd.Str("description", "", 255)
	pt.AdminStateUp = rd.Bool("admin_state_up", true)
	pt.DeviceID = rd.Str("device_id", "", 255)
	pt.DeviceOwner = rd.Str("device_owner", "", 255)
	pt.HostID = rd.Str("binding:host_id", "", 255)
	if prof := readBinding(rd, p); prof != nil && len(*prof) > 0 {
		pt.BindingProfile = *prof
	}
	if rd.Has("mac_address") {
		m := rd.Str("mac_address", "", 64)
		if rd.Err == nil {
			mac, ok := validMAC(m)
			switch {
			case !ok:
				rd.Fail(badInput("mac_address", "'%s' is not a valid MAC address", m))
			case !owns:
				rd.Fail(policyDenied("create_port:mac_address"))
			}
			pt.MAC, sp.MACGiven = mac, true
		}
	}
	if rd.Has("fixed_ips") {
		ips := readFixedIPs(rd, owns)
		sp.IPs = &ips
	}
	if rd.Has("port_security_enabled") {
		v := rd.Bool("port_security_enabled", true)
		sp.PortSecurity = &v
	}
	if rd.Has("security_groups") {
		pt.SecurityGroups = readGroups(rd)
		sp.GroupsGiven = true
	}
	if rd.Has("tags") {
		pt.Tags = readCreationTags(rd)
	}
	pt.AllowedAddressPairs = readPairs(rd)
	if rd.Has("extra_dhcp_opts") {
		pt.ExtraDHCPOpts = mergeDHCPOpts(nil, readDHCPOpts(rd))
	}
	if q := readQoSPolicyID(rd); q != nil {
		pt.QoSPolicyID = *q
	}
	if rd.Err != nil {
		return sp, rd.Err
	}
	sp.Port = pt
	return sp, nil
}

// portCreation makes ports, with their projects' default security groups
// if they have none yet.
func (s *Service) portCreation() creation[portSpec, Port] {
	return creation[portSpec, Port]{one: "port", many: "ports", parse: s.parsePort,
		command: func(tx *memdb.Txn, specs []portSpec) (string, any) {
			projects := make([]string, 0, len(specs))
			for _, sp := range specs {
				projects = append(projects, sp.Port.Project)
			}
			return cmdPortCreate, portCreateCmd{Ports: specs, Defaults: s.defaultsFor(tx, projects...)}
		},
		view: func(tx *memdb.Txn, _ *api.Principal, pt *Port) api.View { return s.portView(tx, pt) }}
}

func (s *Service) updatePort(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	ch, err := readChange(s, r, "port", portAttrs, "update_port", s.writablePort)
	if err != nil {
		return err
	}
	pt, rd := ch.row, ch.in
	n := store.Get[Network](ch.tx, tNetworks, pt.NetworkID)
	owns := n != nil && p.CanWrite(n.Project)
	c := portUpdateCmd{ifMatch: ch.match, ID: pt.ID, Now: s.now()}
	c.Name = optStr(rd, "name", 255)
	c.Description = optStr(rd, "description", 255)
	c.DeviceID = optStr(rd, "device_id", 255)
	c.DeviceOwner = optStr(rd, "device_owner", 255)
	c.HostID = optStr(rd, "binding:host_id", 255)
	c.BindingProfile = readBinding(rd, p)
	c.AdminStateUp = optBool(rd, "admin_state_up", true)
	c.PortSecurity = optBool(rd, "port_security_enabled", true)
	if rd.Has("fixed_ips") {
		v := readFixedIPs(rd, owns || keepsAddresses(rd.Obj["fixed_ips"], pt))
		c.IPs = &v
	}
	if rd.Has("security_groups") {
		v := readGroups(rd)
		c.Groups = &v
	}
	if rd.Has("allowed_address_pairs") {
		v := readPairs(rd)
		c.Pairs = &v
	}
	if rd.Has("mac_address") {
		c.MAC = readNewMAC(rd, p)
	}
	if rd.Has("extra_dhcp_opts") {
		c.DHCPOpts = readDHCPOpts(rd)
	}
	c.QoSPolicy = readQoSPolicyID(rd)
	if rd.Err != nil {
		return rd.Err
	}
	var row Port
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdPortUpdate, c, &row)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"port": s.portView(tx, &row)})
	return nil
}

// readNewMAC reads the mac_address of a port update: as in Neutron's
// default policy, only an admin may change it.
func readNewMAC(rd *api.Input, p *api.Principal) *string {
	m := rd.Str("mac_address", "", 64)
	if rd.Err != nil {
		return nil
	}
	mac, ok := validMAC(m)
	if !ok {
		rd.Fail(badInput("mac_address", "'%s' is not a valid MAC address", m))
		return nil
	}
	if !p.IsAdmin() {
		rd.Fail(policyDenied("update_port:mac_address"))
		return nil
	}
	return &mac
}

// keepsAddresses reports whether every address named in a fixed_ips update
// is one the port holds already: anyone who may update the port may keep
// its own addresses.
func keepsAddresses(v any, pt *Port) bool {
	list, _ := v.([]any)
	for _, x := range list {
		m, _ := x.(map[string]any)
		ip, _ := m["ip_address"].(string)
		if ip == "" {
			continue
		}
		held := false
		for _, f := range pt.FixedIPs {
			if a, err := parseIP(ip); err == nil && a.String() == f.IP {
				held = true
			}
		}
		if !held {
			return false
		}
	}
	return true
}

func (s *Service) deletePort(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdPortDelete, "delete_port", s.writablePort)
}
