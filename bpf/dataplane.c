//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Rackstack's tenant dataplane: four tc programs.
//
//   port_in   on every local port's device (tap or host-side veth), sees what
//             the guest sends: anti-spoofing, egress security groups, then
//             delivery to a local port of the same network (after that
//             port's ingress security groups) or to the uplink, tagged with
//             the network's VLAN id.
//   uplink_in on the node's uplink, sees what other nodes send: pops the tag
//             and delivers to the local port (after its ingress security
//             groups).
//   ext_in    on each external network's device: answers ARP for the
//             floating IPs and routers' gateway addresses, learns the
//             neighbours' MACs, DNATs a floating IP's traffic to its port
//             and takes router SNAT's replies back.
//   meta_in   on the metadata device: the metadata server's replies, back
//             to the port whose request the dataplane sent there.
//
// Routing is distributed: port_in routes what a port sends to its router's
// MAC on the node itself (rifs/rmacs/routes/neighs; IPv6: rifs6, rmacs6,
// routes6, neighs6), answers ARP and ping for the router's gateway
// addresses (IPv6: neighbour solicitations, and router solicitations from
// ras), and NATs to and from floating IPs
// (fip_out/fip_in) with the external neighbour's MAC that ext_in learnt.
// Floating IPs are 1:1, so their NAT needs no state of its own; the port's
// security groups keep tracking the flow by its fixed address. Router SNAT
// gives each flow a port of the gateway address, kept in the snat LRU map
// both ways. Link-local destinations are never routed: 169.254.169.254 from
// a port with a metadata address goes to the node's metadata device.
//
// Security groups never scan rules: the Go side compiles each port's rules
// into an LPM trie keyed (policy, direction, protocol, port prefix, IPv4 or
// IPv6, remote address), and a packet costs at most one lookup per port-prefix length
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
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef offsetof
#define offsetof(t, m) __builtin_offsetof(t, m)
#endif

#define MAX_PORTS 4096
#define MAX_LOCAL 64         /* local ports of one network that a flood reaches */
#define CT_TIMEOUT (300ULL * 1000000000ULL)
#define CT_REFRESH (1000000000ULL)

/* port.flags */
#define PORT_SECURITY 1      /* anti-spoofing and security groups apply */
#define PORT_PEER 2          /* a veth: deliver with bpf_redirect_peer */
#define PORT_MORE_ADDRS 4    /* addresses beyond ips[]: look in the addrs map */
#define PORT_DHCP6 8         /* the node's DHCPv6 server answers the port */
#define PORT_STATELESS 16    /* its groups are stateless: rules judge every packet, nothing tracked */
#define PORT_QOS 32          /* a QoS policy applies: see qos.h */

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
	C_FWD_ROUTED,
	C_ARP_REPLY,
	C_ICMP_REPLY,
	C_NAT_OUT,
	C_NAT_IN,
	C_TO_META,
	C_FROM_META,
	C_DROP_NO_ROUTE,
	C_DROP_NO_NEIGH,
	C_SNAT_NEW,
	C_DROP_NAT_PORTS,
	C_DROP_TOO_BIG,
	C_DROP_SCOPE,
	C_FRAG_ORPHAN,
	C_DROP_QOS,
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

struct addr6_key {              /* addrs6: the IPv6 addr_key */
	__u32 prefixlen;
	__u32 ifindex;
	__u8 ip[16];
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
	__u8 v6;                /* 1: an IPv6 rule, its remote in all of ip */
	__u8 port[2];           /* big-endian, masked to plen bits; ICMP: type, code */
	__u8 ip[16];            /* IPv4: the first 4 bytes */
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

/* IPv6 flows are tracked in ct6, so that IPv4's keys stay short: the
 * key's length is what hashing it costs, twice per packet. */
struct ct6_key {
	__u32 ifindex;
	__u8 dir;
	__u8 proto;
	__u16 pad;
	__u32 saddr[4];
	__u32 daddr[4];
	__u16 sport;
	__u16 dport;
};

struct ct_val {
	__u64 seen;
};

/* A router's interface on one network: by (vlan, gateway address) in rifs,
 * by (vlan, MAC) in rmacs. */
struct rif_key {
	__u32 vlan;
	__u8 ip[4];
};

/* scope (rif, route, rif6, route6): the address scope of the interface's
 * subnet, numbered by the Go side; 0 = none. A router routes only between
 * interfaces of one scope (what leaves by its gateway is to_external's). */
struct rif {
	__u32 router;
	__u8 ip[4];
	__u8 mac[6];
	__u16 scope;
};

struct route_key {              /* LPM: prefixlen covers router (32) + address bits */
	__u32 prefixlen;
	__u32 router;
	__u8 ip[4];
};

#define ROUTE_VIA 1             /* to nexthop, not to the destination itself */
#define ROUTE_EXTERNAL 2        /* out of the router's external gateway */
#define ROUTE_SNAT 4            /* ... and SNAT to its address (nexthop) what has no floating IP */

struct route {
	__u32 vlan;             /* the network the next hop is on; ROUTE_EXTERNAL: the external device */
	__u32 flags;            /* ROUTE_*; the network's MTU above ROUTE_MTU_SHIFT (icmp4.h) */
	__u8 nexthop[4];
	__u8 mac[6];            /* the router's MAC on that network */
	__u16 scope;            /* that interface's */
};

struct neigh_key {              /* vlan: a tenant network's; ext_neighs: the external device's ifindex */
	__u32 vlan;
	__u8 ip[4];
};

struct neigh {
	__u8 mac[6];
	__u8 pad[2];
};

/* IPv6 routing: a router's interfaces by (vlan, gateway address or its
 * link-local address) in rifs6 and by (vlan, MAC) in rmacs6, its routes in
 * routes6 (LPM: router (32) + 128 address bits), the ports it routes to in
 * neighs6, and what its router advertisements on a network say in ras. */
struct rif6_key {
	__u32 vlan;
	__u8 ip[16];
};

struct rif6 {
	__u32 router;
	__u8 ip[16];            /* the gateway address: the source of ICMPv6 errors */
	__u8 mac[6];
	__u16 scope;
};

struct route6_key {
	__u32 prefixlen;
	__u32 router;
	__u8 ip[16];
};

#define ROUTE6_MTU_SHIFT 16   /* route6.flags above it: the network's MTU; 0 = unchecked */

struct route6 {
	__u32 vlan;
	__u32 flags;            /* ROUTE_VIA, ROUTE_EXTERNAL; the MTU (ROUTE6_MTU_SHIFT) */
	__u8 nexthop[16];
	__u8 mac[6];            /* the router's MAC on that network */
	__u16 scope;            /* that interface's */
};

struct neigh6_key {
	__u32 vlan;
	__u8 ip[16];
};

#define RA_MANAGED 0x80         /* M: addresses from DHCPv6 (dhcpv6-stateful) */
#define RA_OTHER 0x40           /* O: other configuration from DHCPv6 (dhcpv6-stateless) */
#define PI_ONLINK 0x80          /* L */
#define PI_AUTO 0x40            /* A: form an address from the prefix (slaac, dhcpv6-stateless) */

struct ra {
	__u8 mac[6];            /* the router's */
	__u8 flags;             /* RA_MANAGED, RA_OTHER */
	__u8 pflags;            /* PI_ONLINK, PI_AUTO */
	__u8 lla[16];           /* the router's link-local address: the source */
	__u8 prefix[16];
	__u8 plen;
	__u8 pad[3];
	__u32 mtu;              /* 0: not advertised */
};

/* fip_out (ifindex = the port's, ip = fixed) gives the external device and
 * the floating IP; fip_in (ifindex = the external device's, ip = floating)
 * gives the port, the fixed IP and the router's MAC on the port's network.
 * fip_in also holds the routers' gateway addresses, with ifindex 0: ARP is
 * answered for them, and what comes in to them looks in snat. A router
 * without SNAT routes its ports' fixed IPs as they are: both maps hold them
 * mapped to themselves, NAT_ROUTED in fip_in. */
struct nat_key {
	__u32 ifindex;
	__u8 ip[4];
};

#define NAT_ROUTED 1          /* fip_in: a fixed IP routed without NAT (enable_snat off): no ARP for it */

struct nat {
	__u32 ifindex;
	__u8 ip[4];
	__u8 mac[6];
	__u8 flags;
	__u8 pad;
};

/* Router SNAT, both directions in one LRU map. Out (dir 0): id is the
 * router, laddr:lport the port's fixed address and port. In (dir 1): id is
 * the external device, laddr:lport the gateway address and the NAT port.
 * ICMP echo: lport is the id, rport 0. Ports in host order. */
struct snat_key {
	__u32 id;
	__u8 dir;
	__u8 proto;
	__u16 pad;
	__u8 laddr[4];
	__u8 raddr[4];
	__u16 lport;
	__u16 rport;
};

struct snat_val {
	__u64 seen;
	__u32 ifindex;          /* in: the port */
	__u8 addr[4];           /* out: the gateway address; in: the fixed address */
	__u8 mac[6];            /* in: the router's MAC on the port's network */
	__u16 port;             /* out: the NAT port; in: the port's own */
};

/* An external network, in exts by its key: the device's ifindex, plus the
 * VLAN << 20 for a VLAN on the uplink. The key names it in fip_out, fip_in,
 * snat, ext_neighs and a ROUTE_EXTERNAL route. */
struct ext {
	__u32 ifindex;          /* the device it is reached by */
	__u32 vlan;             /* 0: untagged */
	__u8 mac[6];            /* this node's MAC on the external network */
	__u8 pad[2];
	__u8 gateway[4];
	__u8 net[4];
	__u8 mask[4];
};

#define EXT_VLAN_SHIFT 20

struct meta_cfg {
	__u32 ifindex;          /* the metadata device; 0: none */
	__u8 mac[6];            /* its MAC: the source of what it sends ports */
	__u8 peer[6];           /* its veth peer's MAC, where the server listens */
};

struct meta_key {
	__u8 ip[4];             /* the port's metadata address */
	__u16 port;             /* the request's source port */
	__u16 pad;
};

struct meta_val {
	__u32 ifindex;          /* the port */
	__u8 ip[4];             /* the request's source address */
	__u8 mac[6];            /* the MAC the request was sent to */
	__u8 pad[2];
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

/* A secured port's IPv6 source addresses: its fixed ones, its link-local
 * one from its MAC, its allowed address pairs. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct addr6_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} addrs6 SEC(".maps");

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
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ct6_key);
	__type(value, struct ct_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ct6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rif_key);
	__type(value, struct rif);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rifs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fdb_key);
	__type(value, struct rif);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rmacs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct route_key);
	__type(value, struct route);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct neigh_key);
	__type(value, struct neigh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} neighs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct rif6_key);
	__type(value, struct rif6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rifs6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fdb_key);
	__type(value, struct rif6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} rmacs6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__type(key, struct route6_key);
	__type(value, struct route6);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} routes6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct neigh6_key);
	__type(value, struct neigh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} neighs6 SEC(".maps");

/* vlan -> the router advertisement a router solicitation gets there */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct ra);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ras SEC(".maps");

/* Learnt by ext_in from the ARP it sees; never written by Go. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct neigh_key);
	__type(value, struct neigh);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ext_neighs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct nat_key);
	__type(value, struct nat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fip_out SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct nat_key);
	__type(value, struct nat);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fip_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct ext);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct meta_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meta SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 262144);
	__type(key, struct snat_key);
	__type(value, struct snat_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} snat SEC(".maps");

/* port ifindex -> its metadata source address (network order) */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} metas SEC(".maps");

