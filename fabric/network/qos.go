package network

import (
	"math"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// QoS (Neutron's qos extension family): policies of rules that ports and
// networks name by qos_policy_id, enforced per port by the nodes' eBPF
// dataplanes (dataplane/qos.go). Only the rule types the dataplane really
// enforces exist here: bandwidth_limit and packet_rate_limit (token-bucket
// policers, either direction) and dscp_marking (what the port sends).
// minimum_bandwidth and minimum_packet_rate need placement-aware
// scheduling, which this cloud does not have: a request for one is
// refused (400 QosRuleNotSupported), never accepted and ignored, and
// rule-types does not list them.
//
// As in Neutron's default policy, only admins write policies and rules;
// anyone sees their own project's policies and the shared ones, and may
// name them on their ports and networks.

type (
	QoSPolicy = netstate.QoSPolicy
	QoSRule   = netstate.QoSRule
)

const (
	tQoSPolicies = netstate.TableQoSPolicies
	tQoSRules    = netstate.TableQoSRules
)

var qosPolicyAttrs = newAttrSpec("name description shared is_default", "tenant_id project_id",
	"id rules created_at updated_at revision_number tags")

// qosKind is one enforced rule type as the API names it.
type qosKind struct {
	typ        string // bandwidth_limit
	one, many  string // bandwidth_limit_rule, bandwidth_limit_rules (the path too)
	attrs      attrSpec
	parameters []map[string]any // rule-types/{type}: what the dataplane takes
}

// dscpMarks are the DSCP values Neutron accepts (neutron-lib's
// VALID_DSCP_MARKS).
var dscpMarks = []int{0, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 46, 48, 56}

// rateLimitParameters are the rule-type details of a rate limit rule:
// a rate, a burst, a direction.
func rateLimitParameters(max, burst string) []map[string]any {
	rng := map[string]any{"start": 0, "end": math.MaxInt32}
	return []map[string]any{
		{"parameter_name": max, "parameter_type": "range", "parameter_values": rng},
		{"parameter_name": burst, "parameter_type": "range", "parameter_values": rng},
		{"parameter_name": "direction", "parameter_type": "choices", "parameter_values": []string{"ingress", "egress"}},
	}
}

var qosKinds = []qosKind{
	{typ: netstate.QoSBandwidthLimit, one: "bandwidth_limit_rule", many: "bandwidth_limit_rules",
		attrs:      newAttrSpec("max_kbps max_burst_kbps direction", "tenant_id project_id", "id qos_policy_id type"),
		parameters: rateLimitParameters("max_kbps", "max_burst_kbps")},
	{typ: netstate.QoSPacketRate, one: "packet_rate_limit_rule", many: "packet_rate_limit_rules",
		attrs:      newAttrSpec("max_kpps max_burst_kpps direction", "tenant_id project_id", "id qos_policy_id type"),
		parameters: rateLimitParameters("max_kpps", "max_burst_kpps")},
	{typ: netstate.QoSDSCPMarking, one: "dscp_marking_rule", many: "dscp_marking_rules",
		attrs: newAttrSpec("dscp_mark", "tenant_id project_id", "id qos_policy_id type"),
		parameters: []map[string]any{
			{"parameter_name": "dscp_mark", "parameter_type": "choices", "parameter_values": dscpMarks},
		}},
}

// qosUnenforced are Neutron's rule types this dataplane cannot enforce,
// by their collection, with why.
var qosUnenforced = map[string][2]string{
	"minimum_bandwidth_rules":   {"minimum_bandwidth", "a bandwidth guarantee needs placement-aware scheduling, which this cloud does not do"},
	"minimum_packet_rate_rules": {"minimum_packet_rate", "a packet rate guarantee needs placement-aware scheduling, which this cloud does not do"},
}

func qosKindOf(typ string) *qosKind {
	for i := range qosKinds {
		if qosKinds[i].typ == typ {
			return &qosKinds[i]
		}
	}
	return nil
}

func qosPolicyNotFound(id string) error {
	return store.Fault(store.KindNotFound, "QosPolicyNotFound", "QoS policy %s could not be found.", id)
}

func qosRuleNotFound(rule, policy string) error {
	return store.Fault(store.KindNotFound, "QosRuleNotFound", "QoS rule %s for policy %s could not be found.", rule, policy)
}

// qosRuleView is a rule as its own resource shows it.
func qosRuleView(r *QoSRule) api.View {
	v := map[string]any{"id": r.ID}
	switch r.Type {
	case netstate.QoSBandwidthLimit:
		v["max_kbps"], v["max_burst_kbps"], v["direction"] = r.MaxKbps, r.MaxBurstKbps, r.Direction
	case netstate.QoSPacketRate:
		v["max_kpps"], v["max_burst_kpps"], v["direction"] = r.MaxKpps, r.MaxBurstKpps, r.Direction
	case netstate.QoSDSCPMarking:
		v["dscp_mark"] = r.DSCPMark
	}
	return v
}

func qosPolicyView(tx *memdb.Txn, q *QoSPolicy) api.View {
	rules := []any{}
	for _, r := range store.All[QoSRule](tx, tQoSRules, "policy", q.ID) {
		v := qosRuleView(r)
		v["type"], v["qos_policy_id"] = r.Type, q.ID
		rules = append(rules, v)
	}
	return map[string]any{
		"id": q.ID, "name": q.Name, "description": q.Description, "shared": q.Shared, "is_default": q.Default,
		"tenant_id": q.Project, "project_id": q.Project, "rules": rules, "tags": tagList(q.Tags),
		"created_at": timeText(q.CreatedAt), "updated_at": timeText(q.UpdatedAt), "revision_number": q.Revision,
	}
}

// qosPolicies is the collection: a project's own policies (an admin's:
// all) and those shared with it, by flag or RBAC policy.
func (s *Service) qosPolicies(tx *memdb.Txn) api.Collection[QoSPolicy] {
	visible := func(p *api.Principal, q *QoSPolicy) bool {
		return p.CanRead(q.Project) || qosSharedWith(tx, q, p.ProjectID)
	}
	return api.Collection[QoSPolicy]{Table: tQoSPolicies, One: "policy", Visible: visible,
		View:     func(tx *memdb.Txn, _ *api.Principal, q *QoSPolicy) api.View { return qosPolicyView(tx, q) },
		NotFound: qosPolicyNotFound, Listing: s.listing("policies")}
}

func (s *Service) parseQoSPolicy(_ *memdb.Txn, p *api.Principal, o api.Object) (QoSPolicy, error) {
	if err := qosPolicyAttrs.check(o, http.MethodPost); err != nil {
		return QoSPolicy{}, err
	}
	rd := input(o)
	now := s.now()
	q := QoSPolicy{ID: api.NewUUID(), CreatedAt: now, UpdatedAt: now}
	q.Name = rd.Str("name", "", 255)
	q.Description = rd.Str("description", "", 255)
	q.Project = readProject(rd, p)
	q.Shared = rd.Bool("shared", false)
	q.Default = rd.Bool("is_default", false)
	return q, rd.Err
}

func (s *Service) qosPolicyCreation() creation[QoSPolicy, QoSPolicy] {
	return creation[QoSPolicy, QoSPolicy]{one: "policy", many: "policies", parse: s.parseQoSPolicy,
		command: func(_ *memdb.Txn, qs []QoSPolicy) (string, any) {
			return cmdQoSPolicyCreate, qosPolicyCreateCmd{Policies: qs}
		},
		view: func(tx *memdb.Txn, _ *api.Principal, q *QoSPolicy) api.View { return qosPolicyView(tx, q) }}
}

// writableQoSPolicy finds a policy for a write, an admin's only (as
// Neutron's default policy has it; the tag routes let members through
// to here).
func (s *Service) writableQoSPolicy(tx *memdb.Txn, p *api.Principal, id, action string) (*QoSPolicy, error) {
	q, err := s.qosPolicies(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.IsAdmin() {
		return nil, policyDenied(action)
	}
	return q, nil
}

func (s *Service) updateQoSPolicy(w http.ResponseWriter, r *http.Request) error {
	ch, err := readChange(s, r, "policy", qosPolicyAttrs, "update_policy", s.writableQoSPolicy)
	if err != nil {
		return err
	}
	c := qosPolicyUpdateCmd{ifMatch: ch.match, ID: ch.row.ID, Now: s.now()}
	c.Name = optStr(ch.in, "name", 255)
	c.Description = optStr(ch.in, "description", 255)
	c.Shared = optBool(ch.in, "shared", false)
	c.Default = optBool(ch.in, "is_default", false)
	if ch.in.Err != nil {
		return ch.in.Err
	}
	var row QoSPolicy
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdQoSPolicyUpdate, c, &row)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"policy": qosPolicyView(tx, &row)})
	return nil
}

