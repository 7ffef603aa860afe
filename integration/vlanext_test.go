//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestVLANExternal is a provider external network on VLAN 100 of a
// node's uplink, made with the CLI as an operator would: a router with
// its gateway there SNATs a port's traffic to an outside that has nothing
// but a VLAN 100 sub-interface on the uplink's wire, the outside reaches
// another port on its floating IP, and hosts on VLAN 101 and untagged on
// the same wire, with addresses of the same subnet (outside its allocation
// pool, so that no floating IP is theirs), reach neither. IPv6 rides on
// the same VLAN without NAT: the outside routes the tenant's IPv6 subnet
// to the router's gateway IPv6 address and pings a there, b connects out
// from its own IPv6 address, and the hosts on VLAN 101 and untagged, with
// the same route, reach a by neither. The ports' guests are namespaces,
// as in TestNetworking: no QEMU.
func TestVLANExternal(t *testing.T) {
	testenv.RequireRoot(t, "make network namespaces and load BPF programs")
	testenv.RequireCommand(t, "/usr/bin/openstack")
	testenv.RequireCommand(t, "ip")
	testenv.RequireCommand(t, "ping")
	pid := fmt.Sprint(os.Getpid())
	nodeNS, wireNS, outNS, otherNS := nsName("vn"), nsName("vw"), nsName("vo"), nsName("vx")
	nodePath, wirePath := addNetns(t, nodeNS), addNetns(t, wireNS)
	outPath, otherPath := addNetns(t, outNS), addNetns(t, otherNS)
	ip(t, "-n", nodeNS, "link", "add", "up0", "type", "veth", "peer", "name", "wire0", "netns", wireNS)
	ip(t, "-n", nodeNS, "link", "set", "up0", "up")
	ip(t, "-n", wireNS, "addr", "add", "172.24.8.201/24", "dev", "wire0") // untagged
	ip(t, "-n", wireNS, "link", "set", "wire0", "up")
	dataplanetest.VLAN(t, wirePath, "wire0", 100, outPath, "eth100", netip.MustParsePrefix("172.24.8.1/24"))
	dataplanetest.VLAN(t, wirePath, "wire0", 101, otherPath, "eth101", netip.MustParsePrefix("172.24.8.202/24"))

	bpfDir := "/sys/fs/bpf/rackstack-vlan" + pid
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n1 := newRackd(t, "n1", "--dataplane", "on", "--dataplane-netns", nodePath, "--uplink", "up0", "--bpf-dir", bpfDir, "--s3-listen", "off")
	n1.start("--bootstrap")
	n1.waitHealthy()
	admin := osEnv(openrc(t, n1.dataDir), n1)

	openstack(t, admin, "network", "create", "--external", "--provider-network-type", "vlan",
		"--provider-physical-network", "physnet1", "--provider-segment", "100", "pubvlan")
	openstack(t, admin, "subnet", "create", "--network", "pubvlan", "--subnet-range", "172.24.8.0/24",
		"--gateway", "172.24.8.1", "--allocation-pool", "start=172.24.8.10,end=172.24.8.100", "--no-dhcp", "pubsub")
	openstack(t, admin, "subnet", "create", "--network", "pubvlan", "--ip-version", "6", "--subnet-range", "2001:db8:8::/64",
		"--gateway", "2001:db8:8::1", "--allocation-pool", "start=2001:db8:8::10,end=2001:db8:8::100", "--no-dhcp", "pubsub6")
	openstack(t, admin, "network", "create", "net1")
	openstack(t, admin, "subnet", "create", "--network", "net1", "--subnet-range", "10.60.1.0/24", "sub1")
	openstack(t, admin, "subnet", "create", "--network", "net1", "--ip-version", "6", "--subnet-range", "2001:db8:60::/64", "sub1v6")
	openstack(t, admin, "router", "create", "r1")
	openstack(t, admin, "router", "add", "subnet", "r1", "sub1")
	openstack(t, admin, "router", "add", "subnet", "r1", "sub1v6")
	openstack(t, admin, "router", "set", "--external-gateway", "pubvlan", "r1")
	var r1 struct {
		Status string `json:"status"`
		GW     struct {
			IPs []struct {
				IP string `json:"ip_address"`
			} `json:"external_fixed_ips"`
		} `json:"external_gateway_info"`
	}
	if err := json.Unmarshal([]byte(openstack(t, admin, "router", "show", "r1", "-f", "json")), &r1); err != nil || r1.Status != "ACTIVE" || len(r1.GW.IPs) == 0 {
		t.Fatalf("router r1: %v %+v", err, r1)
	}
	var gwIP, gwIP6 string
	for _, f := range r1.GW.IPs {
		if strings.Contains(f.IP, ":") {
			gwIP6 = f.IP
		} else {
			gwIP = f.IP
		}
	}
	if gwIP == "" || gwIP6 == "" {
		t.Fatalf("router r1's gateway has %+v, want an IPv4 and an IPv6 address", r1.GW.IPs)
	}
	openstack(t, admin, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "8000", "--ingress", "default")
	openstack(t, admin, "security", "group", "rule", "create", "--protocol", "icmp", "--ingress", "default")
	openstack(t, admin, "security", "group", "rule", "create", "--ethertype", "IPv6", "--protocol", "ipv6-icmp", "--ingress", "default")

	port := func(name string) portInfo {
		var p portInfo
		if err := json.Unmarshal([]byte(openstack(t, admin, "port", "create", "--network", "net1", "--host", "n1", "-f", "json", name)), &p); err != nil || len(p.FixedIPs) == 0 {
			t.Fatalf("port %s: %v %+v", name, err, p)
		}
		return p
	}
	pa, pb := port("pa"), port("pb")
	ga, gb := plug(t, nodeNS, nsName("va"), pa.ID, pa.MAC), plug(t, nodeNS, nsName("vb"), pb.ID, pb.MAC)
	ip6 := map[*guest]string{}
	for _, g := range []struct {
		g *guest
		p portInfo
	}{{ga, pa}, {gb, pb}} {
		for _, f := range g.p.FixedIPs { // in either order
			if strings.Contains(f.IP, ":") {
				ip6[g.g] = f.IP
			} else {
				g.g.ip = f.IP
			}
		}
		if g.g.ip == "" || ip6[g.g] == "" {
			t.Fatalf("port %s has %+v, want an IPv4 and an IPv6 address", g.p.ID, g.p.FixedIPs)
		}
		ip(t, "-n", g.g.ns, "addr", "add", g.g.ip+"/24", "dev", "eth0")
		ip(t, "-n", g.g.ns, "route", "add", "default", "via", "10.60.1.1")
		ip(t, "-n", g.g.ns, "addr", "add", ip6[g.g]+"/64", "dev", "eth0", "nodad")
		ip(t, "-n", g.g.ns, "-6", "route", "add", "default", "via", "2001:db8:60::1")
	}
	waitPorts(t, admin, []string{pa.ID, pb.ID}, "ACTIVE")
	fip := strings.TrimSpace(openstack(t, admin, "floating", "ip", "create", "pubvlan", "--port", pa.ID, "-f", "value", "-c", "floating_ip_address"))
	if !eventually(30*time.Second, func() bool {
		return strings.TrimSpace(openstack(t, admin, "floating", "ip", "show", fip, "-f", "value", "-c", "status")) == "ACTIVE"
	}) {
		t.Fatalf("floating IP %s never became ACTIVE", fip)
	}

	// The outside, on VLAN 100 only, reaches a on its floating IP.
	whoami(t, ga.ns, ga.ip+":8000")
	if !eventually(30*time.Second, func() bool { return pings(outNS, fip) }) {
		t.Fatalf("the outside (VLAN 100) cannot ping a's floating IP %s", fip)
	}
	if got, err := askWho(t, outNS, fip+":8000"); err != nil || got != "172.24.8.1" {
		t.Fatalf("the outside's connection to a's floating IP: %v; a saw it from %q, want 172.24.8.1", err, got)
	}
	// b goes out through the router's SNAT, a through its floating IP.
	whoami(t, outNS, "172.24.8.1:9000")
	if got, err := askWho(t, gb.ns, "172.24.8.1:9000"); err != nil || got != gwIP {
		t.Fatalf("b's connection to the outside: %v; seen from %q, want the router's %s", err, got, gwIP)
	}
	if got, err := askWho(t, ga.ns, "172.24.8.1:9000"); err != nil || got != fip {
		t.Fatalf("a's connection to the outside: %v; seen from %q, want its floating IP %s", err, got, fip)
	}
	// IPv6 on VLAN 100, routed without NAT: the outside sends the
	// tenant subnet to the router's gateway IPv6 address.
	ip(t, "-n", outNS, "addr", "add", "2001:db8:8::1/64", "dev", "eth100", "nodad")
	ip(t, "-n", outNS, "-6", "route", "add", "2001:db8:60::/64", "via", gwIP6)
	if !eventually(30*time.Second, func() bool { return pings(outNS, ip6[ga]) }) {
		t.Fatalf("the outside (VLAN 100) cannot ping a's IPv6 address %s through the router's gateway %s", ip6[ga], gwIP6)
	}
	whoami(t, outNS, "[2001:db8:8::1]:9000")
	if got, err := askWho6(t, gb.ns, "[2001:db8:8::1]:9000"); err != nil || got != ip6[gb] {
		t.Fatalf("b's IPv6 connection to the outside: %v; seen from %q, want b's own %s (no NAT)", err, got, ip6[gb])
	}
	for _, h := range []struct{ name, ns, dev, addr string }{{"VLAN 101", otherNS, "eth101", "2001:db8:8::202"}, {"untagged", wireNS, "wire0", "2001:db8:8::201"}} {
		ip(t, "-n", h.ns, "addr", "add", h.addr+"/64", "dev", h.dev, "nodad")
		ip(t, "-n", h.ns, "-6", "route", "add", "2001:db8:60::/64", "via", gwIP6)
		if pings(h.ns, ip6[ga]) {
			t.Errorf("a host on %s (%s) pinged a's IPv6 address %s", h.name, h.addr, ip6[ga])
		}
	}

	// Another VLAN and the untagged wire: nothing either way.
	for _, h := range []struct{ name, ns, addr string }{{"VLAN 101", otherNS, "172.24.8.202"}, {"untagged", wireNS, "172.24.8.201"}} {
		if pings(h.ns, fip) {
			t.Errorf("a host on %s (%s) pinged a's floating IP", h.name, h.addr)
		}
		whoami(t, h.ns, h.addr+":9000")
		for _, g := range []*guest{ga, gb} {
			if got, err := askWho(t, g.ns, h.addr+":9000"); err == nil {
				t.Errorf("%s reached the host on %s (%s), seen from %s", g.ns, h.name, h.addr, got)
			}
		}
	}
}

// whoami answers each connection to addr in ns with the address it came
// from, until the test ends.
func whoami(t *testing.T, ns, addr string) {
	l := listenIn(t, ns, addr)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// askWho connects from ns to addr, giving up after 3 seconds, and returns
// the address the other side saw it come from.
func askWho(t *testing.T, ns, addr string) (string, error) {
	return askWhoOver(t, "tcp4", ns, addr)
}

// askWho6 is askWho over IPv6.
func askWho6(t *testing.T, ns, addr string) (string, error) {
	return askWhoOver(t, "tcp6", ns, addr)
}

func askWhoOver(t *testing.T, network, ns, addr string) (string, error) {
	var c net.Conn
	if err := dataplanetest.In(t, "/run/netns/"+ns, func() (err error) {
		c, err = net.DialTimeout(network, addr, 3*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	return strings.TrimSpace(string(b)), err
}
