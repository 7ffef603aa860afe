package instances

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/dataplane"
)

// guestMeta is what metrics label a guest's figures with.
type guestMeta struct {
	project string
	ports   []string
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture rackd runs on.
const clockTicks = 100

var (
	instanceLabels = []string{"server_id", "project_id"}
	portLabels     = []string{"server_id", "project_id", "port_id"}

	descCPU       = prometheus.NewDesc("rackstack_instance_cpu_seconds_total", "CPU time the guest's QEMU process used (all vCPUs and emulation threads).", instanceLabels, nil)
	descMemory    = prometheus.NewDesc("rackstack_instance_memory_bytes", "Resident memory of the guest's QEMU process.", instanceLabels, nil)
	descDiskRead  = prometheus.NewDesc("rackstack_instance_disk_read_bytes_total", "Bytes the guest's QEMU process read from storage (/proc/<pid>/io read_bytes).", instanceLabels, nil)
	descDiskWrite = prometheus.NewDesc("rackstack_instance_disk_write_bytes_total", "Bytes the guest's QEMU process wrote to storage (/proc/<pid>/io write_bytes).", instanceLabels, nil)
	// The tap's receive is the guest's transmit: the figures are named
	// from the guest's side.
	descNetRxBytes   = prometheus.NewDesc("rackstack_instance_network_receive_bytes_total", "Bytes the guest received on a port (its tap's transmit counter in /proc/net/dev).", portLabels, nil)
	descNetTxBytes   = prometheus.NewDesc("rackstack_instance_network_transmit_bytes_total", "Bytes the guest sent on a port (its tap's receive counter).", portLabels, nil)
	descNetRxPackets = prometheus.NewDesc("rackstack_instance_network_receive_packets_total", "Packets the guest received on a port.", portLabels, nil)
	descNetTxPackets = prometheus.NewDesc("rackstack_instance_network_transmit_packets_total", "Packets the guest sent on a port.", portLabels, nil)
	descNetRxDrops   = prometheus.NewDesc("rackstack_instance_network_receive_drops_total", "Packets for the guest dropped at its tap (the tap's transmit drops).", portLabels, nil)
	descNetTxDrops   = prometheus.NewDesc("rackstack_instance_network_transmit_drops_total", "Packets from the guest dropped at its tap (the tap's receive drops).", portLabels, nil)
)

// Guest is a guest process as the metrics label it.
type Guest struct {
	ServerID, Project string
	PID               int
	Ports             []string
}

// Metrics collects the rackstack_instance_* families of this node's guests
// on each scrape: two small reads per guest (/proc/<pid>/stat and io) and
// one of /proc/net/dev for every tap at once; no QMP round trip.
type Metrics struct {
	// Guests lists the guest processes running now.
	Guests func() []Guest
	// Proc is /proc and NetDev /proc/net/dev (the counters of every
	// interface of rackd's namespace, where the taps are); tests and
	// benchmarks point them elsewhere.
	Proc   string
	NetDev string

	// open keeps each guest process's stat and io files open between
	// scrapes: a procfs file reread from offset 0 is regenerated, and
	// the path lookup of an open costs more than the read. By pid.
	mu   sync.Mutex
	open map[int]*procFiles
	buf  []byte
}

type procFiles struct{ stat, io *os.File }

func (f *procFiles) close() {
	f.stat.Close()
	f.io.Close()
}

// Metrics returns the collector of this agent's guests.
func (a *Agent) Metrics() *Metrics {
	return &Metrics{Guests: a.running, Proc: "/proc", NetDev: "/proc/net/dev"}
}

// running lists the guests whose process the agent knows.
func (a *Agent) running() []Guest {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Guest, 0, len(a.guests))
	for id, g := range a.guests {
		if pid := a.pids[id]; pid != 0 {
			out = append(out, Guest{ServerID: id, Project: g.project, PID: pid, Ports: g.ports})
		}
	}
	return out
}

// Describe sends every family's description.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPU, descMemory, descDiskRead, descDiskWrite,
		descNetRxBytes, descNetTxBytes, descNetRxPackets, descNetTxPackets, descNetRxDrops, descNetTxDrops} {
		ch <- d
	}
}