/* The metadata requests in flight, so the replies find their port. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct meta_key);
	__type(value, struct meta_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} meta_ct SEC(".maps");

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

/* related6 is the flow an ICMPv6 error quotes: sg_allow lets the error
 * through when conntrack has that flow. It waits in rel6, a per-CPU slot,
 * from parse_ipv6 to sg_allow: in the flow it would take port_in past the
 * 512 bytes of stack. */
struct related6 {
	__u8 proto;
	__u8 pad;
	__u16 sport;
	__u16 dport;
	__u16 pad2;
	__u32 saddr6[4];
	__u32 daddr6[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct related6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);   /* as every map, so a restart adopts it */
} rel6 SEC(".maps");

/* flow is what the security groups and conntrack look at. */
struct flow {
	__u32 saddr;            /* IPv4 */
	__u32 daddr;
	__u16 sport;            /* conntrack ports (ICMP echo: the id, both) */
	__u16 dport;
	__u16 rport;            /* the port rules match: TCP/UDP destination, ICMP type<<8|code */
	__u8 proto;             /* IPv6: the upper-layer protocol, past the extension headers */
	__u8 dhcp;              /* 1: to a DHCP server, 2: from a DHCP server */
	__u8 v6;                /* 1: IPv6, the addresses in saddr6 and daddr6 */
	__u8 rel;               /* an ICMP or ICMPv6 error whose quoted flow is in rel6 */
	__u8 frag;              /* FRAG_* (frag.h) */
	__u8 pad;
	__u32 saddr6[4];
	__u32 daddr6[4];
};

/* flow.frag (frag.h) */
#define FRAG_NONE 0
#define FRAG_LATER 1            /* a later fragment, its ports from its first */
#define FRAG_ORPHAN 2           /* a later fragment whose first was not seen */
#define FRAG_FIRST 3            /* a first fragment: more follow */

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

#include "metering.h"

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

#define ICMP6_ECHO 128
#define ICMP6_ECHOREPLY 129
#define ICMP6_MLD_QUERY 130
#define ICMP6_MLD_REPORT 131
#define ICMP6_MLD_DONE 132
#define ICMP6_RS 133
#define ICMP6_RA 134
#define ICMP6_NS 135
#define ICMP6_NA 136
#define ICMP6_MLD2_REPORT 143
#define DHCP6_CLIENT 546
#define DHCP6_SERVER 547

static __always_inline __u8 icmp6_type(struct flow *f)
{
	/* A fragment is never taken for neighbour discovery (nor, here, for
	 * a ping: echo6_reply answers a router's fragment by fragment). */
	return f->proto == IPPROTO_ICMPV6 && f->frag == FRAG_NONE ? f->rport >> 8 : 0;
}

/* link_local says whether an IPv6 address (as loaded) is in fe80::/10. */
static __always_inline int link_local(const __u32 *a)
{
	return (a[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000);
}

/* fixed6 is Neutron's fixed IPv6 rules, which no security group needs to
 * allow: neighbour discovery and multicast listener queries both ways,
 * router solicitations out, router advertisements in from a link-local
 * router, DHCPv6 between client and server. A secured port's sources, its
 * advertisements' targets, and what it may not send (advertisements,
 * DHCPv6 answers) are checked in port_in6. */
static __always_inline int fixed6(__u8 dir, struct flow *f)
{
	if (f->proto == IPPROTO_UDP)
		return dir == DIR_OUT ? f->sport == DHCP6_CLIENT && f->dport == DHCP6_SERVER
				      : f->sport == DHCP6_SERVER && f->dport == DHCP6_CLIENT;
	__u8 t = icmp6_type(f);
	if (t == ICMP6_MLD_QUERY || t == ICMP6_NS || t == ICMP6_NA)
		return 1;
	if (dir == DIR_OUT)
		return t == ICMP6_RS;
	return t == ICMP6_RA && link_local(f->saddr6);
}

/* ip6_allowed checks an IPv6 source address against the port's addrs6. */
static __always_inline int ip6_allowed(__u32 ifindex, const __u32 *ip)
{
	struct addr6_key k = { .prefixlen = 32 + 128, .ifindex = ifindex };
	__builtin_memcpy(k.ip, ip, 16);
	return bpf_map_lookup_elem(&addrs6, &k) != NULL;
}

/* rules_allow looks the flow up once per port-prefix length the policy uses. */
static __always_inline int rules_allow(struct port *p, __u8 dir, struct flow *f)
{
	__u32 lens = p->lens[dir & 1];
	struct rule_key k = { .prefixlen = 208, .policy = p->policy, .dir = dir, .v6 = f->v6 };
	if (f->v6) {
		__builtin_memcpy(k.ip, dir == DIR_OUT ? f->daddr6 : f->saddr6, 16);
	} else {
		__u32 remote = dir == DIR_OUT ? f->daddr : f->saddr;
		__builtin_memcpy(k.ip, &remote, 4);
	}

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

/* ct_allow is sg_allow's conntrack in map (ct or ct6): the flow's key k
 * is tracked, or the rules allow it and k and its reply's key r are
 * recorded. A stateless port (Neutron's stateful: false) is judged by its
 * rules alone: nothing is looked up or recorded, so neither a reply nor
 * an ICMP error about its flows (related*_tracked finds no flow of its)
 * passes unless a rule lets it. One call of rules_allow serves both, so
 * it is inlined once per ct_allow. */
static __always_inline int ct_allow(void *map, void *k, void *r, struct port *p, __u8 dir, struct flow *f)
{
	__u64 now = bpf_ktime_get_coarse_ns(); /* ms resolution is plenty, and cheap */
	int stateless = p->flags & PORT_STATELESS;
	if (!stateless) {
		struct ct_val *v = bpf_map_lookup_elem(map, k);
		if (v && now - v->seen < CT_TIMEOUT) {
			if (now - v->seen > CT_REFRESH)
				v->seen = now;
			return 1;
		}
	}
	if (!rules_allow(p, dir, f))
		return 0;
	if (stateless)
		return 1;
	struct ct_val nv = { .seen = now };
	bpf_map_update_elem(map, k, &nv, BPF_ANY);
	bpf_map_update_elem(map, r, &nv, BPF_ANY);
	count(C_CT_NEW);
	return 1;
}

/* related6_tracked says whether conntrack has the flow an ICMPv6 error in
 * direction dir quotes: that flow went the other way. */
static __always_inline int related6_tracked(__u32 ifindex, __u8 dir)
{
	__u32 zero = 0;
	struct related6 *rel = bpf_map_lookup_elem(&rel6, &zero);
	if (!rel)
		return 0;
	struct ct6_key k = { .ifindex = ifindex, .dir = dir ^ 1, .proto = rel->proto, .sport = rel->sport, .dport = rel->dport };
	__builtin_memcpy(k.saddr, rel->saddr6, 16);
	__builtin_memcpy(k.daddr, rel->daddr6, 16);
	struct ct_val *v = bpf_map_lookup_elem(&ct6, &k);
	return v && bpf_ktime_get_coarse_ns() - v->seen < CT_TIMEOUT;
}

#include "rel4.h"
#include "frag.h"

/* sg_allow says whether the port's security groups let the flow through in
 * direction dir, and records an allowed flow and its reply. */
static __always_inline int sg_allow(struct port *p, __u32 ifindex, __u8 dir, struct flow *f)
{
	if (!(p->flags & PORT_SECURITY))
		return 1;
	if (f->frag == FRAG_ORPHAN)
		return 0;       /* no ports to judge it by */
	if (f->v6) {
		if (fixed6(dir, f))
			return 1;
		if (f->rel && related6_tracked(ifindex, dir))
			return 1;
		struct ct6_key k = { .ifindex = ifindex, .dir = dir, .proto = f->proto, .sport = f->sport, .dport = f->dport };
		struct ct6_key r = { .ifindex = ifindex, .dir = dir ^ 1, .proto = f->proto, .sport = f->dport, .dport = f->sport };
		__builtin_memcpy(k.saddr, f->saddr6, 16);
		__builtin_memcpy(k.daddr, f->daddr6, 16);
		__builtin_memcpy(r.saddr, f->daddr6, 16);
		__builtin_memcpy(r.daddr, f->saddr6, 16);
		return ct_allow(&ct6, &k, &r, p, dir, f);
	}
	if (f->rel && related4_tracked(ifindex, dir))
		return 1;
	struct ct_key k = {
		.ifindex = ifindex, .dir = dir, .proto = f->proto,
		.saddr = f->saddr, .daddr = f->daddr, .sport = f->sport, .dport = f->dport,
	};
	struct ct_key r = {
		.ifindex = ifindex, .dir = dir ^ 1, .proto = f->proto,
		.saddr = f->daddr, .daddr = f->saddr, .sport = f->dport, .dport = f->sport,
	};
	return ct_allow(&ct, &k, &r, p, dir, f);
}

/* parse_l4v4 fills f's ports from the IPv4 packet's L4 header at ihl. */
static __always_inline int parse_l4v4(struct __sk_buff *skb, struct flow *f, __u32 ihl)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > end)
		return 0;
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
		else if (icmp4_error_type(icmp->type))
			f->rel = related4(skb, ETH_HLEN + ihl + 8);
	}
	return 1;
}

