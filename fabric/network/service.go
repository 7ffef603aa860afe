// Package network is Rackstack's Neutron v2.0: networks (each one VLAN of
// the physical network), subnets, ports with their MACs and addresses,
// security groups and their rules, routers and floating IPs, subnet pools
// and address scopes, metering labels, and quotas.
//
// It is the control plane only: it validates requests and proposes typed
// commands to the replicated store, whose handlers allocate VLAN ids,
// MACs and addresses deterministically. It never touches a packet; the
// dataplane reads its tables (Load) and reports port status back
// (SetPortStatus).
package network

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// The one physical network tenant VLANs ride on.
const physicalNetwork = "physnet1"

// Config configures the network service.
type Config struct {
	Repl store.Replicated
	Auth api.Authenticator
	Log  *slog.Logger
	// VLANMin and VLANMax bound the VLAN ids given to networks (default
	// 100-3999).
	VLANMin, VLANMax int
	Now              func() time.Time
	// PublicURL is the base of links (default: the URL the client used);
	// Prefix is where the handler is mounted (default /network).
	PublicURL string
	Prefix    string
	// Forwarding says the nodes' dataplanes forward for routers and
	// floating IPs; without it routers show status DOWN.
	Forwarding bool
	// Flat names the physical networks an admin may make flat (untagged)
	// networks on, such as rackd dev's "public".
	Flat []string
	// VLANExternals says the nodes' dataplanes reach external networks
	// that are VLANs of the physical network, on their uplinks; without
	// it a router gateway on one is refused.
	VLANExternals bool
	// Agents lists the nodes whose dataplanes are Neutron's agents
	// (network agent list); nil lists none.
	Agents Agents
}

// Service serves Neutron v2.0.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	base, err := cfg.base().Check("network")
	if err != nil {
		return nil, err
	}
	cfg.Log, cfg.Now, cfg.Prefix = base.Log, base.Now, base.Prefix
	if cfg.VLANMin == 0 && cfg.VLANMax == 0 {
		cfg.VLANMin, cfg.VLANMax = 100, 3999
	}
	if cfg.VLANMin < 1 || cfg.VLANMax > 4094 || cfg.VLANMin > cfg.VLANMax {
		return nil, fmt.Errorf("network: VLAN range %d-%d is not within 1-4094", cfg.VLANMin, cfg.VLANMax)
	}
	return &Service{cfg: cfg, log: cfg.Log}, nil
}