func (s *Service) deleteQoSPolicy(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdQoSPolicyDelete, "delete_policy", s.writableQoSPolicy)
}

// qosRuleOf finds rule {rule_id} of kind k in the policy {id} the caller
// sees: 404 QosPolicyNotFound or QosRuleNotFound.
func (s *Service) qosRuleOf(tx *memdb.Txn, r *http.Request, k *qosKind) (*QoSRule, error) {
	q, err := s.qosPolicies(tx).Get(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return nil, err
	}
	id := chi.URLParam(r, "rule_id")
	rule := store.Get[QoSRule](tx, tQoSRules, id)
	if rule == nil || rule.PolicyID != q.ID || rule.Type != k.typ {
		return nil, qosRuleNotFound(id, q.ID)
	}
	return rule, nil
}

func (s *Service) listQoSRules(k *qosKind) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		q, err := s.qosPolicies(tx).Get(tx, principal(r), chi.URLParam(r, "id"))
		if err != nil {
			return err
		}
		views := []api.View{}
		for _, rule := range store.All[QoSRule](tx, tQoSRules, "policy", q.ID) {
			if rule.Type == k.typ {
				views = append(views, qosRuleView(rule))
			}
		}
		return s.listing(k.many).Write(w, r, views)
	}
}

func (s *Service) showQoSRule(k *qosKind) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		rule, err := s.qosRuleOf(tx, r, k)
		if err != nil {
			return err
		}
		return api.Show(w, r, k.one, qosRuleView(rule))
	}
}

