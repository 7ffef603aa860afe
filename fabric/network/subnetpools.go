package network

import (
	"math"
	"math/big"
	"net/http"
	"net/netip"
	"slices"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Subnet pools (Neutron's subnet_allocation and default-subnetpools
// extensions): a subnet names a pool and a prefix length, or a CIDR
// within the pool, instead of a CIDR of its own. The proposer picks the
// range from the state it read; the apply checks it is still free, so two
// subnets of one pool never overlap, whatever their networks. Address
// scopes are not implemented: address_scope_id is always null.

var poolAttrs = newAttrSpec(
	"name description prefixes min_prefixlen max_prefixlen default_prefixlen is_default address_scope_id default_quota",
	"tenant_id project_id shared",
	"id ip_version created_at updated_at revision_number tags")

// poolBits are the defaults of a pool's prefix lengths per IP version, as
// in Neutron: subnets no larger than a /8 (IPv4) or a /64 (IPv6).
var poolBits = map[int]struct{ min, max int }{4: {8, 32}, 6: {64, 128}}

func poolView(sp *SubnetPool) api.View {
	return map[string]any{
		"id": sp.ID, "name": sp.Name, "description": sp.Description, "tenant_id": sp.Project, "project_id": sp.Project,
		"prefixes": slices.Clone(sp.Prefixes), "ip_version": sp.IPVersion,
		"min_prefixlen": sp.MinPrefixlen, "max_prefixlen": sp.MaxPrefixlen, "default_prefixlen": sp.DefaultPrefixlen,
		"shared": sp.Shared, "is_default": sp.IsDefault, "default_quota": intOrNull(sp.DefaultQuota), "address_scope_id": nullable(sp.AddressScopeID),
		"created_at": timeText(sp.CreatedAt), "updated_at": timeText(sp.UpdatedAt), "revision_number": sp.Revision, "tags": tagList(sp.Tags),
	}
}

// subnetPools is the subnet pools collection: a project's own and the
// shared ones.
func (s *Service) subnetPools(*memdb.Txn) api.Collection[SubnetPool] {
	return api.Collection[SubnetPool]{Table: tSubnetPools, One: "subnetpool",
		Visible:  func(p *api.Principal, sp *SubnetPool) bool { return sp.Shared || p.CanRead(sp.Project) },
		View:     func(_ *memdb.Txn, _ *api.Principal, sp *SubnetPool) api.View { return poolView(sp) },
		NotFound: func(id string) error { return notFound("subnetpool", id) }, Listing: s.listing("subnetpools")}
}

func (s *Service) writablePool(tx *memdb.Txn, p *api.Principal, id, action string) (*SubnetPool, error) {
	sp, err := s.subnetPools(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(sp.Project) {
		return nil, policyDenied(action)
	}
	return sp, nil
}

// readPoolPrefixes reads prefixes: CIDRs of one IP version (host bits are
// dropped), returned sorted with those inside another left out.
func readPoolPrefixes(rd *api.Input) ([]string, int) {
	list := rd.Strs("prefixes")
	if rd.Err != nil {
		return nil, 0
	}
	if len(list) == 0 {
		rd.Fail(badInput("prefixes", "a subnet pool needs at least one prefix"))
		return nil, 0
	}
	var ps []netip.Prefix
	ver := 0
	for _, c := range list {
		p, err := netip.ParsePrefix(c)
		if err != nil || p.Addr().Zone() != "" {
			rd.Fail(badInput("prefixes", "'%s' is not a valid IP subnet", c))
			return nil, 0
		}
		if v := ipVersion(p.Addr()); ver == 0 {
			ver = v
		} else if v != ver {
			rd.Fail(badInput("prefixes", "the prefixes of a subnet pool are all IPv4 or all IPv6"))
			return nil, 0
		}
		ps = append(ps, p.Masked())
	}
	return compactPrefixes(ps), ver
}

// compactPrefixes sorts ps and leaves out those inside another.
func compactPrefixes(ps []netip.Prefix) []string {
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	var out []string
	var last netip.Prefix
	for _, p := range ps {
		if last.IsValid() && last.Overlaps(p) {
			continue // sorted: the earlier one holds it
		}
		last = p
		out = append(out, p.String())
	}
	return out
}

// poolBounds checks a pool's prefix lengths: min ≤ default ≤ max within
// the address, and no prefix of the pool smaller than min.
func poolBounds(ver, lo, hi, def int, prefixes []string) error {
	if lo < 0 || hi > poolBits[ver].max || lo > hi {
		return invalidInput("Illegal prefix bounds: min_prefixlen %d, max_prefixlen %d (IPv%d: 0 ≤ min ≤ max ≤ %d)", lo, hi, ver, poolBits[ver].max)
	}
	if def < lo || def > hi {
		return invalidInput("Illegal prefix bounds: default_prefixlen %d is not within min_prefixlen %d and max_prefixlen %d", def, lo, hi)
	}
	for _, c := range prefixes {
		if p, err := netip.ParsePrefix(c); err == nil && p.Bits() > hi {
			return invalidInput("Illegal prefix bounds: prefix %s is longer than max_prefixlen %d", c, hi)
		}
	}
	return nil
}

// readPoolQuota reads default_quota: a non-negative integer, or null for
// none. set says whether the request has it.
func readPoolQuota(rd *api.Input) (q *int, set bool) {
	if !rd.Has("default_quota") {
		return nil, false
	}
	if rd.IsNull("default_quota") {
		return nil, true
	}
	v := rd.Int("default_quota", 0, math.MaxInt32)
	if rd.Err != nil {
		return nil, true
	}
	return v, true
}

func intOrNull(v *int) any {
	if v == nil {
		return nil
	}
	return *v
}

func (s *Service) parsePool(tx *memdb.Txn, p *api.Principal, o api.Object) (SubnetPool, error) {
	if err := poolAttrs.check(o, http.MethodPost); err != nil {
		return SubnetPool{}, err
	}
	rd := input(o)
	now := s.now()
	sp := SubnetPool{ID: api.NewUUID(), CreatedAt: now, UpdatedAt: now}
	sp.Name = rd.Str("name", "", 255)
	sp.Description = rd.Str("description", "", 255)
	sp.Project = readProject(rd, p)
	sp.Shared = rd.Bool("shared", false)
	sp.IsDefault = rd.Bool("is_default", false)
	sp.DefaultQuota, _ = readPoolQuota(rd)
	if rd.Err != nil {
		return sp, rd.Err
	}
	if sp.Shared && !p.IsAdmin() {
		return sp, policyDenied("create_subnetpool:shared")
	}
	if sp.IsDefault && !p.IsAdmin() {
		return sp, policyDenied("create_subnetpool:is_default")
	}
	if !rd.Has("prefixes") {
		return sp, badInput("prefixes", "'prefixes' is a required property")
	}
	sp.Prefixes, sp.IPVersion = readPoolPrefixes(rd)
	if rd.Err != nil {
		return sp, rd.Err
	}
	b := poolBits[sp.IPVersion]
	sp.MinPrefixlen, sp.MaxPrefixlen = intOr(rd, "min_prefixlen", b.min), intOr(rd, "max_prefixlen", b.max)
	sp.DefaultPrefixlen = intOr(rd, "default_prefixlen", sp.MinPrefixlen)
	sp.AddressScopeID = s.readPoolScope(tx, p, rd, sp.IPVersion)
	if rd.Err != nil {
		return sp, rd.Err
	}
	return sp, poolBounds(sp.IPVersion, sp.MinPrefixlen, sp.MaxPrefixlen, sp.DefaultPrefixlen, sp.Prefixes)
}

// intOr reads an optional integer attribute: def when absent or null.
func intOr(rd *api.Input, f string, def int) int {
	if !rd.Has(f) || rd.IsNull(f) {
		return def
	}
	if v := integer(rd, f); v != nil {
		return *v
	}
	return def
}

func (s *Service) poolCreation() creation[SubnetPool, SubnetPool] {
	return creation[SubnetPool, SubnetPool]{one: "subnetpool", many: "subnetpools", parse: s.parsePool,
		command: func(_ *memdb.Txn, sps []SubnetPool) (string, any) {
			return cmdPoolCreate, poolCreateCmd{Pools: sps}
		},
		view: func(_ *memdb.Txn, _ *api.Principal, sp *SubnetPool) api.View { return poolView(sp) }}
}

func (s *Service) updatePool(w http.ResponseWriter, r *http.Request) error {
	ch, err := readChange(s, r, "subnetpool", poolAttrs, "update_subnetpool", s.writablePool)
	if err != nil {
		return err
	}
	sp, rd := ch.row, ch.in
	c := poolUpdateCmd{ifMatch: ch.match, ID: sp.ID, Now: s.now()}
	c.Name = optStr(rd, "name", 255)
	c.Description = optStr(rd, "description", 255)
	c.IsDefault = optBool(rd, "is_default", false)
	for f, dst := range map[string]**int{"min_prefixlen": &c.MinPrefixlen, "max_prefixlen": &c.MaxPrefixlen, "default_prefixlen": &c.DefaultPrefixlen} {
		if rd.Has(f) && !rd.IsNull(f) {
			*dst = integer(rd, f)
		}
	}
	if rd.Has("prefixes") {
		ps, ver := readPoolPrefixes(rd)
		if rd.Err == nil && ver != sp.IPVersion {
			rd.Fail(badInput("prefixes", "the pool's prefixes are IPv%d", sp.IPVersion))
		}
		c.Prefixes = &ps
	}
	if rd.Has("address_scope_id") {
		scope := s.readPoolScope(ch.tx, principal(r), rd, sp.IPVersion)
		c.AddressScopeID = &scope
	}
	c.DefaultQuota, c.SetDefaultQuota = readPoolQuota(rd)
	if rd.Err != nil {
		return rd.Err
	}
	if c.IsDefault != nil && *c.IsDefault != sp.IsDefault && !principal(r).IsAdmin() {
		return policyDenied("update_subnetpool:is_default")
	}
	var row SubnetPool
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdPoolUpdate, c, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"subnetpool": poolView(&row)})
	return nil
}

func (s *Service) deletePool(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdPoolDelete, "delete_subnetpool", s.writablePool)
}

