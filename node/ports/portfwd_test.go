package ports

import (
	"fmt"
	"net"
	"testing"

	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// TestPortForwardsFromView: node n1 is asked to enforce the forwardings
// to its own port only, of floating IPs set on a router and associated
// with no port.
func TestPortForwardsFromView(t *testing.T) {
	v := l3View()
	v.Floating = append(v.Floating, netstate.FloatingIP{ID: "f4", NetworkID: "ext", IP: "172.24.4.6", RouterID: "r1"})
	v.PortForwardings = []netstate.PortForwarding{
		{ID: "pf1", FloatingIPID: "f4", Protocol: "tcp", ExternalPort: 2222, InternalPort: 22, InternalIP: "10.0.0.5", InternalPortID: "vm1"},
		{ID: "pf1r", FloatingIPID: "f4", Protocol: "tcp", ExternalPort: 3000, InternalPort: 4000, Ports: 100, InternalIP: "10.0.0.5", InternalPortID: "vm1"},
		{ID: "pf1x", FloatingIPID: "f4", Protocol: "tcp", ExternalPort: 65500, InternalPort: 500, Ports: 100, InternalIP: "10.0.0.5", InternalPortID: "vm1"}, // past 65535
		{ID: "pf2", FloatingIPID: "f4", Protocol: "udp", ExternalPort: 53, InternalPort: 53, InternalIP: "10.0.1.5", InternalPortID: "vm2"},                  // on n2
		{ID: "pf3", FloatingIPID: "f3", Protocol: "tcp", ExternalPort: 80, InternalPort: 80, InternalIP: "10.0.0.5", InternalPortID: "vm1"},                  // f3: no router
	}
	d := FromView(v, "n1")
	addL3(&d, v, "n1", Reach{Flat: map[string]string{"public": "rsext0"}, MACs: map[string]net.HardwareAddr{"rsext0": {2, 0, 0, 0, 0, 1}}})
	var got []string
	for _, f := range d.PortForwards {
		got = append(got, fmt.Sprintf("%s %s %s:%d %s:%d x%d %s %s", f.Port, f.Protocol, f.IP, f.ExternalPort, f.Internal, f.InternalPort, f.Ports, f.Router, f.External))
	}
	want := []string{"vm1 tcp 172.24.4.6:2222 10.0.0.5:22 x1 r1 ext", "vm1 tcp 172.24.4.6:3000 10.0.0.5:4000 x100 r1 ext"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("port forwards %q, want %q", got, want)
	}
}