// SetPortStatus records the status a node observed for a port (ACTIVE,
// DOWN, BUILD or ERROR).
func (s *Service) SetPortStatus(ctx context.Context, portID, status string) error {
	switch status {
	case "ACTIVE", "DOWN", "BUILD", "ERROR":
	default:
		return fmt.Errorf("set port status: %q: %w", status, store.ErrInvalid)
	}
	_, err := s.cfg.Repl.Propose(ctx, cmdPortStatus, portStatusCmd{ID: portID, Status: status, Now: s.now()})
	if err != nil {
		return fmt.Errorf("set port status: %w", err)
	}
	return nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

// base is the part of the configuration every service on the kit has.
func (c Config) base() api.Base {
	return api.Base{Repl: c.Repl, Auth: c.Auth, Log: c.Log, Now: c.Now, PublicURL: c.PublicURL, Prefix: c.Prefix}
}

// Handler serves Neutron under the prefix the caller strips (/network):
// "/" is version discovery, "/v2.0/..." the API.
func (s *Service) Handler() http.Handler {
	return api.Routes{Auth: s.cfg.Auth, Errors: writeError, Denied: policyDenied, Service: "network"}.Router(s.routes(), stripJSONSuffix)
}

// routes is the service's policy as one table. Everything but version
// discovery needs a token; who may see or change a resource depends on
// its project (and a network's sharing), which the handlers check, so
// only the quota writes are decided by role alone. The rules are
// Neutron's policy names, cited in a 403.
func (s *Service) routes() []api.Route {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
		token               = api.Authenticated
	)
	routes := []api.Route{
		{Method: get, Path: "/", Access: api.Public, Handle: s.versions},
		{Method: get, Path: "/v2.0", Access: token, Handle: s.resources},
		{Method: get, Path: "/v2.0/", Access: token, Handle: s.resources},
		{Method: get, Path: "/v2.0/extensions", Access: token, Handle: extensionList().ListAll},
		{Method: get, Path: "/v2.0/extensions/{alias}", Access: token, Handle: extensionList().Show},

		{Method: get, Path: "/v2.0/networks", Access: token, Rule: "get_network", Handle: list(s, s.networks)},
		{Method: post, Path: "/v2.0/networks", Access: token, Rule: "create_network", Handle: create(s, s.networkCreation())},
		{Method: get, Path: "/v2.0/networks/{id}", Access: token, Rule: "get_network", Handle: show(s, s.networks)},
		{Method: put, Path: "/v2.0/networks/{id}", Access: token, Rule: "update_network", Handle: s.updateNetwork},
		{Method: del, Path: "/v2.0/networks/{id}", Access: token, Rule: "delete_network", Handle: s.deleteNetwork},

		{Method: get, Path: "/v2.0/subnets", Access: token, Rule: "get_subnet", Handle: list(s, s.subnets)},
		{Method: post, Path: "/v2.0/subnets", Access: token, Rule: "create_subnet", Handle: create(s, s.subnetCreation())},
		{Method: get, Path: "/v2.0/subnets/{id}", Access: token, Rule: "get_subnet", Handle: show(s, s.subnets)},
		{Method: put, Path: "/v2.0/subnets/{id}", Access: token, Rule: "update_subnet", Handle: s.updateSubnet},
		{Method: del, Path: "/v2.0/subnets/{id}", Access: token, Rule: "delete_subnet", Handle: s.deleteSubnet},

		{Method: get, Path: "/v2.0/subnetpools", Access: token, Rule: "get_subnetpool", Handle: list(s, s.subnetPools)},
		{Method: post, Path: "/v2.0/subnetpools", Access: token, Rule: "create_subnetpool", Handle: create(s, s.poolCreation())},
		{Method: get, Path: "/v2.0/subnetpools/{id}", Access: token, Rule: "get_subnetpool", Handle: show(s, s.subnetPools)},
		{Method: put, Path: "/v2.0/subnetpools/{id}", Access: token, Rule: "update_subnetpool", Handle: s.updatePool},
		{Method: del, Path: "/v2.0/subnetpools/{id}", Access: token, Rule: "delete_subnetpool", Handle: s.deletePool},
		{Method: put, Path: "/v2.0/subnetpools/{id}/add_prefixes", Access: token, Rule: "add_prefixes", Handle: s.poolPrefixOps(true)},
		{Method: put, Path: "/v2.0/subnetpools/{id}/remove_prefixes", Access: token, Rule: "remove_prefixes", Handle: s.poolPrefixOps(false)},

		{Method: get, Path: "/v2.0/ports", Access: token, Rule: "get_port", Handle: list(s, s.ports)},
		{Method: post, Path: "/v2.0/ports", Access: token, Rule: "create_port", Handle: create(s, s.portCreation())},
		{Method: get, Path: "/v2.0/ports/{id}", Access: token, Rule: "get_port", Handle: show(s, s.ports)},
		{Method: put, Path: "/v2.0/ports/{id}", Access: token, Rule: "update_port", Handle: s.updatePort},
		{Method: del, Path: "/v2.0/ports/{id}", Access: token, Rule: "delete_port", Handle: s.deletePort},

		{Method: get, Path: "/v2.0/security-groups", Access: token, Rule: "get_security_group", Handle: s.listGroups},
		{Method: post, Path: "/v2.0/security-groups", Access: token, Rule: "create_security_group", Handle: s.createGroup},
		{Method: get, Path: "/v2.0/security-groups/{id}", Access: token, Rule: "get_security_group", Handle: show(s, s.groups)},
		{Method: put, Path: "/v2.0/security-groups/{id}", Access: token, Rule: "update_security_group", Handle: s.updateGroup},
		{Method: del, Path: "/v2.0/security-groups/{id}", Access: token, Rule: "delete_security_group", Handle: s.deleteGroup},

		{Method: get, Path: "/v2.0/security-group-rules", Access: token, Rule: "get_security_group_rule", Handle: list(s, s.rules)},
		{Method: post, Path: "/v2.0/security-group-rules", Access: token, Rule: "create_security_group_rule", Handle: create(s, s.ruleCreation())},
		{Method: get, Path: "/v2.0/security-group-rules/{id}", Access: token, Rule: "get_security_group_rule", Handle: show(s, s.rules)},
		{Method: del, Path: "/v2.0/security-group-rules/{id}", Access: token, Rule: "delete_security_group_rule", Handle: s.deleteRule},

		{Method: get, Path: "/v2.0/routers", Access: token, Rule: "get_router", Handle: list(s, s.routers)},
		{Method: post, Path: "/v2.0/routers", Access: token, Rule: "create_router", Handle: create(s, s.routerCreation())},
		{Method: get, Path: "/v2.0/routers/{id}", Access: token, Rule: "get_router", Handle: show(s, s.routers)},
		{Method: put, Path: "/v2.0/routers/{id}", Access: token, Rule: "update_router", Handle: s.updateRouter},
		{Method: del, Path: "/v2.0/routers/{id}", Access: token, Rule: "delete_router", Handle: s.deleteRouter},
		{Method: put, Path: "/v2.0/routers/{id}/add_router_interface", Access: token, Rule: "add_router_interface", Handle: s.routerInterface(true)},
		{Method: put, Path: "/v2.0/routers/{id}/remove_router_interface", Access: token, Rule: "remove_router_interface", Handle: s.routerInterface(false)},
		{Method: put, Path: "/v2.0/routers/{id}/add_extraroutes", Access: token, Rule: "add_extraroutes", Handle: s.extraRoutes(true)},
		{Method: put, Path: "/v2.0/routers/{id}/remove_extraroutes", Access: token, Rule: "remove_extraroutes", Handle: s.extraRoutes(false)},

		{Method: get, Path: "/v2.0/floatingips", Access: token, Rule: "get_floatingip", Handle: list(s, s.floatingIPs)},
		{Method: post, Path: "/v2.0/floatingips", Access: token, Rule: "create_floatingip", Handle: create(s, s.fipCreation())},
		{Method: get, Path: "/v2.0/floatingips/{id}", Access: token, Rule: "get_floatingip", Handle: show(s, s.floatingIPs)},
		{Method: put, Path: "/v2.0/floatingips/{id}", Access: token, Rule: "update_floatingip", Handle: s.updateFIP},
		{Method: del, Path: "/v2.0/floatingips/{id}", Access: token, Rule: "delete_floatingip", Handle: s.deleteFIP},

		{Method: get, Path: "/v2.0/agents", Access: token, Rule: "get_agent", Handle: s.listAgents},
		{Method: get, Path: "/v2.0/agents/{id}", Access: token, Rule: "get_agent", Handle: s.showAgent},
		{Method: put, Path: "/v2.0/agents/{id}", Access: api.Admin, Rule: "update_agent", Handle: s.updateAgent},
		{Method: get, Path: "/v2.0/networks/{id}/dhcp-agents", Access: api.Admin, Rule: "get_dhcp-agents", Handle: s.networkDHCPAgents},
		{Method: get, Path: "/v2.0/agents/{id}/dhcp-networks", Access: api.Admin, Rule: "get_dhcp-networks", Handle: s.agentDHCPNetworks},
		{Method: post, Path: "/v2.0/agents/{id}/dhcp-networks", Access: api.Admin, Rule: "create_dhcp-network", Handle: s.hostDHCPNetwork},
		{Method: del, Path: "/v2.0/agents/{id}/dhcp-networks/{network_id}", Access: api.Admin, Rule: "delete_dhcp-network", Handle: s.unhostDHCPNetwork},
		{Method: get, Path: "/v2.0/routers/{id}/l3-agents", Access: api.Admin, Rule: "get_l3-agents", Handle: s.routerL3Agents},
		{Method: get, Path: "/v2.0/agents/{id}/l3-routers", Access: api.Admin, Rule: "get_l3-routers", Handle: s.agentL3Routers},
		{Method: post, Path: "/v2.0/agents/{id}/l3-routers", Access: api.Admin, Rule: "create_l3-router", Handle: s.scheduleL3Router},
		{Method: del, Path: "/v2.0/agents/{id}/l3-routers/{router_id}", Access: api.Admin, Rule: "delete_l3-router", Handle: s.unscheduleL3Router},
		{Method: get, Path: "/v2.0/service-providers", Access: token, Rule: "get_service_provider", Handle: s.listServiceProviders},

		{Method: get, Path: "/v2.0/quotas", Access: token, Rule: "get_quota", Handle: s.listQuotas},
		{Method: get, Path: "/v2.0/quotas/{project}", Access: token, Rule: "get_quota", Handle: s.showQuota},
		{Method: put, Path: "/v2.0/quotas/{project}", Access: api.Admin, Rule: "update_quota", Handle: s.updateQuota},
		{Method: del, Path: "/v2.0/quotas/{project}", Access: api.Admin, Rule: "delete_quota", Handle: s.deleteQuota},
		{Method: get, Path: "/v2.0/quotas/{project}/default", Access: token, Rule: "get_quota", Handle: s.showDefaultQuota},
		{Method: get, Path: "/v2.0/quotas/{project}/details", Access: token, Rule: "get_quota", Handle: s.showQuotaDetails},
	}
	routes = append(routes, s.scopeRoutes()...)
	routes = append(routes, s.rbacRoutes()...)
	routes = append(routes, s.ipAvailabilityRoutes()...)
	routes = append(routes, s.meteringRoutes()...)
	routes = append(routes, s.addrGroupRoutes()...)
	routes = append(routes, s.qosRoutes()...)
	routes = append(routes, s.trunkRoutes()...)
	routes = append(routes, s.portForwardingRoutes()...)
	routes = append(routes, s.autoTopologyRoutes()...)
	routes = append(routes, api.Route{Method: http.MethodGet, Path: "/v2.0/availability_zones", Access: api.Authenticated, Rule: "get_availability_zone", Handle: s.listZones})
	return append(routes, s.tagRoutes()...)
}

