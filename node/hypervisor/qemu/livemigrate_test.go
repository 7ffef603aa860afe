package qemu

import (
	"slices"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/node/hypervisor"
)

// A live migration's destination waits for the stream, paused, and opens
// nothing of a boot volume: a null node of its size stands in for it.
func TestBuildArgsIncoming(t *testing.T) {
	spec := hypervisor.VMSpec{ID: "vm7", VCPUs: 1, MemoryMB: 256, Disks: []hypervisor.Disk{
		{NBDSocket: "/run/rackstack/vms/nbd.sock", NBDExport: "0a1b2c3d-vol", Format: hypervisor.FormatRaw, Serial: "0a1b2c3d-vol",
			ID: "0a1b2c3dvol", Placeholder: 1 << 30},
	}}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	args := buildArgs(spec, launch{paths: newRunPaths("/run/rackstack/vms", spec.ID), accel: AccelTCG, machine: "q35",
		cache: func(string) string { return cacheNone }, incoming: true})
	i := slices.Index(args, "-incoming")
	if i < 0 || args[i+1] != "defer" || !slices.Contains(args, "-S") {
		t.Fatalf("not started waiting for the stream, paused: %q", args)
	}
	drive := args[slices.Index(args, "-drive")+1]
	if !strings.Contains(drive, "file.driver=null-co,file.size=1073741824") || strings.Contains(drive, "nbd.sock") ||
		!strings.Contains(drive, "node-name=vol-0a1b2c3dvol,file.node-name=nbd-0a1b2c3dvol-a") {
		t.Fatalf("the boot volume's placeholder: %s", drive)
	}
	spec.Disks[0].Placeholder = 0
	if got := strings.Join(buildArgs(spec, launch{paths: newRunPaths("/run/rackstack/vms", spec.ID), accel: AccelTCG, machine: "q35",
		cache: func(string) string { return cacheNone }}), " "); strings.Contains(got, "-incoming") || strings.Contains(got, "null-co") {
		t.Fatalf("a VM started as any other has %q", got)
	}
	for _, d := range []hypervisor.Disk{
		{Path: "/var/lib/disk", Format: hypervisor.FormatQCOW2, Placeholder: 1 << 30},
		{NBDSocket: "/run/nbd.sock", NBDExport: "v", Format: hypervisor.FormatRaw, Placeholder: 1 << 30},
	} {
		s := hypervisor.VMSpec{ID: "vm8", VCPUs: 1, MemoryMB: 1, Disks: []hypervisor.Disk{d}}
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "placeholder") {
			t.Fatalf("a placeholder on %+v: %v", d, err)
		}
	}
}
