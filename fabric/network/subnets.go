package network

import (
	"net/http"
	"net/netip"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var subnetAttrs = newAttrSpec(
	"name description gateway_ip allocation_pools dns_nameservers host_routes enable_dhcp service_types",
	"network_id tenant_id project_id ip_version cidr prefixlen ipv6_ra_mode ipv6_address_mode subnetpool_id use_default_subnetpool",
	"id created_at updated_at revision_number tags")

const (
	maxDNSNameservers = 5
	maxHostRoutes     = 20
)

// canSeeSubnet: the subnet's and the network's owners see it, and
// everyone the subnets of a shared network. An external network's are
// hidden, as in Neutron: others see the network, not its addressing.
func canSeeSubnet(tx *memdb.Txn, p *api.Principal, s *Subnet) bool {
	if p.CanRead(s.Project) {
		return true
	}
	n := store.Get[Network](tx, tNetworks, s.NetworkID)
	return n != nil && (sharedWith(tx, n, p.ProjectID) || p.CanRead(n.Project))
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func subnetView(s *Subnet) api.View {
	pools := make([]map[string]any, 0, len(s.AllocationPools))
	for _, pl := range s.AllocationPools {
		pools = append(pools, map[string]any{"start": pl.Start, "end": pl.End})
	}
	routes := make([]map[string]any, 0, len(s.HostRoutes))
	for _, hr := range s.HostRoutes {
		routes = append(routes, map[string]any{"destination": hr.Destination, "nexthop": hr.Nexthop})
	}
	dns := s.DNSNameservers
	if dns == nil {
		dns = []string{}
	}
	return map[string]any{
		"id": s.ID, "name": s.Name, "description": s.Description, "network_id": s.NetworkID, "tenant_id": s.Project, "project_id": s.Project,
		"ip_version": s.IPVersion, "cidr": s.CIDR, "gateway_ip": nullable(s.GatewayIP), "allocation_pools": pools,
		"dns_nameservers": dns, "host_routes": routes, "enable_dhcp": s.EnableDHCP,
		"ipv6_ra_mode": nullable(s.IPv6RAMode), "ipv6_address_mode": nullable(s.IPv6AddressMode), "subnetpool_id": nullable(s.SubnetPoolID),
		"service_types": append([]string{}, s.ServiceTypes...), "created_at": timeText(s.CreatedAt), "updated_at": timeText(s.UpdatedAt),
		"revision_number": s.Revision, "tags": tagList(s.Tags),
	}
}

// subnets is the subnets collection as seen in tx: a subnet is visible
// with its network.
func (s *Service) subnets(tx *memdb.Txn) api.Collection[Subnet] {
	return api.Collection[Subnet]{Table: tSubnets, One: "subnet",
		Visible:  func(p *api.Principal, sn *Subnet) bool { return canSeeSubnet(tx, p, sn) },
		View:     func(_ *memdb.Txn, _ *api.Principal, sn *Subnet) api.View { return subnetView(sn) },
		NotFound: func(id string) error { return notFound("subnet", id) }, Listing: s.listing("subnets")}
}

// readPools reads allocation_pools as written ([{start, end}]).
func readPools(rd *api.Input) []Pool {
	var out []Pool
	for _, d := range rd.Objects("allocation_pools") {
		sub := input(d)
		pl := Pool{Start: sub.Str("start", "", 64), End: sub.Str("end", "", 64)}
		if sub.Err == nil && (pl.Start == "" || pl.End == "") {
			sub.Fail(badInput("allocation_pools", "each pool needs a start and an end"))
		}
		if sub.Err != nil {
			rd.Fail(sub.Err)
			return nil
		}
		out = append(out, pl)
	}
	return out
}

// readDNS reads dns_nameservers: addresses, no duplicates, at most 5.
func readDNS(rd *api.Input) []string {
	list := rd.Strs("dns_nameservers")
	if rd.Err != nil {
		return nil
	}
	out := make([]string, 0, len(list))
	for _, d := range list {
		a, err := parseIP(d)
		if err != nil {
			rd.Fail(badInput("dns_nameservers", "'%s' is not a valid nameserver", d))
			return nil
		}
		out = append(out, a.String())
	}
	if len(out) > maxDNSNameservers {
		rd.Fail(store.Fault(store.KindInvalid, "DNSNameServersExhausted", "Unable to complete operation for subnet. The number of DNS nameservers exceeds the limit %d.", maxDNSNameservers))
		return nil
	}
	if err := noDuplicates("dns_nameservers", out); err != nil {
		rd.Fail(err)
	}
	return out
}

// readRoutes reads host_routes: [{destination CIDR, nexthop IP}].
func readRoutes(rd *api.Input) []HostRoute {
	dicts := rd.Objects("host_routes")
	out := make([]HostRoute, 0, len(dicts))
	seen := map[HostRoute]bool{}
	for _, d := range dicts {
		sub := input(d)
		dst, hop := sub.Str("destination", "", 64), sub.Str("nexthop", "", 64)
		if sub.Err != nil {
			rd.Fail(sub.Err)
			return nil
		}
		pd, err := parsePrefix(dst)
		if err != nil {
			rd.Fail(badInput("host_routes", "%v", err))
			return nil
		}
		nh, err := parseIP(hop)
		if err != nil {
			rd.Fail(badInput("host_routes", "%v", err))
			return nil
		}
		hr := HostRoute{Destination: pd.String(), Nexthop: nh.String()}
		if seen[hr] {
			rd.Fail(badInput("host_routes", "Duplicate hostroute '%s %s'", hr.Destination, hr.Nexthop))
			return nil
		}
		seen[hr] = true
		out = append(out, hr)
	}
	if len(out) > maxHostRoutes {
		rd.Fail(store.Fault(store.KindInvalid, "HostRoutesExhausted", "Unable to complete operation for subnet. The number of host routes exceeds the limit %d.", maxHostRoutes))
	}
	return out
}

// gateway reads gateway_ip for the subnet pfx: def when absent, "" when
// null.
func readGateway(rd *api.Input, pfx netip.Prefix, def string) string {
	if !rd.Has("gateway_ip") {
		return def
	}
	if rd.IsNull("gateway_ip") {
		return ""
	}
	g := rd.Str("gateway_ip", "", 64)
	if rd.Err != nil {
		return def
	}
	gw, err := parseIP(g)
	if err != nil {
		rd.Fail(badInput("gateway_ip", "'%s' is not a valid IP address", g))
		return def
	}
	if gw.BitLen() != pfx.Addr().BitLen() || !pfx.Contains(gw) || reserved(pfx, gw) {
		rd.Fail(invalidInput("Gateway is not valid on subnet: %s is not a host address of %s", g, pfx))
		return def
	}
	return gw.String()
}

var ipv6Modes = map[string]bool{"slaac": true, "dhcpv6-stateful": true, "dhcpv6-stateless": true}

// parseSubnet reads one subnet of a create, in steps: the network and
// project, the range (ip_version, cidr), the IPv6 modes, then what is
// handed out on it.
func (s *Service) parseSubnet(tx *memdb.Txn, p *api.Principal, o api.Object) (Subnet, error) {
	if err := subnetAttrs.check(o, http.MethodPost); err != nil {
		return Subnet{}, err
	}
	rd := input(o)
	now := s.now()
	sn := Subnet{ID: api.NewUUID(), CreatedAt: now, UpdatedAt: now}
	sn.NetworkID = rd.Str("network_id", "", 64)
	if rd.Err == nil && sn.NetworkID == "" {
		return sn, badInput("network_id", "'network_id' is a required property")
	}
	if rd.Err != nil {
		return sn, rd.Err
	}
	n, err := s.writableNetwork(tx, p, sn.NetworkID, "create_subnet")
	if err != nil {
		return sn, err
	}
	sn.Name = rd.Str("name", "", 255)
	sn.Description = rd.Str("description", "", 255)
	sn.Project = readProject(rd, p)
	if rd.Err == nil && sn.Project != n.Project && !p.IsAdmin() {
		rd.Fail(policyDenied("create_subnet"))
	}
	sn.ServiceTypes = readServiceTypes(rd)
	pfx, err := s.readRange(tx, p, rd, &sn)
	if err != nil {
		return sn, err
	}
	if err := readIPv6Modes(rd, &sn, pfx); err != nil {
		return sn, err
	}
	gw := defaultGateway(pfx)
	if c, _ := rd.Obj["cidr"].(string); sn.SubnetPoolID != "" && c == "" {
		gw = pickedGateway(pfx)
	}
	if err := readHandedOut(rd, &sn, pfx, gw); err != nil {
		return sn, err
	}
	return sn, nil
}

// pickedGateway is the default gateway of a range picked from a pool:
// the address after the range's first, as Neutron's pool allocator gives
// it, even where that is past the range (a /32, a /128): Terraform's
// prefix_length subnets read a null gateway as no_gateway and want to
// change it. A gateway given, or of a cidr given, stays within the
// subnet (defaultGateway, readGateway).
func pickedGateway(pfx netip.Prefix) string {
	if a := pfx.Masked().Addr().Next(); a.IsValid() {
		return a.String()
	}
	return ""
}

// readRange reads a new subnet's ip_version and cidr, or the subnet pool
// and prefix length it is allocated by.
func (s *Service) readRange(tx *memdb.Txn, p *api.Principal, rd *api.Input, sn *Subnet) (netip.Prefix, error) {
	var pfx netip.Prefix
	ver := integer(rd, "ip_version")
	if rd.Err != nil {
		return pfx, rd.Err
	}
	if ver == nil {
		return pfx, badInput("ip_version", "'ip_version' is a required property")
	}
	if *ver != 4 && *ver != 6 {
		return pfx, badInput("ip_version", "%d is not in [4, 6]", *ver)
	}
	sn.IPVersion = *ver
	sp, err := s.requestedPool(tx, p, rd, sn.IPVersion)
	if err != nil {
		return pfx, err
	}
	if sp != nil {
		pfx, err = poolSubnetRange(tx, rd, sp, sn.NetworkID)
		if err != nil {
			return pfx, err
		}
		sn.SubnetPoolID, sn.CIDR = sp.ID, pfx.String()
		return pfx, nil
	}
	if rd.Has("prefixlen") {
		return pfx, badInput("prefixlen", "a prefix length needs a subnet pool (subnetpool_id or use_default_subnetpool)")
	}
	cidr := rd.Str("cidr", "", 64)
	if rd.Err != nil {
		return pfx, rd.Err
	}
	if cidr == "" {
		return pfx, badInput("cidr", "'cidr' is a required property without a subnet pool")
	}
	// Host bits are taken and dropped, as Neutron's create_subnet stores
	// the network address: 10.99.99.0/16 is 10.99.0.0/16.
	pfx, err = parseCIDROrIP(cidr)
	if err != nil || !strings.Contains(cidr, "/") {
		return pfx, badInput("cidr", "'%s' is not a valid IP subnet", cidr)
	}
	if ipVersion(pfx.Addr()) != sn.IPVersion {
		return pfx, invalidInput("Cidr %s does not match ip_version %d", cidr, sn.IPVersion)
	}
	if pfx.Bits() == 0 {
		return pfx, invalidInput("0 is not allowed as CIDR prefix length")
	}
	sn.CIDR = pfx.String()
	return pfx, nil
}

// readIPv6Modes reads a new subnet's ipv6_ra_mode and ipv6_address_mode.
func readIPv6Modes(rd *api.Input, sn *Subnet, pfx netip.Prefix) error {
	sn.IPv6RAMode = rd.Str("ipv6_ra_mode", "", 32)
	sn.IPv6AddressMode = rd.Str("ipv6_address_mode", "", 32)
	if rd.Err != nil {
		return rd.Err
	}
	for f, v := range map[string]string{"ipv6_ra_mode": sn.IPv6RAMode, "ipv6_address_mode": sn.IPv6AddressMode} {
		if v == "" {
			continue
		}
		if !ipv6Modes[v] {
			return badInput(f, "%s is not in ['dhcpv6-stateful', 'dhcpv6-stateless', 'slaac']", v)
		}
		if sn.IPVersion != 6 {
			return invalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False or ip_version is 4")
		}
	}
	if sn.IPv6RAMode != "" && sn.IPv6AddressMode != "" && sn.IPv6RAMode != sn.IPv6AddressMode {
		return invalidInput("ipv6_ra_mode set to '%s' with ipv6_address_mode set to '%s' is not valid. If both attributes are set, they must be the same value", sn.IPv6RAMode, sn.IPv6AddressMode)
	}
	if sn.IPv6AddressMode == "" && sn.IPv6RAMode != "" {
		// Like Neutron: addresses follow the router advertisements.
		sn.IPv6AddressMode = sn.IPv6RAMode
	}
	if autoAddress(sn) && pfx.Bits() != 64 {
		return invalidInput("Invalid CIDR %s for IPv6 address mode. OpenStack uses the EUI-64 address format, which requires the prefix to be /64", sn.CIDR)
	}
	return nil
}

// readHandedOut reads what a new subnet hands its ports: the gateway
// (defGateway when none is given), DHCP, nameservers, routes and the
// pools addresses come from.
func readHandedOut(rd *api.Input, sn *Subnet, pfx netip.Prefix, defGateway string) error {
	sn.GatewayIP = readGateway(rd, pfx, defGateway)
	sn.EnableDHCP = rd.Bool("enable_dhcp", true)
	sn.DNSNameservers = readDNS(rd)
	sn.HostRoutes = readRoutes(rd)
	pools := readPools(rd)
	if rd.Err != nil {
		return rd.Err
	}
	for _, d := range sn.DNSNameservers {
		if a, _ := parseIP(d); ipVersion(a) != sn.IPVersion {
			return badInput("dns_nameservers", "'%s' is not of the subnet's IP version", d)
		}
	}
	for _, hr := range sn.HostRoutes {
		if a, _ := parseIP(hr.Nexthop); ipVersion(a) != sn.IPVersion {
			return badInput("host_routes", "nexthop %s is not of the subnet's IP version", hr.Nexthop)
		}
		if d, _ := netip.ParsePrefix(hr.Destination); ipVersion(d.Addr()) != sn.IPVersion {
			return badInput("host_routes", "destination %s is not of the subnet's IP version", hr.Destination)
		}
	}
	if !rd.Has("allocation_pools") || rd.IsNull("allocation_pools") {
		sn.AllocationPools = defaultPools(pfx, sn.GatewayIP)
		return nil
	}
	var err error
	sn.AllocationPools, err = validatePools(pfx, pools, sn.GatewayIP)
	return err
}

// subnetSpec is one subnet of a create; picked says its range was
// chosen from its pool here, from the state read, not given as a cidr.
type subnetSpec struct {
	Subnet
	picked bool
}

func (s *Service) subnetCreation() creation[subnetSpec, Subnet] {
	return creation[subnetSpec, Subnet]{one: "subnet", many: "subnets",
		parse: func(tx *memdb.Txn, p *api.Principal, o api.Object) (subnetSpec, error) {
			sn, err := s.parseSubnet(tx, p, o)
			cidr, _ := o["cidr"].(string)
			return subnetSpec{Subnet: sn, picked: sn.SubnetPoolID != "" && cidr == ""}, err
		},
		command: func(_ *memdb.Txn, specs []subnetSpec) (string, any) {
			sns := make([]Subnet, 0, len(specs))
			for _, sp := range specs {
				sns = append(sns, sp.Subnet)
			}
			return cmdSubnetCreate, subnetCreateCmd{Subnets: sns}
		},
		view: func(_ *memdb.Txn, _ *api.Principal, sn *Subnet) api.View { return subnetView(sn) },
		// A range picked from a pool may have been taken by another
		// subnet made at the same time (Terraform makes a pool's
		// subnets in parallel): pick again from the state that has it.
		retry: func(specs []subnetSpec, _ error) bool {
			for _, sp := range specs {
				if sp.picked {
					return true
				}
			}
			return false
		}}
}

// writableSubnet returns the subnet if the caller may change it: the
// owner of the subnet or of its network.
func (s *Service) writableSubnet(tx *memdb.Txn, p *api.Principal, id, action string) (*Subnet, error) {
	sn, err := s.subnets(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(sn.Project) {
		if n := store.Get[Network](tx, tNetworks, sn.NetworkID); n == nil || !p.CanWrite(n.Project) {
			return nil, policyDenied(action)
		}
	}
	return sn, nil
}

func (s *Service) updateSubnet(w http.ResponseWriter, r *http.Request) error {
	ch, err := readChange(s, r, "subnet", subnetAttrs, "update_subnet", s.writableSubnet)
	if err != nil {
		return err
	}
	sn, rd := ch.row, ch.in
	pfx, err := parsePrefix(sn.CIDR)
	if err != nil {
		return err
	}
	c := subnetUpdateCmd{ifMatch: ch.match, ID: sn.ID, Now: s.now()}
	c.Name = optStr(rd, "name", 255)
	c.Description = optStr(rd, "description", 255)
	c.EnableDHCP = optBool(rd, "enable_dhcp", true)
	if rd.Has("gateway_ip") {
		v := readGateway(rd, pfx, sn.GatewayIP)
		c.GatewayIP = &v
	}
	if rd.Has("dns_nameservers") {
		v := readDNS(rd)
		c.DNSNameservers = &v
	}
	if rd.Has("host_routes") {
		v := readRoutes(rd)
		c.HostRoutes = &v
	}
	if rd.Has("allocation_pools") {
		v := readPools(rd)
		if v == nil {
			v = []Pool{}
		}
		c.AllocationPools = &v
	}
	if rd.Has("service_types") {
		v := readServiceTypes(rd)
		c.ServiceTypes = &v
	}
	if rd.Err != nil {
		return rd.Err
	}
	var row Subnet
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdSubnetUpdate, c, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"subnet": subnetView(&row)})
	return nil
}

func (s *Service) deleteSubnet(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdSubnetDelete, "delete_subnet", s.writableSubnet)
}
