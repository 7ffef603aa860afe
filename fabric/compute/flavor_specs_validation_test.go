package compute

import (
	"testing"
)

// 2.86: known extra specs are validated (an unknown name in a known
// namespace, a value of the wrong type, out of bounds or not of the
// enum or pattern), with Nova's messages; others pass, and before 2.86
// nothing is checked beyond what was.
func TestExtraSpecValidation286(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	path := "/v2.1/flavors/small/os-extra_specs"
	set := func(version string, specs map[string]any, status int, inMsg ...string) {
		t.Helper()
		fault := ""
		if status == 400 {
			fault = "badRequest"
		}
		f.expect("POST", path, admin, version, map[string]any{"extra_specs": specs}, status, fault, inMsg...)
	}
	for _, ok := range []map[string]any{
		{"hw:cpu_policy": "dedicated"}, {"hw:numa_nodes": 2}, {"hw:numa_cpus.0": "0-1,^1"}, {"hw:numa_mem.1": "512"},
		{"hw:mem_page_size": "2MiB"}, {"hw:mem_page_size": "large"}, {"hw:boot_menu": "yes"}, {"hw_rng:allowed": true},
		{"quota:disk_read_iops_sec": "100"}, {"trait:HW_CPU_X86_AVX2": "required"}, {"trait1:CUSTOM_GPU": "forbidden"},
		{"resources:VCPU": "1"}, {"resources:CUSTOM_BAREMETAL_GOLD": "1"}, {"capabilities:cpu_info:arch": "x86_64"},
		{"aggregate_instance_extra_specs:ssd": "true"}, {"group_policy": "isolate"}, {"pci_passthrough:alias": "a1:2, b:1"},
		{"mine:anything": "x"}, {"plain": "whatever"}, {"powervm:shared_weight": "255"},
	} {
		set("2.86", ok, 200)
	}
	for _, c := range []struct {
		specs map[string]any
		msg   string
	}{
		{map[string]any{"hw:cpu_polic": "dedicated"}, "Validation failed; extra spec 'hw:cpu_polic' does not appear to be a valid extra spec."},
		{map[string]any{"hw:cpu_policy": "sometimes"}, "Validation failed; 'sometimes' is not one of: dedicated, shared, mixed."},
		{map[string]any{"hw:numa_nodes": "0"}, "Validation failed; '0' is less than the min value of '1'."},
		{map[string]any{"hw:numa_nodes": "two"}, "Validation failed; 'two' is not a valid integer value."},
		{map[string]any{"hw:boot_menu": "perhaps"}, "Validation failed; 'perhaps' is not a valid boolean-like value."},
		{map[string]any{"hw:numa_cpus.0": "a-b"}, "Validation failed; 'a-b' is not of the format"},
		{map[string]any{"powervm:shared_weight": "256"}, "Validation failed; '256' is greater than the max value of '255'."},
		{map[string]any{"trait:CUSTOM_X": "wanted"}, "is not one of: required, forbidden."},
		{map[string]any{"group_policy": "all"}, "is not one of: isolate, none."},
		{map[string]any{"quota:nonsense": "1"}, "extra spec 'quota:nonsense' does not appear"},
		{map[string]any{"trait2:lower": "required"}, "extra spec 'trait2:lower' does not appear"},
	} {
		set("2.86", c.specs, 400, c.msg)
		set("2.85", c.specs, 200)
		f.expect("PUT", path+"/"+firstKey(c.specs), admin, "2.86", c.specs, 400, "badRequest", c.msg)
		f.expect("PUT", path+"/"+firstKey(c.specs), admin, "2.85", c.specs, 200, "")
	}
}

func firstKey(m map[string]any) string {
	for k := range m {
		return k
	}
	return ""
}
