// Package dataplane loads Rackstack's eBPF programs (bpf/), attaches them to
// the node's port devices and uplink, and keeps their maps equal to the
// desired state: ports, L2 forwarding, VLANs, anti-spoofing and compiled
// security groups. Maps and links are pinned in bpffs, so traffic keeps
// flowing while rackd restarts; Open reads back what the kernel holds and
// the next Apply changes only the difference.
package dataplane

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/bpf"
)

// Config says where the dataplane lives.
type Config struct {
	// PinDir is the bpffs directory for this node's maps and links, e.g.
	// /sys/fs/bpf/rackstack/NODE. It is created (and bpffs mounted at
	// /sys/fs/bpf when nothing is) as needed.
	PinDir string
	// Netns is the path of the network namespace holding the port devices
	// and the uplink (e.g. /run/netns/n1); empty: rackd's own.
	Netns string
	// Clsact attaches with clsact + cls_bpf instead of TCX links, for
	// kernels before 6.6. Open picks it by itself when TCX is missing.
	Clsact bool
	Log    *slog.Logger
	// RAInterval is how often Verify sends the routers' advertisements
	// unsolicited; 0: every 200 s.
	RAInterval time.Duration
}

// Dataplane is one node's loaded programs and maps.
type Dataplane struct {
	cfg  Config
	log  *slog.Logger
	objs bpf.DataplaneObjects
	ns   netns.NsHandle // -1: rackd's own namespace
	nl   *netlink.Handle

	mu      sync.Mutex
	cur     *tables
	links   map[string]link.Link // device name → TCX link
	clsact  map[string]int       // device name → ifindex with our cls_bpf filter
	plugged map[string]device    // port id → device, as of the last Apply
	dhcp    *dhcpServers
	dhcp6   *dhcp6Servers
	subDHCP *trunkDHCPServers // trunks' subports (trunk_dhcp.go)
	drift   DriftStatus
	// gateways are the external gateways to ask for their MACs until
	// ext_in has learnt them (Apply and Verify ask).
	gateways []gatewayProbe
	lastRA   time.Time // when Verify last advertised the routers

	pinLock *os.File // the flock that makes the pins this process's alone
}

// Open loads the programs, reuses the pinned maps and links of a previous
// run, and points those links at the new programs.
func Open(cfg Config) (*Dataplane, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PinDir == "" {
		return nil, errors.New("dataplane: no pin directory")
	}
	if err := mountBPFFS(filepath.Dir(cfg.PinDir)); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.PinDir, "links"), 0o700); err != nil {
		return nil, fmt.Errorf("dataplane: %w", err)
	}
	lock, err := lockPinDir(cfg.PinDir)
	if err != nil {
		return nil, err
	}
	d := &Dataplane{cfg: cfg, log: cfg.Log, ns: -1, links: map[string]link.Link{}, clsact: map[string]int{}, plugged: map[string]device{}, pinLock: lock}
	if cfg.Netns != "" {
		ns, err := netns.GetFromPath(cfg.Netns)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("dataplane: netns %s: %w", cfg.Netns, err)
		}
		d.ns = ns
	}
	if d.ns >= 0 {
		d.nl, err = netlink.NewHandleAt(d.ns)
	} else {
		d.nl, err = netlink.NewHandle()
	}
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("dataplane: netlink: %w", err)
	}
	if err := d.load(); err != nil {
		d.Close()
		return nil, err
	}
	if d.cur, err = d.readTables(); err != nil {
		d.Close()
		return nil, fmt.Errorf("dataplane: read pinned maps: %w", err)
	}
	if err := d.adoptLinks(); err != nil {
		d.Close()
		return nil, err
	}
	d.dhcp = newDHCPServers(d, cfg.Log)
	d.dhcp6 = newDHCP6Servers(d, cfg.Log)
	d.subDHCP = newTrunkDHCPServers(d, cfg.Log)
	return d, nil
}