/* parse_ipv4 fills f from the IPv4 packet after the Ethernet header, a
 * later fragment's ports from its first fragment seen in zone (frag.h);
 * returns 0 when the packet is too short. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct flow *f, __u32 zone)
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
	f->v6 = 0;
	f->rel = 0;
	f->frag = FRAG_NONE;
	__u16 frag_off = bpf_ntohs(ip->frag_off);
	if (frag_off & 0x3fff) {        /* MF or an offset: a fragment */
		struct frag_key fk = { .zone = zone, .id = ip->id, .proto = ip->protocol, .saddr = { ip->saddr }, .daddr = { ip->daddr } };
		if (frag_off & 0x1fff) {        /* a later one: no L4 header */
			frag_later(&fk, f);
			return 1;
		}
		if (!parse_l4v4(skb, f, ihl))
			return 0;
		frag_first(&fk, f);
		f->frag = FRAG_FIRST;
		return 1;
	}
	return parse_l4v4(skb, f, ihl);
}

/* related6 reads the flow an ICMPv6 error quotes at off into rel6: its
 * addresses, protocol and ports (an echo's id) as conntrack keys them.
 * 0: no flow (an extension header in the quote, or too short a quote). */
static __always_inline int related6(struct __sk_buff *skb, __u32 off)
{
	__u32 zero = 0;
	struct related6 *r = bpf_map_lookup_elem(&rel6, &zero);
	struct ipv6hdr ip;
	__be16 ports[2];
	if (!r || bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) || bpf_skb_load_bytes(skb, off + sizeof(ip), ports, 4))
		return 0;
	if (ip.nexthdr == IPPROTO_ICMPV6) {
		__u8 t = ports[0] & 0xff;   /* the first byte, as loaded */
		if (t != ICMP6_ECHO && t != ICMP6_ECHOREPLY)
			return 0;
		if (bpf_skb_load_bytes(skb, off + sizeof(ip) + 4, ports, 2))
			return 0;
		ports[1] = ports[0];
	} else if (ip.nexthdr != IPPROTO_TCP && ip.nexthdr != IPPROTO_UDP && ip.nexthdr != IPPROTO_SCTP) {
		return 0;
	}
	r->proto = ip.nexthdr;
	r->sport = bpf_ntohs(ports[0]);
	r->dport = bpf_ntohs(ports[1]);
	__builtin_memcpy(r->saddr6, &ip.saddr, 16);
	__builtin_memcpy(r->daddr6, &ip.daddr, 16);
	return 1;
}

/* parse_l4v6 fills f's ports from the upper-layer header at off. */
static __always_inline int parse_l4v6(struct __sk_buff *skb, struct flow *f, __u32 off)
{
	__u8 nh = f->proto;
	if (nh == IPPROTO_TCP || nh == IPPROTO_UDP || nh == IPPROTO_SCTP) {
		__be16 ports[2];
		if (bpf_skb_load_bytes(skb, off, ports, 4))
			return 0;
		f->sport = bpf_ntohs(ports[0]);
		f->dport = bpf_ntohs(ports[1]);
		f->rport = f->dport;
	} else if (nh == IPPROTO_ICMPV6) {
		struct icmp_echo icmp;
		if (bpf_skb_load_bytes(skb, off, &icmp, sizeof(icmp)))
			return 0;
		f->rport = ((__u16)icmp.type << 8) | icmp.code;
		if (icmp.type == ICMP6_ECHO || icmp.type == ICMP6_ECHOREPLY)
			f->sport = f->dport = bpf_ntohs(icmp.id);
		else if (icmp.type >= 1 && icmp.type <= 4)
			f->rel = related6(skb, off + 8);
	}
	return 1;
}

/* parse_ipv6 fills f from the IPv6 packet after the Ethernet header, past
 * up to four extension headers, a later fragment's ports from its first
 * fragment seen in zone (frag.h); returns the offset of the upper-layer
 * header (whose protocol is f->proto), 0 when the packet is malformed. */
static __always_inline __u32 parse_ipv6(struct __sk_buff *skb, struct flow *f, __u32 zone)
{
	struct ipv6hdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) || ip.version != 6)
		return 0;
	__builtin_memcpy(f->saddr6, &ip.saddr, 16);
	__builtin_memcpy(f->daddr6, &ip.daddr, 16);
	f->saddr = f->daddr = 0;
	f->sport = f->dport = f->rport = 0;
	f->dhcp = 0;
	f->v6 = 1;
	f->rel = 0;
	f->frag = FRAG_NONE;
	__u8 nh = ip.nexthdr;
	__u32 off = ETH_HLEN + sizeof(ip);
	int later = 0, first = 0;
	__u32 id = 0;
#pragma unroll
	for (int i = 0; i < 4; i++) {
		__u8 h[4];
		if (nh != 0 && nh != 43 && nh != 44 && nh != 60)   /* hop-by-hop, routing, fragment, destination */
			break;
		if (bpf_skb_load_bytes(skb, off, h, 4))
			return 0;
		if (nh == 44) {
			later = (h[2] << 8 | h[3]) & 0xfff8;   /* a later fragment: no upper-layer header */
			first = !later && (h[3] & 1);          /* M: more follow */
			if (bpf_skb_load_bytes(skb, off + 4, &id, 4))
				return 0;
			off += 8;
		} else {
			off += (h[1] + 1) * 8;
		}
		nh = h[0];
	}
	f->proto = nh;
	if (later || first) {
		struct frag_key fk = { .zone = zone, .id = id, .proto = nh, .v6 = 1 };
		__builtin_memcpy(fk.saddr, f->saddr6, 16);
		__builtin_memcpy(fk.daddr, f->daddr6, 16);
		if (later) {
			frag_later(&fk, f);
			return off;
		}
		if (!parse_l4v6(skb, f, off))
			return 0;
		frag_first(&fk, f);
		f->frag = FRAG_FIRST;
		return off;
	}
	return parse_l4v6(skb, f, off) ? off : 0;
}

#include "qos.h"
#include "trunk.h"

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

static __always_inline int to_port(struct __sk_buff *skb, struct port *q, __u32 ifindex)
{
	if (!qos_in(skb, q, ifindex))
		return drop(C_DROP_QOS);
	if (TRUNK_SUB(ifindex))
		return to_trunk(skb, q, ifindex);
	count(C_FWD_LOCAL);
	if (q->flags & PORT_PEER)
		return bpf_redirect_peer(ifindex, 0);
	return bpf_redirect(ifindex, 0);
}

/* What a frame is, for delivery: security groups apply to IPv4 and IPv6;
 * ARP and the IPv6 neighbour discovery every port takes part in pass;
 * other ethertypes reach only ports without port security. */
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
			clone_to(skb, o);
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
	return to_port(skb, q, ifindex);
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

#define ARP_REQUEST 1
#define ARP_REPLY 2
#define META_IP 0xfea9fea9      /* 169.254.169.254 in network order, read as a little-endian __u32 */

#define IP_CSUM_OFF (ETH_HLEN + offsetof(struct iphdr, check))
#define IP_SRC_OFF (ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_DST_OFF (ETH_HLEN + offsetof(struct iphdr, daddr))
#define IP_TTL_OFF (ETH_HLEN + offsetof(struct iphdr, ttl))

static __always_inline int set_macs(struct __sk_buff *skb, const __u8 *dst, const __u8 *src)
{
	__u8 m[12];
	__builtin_memcpy(m, dst, 6);
	__builtin_memcpy(m + 6, src, 6);
	return bpf_skb_store_bytes(skb, 0, m, 12, 0);
}

/* arp_reply turns the ARP request in skb into the answer "ip is at mac"
 * and sends it back out of the device it came in on. */
static __always_inline int arp_reply_vlan(struct __sk_buff *skb, const __u8 *mac, __u32 ip, __u32 vlan)
{
	struct arp_eth a;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &a, sizeof(a)))
		return drop(C_DROP_MALFORMED);
	if (set_macs(skb, a.sha, mac))
		return drop(C_DROP_MALFORMED);
	a.op = bpf_htons(ARP_REPLY);
	__builtin_memcpy(a.tha, a.sha, 6);
	__builtin_memcpy(a.tpa, a.spa, 4);
	__builtin_memcpy(a.sha, mac, 6);
	__builtin_memcpy(a.spa, &ip, 4);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &a, sizeof(a), 0))
		return drop(C_DROP_MALFORMED);
	if (vlan && bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), vlan))
		return drop(C_DROP_MALFORMED);
	count(C_ARP_REPLY);
	return reflect(skb);
}

static __always_inline int arp_reply(struct __sk_buff *skb, const __u8 *mac, __u32 ip)
{
	return arp_reply_vlan(skb, mac, ip, 0);
}

static __always_inline __u16 csum_fold(__s64 s)
{
	__u32 c = (__u32)s;
	c = (c & 0xffff) + (c >> 16);
	c = (c & 0xffff) + (c >> 16);
	return ~c;
}

/* ttl_dec takes one off the TTL; 0 when the packet may not be forwarded. */
static __always_inline int ttl_dec(struct __sk_buff *skb)
{
	__u16 old, new;
	if (bpf_skb_load_bytes(skb, IP_TTL_OFF, &old, 2))
		return 0;
	__u8 *ttl = (__u8 *)&old;
	if (*ttl <= 1)
		return 0;
	new = old;
	((__u8 *)&new)[0] = *ttl - 1;
	if (bpf_skb_store_bytes(skb, IP_TTL_OFF, &new, 2, 0))
		return 0;
	return bpf_l3_csum_replace(skb, IP_CSUM_OFF, old, new, 2) == 0;
}

/* icmp_error answers the IPv4 packet in skb with an ICMP error of type
 * typ from address from (a router interface) and the MAC mac, quoting its
 * first 28 bytes, back out of the device it came in on. */
