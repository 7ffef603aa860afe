//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Rackstack's tenant dataplane: two tc programs.
//
//   port_in   on every local port's device (tap or host-side veth), sees what
//             the guest sends: anti-spoofing, egress security groups, then
//             delivery to a local port of the same network (after that
//             port's ingress security groups) or to the uplink, tagged with
//             the network's VLAN id.
//   uplink_in on the node's uplink, sees what other nodes send: pops the tag
//             and delivers to the local port (after its ingress security
//             groups).
//
// Security groups never scan rules: the Go side compiles each port's rules
// into an LPM trie keyed (policy, direction, protocol, port prefix, remote
// address), and a packet costs at most one lookup per port-prefix length
// that the policy uses (<= 18), whatever the number of rules. A connection
// tracking LRU map lets replies of allowed flows in and spares established
// flows the rule lookups.
//
// The maps are the contract with dataplane/maps.go: keep them in step.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_PORTS 4096
#define MAX_LOCAL 64         /* local ports of one network that a flood reaches */
#define CT_TIMEOUT (300ULL * 1000000000ULL)
#define CT_REFRESH (1000000000ULL)

/* port.flags */
#define PORT_SECURITY 1      /* anti-spoofing and security groups apply */
#define PORT_PEER 2          /* a veth: deliver with bpf_redirect_peer */
#define PORT_MORE_ADDRS 4    /* addresses beyond ips[]: look in the addrs map */

#define PORT_IPS 4

/* port.lens[dir] bit 17: some rule of that direction matches any protocol */
#define LEN_ANY_PROTO 17

#define DIR_IN 0             /* towards the port */
#define DIR_OUT 1            /* from the port */

/* Counter indexes; names in dataplane/maps.go. */
enum {
	C_FWD_LOCAL,
	C_FWD_UPLINK,
	C_FROM_UPLINK,
	C_FLOOD,
	C_TO_HOST,
	C_CT_NEW,
	C_DROP_NO_PORT,
	C_DROP_MALFORMED,
	C_DROP_SPOOF_MAC,
	C_DROP_SPOOF_IP,
	C_DROP_SG_OUT,
	C_DROP_SG_IN,
	C_DROP_NO_FDB,
	C_DROP_NO_UPLINK,
	C_DROP_ETHERTYPE,
	C_DROP_BROADCAST,
	C_DROP_DHCP_SERVER,
	C_MAX = 32,
};

struct port {
	__u32 vlan;
	__u32 policy;          /* security policy id: ports with the same groups share one */
	__u32 flags;
	__u32 lens[2];         /* [dir] bit L: some rule has an L-bit port prefix */
	__u32 ips[PORT_IPS];   /* fixed IPv4 addresses, network order; 0 = none */
	__u8 mac[6];
	__u8 pad[2];
};

struct fdb_key {
	__u32 vlan;
	__u8 mac[6];
	__u8 pad[2];
};

struct netports {
	__u32 count;
	__u32 ports[MAX_LOCAL];
};

struct settings {
	__u32 uplink;          /* ifindex, 0 = none */
};

struct addr_key {               /* LPM: prefixlen covers ifindex (32) + address bits */
	__u32 prefixlen;
	__u32 ifindex;
	__u8 ip[4];
};

struct mac_key {
	__u32 ifindex;
	__u8 mac[6];
	__u8 pad[2];
};

struct rule_key {               /* LPM: 80 exact bits, then the remote prefix */
	__u32 prefixlen;
	__u32 policy;
	__u8 dir;
	__u8 proto;             /* 0 = any protocol */
	__u8 plen;              /* port prefix length, 0..16 */
	__u8 pad;
	__u8 port[2];           /* big-endian, masked to plen bits; ICMP: type, code */
	__u8 ip[4];
	__u8 pad2[2];
};

struct ct_key {
	__u32 ifindex;
	__u8 dir;
	__u8 proto;
	__u16 pad;
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};