// load loads the collection with its maps pinned by name. Maps pinned by an
// older, incompatible build are replaced: that interrupts traffic once.
func (d *Dataplane) load() error {
	opts := &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: d.cfg.PinDir}}
	err := bpf.LoadDataplaneObjects(&d.objs, opts)
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		d.log.Warn("pinned dataplane maps are from an incompatible build; recreating them", "dir", d.cfg.PinDir)
		spec, serr := bpf.LoadDataplane()
		if serr != nil {
			return serr
		}
		for name := range spec.Maps {
			os.Remove(filepath.Join(d.cfg.PinDir, name))
		}
		err = bpf.LoadDataplaneObjects(&d.objs, opts)
	}
	if err != nil {
		var verr *ebpf.VerifierError
		if errors.As(err, &verr) {
			return fmt.Errorf("dataplane: load programs: %+v", verr)
		}
		return fmt.Errorf("dataplane: load programs: %w", err)
	}
	return nil
}

// Close releases rackd's handles and the pin directory's lock. Pinned maps
// and links stay, and with them the forwarding: this is what a restart
// does.
func (d *Dataplane) Close() error {
	d.release()
	d.unlock()
	return nil
}

func (d *Dataplane) release() {
	if d.dhcp != nil {
		d.dhcp.close()
	}
	if d.dhcp6 != nil {
		d.dhcp6.close()
	}
	if d.subDHCP != nil {
		d.subDHCP.close()
	}
	for _, l := range d.links {
		l.Close()
	}
	d.objs.Close()
	if d.nl != nil {
		d.nl.Close()
	}
	d.closeNS()
}

func (d *Dataplane) unlock() {
	if d.pinLock != nil {
		d.pinLock.Close()
		d.pinLock = nil
	}
}

// Destroy detaches everything and removes the pins: the node stops
// forwarding tenant traffic.
func (d *Dataplane) Destroy() error {
	d.mu.Lock()
	for name, l := range d.links {
		l.Unpin()
		l.Close()
		delete(d.links, name)
	}
	for dev, idx := range d.clsact {
		d.detachClsact(dev, idx)
	}
	d.mu.Unlock()
	d.release()
	// The lock is dropped only once the pins are gone: another loader
	// waiting for them must not see them removed under it.
	err := os.RemoveAll(d.cfg.PinDir)
	d.unlock()
	return err
}

func (d *Dataplane) closeNS() {
	if d.ns >= 0 {
		d.ns.Close()
		d.ns = -1
	}
}

