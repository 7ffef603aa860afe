package qemu_test

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// TestGuestDevicesAndDiagnostics: a running VM lists its virtio disks
// (with their serials) and NICs (with their MACs) at the PCI addresses
// QEMU placed them (each device's own addr property), and reads its
// counters: state, one vCPU, its disks and NIC, its memory.
func TestGuestDevicesAndDiagnostics(t *testing.T) {
	requireQEMU(t)
	testenv.Require(t, canMakeTaps(), "not root or no /dev/net/tun: QEMU cannot open taps")
	runDir := newRunDir(t)
	d := newDriver(t, runDir)
	spec := blankSpecAt(newID("dev"), blankDisk(t))
	spec.Disks[0].Serial = "root"
	spec.Disks = append(spec.Disks, hypervisor.Disk{Path: blankDisk(t), Format: hypervisor.FormatRaw, Serial: "0123456789abcdefghij"})
	spec.NICs = []hypervisor.NIC{{Tap: newID("rsd"), MAC: "fa:16:3e:00:00:07"}}
	vm := startVM(t, d, spec)
	devs, err := vm.(hypervisor.Devices).Devices(ctxFor(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	pci := regexp.MustCompile(`^0000:00:[0-9a-f]{2}\.0$`)
	want := map[string]string{"disk:root": "disk0", "disk:0123456789abcdefghij": "disk1", "nic:fa:16:3e:00:00:07": "nic0"}
	seen := map[string]bool{}
	for _, g := range devs {
		key := g.Kind + ":" + g.Serial + g.MAC
		qdev, ok := want[key]
		if !ok {
			continue // the config drive, were there one
		}
		if !pci.MatchString(g.Address) {
			t.Errorf("%s at %q", key, g.Address)
		}
		_, addr := pciPlace(t, runDir, spec.ID, qdev)
		if wantAddr := fmt.Sprintf("0000:00:%02x.0", addr>>3); g.Address != wantAddr {
			t.Errorf("%s at %s, QEMU says %s", key, g.Address, wantAddr)
		}
		seen[key] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("devices %+v, want %v", devs, want)
	}

	diag, err := vm.(hypervisor.Diagnoser).Diagnostics(ctxFor(t, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if diag.State != hypervisor.Running || len(diag.CPUs) != 1 || diag.MemoryMB != 128 || diag.Hypervisor != d.Accelerator() {
		t.Fatalf("diagnostics %+v", diag)
	}
	if len(diag.Disks) != 2 || diag.Disks[0].Name != "disk0" || diag.Disks[1].Name != "disk1" {
		t.Fatalf("disks %+v", diag.Disks)
	}
	if len(diag.NICs) != 1 || diag.NICs[0].MAC != "fa:16:3e:00:00:07" || diag.NICs[0].Tap != spec.NICs[0].Tap {
		t.Fatalf("nics %+v", diag.NICs)
	}
	if diag.UsedMB <= 0 || diag.UsedMB > 128 {
		t.Fatalf("used memory %d MB of 128", diag.UsedMB)
	}
}
