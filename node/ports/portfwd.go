package ports

import (
	"net/netip"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/network/netstate"
)

// addPortForwards adds to d the port forwardings to the ports this node
// hosts (here), of floating IPs on external networks it reaches: the
// node of a forwarding's internal port answers for the floating IP's
// address, as the node of an associated port does for its floating IP.
func addPortForwards(d *dataplane.Desired, v *netstate.View, here, reachable map[string]bool) {
	fips := map[string]netstate.FloatingIP{}
	for _, f := range v.Floating {
		fips[f.ID] = f
	}
	for _, pf := range v.PortForwardings {
		f, ok := fips[pf.FloatingIPID]
		if !ok || !here[pf.InternalPortID] || !reachable[f.NetworkID] || f.RouterID == "" || f.FixedPortID != "" {
			continue
		}
		ip, err1 := netip.ParseAddr(f.IP)
		internal, err2 := netip.ParseAddr(pf.InternalIP)
		if err1 != nil || err2 != nil || pf.ExternalPort < 1 || pf.ExternalPort+pf.Count()-1 > 65535 || pf.InternalPort < 1 || pf.InternalPort+pf.Count()-1 > 65535 {
			continue
		}
		d.PortForwards = append(d.PortForwards, dataplane.PortForward{IP: ip, Protocol: pf.Protocol,
			ExternalPort: uint16(pf.ExternalPort), Internal: internal, InternalPort: uint16(pf.InternalPort), Ports: uint16(pf.Count()),
			Port: pf.InternalPortID, Router: f.RouterID, External: f.NetworkID})
	}
}