// readQoSRule reads a rule's attributes into rule: all of them for a
// create (post), the ones given for an update.
func readQoSRule(k *qosKind, rd *api.Input, rule *QoSRule, post bool) error {
	switch k.typ {
	case netstate.QoSBandwidthLimit:
		readLimit(rd, "max_kbps", "max_burst_kbps", &rule.MaxKbps, &rule.MaxBurstKbps, post)
		readDirection(rd, rule, post)
	case netstate.QoSPacketRate:
		readLimit(rd, "max_kpps", "max_burst_kpps", &rule.MaxKpps, &rule.MaxBurstKpps, post)
		readDirection(rd, rule, post)
	case netstate.QoSDSCPMarking:
		if post && !rd.Has("dscp_mark") {
			return badInput("dscp_mark", "'dscp_mark' is a required property")
		}
		if rd.Has("dscp_mark") {
			v := rd.Int("dscp_mark", math.MinInt32, math.MaxInt32)
			if rd.Err == nil && (v == nil || !slices.Contains(dscpMarks, *v)) {
				rd.Fail(badInput("dscp_mark", "%v is not in valid_values", api.Text(rd.Obj["dscp_mark"])))
			}
			if v != nil {
				rule.DSCPMark = *v
			}
		}
	}
	return rd.Err
}

