package ports

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// l3View: net1 (VLAN 101, 10.0.0.0/24) with a port on n1, net2 (VLAN 102,
// 10.0.1.0/24) with a port on n2, both on router r1 whose gateway is on
// the flat external network "public"; r2 has an interface only on net2.
func l3View() *netstate.View {
	return &netstate.View{
		Networks: []netstate.Network{
			{ID: "net1", SegmentationID: 101}, {ID: "net2", SegmentationID: 102},
			{ID: "ext", SegmentationID: -1, Flat: "public", External: true},
		},
		Subnets: []netstate.Subnet{
			{ID: "sub1", NetworkID: "net1", CIDR: "10.0.0.0/24", IPVersion: 4, GatewayIP: "10.0.0.1"},
			{ID: "sub2", NetworkID: "net2", CIDR: "10.0.1.0/24", IPVersion: 4, GatewayIP: "10.0.1.1"},
			{ID: "extsub", NetworkID: "ext", CIDR: "172.24.4.0/24", IPVersion: 4, GatewayIP: "172.24.4.1"},
		},
		Ports: []netstate.Port{
			{ID: "vm1", NetworkID: "net1", HostID: "n1", AdminStateUp: true, MAC: "fa:16:3e:00:00:01", FixedIPs: []netstate.FixedIP{{SubnetID: "sub1", IP: "10.0.0.5"}}},
			{ID: "vm2", NetworkID: "net2", HostID: "n2", AdminStateUp: true, MAC: "fa:16:3e:00:00:02", FixedIPs: []netstate.FixedIP{{SubnetID: "sub2", IP: "10.0.1.5"}}},
			{ID: "r1a", NetworkID: "net1", DeviceOwner: "network:router_interface", DeviceID: "r1", AdminStateUp: true, MAC: "fa:16:3e:00:01:01", FixedIPs: []netstate.FixedIP{{SubnetID: "sub1", IP: "10.0.0.1"}}},
			{ID: "r1b", NetworkID: "net2", DeviceOwner: "network:router_interface", DeviceID: "r1", AdminStateUp: true, MAC: "fa:16:3e:00:01:02", FixedIPs: []netstate.FixedIP{{SubnetID: "sub2", IP: "10.0.1.1"}}},
			{ID: "r1gw", NetworkID: "ext", DeviceOwner: "network:router_gateway", DeviceID: "r1", AdminStateUp: true, MAC: "fa:16:3e:00:01:03", FixedIPs: []netstate.FixedIP{{SubnetID: "extsub", IP: "172.24.4.2"}}},
			{ID: "r2a", NetworkID: "net2", DeviceOwner: "network:router_interface", DeviceID: "r2", AdminStateUp: true, MAC: "fa:16:3e:00:02:01", FixedIPs: []netstate.FixedIP{{SubnetID: "sub2", IP: "10.0.1.254"}}},
		},
		Routers: []netstate.Router{
			{ID: "r1", AdminStateUp: true, Gateway: &netstate.RouterGateway{NetworkID: "ext", PortID: "r1gw", SNAT: true},
				Routes: []netstate.HostRoute{{Destination: "192.168.0.0/16", Nexthop: "10.0.1.9"}}},
			{ID: "r2", AdminStateUp: true},
		},
		Floating: []netstate.FloatingIP{
			{ID: "f1", NetworkID: "ext", IP: "172.24.4.3", FixedPortID: "vm1", FixedIP: "10.0.0.5", RouterID: "r1"},
			{ID: "f2", NetworkID: "ext", IP: "172.24.4.4", FixedPortID: "vm2", FixedIP: "10.0.1.5", RouterID: "r1"},
			{ID: "f3", NetworkID: "ext", IP: "172.24.4.5"},
		},
	}
}

