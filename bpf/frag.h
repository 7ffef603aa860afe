// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// IP fragments, included by dataplane.c before parse_ipv4. Only a
// datagram's first fragment carries the TCP/UDP ports (or the ICMP type and
// echo id) that security groups, conntrack and NAT look at; nothing here
// reassembles. So, as Cilium's ipv4_handle_fragmentation does, the parser
// remembers the first fragment's ports in frags, keyed by the datagram
// (addresses, protocol, IP identification) and the zone it was seen in,
// and a later fragment takes them from there: it is then the same flow as
// its first fragment, so it gets the same verdict (conntrack has the flow
// when the first was allowed; the same rules refuse it when it was not) and
// goes through the same NAT entry. A later fragment whose first fragment was
// not seen (out of order, lost, or a fragment crafted to slip past a port
// rule) has no ports: frag_orphan counts it, and a port with security
// groups drops it, as does router SNAT (no ports to map).
//
// An ICMP error's later fragments carry no quote either, so the first
// fragment's quoted flow (rel6, as related4 or related6 read it, before any
// NAT translated it) is kept in frag_rels, and a later fragment is
// related to the same flow: it passes the groups when the first did, and
// goes to the same port through the same floating IP or SNAT entry (whose
// translation of the quote is in the first fragment alone; the ICMP
// checksum there was updated incrementally, so it holds for the whole
// message).
//
// The zone keeps apart the datagrams of tenants whose addresses overlap:
// the port's device in port_in, the uplink and VLAN in uplink_in, the
// external network's key in ext_in.

#define FRAG_TIMEOUT (30ULL * 1000000000ULL)   /* Linux's ipfrag_time */

struct frag_key {
	__u32 zone;
	__u32 id;               /* IPv4: the 16-bit identification; IPv6: the fragment header's */
	__u8 proto;
	__u8 v6;
	__u16 pad;
	__u32 saddr[4];         /* IPv4: the first word */
	__u32 daddr[4];
};

struct frag_val {
	__u64 seen;
	__u16 sport;
	__u16 dport;
	__u16 rport;
	__u16 rel;              /* an ICMP error: frag_rels has the flow it quotes */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct frag_key);
	__type(value, struct frag_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frags SEC(".maps");

/* The flow an ICMP error's first fragment quotes, by the datagram's key in
 * frags: a map of its own, so that frags keeps its layout (pinned maps of
 * another layout are recreated, conntrack and NAT with them) and only
 * errors pay for the quote. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct frag_key);
	__type(value, struct related6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} frag_rels SEC(".maps");

/* frag_first remembers the ports f holds for the datagram's later
 * fragments, and the flow an ICMP error quotes (rel6). */
static __always_inline void frag_first(struct frag_key *k, struct flow *f)
{
	struct frag_val v = { .seen = bpf_ktime_get_coarse_ns(), .sport = f->sport, .dport = f->dport, .rport = f->rport };
	if (f->rel) {
		__u32 zero = 0;
		struct related6 *r = bpf_map_lookup_elem(&rel6, &zero);
		if (r && bpf_map_update_elem(&frag_rels, k, r, BPF_ANY) == 0)
			v.rel = 1;
	}
	bpf_map_update_elem(&frags, k, &v, BPF_ANY);
}

/* frag_later gives a later fragment its first fragment's ports. */
static __always_inline void frag_later(struct frag_key *k, struct flow *f)
{
	struct frag_val *v = bpf_map_lookup_elem(&frags, k);
	if (!v || bpf_ktime_get_coarse_ns() - v->seen >= FRAG_TIMEOUT) {
		f->frag = FRAG_ORPHAN;
		count(C_FRAG_ORPHAN);
		return;
	}
	f->frag = FRAG_LATER;
	f->sport = v->sport;
	f->dport = v->dport;
	f->rport = v->rport;
	if (v->rel) {
		__u32 zero = 0;
		struct related6 *r = bpf_map_lookup_elem(&rel6, &zero);
		struct related6 *q = bpf_map_lookup_elem(&frag_rels, k);
		if (r && q) {
			*r = *q;
			f->rel = 1;
		}
	}
}
