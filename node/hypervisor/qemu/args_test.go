package qemu

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/node/hypervisor"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestBuildArgs(t *testing.T) {
	cache := func(path string) string {
		if strings.HasPrefix(path, "/tmp/") { // stands for a file system without O_DIRECT
			return cacheWriteback
		}
		return cacheNone
	}
	tests := map[string]struct {
		spec  hypervisor.VMSpec
		accel string
	}{
		"tcg-minimal": {
			spec:  hypervisor.VMSpec{ID: "vm1", VCPUs: 1, MemoryMB: 128},
			accel: AccelTCG,
		},
		"kvm-uuid-name": {
			spec:  hypervisor.VMSpec{ID: "2f0c1a4e-9b0e-4c7e-9a57-0d4f6b6f3a10", Name: "web,1", VCPUs: 4, MemoryMB: 4096},
			accel: AccelKVM,
		},
		"disks-config-drive": {
			spec: hypervisor.VMSpec{
				ID: "vm2", VCPUs: 2, MemoryMB: 512,
				Disks: []hypervisor.Disk{
					{Path: "/var/lib/rackstack/disks/root,1.qcow2", Format: hypervisor.FormatQCOW2, Serial: "root"},
					{Path: "/tmp/scratch.raw", Format: hypervisor.FormatRaw},
					{Path: "/var/lib/rackstack/images/base.raw", Format: hypervisor.FormatRaw, ReadOnly: true},
				},
				ConfigDrive: "/var/lib/rackstack/config/vm2.iso",
			},
			accel: AccelTCG,
		},
		"boot-volume": {
			spec: hypervisor.VMSpec{
				ID: "vm4", VCPUs: 1, MemoryMB: 256,
				Disks: []hypervisor.Disk{
					{NBDSocket: "/run/rackstack/vms/nbd,1.sock", NBDExport: "0a1b2c3d-vol", Format: hypervisor.FormatRaw, Serial: "0a1b2c3d-vol"},
				},
			},
			accel: AccelTCG,
		},
		// An encrypted boot volume: its nodes named as a plugged disk's,
		// the LUKS layer's passphrase read from an inherited pipe.
		"boot-volume-encrypted": {
			spec: hypervisor.VMSpec{
				ID: "vm6", VCPUs: 1, MemoryMB: 256,
				Disks: []hypervisor.Disk{
					{NBDSocket: "/run/rackstack/vms/nbd.sock", NBDExport: "0a1b2c3d-vol", Format: hypervisor.FormatRaw, Serial: "0a1b2c3d-vol",
						ID: "0a1b2c3dvol", Encryption: &hypervisor.DiskEncryption{Passphrase: []byte("sekrit-passphrase"), CipherAlg: "aes-256"}},
				},
			},
			accel: AccelTCG,
		},
		"boot-volume-read-only-limited": {
			spec: hypervisor.VMSpec{
				ID: "vm5", VCPUs: 1, MemoryMB: 256,
				Disks: []hypervisor.Disk{
					{NBDSocket: "/run/rackstack/vms/nbd.sock", NBDExport: "0a1b2c3d-vol", Format: hypervisor.FormatRaw, ReadOnly: true,
						Limits: hypervisor.IOLimits{ReadIOPS: 200, WriteBytes: 2097152}},
				},
			},
			accel: AccelTCG,
		},
		"nics": {
			spec: hypervisor.VMSpec{
				ID: "vm3", VCPUs: 1, MemoryMB: 256,
				NICs: []hypervisor.NIC{
					{Tap: "tapvm3-0", MAC: "FA:16:3E:00:00:01"},
					{Tap: "tapvm3-1", MAC: "fa:16:3e:00:00:02"},
				},
			},
			accel: AccelTCG,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tc.spec.Validate(); err != nil {
				t.Fatalf("test spec invalid: %v", err)
			}
			args := buildArgs(tc.spec, launch{
				paths:   newRunPaths("/run/rackstack/vms", tc.spec.ID),
				accel:   tc.accel,
				machine: "q35",
				cache:   cache,
				keys:    map[int]string{0: "/dev/fd/3"},
			})
			if strings.Contains(strings.Join(args, " "), "sekrit") {
				t.Fatalf("a passphrase is on the command line: %q", args)
			}
			got := strings.Join(args, "\n") + "\n"
			golden := filepath.Join("testdata", name+".args")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("arguments differ from %s (run with -update if the change is meant):\n got: %s\nwant: %s",
					golden, strings.ReplaceAll(got, "\n", " "), strings.ReplaceAll(string(want), "\n", " "))
			}
		})
	}
}

