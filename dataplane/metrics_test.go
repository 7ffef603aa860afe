package dataplane

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The drops the programs count are the metric's, by reason, and the
// forwarding counters are packets by action.
func TestMetricsAreTheProgramsCounters(t *testing.T) {
	d := fixture(t)
	d.run(t, d.objs.PortIn, "tapa", frame{src: macX, dst: macB}.tcp("10.0.0.10", "10.0.0.11", 40000, 22))
	d.run(t, d.objs.PortIn, "tapa", frame{src: macX, dst: macB}.tcp("10.0.0.10", "10.0.0.11", 40001, 22))
	d.run(t, d.objs.PortIn, "tapa", frame{src: macA, dst: macB}.tcp("10.0.0.10", "10.0.0.11", 40000, 22))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(d.Metrics())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()+" "+m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if got["rackstack_dataplane_drops_total spoof_mac"] != 2 || got["rackstack_dataplane_packets_total fwd_local"] != 1 {
		t.Fatalf("spoof_mac drops %v (want 2), fwd_local packets %v (want 1)", got["rackstack_dataplane_drops_total spoof_mac"], got["rackstack_dataplane_packets_total fwd_local"])
	}
	if len(got) != len(counterNames) {
		t.Fatalf("%d series, want one per counter (%d)", len(got), len(counterNames))
	}
}
