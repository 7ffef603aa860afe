package network

import (
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// QoS commands. Every check that depends on other rows (one default per
// project, one rule of a type and direction per policy, a policy in use
// by another project's port or network) is made here, in the apply, so
// two racing requests cannot both pass it; an apply that fails writes
// nothing.

const (
	cmdQoSPolicyCreate = "network.qos_policy.create"
	cmdQoSPolicyUpdate = "network.qos_policy.update"
	cmdQoSPolicyDelete = "network.qos_policy.delete"
	cmdQoSRuleCreate   = "network.qos_rule.create"
	cmdQoSRuleUpdate   = "network.qos_rule.update"
	cmdQoSRuleDelete   = "network.qos_rule.delete"
)

// qosHandlers are the QoS commands' applies, for Schema.
func qosHandlers() map[string]store.Handler {
	return map[string]store.Handler{
		cmdQoSPolicyCreate: store.Typed(applyQoSPolicyCreate),
		cmdQoSPolicyUpdate: store.Typed(applyQoSPolicyUpdate),
		cmdQoSPolicyDelete: store.Typed(applyQoSPolicyDelete),
		cmdQoSRuleCreate:   store.Typed(applyQoSRuleCreate),
		cmdQoSRuleUpdate:   store.Typed(applyQoSRuleUpdate),
		cmdQoSRuleDelete:   store.Typed(applyQoSRuleDelete),
	}
}

type qosPolicyCreateCmd struct {
	Policies []QoSPolicy `json:"policies"`
}

func applyQoSPolicyCreate(tx *memdb.Txn, c qosPolicyCreateCmd) (any, error) {
	out := make([]QoSPolicy, 0, len(c.Policies))
	for _, q := range c.Policies {
		if store.Get[QoSPolicy](tx, tQoSPolicies, q.ID) != nil {
			return nil, store.Conflictf("QoS policy %s exists", q.ID)
		}
		if q.Default {
			if err := oneQoSDefault(tx, q.Project, q.ID); err != nil {
				return nil, err
			}
		}
		if err := tx.Insert(tQoSPolicies, &q); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// oneQoSDefault refuses a second default policy for project.
func oneQoSDefault(tx *memdb.Txn, project, id string) error {
	if d := defaultQoS(tx, project); d != "" && d != id {
		return store.Fault(store.KindConflict, "QoSPolicyDefaultAlreadyExists", "A default QoS policy exists for project %s.", project)
	}
	return nil
}

// defaultQoS is project's default policy (qos-default): "" for none.
func defaultQoS(tx *memdb.Txn, project string) string {
	for _, q := range store.All[QoSPolicy](tx, tQoSPolicies, "project", project) {
		if q.Default {
			return q.ID
		}
	}
	return ""
}

type qosPolicyUpdateCmd struct {
	ifMatch
	ID          string    `json:"id"`
	Name        *string   `json:"name,omitempty"`
	Description *string   `json:"description,omitempty"`
	Shared      *bool     `json:"shared,omitempty"`
	Default     *bool     `json:"default,omitempty"`
	Now         time.Time `json:"now"`
}

func applyQoSPolicyUpdate(tx *memdb.Txn, c qosPolicyUpdateCmd) (any, error) {
	old, err := current(tx, tQoSPolicies, "qos_policy", c.ID, c.ifMatch, func(r *QoSPolicy) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	q := *old
	set(&q.Name, c.Name)
	set(&q.Description, c.Description)
	set(&q.Shared, c.Shared)
	set(&q.Default, c.Default)
	if q.Default && !old.Default {
		if err := oneQoSDefault(tx, q.Project, q.ID); err != nil {
			return nil, err
		}
	}
	touch(&q.UpdatedAt, &q.Revision, c.Now)
	if err := tx.Insert(tQoSPolicies, &q); err != nil {
		return nil, err
	}
	// Unsharing must not leave another project's port or network naming
	// a policy it may no longer use.
	if old.Shared && !q.Shared {
		if kind, id := qosUser(tx, &q); kind != "" {
			return nil, qosInUse(q.ID, kind, id)
		}
	}
	return q, nil
}

func qosInUse(policy, kind, id string) error {
	return store.Fault(store.KindConflict, "QosPolicyInUse", "QoS Policy %s is used by %s %s.", policy, kind, id)
}

// applyQoSPolicyDelete deletes a policy no port or network names, with its
// rules.
func applyQoSPolicyDelete(tx *memdb.Txn, c idCmd) (any, error) {
	q, err := current(tx, tQoSPolicies, "qos_policy", c.ID, c.ifMatch, func(r *QoSPolicy) int { return r.Revision })
	if err != nil {
		return nil, err
	}
	if kind, id := qosAnyUser(tx, q.ID); kind != "" {
		return nil, qosInUse(q.ID, kind, id)
	}
	if err := dropNetworkPolicies(tx, q.ID); err != nil { // its RBAC policies
		return nil, err
	}
	for _, r := range store.All[QoSRule](tx, tQoSRules, "policy", q.ID) {
		if err := tx.Delete(tQoSRules, r); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(tQoSPolicies, q)
}

// checkQoSUse checks that a row of project may name policy ("" : none):
// the policy exists and is project's own or shared with it (flag or RBAC
// policy). Called by the applies that set a port's or network's
// qos_policy_id.
func checkQoSUse(tx *memdb.Txn, project, policy string) error {
	if policy == "" {
		return nil
	}
	q := store.Get[QoSPolicy](tx, tQoSPolicies, policy)
	if q == nil || !qosSharedWith(tx, q, project) {
		return qosPolicyNotFound(policy)
	}
	return nil
}

// qosRuleCmd creates, updates or deletes one rule; the policy's revision
// goes up with it, as in Neutron.
type qosRuleCmd struct {
	Rule QoSRule   `json:"rule"`
	Now  time.Time `json:"now"`
}

func applyQoSRuleCreate(tx *memdb.Txn, c qosRuleCmd) (any, error) {
	if store.Get[QoSRule](tx, tQoSRules, c.Rule.ID) != nil {
		return nil, store.Conflictf("QoS rule %s exists", c.Rule.ID)
	}
	return writeQoSRule(tx, c)
}

func applyQoSRuleUpdate(tx *memdb.Txn, c qosRuleCmd) (any, error) {
	old := store.Get[QoSRule](tx, tQoSRules, c.Rule.ID)
	if old == nil || old.PolicyID != c.Rule.PolicyID || old.Type != c.Rule.Type {
		return nil, qosRuleNotFound(c.Rule.ID, c.Rule.PolicyID)
	}
	return writeQoSRule(tx, c)
}

// writeQoSRule inserts c.Rule after checking its policy is still there
// and no other rule of the policy has its type (and direction).
func writeQoSRule(tx *memdb.Txn, c qosRuleCmd) (any, error) {
	r := c.Rule
	if qosKindOf(r.Type) == nil {
		return nil, store.Fault(store.KindInvalid, "QosRuleNotSupported", "Rule type %s is not supported by this cloud.", r.Type)
	}
	if err := bumpQoSPolicy(tx, r.PolicyID, c.Now); err != nil {
		return nil, err
	}
	for _, o := range store.All[QoSRule](tx, tQoSRules, "policy", r.PolicyID) {
		if o.ID != r.ID && o.Type == r.Type && o.Direction == r.Direction {
			return nil, store.Fault(store.KindConflict, "QoSRuleExists",
				"A %s rule%s already exists in QoS policy %s (rule %s).", r.Type, directionText(r.Direction), r.PolicyID, o.ID)
		}
	}
	return r, tx.Insert(tQoSRules, &r)
}

func directionText(d string) string {
	if d == "" {
		return ""
	}
	return " of direction " + d
}

func applyQoSRuleDelete(tx *memdb.Txn, c qosRuleCmd) (any, error) {
	old := store.Get[QoSRule](tx, tQoSRules, c.Rule.ID)
	if old == nil || old.PolicyID != c.Rule.PolicyID {
		return nil, qosRuleNotFound(c.Rule.ID, c.Rule.PolicyID)
	}
	if err := bumpQoSPolicy(tx, old.PolicyID, c.Now); err != nil {
		return nil, err
	}
	return nil, tx.Delete(tQoSRules, old)
}

// bumpQoSPolicy is a new revision of policy id (404 if it is gone).
func bumpQoSPolicy(tx *memdb.Txn, id string, now time.Time) error {
	old := store.Get[QoSPolicy](tx, tQoSPolicies, id)
	if old == nil {
		return qosPolicyNotFound(id)
	}
	q := *old
	touch(&q.UpdatedAt, &q.Revision, now)
	return tx.Insert(tQoSPolicies, &q)
}
