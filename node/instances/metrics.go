package instances

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	descNetRxBytes   = prometheus.NewDesc("rackstack_instance_network_receive_bytes_total", "Bytes the guest received on a port (its tap's transmit counter).", portLabels, nil)
	descNetTxBytes   = prometheus.NewDesc("rackstack_instance_network_transmit_bytes_total", "Bytes the guest sent on a port (its tap's receive counter).", portLabels, nil)
	descNetRxPackets = prometheus.NewDesc("rackstack_instance_network_receive_packets_total", "Packets the guest received on a port.", portLabels, nil)
	descNetTxPackets = prometheus.NewDesc("rackstack_instance_network_transmit_packets_total", "Packets the guest sent on a port.", portLabels, nil)
	descNetRxDrops   = prometheus.NewDesc("rackstack_instance_network_receive_drops_total", "Packets for the guest dropped at its tap (the tap's transmit drops).", portLabels, nil)
	descNetTxDrops   = prometheus.NewDesc("rackstack_instance_network_transmit_drops_total", "Packets from the guest dropped at its tap (the tap's receive drops).", portLabels, nil)
)

// Metrics collects the rackstack_instance_* families of this node's guests
// on each scrape, from /proc of each QEMU process and /sys/class/net of
// its taps: a few small file reads per guest, no QMP round trip.
type Metrics struct {
	Agent *Agent
	// Proc and SysClassNet are /proc and /sys/class/net; tests point
	// them at fixtures.
	Proc        string
	SysClassNet string
}

// Metrics returns the collector of this agent's guests.
func (a *Agent) Metrics() *Metrics {
	return &Metrics{Agent: a, Proc: "/proc", SysClassNet: "/sys/class/net"}
}

// Describe sends every family's description.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPU, descMemory, descDiskRead, descDiskWrite,
		descNetRxBytes, descNetTxBytes, descNetRxPackets, descNetTxPackets, descNetRxDrops, descNetTxDrops} {
		ch <- d
	}
}

type guestNow struct {
	id  string
	pid int
	guestMeta
}

// Collect reads the figures of every guest process running now. A guest
// whose process is gone (or went between the listing and the read) has
// no series: a rate over a restart starts again, as with any counter.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	a := m.Agent
	a.mu.Lock()
	guests := make([]guestNow, 0, len(a.guests))
	for id, g := range a.guests {
		if pid := a.pids[id]; pid != 0 {
			guests = append(guests, guestNow{id: id, pid: pid, guestMeta: g})
		}
	}
	a.mu.Unlock()
	for _, g := range guests {
		m.collectProcess(ch, g)
		for _, port := range g.ports {
			m.collectTap(ch, g, port)
		}
	}
}

func (m *Metrics) collectProcess(ch chan<- prometheus.Metric, g guestNow) {
	dir := filepath.Join(m.Proc, strconv.Itoa(g.pid))
	if cpu, rss, err := readStat(dir); err == nil {
		ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, cpu, g.id, g.project)
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, rss, g.id, g.project)
	}
	if io, err := readKeyed(filepath.Join(dir, "io")); err == nil {
		ch <- prometheus.MustNewConstMetric(descDiskRead, prometheus.CounterValue, io["read_bytes"], g.id, g.project)
		ch <- prometheus.MustNewConstMetric(descDiskWrite, prometheus.CounterValue, io["write_bytes"], g.id, g.project)
	}
}

func (m *Metrics) collectTap(ch chan<- prometheus.Metric, g guestNow, port string) {
	dir := filepath.Join(m.SysClassNet, dataplane.DeviceName(port), "statistics")
	for _, c := range []struct {
		desc *prometheus.Desc
		file string
	}{
		{descNetRxBytes, "tx_bytes"}, {descNetTxBytes, "rx_bytes"},
		{descNetRxPackets, "tx_packets"}, {descNetTxPackets, "rx_packets"},
		{descNetRxDrops, "tx_dropped"}, {descNetTxDrops, "rx_dropped"},
	} {
		v, err := readNumber(filepath.Join(dir, c.file))
		if err != nil {
			return // no tap (yet, or any more): no series
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, v, g.id, g.project, port)
	}
}

// readStat returns a process's CPU seconds (user + system) from stat and
// its resident bytes from statm.
func readStat(dir string) (cpu, rss float64, err error) {
	raw, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parentheses: fields count
	// from after its last ')'. utime and stime are fields 14 and 15,
	// the 12th and 13th after it.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse %s/stat: no command name", dir)
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("parse %s/stat: %d fields", dir, len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("parse %s/stat: bad utime or stime", dir)
	}
	raw, err = os.ReadFile(filepath.Join(dir, "statm"))
	if err != nil {
		return 0, 0, err
	}
	sf := strings.Fields(string(raw))
	if len(sf) < 2 {
		return 0, 0, fmt.Errorf("parse %s/statm: %d fields", dir, len(sf))
	}
	pages, err := strconv.ParseFloat(sf[1], 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse %s/statm: %w", dir, err)
	}
	return (ut + st) / clockTicks, pages * float64(os.Getpagesize()), nil
}

// readKeyed reads a "key: value" file such as /proc/<pid>/io.
func readKeyed(path string) (map[string]float64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

func readNumber(path string) (float64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseFloat(strings.TrimSpace(string(raw)), 64)
}
