package dataplane

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/rackstack/rackstack/bpf"
)

// Counter names, in the order of the C enum in bpf/dataplane.c.
var counterNames = []string{
	"fwd_local", "fwd_uplink", "from_uplink", "flood", "to_host", "ct_new",
	"drop_no_port", "drop_malformed", "drop_spoof_mac", "drop_spoof_ip",
	"drop_sg_egress", "drop_sg_ingress", "drop_no_fdb", "drop_no_uplink",
	"drop_ethertype", "drop_broadcast", "drop_dhcp_server",
	"fwd_routed", "arp_reply", "icmp_reply", "nat_out", "nat_in", "to_meta", "from_meta",
	"drop_no_route", "drop_no_neigh", "snat_new", "drop_nat_ports",
	"drop_too_big", "drop_scope", "frag_orphan", "drop_qos",
}

// readTables reads what the maps hold now: after a restart, the previous
// run's state, which the next Apply only amends.
func (d *Dataplane) readTables() (*tables, error) {
	t := &tables{
		ports: map[uint32]bpf.DataplanePort{}, fdb: map[bpf.DataplaneFdbKey]uint32{},
		nets: map[uint32]bpf.DataplaneNetports{}, addrs: map[bpf.DataplaneAddrKey]uint8{},
		addrs6: map[bpf.DataplaneAddr6Key]uint8{}, macs: map[bpf.DataplaneMacKey]uint8{}, rules: map[bpf.DataplaneRuleKey]uint8{},
		l3: newL3Tables(), l3v6: newL3v6Tables(), meter: newMeterTables(),
		qos: map[uint32]bpf.DataplaneQosCfg{},
	}
	if err := d.readMeters(&t.meter); err != nil {
		return nil, err
	}
	if err := d.readPF(&t.pf); err != nil {
		return nil, err
	}
	if err := readMap(d.objs.Ports, t.ports); err != nil {
		return nil, err
	}
	if err := readMap(d.objs.Fdb, t.fdb); err != nil {
		return nil, err
	}
	if err := readMap(d.objs.Nets, t.nets); err != nil {
		return nil, err
	}
	if err := readMap(d.objs.Addrs, t.addrs); err != nil {
		return nil, err
	}
	if err := readMap(d.objs.Addrs6, t.addrs6); err != nil {
		return nil, err
	}
	if err := readMap(d.objs.Macs, t.macs); err != nil {
		return nil, err
	}
	if err := readMap(d.objs.Rules, t.rules); err != nil {
		return nil, err
	}
	if err := readMap(d.objs.Qos, t.qos); err != nil {
		return nil, err
	}
	var s bpf.DataplaneSettings
	if err := d.objs.Config.Lookup(uint32(0), &s); err != nil {
		return nil, err
	}
	t.uplink = s.Uplink
	o, l := &d.objs, &t.l3
	for _, err := range []error{
		readMap(o.Rifs, l.rifs), readMap(o.Rmacs, l.rmacs), readMap(o.Routes, l.routes),
		readMap(o.Neighs, l.neighs), readMap(o.FipOut, l.fipOut), readMap(o.FipIn, l.fipIn),
		readMap(o.Exts, l.exts), readMap(o.Metas, l.metas), o.Meta.Lookup(uint32(0), &l.meta),
		readMap(o.Rifs6, t.l3v6.rifs6), readMap(o.Rmacs6, t.l3v6.rmacs6), readMap(o.Routes6, t.l3v6.routes6),
		readMap(o.Neighs6, t.l3v6.neighs6), readMap(o.Ras, t.l3v6.ras),
		readMap(o.Exts6, t.l3v6.exts6), readMap(o.Ext6In, t.l3v6.ext6In),
	} {
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

func readMap[K comparable, V any](m *ebpf.Map, into map[K]V) error {
	var (
		k K
		v V
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		into[k] = v
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read map %s: %w", m, err)
	}
	return nil
}

// writeTables brings the maps from d.cur to t: first every addition, from
// the leaves (rules, addresses) to the roots (ports, FDB, networks), then
// every removal in the opposite order, so that a packet never finds a port
// without its rules.
func (d *Dataplane) writeTables(t *tables) error {
	o := &d.objs
	cl, tl := &d.cur.l3, &t.l3
	c6, t6 := &d.cur.l3v6, &t.l3v6
	steps := []func() error{
		func() error { return putMap(o.Neighs6, c6.neighs6, t6.neighs6) },
		func() error { return putMap(o.Exts6, c6.exts6, t6.exts6) },
		func() error { return putMap(o.Ext6In, c6.ext6In, t6.ext6In) },
		func() error { return putMap(o.Routes6, c6.routes6, t6.routes6) },
		func() error { return putMap(o.Rifs6, c6.rifs6, t6.rifs6) },
		func() error { return putMap(o.Rmacs6, c6.rmacs6, t6.rmacs6) },
		func() error { return putMap(o.Ras, c6.ras, t6.ras) },
		// Routing and NAT: what a router MAC leads to before the MAC.
		func() error { return putMap(o.Neighs, cl.neighs, tl.neighs) },
		func() error { return putMap(o.Exts, cl.exts, tl.exts) },
		func() error { return d.putPF(&d.cur.pf, &t.pf) },
		func() error { return putMap(o.FipIn, cl.fipIn, tl.fipIn) },
		func() error { return putMap(o.FipOut, cl.fipOut, tl.fipOut) },
		func() error { return putMap(o.Routes, cl.routes, tl.routes) },
		func() error { return putMap(o.Rifs, cl.rifs, tl.rifs) },
		func() error { return putMap(o.Rmacs, cl.rmacs, tl.rmacs) },
		func() error {
			if tl.meta == cl.meta {
				return nil
			}
			return o.Meta.Put(uint32(0), tl.meta)
		},
		func() error { return putMap(o.Metas, cl.metas, tl.metas) },
		func() error { return putMap(o.Rules, d.cur.rules, t.rules) },
		func() error { return putMap(o.Addrs, d.cur.addrs, t.addrs) },
		func() error { return putMap(o.Addrs6, d.cur.addrs6, t.addrs6) },
		func() error { return putMap(o.Macs, d.cur.macs, t.macs) },
		func() error { return putMap(o.Qos, d.cur.qos, t.qos) },
		func() error { return putMap(o.Ports, d.cur.ports, t.ports) },
		func() error { return putMap(o.Fdb, d.cur.fdb, t.fdb) },
		func() error { return putMap(o.Nets, d.cur.nets, t.nets) },
		func() error {
			if t.uplink == d.cur.uplink {
				return nil
			}
			return o.Config.Put(uint32(0), bpf.DataplaneSettings{Uplink: t.uplink})
		},
		func() error { return deleteMap(o.Nets, d.cur.nets, t.nets) },
		func() error { return deleteMap(o.Fdb, d.cur.fdb, t.fdb) },
		func() error { return deleteMap(o.Ports, d.cur.ports, t.ports) },
		func() error { return d.deleteQoS(d.cur.qos, t.qos) },
		func() error { return deleteMap(o.Macs, d.cur.macs, t.macs) },
		func() error { return deleteMap(o.Addrs, d.cur.addrs, t.addrs) },
		func() error { return deleteMap(o.Addrs6, d.cur.addrs6, t.addrs6) },
		func() error { return deleteMap(o.Rules, d.cur.rules, t.rules) },
		func() error { return deleteMap(o.Metas, cl.metas, tl.metas) },
		func() error { return deleteMap(o.Rmacs, cl.rmacs, tl.rmacs) },
		func() error { return deleteMap(o.Rifs, cl.rifs, tl.rifs) },
		func() error { return deleteMap(o.Routes, cl.routes, tl.routes) },
		func() error { return deleteMap(o.FipOut, cl.fipOut, tl.fipOut) },
		func() error { return deleteMap(o.FipIn, cl.fipIn, tl.fipIn) },
		func() error { return d.deletePF(&d.cur.pf, &t.pf) },
		func() error { return deleteMap(o.Exts, cl.exts, tl.exts) },
		func() error { return deleteMap(o.Neighs, cl.neighs, tl.neighs) },
		func() error { return d.writeMeters(&d.cur.meter, &t.meter) },
		func() error { return deleteMap(o.Ras, c6.ras, t6.ras) },
		func() error { return deleteMap(o.Rmacs6, c6.rmacs6, t6.rmacs6) },
		func() error { return deleteMap(o.Rifs6, c6.rifs6, t6.rifs6) },
		func() error { return deleteMap(o.Routes6, c6.routes6, t6.routes6) },
		func() error { return deleteMap(o.Neighs6, c6.neighs6, t6.neighs6) },
		func() error { return deleteMap(o.Ext6In, c6.ext6In, t6.ext6In) },
		func() error { return deleteMap(o.Exts6, c6.exts6, t6.exts6) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			// Some of t is written: read back what the kernel holds so the
			// next Apply starts from the truth.
			if cur, rerr := d.readTables(); rerr == nil {
				d.cur = cur
			}
			return fmt.Errorf("dataplane: write maps: %w", err)
		}
	}
	return nil
}

func putMap[K, V comparable](m *ebpf.Map, cur, want map[K]V) error {
	for k, v := range want {
		if old, ok := cur[k]; ok && old == v {
			continue
		}
		if err := m.Put(k, v); err != nil {
			return fmt.Errorf("%s: put: %w", m, err)
		}
	}
	return nil
}

func deleteMap[K, V comparable](m *ebpf.Map, cur, want map[K]V) error {
	for k := range cur {
		if _, ok := want[k]; ok {
			continue
		}
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("%s: delete: %w", m, err)
		}
	}
	return nil
}

// counters sums the per-CPU counters.
func (d *Dataplane) counters() (map[string]uint64, error) {
	out := map[string]uint64{}
	for i, name := range counterNames {
		var per []uint64
		if err := d.objs.Counters.Lookup(uint32(i), &per); err != nil {
			return nil, err
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[name] = sum
	}
	return out, nil
}
