package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The machine and chassis subcommands are what a shell harness and
// ipmi_sim call: the chassis program takes the MC address ipmi_sim
// passes first.
func TestMachineAndChassis(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m1")
	var out, errs bytes.Buffer
	if code := run([]string{"machine", dir, "--", "/usr/bin/qemu-system-x86_64", "-boot", "n"}, &out, &errs); code != 0 {
		t.Fatalf("machine: exit %d: %s", code, errs.String())
	}
	argv, err := os.ReadFile(filepath.Join(dir, "argv"))
	if err != nil || string(argv) != "/usr/bin/qemu-system-x86_64\n-boot\nn\n" {
		t.Fatalf("argv file %q, %v", argv, err)
	}
	if code := run([]string{"chassis", dir, "0x20", "get", "power", "boot"}, &out, &errs); code != 0 {
		t.Fatalf("chassis get: exit %d: %s", code, errs.String())
	}
	if out.String() != "power:0\nboot:none\n" {
		t.Errorf("chassis get printed %q", out.String())
	}
	out.Reset()
	if code := run([]string{"chassis", dir, "0x20", "set", "boot", "pxe"}, &out, &errs); code != 0 {
		t.Fatalf("chassis set: exit %d: %s", code, errs.String())
	}
	run([]string{"chassis", dir, "0x20", "get", "boot"}, &out, &errs)
	if out.String() != "boot:pxe\n" {
		t.Errorf("after set boot pxe: %q", out.String())
	}
	errs.Reset()
	if code := run([]string{"chassis", dir, "0x20", "set", "boot", "floppy"}, &out, &errs); code == 0 || !strings.Contains(errs.String(), "floppy") {
		t.Errorf("set boot floppy: exit %d, %q", code, errs.String())
	}
}