// TestLayer3FromView checks what node n1 is asked to route: the router its
// port's network is on (with every interface, so it can route to net2's
// ports elsewhere), not r2, which touches none of its networks; the floating
// IP of its own port only; the external network on its device.
func TestLayer3FromView(t *testing.T) {
	v := l3View()
	// net2 is dual-stack: an IPv6 subnet with router advertisements, on
	// r1's port and vm2's.
	v.Networks[1].MTU = 1450
	v.Subnets = append(v.Subnets, netstate.Subnet{ID: "sub2v6", NetworkID: "net2", CIDR: "fd00:2::/64", IPVersion: 6, GatewayIP: "fd00:2::1", IPv6RAMode: "slaac"})
	for i, p := range v.Ports {
		switch p.ID {
		case "r1b":
			v.Ports[i].FixedIPs = append(p.FixedIPs, netstate.FixedIP{SubnetID: "sub2v6", IP: "fd00:2::1"})
		case "vm2":
			v.Ports[i].FixedIPs = append(p.FixedIPs, netstate.FixedIP{SubnetID: "sub2v6", IP: "fd00:2::5"})
		}
	}
	d := FromView(v, "n1")
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	addL3(&d, v, "n1", Reach{Flat: map[string]string{"public": "rsext0"}, MACs: map[string]net.HardwareAddr{"rsext0": mac}})
	if len(d.Routers) != 1 || d.Routers[0].ID != "r1" {
		t.Fatalf("routers %+v, want r1 only", d.Routers)
	}
	r := d.Routers[0]
	var got []string
	for _, ri := range r.Interfaces {
		got = append(got, fmt.Sprintf("%d %s %s %q %d %v", ri.VLAN, ri.MAC, ri.IP, ri.RAMode, ri.MTU, ri.NoSNAT))
	}
	want := []string{
		`101 fa:16:3e:00:01:01 10.0.0.1/24 "" 0 false`,
		`102 fa:16:3e:00:01:02 10.0.1.1/24 "" 1450 false`, // the network's MTU, for fragmentation needed
		`102 fa:16:3e:00:01:02 fd00:2::1/64 "slaac" 1450 false`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("interfaces %q, want %q", got, want)
	}
	if r.Gateway == nil || r.Gateway.IP != netip.MustParseAddr("172.24.4.2") || !r.Gateway.SNAT || r.Gateway.External != "ext" {
		t.Errorf("gateway %+v", r.Gateway)
	}
	if len(r.Routes) != 1 || r.Routes[0].Nexthop != netip.MustParseAddr("10.0.1.9") {
		t.Errorf("routes %+v", r.Routes)
	}
	if len(d.Floating) != 1 || d.Floating[0].IP != netip.MustParseAddr("172.24.4.3") || d.Floating[0].Fixed != netip.MustParseAddr("10.0.0.5") || d.Floating[0].Port != "vm1" {
		t.Errorf("floating %+v, want vm1's only", d.Floating)
	}
	if len(d.Neighbors) != 2 || d.Neighbors[0].IP != netip.MustParseAddr("10.0.1.5") || d.Neighbors[1].IP != netip.MustParseAddr("fd00:2::5") ||
		d.Neighbors[0].VLAN != 102 || d.Neighbors[0].MAC.String() != "fa:16:3e:00:00:02" {
		t.Errorf("neighbors %+v, want vm2 (on n2) only, both its addresses", d.Neighbors)
	}
	if len(d.Externals) != 1 {
		t.Fatalf("externals %+v", d.Externals)
	}
	x := d.Externals[0]
	if x.Device != "rsext0" || x.VLAN != 0 || x.Gateway != netip.MustParseAddr("172.24.4.1") || x.Prefix != netip.MustParsePrefix("172.24.4.0/24") || x.MAC.String() != mac.String() {
		t.Errorf("external %+v", x)
	}
}

// TestLayer3LeavesOutWhatTheDataplaneRefuses: a VLAN external network, a
// flat one without a gateway or without a MAC for its device are not
// handed to the dataplane, which would refuse the whole state for them.
func TestLayer3LeavesOutWhatTheDataplaneRefuses(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for name, c := range map[string]struct {
		net   netstate.Network
		gw    string
		reach Reach
	}{
		"vlan, no uplink":            {net: netstate.Network{ID: "ext", SegmentationID: 300, External: true}, gw: "172.24.4.1", reach: Reach{MACs: map[string]net.HardwareAddr{"up0": mac}}},
		"vlan, uplink without a MAC": {net: netstate.Network{ID: "ext", SegmentationID: 300, External: true}, gw: "172.24.4.1", reach: Reach{Uplink: "up0"}},
		"no gateway":                 {net: netstate.Network{ID: "ext", SegmentationID: -1, Flat: "public", External: true}, reach: Reach{Flat: map[string]string{"public": "rsext0"}, MACs: map[string]net.HardwareAddr{"rsext0": mac}}},
		"no mac":                     {net: netstate.Network{ID: "ext", SegmentationID: -1, Flat: "public", External: true}, gw: "172.24.4.1", reach: Reach{Flat: map[string]string{"public": "rsext0"}}},
		"the uplink":                 {net: netstate.Network{ID: "ext", SegmentationID: -1, Flat: "public", External: true}, gw: "172.24.4.1", reach: Reach{Uplink: "up0", Flat: map[string]string{"public": "up0"}, MACs: map[string]net.HardwareAddr{"up0": mac}}},
	} {
		t.Run(name, func(t *testing.T) {
			v := l3View()
			v.Networks[2] = c.net
			v.Subnets[2].GatewayIP = c.gw
			d := FromView(v, "n1")
			addL3(&d, v, "n1", c.reach)
			if len(d.Externals) != 0 || len(d.Floating) != 0 || d.Routers[0].Gateway != nil {
				t.Fatalf("externals %+v floating %+v gateway %+v", d.Externals, d.Floating, d.Routers[0].Gateway)
			}
		})
	}
}

