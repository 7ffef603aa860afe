package dataplane

import (
	"fmt"
	"math"
	"slices"
)

// scopeNumbers numbers the address scopes of d's router interfaces (and
// IPv6 gateways) 1, 2, … in the order of their IDs, as the programs
// compare them (rif.scope); no scope is 0.
func scopeNumbers(d Desired) (map[string]uint16, error) {
	var ids []string
	for _, r := range d.Routers {
		for _, ri := range r.Interfaces {
			if ri.Scope != "" {
				ids = append(ids, ri.Scope)
			}
		}
		if g := r.Gateway; g != nil && g.Scope6 != "" {
			ids = append(ids, g.Scope6)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) > math.MaxUint16 {
		return nil, fmt.Errorf("number address scopes: %d is more than %d", len(ids), math.MaxUint16)
	}
	n := make(map[string]uint16, len(ids))
	for i, id := range ids {
		n[id] = uint16(i + 1)
	}
	return n, nil
}
