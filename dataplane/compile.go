package dataplane

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"sort"
	"strings"

	"github.com/rackstack/rackstack/bpf"
)

// Port is one port this node hosts, as the dataplane enforces it.
type Port struct {
	ID     string
	Device string // interface name on this node: a tap or the host end of a veth
	VLAN   uint16
	MAC    net.HardwareAddr
	// Addrs are the source addresses the port may use: its fixed IPs (/32,
	// /128) and its allowed address pairs. The IPv6 link-local addresses
	// of its MACs (fe80::/64 and the EUI-64 of the MAC) are allowed
	// without being listed.
	Addrs []netip.Prefix
	// MACs are other source MACs it may use (allowed address pairs).
	MACs     []net.HardwareAddr
	Security bool     // port_security_enabled
	Groups   []string // security group ids
	// Stateless says the groups' rules judge every packet without
	// connection tracking (Neutron's stateful: false): a reply gets
	// through only by a rule of its own.
	Stateless bool
	DHCP      *Lease  // nil: no DHCP answers for this port
	DHCP6     *Lease6 // nil: no DHCPv6 answers for this port
	// MetaAddr is the link-local source address (169.254.0.0/16) the
	// dataplane rewrites this port's requests to 169.254.169.254:80 to, so
	// that the metadata server behind Metadata.Device knows the port by the
	// packet's source and never by anything the guest claims. Distinct per
	// port; zero: no metadata for the port.
	MetaAddr netip.Addr
	// QoS is the port's QoS policy as enforced; nil: none.
	QoS *QoS
	// TrunkVID, when set, makes the port a trunk's subport: it has no
	// device of its own, its frames ride on Device (its parent's) tagged
	// with this VLAN id (trunk.go); DHCPv4 only, answered by
	// trunk_dhcp.go.
	TrunkVID uint16
}

// Lease is what the node's DHCP server tells the port.
type Lease struct {
	IP       netip.Prefix // address and subnet mask
	Gateway  netip.Addr   // zero: none
	DNS      []netip.Addr
	Routes   []Route
	Hostname string
	MTU      uint16
	// Extra are more options, as the port's extra DHCP options give them;
	// one replaces the lease's own option of its code.
	Extra []DHCPOption
	// NextServer and BootFile fill BOOTP's siaddr and file (PXE).
	NextServer netip.Addr
	BootFile   string
}

// Lease6 is what the node's DHCPv6 server tells the port: its address
// (dhcpv6-stateful; invalid for dhcpv6-stateless, which gives only the
// other configuration) and DNS servers.
type Lease6 struct {
	IP  netip.Addr
	DNS []netip.Addr
}

// DHCPOption is a DHCPv4 option: its code and its value as sent.
type DHCPOption struct {
	Code  uint8
	Value []byte
}

// Route is a classless static route (DHCP option 121).
type Route struct {
	Dst     netip.Prefix
	Nexthop netip.Addr
}

// Rule is one security group rule, of IPv4 or (ethertype IPv6) of IPv6.
type Rule struct {
	Group   string
	Ingress bool
	IPv6    bool
	Proto   uint8 // 0: any
	// PortMin and PortMax bound the destination port (TCP, UDP, SCTP);
	// for ICMP and ICMPv6, PortMin is the type and PortMax the code. -1:
	// unset.
	PortMin, PortMax int
	Remote           netip.Prefix // zero with RemoteGroup and RemoteAddressGroup empty: anywhere
	RemoteGroup      string
	// RemoteAddressGroup names an address group: the rule's remotes are
	// its CIDRs (Desired.AddressGroups), none when it has none.
	RemoteAddressGroup string
}

