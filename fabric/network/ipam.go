package network

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"

	"github.com/rackstack/rackstack/fabric/store"
)

// Address arithmetic for subnets, pools and MACs. Everything here is pure:
// the FSM handlers use it.

// parsePrefix parses a CIDR whose host bits must be zero.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("'%s' is not a valid IP subnet", s)
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("'%s' is not a valid IP subnet", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("'%s' isn't a recommended CIDR, '%s' should be specified instead", s, m)
	}
	return p, nil
}

// parseCIDROrIP parses an address or a CIDR (host bits may be set) and
// returns it as a normalized prefix (a bare address is a /32 or /128).
func parseCIDROrIP(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("'%s' is not a valid IP address or CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := parseIP(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("'%s' is not a valid IP address or CIDR", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// parseIP parses an IPv4 or IPv6 address (no zone; IPv4-mapped IPv6 stays
// IPv6).
func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("'%s' is not a valid IP address", s)
	}
	return a, nil
}

func ipVersion(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// reserved reports whether a is an address no port may hold: the network
// address of an IPv4 subnet or the subnet-router anycast of an IPv6 one,
// and the IPv4 broadcast.
func reserved(p netip.Prefix, a netip.Addr) bool {
	if a == p.Addr() {
		// A subnet of one address (an IPv6 /128) hands that one out, as
		// Neutron's generate_pools makes it its pool.
		return !p.IsSingleIP() && (p.Addr().Is6() || p.Bits() < 31)
	}
	return p.Addr().Is4() && p.Bits() < 31 && a == lastAddr(p)
}

// defaultGateway is the first host of p.
func defaultGateway(p netip.Prefix) string {
	a := p.Addr().Next()
	if !a.IsValid() || !p.Contains(a) {
		return ""
	}
	return a.String()
}

// defaultPools is the whole of p minus the reserved addresses and the
// gateway.
func defaultPools(p netip.Prefix, gateway string) []Pool {
	first, last := p.Addr(), lastAddr(p)
	if reserved(p, first) {
		first = first.Next()
	}
	if reserved(p, last) {
		last = last.Prev()
	}
	if !first.IsValid() || !last.IsValid() || last.Less(first) {
		return []Pool{}
	}
	gw, err := parseIP(gateway)
	if gateway == "" || err != nil || gw.Less(first) || last.Less(gw) {
		return []Pool{{Start: first.String(), End: last.String()}}
	}
	var out []Pool
	if first.Less(gw) {
		out = append(out, Pool{Start: first.String(), End: gw.Prev().String()})
	}
	if gw.Less(last) {
		out = append(out, Pool{Start: gw.Next().String(), End: last.String()})
	}
	if out == nil {
		out = []Pool{}
	}
	return out
}

// poolRange parses a pool.
func poolRange(pl Pool) (netip.Addr, netip.Addr, error) {
	s, err := parseIP(pl.Start)
	if err != nil {
		return s, s, err
	}
	e, err := parseIP(pl.End)
	if err != nil {
		return s, e, err
	}
	return s, e, nil
}

func inPool(pl Pool, a netip.Addr) bool {
	s, e, err := poolRange(pl)
	return err == nil && s.BitLen() == a.BitLen() && !a.Less(s) && !e.Less(a)
}

// validatePools checks pools against the subnet p and its gateway, and
// returns them normalized.
func validatePools(p netip.Prefix, pools []Pool, gateway string) ([]Pool, error) {
	type rng struct{ s, e netip.Addr }
	var rs []rng
	out := make([]Pool, 0, len(pools))
	for _, pl := range pools {
		s, e, err := poolRange(pl)
		if err != nil {
			return nil, badInput("allocation_pools", "%v", err)
		}
		if s.BitLen() != p.Addr().BitLen() || e.BitLen() != p.Addr().BitLen() {
			return nil, badInput("allocation_pools", "the pool %s-%s is not of the subnet's IP version", pl.Start, pl.End)
		}
		if e.Less(s) {
			return nil, store.Fault(store.KindInvalid, "InvalidAllocationPool", "The allocation pool %s-%s spans beyond the subnet cidr %s.", pl.Start, pl.End, p)
		}
		if !p.Contains(s) || !p.Contains(e) || reserved(p, s) || reserved(p, e) {
			return nil, store.Fault(store.KindInvalid, "OutOfBoundsAllocationPool", "The allocation pool %s-%s spans beyond the subnet cidr %s.", pl.Start, pl.End, p)
		}
		for _, o := range rs {
			if !e.Less(o.s) && !o.e.Less(s) {
				return nil, store.Fault(store.KindConflict, "OverlappingAllocationPools", "Found overlapping allocation pools: %s-%s and %s-%s for subnet %s.", o.s, o.e, s, e, p)
			}
		}
		rs = append(rs, rng{s, e})
		out = append(out, Pool{Start: s.String(), End: e.String()})
	}
	if gateway != "" {
		gw, _ := parseIP(gateway)
		for _, pl := range out {
			if inPool(pl, gw) {
				return nil, store.Fault(store.KindConflict, "GatewayConflictWithAllocationPools", "Gateway ip %s conflicts with allocation pool %s-%s.", gateway, pl.Start, pl.End)
			}
		}
	}
	return out, nil
}

// validMAC parses a MAC in colon or dash notation and returns it in
// lowercase colon form; all-zero, broadcast and multicast addresses are
// refused.
func validMAC(s string) (string, bool) {
	s = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "-", ":"))
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return "", false
	}
	var b [6]byte
	for i, p := range parts {
		if len(p) != 2 {
			return "", false
		}
		var v byte
		if _, err := fmt.Sscanf(p, "%02x", &v); err != nil {
			return "", false
		}
		b[i] = v
	}
	if s == "00:00:00:00:00:00" || b[0]&1 == 1 {
		return "", false
	}
	return s, true
}

// derivedMAC is the n-th candidate MAC for a port: Neutron's fa:16:3e
// prefix and three bytes from the port id, so every node derives the same.
func derivedMAC(portID string, n int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", portID, n)))
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", h[0], h[1], h[2])
}

// eui64 is the SLAAC address of mac in the /64 p.
func eui64(p netip.Prefix, mac string) (netip.Addr, bool) {
	var m [6]byte
	if _, err := fmt.Sscanf(mac, "%02x:%02x:%02x:%02x:%02x:%02x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]); err != nil {
		return netip.Addr{}, false
	}
	b := p.Addr().As16()
	b[8], b[9], b[10], b[11] = m[0]^0x02, m[1], m[2], 0xff
	b[12], b[13], b[14], b[15] = 0xfe, m[3], m[4], m[5]
	return netip.AddrFrom16(b), true
}