// The properties the golden files must keep, spelled out.
func TestBuildArgsProperties(t *testing.T) {
	spec := hypervisor.VMSpec{
		ID: "vm4", VCPUs: 3, MemoryMB: 768,
		Disks:       []hypervisor.Disk{{Path: "/d/root.qcow2", Format: hypervisor.FormatQCOW2}},
		NICs:        []hypervisor.NIC{{Tap: "tapvm4", MAC: "fa:16:3e:00:00:04"}},
		ConfigDrive: "/d/config.iso",
	}
	p := newRunPaths("/run/vms", "vm4")
	for _, accel := range []string{AccelTCG, AccelKVM} {
		args := buildArgs(spec, launch{paths: p, accel: accel, machine: "pc", cache: func(string) string { return cacheNone }})
		value := func(flag string) []string {
			var vs []string
			for i, a := range args[:len(args)-1] {
				if a == flag {
					vs = append(vs, args[i+1])
				}
			}
			return vs
		}
		wantCPU := map[string]string{AccelTCG: "max", AccelKVM: "host"}[accel]
		if got := value("-accel"); !slices.Equal(got, []string{accel}) {
			t.Errorf("%s: -accel %v", accel, got)
		}
		if got := value("-cpu"); !slices.Equal(got, []string{wantCPU}) {
			t.Errorf("%s: -cpu %v, want %s", accel, got, wantCPU)
		}
		if got := value("-machine"); !slices.Equal(got, []string{"pc,graphics=off"}) {
			t.Errorf("-machine %v", got)
		}
		if got := value("-smp"); !slices.Equal(got, []string{"3"}) {
			t.Errorf("-smp %v", got)
		}
		if got := value("-m"); !slices.Equal(got, []string{"768"}) {
			t.Errorf("-m %v", got)
		}
		if got := value("-pidfile"); !slices.Equal(got, []string{p.pidfile}) {
			t.Errorf("-pidfile %v", got)
		}
		for _, flag := range []string{"-daemonize", "-nodefaults", "-no-user-config"} {
			if !slices.Contains(args, flag) {
				t.Errorf("no %s", flag)
			}
		}
		netdevs := value("-netdev")
		if len(netdevs) != 1 || !strings.Contains(netdevs[0], "ifname=tapvm4,") || !strings.Contains(netdevs[0], "vhost=off") ||
			!strings.Contains(netdevs[0], "script=no,downscript=no") {
			t.Errorf("-netdev %v: want tap tapvm4 without vhost or scripts", netdevs)
		}
		drives := value("-drive")
		if len(drives) != 2 {
			t.Fatalf("-drive %v: want the disk and the config drive", drives)
		}
		if strings.Contains(drives[0], "readonly") || !strings.Contains(drives[0], "format=qcow2") {
			t.Errorf("root drive %q: want writable qcow2", drives[0])
		}
		if !strings.Contains(drives[1], "file=/d/config.iso,") || !strings.Contains(drives[1], "readonly=on") || !strings.Contains(drives[1], "format=raw") {
			t.Errorf("config drive %q: want read-only raw", drives[1])
		}
		var blk int
		for _, dev := range value("-device") {
			if strings.HasPrefix(dev, "virtio-blk-pci,") {
				blk++
			}
		}
		if blk != 2 {
			t.Errorf("%d virtio-blk devices, want 2", blk)
		}
	}
}

func TestEscape(t *testing.T) {
	if got := escape("/a,b/c,,d"); got != "/a,,b/c,,,,d" {
		t.Errorf("escape = %q", got)
	}
}

// A disk marked Boot is booted first wherever it is (a stable rescue's
// disk, after the guest's own); the others keep their order after it.
func TestBuildArgsBootDisk(t *testing.T) {
	spec := hypervisor.VMSpec{ID: "vm5", VCPUs: 1, MemoryMB: 128, Disks: []hypervisor.Disk{
		{Path: "/d/root.qcow2", Format: hypervisor.FormatQCOW2},
		{Path: "/d/data.raw", Format: hypervisor.FormatRaw},
		{Path: "/d/rescue.qcow2", Format: hypervisor.FormatQCOW2, Boot: true},
	}}
	args := buildArgs(spec, launch{paths: newRunPaths("/run/vms", "vm5"), accel: AccelTCG, machine: "pc", cache: func(string) string { return cacheNone }})
	var got []string
	for i, a := range args[:len(args)-1] {
		if a == "-device" && strings.HasPrefix(args[i+1], "virtio-blk-pci,id=disk") {
			got = append(got, args[i+1])
		}
	}
	want := []string{"virtio-blk-pci,id=disk0,drive=drive-disk0,bootindex=2", "virtio-blk-pci,id=disk1,drive=drive-disk1,bootindex=3",
		"virtio-blk-pci,id=disk2,drive=drive-disk2,bootindex=1"}
	if !slices.Equal(got, want) {
		t.Fatalf("disk devices %v, want %v", got, want)
	}
}
