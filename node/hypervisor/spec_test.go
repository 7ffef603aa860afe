package hypervisor_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/node/hypervisor"
)

func validSpec() hypervisor.VMSpec {
	return hypervisor.VMSpec{
		ID:       "2f0c1a4e-9b0e-4c7e-9a57-0d4f6b6f3a10",
		Name:     "web-1",
		VCPUs:    2,
		MemoryMB: 512,
		Disks: []hypervisor.Disk{
			{Path: "/var/lib/rackstack/disks/root.qcow2", Format: hypervisor.FormatQCOW2, Serial: "root"},
			{Path: "/var/lib/rackstack/disks/data.raw", Format: hypervisor.FormatRaw, ReadOnly: true},
		},
		NICs: []hypervisor.NIC{
			{Tap: "tap2f0c1a4e-9b", MAC: "fa:16:3e:00:00:01"},
			{Tap: "tap2f0c1a4e-9c", MAC: "FA:16:3E:00:00:02"},
		},
		ConfigDrive: "/var/lib/rackstack/config/2f0c.iso",
	}
}

func TestValidate(t *testing.T) {
	tests := map[string]struct {
		mutate func(*hypervisor.VMSpec)
		want   string // in the error; "" for valid
	}{
		"valid":              {mutate: func(*hypervisor.VMSpec) {}},
		"no disks or nics":   {mutate: func(s *hypervisor.VMSpec) { s.Disks, s.NICs, s.ConfigDrive = nil, nil, "" }},
		"empty id":           {mutate: func(s *hypervisor.VMSpec) { s.ID = "" }, want: "id"},
		"dot id":             {mutate: func(s *hypervisor.VMSpec) { s.ID = ".." }, want: "id"},
		"long id":            {mutate: func(s *hypervisor.VMSpec) { s.ID = strings.Repeat("a", 65) }, want: "id"},
		"negative memory":    {mutate: func(s *hypervisor.VMSpec) { s.MemoryMB = -1 }, want: "memory_mb"},
		"zero vcpus":         {mutate: func(s *hypervisor.VMSpec) { s.VCPUs = 0 }, want: "vcpus"},
		"relative disk":      {mutate: func(s *hypervisor.VMSpec) { s.Disks[1].Path = "data.raw" }, want: "disks[1].path"},
		"probed format":      {mutate: func(s *hypervisor.VMSpec) { s.Disks[0].Format = "" }, want: "disks[0].format"},
		"serial with comma":  {mutate: func(s *hypervisor.VMSpec) { s.Disks[0].Serial = "a,b" }, want: "disks[0].serial"},
		"tap with comma":     {mutate: func(s *hypervisor.VMSpec) { s.NICs[0].Tap = "tap0,vhost=on" }, want: "nics[0].tap"},
		"eui-64 mac":         {mutate: func(s *hypervisor.VMSpec) { s.NICs[0].MAC = "fa:16:3e:00:00:00:00:01" }, want: "nics[0].mac"},
		"duplicate mac":      {mutate: func(s *hypervisor.VMSpec) { s.NICs[1].MAC = "fa:16:3e:00:00:01" }, want: "same as nics[0]"},
		"relative cfg drive": {mutate: func(s *hypervisor.VMSpec) { s.ConfigDrive = "cfg.iso" }, want: "config_drive"},
		"nbd disk": {mutate: func(s *hypervisor.VMSpec) {
			s.Disks[0] = hypervisor.Disk{NBDSocket: "/run/nbd.sock", NBDExport: "vol-1", Format: hypervisor.FormatRaw}
		}},
		"nbd and path": {mutate: func(s *hypervisor.VMSpec) { s.Disks[0].NBDSocket, s.Disks[0].NBDExport = "/run/nbd.sock", "vol-1" }, want: "disks[0]: a path and an nbd export"},
		"nbd export with comma": {mutate: func(s *hypervisor.VMSpec) {
			s.Disks[0] = hypervisor.Disk{NBDSocket: "/run/nbd.sock", NBDExport: "v,server.path=/x", Format: hypervisor.FormatRaw}
		}, want: "disks[0].nbd_export"},
		"nbd qcow2": {mutate: func(s *hypervisor.VMSpec) {
			s.Disks[0] = hypervisor.Disk{NBDSocket: "/run/nbd.sock", NBDExport: "vol-1", Format: hypervisor.FormatQCOW2}
		}, want: "disks[0].format"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := validSpec()
			tc.mutate(&s)
			err := s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if !errors.Is(err, hypervisor.ErrInvalidSpec) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want ErrInvalidSpec naming %q", err, tc.want)
			}
		})
	}
}

func TestValidateReportsEveryField(t *testing.T) {
	err := hypervisor.VMSpec{ID: "x"}.Validate()
	for _, field := range []string{"vcpus", "memory_mb"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}
}

func TestCheckFiles(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := hypervisor.VMSpec{Disks: []hypervisor.Disk{{Path: disk}}}
	if err := s.CheckFiles(); err != nil {
		t.Fatalf("CheckFiles() = %v", err)
	}
	s.Disks = append(s.Disks, hypervisor.Disk{Path: dir})
	s.ConfigDrive = filepath.Join(dir, "missing.iso")
	err := s.CheckFiles()
	if !errors.Is(err, hypervisor.ErrInvalidSpec) || !strings.Contains(err.Error(), "disks[1].path") || !strings.Contains(err.Error(), "config_drive") {
		t.Fatalf("CheckFiles() = %v, want ErrInvalidSpec naming disks[1].path and config_drive", err)
	}
}

func TestEqual(t *testing.T) {
	a, b := validSpec(), validSpec()
	if !a.Equal(b) {
		t.Error("equal specs differ")
	}
	a.NICs, b.NICs = nil, []hypervisor.NIC{}
	if !a.Equal(b) {
		t.Error("nil and empty NIC lists differ")
	}
	b.Disks[0].ReadOnly = true
	if a.Equal(b) {
		t.Error("specs differing in a disk are equal")
	}
}