static __always_inline int icmp_error(struct __sk_buff *skb, __u8 typ, __u8 code, __u16 mtu, __u32 from, const __u8 *mac)
{
	struct {
		struct ethhdr eth;
		struct iphdr ip;
		struct icmp_echo icmp;
		__u8 quote[28];
	} __attribute__((packed)) out = {};
	if (bpf_skb_load_bytes(skb, ETH_HLEN, out.quote, sizeof(out.quote)))
		return drop(C_DROP_MALFORMED);
	/* Only a datagram's first fragment is answered with an error, as
	 * Linux's icmp_send does (RFC 1122 3.2.2): a later one quotes no
	 * header a sender could match. */
	if (((out.quote[6] << 8) | out.quote[7]) & 0x1fff)
		return drop(C_DROP_NO_ROUTE);
	/* The skb may still say CHECKSUM_PARTIAL (a guest's TCP or UDP with
	 * offload), which nothing finishes on the way back to the port: a
	 * veth peer and a tap hand the bytes over as they are, and the
	 * receiver takes ICMP as already checked. Ours are right anyway. */
	if (out.quote[9] == IPPROTO_ICMP) {
		/* never an error about an error (RFC 1122 3.2.2) */
		__u8 t = out.quote[20];
		if (t != ICMP_ECHO && t != ICMP_ECHOREPLY)
			return drop(C_DROP_NO_ROUTE);
	}
	if (bpf_skb_load_bytes(skb, 6, out.eth.h_dest, 6))
		return drop(C_DROP_MALFORMED);
	__builtin_memcpy(out.eth.h_source, mac, 6);
	out.eth.h_proto = bpf_htons(ETH_P_IP);
	out.ip.version = 4;
	out.ip.ihl = 5;
	out.ip.tot_len = bpf_htons(sizeof(out) - ETH_HLEN);
	out.ip.ttl = 64;
	out.ip.protocol = IPPROTO_ICMP;
	out.ip.saddr = from;
	__builtin_memcpy(&out.ip.daddr, out.quote + 12, 4);
	out.ip.check = csum_fold(bpf_csum_diff(0, 0, (void *)&out.ip, sizeof(out.ip), 0));
	out.icmp.type = typ;
	out.icmp.code = code;
	out.icmp.seq = bpf_htons(mtu);  /* frag needed: the next hop's MTU */
	out.icmp.checksum = csum_fold(bpf_csum_diff(0, 0, (void *)&out.icmp, sizeof(out.icmp) + sizeof(out.quote), 0));
	if (bpf_skb_change_tail(skb, sizeof(out), 0))
		return drop(C_DROP_MALFORMED);
	if (bpf_skb_store_bytes(skb, 0, &out, sizeof(out), 0))
		return drop(C_DROP_MALFORMED);
	count(C_ICMP_REPLY);
	return reflect(skb);
}

/* echo_reply answers a ping to a router's own address. A fragmented
 * request is answered fragment by fragment, nothing here reassembling it:
 * each goes back as the same fragment of the reply (same identification,
 * offset and MF, the addresses swapped), the first with the type changed
 * and the ICMP checksum, which covers the whole message, updated for it.
 * The sender reassembles the reply a router's stack would have sent,
 * whatever order the fragments come in. A later fragment whose first was
 * not seen (frag.h) is not known to be a ping's, and goes nowhere. */
static __always_inline int echo_reply(struct __sk_buff *skb, struct flow *f, const __u8 *mac)
{
	__u8 typ;
	__u32 l4;
	__u8 ihl;
	if (f->frag == FRAG_ORPHAN || (f->rport >> 8) != ICMP_ECHO)
		return drop(C_DROP_NO_NEIGH);
	__u8 src[6];
	if (bpf_skb_load_bytes(skb, 6, src, 6) || set_macs(skb, src, mac))
		return drop(C_DROP_MALFORMED);
	/* Swapping the addresses leaves the IP checksum as it was. */
	bpf_skb_store_bytes(skb, IP_SRC_OFF, &f->daddr, 4, 0);
	bpf_skb_store_bytes(skb, IP_DST_OFF, &f->saddr, 4, 0);
	if (f->frag == FRAG_LATER) {
		count(C_ICMP_REPLY);
		return reflect(skb);
	}
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ihl, 1))
		return drop(C_DROP_MALFORMED);
	l4 = ETH_HLEN + (ihl & 0xf) * 4;
	__u16 oldt = bpf_htons(ICMP_ECHO << 8), newt = bpf_htons(ICMP_ECHOREPLY << 8);
	bpf_l4_csum_replace(skb, l4 + 2, oldt, newt, 2);
	typ = ICMP_ECHOREPLY;
	if (bpf_skb_store_bytes(skb, l4, &typ, 1, 0))
		return drop(C_DROP_MALFORMED);
	count(C_ICMP_REPLY);
	return reflect(skb);
}

/* nat_addr rewrites the source (src) or destination address from -> to,
 * with the IP and the TCP/UDP checksums. */
static __always_inline int nat_addr(struct __sk_buff *skb, int src, __u32 from, __u32 to)
{
	struct iphdr ip;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)))
		return -1;
	__u32 l4 = ETH_HLEN + ip.ihl * 4;
	if (!(ip.frag_off & bpf_htons(0x1fff))) {
		if (ip.protocol == IPPROTO_TCP) {
			if (bpf_l4_csum_replace(skb, l4 + 16, from, to, BPF_F_PSEUDO_HDR | 4))
				return -1;
		} else if (ip.protocol == IPPROTO_UDP) {
			if (bpf_l4_csum_replace(skb, l4 + 6, from, to, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 4))
				return -1;
		}
	}
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, from, to, 4))
		return -1;
	return bpf_skb_store_bytes(skb, src ? IP_SRC_OFF : IP_DST_OFF, &to, 4, 0);
}

/* nat_port rewrites the TCP/UDP source (src) or destination port, or the
 * ICMP echo id, from -> to (host order), with the checksum. */
static __always_inline int nat_port(struct __sk_buff *skb, int src, __u8 proto, __u16 from, __u16 to)
{
	__u8 h[8];
	if (bpf_skb_load_bytes(skb, ETH_HLEN, h, 8))
		return -1;
	if (((h[6] << 8) | h[7]) & 0x1fff)
		return 0;       /* a later fragment: the ports are in the first */
	__u32 l4 = ETH_HLEN + (h[0] & 0xf) * 4;
	__be16 o = bpf_htons(from), n = bpf_htons(to);
	__u32 csum, at;
	__u64 flags = 2;
	if (proto == IPPROTO_TCP) {
		csum = l4 + 16;
		at = l4 + (src ? 0 : 2);
	} else if (proto == IPPROTO_UDP) {
		csum = l4 + 6;
		at = l4 + (src ? 0 : 2);
		flags |= BPF_F_MARK_MANGLED_0;
	} else {
		csum = l4 + 2;
		at = l4 + 4;
	}
	if (bpf_l4_csum_replace(skb, csum, o, n, flags))
		return -1;
	return bpf_skb_store_bytes(skb, at, &n, 2, 0);
}

static __always_inline int snat_proto(struct flow *f)
{
	if (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP)
		return f->sport != 0;   /* 0: a later fragment, no ports to map */
	return f->proto == IPPROTO_ICMP && (f->rport >> 8) == ICMP_ECHO;
}

/* snat_live is the live entry of SNAT flow (id: the router out, the
 * external network in; dir) between laddr:lport and raddr:rport, or 0.
 * ICMP keys an echo by its id alone: its rport is 0. */
static __always_inline struct snat_val *snat_live(__u32 id, __u8 dir, __u8 proto, __u32 laddr, __u16 lport,
						   __u32 raddr, __u16 rport)
{
	struct snat_key k = { .id = id, .dir = dir, .proto = proto, .lport = lport,
			      .rport = proto == IPPROTO_ICMP ? 0 : rport };
	__builtin_memcpy(k.laddr, &laddr, 4);
	__builtin_memcpy(k.raddr, &raddr, 4);
	struct snat_val *v = bpf_map_lookup_elem(&snat, &k);
	if (!v || bpf_ktime_get_coarse_ns() - v->seen >= CT_TIMEOUT)
		return 0;
	return v;
}

#define SNAT_TRIES 16

/* snat_port is the NAT port of the flow a port sends out of router in's
 * gateway gw on device ext: the one it has, or a new one, claimed in the
 * in direction so that replies find the port. -1: none free. */
static __always_inline int snat_port(__u32 ifindex, struct flow *f, struct rif *in, __u32 ext, __u32 gw)
{
	__u16 rport = f->proto == IPPROTO_ICMP ? 0 : f->dport;
	struct snat_key ok = { .id = in->router, .dir = 0, .proto = f->proto, .lport = f->sport, .rport = rport };
	__builtin_memcpy(ok.laddr, &f->saddr, 4);
	__builtin_memcpy(ok.raddr, &f->daddr, 4);
	struct snat_key ik = { .id = ext, .dir = 1, .proto = f->proto, .rport = rport };
	__builtin_memcpy(ik.laddr, &gw, 4);
	__builtin_memcpy(ik.raddr, &f->daddr, 4);
	__u64 now = bpf_ktime_get_coarse_ns();
	struct snat_val *v = bpf_map_lookup_elem(&snat, &ok);
	if (v && now - v->seen < CT_TIMEOUT) {
		__u16 port = v->port;
		if (now - v->seen > CT_REFRESH) {
			v->seen = now;
			/* Keep the in direction alive too: a flow that only
			 * sends must not lose its port to another. */
			ik.lport = port;
			struct snat_val *r = bpf_map_lookup_elem(&snat, &ik);
			if (r)
				r->seen = now;
		}
		return port;
	}
	struct snat_val iv = { .seen = now, .ifindex = ifindex, .port = f->sport };
	__builtin_memcpy(iv.addr, &f->saddr, 4);
	__builtin_memcpy(iv.mac, in->mac, 6);
	__u32 h = bpf_get_prandom_u32();
	for (int i = 0; i < SNAT_TRIES; i++) {
		/* The port's own first, as Linux does; then random ones
		 * above the well-known ports. */
		__u16 port = i == 0 ? f->sport : 1024 + (h + i * 7919) % (65536 - 1024);
		if (port == 0)
			continue;
		ik.lport = port;
		struct snat_val *x = bpf_map_lookup_elem(&snat, &ik);
		if (x && now - x->seen < CT_TIMEOUT)
			continue;
		if (bpf_map_update_elem(&snat, &ik, &iv, x ? BPF_ANY : BPF_NOEXIST))
			continue;       /* another CPU took it just now */
		struct snat_val ov = { .seen = now, .port = port };
		__builtin_memcpy(ov.addr, &gw, 4);
		bpf_map_update_elem(&snat, &ok, &ov, BPF_ANY);
		count(C_SNAT_NEW);
		return port;
	}
	return -1;
}