// readLimit reads a limit rule's rate (required in a create) and burst.
func readLimit(rd *api.Input, rateField, burstField string, rate, burst *int, post bool) {
	if post && !rd.Has(rateField) {
		rd.Fail(badInput(rateField, "'%s' is a required property", rateField))
		return
	}
	if rd.IsNull(rateField) {
		rd.Fail(badInput(rateField, "'None' is not an integer"))
	}
	if v := rd.Int(rateField, 0, math.MaxInt32); v != nil {
		*rate = *v
	}
	if v := rd.Int(burstField, 0, math.MaxInt32); v != nil {
		*burst = *v
	}
}

// readDirection reads a limit rule's direction: egress (the default) or
// ingress.
func readDirection(rd *api.Input, rule *QoSRule, post bool) {
	if post {
		rule.Direction = "egress"
	}
	if rd.Has("direction") {
		d := rd.Str("direction", "egress", 16)
		if rd.Err == nil && d != "egress" && d != "ingress" {
			rd.Fail(badInput("direction", "%s is not in valid_values", d))
		}
		rule.Direction = d
	}
}

// ruleBody reads the body {one: {...}} of a rule request.
func ruleBody(r *http.Request, k *qosKind, method string) (*api.Input, error) {
	objs, _, err := bodies(r, k.one, "")
	if err != nil {
		return nil, err
	}
	if err := k.attrs.check(objs[0], method); err != nil {
		return nil, err
	}
	return input(objs[0]), nil
}

func (s *Service) createQoSRule(k *qosKind) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error { return s.writeQoSRule(w, r, k, true) }
}

func (s *Service) updateQoSRule(k *qosKind) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error { return s.writeQoSRule(w, r, k, false) }
}

// writeQoSRule is a rule's create (a new rule of the policy in the path)
// or update (the rule in the path): the body changes it, and the command
// that stores it checks it against the policy's other rules.
func (s *Service) writeQoSRule(w http.ResponseWriter, r *http.Request, k *qosKind, create bool) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	var rule QoSRule
	method, cmd, status := http.MethodPut, cmdQoSRuleUpdate, http.StatusOK
	if create {
		method, cmd, status = http.MethodPost, cmdQoSRuleCreate, http.StatusCreated
		q, err := s.qosPolicies(tx).Get(tx, principal(r), chi.URLParam(r, "id"))
		if err != nil {
			return err
		}
		rule = QoSRule{ID: api.NewUUID(), PolicyID: q.ID, Type: k.typ}
	} else {
		old, err := s.qosRuleOf(tx, r, k)
		if err != nil {
			return err
		}
		rule = *old
	}
	rd, err := ruleBody(r, k, method)
	if err != nil {
		return err
	}
	if err := readQoSRule(k, rd, &rule, create); err != nil {
		return err
	}
	var row QoSRule
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmd, qosRuleCmd{Rule: rule, Now: s.now()}, &row); err != nil {
		return err
	}
	api.JSON(w, status, map[string]any{k.one: qosRuleView(&row)})
	return nil
}

func (s *Service) deleteQoSRule(k *qosKind) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		rule, err := s.qosRuleOf(tx, r, k)
		if err != nil {
			return err
		}
		if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdQoSRuleDelete, qosRuleCmd{Rule: *rule, Now: s.now()}, nil); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// refuseQoSRule answers a request to make a rule of a type the dataplane
// cannot enforce.
func refuseQoSRule(many string) api.HandlerFunc {
	why := qosUnenforced[many]
	return func(http.ResponseWriter, *http.Request) error {
		return store.Fault(store.KindInvalid, "QosRuleNotSupported",
			"Rule type %s is not supported by this cloud: %s.", why[0], why[1])
	}
}

func listQoSRuleTypes(w http.ResponseWriter, r *http.Request) error {
	out := []map[string]any{}
	for _, k := range qosKinds {
		out = append(out, map[string]any{"type": k.typ})
	}
	api.JSON(w, http.StatusOK, map[string]any{"rule_types": out})
	return nil
}

