// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// IPv4 path MTU and ICMP errors through NAT, included by dataplane.c before
// to_external:
//
//   too_big4     route's check of a packet against the MTU of the tenant
//                network it is routed onto (a route's flags above
//                ROUTE_MTU_SHIFT): with DF set the sender gets ICMP
//                fragmentation needed with that MTU, as Linux's router
//                answers; without, the packet is routed as it is, since
//                nothing here fragments.
//   rel4_nat     rewrites the flow an ICMP error quotes (rel4.h found it):
//                its source (an error coming in about what a port sent out
//                of a floating IP or SNAT) or its destination (a port's
//                error going out about what came in to its floating IP),
//                the port too, with the quote's IP and L4 checksums and the
//                error's own: what conntrack's NAT does for "related".
//   snat_rel_in  takes an error about a SNATed flow (time exceeded on the
//                way, port unreachable, fragmentation needed) from the
//                router's gateway address back to the port, by the SNAT
//                entry of the flow it quotes.
//   snat_rel_port finds the NAT port of the flow a port's own error quotes
//                (port unreachable about a reply that came back through
//                SNAT to a closed socket), so that to_external sends the
//                error from the gateway address quoting that address and
//                port, as conntrack's NAT does.

#define ROUTE_MTU_SHIFT 16      /* route.flags above it: the network's MTU; 0 = unchecked */

/* too_big4 answers a packet routed onto a network (route flags) whose MTU
 * it exceeds with DF set with ICMP fragmentation needed from in's address;
 * -1 when it may go on. Time exceeded goes first, as in Linux's
 * ip_forward; GSO packets go on, their segments being the MSS the TCP
 * handshake took down to the smaller side's. */
static __always_inline int too_big4(struct __sk_buff *skb, __u32 flags, struct rif *in)
{
	__u32 mtu = flags >> ROUTE_MTU_SHIFT;
	if (!mtu || skb->gso_size || skb->len - ETH_HLEN <= mtu)
		return -1;
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) || ip.ttl <= 1 || !(ip.frag_off & bpf_htons(0x4000)))
		return -1;
	__u32 rip;
	__u8 rmac[6];
	__builtin_memcpy(&rip, in->ip, 4);
	__builtin_memcpy(rmac, in->mac, 6);
	return icmp_error(skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, rip, rmac);
}

/* csum16_replace is checksum check after a 16-bit word it covers changed
 * from -> to (RFC 1624), all as loaded. */
static __always_inline __u16 csum16_replace(__u16 check, __u16 from, __u16 to)
{
	__u32 s = (__u32)(__u16)~check + (__u16)~from + to;
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s;
}

static __always_inline __u16 csum32_replace(__u16 check, __u32 from, __u32 to)
{
	return csum16_replace(csum16_replace(check, from >> 16, to >> 16), from & 0xffff, to & 0xffff);
}

/* What an ICMP error quotes: the IP header (without options) and the
 * start of the L4 header, the TCP checksum included when it is there. */
struct quote4 {
	struct iphdr ip;
	__u8 l4[20];
};

#define QUOTE4_MIN 28           /* RFC 792: the header and 8 bytes */

/* rel4_nat rewrites the quote of the ICMP error in skb: its source (dst
 * 0) or destination address from -> to and that side's port (an echo's
 * id) fport -> tport (network order; equal: unchanged), with the quote's
 * checksums and the error's. -1: the quote is not from's (or has
 * options), and nothing was changed. A later fragment of the error has no
 * quote: 0, unchanged. */
static __always_inline int rel4_nat(struct __sk_buff *skb, int dst, __u32 from, __u32 to, __be16 fport, __be16 tport)
{
	__u8 h[8];
	if (bpf_skb_load_bytes(skb, ETH_HLEN, h, 8))
		return -1;
	if (((h[6] << 8) | h[7]) & 0x1fff)
		return 0;       /* a later fragment: the quote is in the first (frag.h) */
	__u32 off = ETH_HLEN + (h[0] & 0xf) * 4;       /* the ICMP header; the quote 8 bytes on */
	struct quote4 q, old;
	int full = bpf_skb_load_bytes(skb, off + 8, &q, sizeof(q)) == 0;
	if (!full && bpf_skb_load_bytes(skb, off + 8, &q, QUOTE4_MIN))
		return -1;
	if (q.ip.ihl != 5 || (dst ? q.ip.daddr : q.ip.saddr) != from)
		return -1;
	old = q;
	if (dst)
		q.ip.daddr = to;
	else
		q.ip.saddr = to;
	q.ip.check = csum32_replace(q.ip.check, from, to);
	__u16 *port = (__u16 *)&q.l4[dst ? 2 : 0];
	__u16 *check = 0;
	int pseudo = 1;                 /* TCP and UDP sum the addresses too */
	if (q.ip.protocol == IPPROTO_ICMP) {
		port = (__u16 *)&q.l4[4];
		check = (__u16 *)&q.l4[2];
		pseudo = 0;
	} else if (q.ip.protocol == IPPROTO_UDP) {
		if (*(__u16 *)&q.l4[6])  /* 0: sent without one */
			check = (__u16 *)&q.l4[6];
	} else if (q.ip.protocol == IPPROTO_TCP && full) {
		check = (__u16 *)&q.l4[16];
	}
	if (check && pseudo)
		*check = csum32_replace(*check, from, to);
	if (fport != tport) {
		*port = tport;
		if (check)
			*check = csum16_replace(*check, fport, tport);
	}
	if (check && pseudo && !*check && q.ip.protocol == IPPROTO_UDP)
		*check = 0xffff;        /* 0 would say "none" */
	__u16 ic;
	if (bpf_skb_load_bytes(skb, off + 2, &ic, 2))
		return -1;
	__s64 s = full ? bpf_csum_diff((void *)&old, sizeof(old), (void *)&q, sizeof(q), (__u16)~ic)
		       : bpf_csum_diff((void *)&old, QUOTE4_MIN, (void *)&q, QUOTE4_MIN, (__u16)~ic);
	if (s < 0)
		return -1;
	ic = csum_fold(s);
	if (full ? bpf_skb_store_bytes(skb, off + 8, &q, sizeof(q), 0)
		 : bpf_skb_store_bytes(skb, off + 8, &q, QUOTE4_MIN, 0))
		return -1;
	return bpf_skb_store_bytes(skb, off + 2, &ic, 2, 0);
}

