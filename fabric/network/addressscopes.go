package network

import (
	"net/http"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Address scopes (Neutron's address-scope extension): subnet pools that
// name one never overlap, so its addresses are unique; a network shows the
// scope of its subnets' pools (ipv4_address_scope, ipv6_address_scope),
// and a router does not SNAT between an internal subnet and its external
// network when both are in one scope.

type AddressScope = netstate.AddressScope

const tAddressScopes = netstate.TableAddressScopes

var scopeAttrs = newAttrSpec("name shared", "tenant_id project_id ip_version", "id created_at updated_at revision_number")

func scopeView(sc *AddressScope) api.View {
	return map[string]any{
		"id": sc.ID, "name": sc.Name, "tenant_id": sc.Project, "project_id": sc.Project, "ip_version": sc.IPVersion, "shared": sc.Shared,
		"created_at": timeText(sc.CreatedAt), "updated_at": timeText(sc.UpdatedAt), "revision_number": sc.Revision,
	}
}

// addressScopes is the collection: a project's own and the shared ones.
func (s *Service) addressScopes(*memdb.Txn) api.Collection[AddressScope] {
	return api.Collection[AddressScope]{Table: tAddressScopes, One: "address_scope",
		Visible:  func(p *api.Principal, sc *AddressScope) bool { return sc.Shared || p.CanRead(sc.Project) },
		View:     func(_ *memdb.Txn, _ *api.Principal, sc *AddressScope) api.View { return scopeView(sc) },
		NotFound: func(id string) error { return notFound("address_scope", id) }, Listing: s.listing("address_scopes")}
}

func (s *Service) writableScope(tx *memdb.Txn, p *api.Principal, id, action string) (*AddressScope, error) {
	sc, err := s.addressScopes(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(sc.Project) {
		return nil, policyDenied(action)
	}
	return sc, nil
}

func (s *Service) parseScope(_ *memdb.Txn, p *api.Principal, o api.Object) (AddressScope, error) {
	if err := scopeAttrs.check(o, http.MethodPost); err != nil {
		return AddressScope{}, err
	}
	rd := input(o)
	now := s.now()
	sc := AddressScope{ID: api.NewUUID(), CreatedAt: now, UpdatedAt: now}
	sc.Name = rd.Str("name", "", 255)
	sc.Project = readProject(rd, p)
	sc.Shared = rd.Bool("shared", false)
	if !rd.Has("ip_version") {
		rd.Fail(badInput("ip_version", "'ip_version' is a required property"))
	}
	if v := integer(rd, "ip_version"); rd.Err == nil && (v == nil || (*v != 4 && *v != 6)) {
		rd.Fail(badInput("ip_version", "'%v' is not in [4, 6]", api.Text(o["ip_version"])))
	} else if v != nil {
		sc.IPVersion = *v
	}
	if rd.Err != nil {
		return sc, rd.Err
	}
	if sc.Shared && !p.IsAdmin() {
		return sc, policyDenied("create_address_scope:shared")
	}
	return sc, nil
}

func (s *Service) scopeCreation() creation[AddressScope, AddressScope] {
	return creation[AddressScope, AddressScope]{one: "address_scope", many: "address_scopes", parse: s.parseScope,
		command: func(_ *memdb.Txn, scs []AddressScope) (string, any) {
			return cmdScopeCreate, scopeCreateCmd{Scopes: scs}
		},
		view: func(_ *memdb.Txn, _ *api.Principal, sc *AddressScope) api.View { return scopeView(sc) }}
}

func (s *Service) updateScope(w http.ResponseWriter, r *http.Request) error {
	ch, err := readChange(s, r, "address_scope", scopeAttrs, "update_address_scope", s.writableScope)
	if err != nil {
		return err
	}
	rd := ch.in
	c := scopeUpdateCmd{ifMatch: ch.match, ID: ch.row.ID, Now: s.now()}
	c.Name = optStr(rd, "name", 255)
	c.Shared = optBool(rd, "shared", false)
	if rd.Err != nil {
		return rd.Err
	}
	if c.Shared != nil && *c.Shared != ch.row.Shared && !principal(r).IsAdmin() {
		return policyDenied("update_address_scope:shared")
	}
	var row AddressScope
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdScopeUpdate, c, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"address_scope": scopeView(&row)})
	return nil
}

func (s *Service) deleteScope(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdScopeDelete, "delete_address_scope", s.writableScope)
}

