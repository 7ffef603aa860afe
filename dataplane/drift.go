package dataplane

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/bpf"
	"github.com/rackstack/rackstack/dataplane/dataplaneapi"
)

// The drift bodies live in dataplaneapi with the rest of the status.
type (
	DriftStatus = dataplaneapi.DriftStatus
	Drift       = dataplaneapi.Drift
)

// Verify compares the kernel's maps and pins with what the last Apply
// wrote and puts back whatever differs. Apply alone never notices: it
// writes only the difference between the new desired state and the old
// one, trusting the maps to hold the old.
func (d *Dataplane) Verify() (drift Drift, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer func() {
		d.drift.Error = ""
		if err != nil {
			d.drift.Error = err.Error()
		}
	}()
	drift = Drift{}
	d.resolveGateways()
	d.advertise()
	pinErr := d.verifyPins(drift)
	kernel, err := d.readTables()
	if err != nil {
		return drift, errors.Join(pinErr, fmt.Errorf("dataplane: read maps: %w", err))
	}
	diffTables(drift, kernel, d.cur)
	now := time.Now()
	d.drift.VerifiedAt = now
	if len(drift) == 0 {
		return nil, pinErr
	}
	d.drift.Repaired += uint64(drift.Total())
	d.drift.Last, d.drift.LastAt = drift, now
	want := d.cur
	d.cur = kernel
	if err := d.writeTables(want); err != nil {
		return drift, errors.Join(pinErr, err)
	}
	d.cur = want
	return drift, pinErr
}

// diffTables counts, map by map, the entries of want that kernel lacks or
// holds with another value, and the entries kernel holds beyond want.
func diffTables(drift Drift, kernel, want *tables) {
	count := func(name string, n int) {
		if n > 0 {
			drift[name] += n
		}
	}
	count(bpf.DataplaneMapPorts, diffMap(kernel.ports, want.ports))
	count(bpf.DataplaneMapFdb, diffMap(kernel.fdb, want.fdb))
	count(bpf.DataplaneMapNets, diffMap(kernel.nets, want.nets))
	count(bpf.DataplaneMapAddrs, diffMap(kernel.addrs, want.addrs))
	count(bpf.DataplaneMapAddrs6, diffMap(kernel.addrs6, want.addrs6))
	count(bpf.DataplaneMapMacs, diffMap(kernel.macs, want.macs))
	count(bpf.DataplaneMapRules, diffMap(kernel.rules, want.rules))
	count(bpf.DataplaneMapQos, diffMap(kernel.qos, want.qos))
	if kernel.uplink != want.uplink {
		count(bpf.DataplaneMapConfig, 1)
	}
	k, w := &kernel.l3, &want.l3
	count(bpf.DataplaneMapRifs, diffMap(k.rifs, w.rifs))
	count(bpf.DataplaneMapRmacs, diffMap(k.rmacs, w.rmacs))
	count(bpf.DataplaneMapRoutes, diffMap(k.routes, w.routes))
	count(bpf.DataplaneMapNeighs, diffMap(k.neighs, w.neighs))
	count(bpf.DataplaneMapFipOut, diffMap(k.fipOut, w.fipOut))
	count(bpf.DataplaneMapFipIn, diffMap(k.fipIn, w.fipIn))
	count(bpf.DataplaneMapExts, diffMap(k.exts, w.exts))
	count(bpf.DataplaneMapMetas, diffMap(k.metas, w.metas))
	if k.meta != w.meta {
		count(bpf.DataplaneMapMeta, 1)
	}
	diffMeters(drift, &kernel.meter, &want.meter)
	diffPF(drift, &kernel.pf, &want.pf)
	k6, w6 := &kernel.l3v6, &want.l3v6
	count(bpf.DataplaneMapRifs6, diffMap(k6.rifs6, w6.rifs6))
	count(bpf.DataplaneMapRmacs6, diffMap(k6.rmacs6, w6.rmacs6))
	count(bpf.DataplaneMapRoutes6, diffMap(k6.routes6, w6.routes6))
	count(bpf.DataplaneMapNeighs6, diffMap(k6.neighs6, w6.neighs6))
	count(bpf.DataplaneMapRas, diffMap(k6.ras, w6.ras))
	count(bpf.DataplaneMapExts6, diffMap(k6.exts6, w6.exts6))
	count(bpf.DataplaneMapExt6In, diffMap(k6.ext6In, w6.ext6In))
}

func diffMap[K, V comparable](kernel, want map[K]V) int {
	n := 0
	for k, v := range want {
		if got, ok := kernel[k]; !ok || got != v {
			n++
		}
	}
	for k := range kernel {
		if _, ok := want[k]; !ok {
			n++
		}
	}
	return n
}

