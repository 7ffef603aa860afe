// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// IPv6 through a router's external gateway, included by dataplane.c after
// its IPv6 helpers. Neutron routes IPv6 without NAT: a router sends its
// subnets' packets out of its gateway as they are, and the outside routes
// the subnets back to the gateway's IPv6 address. So:
//
//   route6 sends what its ROUTE_EXTERNAL route matches to to_external6:
//          to the neighbour on the external network (the destination when
//          it is on the external subnet, else the subnet's gateway), the
//          hop limit taken down, or ICMPv6 time exceeded / packet too big
//          back to the port.
//   ext_rx hands IPv6 to ext6_rx: neighbour solicitations and
//          advertisements teach it the outside's MACs (ext_neighs6); those
//          for a router's gateway address are answered, as are pings to
//          it; what is sent to a port's routed address (ext6_in) goes to
//          the port after its ingress security groups.
//
// On a VLAN external network (riding on the uplink, whose uplink_in pops
// the tag before ext_rx) the answers and what to_external6 sends go out
// tagged with the network's VLAN.

/* An external network's IPv6 subnet, in exts6 by the external's key. */
struct ext6 {
	__u8 gateway[16];       /* the next hop outside; :: = none */
	__u8 net[16];           /* masked */
	__u32 plen;
};

/* ext6_in: (external key, address) -> where it goes in. */
struct ext6_key {
	__u32 ext;
	__u8 ip[16];
};

struct ext6_val {
	__u32 ifindex;          /* the port; 0: a router's gateway address */
	__u8 mac[6];            /* the router's MAC on the port's network */
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct ext6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exts6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ext6_key);
	__type(value, struct ext6_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ext6_in SEC(".maps");

/* Learnt by ext6_rx from the neighbour discovery it sees; never written
 * by Go. Key: the external's key in vlan. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct neigh6_key);
	__type(value, struct neigh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ext_neighs6 SEC(".maps");

#define ICMP6_PACKET_TOO_BIG 2

/* in_prefix6 says whether address a is in net/plen (net masked). */
static __always_inline int in_prefix6(const __u32 *a, const __u8 *net, __u32 plen)
{
	__u32 n[4];
	__builtin_memcpy(n, net, 16);
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u32 bits = plen > 32 * i ? plen - 32 * i : 0;
		if (bits > 32)
			bits = 32;
		__u32 m = bits ? bpf_htonl(0xffffffffU << (32 - bits)) : 0;
		if ((a[i] & m) != n[i])
			return 0;
	}
	return 1;
}

/* to_external6 sends a routed packet out of its router's gateway (external
 * key ext) as it is. Too big for the external device: ICMPv6 packet too
 * big to the sender, as nothing on an IPv6 path fragments. */
static __always_inline int to_external6(struct __sk_buff *skb, struct rif6 *in, struct flow *f, __u32 ext)
{
	struct ext *e = bpf_map_lookup_elem(&exts, &ext);
	struct ext6 *x = bpf_map_lookup_elem(&exts6, &ext);
	if (!e || !x)
		return drop(C_DROP_NO_ROUTE);
	__u32 dev = e->ifindex, evlan = e->vlan;
	struct neigh6_key nk = { .vlan = ext };
	if (in_prefix6(f->daddr6, x->net, x->plen))
		__builtin_memcpy(nk.ip, f->daddr6, 16);
	else
		__builtin_memcpy(nk.ip, x->gateway, 16);
	__u8 dmac[6], smac[6], from[16], rmac[6];
	__builtin_memcpy(smac, e->mac, 6);
	__builtin_memcpy(from, in->ip, 16);
	__builtin_memcpy(rmac, in->mac, 6);
	struct neigh *nb = bpf_map_lookup_elem(&ext_neighs6, &nk);
	if (!nb)
		return drop(C_DROP_NO_NEIGH);
	__builtin_memcpy(dmac, nb->mac, 6);
	__u8 hops;
	if (bpf_skb_load_bytes(skb, IP6_HOP_OFF, &hops, 1))
		return drop(C_DROP_MALFORMED);
	if (hops <= 1)
		return icmp6_error(skb, f, ICMP6_TIME_EXCEEDED, 0, 0, from, rmac);
	__u32 mtu = 0;
	if (bpf_check_mtu(skb, dev, &mtu, 0, 0) == BPF_MTU_CHK_RET_FRAG_NEEDED)
		return icmp6_error(skb, f, ICMP6_PACKET_TOO_BIG, 0, mtu, from, rmac);
	hops--;
	if (bpf_skb_store_bytes(skb, IP6_HOP_OFF, &hops, 1, 0) || set_macs(skb, dmac, smac))
		return drop(C_DROP_MALFORMED);
	if (evlan && bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), evlan))
		return drop(C_DROP_MALFORMED);
	count(C_FWD_ROUTED);
	return bpf_redirect(dev, 0);
}