// requestedPool is the pool a new subnet of IP version ver asks for:
// subnetpool_id, or with use_default_subnetpool the default pool of its
// version; nil for none.
func (s *Service) requestedPool(tx *memdb.Txn, p *api.Principal, rd *api.Input, ver int) (*SubnetPool, error) {
	if rd.Has("subnetpool_id") && !rd.IsNull("subnetpool_id") {
		id := rd.Str("subnetpool_id", "", 64)
		if rd.Err != nil {
			return nil, rd.Err
		}
		sp, err := s.subnetPools(tx).Get(tx, p, id)
		if err != nil {
			return nil, err
		}
		if sp.IPVersion != ver {
			return nil, invalidInput("Cannot allocate an IPv%d subnet from the IPv%d subnet pool %s", ver, sp.IPVersion, sp.ID)
		}
		return sp, nil
	}
	if !rd.Bool("use_default_subnetpool", false) {
		return nil, rd.Err
	}
	if sp := defaultPoolOf(tx, ver); sp != nil {
		return sp, nil
	}
	return nil, badInput("use_default_subnetpool", "there is no default subnet pool for IPv%d", ver)
}

func defaultPoolOf(tx *memdb.Txn, ver int) *SubnetPool {
	for _, sp := range store.All[SubnetPool](tx, tSubnetPools, "id") {
		if sp.IsDefault && sp.IPVersion == ver {
			return sp
		}
	}
	return nil
}

