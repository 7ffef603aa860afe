package dataplane

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/bpf"
)

// L3 metering: the traffic through a router's external gateway counted
// per Neutron metering label (bpf/metering.h). compileMeters turns
// Desired.Meters into each metered router's rule set; writeMeters gives
// each label a slot of the counters array, keeps it while the label
// lasts (its name is pinned beside the counts, so a restart keeps it too)
// and starts a new label's counts from zero.

// Meter is a metering label as this node counts it.
type Meter struct {
	Label   string   // the label's id, at most 48 bytes
	Project string   // the label's project, at most 64 bytes
	Routers []string // Router.IDs whose gateway traffic it counts
	Rules   []MeterRule
}

// MeterRule matches a direction's traffic through the gateway by its two
// sides: Local, the port's fixed address (after DNAT in, before SNAT out),
// and Remote, the outside address. A zero prefix matches any. An Excluded
// rule's matches are not counted whatever the label's other rules say.
// IPv6 rules are left out: routers route IPv4 only.
type MeterRule struct {
	Egress        bool
	Excluded      bool
	Local, Remote netip.Prefix
}

// Limits of bpf/metering.h.
const (
	meterLabels = 32
	meterRules  = 64
	meterSlots  = 1024
)

// meterTables is the content of the metering maps. labels is what compile
// wants (label id → project); slots and sets are what writeMeters made of
// it, slots numbered.
type meterTables struct {
	labels map[string]string
	want   map[uint32][]meterUse // router → its labels in order, with rules
	slots  map[uint32]bpf.DataplaneMeterLabel
	sets   map[uint32]bpf.DataplaneMeterSet
	addrs  map[bpf.DataplaneMeterAddrKey]uint32
	// dropped counts the rules and labels left out for lack of room.
	dropped int
	// numbered says slots and sets are made: Verify writes them again as
	// they are, a repair rather than a new state.
	numbered bool
}

type meterUse struct {
	label string
	rules []bpf.DataplaneMeterRule
}

func newMeterTables() meterTables {
	return meterTables{labels: map[string]string{}, want: map[uint32][]meterUse{}, slots: map[uint32]bpf.DataplaneMeterLabel{},
		sets: map[uint32]bpf.DataplaneMeterSet{}, addrs: map[bpf.DataplaneMeterAddrKey]uint32{}}
}

// compileMeters fills t.meter from d, after compileL3: what comes in to a
// floating IP, a gateway address or a fixed IP routed without NAT is
// metered for the router that owns the address.
func compileMeters(d Desired, t *tables) {
	m := newMeterTables()
	meters := slices.Clone(d.Meters)
	sort.SliceStable(meters, func(i, j int) bool { return meters[i].Label < meters[j].Label })
	for _, me := range meters {
		var rules []bpf.DataplaneMeterRule
		for _, r := range me.Rules {
			br, ok := meterRule(r)
			if ok {
				rules = append(rules, br)
			}
		}
		used := false
		for _, rid := range me.Routers {
			id := routerID(rid)
			uses := m.want[id]
			n := 0
			for _, u := range uses {
				n += len(u.rules)
			}
			if len(uses) >= meterLabels || n+len(rules) > meterRules {
				m.dropped++
				continue
			}
			m.want[id] = append(uses, meterUse{label: me.Label, rules: rules})
			used = true
		}
		if used {
			m.labels[me.Label] = me.Project
		}
	}
	if len(m.want) > 0 {
		gateways := map[bpf.DataplaneMeterAddrKey]uint32{}
		for k, rt := range t.l3.routes {
			if rt.Flags&routeExternal != 0 && k.Prefixlen == 32 {
				gateways[bpf.DataplaneMeterAddrKey{Ext: rt.Vlan, Ip: rt.Nexthop}] = k.Router
			}
		}
		for k, n := range t.l3.fipIn {
			key := bpf.DataplaneMeterAddrKey{Ext: k.Ifindex, Ip: k.Ip}
			router, ok := gateways[key]
			if n.Ifindex != 0 {
				rif, found := t.l3.rmacs[bpf.DataplaneFdbKey{Vlan: t.ports[n.Ifindex].Vlan, Mac: n.Mac}]
				router, ok = rif.Router, found
			}
			if _, metered := m.want[router]; ok && metered {
				m.addrs[key] = router
			}
		}
	}
	t.meter = m
}

