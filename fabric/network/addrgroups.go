package network

import (
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Address groups (Neutron's address-group extension): a project's named
// set of CIDRs that a security group rule takes as its remote
// (remote_address_group_id). The nodes expand a group's CIDRs into the
// rules they compile, so changing the addresses changes what every port
// whose groups use it lets through; an empty group matches nothing.
// add_addresses / remove_addresses carry only the change, merged in the
// apply into the addresses as they are then, so two clients editing at
// once keep each other's change (as add_extraroutes does).

type AddressGroup = netstate.AddressGroup

const tAddressGroups = netstate.TableAddressGroups

var addrGroupAttrs = newAttrSpec("name description", "tenant_id project_id addresses", "id created_at updated_at revision_number")

func addrGroupView(ag *AddressGroup) api.View {
	addrs := append([]string{}, ag.Addresses...)
	return map[string]any{
		"id": ag.ID, "name": ag.Name, "description": ag.Description, "tenant_id": ag.Project, "project_id": ag.Project,
		"addresses": addrs, "created_at": timeText(ag.CreatedAt), "updated_at": timeText(ag.UpdatedAt), "revision_number": ag.Revision,
	}
}

// addressGroups is the collection: a project's own (an admin's: all) and
// those shared with it by RBAC policies.
func (s *Service) addressGroups(tx *memdb.Txn) api.Collection[AddressGroup] {
	return api.Collection[AddressGroup]{Table: tAddressGroups, One: "address_group",
		Project: func(ag *AddressGroup) string { return ag.Project },
		Visible: func(p *api.Principal, ag *AddressGroup) bool {
			return p.CanRead(ag.Project) || addrGroupSharedWith(tx, ag, p.ProjectID)
		},
		View:     func(_ *memdb.Txn, _ *api.Principal, ag *AddressGroup) api.View { return addrGroupView(ag) },
		NotFound: func(id string) error { return notFound("address_group", id) }, Listing: s.listing("address_groups")}
}

func (s *Service) writableAddrGroup(tx *memdb.Txn, p *api.Principal, id, action string) (*AddressGroup, error) {
	ag, err := s.addressGroups(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	switch {
	case p.CanWrite(ag.Project):
		return ag, nil
	case p.CanRead(ag.Project):
		return nil, policyDenied(action)
	}
	// Shared with the caller: seen, not the caller's to change.
	return nil, notFound("address_group", id)
}

// addrGroupToShare checks that p may make RBAC policies on address group
// id: the owner (or an admin). A project it is only shared with is
// refused with 400, as Neutron does; one that does not see it with 404.
func (s *Service) addrGroupToShare(tx *memdb.Txn, p *api.Principal, id string) error {
	ag, err := s.addressGroups(tx).Get(tx, p, id)
	if err != nil {
		return err
	}
	if !p.CanWrite(ag.Project) {
		return badInput("object_id", "address group %s is not owned by project %s, so it cannot share it", id, p.ProjectID)
	}
	return nil
}

// readAddresses reads the list field "addresses": IPv4 or IPv6 CIDRs,
// normalized as Neutron does (host bits cleared), each once, sorted. A
// group is created from CIDRs alone (Neutron's subnet_list); the
// add_addresses and remove_addresses actions also take a bare address,
// as a /32 or /128.
func readAddresses(rd *api.Input, bare bool) []string {
	if rd.Has("addresses") && rd.IsNull("addresses") {
		rd.Fail(badInput("addresses", "'None' is not a list"))
		return nil
	}
	raw := rd.Strs("addresses")
	if rd.Err != nil {
		return nil
	}
	set := map[string]bool{}
	for _, a := range raw {
		pfx, err := parseCIDROrIP(strings.TrimSpace(a))
		if err != nil {
			rd.Fail(badInput("addresses", "%v", err))
			return nil
		}
		if !bare && !strings.Contains(a, "/") {
			rd.Fail(badInput("addresses", "'%s' isn't a recognized IP subnet cidr, '%s' is recommended", a, pfx))
			return nil
		}
		set[pfx.String()] = true
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sortAddresses(out)
	return out
}

// sortAddresses orders CIDRs by address, then length: IPv4 first.
func sortAddresses(addrs []string) {
	sort.Slice(addrs, func(i, j int) bool {
		a, _ := netip.ParsePrefix(addrs[i])
		b, _ := netip.ParsePrefix(addrs[j])
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c < 0
		}
		return a.Bits() < b.Bits()
	})
}

func (s *Service) parseAddrGroup(_ *memdb.Txn, p *api.Principal, o api.Object) (AddressGroup, error) {
	if err := addrGroupAttrs.check(o, http.MethodPost); err != nil {
		return AddressGroup{}, err
	}
	rd := input(o)
	now := s.now()
	ag := AddressGroup{ID: api.NewUUID(), CreatedAt: now, UpdatedAt: now}
	ag.Name = rd.Str("name", "", 255)
	ag.Description = rd.Str("description", "", 255)
	ag.Project = readProject(rd, p)
	ag.Addresses = readAddresses(rd, false)
	if rd.Err != nil {
		return ag, rd.Err
	}
	return ag, nil
}

func (s *Service) addrGroupCreation() creation[AddressGroup, AddressGroup] {
	return creation[AddressGroup, AddressGroup]{one: "address_group", many: "address_groups", parse: s.parseAddrGroup,
		command: func(_ *memdb.Txn, ags []AddressGroup) (string, any) {
			return cmdAddrGroupCreate, addrGroupCreateCmd{Groups: ags}
		},
		view: func(_ *memdb.Txn, _ *api.Principal, ag *AddressGroup) api.View { return addrGroupView(ag) }}
}

func (s *Service) updateAddrGroup(w http.ResponseWriter, r *http.Request) error {
	ch, err := readChange(s, r, "address_group", addrGroupAttrs, "update_address_group", s.writableAddrGroup)
	if err != nil {
		return err
	}
	c := addrGroupUpdateCmd{ifMatch: ch.match, ID: ch.row.ID, Now: s.now()}
	c.Name = optStr(ch.in, "name", 255)
	c.Description = optStr(ch.in, "description", 255)
	if ch.in.Err != nil {
		return ch.in.Err
	}
	var row AddressGroup
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdAddrGroupUpdate, c, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"address_group": addrGroupView(&row)})
	return nil
}

// addrGroupAddressAttrs is the one attribute add_addresses and
// remove_addresses take.
var addrGroupAddressAttrs = newAttrSpec("addresses", "", "")

// addrGroupAddresses answers add_addresses (add) and remove_addresses:
// the body is {"addresses": [...]}, the answer the whole group. Adding
// an address the group has is 400 AddressesAlreadyExist, removing one it
// has not 404 AddressesNotFound, as in Neutron; both are checked in the
// apply against the addresses as they are then.
func (s *Service) addrGroupAddresses(add bool) api.HandlerFunc {
	action := "remove_addresses"
	if add {
		action = "add_addresses"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		ag, err := s.writableAddrGroup(tx, principal(r), chi.URLParam(r, "id"), action)
		if err != nil {
			return err
		}
		var body api.Object
		if err := api.DecodeLoose(r, &body); err != nil {
			return err
		}
		// Neutron's member action takes the body as it is; some clients
		// wrap it as an update would be.
		if inner, ok := body["address_group"].(map[string]any); ok && len(body) == 1 {
			body = inner
		}
		if err := addrGroupAddressAttrs.check(body, http.MethodPut); err != nil {
			return err
		}
		rd := input(body)
		if !rd.Has("addresses") {
			return badInput("addresses", "Failed to parse request. Required attribute 'addresses' not specified")
		}
		addrs := readAddresses(rd, true)
		if rd.Err != nil {
			return rd.Err
		}
		c := addrGroupUpdateCmd{ID: ag.ID, Now: s.now()}
		if add {
			c.Add = addrs
		} else {
			c.Remove = addrs
		}
		var row AddressGroup
		if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdAddrGroupUpdate, c, &row); err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"address_group": addrGroupView(&row)})
		return nil
	}
}

