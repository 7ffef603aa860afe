package network

import (
	"net/http"
	"slices"
	"sort"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

var networkAttrs = newAttrSpec(
	"name description admin_state_up shared port_security_enabled router:external is_default mtu "+
		"provider:network_type provider:physical_network provider:segmentation_id qos_policy_id",
	"tenant_id project_id availability_zone_hints",
	"id status subnets ipv4_address_scope ipv6_address_scope created_at updated_at revision_number tags")

// canSeeNetwork: its project sees a network, and the projects it is
// shared with or external to, by flag (every project) or RBAC policy.
func canSeeNetwork(tx *memdb.Txn, p *api.Principal, n *Network) bool {
	return p.CanRead(n.Project) || sharedWith(tx, n, p.ProjectID) || externalFor(tx, n, p.ProjectID)
}

// networks is the networks collection: a project's own and the shared
// ones are visible.
func (s *Service) networks(tx *memdb.Txn) api.Collection[Network] {
	visible := func(p *api.Principal, n *Network) bool { return canSeeNetwork(tx, p, n) }
	return api.Collection[Network]{Table: tNetworks, One: "network", Visible: visible, View: s.networkView,
		NotFound: func(id string) error { return notFound("network", id) }, Listing: s.listing("networks")}
}

func subnetIDs(tx *memdb.Txn, network string) []string {
	subs := store.All[Subnet](tx, tSubnets, "network", network)
	sort.SliceStable(subs, func(i, j int) bool {
		if !subs[i].CreatedAt.Equal(subs[j].CreatedAt) {
			return subs[i].CreatedAt.Before(subs[j].CreatedAt)
		}
		return subs[i].ID < subs[j].ID
	})
	out := make([]string, 0, len(subs))
	for _, s := range subs {
		out = append(out, s.ID)
	}
	return out
}

func (s *Service) networkView(tx *memdb.Txn, p *api.Principal, n *Network) api.View {
	v := map[string]any{
		"id": n.ID, "name": n.Name, "description": n.Description, "tenant_id": n.Project, "project_id": n.Project,
		"admin_state_up": n.AdminStateUp, "shared": n.Shared || hasPolicy(tx, n.ID, actShared, p.ProjectID), "status": "ACTIVE", "mtu": n.MTU,
		"port_security_enabled": n.PortSecurity, "router:external": n.External, "subnets": subnetIDs(tx, n.ID),
		"availability_zones": s.zoneNames(tx), "availability_zone_hints": hintList(n.AZHints),
		"created_at": timeText(n.CreatedAt), "updated_at": timeText(n.UpdatedAt), "revision_number": n.Revision, "tags": tagList(n.Tags),
	}
	v["ipv4_address_scope"], v["ipv6_address_scope"] = networkScopes(tx, n.ID)
	v["qos_policy_id"] = nullable(n.QoSPolicyID)
	if n.External { // as Neutron shows it: on external networks only
		v["is_default"] = n.IsDefault
	}
	// Shared and external are as the caller sees them, as in Neutron: a
	// policy for the caller's project makes the network shared to it.
	// As in Neutron's default policy, only admins see the provider mapping.
	if p.IsAdmin() {
		v["provider:network_type"] = "vlan"
		v["provider:physical_network"] = physicalNetwork
		v["provider:segmentation_id"] = n.SegmentationID
		if n.Flat != "" {
			v["provider:network_type"], v["provider:physical_network"], v["provider:segmentation_id"] = "flat", n.Flat, nil
		}
	}
	return v
}

// provider reads the provider:* attributes: admins only, a VLAN on our one
// physical network or a flat network on one of Config.Flat. It returns
// the VLAN asked for, 0 for "allocate", and the flat physical network.
func (s *Service) provider(rd *api.Input, p *api.Principal) (int, string) {
	if !rd.Has("provider:network_type") && !rd.Has("provider:physical_network") && !rd.Has("provider:segmentation_id") {
		return 0, ""
	}
	if !p.IsAdmin() {
		rd.Fail(policyDenied("create_network:provider:network_type"))
		return 0, ""
	}
	t := rd.Str("provider:network_type", "vlan", 255)
	if rd.Err == nil && t == "flat" {
		ph := rd.Str("provider:physical_network", "", 255)
		if rd.Err == nil && !slices.Contains(s.cfg.Flat, ph) {
			rd.Fail(invalidInput("unknown flat physical network '%s'; there are %v", ph, s.cfg.Flat))
		}
		if rd.Has("provider:segmentation_id") && !rd.IsNull("provider:segmentation_id") {
			rd.Fail(invalidInput("segmentation_id is not allowed for a flat network"))
		}
		return 0, ph
	}
	if rd.Err == nil && t != "vlan" && t != "" {
		rd.Fail(invalidInput("network type %s is not supported; only vlan and flat are", t))
	}
	if ph := rd.Str("provider:physical_network", physicalNetwork, 255); rd.Err == nil && ph != physicalNetwork && ph != "" {
		rd.Fail(invalidInput("unknown physical network %s; only %s exists", ph, physicalNetwork))
	}
	seg := integer(rd, "provider:segmentation_id")
	if rd.Err != nil || seg == nil {
		return 0, ""
	}
	if *seg < s.cfg.VLANMin || *seg > s.cfg.VLANMax {
		rd.Fail(badInput("provider:segmentation_id", "VLAN id %d is outside the range %d-%d", *seg, s.cfg.VLANMin, s.cfg.VLANMax))
		return 0, ""
	}
	return *seg, ""
}

// external reads router:external, which only admins may set; nil when
// absent.
func external(rd *api.Input, p *api.Principal, action string) *bool {
	if !rd.Has("router:external") {
		return nil
	}
	v := rd.Bool("router:external", false)
	if rd.Err == nil && !p.IsAdmin() {
		rd.Fail(policyDenied(action + ":router:external"))
	}
	return &v
}

// parseNetwork reads one network of a create.
func (s *Service) parseNetwork(tx *memdb.Txn, p *api.Principal, o api.Object, now time.Time) (Network, error) {
	if err := networkAttrs.check(o, http.MethodPost); err != nil {
		return Network{}, err
	}
	rd := input(o)
	n := Network{ID: api.NewUUID(), MTU: 1500, CreatedAt: now, UpdatedAt: now}
	n.Name = rd.Str("name", "", 255)
	n.Description = rd.Str("description", "", 255)
	n.AdminStateUp = rd.Bool("admin_state_up", true)
	n.Shared = rd.Bool("shared", false)
	n.PortSecurity = rd.Bool("port_security_enabled", true)
	if mtu := readMTU(rd); mtu != nil {
		n.MTU = *mtu
	}
	n.Project = readProject(rd, p)
	if n.Shared && !p.IsAdmin() {
		rd.Fail(policyDenied("create_network:shared"))
	}
	n.SegmentationID, n.Flat = s.provider(rd, p)
	if ext := external(rd, p, "create_network"); ext != nil {
		n.External = *ext
	}
	if q := readQoSPolicyID(rd); q != nil {
		n.QoSPolicyID = *q
	}
	n.AZHints = s.readAZHints(tx, rd)
	if d := isDefault(rd, p, "create_network"); d != nil {
		n.IsDefault = *d && n.External
	}
	return n, rd.Err
}

// networkCreation makes networks, with their projects' default security
// groups if they have none yet.
func (s *Service) networkCreation() creation[Network, Network] {
	return creation[Network, Network]{one: "network", many: "networks",
		parse: func(tx *memdb.Txn, p *api.Principal, o api.Object) (Network, error) {
			return s.parseNetwork(tx, p, o, s.now())
		},
		command: func(tx *memdb.Txn, ns []Network) (string, any) {
			projects := make([]string, 0, len(ns))
			for _, n := range ns {
				projects = append(projects, n.Project)
			}
			return cmdNetworkCreate, networkCreateCmd{Networks: ns, VLANMin: s.cfg.VLANMin, VLANMax: s.cfg.VLANMax, Defaults: s.defaultsFor(tx, projects...)}
		},
		view: s.networkView}
}

// writableNetwork returns the network if the caller may change it: 404 if
// it cannot even see it, 403 if it sees but does not own it.
func (s *Service) writableNetwork(tx *memdb.Txn, p *api.Principal, id, action string) (*Network, error) {
	n, err := s.networks(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(n.Project) {
		return nil, policyDenied(action)
	}
	return n, nil
}

func (s *Service) updateNetwork(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	ch, err := readChange(s, r, "network", networkAttrs, "update_network", s.writableNetwork)
	if err != nil {
		return err
	}
	n, rd := ch.row, ch.in
	c := networkUpdateCmd{ifMatch: ch.match, ID: n.ID, Now: s.now()}
	c.Name = optStr(rd, "name", 255)
	c.Description = optStr(rd, "description", 255)
	c.AdminStateUp = optBool(rd, "admin_state_up", true)
	c.PortSecurity = optBool(rd, "port_security_enabled", true)
	c.MTU = readMTU(rd)
	if c.Shared = optBool(rd, "shared", false); c.Shared != nil && *c.Shared != n.Shared && !p.IsAdmin() {
		rd.Fail(policyDenied("update_network:shared"))
	}
	if seg, flat := s.provider(rd, p); rd.Err == nil && (seg != 0 && seg != n.SegmentationID || flat != n.Flat && flat != "") {
		rd.Fail(invalidInput("Plugin does not support updating provider attributes"))
	}
	c.External = external(rd, p, "update_network")
	c.IsDefault = isDefault(rd, p, "update_network")
	c.QoSPolicy = readQoSPolicyID(rd)
	if rd.Err != nil {
		return rd.Err
	}
	var row Network
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdNetworkUpdate, c, &row)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"network": s.networkView(tx, p, &row)})
	return nil
}

func (s *Service) deleteNetwork(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdNetworkDelete, "delete_network", s.writableNetwork)
}