struct ct_val {
	__u64 seen;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, struct port);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fdb_key);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fdb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct netports);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} nets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct addr_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct mac_key);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} macs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1048576);
	__type(key, struct rule_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct ct_key);
	__type(value, struct ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

/* The ICMP header's first bytes (linux/icmp.h drags in libc headers). */
struct icmp_echo {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__be16 id;
	__be16 seq;
};
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8

/* flow is what the security groups and conntrack look at. */
struct flow {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;            /* conntrack ports (ICMP echo: the id, both) */
	__u16 dport;
	__u16 rport;            /* the port rules match: TCP/UDP destination, ICMP type<<8|code */
	__u8 proto;
	__u8 dhcp;              /* 1: to a DHCP server, 2: from a DHCP server */
};

static __always_inline void count(__u32 idx)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

static __always_inline int drop(__u32 reason)
{
	count(reason);
	return TC_ACT_SHOT;
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] &&
	       a[3] == b[3] && a[4] == b[4] && a[5] == b[5];
}

static __always_inline int mac_allowed(struct port *p, __u32 ifindex, const __u8 *mac)
{
	if (mac_eq(p->mac, mac))
		return 1;
	struct mac_key k = { .ifindex = ifindex };
	__builtin_memcpy(k.mac, mac, 6);
	return bpf_map_lookup_elem(&macs, &k) != NULL;
}

/* ip_allowed checks a source address: the port's fixed IPs first, the
 * addrs trie only for ports with allowed address pairs or many IPs. */
static __always_inline int ip_allowed(struct port *p, __u32 ifindex, __u32 ip)
{
#pragma unroll
	for (int i = 0; i < PORT_IPS; i++)
		if (p->ips[i] && p->ips[i] == ip)
			return 1;
	if (!(p->flags & PORT_MORE_ADDRS))
		return 0;
	struct addr_key k = { .prefixlen = 64, .ifindex = ifindex };
	__builtin_memcpy(k.ip, &ip, 4);
	return bpf_map_lookup_elem(&addrs, &k) != NULL;
}

/* rules_allow looks the flow up once per port-prefix length the policy uses. */
static __always_inline int rules_allow(struct port *p, __u8 dir, struct flow *f)
{
	__u32 lens = p->lens[dir & 1];
	__u32 remote = dir == DIR_OUT ? f->daddr : f->saddr;
	struct rule_key k = { .prefixlen = 112, .policy = p->policy, .dir = dir };
	__builtin_memcpy(k.ip, &remote, 4);

	if (lens & (1 << LEN_ANY_PROTO)) {
		k.proto = 0;
		if (bpf_map_lookup_elem(&rules, &k))
			return 1;
	}
	k.proto = f->proto;
#pragma unroll
	for (int l = 0; l <= 16; l++) {
		if (!(lens & (1 << l)))
			continue;
		__u16 port = l == 0 ? 0 : f->rport & (__u16)(0xffff << (16 - l));
		k.plen = l;
		k.port[0] = port >> 8;
		k.port[1] = port & 0xff;
		if (bpf_map_lookup_elem(&rules, &k))
			return 1;
	}
	return 0;
}

/* sg_allow says whether the port's security groups let the flow through in
 * direction dir, and records an allowed flow and its reply. */
static __always_inline int sg_allow(struct port *p, __u32 ifindex, __u8 dir, struct flow *f)
{
	if (!(p->flags & PORT_SECURITY))
		return 1;
	struct ct_key k = {
		.ifindex = ifindex, .dir = dir, .proto = f->proto,
		.saddr = f->saddr, .daddr = f->daddr, .sport = f->sport, .dport = f->dport,
	};
	__u64 now = bpf_ktime_get_coarse_ns(); /* ms resolution is plenty, and cheap */
	struct ct_val *v = bpf_map_lookup_elem(&ct, &k);
	if (v && now - v->seen < CT_TIMEOUT) {
		if (now - v->seen > CT_REFRESH)
			v->seen = now;
		return 1;
	}
	if (!rules_allow(p, dir, f))
		return 0;
	struct ct_val nv = { .seen = now };
	bpf_map_update_elem(&ct, &k, &nv, BPF_ANY);
	struct ct_key r = {
		.ifindex = ifindex, .dir = dir ^ 1, .proto = f->proto,
		.saddr = f->daddr, .daddr = f->saddr, .sport = f->dport, .dport = f->sport,
	};
	bpf_map_update_elem(&ct, &r, &nv, BPF_ANY);
	count(C_CT_NEW);
	return 1;
}

