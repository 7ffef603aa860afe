package object

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// values gathers c's series by family name (the first series of each).
func values(t *testing.T, c prometheus.Collector) (map[string]float64, map[string]int) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	first, count := map[string]float64{}, map[string]int{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		first[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		count[mf.GetName()] = len(mf.GetMetric())
	}
	return first, count
}

func TestMetricsCountObjectBytesAndReportTheDisks(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	data := random(10_000)
	f.put("p", "c", "a", data)
	f.get("p", "c", "a")
	f.get("p", "c", "a")
	got, n := values(t, f.svc.Metrics(f.local.State.Txn))
	if got["rackstack_storage_written_bytes_total"] != 10_000 || got["rackstack_storage_read_bytes_total"] != 20_000 {
		t.Fatalf("written %v, read %v; want 10000 and 20000", got["rackstack_storage_written_bytes_total"], got["rackstack_storage_read_bytes_total"])
	}
	if n["rackstack_storage_disk_up"] != 3 || got["rackstack_storage_disk_up"] != 1 {
		t.Fatalf("disks: %d series, first %v", n["rackstack_storage_disk_up"], got["rackstack_storage_disk_up"])
	}
	if _, ok := got["rackstack_storage_heal_queue"]; !ok {
		t.Fatal("no heal queue gauge")
	}
}
