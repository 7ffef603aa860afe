/* Trunks (Neutron's trunk extension), included by dataplane.c before the
 * delivery helpers.
 *
 * A trunk's parent port's device carries, besides the parent's own
 * untagged frames, its subports' frames tagged with each subport's VLAN
 * id. A subport has no device: it is a port of its own in the ports map
 * (its network's VLAN, MAC, addresses, security policy, QoS) under the
 * key TRUNK_KEY(parent's ifindex, VLAN id), which no device's ifindex and
 * no external network's key (EXT_VLAN_SHIFT, the same shift, with the
 * uplink's or an external device's ifindex) can equal. Everything keyed
 * by a port (fdb, nets, addrs, macs, conntrack, metas, qos) takes that
 * key, so the subport's own MAC, addresses and security groups apply.
 *
 *   trunk_in   at the top of port_in: a tagged frame is its subport's,
 *              tag popped, or dropped when the parent has no subport of
 *              that VLAN id (drop_no_port); untagged frames are the
 *              parent's. It notes in trunk_from which port the frame is.
 *   to_trunk   in to_port: a frame for a subport leaves on the parent's
 *              device tagged with its VLAN id.
 *   clone_to   in flood: the same for a flood's copies.
 *   reflect    for the answers port_in makes itself (ARP, ping and
 *              neighbour advertisements for routers, ICMP errors): back
 *              out of the device they came in on, tagged again when they
 *              came from a subport.
 *
 * A subport's DHCP request is dropped here: the node's packet socket on
 * the parent's device took it before tc did and answers it tagged
 * (dataplane/trunk_dhcp.go). */

#define TRUNK_SHIFT 20
#define TRUNK_IFMASK ((1U << TRUNK_SHIFT) - 1)
#define TRUNK_KEY(parent, vid) (((__u32)(vid) << TRUNK_SHIFT) | (parent))
#define TRUNK_SUB(key) ((key) >> TRUNK_SHIFT)

/* trunk_from: the port key of the frame port_in handles on this CPU (a
 * tc program runs to its end on one CPU). Only port_in runs on ports'
 * devices and it sets the slot first, so reflect trusts it only for the
 * device it names. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} trunk_from SEC(".maps");

/* trunk_in sorts a frame port_in took on device *ifindex: untagged, it
 * is the device's port's; tagged, it is the subport's of that VLAN id,
 * and *ifindex becomes the subport's key. 0: a tag no subport has. */
static __always_inline int trunk_in(struct __sk_buff *skb, __u32 *ifindex)
{
	__u32 vid = 0, zero = 0;
	int tagged = 0;
	if (skb->vlan_present) {
		vid = skb->vlan_tci & 0x0fff;
		tagged = 1;
	} else {
		/* BPF_PROG_TEST_RUN, or a driver that leaves the tag in */
		void *data = (void *)(long)skb->data;
		void *end = (void *)(long)skb->data_end;
		__be16 *tag = data + 12;
		if ((void *)(tag + 2) <= end && tag[0] == bpf_htons(ETH_P_8021Q)) {
			vid = bpf_ntohs(tag[1]) & 0x0fff;
			tagged = 1;
		}
	}
	if (tagged) {
		__u32 key = TRUNK_KEY(*ifindex, vid);
		if (vid == 0 || *ifindex > TRUNK_IFMASK || !bpf_map_lookup_elem(&ports, &key))
			return 0;
		if (bpf_skb_vlan_pop(skb))
			return 0;
		*ifindex = key;
	}
	__u32 *from = bpf_map_lookup_elem(&trunk_from, &zero);
	if (from)
		*from = *ifindex;
	return 1;
}

/* to_trunk sends a frame to subport key q: tagged, out of its parent. */
static __always_inline int to_trunk(struct __sk_buff *skb, struct port *q, __u32 key)
{
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), TRUNK_SUB(key)))
		return drop(C_DROP_MALFORMED);
	count(C_FWD_LOCAL);
	if (q->flags & PORT_PEER)
		return bpf_redirect_peer(key & TRUNK_IFMASK, 0);
	return bpf_redirect(key & TRUNK_IFMASK, 0);
}

/* clone_to sends a flood's copy to port key o: a device, or a subport's
 * parent with the subport's tag. */
static __always_inline void clone_to(struct __sk_buff *skb, __u32 o)
{
	if (!TRUNK_SUB(o)) {
		bpf_clone_redirect(skb, o, 0);
		return;
	}
	if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), TRUNK_SUB(o)))
		return;
	bpf_clone_redirect(skb, o & TRUNK_IFMASK, 0);
	bpf_skb_vlan_pop(skb);
}

/* reflect sends an answer port_in made back out of the device the
 * question came in on, with the subport's tag when a subport asked. */
static __always_inline int reflect(struct __sk_buff *skb)
{
	__u32 zero = 0;
	/* keeps clang from reading skb->ifindex through a pointer it moved
	 * into the context, which the verifier refuses */
	asm volatile("" : "+r"(skb));
	__u32 dev = skb->ifindex;
	__u32 *from = bpf_map_lookup_elem(&trunk_from, &zero);
	if (from && TRUNK_SUB(*from) && (*from & TRUNK_IFMASK) == dev) {
		if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), TRUNK_SUB(*from)))
			return drop(C_DROP_MALFORMED);
	}
	return bpf_redirect(dev, 0);
}
