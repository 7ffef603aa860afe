package compute

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gather collects c's series as name{labels} → value through a pedantic
// registry, which checks them against their descriptions.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
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
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

func TestNodeMetricsAreTheHypervisorFigures(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	// Wherever the scheduler put them, each node reports its own.
	f.server(alice, "a")
	f.server(bob, "b", "flavorRef", "big", "networks", []any{map[string]any{"uuid": netB}})
	want := map[string]struct{ vcpus, ram, disk, n int }{}
	for _, id := range f.serverIDs() {
		sv := f.row(id)
		w := want[sv.Host]
		w.vcpus += sv.Flavor.VCPUs
		w.ram += sv.Flavor.RAM
		w.disk += diskGB(sv)
		w.n++
		want[sv.Host] = w
	}
	for _, node := range []string{"n1", "n2"} {
		got := gather(t, f.svc.NodeMetrics(node, f.local.State.Txn))
		w := want[node]
		l := `{node="` + node + `"}`
		exp := map[string]float64{
			"rackstack_node_vcpus" + l: 2, "rackstack_node_vcpus_allocated" + l: float64(w.vcpus),
			"rackstack_node_memory_bytes" + l: map[string]float64{"n1": 1536, "n2": 1300}[node] * (1 << 20), "rackstack_node_memory_allocated_bytes" + l: float64(w.ram) * (1 << 20),
			"rackstack_node_disk_bytes" + l: 20 << 30, "rackstack_node_disk_allocated_bytes" + l: float64(w.disk) * (1 << 30),
			"rackstack_node_instances" + l: float64(w.n),
		}
		for k, v := range exp {
			if got[k] != v {
				t.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		if len(got) != len(exp) {
			t.Errorf("%s: %d series, want %d: %v", node, len(got), len(exp), got)
		}
	}
	if want["n1"].n+want["n2"].n != 2 {
		t.Fatalf("servers placed: %+v", want)
	}
}

func (f *fixture) serverIDs() []string {
	var ids []string
	servers, err := Load(f.local.State.Txn())
	if err != nil {
		f.t.Fatal(err)
	}
	for _, sv := range servers {
		ids = append(ids, sv.ID)
	}
	return ids
}
