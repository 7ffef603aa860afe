/* Floating IP port forwarding (Neutron's floating-ip-port-forwarding),
 * included by dataplane.c before to_external.
 *
 * A floating IP with port forwardings is associated with no port: its
 * address is in fip_in with ifindex 0, as a router's gateway address is
 * (ARP answered, what comes in looks further), and each forwarding is an
 * entry of pf_in, keyed by the external network's key, the floating IP,
 * the protocol and the external port, giving the port, its internal
 * address and port, and the router's MAC on the port's network. ext_rx
 * hands what arrives for such an address to pf_rx, which DNATs a
 * forwarded TCP or UDP port to the internal address and port (after the
 * port's ingress security groups, as a floating IP's traffic) and leaves
 * everything else to snat_in, which drops what no flow of the router
 * asked for: ports not forwarded are not.
 *
 * pf_out, keyed by the port's ifindex, the internal address, protocol and
 * internal port, gives the external network's key, the floating IP and
 * the external port: to_external sends what the internal socket sends out
 * of the router from the floating IP's address and external port, as the
 * replies of a forwarded flow must come. Like floating IPs, forwarding is
 * 1:1 on (address, port), so it needs no state of its own; the port's
 * security groups track the flow by its internal address. Ports in host
 * order. The Go side is dataplane/portfwd.go. */

struct pf_key {
	__u32 id;               /* pf_in: the external network's key; pf_out: the port's ifindex */
	__u8 proto;
	__u8 pad;
	__u16 port;             /* pf_in: the external port; pf_out: the internal port */
	__u8 ip[4];             /* pf_in: the floating IP; pf_out: the internal address */
};

/* It begins as struct nat does, so that the floating IP paths take it
 * as theirs with no copy (port_in's stack is nearly full). */
struct pf_val {
	__u32 ifindex;          /* pf_in: the port; pf_out: the external network's key */
	__u8 ip[4];             /* pf_in: the internal address; pf_out: the floating IP */
	__u8 mac[6];            /* pf_in: the router's MAC on the port's network */
	__u8 flags;             /* 0, as struct nat's */
	__u8 pad;
	__u16 port;             /* pf_in: the internal port; pf_out: the external port */
	__u16 pad2;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pf_key);
	__type(value, struct pf_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct pf_key);
	__type(value, struct pf_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pf_out SEC(".maps");

static __always_inline int pf_proto(struct flow *f)
{
	return (f->proto == IPPROTO_TCP || f->proto == IPPROTO_UDP) && !f->rel && f->dport;
}

/* pf_find is map's forwarding of the socket (ip, proto, port) on id: a
 * port's ifindex in pf_out, an external network's key in pf_in. */
static __always_inline struct pf_val *pf_find(void *map, __u32 id, __u8 proto, const void *ip, __u16 port)
{
	struct pf_key k = { .id = id, .proto = proto, .port = port };
	__builtin_memcpy(k.ip, ip, 4);
	return bpf_map_lookup_elem(map, &k);
}

/* pf_nat is the floating IP (as a struct nat for to_external) and, in
 * *port, the external port of what port ifindex sends from a forwarded
 * internal socket; 0 when it is none. */
static __always_inline struct nat *pf_nat(__u32 ifindex, struct flow *f, __u16 *port)
{
	if (!pf_proto(f))
		return 0;
	struct pf_val *v = pf_find(&pf_out, ifindex, f->proto, &f->saddr, f->sport);
	if (!v)
		return 0;
	*port = v->port;
	return (struct nat *)v;
}

/* pf_dnat is, for what arrives from external network ext for an address
 * of fip_in's with no port of its own, the forwarding of its protocol and
 * destination port (as a struct nat for ext_rx's floating IP path) with
 * the destination port already rewritten to the internal one; 0 when the
 * port is not forwarded (snat_in's then). */
static __always_inline struct nat *pf_dnat(struct __sk_buff *skb, __u32 ext, struct flow *f)
{
	if (!pf_proto(f))
		return 0;
	struct pf_val *v = pf_find(&pf_in, ext, f->proto, &f->daddr, f->dport);
	if (!v)
		return 0;
	__u16 port = v->port;
	if (port != f->dport && nat_port(skb, 0, f->proto, f->dport, port))
		return 0;
	f->dport = port;
	f->rport = port;
	return (struct nat *)v;
}
