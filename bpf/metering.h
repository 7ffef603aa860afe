// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// L3 metering (Neutron's metering labels), included by dataplane.c: what a
// router sends out of its external gateway (egress) and takes in from it
// (ingress) is counted, bytes and packets, for each label whose rules
// match it, in a per-CPU array indexed by the label's slot.
//
//   meters        router id -> its labels' slots and their rules, at most
//                 METER_LABELS labels and METER_RULES rules (the Go side
//                 drops what does not fit). The rules are few (Neutron's
//                 are CIDRs per label), so they are scanned: a rule names
//                 both sides (local: the port's fixed address, remote: the
//                 outside address), each with a mask, which a single LPM
//                 trie could not.
//   meter_addrs   (external key, address outside) -> router id, for what
//                 comes in: a floating IP, a gateway address, a fixed IP a
//                 router routes without NAT. Only metered routers are here.
//   meter_counts  slot * 2 + direction -> bytes and packets, per CPU.
//   meter_labels  slot -> the label's id and project: read by the Go side
//                 only, so that the counts keep their names across a
//                 restart.
//
// A packet costs nothing more when its router has no label: one hash
// lookup that misses. Counted is the IP packet (no Ethernet header), as
// Neutron's iptables counters count it, after DNAT in and before SNAT out:
// the local side is always the port's fixed address.

#define METER_LABELS 32         /* labels one router counts for; a bit each */
#define METER_RULES 64          /* rules of those labels, together */
#define METER_SLOTS 1024        /* labels one node counts for */
#define METER_INGRESS 0
#define METER_EGRESS 1

struct meter_rule {
	__u8 local[4];          /* the fixed address side, masked */
	__u8 lmask[4];
	__u8 remote[4];         /* the outside, masked */
	__u8 rmask[4];
	__u8 dir;               /* METER_INGRESS, METER_EGRESS */
	__u8 excluded;          /* matches take the label's count away */
	__u8 label;             /* index in meter_set.slots */
	__u8 pad;
};

struct meter_set {
	__u32 nrules;
	__u32 slots[METER_LABELS];
	struct meter_rule rules[METER_RULES];
};

struct meter_addr_key {
	__u32 ext;
	__u8 ip[4];
};

struct meter_count {
	__u64 bytes;
	__u64 packets;
};

struct meter_label {
	__u8 id[48];
	__u8 project[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct meter_set);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct meter_addr_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meter_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, METER_SLOTS * 2);
	__type(key, __u32);
	__type(value, struct meter_count);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meter_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, METER_SLOTS);
	__type(key, __u32);
	__type(value, struct meter_label);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meter_labels SEC(".maps");

/* meter counts len bytes of a packet of router in direction dir for each
 * label of the router that one of its rules matches and none of its
 * excluded rules does. */
static __always_inline void meter(__u32 router, __u8 dir, __u32 local, __u32 remote, __u32 len)
{
	struct meter_set *m = bpf_map_lookup_elem(&meters, &router);
	if (!m)
		return;
	__u32 hit = 0, skip = 0, n = m->nrules;
	for (__u32 i = 0; i < METER_RULES; i++) {
		if (i >= n)
			break;
		struct meter_rule *r = &m->rules[i];
		if (r->dir != dir)
			continue;
		__u32 l, lm, rr, rm;
		__builtin_memcpy(&l, r->local, 4);
		__builtin_memcpy(&lm, r->lmask, 4);
		__builtin_memcpy(&rr, r->remote, 4);
		__builtin_memcpy(&rm, r->rmask, 4);
		if ((local & lm) != l || (remote & rm) != rr)
			continue;
		__u32 bit = 1U << (r->label & (METER_LABELS - 1));
		if (r->excluded)
			skip |= bit;
		else
			hit |= bit;
	}
	hit &= ~skip;
	for (__u32 j = 0; j < METER_LABELS; j++) {
		if (!(hit & (1U << j)))
			continue;
		__u32 k = (m->slots[j] % METER_SLOTS) * 2 + dir;
		struct meter_count *c = bpf_map_lookup_elem(&meter_counts, &k);
		if (c) {
			c->bytes += len;
			c->packets += 1;
		}
	}
}

/* meter_in meters what came in from external network ext to address addr
 * there (before DNAT), now for fixed address local. */
static __always_inline void meter_in(__u32 ext, const __u8 *addr, __u32 local, __u32 remote, __u32 len)
{
	struct meter_addr_key k = { .ext = ext };
	__builtin_memcpy(k.ip, addr, 4);
	__u32 *router = bpf_map_lookup_elem(&meter_addrs, &k);
	if (router)
		meter(*router, METER_INGRESS, local, remote, len);
}