func (s *Service) deleteAddrGroup(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdAddrGroupDelete, "delete_address_group", s.writableAddrGroup)
}

// readRemoteAddrGroup reads a rule's remote_address_group_id: the group
// must be one the caller sees.
func (s *Service) readRemoteAddrGroup(tx *memdb.Txn, p *api.Principal, rd *api.Input) string {
	if !rd.Has("remote_address_group_id") || rd.IsNull("remote_address_group_id") {
		return ""
	}
	id := rd.Str("remote_address_group_id", "", 64)
	if rd.Err != nil || id == "" {
		return ""
	}
	if _, err := s.addressGroups(tx).Get(tx, p, id); err != nil {
		rd.Fail(err)
		return ""
	}
	return id
}

// addrGroupRoutes are the address groups' routes.
func (s *Service) addrGroupRoutes() []api.Route {
	const get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	const token = api.Authenticated
	return []api.Route{
		{Method: get, Path: "/v2.0/address-groups", Access: token, Rule: "get_address_group", Handle: list(s, s.addressGroups)},
		{Method: post, Path: "/v2.0/address-groups", Access: token, Rule: "create_address_group", Handle: create(s, s.addrGroupCreation())},
		{Method: get, Path: "/v2.0/address-groups/{id}", Access: token, Rule: "get_address_group", Handle: show(s, s.addressGroups)},
		{Method: put, Path: "/v2.0/address-groups/{id}", Access: token, Rule: "update_address_group", Handle: s.updateAddrGroup},
		{Method: del, Path: "/v2.0/address-groups/{id}", Access: token, Rule: "delete_address_group", Handle: s.deleteAddrGroup},
		{Method: put, Path: "/v2.0/address-groups/{id}/add_addresses", Access: token, Rule: "add_addresses", Handle: s.addrGroupAddresses(true)},
		{Method: put, Path: "/v2.0/address-groups/{id}/remove_addresses", Access: token, Rule: "remove_addresses", Handle: s.addrGroupAddresses(false)},
	}
}

// mergeAddresses is addrs with add and remove applied, or the Neutron
// fault for an address added twice or removed without being there.
func mergeAddresses(id string, addrs, add, remove []string) ([]string, error) {
	var dup, missing []string
	for _, a := range add {
		if slices.Contains(addrs, a) {
			dup = append(dup, a)
		}
	}
	for _, a := range remove {
		if !slices.Contains(addrs, a) {
			missing = append(missing, a)
		}
	}
	if len(dup) > 0 {
		return nil, store.Fault(store.KindInvalid, "AddressesAlreadyExist",
			"Addresses %s already exist in address group %s.", pyList(dup), id)
	}
	if len(missing) > 0 {
		return nil, store.Fault(store.KindNotFound, "AddressesNotFound",
			"Addresses %s not found in the address group %s.", pyList(missing), id)
	}
	out := []string{}
	for _, a := range append(append([]string{}, addrs...), add...) {
		if !slices.Contains(remove, a) {
			out = append(out, a)
		}
	}
	sortAddresses(out)
	return out, nil
}

// pyList writes addresses as Neutron's messages do: ['10.0.0.0/24'].
func pyList(items []string) string {
	return "['" + strings.Join(items, "', '") + "']"
}