#include "icmp4.h"
#include "portfwd.h"

/* to_external sends a routed packet out of its router's gateway, with the
 * port's floating IP as source, else SNATed to the router's gateway
 * address when the route says so. */
static __always_inline int to_external(struct __sk_buff *skb, __u32 ifindex, struct flow *f, struct rif *in,
				       __u32 rext, __u32 rflags, __u32 gw)
{
	struct nat_key k = { .ifindex = ifindex };
	__builtin_memcpy(k.ip, &f->saddr, 4);
	struct nat *n = bpf_map_lookup_elem(&fip_out, &k);
	__u32 out, src;
	int snat = 0, relport = -1;
	__u16 own = 0, pfport = 0;
	if (!n)
		n = pf_nat(ifindex, f, &pfport);        /* portfwd.h: a forwarded socket's */
	if (n) {
		out = n->ifindex;
		__builtin_memcpy(&src, n->ip, 4);
	} else if (rflags & ROUTE_SNAT) {
		out = rext;
		src = gw;
		snat = 1;
		if (f->rel) {
			/* The port's own error about a SNATed flow's reply. */
			relport = snat_rel_port(f, in, &own);
			if (relport < 0)
				return drop(C_DROP_NO_ROUTE);
		} else if (!snat_proto(f)) {
			return drop(C_DROP_NO_ROUTE);
		}
	} else {
		return drop(C_DROP_NO_ROUTE);
	}
	struct ext *e = bpf_map_lookup_elem(&exts, &out);
	if (!e)
		return drop(C_DROP_NO_ROUTE);
	__u32 dev = e->ifindex, evlan = e->vlan;
	__u32 net, mask, nh;
	__builtin_memcpy(&net, e->net, 4);
	__builtin_memcpy(&mask, e->mask, 4);
	__builtin_memcpy(&nh, e->gateway, 4);
	if ((f->daddr & mask) == net)
		nh = f->daddr;  /* on the external subnet: straight there */
	struct neigh_key nk = { .vlan = out };
	__builtin_memcpy(nk.ip, &nh, 4);
	struct neigh *nb = bpf_map_lookup_elem(&ext_neighs, &nk);
	if (!nb) {
		__builtin_memcpy(nk.ip, e->gateway, 4);
		nb = bpf_map_lookup_elem(&ext_neighs, &nk);
		if (!nb)
			return drop(C_DROP_NO_NEIGH);
	}
	__u8 dmac[6], smac[6];
	__builtin_memcpy(dmac, nb->mac, 6);
	__builtin_memcpy(smac, e->mac, 6);
	__u32 rip;
	__builtin_memcpy(&rip, in->ip, 4);
	__u8 ttl;
	if (bpf_skb_load_bytes(skb, IP_TTL_OFF, &ttl, 1) || ttl <= 1)
		return icmp_error(skb, ICMP_TIME_EXCEEDED, 0, 0, rip, in->mac);
	/* Too big for the external network: nothing here fragments, so the
	 * sender learns the MTU (path MTU discovery), or the packet goes.
	 * Checked before the TTL goes down, so the quote is as sent. */
	__u32 mtu = 0;
	if (bpf_check_mtu(skb, dev, &mtu, 0, 0) == BPF_MTU_CHK_RET_FRAG_NEEDED) {
		__u16 frag;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct iphdr, frag_off), &frag, 2) == 0 &&
		    (frag & bpf_htons(0x4000)))
			return icmp_error(skb, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, mtu, rip, in->mac);
		return drop(C_DROP_TOO_BIG);
	}
	if (!ttl_dec(skb))
		return drop(C_DROP_MALFORMED);
	if (relport >= 0) {
		/* Its quote names the gateway address and NAT port, or it
		 * does not go (a quote with options: untranslatable). */
		if (rel4_nat(skb, 1, f->saddr, gw, bpf_htons(own), bpf_htons(relport)))
			return drop(C_DROP_NO_ROUTE);
	} else if (snat) {
		int port = snat_port(ifindex, f, in, out, gw);
		if (port < 0)
			return drop(C_DROP_NAT_PORTS);
		if (port != f->sport && nat_port(skb, 1, f->proto, f->sport, port))
			return drop(C_DROP_MALFORMED);
	} else if (pfport && pfport != f->sport && nat_port(skb, 1, f->proto, f->sport, pfport)) {
		return drop(C_DROP_MALFORMED);
	}
	if (nat_addr(skb, 1, f->saddr, src) || set_macs(skb, dmac, smac))
		return drop(C_DROP_MALFORMED);
	if (f->rel && relport < 0 && src != f->saddr)  /* the port's error about what came in to its floating IP */
		rel4_nat(skb, 1, f->saddr, src, 0, 0);
	meter(in->router, METER_EGRESS, f->saddr, f->daddr, skb->len - ETH_HLEN);
	if (evlan && bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), evlan))
		return drop(C_DROP_MALFORMED);
	count(C_NAT_OUT);
	return bpf_redirect(dev, 0);
}

/* route forwards a packet a port sent to its router's MAC: to a port of
 * another of the router's networks (here or by the uplink), or out of the
 * router's gateway. The port's egress groups have let it through. */
static __always_inline int route(struct __sk_buff *skb, __u32 ifindex, struct rif *in, struct flow *f)
{
	/* Link-local addresses are never routed (RFC 3927): 169.254.169.254
	 * is the metadata service of the port's own node or nothing. */
	if ((f->daddr & 0xffff) == (META_IP & 0xffff))
		return drop(C_DROP_NO_ROUTE);
	struct rif_key own = { .vlan = 0 };
	struct route_key rk = { .prefixlen = 64, .router = in->router };
	__builtin_memcpy(rk.ip, &f->daddr, 4);
	struct route *r = bpf_map_lookup_elem(&routes, &rk);
	if (!r)
		return drop(C_DROP_NO_ROUTE);
	if (r->flags & ROUTE_EXTERNAL) {
		__u32 gw;
		__builtin_memcpy(&gw, r->nexthop, 4);
		return to_external(skb, ifindex, f, in, r->vlan, r->flags, gw);
	}
	__u32 vlan = r->vlan;
	own.vlan = vlan;
	__builtin_memcpy(own.ip, &f->daddr, 4);
	struct rif *self = bpf_map_lookup_elem(&rifs, &own);
	if (self && self->router == in->router && f->proto == IPPROTO_ICMP)
		return echo_reply(skb, f, in->mac);
	if (r->scope != in->scope)
		return drop(C_DROP_SCOPE);      /* Neutron routes within an address scope only */
	struct neigh_key nk = { .vlan = vlan };
	if (r->flags & ROUTE_VIA)
		__builtin_memcpy(nk.ip, r->nexthop, 4);
	else
		__builtin_memcpy(nk.ip, &f->daddr, 4);
	__u8 smac[6], dmac[6];
	__builtin_memcpy(smac, r->mac, 6);
	struct neigh *n = bpf_map_lookup_elem(&neighs, &nk);
	if (!n)
		return drop(C_DROP_NO_NEIGH);
	__builtin_memcpy(dmac, n->mac, 6);
	int big = too_big4(skb, r->flags, in);
	if (big >= 0)
		return big;
	if (!ttl_dec(skb)) {
		__u32 rip;
		__builtin_memcpy(&rip, in->ip, 4);
		return icmp_error(skb, ICMP_TIME_EXCEEDED, 0, 0, rip, in->mac);
	}
	if (set_macs(skb, dmac, smac))
		return drop(C_DROP_MALFORMED);
	count(C_FWD_ROUTED);
	return deliver(skb, vlan, dmac, KIND_IP, f, 1);
}

/* to_meta sends a port's request to 169.254.169.254:80 to the metadata
 * server, from the port's own metadata address. */
static __always_inline int to_meta(struct __sk_buff *skb, __u32 ifindex, __u32 addr, struct flow *f, const __u8 *dst)
{
	__u32 zero = 0;
	struct meta_cfg *m = bpf_map_lookup_elem(&meta, &zero);
	if (!m || !m->ifindex)
		return drop(C_DROP_NO_ROUTE);
	__u32 out = m->ifindex;
	__u8 smac[6], dmac[6];
	__builtin_memcpy(smac, m->mac, 6);
	__builtin_memcpy(dmac, m->peer, 6);
	struct meta_key k = { .port = f->sport };
	__builtin_memcpy(k.ip, &addr, 4);
	struct meta_val v = { .ifindex = ifindex };
	__builtin_memcpy(v.ip, &f->saddr, 4);
	__builtin_memcpy(v.mac, dst, 6);
	bpf_map_update_elem(&meta_ct, &k, &v, BPF_ANY);
	if (nat_addr(skb, 1, f->saddr, addr) || set_macs(skb, dmac, smac))
		return drop(C_DROP_MALFORMED);
	count(C_TO_META);
	return bpf_redirect(out, 0);
}

#define IP6_HOP_OFF (ETH_HLEN + offsetof(struct ipv6hdr, hop_limit))
#define ICMP6_TIME_EXCEEDED 3

struct icmp6_pseudo {
	__be32 len;
	__be32 nexthdr;
};

/* icmp6_csum is the ICMPv6 checksum of msg (len bytes, a multiple of 4)
 * from ip's addresses: over the pseudo-header too, as IPv4's ICMP is not. */
static __always_inline __u16 icmp6_csum(struct ipv6hdr *ip, void *msg, __u32 len)
{
	struct icmp6_pseudo ph = { .len = bpf_htonl(len), .nexthdr = bpf_htonl(IPPROTO_ICMPV6) };
	__s64 s = bpf_csum_diff(0, 0, (void *)&ip->saddr, 32, 0);
	s = bpf_csum_diff(0, 0, (void *)&ph, sizeof(ph), s);
	s = bpf_csum_diff(0, 0, msg, len, s);
	return csum_fold(s);
}

