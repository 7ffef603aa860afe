package instances

import (
	"context"
	"slices"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// TestAttachedPortIsPluggedIntoTheRunningGuest: a port added to a
// running server's row is plugged into the guest on its tap with its
// MAC, and a restarted agent (a new driver, as after a rackd restart)
// recognizes the plugged NIC rather than plugging it again; the port's
// removal unplugs it and removes its tap. A port the guest booted with
// cannot be unplugged: its link goes down, and its tap stays until the
// guest is torn down.
func TestAttachedPortIsPluggedIntoTheRunningGuest(t *testing.T) {
	needTools(t)
	w := newWorld(t)
	host := hypervisor.NewFakeHost(t.TempDir())
	dir := t.TempDir()
	a := newAgent(t, w, host, dir, &logs{})
	ctx := context.Background()
	w.Put("network_networks", &netstate.Network{ID: "net1", Project: "p1", Name: "net1", SegmentationID: 101, MTU: 1500})
	for i, p := range []string{"port1-aaaaaaaa", "port2-bbbbbbbb"} {
		w.Put("network_ports", &netstate.Port{ID: p, Project: "p1", NetworkID: "net1", MAC: "fa:16:3e:00:00:0" + string(rune('1'+i))})
	}
	flavor := computestate.Flavor{ID: "f1", VCPUs: 1, RAM: 256, Disk: 1}
	w.Put("compute_servers", &computestate.Server{ID: "s1", Project: "p1", Name: "vm1", Host: "n1", ImageID: "img1", Flavor: flavor, RootGB: 1,
		Ports: []string{"port1-aaaaaaaa"}, Want: "active", VMState: "building", TaskState: "spawning"})
	a.reconcile(ctx)
	if s := w.server("s1"); s.Status != "ACTIVE" {
		t.Fatalf("server %s after build", s.Status)
	}
	if hot := host.HotNICs("s1"); len(hot) != 0 {
		t.Fatalf("plugged NICs before any attach: %v", hot)
	}

	// Attach: the row gains port2.
	s := w.server("s1")
	s.Ports = []string{"port1-aaaaaaaa", "port2-bbbbbbbb"}
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	want := []hypervisor.NIC{{Tap: "tapport2-bbbbb", MAC: "fa:16:3e:00:00:02"}}
	if hot := host.HotNICs("s1"); !slices.Equal(hot, want) {
		t.Fatalf("plugged NICs %v, want %v", hot, want)
	}
	if !w.taps["tapport2-bbbbb"] {
		t.Fatalf("the attached port's tap was not made: %v", w.taps)
	}
	if spec, _ := host.Spec("s1"); len(spec.NICs) != 1 {
		t.Fatalf("the guest was restarted to get the NIC: spec NICs %v", spec.NICs)
	}

	// A restarted rackd: a new driver and agent find the plugged NIC.
	a = newAgent(t, w, host, dir, &logs{})
	a.reconcile(ctx)
	a.reconcile(ctx)
	if hot := host.HotNICs("s1"); !slices.Equal(hot, want) {
		t.Fatalf("after a restart, plugged NICs %v, want %v", hot, want)
	}

	// Detach: the NIC goes, and its tap.
	s = w.server("s1")
	s.Ports = []string{"port1-aaaaaaaa"}
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if hot := host.HotNICs("s1"); len(hot) != 0 {
		t.Fatalf("plugged NICs after the detach: %v", hot)
	}
	if w.taps["tapport2-bbbbb"] {
		t.Fatal("the detached port's tap is still there")
	}
	if rec := a.readRecord("s1"); slices.Contains(rec.Taps, "tapport2-bbbbb") {
		t.Fatalf("the record still lists the detached tap: %v", rec.Taps)
	}

	// Detaching the port it booted with: link down (recorded, so a
	// restarted agent knows), tap kept for the guest's process; the
	// server stays ACTIVE. Attaching it again sets the link up.
	s = w.server("s1")
	s.Ports = []string{}
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if down := host.DownNICs("s1"); !slices.Equal(down, []string{"tapport1-aaaaa"}) {
		t.Fatalf("boot NICs with their link down: %v", down)
	}
	if s := w.server("s1"); s.Status != "ACTIVE" {
		t.Fatalf("server %s after detaching its boot port", s.Status)
	}

	if rec := a.readRecord("s1"); !slices.Equal(rec.DownTaps, []string{"tapport1-aaaaa"}) {
		t.Fatalf("recorded down taps %v", rec.DownTaps)
	}
	// Attached again: its link comes up.
	s = w.server("s1")
	s.Ports = []string{"port1-aaaaaaaa"}
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if down := host.DownNICs("s1"); len(down) != 0 {
		t.Fatalf("boot NICs still down after the port came back: %v", down)
	}
	if rec := a.readRecord("s1"); len(rec.DownTaps) != 0 {
		t.Fatalf("recorded down taps after the port came back: %v", rec.DownTaps)
	}

	// Attached while stopped: the next start boots with it.
	s = w.server("s1")
	s.Want, s.TaskState = "stopped", "powering-off"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	s = w.server("s1")
	s.Ports = []string{"port2-bbbbbbbb"}
	s.Want, s.TaskState = "active", "powering-on"
	w.Put("compute_servers", &s)
	a.reconcile(ctx)
	if spec, _ := host.Spec("s1"); len(spec.NICs) != 1 || spec.NICs[0] != want[0] {
		t.Fatalf("started with NICs %v, want %v", spec.NICs, want)
	}
	if hot := host.HotNICs("s1"); len(hot) != 0 {
		t.Fatalf("plugged NICs after a fresh start: %v", hot)
	}
}
