package hypervisor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/drivertest"
)

func TestFakeConformance(t *testing.T) {
	host := hypervisor.NewFakeHost(t.TempDir())
	drivertest.Run(t, func(*testing.T) hypervisor.Driver { return host.Driver() }, "")
}

func TestFakeFaults(t *testing.T) {
	ctx := context.Background()
	host := hypervisor.NewFakeHost(t.TempDir())
	boom := errors.New("boom")

	f := host.Driver()
	f.StartErr = boom
	if _, err := f.Start(ctx, hypervisor.VMSpec{ID: "a", VCPUs: 1, MemoryMB: 64}); !errors.Is(err, boom) {
		t.Fatalf("start: err = %v, want boom", err)
	}

	f = host.Driver()
	f.OpErr = func(id, op string) error {
		if op == "pause" {
			return boom
		}
		return nil
	}
	vm, err := f.Start(ctx, hypervisor.VMSpec{ID: "a", VCPUs: 1, MemoryMB: 64})
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Pause(ctx); !errors.Is(err, boom) {
		t.Errorf("pause: err = %v, want boom", err)
	}
	if err := host.SetState("a", hypervisor.Crashed); err != nil {
		t.Fatal(err)
	}
	if s, _ := vm.State(ctx); s != hypervisor.Crashed {
		t.Errorf("state after a crash = %q", s)
	}
	if err := vm.Reboot(ctx, hypervisor.HardReboot, 0); err != nil {
		t.Fatal(err)
	}
	if s, _ := vm.State(ctx); s != hypervisor.Running {
		t.Errorf("state after reboot = %q", s)
	}
	if err := host.SetState("a", hypervisor.Shutdown); err != nil {
		t.Fatal(err)
	}
	if vm.PID() != 0 {
		t.Errorf("PID after the guest powered off = %d", vm.PID())
	}
	if spec, ok := host.Spec("a"); !ok || spec.MemoryMB != 64 {
		t.Errorf("Spec(a) = %+v, %v", spec, ok)
	}
}