/* parse_ipv4 fills f from the IPv4 packet after the Ethernet header;
 * returns 0 when the packet is too short. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct flow *f)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return 0;
	__u32 ihl = ip->ihl * 4;
	if (ihl < sizeof(*ip))
		return 0;
	f->saddr = ip->saddr;
	f->daddr = ip->daddr;
	f->proto = ip->protocol;
	f->sport = f->dport = f->rport = 0;
	f->dhcp = 0;
	if (ip->frag_off & bpf_htons(0x1fff))   /* a later fragment: no L4 header */
		return 1;
	void *l4 = (void *)ip + ihl;
	if (ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP || ip->protocol == IPPROTO_SCTP) {
		__u16 *ports = l4;     /* source and destination lead all three */
		if ((void *)(ports + 2) > end)
			return 0;
		f->sport = bpf_ntohs(ports[0]);
		f->dport = bpf_ntohs(ports[1]);
		f->rport = f->dport;
		if (ip->protocol == IPPROTO_UDP) {
			if (f->dport == 67)
				f->dhcp = 1;
			else if (f->sport == 67 && f->dport == 68)
				f->dhcp = 2;
		}
	} else if (ip->protocol == IPPROTO_ICMP) {
		struct icmp_echo *icmp = l4;
		if ((void *)(icmp + 1) > end)
			return 0;
		f->rport = ((__u16)icmp->type << 8) | icmp->code;
		if (icmp->type == ICMP_ECHO || icmp->type == ICMP_ECHOREPLY)
			f->sport = f->dport = bpf_ntohs(icmp->id);
	}
	return 1;
}

static __always_inline int to_uplink(struct __sk_buff *skb, __u32 vlan)
{
	__u32 zero = 0;
	struct settings *cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || !cfg->uplink)
		return drop(C_DROP_NO_UPLINK);
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), vlan))
		return drop(C_DROP_MALFORMED);
	count(C_FWD_UPLINK);
	return bpf_redirect(cfg->uplink, 0);
}

static __always_inline int to_port(struct port *q, __u32 ifindex)
{
	count(C_FWD_LOCAL);
	if (q->flags & PORT_PEER)
		return bpf_redirect_peer(ifindex, 0);
	return bpf_redirect(ifindex, 0);
}

/* What a frame is, for delivery: security groups apply to IPv4; ARP
 * passes; other ethertypes reach only ports without port security. */
#define KIND_IP 0
#define KIND_ARP 1
#define KIND_OTHER 2

/* flood copies the frame to the network's other local ports, then to the
 * uplink unless it came from there. */
static __always_inline int flood(struct __sk_buff *skb, __u32 vlan, __u32 from, int kind, int uplink)
{
	struct netports *n = bpf_map_lookup_elem(&nets, &vlan);
	count(C_FLOOD);
	if (n) {
		for (int i = 0; i < MAX_LOCAL; i++) {
			if (i >= n->count)
				break;
			__u32 o = n->ports[i];
			if (o == from)
				continue;
			if (kind != KIND_ARP) {
				struct port *q = bpf_map_lookup_elem(&ports, &o);
				if (!q || (q->flags & PORT_SECURITY))
					continue;
			}
			bpf_clone_redirect(skb, o, 0);
		}
	}
	if (uplink)
		return to_uplink(skb, vlan);
	return TC_ACT_SHOT;
}

/* deliver sends a unicast frame of network vlan to dst: a local port after
 * its ingress security groups (f, for KIND_IP), else the uplink when
 * allowed. */
static __always_inline int deliver(struct __sk_buff *skb, __u32 vlan, const __u8 *dst,
				   int kind, struct flow *f, int uplink)
{
	struct fdb_key k = { .vlan = vlan };
	__builtin_memcpy(k.mac, dst, 6);
	__u32 *out = bpf_map_lookup_elem(&fdb, &k);
	if (!out)
		return uplink ? to_uplink(skb, vlan) : drop(C_DROP_NO_FDB);
	__u32 ifindex = *out;
	struct port *q = bpf_map_lookup_elem(&ports, &ifindex);
	if (!q)
		return drop(C_DROP_NO_FDB);
	if (kind == KIND_IP) {
		if (!sg_allow(q, ifindex, DIR_IN, f))
			return drop(C_DROP_SG_IN);
	} else if (kind == KIND_OTHER && (q->flags & PORT_SECURITY)) {
		return drop(C_DROP_ETHERTYPE);
	}
	return to_port(q, ifindex);
}

struct arp_eth {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
};

