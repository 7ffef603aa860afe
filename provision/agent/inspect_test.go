package agent

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rackstack/rackstack/provision/agentapi"
)

// testdata/server is a UEFI server's /proc and /sys: a SATA disk whose
// serial is in VPD page 0x80, a virtio disk, a CD drive, device-mapper and
// loop devices, one e1000 NIC beside lo and a bridge, DMI, and memory
// blocks of which one is offline.
func TestInspectFixture(t *testing.T) {
	inv, err := Inspect("testdata/server", "52:54:00:AB:CD:EF")
	if err != nil {
		t.Fatal(err)
	}
	want := agentapi.Inventory{
		Hostname: "ramdisk",
		CPU: agentapi.CPU{
			ModelName: "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", Frequency: "2100.000", Count: 4,
			Architecture: machineArch(), Flags: []string{"fpu", "vme", "sse", "sse2", "avx2", "vmx"},
		},
		Memory: agentapi.Memory{Total: 3880000 * 1024, PhysicalMB: 4096},
		Disks: []agentapi.Disk{
			{Name: "/dev/sda", Model: "ST1000NM0033-9ZM", Vendor: "ATA", Size: 1953525168 * 512, Rotational: true, Serial: "Z1W0ABCD", WWN: "0x5000c500a1b2c3d4"},
			{Name: "/dev/vda", Size: 20971520 * 512, Serial: "RSDISK0001"},
		},
		Interfaces: []agentapi.Interface{
			{Name: "eth0", MACAddress: "52:54:00:ab:cd:ef", HasCarrier: true, SpeedMbps: 1000, Driver: "e1000"},
		},
		SystemVendor: agentapi.SystemVendor{Manufacturer: "Dell Inc.", ProductName: "PowerEdge R640", SerialNumber: "7XK3Q2", UUID: "4c4c4544-0058-4b10-8033-b7c04f513232"},
		Boot:         agentapi.Boot{CurrentBootMode: "uefi", PXEInterface: "52:54:00:ab:cd:ef"},
	}
	if !reflect.DeepEqual(inv, want) {
		t.Fatalf("got  %+v\nwant %+v", inv, want)
	}
}

// Without memory blocks (a kernel without memory hotplug) the installed
// memory is MemTotal rounded up to the 128 MiB the firmware keeps back.
func TestPhysicalMemoryWithoutBlocks(t *testing.T) {
	root := t.TempDir()
	for name, body := range map[string]string{
		"proc/cpuinfo": "processor\t: 0\nmodel name\t: CPU\n",
		"proc/meminfo": "MemTotal:         220000 kB\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := Inspect(root, "")
	if err != nil {
		t.Fatal(err)
	}
	if inv.Memory.PhysicalMB != 256 || inv.Boot.CurrentBootMode != "bios" || inv.CPU.Count != 1 {
		t.Fatalf("got memory %+v, boot %+v, cpu %+v; want 256 MiB, bios, 1 CPU", inv.Memory, inv.Boot, inv.CPU)
	}
}

func TestInspectMissingRoot(t *testing.T) {
	if _, err := Inspect(t.TempDir(), ""); err == nil {
		t.Fatal("a tree without /proc/cpuinfo must be an error")
	}
}

func TestKernelArgs(t *testing.T) {
	got := KernelArgs("initrd=initramfs.gz console=ttyS0 rackstack.url=http://10.0.0.1:8081 rackstack.token=abc rackstack.mac=52:54:00:12:34:56 quiet rackstack.token=def\n")
	want := map[string]string{
		"initrd": "initramfs.gz", "console": "ttyS0", agentapi.ArgURL: "http://10.0.0.1:8081",
		agentapi.ArgToken: "def", agentapi.ArgMAC: "52:54:00:12:34:56", "quiet": "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