static __always_inline void ip6_header(struct ipv6hdr *ip, __u16 len, __u8 hops, const void *src, const void *dst)
{
	ip->version = 6;
	ip->payload_len = bpf_htons(len);
	ip->nexthdr = IPPROTO_ICMPV6;
	ip->hop_limit = hops;
	__builtin_memcpy(&ip->saddr, src, 16);
	__builtin_memcpy(&ip->daddr, dst, 16);
}

/* na_reply turns a neighbour solicitation for a router's address into the
 * advertisement "target is at mac", back out of the device it came in on. */
static __always_inline int na_reply(struct __sk_buff *skb, struct flow *f, const __u8 *mac, const __u8 *target)
{
	struct {
		struct ethhdr eth;
		struct ipv6hdr ip;
		__u8 type, code;
		__u16 csum;
		__be32 flags;
		__u8 target[16];
		__u8 opt, optlen;
		__u8 mac[6];
	} __attribute__((packed)) out = {};
	if (bpf_skb_load_bytes(skb, 6, out.eth.h_dest, 6))
		return drop(C_DROP_MALFORMED);
	__builtin_memcpy(out.eth.h_source, mac, 6);
	out.eth.h_proto = bpf_htons(ETH_P_IPV6);
	struct ipv6hdr ip = {};         /* built aligned, then copied in */
	ip6_header(&ip, 32, 255, target, f->saddr6);
	__builtin_memcpy((__u8 *)&out + ETH_HLEN, &ip, sizeof(ip));
	out.type = ICMP6_NA;
	out.flags = bpf_htonl(0xe0000000);      /* router, solicited, override */
	__builtin_memcpy(out.target, target, 16);
	out.opt = 2;                            /* target link-layer address */
	out.optlen = 1;
	__builtin_memcpy(out.mac, mac, 6);
	out.csum = icmp6_csum(&ip, &out.type, 32);
	if (bpf_skb_change_tail(skb, sizeof(out), 0) || bpf_skb_store_bytes(skb, 0, &out, sizeof(out), 0))
		return drop(C_DROP_MALFORMED);
	count(C_ARP_REPLY);
	return reflect(skb);
}

/* ra_reply answers a router solicitation with the network's router
 * advertisement: to the solicitor, or to all nodes when it asked from ::. */
static __always_inline int ra_reply(struct __sk_buff *skb, struct flow *f, struct ra *ra)
{
	struct {
		struct ethhdr eth;
		struct ipv6hdr ip;
		__u8 type, code;
		__u16 csum;
		__u8 hops, flags;
		__be16 lifetime;
		__be32 reachable, retrans;
		__u8 pi, pilen, plen, pflags;   /* prefix information */
		__be32 valid, preferred, reserved;
		__u8 prefix[16];
		__u8 sll, sllen;                /* source link-layer address */
		__u8 mac[6];
		__u8 mtuopt, mtulen;
		__u16 res;
		__be32 mtu;
	} __attribute__((packed)) out = {};
	/* ff02::1 and its MAC, stored one by one: constant arrays would go
	 * to .rodata, a map of its own. */
	__u32 all[4];
	all[0] = bpf_htonl(0xff020000);
	all[1] = all[2] = 0;
	all[3] = bpf_htonl(1);
	int multicast = !(f->saddr6[0] | f->saddr6[1] | f->saddr6[2] | f->saddr6[3]);
	if (multicast) {
		out.eth.h_dest[0] = out.eth.h_dest[1] = 0x33;
		out.eth.h_dest[5] = 1;
	} else if (bpf_skb_load_bytes(skb, 6, out.eth.h_dest, 6)) {
		return drop(C_DROP_MALFORMED);
	}
	__builtin_memcpy(out.eth.h_source, ra->mac, 6);
	out.eth.h_proto = bpf_htons(ETH_P_IPV6);
	__u32 len = ra->mtu ? 64 : 56;          /* without the MTU option when there is none */
	struct ipv6hdr ip = {};
	ip6_header(&ip, len, 255, ra->lla, multicast ? (void *)all : (void *)f->saddr6);
	__builtin_memcpy((__u8 *)&out + ETH_HLEN, &ip, sizeof(ip));
	out.type = ICMP6_RA;
	out.hops = 64;
	out.flags = ra->flags;
	out.lifetime = bpf_htons(1800);
	out.pi = 3;
	out.pilen = 4;
	out.plen = ra->plen;
	out.pflags = ra->pflags;
	out.valid = bpf_htonl(86400);
	out.preferred = bpf_htonl(14400);
	__builtin_memcpy(out.prefix, ra->prefix, 16);
	out.sll = 1;
	out.sllen = 1;
	__builtin_memcpy(out.mac, ra->mac, 6);
	out.mtuopt = 5;
	out.mtulen = 1;
	out.mtu = bpf_htonl(ra->mtu);
	out.csum = icmp6_csum(&ip, &out.type, len);
	if (bpf_skb_change_tail(skb, ETH_HLEN + 40 + len, 0) ||
	    bpf_skb_store_bytes(skb, 0, &out, ETH_HLEN + 40 + 56, 0))
		return drop(C_DROP_MALFORMED);
	if (len == 64 && bpf_skb_store_bytes(skb, ETH_HLEN + 40 + 56, &out.mtuopt, 8, 0))
		return drop(C_DROP_MALFORMED);
	count(C_ICMP_REPLY);
	return reflect(skb);
}

/* echo6_reply answers a ping to a router's own IPv6 address; one in
 * fragments fragment by fragment, as echo_reply does (the fragment header
 * kept, the first fragment's type and checksum changed). */
static __always_inline int echo6_reply(struct __sk_buff *skb, struct flow *f, __u32 l4, const __u8 *mac)
{
	if (f->proto != IPPROTO_ICMPV6 || f->frag == FRAG_ORPHAN || (f->rport >> 8) != ICMP6_ECHO)
		return drop(C_DROP_NO_NEIGH);
	__u8 src[6];
	if (bpf_skb_load_bytes(skb, 6, src, 6) || set_macs(skb, src, mac))
		return drop(C_DROP_MALFORMED);
	/* Swapping the addresses leaves the pseudo-header's sum as it was. */
	if (bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, saddr), f->daddr6, 16, 0) ||
	    bpf_skb_store_bytes(skb, ETH_HLEN + offsetof(struct ipv6hdr, daddr), f->saddr6, 16, 0))
		return drop(C_DROP_MALFORMED);
	if (f->frag == FRAG_LATER) {
		count(C_ICMP_REPLY);
		return reflect(skb);
	}
	__u16 oldt = bpf_htons(ICMP6_ECHO << 8), newt = bpf_htons(ICMP6_ECHOREPLY << 8);
	__u8 typ = ICMP6_ECHOREPLY;
	if (bpf_l4_csum_replace(skb, l4 + 2, oldt, newt, 2) || bpf_skb_store_bytes(skb, l4, &typ, 1, 0))
		return drop(C_DROP_MALFORMED);
	count(C_ICMP_REPLY);
	return reflect(skb);
}

/* icmp6_error answers the IPv6 packet in skb with an ICMPv6 error of type
 * typ (param: packet too big's MTU) from address from (a router
 * interface's) and the MAC mac, quoting its first 48 bytes, back out of
 * the device it came in on. */
static __always_inline int icmp6_error(struct __sk_buff *skb, struct flow *f, __u8 typ, __u8 code,
				       __u32 param, const __u8 *from, const __u8 *mac)
{
	struct {
		struct ethhdr eth;
		struct ipv6hdr ip;
		__u8 type, code;
		__u16 csum;
		__be32 param;           /* packet too big: the MTU */
		__u8 quote[48];
	} __attribute__((packed)) out = {};
	__u8 t = icmp6_type(f);
	if (f->proto == IPPROTO_ICMPV6 && t < ICMP6_ECHO)
		return drop(C_DROP_NO_ROUTE);   /* never an error about an error (RFC 4443 2.4) */
	if (bpf_skb_load_bytes(skb, ETH_HLEN, out.quote, sizeof(out.quote)) ||
	    bpf_skb_load_bytes(skb, 6, out.eth.h_dest, 6))
		return drop(C_DROP_MALFORMED);
	__builtin_memcpy(out.eth.h_source, mac, 6);
	out.eth.h_proto = bpf_htons(ETH_P_IPV6);
	struct ipv6hdr ip = {};
	ip6_header(&ip, 8 + sizeof(out.quote), 64, from, f->saddr6);
	__builtin_memcpy((__u8 *)&out + ETH_HLEN, &ip, sizeof(ip));
	out.type = typ;
	out.code = code;
	out.param = bpf_htonl(param);
	out.csum = icmp6_csum(&ip, &out.type, 8 + sizeof(out.quote));
	if (bpf_skb_change_tail(skb, sizeof(out), 0) || bpf_skb_store_bytes(skb, 0, &out, sizeof(out), 0))
		return drop(C_DROP_MALFORMED);
	count(C_ICMP_REPLY);
	return reflect(skb);
}

#include "ext6.h"

/* route6 forwards an IPv6 packet a port sent to its router's MAC to a port
 * of another of the router's networks, here or by the uplink, or out of
 * its gateway (to_external6), the hop limit taken down. The port's egress
 * groups have let it through. */