/* rel4_in gives the flow an ICMP error that comes in quotes (f->rel) the
 * port's side: source from -> to, and its port (an echo's id) -> port
 * (host order) when newport, in the packet and in rel6, so that sg_allow
 * finds it in ct. A quote that is not from's is no longer related. */
static __always_inline void rel4_in(struct __sk_buff *skb, struct flow *f, __u32 from, __u32 to, int newport, __u16 port)
{
	__u32 zero = 0;
	struct related6 *r = bpf_map_lookup_elem(&rel6, &zero);
	if (!r || !f->rel || from == to)
		return;
	__u16 sport = r->sport, np = newport ? port : sport;
	if (rel4_nat(skb, 0, from, to, bpf_htons(sport), bpf_htons(np))) {
		f->rel = 0;
		return;
	}
	r->saddr6[0] = to;
	r->sport = np;
	if (r->proto == IPPROTO_ICMP)
		r->dport = np;  /* conntrack keys an echo by its id both ways */
}

/* snat_rel_in takes an ICMP error to router gateway address f->daddr on
 * external ext to the port whose SNATed flow it quotes. */
static __always_inline int snat_rel_in(struct __sk_buff *skb, __u32 ext, struct flow *f)
{
	__u32 zero = 0;
	struct related6 *rel = bpf_map_lookup_elem(&rel6, &zero);
	if (!rel || rel->saddr6[0] != f->daddr)
		return drop(C_DROP_NO_ROUTE);
	struct snat_val *v = snat_live(ext, 1, rel->proto, rel->saddr6[0], rel->sport, rel->daddr6[0], rel->dport);
	if (!v)
		return drop(C_DROP_NO_ROUTE);   /* no flow of a port's */
	__u32 to = v->ifindex, fixed, gw = f->daddr;
	__u16 port = v->port;
	__u8 rmac[6];
	__builtin_memcpy(&fixed, v->addr, 4);
	__builtin_memcpy(rmac, v->mac, 6);
	struct port *q = bpf_map_lookup_elem(&ports, &to);
	if (!q)
		return drop(C_DROP_NO_PORT);
	if (!ttl_dec(skb))
		return drop(C_DROP_NO_ROUTE);
	rel4_in(skb, f, gw, fixed, 1, port);
	if (!f->rel)
		return drop(C_DROP_NO_ROUTE);   /* a quote with options: not translated */
	if (nat_addr(skb, 0, gw, fixed))
		return drop(C_DROP_MALFORMED);
	f->daddr = fixed;
	if (!sg_allow(q, to, DIR_IN, f))
		return drop(C_DROP_SG_IN);
	if (set_macs(skb, q->mac, rmac))
		return drop(C_DROP_MALFORMED);
	meter_in(ext, (const __u8 *)&gw, fixed, f->saddr, skb->len - ETH_HLEN);
	count(C_NAT_IN);
	return to_port(skb, q, to);
}

/* snat_rel_port is the NAT port of the SNATed flow that an ICMP error port
 * sends out of router in quotes (f->rel: the quote is what came in, from
 * the remote to the port's fixed address and own port, which goes in
 * own); -1: none. */
static __always_inline int snat_rel_port(struct flow *f, struct rif *in, __u16 *own)
{
	__u32 zero = 0;
	struct related6 *rel = bpf_map_lookup_elem(&rel6, &zero);
	if (!rel || rel->daddr6[0] != f->saddr)
		return -1;
	struct snat_val *v = snat_live(in->router, 0, rel->proto, rel->daddr6[0], rel->dport, rel->saddr6[0], rel->sport);
	if (!v)
		return -1;
	*own = rel->dport;
	return v->port;
}