// meterRule is r as the program matches it; false for an IPv6 rule.
func meterRule(r MeterRule) (bpf.DataplaneMeterRule, bool) {
	side := func(p netip.Prefix) (net, mask [4]byte, ok bool) {
		if !p.IsValid() {
			return net, mask, true
		}
		if !p.Addr().Is4() {
			return net, mask, false
		}
		net = p.Masked().Addr().As4()
		for i := 0; i < p.Bits(); i++ {
			mask[i/8] |= 0x80 >> (i % 8)
		}
		return net, mask, true
	}
	var br bpf.DataplaneMeterRule
	var ok1, ok2 bool
	br.Local, br.Lmask, ok1 = side(r.Local)
	br.Remote, br.Rmask, ok2 = side(r.Remote)
	if r.Egress {
		br.Dir = 1
	}
	if r.Excluded {
		br.Excluded = 1
	}
	return br, ok1 && ok2
}

func labelName(id, project string) bpf.DataplaneMeterLabel {
	var l bpf.DataplaneMeterLabel
	copy(l.Id[:], id)
	copy(l.Project[:], project)
	return l
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// numberMeters gives t's labels their slots: the one each had in cur, a
// free one for a new label. It returns the new slots, whose counts must
// start from zero.
func numberMeters(cur, t *meterTables) ([]uint32, error) {
	slotOf := map[string]uint32{}
	for slot, l := range cur.slots {
		id := cString(l.Id[:])
		if project, ok := t.labels[id]; ok {
			slotOf[id] = slot
			t.slots[slot] = labelName(id, project)
		}
	}
	ids := make([]string, 0, len(t.labels))
	for id := range t.labels {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var fresh []uint32
	next := uint32(0)
	for _, id := range ids {
		if _, ok := slotOf[id]; ok {
			continue
		}
		for ; next < meterSlots; next++ {
			if _, used := t.slots[next]; !used {
				break
			}
		}
		if next == meterSlots {
			return nil, fmt.Errorf("meter labels: more than %d on this node", meterSlots)
		}
		slotOf[id] = next
		t.slots[next] = labelName(id, t.labels[id])
		fresh = append(fresh, next)
	}
	for router, uses := range t.want {
		var set bpf.DataplaneMeterSet
		for i, u := range uses {
			set.Slots[i] = slotOf[u.label]
			for _, r := range u.rules {
				r.Label = uint8(i)
				set.Rules[set.Nrules] = r
				set.Nrules++
			}
		}
		t.sets[router] = set
	}
	return fresh, nil
}

// writeMeters brings the metering maps from cur to t: new labels' counts
// zeroed before any router counts for them, routers' rules before the
// addresses that lead to them; removals the other way round.
func (d *Dataplane) writeMeters(cur, t *meterTables) error {
	var fresh []uint32
	if !t.numbered {
		var err error
		if fresh, err = numberMeters(cur, t); err != nil {
			return err
		}
		t.numbered = true
	}
	if t.dropped > 0 {
		d.log.Warn("meter labels left out on some routers: more than fit (32 labels, 64 rules a router)", "left_out", t.dropped)
	}
	o := &d.objs
	zero := make([]bpf.DataplaneMeterCount, ebpf.MustPossibleCPU())
	for _, slot := range fresh {
		for dir := uint32(0); dir < 2; dir++ {
			if err := o.MeterCounts.Put(slot*2+dir, zero); err != nil {
				return fmt.Errorf("%s: zero: %w", o.MeterCounts, err)
			}
		}
	}
	for _, step := range []func() error{
		func() error { return putMap(o.MeterLabels, cur.slots, t.slots) },
		func() error { return putMap(o.Meters, cur.sets, t.sets) },
		func() error { return putMap(o.MeterAddrs, cur.addrs, t.addrs) },
		func() error { return deleteMap(o.MeterAddrs, cur.addrs, t.addrs) },
		func() error { return deleteMap(o.Meters, cur.sets, t.sets) },
		func() error { return deleteMap(o.MeterLabels, cur.slots, t.slots) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// readMeters reads what the metering maps hold.
func (d *Dataplane) readMeters(m *meterTables) error {
	o := &d.objs
	for _, err := range []error{readMap(o.MeterLabels, m.slots), readMap(o.Meters, m.sets), readMap(o.MeterAddrs, m.addrs)} {
		if err != nil {
			return err
		}
	}
	for _, l := range m.slots {
		m.labels[cString(l.Id[:])] = cString(l.Project[:])
	}
	m.numbered = true
	return nil
}

// meterMaps are the metering maps by their pinned names.
func (d *Dataplane) meterMaps() map[string]*ebpf.Map {
	o := &d.objs
	return map[string]*ebpf.Map{bpf.DataplaneMapMeters: o.Meters, bpf.DataplaneMapMeterAddrs: o.MeterAddrs,
		bpf.DataplaneMapMeterCounts: o.MeterCounts, bpf.DataplaneMapMeterLabels: o.MeterLabels}
}

// diffMeters counts what the kernel's metering maps hold other than want.
func diffMeters(drift Drift, kernel, want *meterTables) {
	for name, n := range map[string]int{
		bpf.DataplaneMapMeters: diffMap(kernel.sets, want.sets), bpf.DataplaneMapMeterAddrs: diffMap(kernel.addrs, want.addrs),
		bpf.DataplaneMapMeterLabels: diffMap(kernel.slots, want.slots),
	} {
		if n > 0 {
			drift[name] += n
		}
	}
}

// MeterCount is what a label counted on this node in one direction.
type MeterCount struct {
	Label, Project string
	Egress         bool
	Bytes, Packets uint64
}

// MeterCounts sums each label's per-CPU counts. It reads the labels'
// names from their pinned map rather than from the last Apply, so that a
// scrape never waits for an Apply.
func (d *Dataplane) MeterCounts() ([]MeterCount, error) {
	slots := map[uint32]bpf.DataplaneMeterLabel{}
	if err := readMap(d.objs.MeterLabels, slots); err != nil {
		return nil, err
	}
	var out []MeterCount
	for slot, l := range slots {
		for dir := uint32(0); dir < 2; dir++ {
			var per []bpf.DataplaneMeterCount
			if err := d.objs.MeterCounts.Lookup(slot*2+dir, &per); err != nil {
				return nil, fmt.Errorf("read meter counts: %w", err)
			}
			c := MeterCount{Label: cString(l.Id[:]), Project: cString(l.Project[:]), Egress: dir == 1}
			for _, v := range per {
				c.Bytes += v.Bytes
				c.Packets += v.Packets
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Label != out[j].Label {
			return out[i].Label < out[j].Label
		}
		return !out[i].Egress && out[j].Egress
	})
	return out, nil
}

var (
	descMeterBytes   = prometheus.NewDesc("rackstack_dataplane_metering_bytes_total", "IP bytes through routers' external gateways on this node that a Neutron metering label counts, by label, its project and direction (ingress: in from outside).", []string{"label", "project", "direction"}, nil)
	descMeterPackets = prometheus.NewDesc("rackstack_dataplane_metering_packets_total", "Packets through routers' external gateways on this node that a Neutron metering label counts, by label, its project and direction.", []string{"label", "project", "direction"}, nil)
)

// collectMeters sends the metering counts.
func (m *Metrics) collectMeters(ch chan<- prometheus.Metric) {
	cs, err := m.d.MeterCounts()
	if err != nil {
		return
	}
	for _, c := range cs {
		dir := "ingress"
		if c.Egress {
			dir = "egress"
		}
		ch <- prometheus.MustNewConstMetric(descMeterBytes, prometheus.CounterValue, float64(c.Bytes), c.Label, c.Project, dir)
		ch <- prometheus.MustNewConstMetric(descMeterPackets, prometheus.CounterValue, float64(c.Packets), c.Label, c.Project, dir)
	}
}
