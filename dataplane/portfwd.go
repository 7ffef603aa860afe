package dataplane

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/rackstack/rackstack/bpf"
)

// PortForward is one of a floating IP's port forwardings whose internal
// port is on this node (Neutron's floating-ip-port-forwarding): what
// arrives for IP on Protocol/ExternalPort from External goes to
// Internal:InternalPort of Port, and what that socket sends out of Router
// leaves from IP:ExternalPort. bpf/portfwd.h enforces it.
type PortForward struct {
	IP           netip.Addr // the floating IP, on External
	Protocol     string     // "tcp" or "udp"
	ExternalPort uint16
	Internal     netip.Addr // a fixed IPv4 address of Port
	InternalPort uint16
	// Ports is how many consecutive ports from ExternalPort go to as many
	// from InternalPort (a port range); 0 is one. Each port is an entry
	// of pf_in and pf_out: the maps stay exact-match lookups.
	Ports    uint16
	Port     string // Port.ID, hosted on this node
	Router   string // Router.ID that joins the port's subnet to External
	External string // External.ID
}

func (f PortForward) count() uint16 {
	if f.Ports == 0 {
		return 1
	}
	return f.Ports
}

// pfTables are the pf_in and pf_out maps' content.
type pfTables struct {
	in, out map[bpf.DataplanePfKey]bpf.DataplanePfVal
}

func newPFTables() pfTables {
	return pfTables{in: map[bpf.DataplanePfKey]bpf.DataplanePfVal{}, out: map[bpf.DataplanePfKey]bpf.DataplanePfVal{}}
}

var pfProtocols = map[string]uint8{"tcp": 6, "udp": 17}

// compilePortForwards adds the forwardings of d's local ports to t; the
// floating IP's address goes into fip_in with no port of its own (ARP
// answered, what comes in to it looked up in pf_in). compileL3 has
// filled t.l3's external networks.
func compilePortForwards(d Desired, devs map[string]device, t *tables) error {
	t.pf = newPFTables()
	ports := map[string]Port{}
	for _, p := range d.Ports {
		if _, ok := devs[p.Device]; ok {
			ports[p.ID] = p
		}
	}
	exts := map[string]External{}
	for _, e := range d.Externals {
		exts[e.ID] = e
	}
	routers := map[string]Router{}
	for _, r := range d.Routers {
		routers[r.ID] = r
	}
	for _, f := range d.PortForwards {
		p, ok := ports[f.Port]
		if !ok {
			continue // not plugged here (yet)
		}
		e, ok := exts[f.External]
		dev, found := devs[e.Device]
		if !ok || !found {
			return fmt.Errorf("port forwarding %s %s:%d: external %s is not one this node reaches", f.Protocol, f.IP, f.ExternalPort, f.External)
		}
		proto, ok := pfProtocols[f.Protocol]
		switch {
		case !ok:
			return fmt.Errorf("port forwarding %s:%d: protocol %q is not tcp or udp", f.IP, f.ExternalPort, f.Protocol)
		case f.ExternalPort == 0 || f.InternalPort == 0:
			return fmt.Errorf("port forwarding %s %s:%d: port 0", f.Protocol, f.IP, f.ExternalPort)
		case int(f.ExternalPort)+int(f.count())-1 > 65535 || int(f.InternalPort)+int(f.count())-1 > 65535:
			return fmt.Errorf("port forwarding %s %s:%d: %d ports run past 65535", f.Protocol, f.IP, f.ExternalPort, f.count())
		case !f.IP.Is4() || !f.Internal.Is4() || !e.Prefix.Contains(f.IP):
			return fmt.Errorf("port forwarding %s %s:%d: not an IPv4 address of external %s (%s), or internal %s not IPv4", f.Protocol, f.IP, f.ExternalPort, e.ID, e.Prefix, f.Internal)
		}
		var rmac net.HardwareAddr
		for _, ri := range routers[f.Router].Interfaces {
			if ri.VLAN == p.VLAN && ri.IP.Masked().Contains(f.Internal) {
				rmac = ri.MAC
			}
		}
		if rmac == nil {
			return fmt.Errorf("port forwarding %s %s:%d: router %s has no interface on port %s's subnet of %s", f.Protocol, f.IP, f.ExternalPort, f.Router, f.Port, f.Internal)
		}
		ext, port := extKey(dev.ifindex, e.VLAN), devs[p.Device].ifindex
		for i := uint16(0); i < f.count(); i++ {
			t.pf.in[bpf.DataplanePfKey{Id: ext, Proto: proto, Port: f.ExternalPort + i, Ip: ip4(f.IP)}] =
				bpf.DataplanePfVal{Ifindex: port, Ip: ip4(f.Internal), Mac: mac6(rmac), Port: f.InternalPort + i}
			t.pf.out[bpf.DataplanePfKey{Id: port, Proto: proto, Port: f.InternalPort + i, Ip: ip4(f.Internal)}] =
				bpf.DataplanePfVal{Ifindex: ext, Ip: ip4(f.IP), Port: f.ExternalPort + i}
		}
		fip := bpf.DataplaneNatKey{Ifindex: ext, Ip: ip4(f.IP)}
		if _, taken := t.l3.fipIn[fip]; !taken {
			t.l3.fipIn[fip] = bpf.DataplaneNat{}
		}
	}
	return nil
}

func (d *Dataplane) readPF(t *pfTables) error {
	*t = newPFTables()
	if err := readMap(d.objs.PfIn, t.in); err != nil {
		return err
	}
	return readMap(d.objs.PfOut, t.out)
}

// putPF and deletePF are writeTables' steps for the forwardings: added
// before the floating IP's fip_in entry leads to them, deleted after.
func (d *Dataplane) putPF(cur, want *pfTables) error {
	if err := putMap(d.objs.PfIn, cur.in, want.in); err != nil {
		return err
	}
	return putMap(d.objs.PfOut, cur.out, want.out)
}

func (d *Dataplane) deletePF(cur, want *pfTables) error {
	if err := deleteMap(d.objs.PfOut, cur.out, want.out); err != nil {
		return err
	}
	return deleteMap(d.objs.PfIn, cur.in, want.in)
}

func diffPF(drift Drift, kernel, want *pfTables) {
	for name, n := range map[string]int{bpf.DataplaneMapPfIn: diffMap(kernel.in, want.in), bpf.DataplaneMapPfOut: diffMap(kernel.out, want.out)} {
		if n > 0 {
			drift[name] += n
		}
	}
}

func (d *Dataplane) pfMaps() map[string]*ebpf.Map {
	return map[string]*ebpf.Map{bpf.DataplaneMapPfIn: d.objs.PfIn, bpf.DataplaneMapPfOut: d.objs.PfOut}
}