// inNetns runs fn on a thread inside the dataplane's namespace: attaching
// by ifindex and binding sockets to devices happen where the thread is.
func (d *Dataplane) inNetns(fn func() error) error {
	if d.ns < 0 {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(d.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", d.cfg.Netns, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with this goroutine.
		return errors.Join(ferr, fmt.Errorf("leave netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// mountBPFFS makes dir, mounting bpffs at /sys/fs/bpf first when dir is
// under it and nothing is mounted there yet.
func mountBPFFS(dir string) error {
	const root = "/sys/fs/bpf"
	var st unix.Statfs_t
	if strings.HasPrefix(dir+"/", root+"/") {
		if err := unix.Statfs(root, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
			if err := unix.Mount("bpf", root, "bpf", 0, "mode=0700"); err != nil {
				return fmt.Errorf("dataplane: mount bpffs at %s: %w", root, err)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("dataplane: %w", err)
	}
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("dataplane: %s is not on a bpffs", dir)
	}
	return nil
}

// Apply makes the kernel state equal to want and returns the ids of the
// ports whose devices exist here and are enforced.
func (d *Dataplane) Apply(want Desired) (plugged []string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	devs := map[string]device{}
	for _, p := range want.Ports {
		if dev, ok := d.lookupDevice(p.Device); ok {
			devs[p.Device] = dev
		}
	}
	for _, e := range want.Externals {
		if dev, ok := d.lookupDevice(e.Device); ok {
			devs[e.Device] = dev
		}
	}
	if want.Metadata != nil {
		if dev, ok := d.lookupDevice(want.Metadata.Device); ok {
			devs[want.Metadata.Device] = dev
		}
	}
	sort.Slice(want.Ports, func(i, j int) bool { return want.Ports[i].ID < want.Ports[j].ID })
	keyed := want
	if keyed.Ports, err = subportDevices(want.Ports, devs); err != nil {
		return nil, err
	}
	t, err := compile(keyed, devs)
	if err != nil {
		return nil, err
	}
	if want.Uplink != "" {
		up, ok := d.lookupDevice(want.Uplink)
		if !ok {
			return nil, fmt.Errorf("dataplane: uplink %s not found", want.Uplink)
		}
		t.uplink = up.ifindex
		devs[want.Uplink] = up
	}
	flush := d.flushNeeded(t)
	if err := d.writeTables(t); err != nil {
		return nil, err
	}
	if err := d.flushConntrack(flush); err != nil {
		d.log.Warn("flush conntrack", "err", err)
	}
	d.cur = t

	attach := map[string]*ebpf.Program{}
	plugged = nil
	d.plugged = map[string]device{}
	for i, p := range want.Ports {
		if _, ok := devs[p.Device]; ok {
			attach[p.Device] = d.objs.PortIn
			plugged = append(plugged, p.ID)
			d.plugged[p.ID] = devs[keyed.Ports[i].Device] // a subport: its key
		}
	}
	if want.Uplink != "" {
		attach[want.Uplink] = d.objs.UplinkIn
	}
	for _, e := range want.Externals {
		if e.Device != want.Uplink { // uplink_in takes an external network's frames there
			attach[e.Device] = d.objs.ExtIn
		}
	}
	if want.Metadata != nil {
		attach[want.Metadata.Device] = d.objs.MetaIn
	}
	if err := d.syncLinks(attach, devs); err != nil {
		return plugged, err
	}
	d.gateways = gatewayProbes(want, devs)
	d.resolveGateways()
	if err := d.dhcp.sync(want.Ports, devs); err != nil {
		return plugged, err
	}
	if err := d.dhcp6.sync(want.Ports, devs); err != nil {
		return plugged, err
	}
	if err := d.subDHCP.sync(want.Ports, devs); err != nil {
		return plugged, err
	}
	return plugged, nil
}

func (d *Dataplane) lookupDevice(name string) (device, bool) {
	l, err := d.nl.LinkByName(name)
	if err != nil {
		return device{}, false
	}
	dev := device{ifindex: uint32(l.Attrs().Index), veth: l.Type() == "veth"}
	copy(dev.mac[:], l.Attrs().HardwareAddr)
	// A veth's IFLA_LINK is its peer; the peer's MAC is readable when it
	// is in the same namespace (no link-netnsid).
	if a := l.Attrs(); dev.veth && a.ParentIndex > 0 && a.NetNsID < 0 {
		if peer, err := d.nl.LinkByIndex(a.ParentIndex); err == nil {
			copy(dev.peer[:], peer.Attrs().HardwareAddr)
		}
	}
	return dev, true
}

// flushNeeded lists the ports whose tracked flows must be forgotten: those
// whose policy lost a rule or changed, and those that went away.
func (d *Dataplane) flushNeeded(t *tables) map[uint32]bool {
	lost := map[uint32]bool{}
	for k := range d.cur.rules {
		if _, ok := t.rules[k]; !ok {
			lost[k.Policy] = true
		}
	}
	flush := map[uint32]bool{}
	for idx, old := range d.cur.ports {
		nw, ok := t.ports[idx]
		if !ok || nw.Policy != old.Policy || nw.Flags != old.Flags || lost[old.Policy] {
			flush[idx] = true
		}
	}
	return flush
}

func (d *Dataplane) flushConntrack(ports map[uint32]bool) error {
	if len(ports) == 0 {
		return nil
	}
	return errors.Join(
		flushFlows(d.objs.Ct, ports, func(k bpf.DataplaneCtKey) uint32 { return k.Ifindex }),
		flushFlows(d.objs.Ct6, ports, func(k bpf.DataplaneCt6Key) uint32 { return k.Ifindex }))
}

// flushFlows deletes the flows of ports from a conntrack map.
func flushFlows[K any](m *ebpf.Map, ports map[uint32]bool, port func(K) uint32) error {
	var (
		k    K
		v    bpf.DataplaneCtVal
		dead []K
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if ports[port(k)] {
			dead = append(dead, k)
		}
	}
	for _, k := range dead {
		m.Delete(&k)
	}
	return it.Err()
}

// Ports returns the ids of the ports the last Apply plugged.
func (d *Dataplane) Ports() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.plugged))
	for id := range d.plugged {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// DeviceName is the interface a port is plugged through on its node: "tap"
// and the first 11 characters of the port id, as Nova and Neutron name it.
// Whoever creates the device (the compute agent, a test) uses this name.
func DeviceName(portID string) string {
	if len(portID) > 11 {
		portID = portID[:11]
	}
	return "tap" + portID
}