// Desired is everything this node's dataplane should enforce.
type Desired struct {
	Uplink string // interface to other nodes; empty: none
	Ports  []Port
	Rules  []Rule
	// Members lists, per security group, the addresses of every port in
	// it, cluster-wide: remote-group rules match them.
	Members map[string][]netip.Prefix
	// AddressGroups are the CIDRs of each address group rules name.
	AddressGroups map[string][]netip.Prefix
	// Routers are the routers with an interface on a network this node
	// has ports on: every node routes its own ports' traffic (there is no
	// central network node).
	Routers []Router
	// Floating are the floating IPs whose fixed port is on this node.
	Floating []FloatingIP
	// Externals are the external networks this node reaches.
	Externals []External
	// Metadata, when set, redirects the ports' metadata requests to the
	// node's metadata server; nil: no metadata redirection.
	Metadata *Metadata
	// Meters are the metering labels of the routers here.
	Meters []Meter
	// Neighbors are the ports on other nodes of the routers' networks:
	// traffic routed to them leaves by the uplink, tagged with their
	// network's VLAN. This node's own ports are neighbours without being
	// listed; routed traffic to an address in neither is dropped.
	Neighbors []Neighbor
	// PortForwards are the floating IPs' port forwardings to this node's
	// ports (portfwd.go).
	PortForwards []PortForward
}

// Neighbor is a port on another node as routing needs it.
type Neighbor struct {
	VLAN uint16
	IP   netip.Addr
	MAC  net.HardwareAddr
}

// Router is a Neutron router as this node enforces it for its local ports.
type Router struct {
	ID         string
	Interfaces []RouterInterface // one per attached subnet
	Gateway    *RouterGateway    // nil: no external gateway
	Routes     []Route           // static routes (Dst via Nexthop)
}

// RouterInterface is a router's port on one tenant subnet: the gateway the
// guests of that subnet ARP for, answered by the dataplane on every node.
type RouterInterface struct {
	VLAN uint16           // the tenant network's VLAN
	MAC  net.HardwareAddr // the router port's MAC (the gateway MAC guests ARP for)
	IP   netip.Prefix     // gateway address and subnet
	// NoSNAT says the subnet is in the address scope of the router's
	// gateway: its fixed IPs are routed out as they are, as with
	// enable_snat off, and the outside reaches them the same way.
	NoSNAT bool
	// Scope is the subnet's address scope ("": none). The router routes
	// only between interfaces of one scope, and out of its gateway as
	// they are only the addresses of the gateway's scope: what crosses
	// scopes is dropped unless it is NATed (Neutron's rule).
	Scope string
	// RAMode is an IPv6 subnet's ipv6_ra_mode: "slaac",
	// "dhcpv6-stateful" or "dhcpv6-stateless" have router solicitations
	// on the network answered; empty: no router advertisements.
	RAMode string
	// MTU is the network's: advertised with RAMode, and a packet routed
	// onto the network bigger than it gets ICMPv6 packet too big (IPv6)
	// or ICMP fragmentation needed (IPv4 with DF set). 0: neither.
	MTU uint16
}

// RouterGateway is a router's side on an external network.
type RouterGateway struct {
	External string     // External.ID
	IP       netip.Addr // the SNAT address
	SNAT     bool       // enable_snat
	Scope    string     // the address scope of its IPv4 subnet; "": none
	// IP6 is its address on the external network's IPv6 subnet (invalid:
	// none): the router routes its IPv6 subnets of Scope6 out without
	// NAT, and what the outside sends them back in, as Neutron does.
	IP6    netip.Addr
	Scope6 string
}

// FloatingIP maps an address on an external network to a port's fixed IP
// (DNAT inbound, SNAT outbound).
type FloatingIP struct {
	IP       netip.Addr // on the external network
	Fixed    netip.Addr // the port's fixed IP
	Port     string     // Port.ID, hosted on this node
	Router   string     // Router.ID that connects the port's subnet to External
	External string     // External.ID
}

// External is an external network as this node reaches it.
type External struct {
	ID string
	// Device is the dataplane's end of the external network: frames for
	// it are sent out of Device, and ext_in, attached to Device, takes
	// what arrives (uplink_in, when Device is the uplink). It carries no
	// address of the node's. For rackd dev it is one end of a veth pair
	// whose other end holds the gateway address (172.24.4.1).
	Device  string
	VLAN    uint16           // 0: flat (untagged); else a VLAN of the uplink (refused on another device)
	Gateway netip.Addr       // the next hop outside; its MAC is learnt from ARP (Apply asks)
	Prefix  netip.Prefix     // the external subnet
	MAC     net.HardwareAddr // this node's MAC on it (Device's own, usually): ARP for its floating and router addresses answers it
	// Prefix6 is its IPv6 subnet (invalid: none) and Gateway6 the next
	// hop outside on it (learnt from neighbour discovery, which Apply
	// starts).
	Prefix6  netip.Prefix
	Gateway6 netip.Addr
}

