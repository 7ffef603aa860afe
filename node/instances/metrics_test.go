package instances

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/dataplane"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsReadEachGuestProcessAndTap(t *testing.T) {
	root := t.TempDir()
	proc, sys := filepath.Join(root, "proc"), filepath.Join(root, "net")
	// A command name with a space and a ')' must not shift the fields.
	write(t, filepath.Join(proc, "42", "stat"), "42 (qemu-system-x86 (x)) S 1 42 42 0 -1 4194560 1 0 0 0 250 150 0 0 20 0 5 0 100 1000 300\n")
	write(t, filepath.Join(proc, "42", "statm"), "1000 256 10 1 0 100 0\n")
	write(t, filepath.Join(proc, "42", "io"), "rchar: 9\nwchar: 9\nsyscr: 1\nsyscw: 1\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n")
	stats := filepath.Join(sys, dataplane.DeviceName("port-aaaaaaaaaaaa"), "statistics")
	for f, v := range map[string]string{"rx_bytes": "100", "tx_bytes": "200", "rx_packets": "1", "tx_packets": "2", "rx_dropped": "3", "tx_dropped": "4"} {
		write(t, filepath.Join(stats, f), v+"\n")
	}
	a := &Agent{
		guests: map[string]guestMeta{
			"s1": {project: "p1", ports: []string{"port-aaaaaaaaaaaa"}},
			"s2": {project: "p2"}, // no process: no series
			"s3": {project: "p3"}, // a process that went: no series
		},
		pids: map[string]int{"s1": 42, "s3": 43},
	}
	m := &Metrics{Agent: a, Proc: proc, SysClassNet: sys}
	got := collect(t, m)
	want := map[string]float64{
		`rackstack_instance_cpu_seconds_total{project_id="p1",server_id="s1"}`:                                          4,
		`rackstack_instance_memory_bytes{project_id="p1",server_id="s1"}`:                                               float64(256 * os.Getpagesize()),
		`rackstack_instance_disk_read_bytes_total{project_id="p1",server_id="s1"}`:                                      4096,
		`rackstack_instance_disk_write_bytes_total{project_id="p1",server_id="s1"}`:                                     8192,
		`rackstack_instance_network_receive_bytes_total{port_id="port-aaaaaaaaaaaa",project_id="p1",server_id="s1"}`:    200,
		`rackstack_instance_network_transmit_bytes_total{port_id="port-aaaaaaaaaaaa",project_id="p1",server_id="s1"}`:   100,
		`rackstack_instance_network_receive_packets_total{port_id="port-aaaaaaaaaaaa",project_id="p1",server_id="s1"}`:  2,
		`rackstack_instance_network_transmit_packets_total{port_id="port-aaaaaaaaaaaa",project_id="p1",server_id="s1"}`: 1,
		`rackstack_instance_network_receive_drops_total{port_id="port-aaaaaaaaaaaa",project_id="p1",server_id="s1"}`:    4,
		`rackstack_instance_network_transmit_drops_total{port_id="port-aaaaaaaaaaaa",project_id="p1",server_id="s1"}`:   3,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("collected\n%v\nwant\n%v", got, want)
	}
}

// collect gathers c's series as name{labels} → value, with a registry
// (which checks them against their descriptions).
func collect(t *testing.T, c prometheus.Collector) map[string]float64 {
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
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}