// TestLayer3VLANExternalOnTheUplink: an external network that is a VLAN of
// the physical network is reached on the uplink, tagged with its VLAN.
func TestLayer3VLANExternalOnTheUplink(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	v := l3View()
	v.Networks[2] = netstate.Network{ID: "ext", SegmentationID: 300, External: true}
	d := FromView(v, "n1")
	addL3(&d, v, "n1", Reach{Uplink: "up0", MACs: map[string]net.HardwareAddr{"up0": mac}})
	if len(d.Externals) != 1 {
		t.Fatalf("externals %+v", d.Externals)
	}
	x := d.Externals[0]
	if x.Device != "up0" || x.VLAN != 300 || x.MAC.String() != mac.String() || x.Gateway != netip.MustParseAddr("172.24.4.1") {
		t.Errorf("external %+v", x)
	}
	if d.Routers[0].Gateway == nil || d.Routers[0].Gateway.External != "ext" || len(d.Floating) != 1 {
		t.Errorf("gateway %+v floating %+v", d.Routers[0].Gateway, d.Floating)
	}
}

// TestLayer3WithoutTheExternalDevice: a node with no device for the
// external network routes between subnets but has no gateway and no
// floating IPs (it could not send to them).
func TestLayer3WithoutTheExternalDevice(t *testing.T) {
	v := l3View()
	d := FromView(v, "n1")
	addL3(&d, v, "n1", Reach{})
	if len(d.Externals) != 0 || len(d.Floating) != 0 || len(d.Routers) != 1 || d.Routers[0].Gateway != nil {
		t.Fatalf("externals %+v floating %+v routers %+v", d.Externals, d.Floating, d.Routers)
	}
}

// TestMetaAddrsAreDistinctAndStay: every port gets its own link-local
// address, never the metadata server's, and keeps it when others come and go.
func TestMetaAddrsAreDistinctAndStay(t *testing.T) {
	var ids []string
	for i := 0; i < 2000; i++ {
		ids = append(ids, fmt.Sprintf("port-%d", i))
	}
	first := metaAddrs(ids, nil)
	seen := map[netip.Addr]bool{}
	for _, id := range ids {
		a := first[id]
		if !a.IsValid() || !netip.MustParsePrefix("169.254.0.0/16").Contains(a) || a == metadataServer || seen[a] {
			t.Fatalf("port %s got %v", id, a)
		}
		seen[a] = true
	}
	next := metaAddrs(append(ids[1:], "new"), first)
	for _, id := range ids[1:] {
		if next[id] != first[id] {
			t.Fatalf("port %s moved from %v to %v", id, first[id], next[id])
		}
	}
	if a := next["new"]; !a.IsValid() || seen[a] && a != first[ids[0]] {
		t.Fatalf("new port got %v", a)
	}
}

// TestAgentMetadataAndFloatingReports: the metadata server finds a port by
// the source address the agent gave it, and a floating IP is reported
// ACTIVE only when the apply succeeded and its port is plugged.
func TestAgentMetadataAndFloatingReports(t *testing.T) {
	v := l3View()
	reports := map[string]string{}
	a := &Agent{Node: "n1", Layer3: true, MetadataDevice: "rsmeta0",
		Reach:          Reach{Flat: map[string]string{"public": "rsext0"}, MACs: map[string]net.HardwareAddr{"rsext0": {2, 0, 0, 0, 0, 1}}},
		ReportFloating: func(_ context.Context, id, status string) error { reports[id] = status; return nil }}
	want := FromView(v, "n1")
	a.addLayer3(&want, v)
	if want.Metadata == nil || want.Metadata.Device != "rsmeta0" || len(want.Ports) != 1 {
		t.Fatalf("metadata %+v ports %+v", want.Metadata, want.Ports)
	}
	if id, ok := a.MetadataPort(want.Ports[0].MetaAddr); !ok || id != "vm1" {
		t.Fatalf("port of %v: %q %v", want.Ports[0].MetaAddr, id, ok)
	}
	if _, ok := a.MetadataPort(netip.MustParseAddr("169.254.169.254")); ok {
		t.Fatal("the server's own address names a port")
	}
	a.reportFloating(context.Background(), v, want, nil, nil)
	if reports["f1"] != "DOWN" || len(reports) != 1 {
		t.Fatalf("unplugged: %v", reports)
	}
	a.reportFloating(context.Background(), v, want, []string{"vm1"}, errors.New("apply failed"))
	if reports["f1"] != "DOWN" {
		t.Fatalf("after a failed apply: %v", reports)
	}
	a.reportFloating(context.Background(), v, want, []string{"vm1"}, nil)
	if reports["f1"] != "ACTIVE" || len(reports) != 1 {
		t.Fatalf("applied: %v", reports)
	}
}