static __always_inline int route6(struct __sk_buff *skb, struct rif6 *in, struct flow *f, __u32 l4)
{
	if (link_local(f->daddr6))
		return drop(C_DROP_NO_ROUTE);   /* never routed (RFC 4291) */
	struct route6_key rk = { .prefixlen = 32 + 128, .router = in->router };
	__builtin_memcpy(rk.ip, f->daddr6, 16);
	struct route6 *r = bpf_map_lookup_elem(&routes6, &rk);
	if (!r)
		return drop(C_DROP_NO_ROUTE);
	if (r->flags & ROUTE_EXTERNAL) {
		if (r->scope != in->scope)
			return drop(C_DROP_SCOPE);      /* no NAT for IPv6 to cross scopes by */
		return to_external6(skb, in, f, r->vlan);
	}
	__u32 vlan = r->vlan;
	struct rif6_key own = { .vlan = vlan };
	__builtin_memcpy(own.ip, f->daddr6, 16);
	struct rif6 *self = bpf_map_lookup_elem(&rifs6, &own);
	if (self && self->router == in->router && f->proto == IPPROTO_ICMPV6)
		return echo6_reply(skb, f, l4, in->mac);
	if (r->scope != in->scope)
		return drop(C_DROP_SCOPE);
	struct neigh6_key nk = { .vlan = vlan };
	__builtin_memcpy(nk.ip, (r->flags & ROUTE_VIA) ? (void *)r->nexthop : (void *)f->daddr6, 16);
	__u8 smac[6], dmac[6];
	__builtin_memcpy(smac, r->mac, 6);
	struct neigh *n = bpf_map_lookup_elem(&neighs6, &nk);
	if (!n)
		return drop(C_DROP_NO_NEIGH);
	__builtin_memcpy(dmac, n->mac, 6);
	__u8 hops;
	if (bpf_skb_load_bytes(skb, IP6_HOP_OFF, &hops, 1))
		return drop(C_DROP_MALFORMED);
	__u32 mtu = r->flags >> ROUTE6_MTU_SHIFT;
	if (hops <= 1 || (mtu && !skb->gso_size && skb->len - ETH_HLEN > mtu)) {
		/* Too big for the next network: nothing on an IPv6 path
		 * fragments, so the sender learns its MTU. A GSO packet's
		 * segments are the sender's MSS, which the handshake took down
		 * to the smaller side's. */
		__u8 from[16], rmac[6];
		__builtin_memcpy(from, in->ip, 16);
		__builtin_memcpy(rmac, in->mac, 6);
		if (hops <= 1)
			return icmp6_error(skb, f, ICMP6_TIME_EXCEEDED, 0, 0, from, rmac);
		return icmp6_error(skb, f, ICMP6_PACKET_TOO_BIG, 0, mtu, from, rmac);
	}
	hops--;
	if (bpf_skb_store_bytes(skb, IP6_HOP_OFF, &hops, 1, 0) || set_macs(skb, dmac, smac))
		return drop(C_DROP_MALFORMED);
	count(C_FWD_ROUTED);
	return deliver(skb, vlan, dmac, KIND_IP, f, 1);
}

/* mcast6_kind is how an IPv6 multicast floods: neighbour discovery and
 * listener queries (and a link-local router's advertisements) to every
 * port, the rest only to ports without port security. */
static __always_inline int mcast6_kind(struct flow *f)
{
	__u8 t = icmp6_type(f);
	if (t == ICMP6_NS || t == ICMP6_NA || t == ICMP6_MLD_QUERY || (t == ICMP6_RA && link_local(f->saddr6)))
		return KIND_ARP;
	return KIND_OTHER;
}

/* port_in6 is port_in for IPv6, switched but not routed. A secured port
 * sends only from its addresses (the :: of duplicate address detection
 * too), advertises only its own addresses as neighbour, never advertises
 * a router or answers DHCPv6, and sends multicast only for neighbour
 * discovery, listener reports and DHCPv6: Neutron's anti-spoofing. */
static __always_inline int port_in6(struct __sk_buff *skb, struct port *p, __u32 ifindex, __u32 vlan,
				    const __u8 *dst, struct flow *f, __u32 l4)
{
	int secure = p->flags & PORT_SECURITY;
	__u8 t = icmp6_type(f);
	int mcast = dst[0] & 1;
	if (secure) {
		if (t == ICMP6_RA || (f->proto == IPPROTO_UDP && f->sport == DHCP6_SERVER))
			return drop(C_DROP_DHCP_SERVER);
		if (!(f->saddr6[0] | f->saddr6[1] | f->saddr6[2] | f->saddr6[3])) {
			/* ::, only to ff02::/16 for duplicate address detection,
			 * and to solicit routers before an address is ready */
			if ((f->daddr6[0] & bpf_htonl(0xffff0000)) != bpf_htonl(0xff020000) ||
			    (t != ICMP6_NS && t != ICMP6_MLD_REPORT && t != ICMP6_MLD2_REPORT && t != ICMP6_RS))
				return drop(C_DROP_SPOOF_IP);
		} else if (!ip6_allowed(ifindex, f->saddr6)) {
			return drop(C_DROP_SPOOF_IP);
		}
		if (t == ICMP6_NA) {
			__u32 target[4];
			if (bpf_skb_load_bytes(skb, l4 + 8, target, 16))
				return drop(C_DROP_MALFORMED);
			if (!ip6_allowed(ifindex, target))
				return drop(C_DROP_SPOOF_IP);
		}
	}
	if ((p->flags & PORT_DHCP6) && f->proto == IPPROTO_UDP && f->sport == DHCP6_CLIENT && f->dport == DHCP6_SERVER) {
		count(C_TO_HOST);       /* the node's DHCPv6 server answers */
		return TC_ACT_OK;
	}
	if (t == ICMP6_NS) {
		/* A router's addresses are answered here, on every node alike. */
		struct rif6_key rk = { .vlan = vlan };
		if (bpf_skb_load_bytes(skb, l4 + 8, rk.ip, 16))
			return drop(C_DROP_MALFORMED);
		struct rif6 *r = bpf_map_lookup_elem(&rifs6, &rk);
		if (r && (f->saddr6[0] | f->saddr6[1] | f->saddr6[2] | f->saddr6[3])) {
			__u8 m[6];
			__builtin_memcpy(m, r->mac, 6);
			return na_reply(skb, f, m, rk.ip);
		}
	}
	if (t == ICMP6_RS) {
		struct ra *ra = bpf_map_lookup_elem(&ras, &vlan);
		if (ra) {
			struct ra a = *ra;
			return ra_reply(skb, f, &a);
		}
	}
	if (mcast) {
		int kind = mcast6_kind(f);
		if (kind == KIND_OTHER && secure && t != ICMP6_MLD_REPORT && t != ICMP6_MLD2_REPORT &&
		    t != ICMP6_MLD_DONE && t != ICMP6_RS && !fixed6(DIR_OUT, f))
			return drop(C_DROP_BROADCAST);
		return flood(skb, vlan, ifindex, kind, 1);
	}
	if (!sg_allow(p, ifindex, DIR_OUT, f))
		return drop(C_DROP_SG_OUT);
	struct fdb_key rk = { .vlan = vlan };
	__builtin_memcpy(rk.mac, dst, 6);
	struct rif6 *r = bpf_map_lookup_elem(&rmacs6, &rk);
	if (r) {
		struct rif6 in = *r;
		return route6(skb, &in, f, l4);
	}
	return deliver(skb, vlan, dst, KIND_IP, f, 1);
}

SEC("tc")
int port_in(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	if (!trunk_in(skb, &ifindex))
		return drop(C_DROP_NO_PORT);
	struct port *p = bpf_map_lookup_elem(&ports, &ifindex);
	if (!p)
		return drop(C_DROP_NO_PORT);
	if (!qos_out(skb, p, ifindex))
		return drop(C_DROP_QOS);
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
		if (arp->op == bpf_htons(ARP_REQUEST)) {
			/* The router's gateway addresses are answered here, on
			 * every node alike, and never flooded. */
			__u32 tpa;
			__builtin_memcpy(&tpa, arp->tpa, 4);
			struct rif_key rk = { .vlan = vlan };
			__builtin_memcpy(rk.ip, &tpa, 4);
			struct rif *r = bpf_map_lookup_elem(&rifs, &rk);
			if (r) {
				__u8 m[6];
				__builtin_memcpy(m, r->mac, 6);
				return arp_reply(skb, m, tpa);
			}
			if (tpa == META_IP && bpf_map_lookup_elem(&metas, &ifindex)) {
				__u32 zero = 0;
				struct meta_cfg *mc = bpf_map_lookup_elem(&meta, &zero);
				if (mc && mc->ifindex) {
					__u8 m[6];
					__builtin_memcpy(m, mc->mac, 6);
					return arp_reply(skb, m, tpa);
				}
			}
		}
		if (dst[0] & 1)
			return flood(skb, vlan, ifindex, KIND_ARP, 1);
		return deliver(skb, vlan, dst, KIND_ARP, 0, 1);
	}

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct flow f;
		if (!parse_ipv4(skb, &f, ifindex))
			return drop(C_DROP_MALFORMED);
		if (f.dhcp == 1) {          /* the node's DHCP server answers */
			if (TRUNK_SUB(ifindex))
				return drop(C_DROP_NO_PORT);    /* answered from the tap: trunk.h */
			count(C_TO_HOST);
			return TC_ACT_OK;
		}
		if (secure) {
			if (f.dhcp == 2)
				return drop(C_DROP_DHCP_SERVER);
			if (!ip_allowed(p, ifindex, f.saddr))
				return drop(C_DROP_SPOOF_IP);
		}
		if (f.daddr == META_IP && f.proto == IPPROTO_TCP && f.dport == 80) {
			__u32 *ma = bpf_map_lookup_elem(&metas, &ifindex);
			if (ma) {
				__u32 addr = *ma;
				if (!sg_allow(p, ifindex, DIR_OUT, &f))
					return drop(C_DROP_SG_OUT);
				return to_meta(skb, ifindex, addr, &f, dst);
			}
		}
		if (dst[0] & 1) {
			if (secure)
				return drop(C_DROP_BROADCAST);
			return flood(skb, vlan, ifindex, KIND_OTHER, 1);
		}
		if (!sg_allow(p, ifindex, DIR_OUT, &f))
			return drop(C_DROP_SG_OUT);
		struct fdb_key rk = { .vlan = vlan };
		__builtin_memcpy(rk.mac, dst, 6);
		struct rif *r = bpf_map_lookup_elem(&rmacs, &rk);
		if (r) {
			struct rif in = *r;
			return route(skb, ifindex, &in, &f);
		}
		return deliver(skb, vlan, dst, KIND_IP, &f, 1);
	}

	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct flow f = {};
		__u32 l4 = parse_ipv6(skb, &f, ifindex);
		if (l4)
			return port_in6(skb, p, ifindex, vlan, dst, &f, l4);
		if (secure)
			return drop(C_DROP_MALFORMED);
	}

	/* Other ethertypes are not filtered: only ports without port
	 * security pass them, to ports without it. */
	if (secure)
		return drop(C_DROP_ETHERTYPE);
	if (dst[0] & 1)
		return flood(skb, vlan, ifindex, KIND_OTHER, 1);
	return deliver(skb, vlan, dst, KIND_OTHER, 0, 1);
}