// Collect reads the figures of every guest process running now. A guest
// whose process is gone (or went between the listing and the read) has
// no series, nor a port whose tap is missing: a rate over a restart starts
// again, as with any counter.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	guests := m.Guests()
	if len(guests) == 0 {
		return
	}
	taps, _ := readNetDev(m.NetDev)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.open == nil {
		m.open = map[int]*procFiles{}
		m.buf = make([]byte, 4096)
	}
	live := make(map[int]bool, len(guests))
	for _, g := range guests {
		live[g.PID] = true
		m.collectProcess(ch, g)
		for _, port := range g.Ports {
			if c, ok := taps[dataplane.DeviceName(port)]; ok {
				m.collectTap(ch, g, port, c)
			}
		}
	}
	for pid, f := range m.open {
		if !live[pid] {
			f.close()
			delete(m.open, pid)
		}
	}
}

func (m *Metrics) collectProcess(ch chan<- prometheus.Metric, g Guest) {
	f := m.open[g.PID]
	if f == nil {
		dir := m.Proc + "/" + strconv.Itoa(g.PID)
		stat, err := os.Open(dir + "/stat")
		if err != nil {
			return
		}
		io, err := os.Open(dir + "/io")
		if err != nil {
			stat.Close()
			return
		}
		f = &procFiles{stat: stat, io: io}
		m.open[g.PID] = f
	}
	raw, err := reread(f.stat, m.buf)
	if err != nil {
		// The process is gone (a reused pid gets new files next time).
		f.close()
		delete(m.open, g.PID)
		return
	}
	if cpu, rss, err := parseStat(raw); err == nil {
		ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, cpu, g.ServerID, g.Project)
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, rss, g.ServerID, g.Project)
	}
	if raw, err = reread(f.io, m.buf); err == nil {
		rd, wr := parseIO(raw)
		ch <- prometheus.MustNewConstMetric(descDiskRead, prometheus.CounterValue, rd, g.ServerID, g.Project)
		ch <- prometheus.MustNewConstMetric(descDiskWrite, prometheus.CounterValue, wr, g.ServerID, g.Project)
	}
}

func (m *Metrics) collectTap(ch chan<- prometheus.Metric, g Guest, port string, c tapCounters) {
	// The tap's receive is the guest's transmit.
	for _, v := range []struct {
		desc *prometheus.Desc
		v    float64
	}{
		{descNetRxBytes, c.txBytes}, {descNetTxBytes, c.rxBytes},
		{descNetRxPackets, c.txPackets}, {descNetTxPackets, c.rxPackets},
		{descNetRxDrops, c.txDrops}, {descNetTxDrops, c.rxDrops},
	} {
		ch <- prometheus.MustNewConstMetric(v.desc, prometheus.CounterValue, v.v, g.ServerID, g.Project, port)
	}
}

// reread reads a small file from its start into buf: one pread, which
// procfs answers with the file's current contents.
func reread(f *os.File, buf []byte) ([]byte, error) {
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return nil, err
	}
	if n == 0 {
		return nil, io.ErrUnexpectedEOF
	}
	return buf[:n], nil
}

// parseStat returns a process's CPU seconds (utime + stime) and resident
// bytes from its /proc/<pid>/stat.
func parseStat(raw []byte) (cpu, rss float64, err error) {
	// The command name may hold spaces and parentheses: fields count
	// from after its last ')'. utime, stime and rss are fields 14, 15
	// and 24: the 12th, 13th and 22nd after it.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, errors.New("parse stat: no command name")
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 22 {
		return 0, 0, fmt.Errorf("parse stat: %d fields", len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	pages, err3 := strconv.ParseFloat(f[21], 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("parse stat: %w", err)
	}
	return (ut + st) / clockTicks, pages * float64(os.Getpagesize()), nil
}

// parseIO returns read_bytes and write_bytes of /proc/<pid>/io.
func parseIO(raw []byte) (read, write float64) {
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "read_bytes":
			read, _ = strconv.ParseFloat(v, 64)
		case "write_bytes":
			write, _ = strconv.ParseFloat(v, 64)
		}
	}
	return read, write
}

// tapCounters are one interface's counters, from the tap's side.
type tapCounters struct {
	rxBytes, rxPackets, rxDrops, txBytes, txPackets, txDrops float64
}

// readNetDev reads /proc/net/dev: per interface, receive bytes, packets,
// errs, drop, fifo, frame, compressed, multicast, then transmit bytes,
// packets, errs, drop, ...
func readNetDev(path string) (map[string]tapCounters, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]tapCounters{}
	for _, line := range strings.Split(string(raw), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			continue
		}
		n := func(i int) float64 { v, _ := strconv.ParseFloat(f[i], 64); return v }
		out[strings.TrimSpace(name)] = tapCounters{rxBytes: n(0), rxPackets: n(1), rxDrops: n(3), txBytes: n(8), txPackets: n(9), txDrops: n(11)}
	}
	return out, nil
}
