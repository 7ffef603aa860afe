package qemu

import (
	"errors"
	"strings"
	"testing"
)

const (
	cpuinfoVMX = `processor	: 0
vendor_id	: GenuineIntel
model name	: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov vmx smx est tm2 ssse3
`
	cpuinfoSVM = `processor	: 0
vendor_id	: AuthenticAMD
flags		: fpu vme de pse tsc msr pae svm extapic cr8_legacy abm
`
	// What this machine's PVM guest shows: hypervisor, no vmx or svm.
	cpuinfoPVM = `processor	: 0
vendor_id	: GenuineIntel
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge hypervisor lahf_lm abm
vmx flags	: vnmi preemption_timer invvpid ept_x_only
`
)

func TestProbeAccelerator(t *testing.T) {
	usable := func() error { return nil }
	unusable := func() error { return errors.New("open /dev/kvm: no such file or directory") }
	tests := map[string]struct {
		force     string
		cpuinfo   string
		kvm       func() error
		want      string
		reasonHas string
		wantErr   bool
	}{
		"vmx and kvm":          {cpuinfo: cpuinfoVMX, kvm: usable, want: AccelKVM, reasonHas: "vmx"},
		"svm and kvm":          {force: AccelAuto, cpuinfo: cpuinfoSVM, kvm: usable, want: AccelKVM, reasonHas: "svm"},
		"vmx without kvm":      {cpuinfo: cpuinfoVMX, kvm: unusable, want: AccelTCG, reasonHas: "/dev/kvm is not usable"},
		"pvm kvm without vmx":  {cpuinfo: cpuinfoPVM, kvm: usable, want: AccelTCG, reasonHas: "no vmx or svm"},
		"empty cpuinfo":        {cpuinfo: "", kvm: usable, want: AccelTCG},
		"forced tcg":           {force: AccelTCG, cpuinfo: cpuinfoVMX, kvm: usable, want: AccelTCG, reasonHas: "forced"},
		"forced kvm":           {force: AccelKVM, cpuinfo: cpuinfoPVM, kvm: unusable, want: AccelKVM, reasonHas: "forced"},
		"unknown accelerator":  {force: "hvf", cpuinfo: cpuinfoVMX, kvm: usable, wantErr: true},
		"vmx only in a word":   {cpuinfo: "flags : fpu vmxnet svmx\n", kvm: usable, want: AccelTCG},
		"vmx in another field": {cpuinfo: "model name : vmx svm\nflags : fpu\n", kvm: usable, want: AccelTCG},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			called := false
			kvm := func() error { called = true; return tc.kvm() }
			got, reason, err := ProbeAccelerator(tc.force, []byte(tc.cpuinfo), kvm)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("accelerator = %q (%s), want %q", got, reason, tc.want)
			}
			if !strings.Contains(reason, tc.reasonHas) {
				t.Errorf("reason %q, want it to mention %q", reason, tc.reasonHas)
			}
			if (tc.force == AccelKVM || tc.force == AccelTCG) && called {
				t.Error("probed /dev/kvm although the accelerator was forced")
			}
		})
	}
}

func TestCPUModel(t *testing.T) {
	if cpuModel(AccelKVM) != "host" || cpuModel(AccelTCG) != "max" {
		t.Errorf("cpu models: kvm %q, tcg %q", cpuModel(AccelKVM), cpuModel(AccelTCG))
	}
}
