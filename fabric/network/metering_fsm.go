package network

import (
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

type labelCreateCmd struct {
	Labels []MeteringLabel `json:"labels"`
}

func applyLabelCreate(tx *memdb.Txn, c labelCreateCmd) (any, error) {
	out := make([]MeteringLabel, 0, len(c.Labels))
	for _, l := range c.Labels {
		if store.Get[MeteringLabel](tx, tMeteringLabels, l.ID) != nil {
			return nil, store.Conflictf("metering label %s exists", l.ID)
		}
		if err := tx.Insert(tMeteringLabels, &l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// applyLabelDelete deletes a label with its rules, as Neutron does.
func applyLabelDelete(tx *memdb.Txn, c idCmd) (any, error) {
	l := store.Get[MeteringLabel](tx, tMeteringLabels, c.ID)
	if l == nil {
		return nil, notFound("metering_label", c.ID)
	}
	for _, m := range store.All[MeteringRule](tx, tMeteringRules, "label", l.ID) {
		if err := tx.Delete(tMeteringRules, m); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(tMeteringLabels, l)
}

type meterCreateCmd struct {
	Rules []MeteringRule `json:"rules"`
}

func applyMeterCreate(tx *memdb.Txn, c meterCreateCmd) (any, error) {
	out := make([]MeteringRule, 0, len(c.Rules))
	for _, m := range c.Rules {
		if store.Get[MeteringRule](tx, tMeteringRules, m.ID) != nil {
			return nil, store.Conflictf("metering label rule %s exists", m.ID)
		}
		// The label may have gone since the proposer read it.
		if store.Get[MeteringLabel](tx, tMeteringLabels, m.LabelID) == nil {
			return nil, notFound("metering_label", m.LabelID)
		}
		if err := meterOverlaps(tx, &m); err != nil {
			return nil, err
		}
		if err := tx.Insert(tMeteringRules, &m); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func applyMeterDelete(tx *memdb.Txn, c idCmd) (any, error) {
	m := store.Get[MeteringRule](tx, tMeteringRules, c.ID)
	if m == nil {
		return nil, notFound("metering_label_rule", c.ID)
	}
	return nil, tx.Delete(tMeteringRules, m)
}
