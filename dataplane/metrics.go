package dataplane

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descPackets = prometheus.NewDesc("rackstack_dataplane_packets_total", "Packets the eBPF programs of this node forwarded or answered, by what they did (fwd_local, fwd_uplink, nat_out, ...).", []string{"action"}, nil)
	descDrops   = prometheus.NewDesc("rackstack_dataplane_drops_total", "Packets the eBPF programs of this node dropped, by reason (spoof_ip, sg_ingress, no_route, ...).", []string{"reason"}, nil)
)

// Metrics collects the dataplane's counters on each scrape: one per-CPU
// array lookup per counter.
type Metrics struct{ d *Dataplane }

// Metrics returns the collector of the rackstack_dataplane_* counters.
func (d *Dataplane) Metrics() *Metrics { return &Metrics{d: d} }

// Describe sends every family's description.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPackets
	ch <- descDrops
	ch <- descMeterBytes
	ch <- descMeterPackets
}

// Collect reads the counters now; a map that cannot be read yields none.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	cs, err := m.d.counters()
	if err != nil {
		return
	}
	for name, v := range cs {
		if reason, ok := strings.CutPrefix(name, "drop_"); ok {
			ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(v), reason)
		} else {
			ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(v), name)
		}
	}
	m.collectMeters(ch)
}
