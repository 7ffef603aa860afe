package network

import (
	"net/http"
	"net/netip"
	"slices"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// PUT /subnetpools/{id}/add_prefixes and remove_prefixes (Neutron's
// subnetpool-prefix-ops extension): the body is {"prefixes": [...]} and
// the answer the pool's prefixes after. The change is worked out in the
// FSM, against the pool as it is then, so two changes at once both
// count. Removing takes the addresses away as a set difference (removing
// 10.0.1.0/24 from 10.0.0.0/16 leaves the rest of the /16), and is
// refused while a subnet of the pool uses them.

func (s *Service) poolPrefixOps(add bool) api.HandlerFunc {
	action := "remove_prefixes"
	if add {
		action = "add_prefixes"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		sp, err := s.writablePool(tx, principal(r), chi.URLParam(r, "id"), action)
		if err != nil {
			return err
		}
		o, err := api.ReadObject(r)
		if err != nil {
			return err
		}
		for k := range o {
			if k != "prefixes" {
				return badInput(k, "Unrecognized attribute(s) '%s'", k)
			}
		}
		rd := input(o)
		if !rd.Has("prefixes") {
			return badInput("prefixes", "Failed to parse request. Required attribute 'prefixes' not specified")
		}
		ps, ver := readPoolPrefixes(rd)
		if rd.Err == nil && ver != sp.IPVersion {
			rd.Fail(badInput("prefixes", "the pool's prefixes are IPv%d", sp.IPVersion))
		}
		if rd.Err != nil {
			return rd.Err
		}
		c := poolUpdateCmd{ID: sp.ID, Now: s.now()}
		if add {
			c.AddPrefixes = ps
		} else {
			c.RemovePrefixes = ps
		}
		var row SubnetPool
		if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdPoolUpdate, c, &row); err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"prefixes": slices.Clone(row.Prefixes)})
		return nil
	}
}

// prefixOps applies add and remove to sp's prefixes.
func prefixOps(tx *memdb.Txn, sp *SubnetPool, add, remove []string) error {
	have := poolPrefixes(sp)
	for _, c := range add {
		if p, err := netip.ParsePrefix(c); err == nil {
			have = append(have, p)
		}
	}
	for _, c := range remove {
		gone, err := netip.ParsePrefix(c)
		if err != nil {
			continue
		}
		for _, sn := range store.All[Subnet](tx, tSubnets, "subnetpool", sp.ID) {
			if p, err := netip.ParsePrefix(sn.CIDR); err == nil && p.Overlaps(gone) {
				return store.Fault(store.KindInvalid, "IllegalSubnetPoolPrefixUpdate",
					"Illegal update to prefixes: prefix %s is in use by subnet %s (%s) of subnet pool %s.", gone, sn.ID, sn.CIDR, sp.ID)
			}
		}
		var left []netip.Prefix
		for _, p := range have {
			left = append(left, subtractPrefix(p, gone)...)
		}
		have = left
	}
	if len(have) == 0 {
		return store.Fault(store.KindInvalid, "IllegalSubnetPoolPrefixUpdate", "Illegal update to prefixes: subnet pool %s would have no prefix left.", sp.ID)
	}
	sp.Prefixes = compactPrefixes(have)
	return nil
}

// subtractPrefix is p without the addresses of r, as prefixes.
func subtractPrefix(p, r netip.Prefix) []netip.Prefix {
	switch {
	case !p.Overlaps(r):
		return []netip.Prefix{p}
	case r.Bits() <= p.Bits(): // r holds p
		return nil
	}
	// p holds r: split p in halves and keep what is not r.
	lo := netip.PrefixFrom(p.Addr(), p.Bits()+1)
	hiAddr := p.Addr().AsSlice()
	bit := p.Bits()
	hiAddr[bit/8] |= 0x80 >> (bit % 8)
	a, _ := netip.AddrFromSlice(hiAddr)
	if p.Addr().Is4() {
		a = a.Unmap()
	}
	hi := netip.PrefixFrom(a, p.Bits()+1)
	return append(subtractPrefix(lo, r), subtractPrefix(hi, r)...)
}