// readPoolScope reads a subnet pool's address_scope_id: "" for none (null
// or absent); the scope must be one the caller sees and may use (its own
// or a shared one), of the pool's IP version.
func (s *Service) readPoolScope(tx *memdb.Txn, p *api.Principal, rd *api.Input, ver int) string {
	if !rd.Has("address_scope_id") || rd.IsNull("address_scope_id") {
		return ""
	}
	id := rd.Str("address_scope_id", "", 64)
	if rd.Err != nil {
		return ""
	}
	sc, err := s.addressScopes(tx).Get(tx, p, id)
	if err != nil {
		rd.Fail(err)
		return ""
	}
	if !sc.Shared && !p.CanWrite(sc.Project) {
		rd.Fail(store.Fault(store.KindInvalid, "IllegalSubnetPoolAssociationToAddressScope",
			"Illegal subnetpool association: subnetpool cannot be associated with address scope %s.", id))
		return ""
	}
	if ver != 0 && sc.IPVersion != ver {
		rd.Fail(store.Fault(store.KindInvalid, "IllegalSubnetPoolIpVersionAssociationToAddressScope",
			"Illegal subnetpool association: subnetpool of IPv%d cannot be associated with address scope %s of IPv%d.", ver, id, sc.IPVersion))
		return ""
	}
	return id
}

// networkScopes are a network's ipv4_address_scope and ipv6_address_scope:
// per IP version, the scope of its subnets' pools when they all have the
// same one (a subnet without a pool has none), else nil.
func networkScopes(tx *memdb.Txn, network string) (v4, v6 any) {
	scopes := map[int]map[string]bool{}
	for _, sn := range store.All[Subnet](tx, tSubnets, "network", network) {
		if scopes[sn.IPVersion] == nil {
			scopes[sn.IPVersion] = map[string]bool{}
		}
		scope := ""
		if sp := store.Get[SubnetPool](tx, tSubnetPools, sn.SubnetPoolID); sn.SubnetPoolID != "" && sp != nil {
			scope = sp.AddressScopeID
		}
		scopes[sn.IPVersion][scope] = true
	}
	one := func(set map[string]bool) any {
		if len(set) != 1 {
			return nil
		}
		for id := range set {
			if id != "" {
				return id
			}
		}
		return nil
	}
	return one(scopes[4]), one(scopes[6])
}

// scopeOverlap refuses pool sp's prefixes where another pool of its
// address scope has one overlapping: addresses of a scope are unique.
func scopeOverlap(tx *memdb.Txn, sp *SubnetPool) error {
	if sp.AddressScopeID == "" {
		return nil
	}
	mine := poolPrefixes(sp)
	for _, o := range store.All[SubnetPool](tx, tSubnetPools, "address_scope", sp.AddressScopeID) {
		if o.ID == sp.ID {
			continue
		}
		for _, op := range poolPrefixes(o) {
			for _, p := range mine {
				if p.Overlaps(op) {
					return store.Fault(store.KindConflict, "AddressScopePrefixConflict",
						"Failed to associate address scope: subnetpools within an address scope must have unique prefixes (%s of subnet pool %s overlaps %s).", op, o.ID, p)
				}
			}
		}
	}
	return nil
}

// scopeRoutes are the address scopes' routes.
func (s *Service) scopeRoutes() []api.Route {
	const get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	return []api.Route{
		{Method: get, Path: "/v2.0/address-scopes", Access: api.Authenticated, Rule: "get_address_scope", Handle: list(s, s.addressScopes)},
		{Method: post, Path: "/v2.0/address-scopes", Access: api.Authenticated, Rule: "create_address_scope", Handle: create(s, s.scopeCreation())},
		{Method: get, Path: "/v2.0/address-scopes/{id}", Access: api.Authenticated, Rule: "get_address_scope", Handle: show(s, s.addressScopes)},
		{Method: put, Path: "/v2.0/address-scopes/{id}", Access: api.Authenticated, Rule: "update_address_scope", Handle: s.updateScope},
		{Method: del, Path: "/v2.0/address-scopes/{id}", Access: api.Authenticated, Rule: "delete_address_scope", Handle: s.deleteScope},
	}
}
