package object

import (
	"fmt"
	"os"
	"strings"
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
	// Lone small reads go through the page cache (blob's direct_test
	// covers when the counter grows).
	if v, ok := got["rackstack_storage_direct_read_bytes_total"]; !ok || v != 0 {
		t.Fatalf("direct read bytes %v (present %v), want 0", v, ok)
	}
}

// series gathers c's series of family name, keyed by their label values
// joined with "/".
func series(t *testing.T, c prometheus.Collector, name string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var key []string
			for _, l := range m.GetLabel() {
				if l.GetName() != "path" {
					key = append(key, l.GetValue())
				}
			}
			out[strings.Join(key, "/")] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

// Every disk of the node has an error count and one state set; the
// misplaced and degraded parts are what the last repair pass found, so a
// scrape walks no parts.
func TestMetricsReportDiskStatesErrorsAndWhatTheRepairPassFound(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	for i := 0; i < 20; i++ {
		f.put("p", "c", fmt.Sprintf("o%02d", i), random(2000+i*300))
	}
	m := f.svc.Metrics(f.local.State.Txn)
	if got := series(t, m, "rackstack_storage_misplaced_parts"); len(got) != 0 {
		t.Fatalf("misplaced parts before any pass: %v", got)
	}
	errs := series(t, m, "rackstack_storage_disk_errors_total")
	states := series(t, m, "rackstack_storage_disk_state")
	if len(errs) != 3 || len(states) != 3*len(diskStates) {
		t.Fatalf("%d error series and %d state series for 3 disks", len(errs), len(states))
	}
	for _, r := range f.rows {
		if errs[r.ID] != 0 || states[r.ID+"/up"] != 1 || states[r.ID+"/gone"] != 0 {
			t.Fatalf("disk %s: %v errors, states %v", r.ID, errs[r.ID], states)
		}
	}

	// New disks: the pass finds parts to move, and says how many.
	for i := 0; i < 3; i++ {
		f.addDisk()
	}
	f.svc.RegisterDisks(f.ctx)
	st, _ := f.svc.Status(f.ctx)
	f.svc.repairPass(f.ctx)
	if got := series(t, m, "rackstack_storage_misplaced_parts")[""]; st.Misplaced == 0 || got != float64(st.Misplaced) {
		t.Fatalf("misplaced parts %v, status said %d", got, st.Misplaced)
	}

	// A disk wiped and replaced is gone; the pass finds its parts degraded.
	gone := f.rows[0].ID
	os.RemoveAll(f.dirs[0])
	delete(f.disks, gone)
	f.rows = f.rows[1:]
	f.svc.RegisterDisks(f.ctx)
	st, _ = f.svc.Status(f.ctx)
	f.svc.repairPass(f.ctx)
	if got := series(t, m, "rackstack_storage_degraded_parts")[""]; st.Degraded == 0 || got != float64(st.Degraded) {
		t.Fatalf("degraded parts %v, status said %d", got, st.Degraded)
	}
	if states := series(t, m, "rackstack_storage_disk_state"); states[gone+"/gone"] != 1 || states[gone+"/up"] != 0 {
		t.Fatalf("the wiped disk's states: %v", states)
	}
}