// Metadata says where the node's metadata server is. Each Port with a
// MetaAddr has its requests to 169.254.169.254:80 rewritten to come from
// that address and sent to Device; the replies go back to the port.
type Metadata struct {
	// Device is a veth in the dataplane's namespace, e.g. "rsmeta0"; its
	// peer, in the same namespace, holds 169.254.169.254/16 and the
	// server listens there. Requests leave Device for the peer; the
	// server's replies (and its ARP for the ports' metadata addresses,
	// answered with Device's MAC) come back into Device, where meta_in
	// takes them to the port.
	Device string
}

const (
	dirIn  = 0
	dirOut = 1

	flagSecurity  = 1
	flagPeer      = 2
	flagMoreAddrs = 4
	flagDHCP6     = 8
	flagStateless = 16

	lenAnyProto = 17
	// ruleExactBits is the part of a rule key before the remote address.
	ruleExactBits = 80
)

// policyID names a set of security groups: ports with the same groups share
// their compiled rules. It is a hash, so it survives restarts unchanged.
func policyID(groups []string) uint32 {
	if len(groups) == 0 {
		return 0
	}
	g := append([]string(nil), groups...)
	sort.Strings(g)
	h := fnv.New32a()
	h.Write([]byte(strings.Join(g, ",")))
	id := h.Sum32()
	if id == 0 {
		id = 1
	}
	return id
}

// compiledPolicy is a policy's rule keys and, per direction, which port
// prefix lengths they use.
type compiledPolicy struct {
	keys map[bpf.DataplaneRuleKey]struct{}
	lens [2]uint32
}

// compilePolicy turns the rules of groups into LPM keys: one per (port
// prefix, remote prefix) pair of each rule.
func compilePolicy(id uint32, groups []string, rules []Rule, members, addrGroups map[string][]netip.Prefix) compiledPolicy {
	in := map[string]bool{}
	for _, g := range groups {
		in[g] = true
	}
	cp := compiledPolicy{keys: map[bpf.DataplaneRuleKey]struct{}{}}
	for _, r := range rules {
		if !in[r.Group] {
			continue
		}
		dir := uint8(dirOut)
		if r.Ingress {
			dir = dirIn
		}
		// A rule matches its own ethertype's traffic only: its remotes
		// are the addresses of that family.
		family := netip.Addr.Is4
		anywhere := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if r.IPv6 {
			family = func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }
			anywhere = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		var remotes []netip.Prefix
		switch {
		case r.RemoteGroup != "":
			for _, p := range members[r.RemoteGroup] {
				if family(p.Addr()) {
					remotes = append(remotes, p)
				}
			}
		case r.RemoteAddressGroup != "":
			for _, p := range addrGroups[r.RemoteAddressGroup] {
				if family(p.Addr()) {
					remotes = append(remotes, p.Masked())
				}
			}
		case r.Remote.IsValid():
			if !family(r.Remote.Addr()) {
				continue
			}
			remotes = []netip.Prefix{r.Remote.Masked()}
		default:
			remotes = []netip.Prefix{anywhere}
		}
		for _, pp := range portPrefixes(r) {
			if r.Proto == 0 {
				cp.lens[dir] |= 1 << lenAnyProto
			} else {
				cp.lens[dir] |= 1 << pp.bits
			}
			for _, rem := range remotes {
				k := bpf.DataplaneRuleKey{
					Prefixlen: ruleExactBits + uint32(rem.Bits()),
					Policy:    id, Dir: dir, Proto: r.Proto, Plen: pp.bits,
				}
				if r.IPv6 {
					k.V6 = 1
					k.Ip = rem.Masked().Addr().As16()
				} else {
					a := rem.Masked().Addr().As4()
					copy(k.Ip[:], a[:])
				}
				binary.BigEndian.PutUint16(k.Port[:], pp.value)
				cp.keys[k] = struct{}{}
			}
		}
	}
	return cp
}