// poolSubnetRange reads the range of a new subnet of pool sp: cidr, which must
// lie within the pool, or a free prefix of prefixlen (default: the pool's)
// chosen now from the state read.
func poolSubnetRange(tx *memdb.Txn, rd *api.Input, sp *SubnetPool, network string) (netip.Prefix, error) {
	cidr := rd.Str("cidr", "", 64)
	plen := integer(rd, "prefixlen")
	if rd.Err != nil {
		return netip.Prefix{}, rd.Err
	}
	if cidr != "" && plen != nil {
		return netip.Prefix{}, invalidInput("cidr and prefixlen must not be supplied together")
	}
	if cidr != "" {
		pfx, err := parsePrefix(cidr)
		if err != nil {
			return pfx, badInput("cidr", "%v", err)
		}
		if ipVersion(pfx.Addr()) != sp.IPVersion {
			return pfx, invalidInput("Cidr %s does not match ip_version %d", cidr, sp.IPVersion)
		}
		if pfx.Bits() < sp.MinPrefixlen || pfx.Bits() > sp.MaxPrefixlen {
			return pfx, badInput("cidr", "the prefix length %d is not within the pool's %d to %d", pfx.Bits(), sp.MinPrefixlen, sp.MaxPrefixlen)
		}
		return pfx, poolHolds(sp, pfx)
	}
	bits := sp.DefaultPrefixlen
	if plen != nil {
		bits = *plen
	}
	if bits < sp.MinPrefixlen || bits > sp.MaxPrefixlen {
		return netip.Prefix{}, badInput("prefixlen", "%d is not within the pool's %d to %d", bits, sp.MinPrefixlen, sp.MaxPrefixlen)
	}
	used := poolUsed(tx, sp.ID, network)
	pfx, ok := freePrefix(poolPrefixes(sp), bits, used)
	if !ok {
		return pfx, poolExhausted(sp.ID, bits)
	}
	return pfx, nil
}

