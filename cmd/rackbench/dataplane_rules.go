package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"

	"github.com/rackstack/rackstack/dataplane"
)

// The same policy is written twice, once per firewall: n filler rules
// that admit TCP to port 10000+i from 172.16.0.0/12 host i+1 (so none of
// them matches the benchmark's traffic, yet each is a distinct rule), then
// egress anywhere and ingress to the iperf3, request/response and
// connection-rate ports from the bench subnet; everything else is dropped.

// fillerRule is filler rule i: its destination port and remote host.
func fillerRule(i int) (port int, remote netip.Prefix) {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], 0xac100000+uint32(i+1)) // 172.16.0.0 + i + 1
	return 10000 + i%20000, netip.PrefixFrom(netip.AddrFrom4(a), 32)
}

// benchPorts are the client and server ports as Rackstack's dataplane sees
// them: host ends ta and tb of the guests' veths.
func benchPorts() (client, server dataplane.Port) {
	port := func(id, dev string, ip netip.Addr, mac []byte) dataplane.Port {
		return dataplane.Port{ID: id, Device: dev, VLAN: benchVLAN, MAC: mac,
			Addrs: []netip.Prefix{netip.PrefixFrom(ip, 32)}, Security: true, Groups: []string{benchGroup}}
	}
	return port("a", "ta", clientIP, clientMAC), port("b", "tb", serverIP, serverMAC)
}

// benchDesired is one node's dataplane state: ports, n filler rules and
// the rules that admit the benchmark's traffic.
func benchDesired(n int, uplink string, ports ...dataplane.Port) dataplane.Desired {
	rules := make([]dataplane.Rule, 0, n+4)
	for i := 0; i < n; i++ {
		port, remote := fillerRule(i)
		rules = append(rules, dataplane.Rule{Group: benchGroup, Ingress: true, Proto: 6, PortMin: port, PortMax: port, Remote: remote})
	}
	rules = append(rules, dataplane.Rule{Group: benchGroup, PortMin: -1, PortMax: -1})
	rules = append(rules, admitFrom(benchSubnet)...)
	return dataplane.Desired{
		Uplink:  uplink,
		Ports:   ports,
		Rules:   rules,
		Members: map[string][]netip.Prefix{benchGroup: {netip.PrefixFrom(clientIP, 32), netip.PrefixFrom(serverIP, 32)}},
	}
}

// iptablesRuleset is an iptables-restore input that filters bridged
// traffic the way Neutron's hybrid (iptables) firewall driver does:
// FORWARD sends each port's bridged traffic to an sg chain, which sends it
// to the port's ingress chain (packets leaving the bridge to the port) and
// egress chain (packets entering from it), whose rules RETURN on a match;
// the sg chain accepts what came back, and a port chain that matched
// nothing ends in the fallback DROP. Conntrack lets established flows
// through at the head of each port chain; the egress chain first checks
// the source IP and MAC (anti-spoofing).
func iptablesRuleset(ports []bridgePort, n int) string {
	var w strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	line("*filter")
	line(":INPUT ACCEPT [0:0]")
	line(":FORWARD ACCEPT [0:0]")
	line(":OUTPUT ACCEPT [0:0]")
	line(":rb-sg-chain - [0:0]")
	line(":rb-sg-fallback - [0:0]")
	for _, p := range ports {
		line(":rb-i-%s - [0:0]", p.dev)
		line(":rb-o-%s - [0:0]", p.dev)
		line(":rb-s-%s - [0:0]", p.dev)
	}
	for _, p := range ports {
		line("-A FORWARD -m physdev --physdev-out %s --physdev-is-bridged -j rb-sg-chain", p.dev)
		line("-A FORWARD -m physdev --physdev-in %s --physdev-is-bridged -j rb-sg-chain", p.dev)
	}
	for _, p := range ports {
		line("-A rb-sg-chain -m physdev --physdev-out %s --physdev-is-bridged -j rb-i-%s", p.dev, p.dev)
		line("-A rb-sg-chain -m physdev --physdev-in %s --physdev-is-bridged -j rb-o-%s", p.dev, p.dev)
	}
	line("-A rb-sg-chain -j ACCEPT")
	for _, p := range ports {
		in := "rb-i-" + p.dev
		line("-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", in)
		for i := 0; i < n; i++ {
			port, remote := fillerRule(i)
			line("-A %s -s %s -p tcp -m tcp --dport %d -j RETURN", in, remote, port)
		}
		for _, port := range []int{iperfPort, rrPort, connPort} {
			line("-A %s -s %s -p tcp -m tcp --dport %d -j RETURN", in, benchSubnet, port)
		}
		line("-A %s -m conntrack --ctstate INVALID -j DROP", in)
		line("-A %s -j rb-sg-fallback", in)

		out := "rb-o-" + p.dev
		line("-A %s -j rb-s-%s", out, p.dev)
		line("-A %s -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN", out)
		line("-A %s -j RETURN", out) // egress anywhere
		line("-A rb-s-%s -s %s/32 -m mac --mac-source %s -j RETURN", p.dev, p.ip, p.mac)
		line("-A rb-s-%s -j DROP", p.dev)
	}
	line("-A rb-sg-fallback -j DROP")
	line("COMMIT")
	return w.String()
}
