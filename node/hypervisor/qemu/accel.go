package qemu

import (
	"bufio"
	"bytes"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Accelerator names, as QEMU's -accel spells them.
const (
	AccelAuto = "auto"
	AccelKVM  = "kvm"
	AccelTCG  = "tcg"
)

// ProbeAccelerator decides how guests run. force is the configured choice:
// "kvm" or "tcg" is taken as is; "" or "auto" picks KVM only when the host
// CPU shows hardware virtualisation (a vmx or svm flag in cpuinfo) and
// kvmUsable says /dev/kvm answers. Both are needed: a /dev/kvm backed by
// software nested virtualisation (PVM) opens fine, but stock guest kernels
// hang under it and -cpu host aborts. reason says why, for the log.
func ProbeAccelerator(force string, cpuinfo []byte, kvmUsable func() error) (accel, reason string, err error) {
	switch force {
	case AccelKVM, AccelTCG:
		return force, "forced by configuration", nil
	case "", AccelAuto:
	default:
		return "", "", fmt.Errorf("accelerator %q: want %q, %q or %q", force, AccelAuto, AccelKVM, AccelTCG)
	}
	flag := virtFlag(cpuinfo)
	if flag == "" {
		return AccelTCG, "host CPU shows no vmx or svm flag (no hardware virtualisation, or a software-nested /dev/kvm that cannot run ordinary guests)", nil
	}
	if err := kvmUsable(); err != nil {
		return AccelTCG, fmt.Sprintf("host CPU has %s but /dev/kvm is not usable: %v", flag, err), nil
	}
	return AccelKVM, fmt.Sprintf("host CPU has %s and /dev/kvm answers", flag), nil
}

// virtFlag returns "vmx" or "svm" if a flags line of cpuinfo has it.
func virtFlag(cpuinfo []byte) string {
	s := bufio.NewScanner(bytes.NewReader(cpuinfo))
	s.Buffer(make([]byte, 0, 4096), 1<<20)
	for s.Scan() {
		key, value, ok := bytes.Cut(s.Bytes(), []byte(":"))
		if !ok || string(bytes.TrimSpace(key)) != "flags" {
			continue
		}
		for _, f := range bytes.Fields(value) {
			if string(f) == "vmx" || string(f) == "svm" {
				return string(f)
			}
		}
	}
	return ""
}

// cpuModel is the -cpu value for an accelerator: the host's own CPU under
// KVM, everything TCG can emulate otherwise.
func cpuModel(accel string) string {
	if accel == AccelKVM {
		return "host"
	}
	return "max"
}

// kvmUsable opens /dev/kvm and asks its API version, which is all QEMU
// needs before it creates a VM.
func kvmUsable() error {
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: "/dev/kvm", Err: err}
	}
	defer unix.Close(fd)
	const kvmGetAPIVersion = 0xAE00 // _IO(KVMIO, 0x00)
	v, err := unix.IoctlRetInt(fd, kvmGetAPIVersion)
	if err != nil {
		return fmt.Errorf("KVM_GET_API_VERSION: %w", err)
	}
	if v != 12 {
		return fmt.Errorf("KVM API version %d, want 12", v)
	}
	return nil
}
