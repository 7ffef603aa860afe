package qemu_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// TestHotplugNIC: a NIC plugged into a running VM is a virtio-net device
// with the port's MAC at address 0 of a free hot-plug root port, on its
// tap; a second driver (a restarted rackd) lists it as plugged; a boot
// NIC cannot be unplugged (its link goes down), and a plugged one waits
// for the guest to let go (this VM has no guest OS: it never does).
func TestHotplugNIC(t *testing.T) {
	requireQEMU(t)
	testenv.Require(t, canMakeTaps(), "not root or no /dev/net/tun: QEMU cannot open taps")
	runDir := newRunDir(t)
	d := newDriver(t, runDir)
	spec := blankSpecAt(newID("hnic"), blankDisk(t))
	boot := hypervisor.NIC{Tap: newID("rsb"), MAC: "fa:16:3e:00:00:01"} // QEMU makes the taps; they go with it
	spec.NICs = []hypervisor.NIC{boot}
	vm := startVM(t, d, spec)
	hp, ok := vm.(hypervisor.NICHotplug)
	if !ok {
		t.Fatal("the QEMU driver's VMs do not hot-plug NICs")
	}
	hot := hypervisor.NIC{Tap: newID("rsh"), MAC: "FA:16:3E:00:00:02"}
	if err := hp.AttachNIC(ctxFor(t, 30*time.Second), hot); err != nil {
		t.Fatal(err)
	}
	if err := hp.AttachNIC(ctxFor(t, 30*time.Second), hot); err != nil {
		t.Fatalf("attach again: %v", err)
	}
	if err := hp.AttachNIC(ctxFor(t, 30*time.Second), hypervisor.NIC{Tap: "bad,tap", MAC: "fa:16:3e:00:00:03"}); !errors.Is(err, hypervisor.ErrInvalidSpec) {
		t.Fatalf("bad tap: %v", err)
	}
	if bus, addr := pciPlace(t, runDir, spec.ID, "hnic-"+hot.Tap); bus != "/machine/peripheral/hp0/hp0" || addr != 0 {
		t.Fatalf("plugged NIC at address %d of bus %s, want 0 of hp0", addr, bus)
	}
	if _, err := net.InterfaceByName(hot.Tap); err != nil {
		t.Fatalf("tap of the plugged NIC: %v", err)
	}
	want := []hypervisor.GuestNIC{{NIC: boot}, {NIC: hypervisor.NIC{Tap: hot.Tap, MAC: "fa:16:3e:00:00:02"}, Hot: true}}
	if got, err := hp.NICs(ctxFor(t, 10*time.Second)); err != nil || !slices.Equal(got, want) {
		t.Fatalf("NICs %+v, %v; want %+v", got, err, want)
	}
	again, err := newDriver(t, runDir).Adopt(ctxFor(t, time.Minute), spec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := again.(hypervisor.NICHotplug).NICs(ctxFor(t, 10*time.Second)); err != nil || !slices.Equal(got, want) {
		t.Fatalf("a new driver's NICs %+v, %v; want %+v", got, err, want)
	}
	if err := hp.DetachNIC(ctxFor(t, 10*time.Second), boot.Tap); !errors.Is(err, hypervisor.ErrBootNIC) {
		t.Fatalf("detach a boot NIC: %v", err)
	}
	if err := hp.AttachNIC(ctxFor(t, 10*time.Second), boot); err != nil {
		t.Fatalf("attach a boot NIC again (link up): %v", err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer dcancel()
	if err := hp.DetachNIC(dctx, hot.Tap); !errors.Is(err, hypervisor.ErrDetachPending) {
		t.Fatalf("detach from a guest that does not let go: %v", err)
	}
	if err := hp.DetachNIC(ctxFor(t, 10*time.Second), newID("rsn")); err != nil {
		t.Fatalf("detach a NIC that is not there: %v", err)
	}
}
