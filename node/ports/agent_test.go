package ports

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/bpf"
	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/dataplane/dataplanetest"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// world is the replicated network state as the agent reads it, which the
// test writes directly.
type world struct {
	*store.MemState
	t *testing.T

	mu     sync.Mutex
	status map[string]string // port id → last reported status
}

func newWorld(t *testing.T) *world {
	return &world{MemState: store.NewMemState(t, netstate.Schema()), t: t, status: map[string]string{}}
}

func (w *world) Report(_ context.Context, id, status string) error {
	w.mu.Lock()
	w.status[id] = status
	w.mu.Unlock()
	tx := w.DB.Txn(true)
	defer tx.Commit()
	raw, _ := tx.First("network_ports", "id", id)
	p := *raw.(*netstate.Port)
	p.Status = status
	return tx.Insert("network_ports", &p)
}

func (w *world) reported(id string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status[id]
}

// syncBuffer is a log sink the agent's goroutine writes while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// eventually polls cond until it holds; the deadline only keeps a broken
// agent from hanging the test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func driftCounted(t *testing.T, reg *prometheus.Registry, mapName string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "rackstack_dataplane_drift_repaired_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "map" && l.GetValue() == mapName {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestAgentRepairsDrift deletes FDB and port entries from the node's maps
// behind the agent's back, as a second rackd on the same pins did: no
// network row changes, so only the agent's periodic check can notice. It
// must put them back, count them and say so in the log.
func TestAgentRepairsDrift(t *testing.T) {
	dataplanetest.NeedRoot(t)
	nsPath := dataplanetest.Netns(t)
	dataplanetest.Veths(t, nsPath, dataplane.DeviceName("port-a"), dataplane.DeviceName("port-b"))
	dp, err := dataplane.Open(dataplane.Config{PinDir: dataplanetest.PinDir(t), Netns: nsPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dp.Destroy() })

	w := newWorld(t)
	w.Put("network_networks", &netstate.Network{ID: "net1", Project: "p1", SegmentationID: 101, MTU: 1500, AdminStateUp: true})
	for _, p := range []struct{ id, mac, ip string }{{"port-a", "fa:16:3e:00:00:0a", "10.0.0.10"}, {"port-b", "fa:16:3e:00:00:0b", "10.0.0.11"}} {
		w.Put("network_ports", &netstate.Port{
			ID: p.id, Project: "p1", NetworkID: "net1", MAC: p.mac, HostID: "n1", AdminStateUp: true, Status: "DOWN",
			FixedIPs: []netstate.FixedIP{{IP: p.ip}},
		})
	}
	reg := prometheus.NewRegistry()
	var logs syncBuffer
	agent := &Agent{
		DP: dp, Node: "n1", State: w.Read, Report: w.Report, Registry: reg,
		Interval: 20 * time.Millisecond, VerifyInterval: time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	eventually(t, "both ports ACTIVE", func() bool {
		return w.reported("port-a") == "ACTIVE" && w.reported("port-b") == "ACTIVE"
	})

	// Another process, through the pins.
	fdb, err := ebpf.LoadPinnedMap(filepath.Join(dp.PinDir(), bpf.DataplaneMapFdb), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fdb.Close()
	ports, err := ebpf.LoadPinnedMap(filepath.Join(dp.PinDir(), bpf.DataplaneMapPorts), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ports.Close()
	entries := func(m *ebpf.Map) int {
		n := 0
		var k, v []byte
		for it := m.Iterate(); it.Next(&k, &v); {
			n++
		}
		return n
	}
	wantFDB, wantPorts := entries(fdb), entries(ports)
	if wantFDB != 2 || wantPorts != 2 {
		t.Fatalf("applied: %d FDB entries and %d ports, want 2 and 2", wantFDB, wantPorts)
	}
	var (
		fdbKeys  []bpf.DataplaneFdbKey
		fdbKey   bpf.DataplaneFdbKey
		fdbValue uint32
	)
	for it := fdb.Iterate(); it.Next(&fdbKey, &fdbValue); {
		fdbKeys = append(fdbKeys, fdbKey)
	}
	for _, k := range fdbKeys {
		if err := fdb.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	var portKey uint32
	var portValue bpf.DataplanePort
	if !ports.Iterate().Next(&portKey, &portValue) {
		t.Fatal("no port entry")
	}
	if err := ports.Delete(portKey); err != nil {
		t.Fatal(err)
	}

	// The agent counts the drift, then logs it: wait for both.
	eventually(t, "the drift counted and logged", func() bool {
		return driftCounted(t, reg, bpf.DataplaneMapFdb) == 2 && driftCounted(t, reg, bpf.DataplaneMapPorts) == 1 &&
			strings.Contains(logs.String(), "differed from the applied state")
	})
	if got, got2 := entries(fdb), entries(ports); got != wantFDB || got2 != wantPorts {
		t.Errorf("after the repair: %d FDB entries and %d ports, want %d and %d", got, got2, wantFDB, wantPorts)
	}
	// One check or two may have found it, as the deletes raced the agent.
	if !strings.Contains(logs.String(), "differed from the applied state") || !strings.Contains(logs.String(), "fdb=") {
		t.Errorf("the repair is not logged:\n%s", logs.String())
	}
	if d := dp.Drift(); d.Repaired != 3 {
		t.Errorf("dataplane says %d entries repaired, want 3", d.Repaired)
	}
}