/* ext6_tagged sends answer r (a redirect back out of the device the
 * question came in on) on the external network's VLAN, when it has one. */
static __always_inline int ext6_tagged(struct __sk_buff *skb, __u32 vlan, int r)
{
	if (r == TC_ACT_REDIRECT && vlan && bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), vlan))
		return drop(C_DROP_MALFORMED);
	return r;
}

/* ext6_rx takes the IPv6 that arrives from external network ext (e),
 * untagged: TC_ACT_OK when it is none of the dataplane's business. */
static __always_inline int ext6_rx(struct __sk_buff *skb, __u32 ext, struct ext *e)
{
	if (!bpf_map_lookup_elem(&exts6, &ext))
		return TC_ACT_OK;
	struct flow f = {};
	__u32 l4 = parse_ipv6(skb, &f, ext);
	if (!l4)
		return TC_ACT_OK;
	__u8 emac[6], smac[6], dst[6];
	__builtin_memcpy(emac, e->mac, 6);
	__u32 evlan = e->vlan;
	if (bpf_skb_load_bytes(skb, 0, dst, 6) || bpf_skb_load_bytes(skb, 6, smac, 6))
		return TC_ACT_OK;
	__u8 t = icmp6_type(&f);
	int from_any = f.saddr6[0] | f.saddr6[1] | f.saddr6[2] | f.saddr6[3];
	if (t == ICMP6_NS || t == ICMP6_NA) {
		__u8 target[16];
		if (bpf_skb_load_bytes(skb, l4 + 8, target, 16))
			return TC_ACT_OK;
		/* Learn the neighbour (the gateway above all) from what it
		 * asks or advertises. */
		struct neigh6_key nk = { .vlan = ext };
		__builtin_memcpy(nk.ip, t == ICMP6_NA ? (void *)target : (void *)f.saddr6, 16);
		if (t == ICMP6_NA || from_any) {
			struct neigh nb = {};
			__builtin_memcpy(nb.mac, smac, 6);
			bpf_map_update_elem(&ext_neighs6, &nk, &nb, BPF_ANY);
		}
		if (t == ICMP6_NS && from_any) {
			struct ext6_key k = { .ext = ext };
			__builtin_memcpy(k.ip, target, 16);
			struct ext6_val *g = bpf_map_lookup_elem(&ext6_in, &k);
			if (g && !g->ifindex)
				return ext6_tagged(skb, evlan, na_reply(skb, &f, emac, target));
		}
		return TC_ACT_OK;
	}
	if (!mac_eq(dst, emac))
		return TC_ACT_OK;
	struct ext6_key k = { .ext = ext };
	__builtin_memcpy(k.ip, f.daddr6, 16);
	struct ext6_val *n = bpf_map_lookup_elem(&ext6_in, &k);
	if (!n)
		return TC_ACT_OK;       /* not ours: the node's own */
	__u32 to = n->ifindex;
	if (!to) {                      /* a router's gateway address */
		if (t == ICMP6_ECHO)
			return ext6_tagged(skb, evlan, echo6_reply(skb, &f, l4, emac));
		return drop(C_DROP_NO_ROUTE);
	}
	__u8 rmac[6];
	__builtin_memcpy(rmac, n->mac, 6);
	struct port *q = bpf_map_lookup_elem(&ports, &to);
	if (!q)
		return drop(C_DROP_NO_PORT);
	__u8 hops;
	if (bpf_skb_load_bytes(skb, IP6_HOP_OFF, &hops, 1) || hops <= 1)
		return drop(C_DROP_NO_ROUTE);
	hops--;
	if (bpf_skb_store_bytes(skb, IP6_HOP_OFF, &hops, 1, 0))
		return drop(C_DROP_MALFORMED);
	if (!sg_allow(q, to, DIR_IN, &f))
		return drop(C_DROP_SG_IN);
	if (set_macs(skb, q->mac, rmac))
		return drop(C_DROP_MALFORMED);
	count(C_FWD_ROUTED);
	return to_port(skb, q, to);
}
