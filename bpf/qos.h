/* QoS per port (Neutron's qos: bandwidth_limit, packet_rate_limit and
 * dscp_marking rules), included by dataplane.c before the delivery helpers.
 *
 * qos holds each QoS port's compiled policy, written by the Go side
 * (dataplane/qos.go) when the port's flags have PORT_QOS: per direction
 * (DIR_IN: to the port, DIR_OUT: from it) a byte rate and a bucket depth,
 * a packet cost and a packet bucket depth; and the DSCP that what the
 * port sends is marked with. qos_buckets is the policers' state, owned by
 * the programs: per port and direction one bucket of byte credit and one
 * of packet credit, both kept in nanoseconds (as the kernel's act_police
 * keeps its tokens), so a frame costs len * 1e9 / rate and a packet
 * 1e9 / packet rate, time adds credit one for one, and nothing is rounded
 * in a way that could starve a slow rate. A frame passes only if both
 * buckets hold its cost, and only then is either charged: one lock guards
 * both. A GSO frame counts as its segments. A bucket starts full; the Go
 * side deletes a port's buckets with its qos entry. */

#define QOS_DSCP 1           /* qos.flags: mark what the port sends with qos.dscp */

struct qos_cfg {
	__u64 rate[2];          /* bytes per second, [dir]; 0: no byte limit that way */
	__u64 depth[2];         /* the bucket, in ns of rate: burst bytes * 1e9 / rate */
	__u64 pcost[2];         /* ns of credit one packet costs: 1e9 / packets per second; 0: no packet limit */
	__u64 pdepth[2];        /* the packet bucket, in ns: burst packets * pcost */
	__u8 dscp;
	__u8 flags;
	__u8 pad[6];
};

struct qos_bkey {
	__u32 ifindex;
	__u32 dir;
};

struct qos_bucket {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 credit;           /* ns of byte rate the bucket holds, <= depth */
	__u64 pcredit;          /* ns of packet rate, <= pdepth */
	__u64 last;             /* bpf_ktime_get_ns of the last refill */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct qos_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} qos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * MAX_PORTS);
	__type(key, struct qos_bkey);
	__type(value, struct qos_bucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} qos_buckets SEC(".maps");

/* qos_admit says whether a frame of len bytes and segs packets through
 * port ifindex in direction dir is within the port's limits, and takes
 * its cost from the buckets if so. */
static __always_inline int qos_admit(struct qos_cfg *q, __u32 ifindex, __u32 dir, __u32 len, __u32 segs)
{
	__u64 rate = dir == DIR_OUT ? q->rate[DIR_OUT] : q->rate[DIR_IN];
	__u64 depth = dir == DIR_OUT ? q->depth[DIR_OUT] : q->depth[DIR_IN];
	__u64 pcost = dir == DIR_OUT ? q->pcost[DIR_OUT] : q->pcost[DIR_IN];
	__u64 pdepth = dir == DIR_OUT ? q->pdepth[DIR_OUT] : q->pdepth[DIR_IN];
	if (!rate && !pcost)
		return 1;
	struct qos_bkey k = { .ifindex = ifindex, .dir = dir };
	__u64 now = bpf_ktime_get_ns();
	struct qos_bucket *b = bpf_map_lookup_elem(&qos_buckets, &k);
	if (!b) {
		struct qos_bucket full = { .credit = depth, .pcredit = pdepth, .last = now };
		bpf_map_update_elem(&qos_buckets, &k, &full, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&qos_buckets, &k);
		if (!b)
			return 0;       /* no bucket (map full): a limit is never lifted */
	}
	__u64 cost = rate ? (__u64)len * 1000000000ULL / rate : 0;
	__u64 pc = pcost * (segs ? segs : 1);
	int ok = 0;
	bpf_spin_lock(&b->lock);
	__u64 el = now > b->last ? now - b->last : 0;
	__u64 credit = b->credit + el;
	__u64 pcredit = b->pcredit + el;
	b->last = now;
	if (credit > depth)
		credit = depth;
	if (pcredit > pdepth)
		pcredit = pdepth;
	if (credit >= cost && pcredit >= pc) {
		credit -= cost;
		pcredit -= pc;
		ok = 1;
	}
	b->credit = credit;
	b->pcredit = pcredit;
	bpf_spin_unlock(&b->lock);
	return ok;
}

/* qos_in polices what is delivered to port q (ifindex): 1 to deliver. */
static __always_inline int qos_in(struct __sk_buff *skb, struct port *q, __u32 ifindex)
{
	if (!(q->flags & PORT_QOS))
		return 1;
	struct qos_cfg *c = bpf_map_lookup_elem(&qos, &ifindex);
	if (!c)
		return 1;
	return qos_admit(c, ifindex, DIR_IN, skb->len, skb->gso_segs);
}

/* qos_mark writes dscp into an IPv4 header's TOS (keeping ECN, fixing the
 * header checksum) or an IPv6 header's traffic class. */
static __always_inline void qos_mark(struct __sk_buff *skb, __u8 dscp)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return;
		__u8 tos = (dscp << 2) | (ip->tos & 3);
		if (tos == ip->tos)
			return;
		__u8 w[2] = { *(__u8 *)ip, ip->tos };
		__u8 nw[2] = { w[0], tos };
		__u16 from, to;
		__builtin_memcpy(&from, w, 2);
		__builtin_memcpy(&to, nw, 2);
		bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), from, to, 2);
		bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct iphdr, tos), &tos, 1, 0);
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return;
		/* version (4 bits), traffic class (8), flow label (20) */
		__u8 b[2];
		__builtin_memcpy(b, ip6, 2);
		__u8 tc = (dscp << 2) | ((b[1] >> 4) & 3);
		__u8 nb[2] = { (b[0] & 0xf0) | (tc >> 4), (b[1] & 0x0f) | (tc << 4) };
		if (nb[0] == b[0] && nb[1] == b[1])
			return;
		bpf_skb_store_bytes(skb, ETH_HLEN, nb, 2, 0);
	}
}

/* qos_out applies port p's policy to what it sends: 1 to go on (marked
 * when the policy marks), 0 to drop (over its egress limit). Call it
 * before taking packet pointers: a mark rewrites the packet. */
static __always_inline int qos_out(struct __sk_buff *skb, struct port *p, __u32 ifindex)
{
	if (!(p->flags & PORT_QOS))
		return 1;
	struct qos_cfg *c = bpf_map_lookup_elem(&qos, &ifindex);
	if (!c)
		return 1;
	if (!qos_admit(c, ifindex, DIR_OUT, skb->len, skb->gso_segs))
		return 0;
	if (c->flags & QOS_DSCP)
		qos_mark(skb, c->dscp);
	return 1;
}
