package network

import (
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// The rbac-policies API: /v2.0/rbac-policies. Neutron's default policy:
// anyone may give their own network to another project; a policy for
// every project ("*") is an admin's, as shared=True and router:external
// are. Here making a network external to a project (access_as_external)
// is an admin's too, as router:external is: an external network is the
// operator's outside segment. A policy is seen and changed by the
// project that made it (a wildcard's is its network's project) and by
// admins; the project it targets sees the network, not the policy.

var rbacAttrs = newAttrSpec("target_tenant", "object_type object_id action tenant_id project_id", "id")

// rbacObjectTypes are the object types Neutron has policies for: only
// networks are shared here.
var rbacObjectTypes = []string{"network", "qos_policy", "security_group", "address_scope", "subnetpool", "address_group", "bgpvpn"}

func (s *Service) rbacRoutes() []api.Route {
	const token = api.Authenticated
	return []api.Route{
		{Method: http.MethodGet, Path: "/v2.0/rbac-policies", Access: token, Rule: "get_rbac_policy", Handle: s.listRBAC},
		{Method: http.MethodPost, Path: "/v2.0/rbac-policies", Access: token, Rule: "create_rbac_policy", Handle: s.createRBAC},
		{Method: http.MethodGet, Path: "/v2.0/rbac-policies/{id}", Access: token, Rule: "get_rbac_policy", Handle: s.showRBAC},
		{Method: http.MethodPut, Path: "/v2.0/rbac-policies/{id}", Access: token, Rule: "update_rbac_policy", Handle: s.updateRBAC},
		{Method: http.MethodDelete, Path: "/v2.0/rbac-policies/{id}", Access: token, Rule: "delete_rbac_policy", Handle: s.deleteRBAC},
	}
}

func rbacView(p *RBACPolicy) api.View {
	return map[string]any{"id": p.ID, "object_type": p.ObjectType, "object_id": p.ObjectID, "action": p.Action,
		"target_tenant": p.Target, "tenant_id": p.Project, "project_id": p.Project}
}

// visibleRBAC is the policy id if p may see it.
func visibleRBAC(tx *memdb.Txn, p *api.Principal, id string) (*RBACPolicy, error) {
	rp := findPolicy(tx, id)
	if rp == nil || !p.CanRead(rp.Project) {
		return nil, rbacNotFound(id)
	}
	return rp, nil
}

func (s *Service) listRBAC(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p := principal(r)
	views := []api.View{}
	for _, rp := range allPolicies(tx) {
		if p.CanRead(rp.Project) {
			views = append(views, rbacView(&rp))
		}
	}
	return s.listing("rbac_policies").Write(w, r, views)
}

func (s *Service) showRBAC(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	rp, err := visibleRBAC(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return api.Show(w, r, "rbac_policy", rbacView(rp))
}

// readTarget reads target_tenant: a project, or "*" for an admin.
func readTarget(rd *api.Input, p *api.Principal, action string) string {
	t := rd.Str("target_tenant", "", 255)
	if rd.Err == nil && t == "" {
		rd.Fail(badInput("target_tenant", "'target_tenant' must be a project id or '*'"))
	}
	if rd.Err == nil && t == rbacWildcard && !p.IsAdmin() {
		rd.Fail(policyDenied(action + ":target_tenant"))
	}
	return t
}

func (s *Service) createRBAC(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	objs, _, err := bodies(r, "rbac_policy", "")
	if err != nil {
		return err
	}
	if err := rbacAttrs.check(objs[0], http.MethodPost); err != nil {
		return err
	}
	rd := input(objs[0])
	for _, f := range []string{"object_type", "object_id", "action", "target_tenant"} {
		if !rd.Has(f) {
			return badInput(f, "Failed to parse request. Required attribute '%s' not specified", f)
		}
	}
	rp := RBACPolicy{ID: api.NewUUID(), ObjectType: rd.Str("object_type", "", 255), ObjectID: rd.Str("object_id", "", 64),
		Action: rd.Str("action", "", 255)}
	rp.Target = readTarget(rd, p, "create_rbac_policy")
	rp.Project = readProject(rd, p)
	if rd.Err != nil {
		return rd.Err
	}
	if rp.Project != p.ProjectID && !p.IsAdmin() {
		return policyDenied("create_rbac_policy:tenant_id")
	}
	switch {
	case rp.ObjectType == rbacNetwork, rp.ObjectType == rbacAddrGroup, rp.ObjectType == rbacSecGroup, rp.ObjectType == rbacQoS:
	case slices.Contains(rbacObjectTypes, rp.ObjectType):
		return badInput("object_type", "object_type '%s' is not supported here: only networks, address groups, security groups and QoS policies are shared by RBAC policies", rp.ObjectType)
	default:
		return badInput("object_type", "'%s' is not in %s", rp.ObjectType, "['"+strings.Join(rbacObjectTypes, "', '")+"']")
	}
	if rp.Action != actShared && rp.Action != actExternal {
		return store.Fault(store.KindInvalid, "InvalidActionForType",
			"Invalid action '%s' for object type '%s'. Valid actions: ['%s', '%s']", rp.Action, rp.ObjectType, actExternal, actShared)
	}
	if (rp.ObjectType == rbacAddrGroup || rp.ObjectType == rbacSecGroup || rp.ObjectType == rbacQoS) && rp.Action != actShared {
		return store.Fault(store.KindInvalid, "InvalidActionForType",
			"Invalid action '%s' for object type '%s'. Valid actions: ['%s']", rp.Action, rp.ObjectType, actShared)
	}
	if rp.Action == actExternal && !p.IsAdmin() {
		return policyDenied("create_rbac_policy:action")
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	// The network, address or security group must be the caller's to give.
	switch rp.ObjectType {
	case rbacAddrGroup:
		if err := s.addrGroupToShare(tx, p, rp.ObjectID); err != nil {
			return err
		}
	case rbacSecGroup:
		if err := s.groupToShare(tx, p, rp.ObjectID); err != nil {
			return err
		}
	case rbacQoS:
		if err := s.qosToShare(tx, p, rp.ObjectID); err != nil {
			return err
		}
	default:
		if _, err := s.writableNetwork(tx, p, rp.ObjectID, "create_rbac_policy"); err != nil {
			return err
		}
	}
	var row RBACPolicy
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdRBACCreate, rbacCreateCmd{Policy: rp}, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, map[string]any{"rbac_policy": rbacView(&row)})
	return nil
}

// writableRBAC is the policy id if p may change it.
func writableRBAC(tx *memdb.Txn, p *api.Principal, id, action string) (*RBACPolicy, error) {
	rp, err := visibleRBAC(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(rp.Project) {
		return nil, policyDenied(action)
	}
	if rp.Target == rbacWildcard && !p.IsAdmin() {
		return nil, policyDenied(action)
	}
	return rp, nil
}

func (s *Service) updateRBAC(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	ch, err := readChange(s, r, "rbac_policy", rbacAttrs, "update_rbac_policy", writableRBAC)
	if err != nil {
		return err
	}
	c := rbacUpdateCmd{ID: ch.row.ID, Target: ch.row.Target, NewID: api.NewUUID()}
	if ch.in.Has("target_tenant") {
		c.Target = readTarget(ch.in, p, "update_rbac_policy")
	}
	if ch.in.Err != nil {
		return ch.in.Err
	}
	var row RBACPolicy
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdRBACUpdate, c, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"rbac_policy": rbacView(&row)})
	return nil
}

func (s *Service) deleteRBAC(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdRBACDelete, "delete_rbac_policy", writableRBAC)
}