/* snat_in takes a reply to a router's gateway address back to the port
 * whose flow was given its port. */
static __always_inline int snat_in(struct __sk_buff *skb, __u32 ext, struct flow *f)
{
	if (f->rel)
		return snat_rel_in(skb, ext, f);
	if (!snat_proto(f) && !(f->proto == IPPROTO_ICMP && (f->rport >> 8) == ICMP_ECHOREPLY))
		return drop(C_DROP_NO_ROUTE);
	__u32 gw = f->daddr;
	struct snat_val *v = snat_live(ext, 1, f->proto, gw, f->dport, f->saddr, f->sport);
	if (!v)
		return drop(C_DROP_NO_ROUTE);   /* nothing from inside asked for it */
	__u64 now = bpf_ktime_get_coarse_ns();
	if (now - v->seen > CT_REFRESH)
		v->seen = now;
	__u32 to = v->ifindex, fixed;
	__u16 port = v->port;
	__u8 rmac[6];
	__builtin_memcpy(&fixed, v->addr, 4);
	__builtin_memcpy(rmac, v->mac, 6);
	struct port *q = bpf_map_lookup_elem(&ports, &to);
	if (!q)
		return drop(C_DROP_NO_PORT);
	if (!ttl_dec(skb))
		return drop(C_DROP_NO_ROUTE);
	if (port != f->dport && nat_port(skb, 0, f->proto, f->dport, port))
		return drop(C_DROP_MALFORMED);
	if (nat_addr(skb, 0, f->daddr, fixed))
		return drop(C_DROP_MALFORMED);
	f->daddr = fixed;
	f->dport = port;
	if (f->proto == IPPROTO_ICMP)
		f->sport = port;
	if (!sg_allow(q, to, DIR_IN, f))
		return drop(C_DROP_SG_IN);
	if (set_macs(skb, q->mac, rmac))
		return drop(C_DROP_MALFORMED);
	meter_in(ext, (const __u8 *)&gw, fixed, f->saddr, skb->len - ETH_HLEN);
	count(C_NAT_IN);
	return to_port(skb, q, to);
}

/* ext_rx takes what arrives from external network key (e), untagged:
 * TC_ACT_OK when it is none of the dataplane's business. */
static __always_inline int ext_rx(struct __sk_buff *skb, __u32 key, struct ext *e)
{
	__u32 ifindex = key;
	__u32 evlan = e->vlan;
	__u8 emac[6];
	__u32 net, mask;
	__builtin_memcpy(emac, e->mac, 6);
	__builtin_memcpy(&net, e->net, 4);
	__builtin_memcpy(&mask, e->mask, 4);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	__u8 dst[6];
	__builtin_memcpy(dst, eth->h_dest, 6);

	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct arp_eth *arp = (void *)(eth + 1);
		if ((void *)(arp + 1) > end)
			return TC_ACT_OK;
		__u32 spa, tpa;
		__builtin_memcpy(&spa, arp->spa, 4);
		__builtin_memcpy(&tpa, arp->tpa, 4);
		if (spa && (spa & mask) == net) {
			/* Learn the neighbour (the gateway above all) from
			 * whatever ARP it sends. */
			struct neigh_key nk = { .vlan = ifindex };
			__builtin_memcpy(nk.ip, &spa, 4);
			struct neigh nb = {};
			__builtin_memcpy(nb.mac, arp->sha, 6);
			bpf_map_update_elem(&ext_neighs, &nk, &nb, BPF_ANY);
		}
		if (arp->op == bpf_htons(ARP_REQUEST)) {
			struct nat_key k = { .ifindex = ifindex };
			__builtin_memcpy(k.ip, &tpa, 4);
			struct nat *fn = bpf_map_lookup_elem(&fip_in, &k);
			if (fn && !(fn->flags & NAT_ROUTED))
				return arp_reply_vlan(skb, emac, tpa, evlan);
		}
		return TC_ACT_OK;
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return ext6_rx(skb, key, e);
	if (eth->h_proto != bpf_htons(ETH_P_IP) || !mac_eq(dst, emac))
		return TC_ACT_OK;
	struct flow f;
	if (!parse_ipv4(skb, &f, key))
		return TC_ACT_OK;
	struct nat_key k = { .ifindex = ifindex };
	__builtin_memcpy(k.ip, &f.daddr, 4);
	struct nat *n = bpf_map_lookup_elem(&fip_in, &k);
	if (!n)
		return TC_ACT_OK;       /* not ours: the node's own */
	if (!n->ifindex && !(n = pf_dnat(skb, ifindex, &f)))  /* portfwd.h: a forwarded port */
		return snat_in(skb, ifindex, &f);
	__u32 to = n->ifindex, fixed;
	__u8 rmac[6];
	__builtin_memcpy(&fixed, n->ip, 4);
	__builtin_memcpy(rmac, n->mac, 6);
	struct port *q = bpf_map_lookup_elem(&ports, &to);
	if (!q)
		return drop(C_DROP_NO_PORT);
	if (!ttl_dec(skb))
		return drop(C_DROP_NO_ROUTE);
	if (nat_addr(skb, 0, f.daddr, fixed))
		return drop(C_DROP_MALFORMED);
	rel4_in(skb, &f, f.daddr, fixed, 0, 0);
	f.daddr = fixed;
	if (!sg_allow(q, to, DIR_IN, &f))
		return drop(C_DROP_SG_IN);
	if (set_macs(skb, q->mac, rmac))
		return drop(C_DROP_MALFORMED);
	meter_in(ifindex, k.ip, fixed, f.saddr, skb->len - ETH_HLEN);
	count(C_NAT_IN);
	return to_port(skb, q, to);
}

SEC("tc")
int ext_in(struct __sk_buff *skb)
{
	__u32 key = skb->ifindex;
	struct ext *e = bpf_map_lookup_elem(&exts, &key);
	if (!e)
		return TC_ACT_OK;
	return ext_rx(skb, key, e);
}

SEC("tc")
int meta_in(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct meta_cfg *m = bpf_map_lookup_elem(&meta, &zero);
	if (!m || m->ifindex != skb->ifindex)
		return TC_ACT_OK;
	__u8 mmac[6];
	__builtin_memcpy(mmac, m->mac, 6);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return TC_ACT_OK;
	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		/* The server asks for the ports' metadata addresses. */
		struct arp_eth *arp = (void *)(eth + 1);
		if ((void *)(arp + 1) > end)
			return TC_ACT_OK;
		__u32 tpa;
		__builtin_memcpy(&tpa, arp->tpa, 4);
		if (arp->op == bpf_htons(ARP_REQUEST) && (tpa & 0xffff) == (META_IP & 0xffff) && tpa != META_IP)
			return arp_reply(skb, mmac, tpa);
		return TC_ACT_OK;
	}
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	struct flow f;
	if (!parse_ipv4(skb, &f, skb->ifindex) || f.saddr != META_IP || f.proto != IPPROTO_TCP || f.sport != 80)
		return TC_ACT_OK;
	struct meta_key k = { .port = f.dport };
	__builtin_memcpy(k.ip, &f.daddr, 4);
	struct meta_val *v = bpf_map_lookup_elem(&meta_ct, &k);
	if (!v)
		return drop(C_DROP_NO_ROUTE);
	__u32 to = v->ifindex, orig;
	__u8 smac[6];
	__builtin_memcpy(&orig, v->ip, 4);
	__builtin_memcpy(smac, v->mac, 6);
	struct port *q = bpf_map_lookup_elem(&ports, &to);
	if (!q)
		return drop(C_DROP_NO_PORT);
	if (nat_addr(skb, 0, f.daddr, orig))
		return drop(C_DROP_MALFORMED);
	f.daddr = orig;
	if (!sg_allow(q, to, DIR_IN, &f))
		return drop(C_DROP_SG_IN);
	if (set_macs(skb, q->mac, smac))
		return drop(C_DROP_MALFORMED);
	count(C_FROM_META);
	return to_port(skb, q, to);
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
		if ((void *)(tag + 2) > end || tag[0] != bpf_htons(ETH_P_8021Q)) {
			/* Untagged: a flat external network on the uplink, or
			 * the node's own traffic. */
			__u32 key = skb->ifindex;
			struct ext *e = bpf_map_lookup_elem(&exts, &key);
			if (e)
				return ext_rx(skb, key, e);
			return TC_ACT_OK;
		}
		vlan = bpf_ntohs(tag[1]) & 0x0fff;
	}
	__u32 xkey = (vlan << EXT_VLAN_SHIFT) | skb->ifindex;
	struct ext *xe = bpf_map_lookup_elem(&exts, &xkey);
	if (xe) {
		/* An external network's VLAN: untagged for ext_rx, and tagged
		 * again for the stack when it is not the dataplane's. */
		if (bpf_skb_vlan_pop(skb))
			return drop(C_DROP_MALFORMED);
		int r = ext_rx(skb, xkey, xe);
		if (r == TC_ACT_OK && bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), vlan))
			return drop(C_DROP_MALFORMED);
		return r;
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
		if (!parse_ipv4(skb, &f, (vlan << EXT_VLAN_SHIFT) | skb->ifindex))
			return drop(C_DROP_MALFORMED);
		if (dst[0] & 1)
			return drop(C_DROP_BROADCAST);
		return deliver(skb, vlan, dst, KIND_IP, &f, 0);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct flow f = {};
		if (parse_ipv6(skb, &f, (vlan << EXT_VLAN_SHIFT) | skb->ifindex)) {
			if (dst[0] & 1)
				return flood(skb, vlan, 0, mcast6_kind(&f), 0);
			return deliver(skb, vlan, dst, KIND_IP, &f, 0);
		}
	}
	if (dst[0] & 1)
		return flood(skb, vlan, 0, KIND_OTHER, 0);
	return deliver(skb, vlan, dst, KIND_OTHER, 0, 0);
}

char __license[] SEC("license") = "Dual MIT/GPL";