func showQoSRuleType(w http.ResponseWriter, r *http.Request) error {
	typ := chi.URLParam(r, "type")
	k := qosKindOf(typ)
	if k == nil {
		return store.Fault(store.KindNotFound, "QosRuleTypeNotFound", "QoS rule type %s could not be found.", typ)
	}
	return api.Show(w, r, "rule_type", map[string]any{"type": k.typ,
		"drivers": []any{map[string]any{"name": "rackstack-ebpf", "supported_parameters": k.parameters}}})
}

// qosRoutes are the QoS API's routes: policies and rules written by
// admins, read by all.
func (s *Service) qosRoutes() []api.Route {
	const get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	const token = api.Authenticated
	routes := []api.Route{
		{Method: get, Path: "/v2.0/qos/rule-types", Access: token, Rule: "get_rule_type", Handle: listQoSRuleTypes},
		{Method: get, Path: "/v2.0/qos/rule-types/{type}", Access: token, Rule: "get_rule_type", Handle: showQoSRuleType},
		{Method: get, Path: "/v2.0/qos/policies", Access: token, Rule: "get_policy", Handle: list(s, s.qosPolicies)},
		{Method: post, Path: "/v2.0/qos/policies", Access: api.Admin, Rule: "create_policy", Handle: create(s, s.qosPolicyCreation())},
		{Method: get, Path: "/v2.0/qos/policies/{id}", Access: token, Rule: "get_policy", Handle: show(s, s.qosPolicies)},
		{Method: put, Path: "/v2.0/qos/policies/{id}", Access: api.Admin, Rule: "update_policy", Handle: s.updateQoSPolicy},
		{Method: del, Path: "/v2.0/qos/policies/{id}", Access: api.Admin, Rule: "delete_policy", Handle: s.deleteQoSPolicy},
	}
	for i := range qosKinds {
		k := &qosKinds[i]
		base := "/v2.0/qos/policies/{id}/" + k.many
		routes = append(routes,
			api.Route{Method: get, Path: base, Access: token, Rule: "get_policy_" + k.one, Handle: s.listQoSRules(k)},
			api.Route{Method: post, Path: base, Access: api.Admin, Rule: "create_policy_" + k.one, Handle: s.createQoSRule(k)},
			api.Route{Method: get, Path: base + "/{rule_id}", Access: token, Rule: "get_policy_" + k.one, Handle: s.showQoSRule(k)},
			api.Route{Method: put, Path: base + "/{rule_id}", Access: api.Admin, Rule: "update_policy_" + k.one, Handle: s.updateQoSRule(k)},
			api.Route{Method: del, Path: base + "/{rule_id}", Access: api.Admin, Rule: "delete_policy_" + k.one, Handle: s.deleteQoSRule(k)})
	}
	for many := range qosUnenforced {
		routes = append(routes, api.Route{Method: post, Path: "/v2.0/qos/policies/{id}/" + many, Access: token,
			Rule: "create_policy_" + many, Handle: refuseQoSRule(many)})
	}
	return routes
}

// readQoSPolicyID reads a port's or network's qos_policy_id: nil when
// absent, "" for none (null). Whether the row may name the policy (it
// exists and is the row's project's or shared; else 404
// QosPolicyNotFound) is checked in the apply, against the state the
// write lands on.
func readQoSPolicyID(rd *api.Input) *string {
	if !rd.Has("qos_policy_id") {
		return nil
	}
	none := ""
	if rd.IsNull("qos_policy_id") {
		return &none
	}
	id := rd.Str("qos_policy_id", "", 64)
	if rd.Err != nil {
		return nil
	}
	return &id
}

// qosNetworkPolicy is a port's qos_network_policy_id: its network's
// policy (null for none).
func qosNetworkPolicy(tx *memdb.Txn, pt *Port) any {
	if n := store.Get[Network](tx, tNetworks, pt.NetworkID); n != nil {
		return nullable(n.QoSPolicyID)
	}
	return nil
}