// stripJSONSuffix serves /v2.0/networks.json as /v2.0/networks, as Neutron
// does.
func stripJSONSuffix(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".json") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimSuffix(r.URL.Path, ".json")
			r2.URL.RawPath = ""
			r = r2
			// Mounted under a chi router, routing follows the route
			// context's path rather than the URL.
			if rctx := chi.RouteContext(r.Context()); rctx != nil {
				rctx.RoutePath = strings.TrimSuffix(rctx.RoutePath, ".json")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// baseURL is where this API is reached, mount prefix included.
func (s *Service) baseURL(r *http.Request) string { return s.cfg.base().URL(r) }

func (s *Service) versions(w http.ResponseWriter, r *http.Request) error {
	api.JSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []any{map[string]any{"rel": "self", "href": s.baseURL(r) + "/v2.0/"}},
	}}})
	return nil
}

func (s *Service) resources(w http.ResponseWriter, r *http.Request) error {
	var out []any
	for _, c := range [][2]string{{"network", "networks"}, {"subnet", "subnets"}, {"subnetpool", "subnetpools"}, {"port", "ports"},
		{"security_group", "security-groups"}, {"security_group_rule", "security-group-rules"}, {"quota", "quotas"},
		{"router", "routers"}, {"floatingip", "floatingips"}, {"agent", "agents"}, {"address_scope", "address-scopes"},
		{"metering_label", "metering/metering-labels"}, {"rbac_policy", "rbac-policies"}, {"metering_label_rule", "metering/metering-label-rules"},
		{"address_group", "address-groups"}, {"policy", "qos/policies"}, {"rule_type", "qos/rule-types"}, {"trunk", "trunks"}} {
		out = append(out, map[string]any{"name": c[0], "collection": c[1],
			"links": []any{map[string]any{"rel": "self", "href": s.baseURL(r) + "/v2.0/" + c[1]}}})
	}
	api.JSON(w, http.StatusOK, map[string]any{"resources": out})
	return nil
}