type portPrefix struct {
	value uint16
	bits  uint8
}

// portPrefixes is the rule's port match as prefixes of the 16-bit port:
// a range becomes at most 30 of them.
func portPrefixes(r Rule) []portPrefix {
	switch r.Proto {
	case 0:
		return []portPrefix{{0, 0}}
	case 6, 17, 132: // TCP, UDP, SCTP
		if r.PortMin < 0 && r.PortMax < 0 {
			return []portPrefix{{0, 0}}
		}
		lo, hi := r.PortMin, r.PortMax
		if lo < 0 {
			lo = 0
		}
		if hi < 0 {
			hi = lo
		}
		return rangePrefixes(uint32(lo), uint32(hi))
	case 1, 58: // ICMP and ICMPv6: type, then code
		switch {
		case r.PortMin < 0:
			return []portPrefix{{0, 0}}
		case r.PortMax < 0:
			return []portPrefix{{uint16(r.PortMin) << 8, 8}}
		default:
			return []portPrefix{{uint16(r.PortMin)<<8 | uint16(r.PortMax), 16}}
		}
	}
	return []portPrefix{{0, 0}}
}

// rangePrefixes covers [lo, hi] with the fewest aligned prefixes.
func rangePrefixes(lo, hi uint32) []portPrefix {
	var out []portPrefix
	for lo <= hi {
		size := uint32(1)
		bits := uint8(16)
		// Grow the block while it stays aligned and inside the range.
		for bits > 0 && lo&(size*2-1) == 0 && lo+size*2-1 <= hi {
			size *= 2
			bits--
		}
		out = append(out, portPrefix{uint16(lo), bits})
		lo += size
		if lo == 0 || lo > 0xffff {
			break
		}
	}
	return out
}

// tables is the content of every map but conntrack and the counters.
type tables struct {
	ports    map[uint32]bpf.DataplanePort
	fdb      map[bpf.DataplaneFdbKey]uint32
	nets     map[uint32]bpf.DataplaneNetports
	addrs    map[bpf.DataplaneAddrKey]uint8
	addrs6   map[bpf.DataplaneAddr6Key]uint8
	macs     map[bpf.DataplaneMacKey]uint8
	rules    map[bpf.DataplaneRuleKey]uint8
	qos      map[uint32]bpf.DataplaneQosCfg
	uplink   uint32
	policies map[uint32]compiledPolicy
	l3       l3tables
	meter    meterTables
	l3v6     l3v6tables
	pf       pfTables
}

// device is a port's interface as found on this node.
type device struct {
	ifindex uint32
	veth    bool
	mac     [6]byte
	peer    [6]byte // a veth's peer's MAC, when the peer is in the same namespace
}

