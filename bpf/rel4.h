// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// ICMPv4 errors as conntrack's "related", included by dataplane.c before
// sg_allow. It is IPv6's design (related6): parse_ipv4 reads the flow an
// ICMP error (destination unreachable, time exceeded, parameter problem)
// quotes into the per-CPU rel6 slot, the addresses in the first word of
// saddr6 and daddr6, and sets flow.rel; sg_allow lets the error through
// when ct has that flow going the other way. icmp4.h translates the quote
// of an error that comes back through NAT before the check.

#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

static __always_inline int icmp4_error_type(__u8 t)
{
	return t == ICMP_DEST_UNREACH || t == ICMP_TIME_EXCEEDED || t == ICMP_PARAMETERPROB;
}

/* related4 reads the flow an ICMP error quotes at off (its IPv4 header)
 * into rel6: addresses, protocol and ports (an echo's id) as conntrack
 * keys them. 0: no flow (a fragment, or too short a quote). */
static __always_inline int related4(struct __sk_buff *skb, __u32 off)
{
	__u32 zero = 0;
	struct related6 *r = bpf_map_lookup_elem(&rel6, &zero);
	struct iphdr ip;
	__be16 ports[4];
	if (!r || bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) || ip.ihl < 5 ||
	    (ip.frag_off & bpf_htons(0x1fff)))
		return 0;
	if (bpf_skb_load_bytes(skb, off + ip.ihl * 4, ports, 8))
		return 0;
	if (ip.protocol == IPPROTO_ICMP) {
		__u8 t = ports[0] & 0xff;   /* the first byte, as loaded */
		if (t != ICMP_ECHO && t != ICMP_ECHOREPLY)
			return 0;
		ports[0] = ports[1] = ports[2];
	} else if (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP && ip.protocol != IPPROTO_SCTP) {
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->proto = ip.protocol;
	r->sport = bpf_ntohs(ports[0]);
	r->dport = bpf_ntohs(ports[1]);
	r->saddr6[0] = ip.saddr;
	r->daddr6[0] = ip.daddr;
	return 1;
}

/* related4_tracked says whether ct has the flow an ICMP error in direction
 * dir quotes: that flow went the other way. */
static __always_inline int related4_tracked(__u32 ifindex, __u8 dir)
{
	__u32 zero = 0;
	struct related6 *rel = bpf_map_lookup_elem(&rel6, &zero);
	if (!rel)
		return 0;
	struct ct_key k = {
		.ifindex = ifindex, .dir = dir ^ 1, .proto = rel->proto,
		.saddr = rel->saddr6[0], .daddr = rel->daddr6[0], .sport = rel->sport, .dport = rel->dport,
	};
	struct ct_val *v = bpf_map_lookup_elem(&ct, &k);
	return v && bpf_ktime_get_coarse_ns() - v->seen < CT_TIMEOUT;
}