func poolExhausted(id string, bits int) error {
	return store.Fault(store.KindConflict, "SubnetAllocationError", "Failed to allocate subnet: no free /%d is left in subnet pool %s.", bits, id)
}

// poolHolds says whether pfx lies within one of sp's prefixes.
func poolHolds(sp *SubnetPool, pfx netip.Prefix) error {
	for _, pp := range poolPrefixes(sp) {
		if pp.Bits() <= pfx.Bits() && pp.Contains(pfx.Addr()) {
			return nil
		}
	}
	return store.Fault(store.KindInvalid, "SubnetAllocationError", "Failed to allocate subnet: %s is not within the prefixes of subnet pool %s.", pfx, sp.ID)
}

func poolPrefixes(sp *SubnetPool) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(sp.Prefixes))
	for _, c := range sp.Prefixes {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// poolUsed is what a new subnet of pool on network may not overlap: the
// pool's subnets and the network's.
func poolUsed(tx *memdb.Txn, pool, network string) []netip.Prefix {
	var out []netip.Prefix
	for _, sn := range append(store.All[Subnet](tx, tSubnets, "subnetpool", pool), store.All[Subnet](tx, tSubnets, "network", network)...) {
		if p, err := netip.ParsePrefix(sn.CIDR); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// freePrefix is the lowest prefix of length bits within prefixes that
// overlaps none of used. It steps over each used range it meets rather
// than through every candidate, so a /64 from a /32 costs at most one
// step per used range.
func freePrefix(prefixes []netip.Prefix, bits int, used []netip.Prefix) (netip.Prefix, bool) {
	for _, pp := range prefixes {
		if pp.Bits() > bits {
			continue
		}
		n := pp.Addr().BitLen()
		step := new(big.Int).Lsh(big.NewInt(1), uint(n-bits))
		end := addrInt(lastAddr(pp))
		for c := addrInt(pp.Addr()); c.Cmp(end) <= 0; {
			cand := netip.PrefixFrom(intAddr(c, n), bits)
			i := slices.IndexFunc(used, func(u netip.Prefix) bool { return u.Overlaps(cand) })
			if i < 0 {
				return cand, true
			}
			// The next candidate starts after the used range, aligned.
			next := addrInt(lastAddr(used[i]))
			next.Add(next, big.NewInt(1))
			next.Add(next, new(big.Int).Sub(step, big.NewInt(1)))
			next.Div(next, step)
			next.Mul(next, step)
			if next.Cmp(c) <= 0 {
				next.Add(c, step)
			}
			c = next
		}
	}
	return netip.Prefix{}, false
}

func addrInt(a netip.Addr) *big.Int { return new(big.Int).SetBytes(a.AsSlice()) }

// intAddr is the address of n bits whose value is v.
func intAddr(v *big.Int, n int) netip.Addr {
	b := v.FillBytes(make([]byte, n/8))
	a, _ := netip.AddrFromSlice(b)
	return a
}
