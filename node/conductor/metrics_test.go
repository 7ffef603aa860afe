package conductor

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
)

// series gathers c's series as "family label values..." (labels in name
// order) → value.
func series(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			k := mf.GetName()
			for _, l := range m.GetLabel() {
				k += " " + l.GetValue()
			}
			out[k] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

func TestMetricsCountNodesByStateAndBMCFailures(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateEnroll)
	w.rack("node-2", "52:54:00:00:00:02", bmstate.StateManageable)
	w.rack("node-3", "52:54:00:00:00:03", bmstate.StateManageable)
	w.set("node-1", func(n *bmstate.Node) {
		n.Secrets["ipmi_password"] = "sealed:wrong"
		n.ProvisionState, n.TargetProvisionState = bmstate.StateVerifying, bmstate.StateManageable
	})
	w.pass() // the verification fails: back to enroll, one BMC error
	got := series(t, w.c.Metrics(w.local.Local))
	want := map[string]float64{
		"rackstack_provision_nodes false enroll":     1,
		"rackstack_provision_nodes false manageable": 2,
		"rackstack_provision_bmc_errors_total ipmi":  1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}