SEC("tc")
int port_in(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct port *p = bpf_map_lookup_elem(&ports, &ifindex);
	if (!p)
		return drop(C_DROP_NO_PORT);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return drop(C_DROP_MALFORMED);
	__u8 dst[6];
	__builtin_memcpy(dst, eth->h_dest, 6);
	int secure = p->flags & PORT_SECURITY;
	if (secure && !mac_allowed(p, ifindex, eth->h_source))
		return drop(C_DROP_SPOOF_MAC);
	__u32 vlan = p->vlan;

	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct arp_eth *arp = (void *)(eth + 1);
		if ((void *)(arp + 1) > end)
			return drop(C_DROP_MALFORMED);
		if (secure) {
			__u32 spa;
			__builtin_memcpy(&spa, arp->spa, 4);
			if (!mac_eq(arp->sha, eth->h_source))
				return drop(C_DROP_SPOOF_MAC);
			if (spa != 0 && !ip_allowed(p, ifindex, spa))
				return drop(C_DROP_SPOOF_IP);
		}
		if (dst[0] & 1)
			return flood(skb, vlan, ifindex, KIND_ARP, 1);
		return deliver(skb, vlan, dst, KIND_ARP, 0, 1);
	}

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct flow f;
		if (!parse_ipv4(skb, &f))
			return drop(C_DROP_MALFORMED);
		if (f.dhcp == 1) {          /* the node's DHCP server answers */
			count(C_TO_HOST);
			return TC_ACT_OK;
		}
		if (secure) {
			if (f.dhcp == 2)
				return drop(C_DROP_DHCP_SERVER);
			if (!ip_allowed(p, ifindex, f.saddr))
				return drop(C_DROP_SPOOF_IP);
		}
		if (dst[0] & 1) {
			if (secure)
				return drop(C_DROP_BROADCAST);
			return flood(skb, vlan, ifindex, KIND_OTHER, 1);
		}
		if (!sg_allow(p, ifindex, DIR_OUT, &f))
			return drop(C_DROP_SG_OUT);
		return deliver(skb, vlan, dst, KIND_IP, &f, 1);
	}

	/* IPv6 and other ethertypes are not filtered yet: only ports without
	 * port security pass them, to ports without it. */
	if (secure)
		return drop(C_DROP_ETHERTYPE);
	if (dst[0] & 1)
		return flood(skb, vlan, ifindex, KIND_OTHER, 1);
	return deliver(skb, vlan, dst, KIND_OTHER, 0, 1);
}

SEC("tc")
int uplink_in(struct __sk_buff *skb)
{
	__u32 vlan;
	if (skb->vlan_present) {
		vlan = skb->vlan_tci & 0x0fff;
	} else {
		/* The stack strips tags before tc sees them; a tag still in the
		 * frame comes from BPF_PROG_TEST_RUN or a driver that keeps it. */
		void *data = (void *)(long)skb->data;
		void *end = (void *)(long)skb->data_end;
		__be16 *tag = data + 12;
		if ((void *)(tag + 2) > end || tag[0] != bpf_htons(ETH_P_8021Q))
			return TC_ACT_OK;       /* the node's own untagged traffic */
		vlan = bpf_ntohs(tag[1]) & 0x0fff;
	}
	if (!bpf_map_lookup_elem(&nets, &vlan))
		return TC_ACT_OK;       /* not a network with ports here */
	if (bpf_skb_vlan_pop(skb))
		return drop(C_DROP_MALFORMED);
	count(C_FROM_UPLINK);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return drop(C_DROP_MALFORMED);
	__u8 dst[6];
	__builtin_memcpy(dst, eth->h_dest, 6);

	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		if (dst[0] & 1)
			return flood(skb, vlan, 0, KIND_ARP, 0);
		return deliver(skb, vlan, dst, KIND_ARP, 0, 0);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct flow f;
		if (!parse_ipv4(skb, &f))
			return drop(C_DROP_MALFORMED);
		if (dst[0] & 1)
			return drop(C_DROP_BROADCAST);
		return deliver(skb, vlan, dst, KIND_IP, &f, 0);
	}
	if (dst[0] & 1)
		return flood(skb, vlan, 0, KIND_OTHER, 0);
	return deliver(skb, vlan, dst, KIND_OTHER, 0, 0);
}

char __license[] SEC("license") = "Dual MIT/GPL";