// verifyPins makes the pins name this process's maps and links again: a
// restarted rackd finds its state through them, so a pin removed or
// replaced would cost the next restart every port.
func (d *Dataplane) verifyPins(drift Drift) error {
	if !sameInode(d.pinLock, d.cfg.PinDir) {
		// The directory was removed behind us; the lock went with it.
		if err := os.MkdirAll(filepath.Join(d.cfg.PinDir, "links"), 0o700); err != nil {
			return fmt.Errorf("dataplane: %w", err)
		}
		lock, err := lockPinDir(d.cfg.PinDir)
		if err != nil {
			return err
		}
		d.unlock()
		d.pinLock = lock
		drift["pin_dir"]++
	}
	o := &d.objs
	maps := map[string]*ebpf.Map{
		bpf.DataplaneMapPorts: o.Ports, bpf.DataplaneMapFdb: o.Fdb, bpf.DataplaneMapNets: o.Nets,
		bpf.DataplaneMapAddrs: o.Addrs, bpf.DataplaneMapAddrs6: o.Addrs6, bpf.DataplaneMapMacs: o.Macs, bpf.DataplaneMapRules: o.Rules,
		bpf.DataplaneMapConfig: o.Config, bpf.DataplaneMapCt: o.Ct, bpf.DataplaneMapCt6: o.Ct6, bpf.DataplaneMapCounters: o.Counters,
		bpf.DataplaneMapRifs: o.Rifs, bpf.DataplaneMapRmacs: o.Rmacs, bpf.DataplaneMapRoutes: o.Routes,
		bpf.DataplaneMapNeighs: o.Neighs, bpf.DataplaneMapExtNeighs: o.ExtNeighs, bpf.DataplaneMapFipOut: o.FipOut,
		bpf.DataplaneMapFipIn: o.FipIn, bpf.DataplaneMapExts: o.Exts, bpf.DataplaneMapMeta: o.Meta,
		bpf.DataplaneMapMetas: o.Metas, bpf.DataplaneMapMetaCt: o.MetaCt, bpf.DataplaneMapSnat: o.Snat,
		bpf.DataplaneMapRifs6: o.Rifs6, bpf.DataplaneMapRmacs6: o.Rmacs6, bpf.DataplaneMapRoutes6: o.Routes6,
		bpf.DataplaneMapNeighs6: o.Neighs6, bpf.DataplaneMapRas: o.Ras,
		bpf.DataplaneMapExts6: o.Exts6, bpf.DataplaneMapExt6In: o.Ext6In, bpf.DataplaneMapExtNeighs6: o.ExtNeighs6,
		bpf.DataplaneMapRel6: o.Rel6, bpf.DataplaneMapFrags: o.Frags, bpf.DataplaneMapFragRels: o.FragRels,
		bpf.DataplaneMapQos: o.Qos, bpf.DataplaneMapQosBuckets: o.QosBuckets,
		bpf.DataplaneMapTrunkFrom: o.TrunkFrom,
	}
	for name, m := range d.meterMaps() {
		maps[name] = m
	}
	for name, m := range d.pfMaps() {
		maps[name] = m
	}
	var errs []error
	for name, m := range maps {
		path := filepath.Join(d.cfg.PinDir, name)
		if pinnedMapIs(path, m) {
			continue
		}
		drift["pins"]++
		os.Remove(path)
		m.Unpin()
		if err := m.Pin(path); err != nil {
			errs = append(errs, fmt.Errorf("pin map %s: %w", name, err))
		}
	}
	if err := os.MkdirAll(filepath.Join(d.cfg.PinDir, "links"), 0o700); err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	for dev, l := range d.links {
		path := d.linkPin(dev)
		if pinnedLinkIs(path, l) {
			continue
		}
		drift["pins"]++
		os.Remove(path)
		l.Unpin()
		if err := l.Pin(path); err != nil {
			errs = append(errs, fmt.Errorf("pin link of %s: %w", dev, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	return nil
}

// sameInode says whether f is still the file at path.
func sameInode(f *os.File, path string) bool {
	if f == nil {
		return false
	}
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func pinnedMapIs(path string, m *ebpf.Map) bool {
	pinned, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return false
	}
	defer pinned.Close()
	a, err1 := pinned.Info()
	b, err2 := m.Info()
	if err1 != nil || err2 != nil {
		return false
	}
	ida, ok1 := a.ID()
	idb, ok2 := b.ID()
	return ok1 && ok2 && ida == idb
}

func pinnedLinkIs(path string, l link.Link) bool {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return false
	}
	pinned, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return false
	}
	defer pinned.Close()
	a, err1 := pinned.Info()
	b, err2 := l.Info()
	return err1 == nil && err2 == nil && a.ID == b.ID
}

// Drift returns what the checks of the kernel found so far.
func (d *Dataplane) Drift() DriftStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.drift
	st.Last = maps.Clone(d.drift.Last)
	return st
}