// extensions are the API extensions this service really implements.
var extensions = [][3]string{
	{"security-group", "security-group", "The security groups extension."},
	{"port-security", "Port Security", "Provides port security"},
	{"provider", "Provider Network", "Expose mapping of virtual networks to physical networks"},
	{"quotas", "Quota management support", "Expose functions for quotas management per tenant"},
	{"quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"},
	{"allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"},
	{"binding", "Port Binding", "Expose port bindings of a virtual port to external application"},
	{"standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"},
	{"project-id", "project-id field enabled", "Extension that indicates that project_id field is enabled."},
	{"standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."},
	{"standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."},
	{"net-mtu", "Network MTU", "Provides MTU attribute for a network resource."},
	{"net-mtu-writable", "Network MTU (writable)", "Provides a writable MTU attribute for a network resource."},
	{"sorting", "Sorting support", "Enables sorting support."},
	{"pagination", "Pagination support", "Enables pagination support."},
	{"ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when listing ports"},
	{"port-security-groups-filtering", "Port filtering on security groups", "Provides security groups filtering when listing ports"},
	{"router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway."},
	{"ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"},
	{"extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"},
	{"extraroute-atomic", "Atomically add/remove extra routes", "Edit extra routes of a router on server side by atomically adding/removing extra routes"},
	{"dvr", "Distributed Virtual Router", "Enables configuration of Distributed Virtual Routers."},
	{"external-net", "Neutron external network", "Adds external network attribute to network resource."},
	{"fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource"},
	{"agent", "agent", "The agent management extension."},
	{"extra_dhcp_opt", "Neutron Extra DHCP options", "Extra options configuration for DHCP. For example PXE boot options to DHCP clients can be specified (e.g. tftp-server, server-ip-address, bootfile-name)"},
	{"dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents"},
	{"l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents"},
	{"service-type", "Neutron Service Type Management", "API for retrieving service providers for Neutron advanced services"},
	{"standard-attr-tag", "Tag support for resources with standard attribute", "Enables to set tag on resources with standard attribute."},
	{"tag-ports-during-bulk-creation", "Tag Ports During Bulk Creation", "Allow to tag ports during bulk creation"},
	{"tag", "Tag support", "Enables to set tag on resources."},
	{"subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"},
	{"subnetpool-prefix-ops", "Subnet Pool Prefix Operations", "Provides support for adjusting the prefix list of subnet pools"},
	{"default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."},
	{"address-scope", "Address scope", "Address scopes extension."},
	{"network-ip-availability", "Network IP Availability", "Provides IP availability data for each network and subnet."},
	{"rbac-policies", "RBAC Policies", "Allows creation and modification of policies that control tenant access to resources."},
	{"metering", "Neutron Metering", "Neutron Metering extension."},
	{"address-group", "Address group", "Support address group"},
	{"rbac-address-group", "Add address_group type to RBAC", "Add address_group type to RBAC"},
	{"rbac-security-groups", "Add security_group type to network RBAC", "Add security_group type to network RBAC"},
	{"security-groups-remote-address-group", "Remote address group id field for security group rules", "Add new field of remote address group id in security group rules"},
	{"stateful-security-group", "Stateful security group", "Indicates if the security group is stateful or not"},
	{"subnet-service-types", "Subnet service types", "Provides ability to set the subnet service_types field"},
	{"qos", "Quality of Service", "The Quality of Service extension."},
	{"qos-bw-limit-direction", "Direction for QoS bandwidth limit rule", "Allow to configure QoS bandwidth limit rule with specific direction: ingress or egress"},
	{"qos-default", "QoS default policy", "Expose the QoS default policy per project"},
	{"qos-pps", "QoS Rule Type Packet per Second Extension", "Add QoS Rule Type \"packet_rate_limit\""},
	{"qos-rule-type-details", "Details of QoS rule types", "Expose details about QoS rule types supported by loaded backend drivers"},
	{"qos-port-network-policy", "QoS Port Network Policy Extension", "Adds a the QoS network ID to the port definition"},
	{"trunk", "Trunk Extension", "Provides support for trunk ports"},
	{"trunk-details", "Trunk port details", "Expose trunk port details"},
	{"floating-ip-port-forwarding", "Floating IP Port Forwarding", "Allow to forward a port of a Floating IP to a port of an internal network"},
	{"expose-port-forwarding-in-fip", "Expose port forwardings in a floating IP", "Expose port forwardings in a floating IP"},
	{"auto-allocated-topology", "Auto Allocated Topology Services", "Auto Allocated Topology Services."},
	{"availability_zone", "Availability Zone", "The availability zone extension."},
	{"network_availability_zone", "Network Availability Zone", "Availability zone support for network."},
	{"router_availability_zone", "Router Availability Zone", "Availability zone support for router."},
	{"floating-ip-port-forwarding-description", "Floating IP Port Forwarding new attribute description", "Add a description field to Port Forwarding rules"},
	{"floating-ip-port-forwarding-port-ranges", "Floating IP Port Forwarding support port ranges", "Add suport to port ranges on Floating IP port forwarding rules"},
	{"metering_source_and_destination_fields", "Neutron Metering with source and destination filtering", "Neutron Metering extension that enables the use of source and destination IP prefixes."},
}

