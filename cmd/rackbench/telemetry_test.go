package main

import (
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/node/instances"
)

// The stand-in guests are what the instance collector reads for a real
// guest: every family of every guest is there, so the timing is of the
// full per-guest work.
func TestStandInGuestsGiveEveryInstanceSeries(t *testing.T) {
	dir := t.TempDir()
	guests, stop, err := standInGuests(filepath.Join(dir, "netdev"), 3)
	defer stop()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&instances.Metrics{Guests: func() []instances.Guest { return guests }, Proc: "/proc", NetDev: filepath.Join(dir, "netdev")})
	_, series, err := collectorCost(reg)
	if err != nil {
		t.Fatal(err)
	}
	// Per guest: CPU, memory, disk read and write, and six port counters.
	if series != 3*(4+6) {
		t.Fatalf("%d series, want %d", series, 3*(4+6))
	}
}