// compile builds the map contents for the ports whose devices exist.
func compile(d Desired, devs map[string]device) (*tables, error) {
	t := &tables{
		ports: map[uint32]bpf.DataplanePort{}, fdb: map[bpf.DataplaneFdbKey]uint32{},
		nets: map[uint32]bpf.DataplaneNetports{}, addrs: map[bpf.DataplaneAddrKey]uint8{},
		addrs6: map[bpf.DataplaneAddr6Key]uint8{}, macs: map[bpf.DataplaneMacKey]uint8{}, rules: map[bpf.DataplaneRuleKey]uint8{},
		policies: map[uint32]compiledPolicy{}, l3: newL3Tables(), l3v6: newL3v6Tables(),
		qos: map[uint32]bpf.DataplaneQosCfg{},
	}
	for _, p := range d.Ports {
		dev, ok := devs[p.Device]
		if !ok {
			continue
		}
		if len(p.MAC) != 6 {
			return nil, fmt.Errorf("port %s: MAC %q is not Ethernet", p.ID, p.MAC)
		}
		if p.VLAN == 0 || p.VLAN > 4094 {
			return nil, fmt.Errorf("port %s: VLAN %d out of 1-4094", p.ID, p.VLAN)
		}
		vlan := uint32(p.VLAN)
		bp := bpf.DataplanePort{Vlan: vlan}
		copy(bp.Mac[:], p.MAC)
		if dev.veth {
			bp.Flags |= flagPeer
		}
		if p.DHCP6 != nil {
			bp.Flags |= flagDHCP6
		}
		if cfg, ok := qosCfg(p.QoS); ok {
			bp.Flags |= flagQoS
			t.qos[dev.ifindex] = cfg
		}
		if p.Security {
			bp.Flags |= flagSecurity
			bp.Policy = policyID(p.Groups)
			cp, ok := t.policies[bp.Policy]
			if !ok {
				cp = compilePolicy(bp.Policy, p.Groups, d.Rules, d.Members, d.AddressGroups)
				t.policies[bp.Policy] = cp
				for k := range cp.keys {
					t.rules[k] = 1
				}
			}
			bp.Lens = cp.lens
			if p.Stateless {
				bp.Flags |= flagStateless
			}
		}
		fk := bpf.DataplaneFdbKey{Vlan: vlan}
		copy(fk.Mac[:], p.MAC)
		t.fdb[fk] = dev.ifindex
		n := t.nets[vlan]
		if int(n.Count) < len(n.Ports) {
			n.Ports[n.Count] = dev.ifindex
			n.Count++
		}
		t.nets[vlan] = n
		// Up to four single addresses ride in the port entry; the rest
		// (address-pair CIDRs, more IPs) go to the addrs trie.
		n4 := 0
		for _, a := range p.Addrs {
			if !a.Addr().Is4() {
				if a.Addr().Is6() && !a.Addr().Is4In6() {
					t.addrs6[addr6Key(dev.ifindex, a)] = 1
				}
				continue
			}
			if a.Bits() == 32 && n4 < len(bp.Ips) {
				ip := a.Addr().As4()
				bp.Ips[n4] = binary.NativeEndian.Uint32(ip[:])
				n4++
				continue
			}
			bp.Flags |= flagMoreAddrs
			t.addrs[bpf.DataplaneAddrKey{Prefixlen: 32 + uint32(a.Bits()), Ifindex: dev.ifindex, Ip: a.Masked().Addr().As4()}] = 1
		}
		t.ports[dev.ifindex] = bp
		t.addrs6[addr6Key(dev.ifindex, linkLocal(p.MAC))] = 1
		for _, m := range p.MACs {
			if len(m) != 6 || m.String() == p.MAC.String() {
				continue
			}
			mk := bpf.DataplaneMacKey{Ifindex: dev.ifindex}
			copy(mk.Mac[:], m)
			t.macs[mk] = 1
			t.addrs6[addr6Key(dev.ifindex, linkLocal(m))] = 1
		}
	}
	if err := compileL3(d, devs, t); err != nil {
		return nil, err
	}
	compileMeters(d, t)
	if err := compilePortForwards(d, devs, t); err != nil {
		return nil, err
	}
	if err := compileL3v6(d, devs, t); err != nil {
		return nil, err
	}
	return t, nil
}

func addr6Key(ifindex uint32, p netip.Prefix) bpf.DataplaneAddr6Key {
	return bpf.DataplaneAddr6Key{Prefixlen: 32 + uint32(p.Bits()), Ifindex: ifindex, Ip: p.Masked().Addr().As16()}
}

// linkLocal is the IPv6 link-local address a guest forms from its MAC
// (RFC 4291 appendix A: fe80::/64 and the modified EUI-64), the one
// Neutron's anti-spoofing lets a port send from besides its fixed IPs.
func linkLocal(mac net.HardwareAddr) netip.Prefix {
	a := [16]byte{0: 0xfe, 1: 0x80}
	copy(a[8:11], mac[0:3])
	a[8] ^= 0x02
	a[11], a[12] = 0xff, 0xfe
	copy(a[13:16], mac[3:6])
	return netip.PrefixFrom(netip.AddrFrom16(a), 128)
}
