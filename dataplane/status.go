package dataplane

import (
	"encoding/binary"
	"maps"
	"net"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/rackstack/rackstack/bpf"
	"github.com/rackstack/rackstack/dataplane/dataplaneapi"
)

// The status bodies live in dataplaneapi so that rackctl decodes them
// without linking the BPF loader.
type (
	Status        = dataplaneapi.Status
	DeviceStatus  = dataplaneapi.DeviceStatus
	PortStatus    = dataplaneapi.PortStatus
	ProgramStatus = dataplaneapi.ProgramStatus
	MapStatus     = dataplaneapi.MapStatus
)

// Status reads the programs, maps and counters.
func (d *Dataplane) Status() (Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Status{PinDir: d.cfg.PinDir, Netns: d.cfg.Netns, Attach: "tcx", Drift: d.drift}
	st.Drift.Last = maps.Clone(d.drift.Last)
	if d.cfg.Clsact {
		st.Attach = "clsact"
	}
	attached := func(dev string) bool {
		_, tcx := d.links[dev]
		_, cls := d.clsact[dev]
		return tcx || cls
	}
	if d.cur.uplink != 0 {
		if l, err := d.nl.LinkByIndex(int(d.cur.uplink)); err == nil {
			st.Uplink = &DeviceStatus{Name: l.Attrs().Name, Ifindex: d.cur.uplink, Attached: attached(l.Attrs().Name)}
		}
	}
	for id, dev := range d.plugged {
		p := d.cur.ports[dev.ifindex]
		ps := PortStatus{
			ID: id, Ifindex: dev.ifindex, VLAN: p.Vlan, MAC: net.HardwareAddr(p.Mac[:]).String(),
			Security: p.Flags&flagSecurity != 0, Policy: p.Policy,
		}
		if l, err := d.nl.LinkByIndex(int(dev.ifindex & trunkIfMask)); err == nil {
			ps.Device = l.Attrs().Name
			ps.Attached = attached(ps.Device)
			if vid := dev.ifindex >> trunkShift; vid != 0 { // a subport, on its parent's device
				ps.Device = subportDevice(ps.Device, uint16(vid))
			}
		}
		for _, ip := range p.Ips {
			if ip != 0 {
				var b [4]byte
				binary.NativeEndian.PutUint32(b[:], ip)
				ps.Addrs = append(ps.Addrs, netip.AddrFrom4(b).String()+"/32")
			}
		}
		for k := range d.cur.addrs {
			if k.Ifindex == dev.ifindex {
				ps.Addrs = append(ps.Addrs, netip.PrefixFrom(netip.AddrFrom4(k.Ip), int(k.Prefixlen)-32).String())
			}
		}
		for k := range d.cur.addrs6 {
			if k.Ifindex == dev.ifindex {
				ps.Addrs = append(ps.Addrs, netip.PrefixFrom(netip.AddrFrom16(k.Ip), int(k.Prefixlen)-32).String())
			}
		}
		sort.Strings(ps.Addrs)
		if ps.Security {
			ps.Rules = len(d.cur.policies[p.Policy].keys)
		}
		d.dhcp.mu.Lock()
		_, ps.DHCP = d.dhcp.servers[ps.Device]
		d.dhcp.mu.Unlock()
		st.Ports = append(st.Ports, ps)
	}
	sort.Slice(st.Ports, func(i, j int) bool { return st.Ports[i].ID < st.Ports[j].ID })
	for _, p := range []*ebpf.Program{d.objs.PortIn, d.objs.UplinkIn, d.objs.ExtIn, d.objs.MetaIn} {
		info, err := p.Info()
		if err != nil {
			return st, err
		}
		id, _ := info.ID()
		st.Programs = append(st.Programs, ProgramStatus{Name: info.Name, ID: uint32(id), Tag: info.Tag})
	}
	loaded := map[string]*ebpf.Map{
		bpf.DataplaneMapPorts: d.objs.Ports, bpf.DataplaneMapFdb: d.objs.Fdb, bpf.DataplaneMapNets: d.objs.Nets,
		bpf.DataplaneMapAddrs: d.objs.Addrs, bpf.DataplaneMapAddrs6: d.objs.Addrs6, bpf.DataplaneMapMacs: d.objs.Macs, bpf.DataplaneMapRules: d.objs.Rules,
		bpf.DataplaneMapCt: d.objs.Ct, bpf.DataplaneMapCt6: d.objs.Ct6,
	}
	for name, m := range loaded {
		st.Maps = append(st.Maps, MapStatus{Name: name, Type: m.Type().String(), Entries: countEntries(m), Max: m.MaxEntries()})
	}
	sort.Slice(st.Maps, func(i, j int) bool { return st.Maps[i].Name < st.Maps[j].Name })
	var err error
	st.Counters, err = d.counters()
	return st, err
}

func countEntries(m *ebpf.Map) int {
	var (
		n   int
		key = make([]byte, m.KeySize())
		nxt = make([]byte, m.KeySize())
	)
	var cur any // nil: start from the first key
	for n < int(m.MaxEntries())+1 {
		if err := m.NextKey(cur, &nxt); err != nil {
			break
		}
		n++
		copy(key, nxt)
		cur = key
	}
	return n
}

// PinDir is the bpffs directory of this dataplane's maps and links.
func (d *Dataplane) PinDir() string { return d.cfg.PinDir }