func extensionView(alias, name, desc string) map[string]any {
	return map[string]any{"alias": alias, "name": name, "description": desc, "links": []any{}, "updated": "2013-01-01T00:00:00-00:00"}
}

// extensionList serves the extensions.
func extensionList() api.Extensions {
	return api.Extensions{List: extensions, View: extensionView, NotFound: func(alias string) error {
		return &api.Error{Status: http.StatusNotFound, Msg: "Extension with alias " + alias + " does not exist"}
	}}
}

// listServiceProviders lists who provides each advanced service: routers
// (L3_ROUTER_NAT) are the nodes' eBPF dataplanes, where Config.Forwarding
// says they forward; there is no other advanced service.
func (s *Service) listServiceProviders(w http.ResponseWriter, r *http.Request) error {
	out := []map[string]any{}
	if s.cfg.Forwarding {
		out = append(out, map[string]any{"service_type": "L3_ROUTER_NAT", "name": "rackstack-ebpf", "default": true})
	}
	api.JSON(w, http.StatusOK, map[string]any{"service_providers": out})
	return nil
}

func principal(r *http.Request) *api.Principal { return api.PrincipalFrom(r.Context()) }

// defaultsFor is the command part that makes project's default security
// group if it has none, with ids chosen now.
func (s *Service) defaultsFor(tx *memdb.Txn, projects ...string) []defaultGroupCmd {
	var out []defaultGroupCmd
	seen := map[string]bool{}
	for _, p := range projects {
		if p == "" || seen[p] || (tx != nil && defaultGroupOf(tx, p) != nil) {
			continue
		}
		seen[p] = true
		d := defaultGroupCmd{Project: p, GroupID: api.NewUUID(), Now: s.now()}
		for i := range d.RuleIDs {
			d.RuleIDs[i] = api.NewUUID()
		}
		out = append(out, d)
	}
	return out
}

// ensureDefaultGroup makes the caller's project's default group if it
// has none, as Neutron does on the first touch of the API, and returns
// the state that has it.
func (s *Service) ensureDefaultGroup(ctx context.Context, tx *memdb.Txn, project string) (*memdb.Txn, error) {
	ds := s.defaultsFor(tx, project)
	if len(ds) == 0 {
		return tx, nil
	}
	return api.Propose(ctx, s.cfg.Repl, cmdGroupDefault, ds[0], nil)
}

func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
