package compute

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Validation of known extra specs (2.86). From 2.86 each extra spec set
// on a flavor (POST /flavors/{id}/os-extra_specs and PUT .../{key}) is
// checked against Nova's registry of the specs it knows: a key of a
// namespace Nova knows (hw:, quota:, trait:, resources:, ...) must be
// one of the registered names, and its value of the registered type
// (an integer within its bounds, a boolean-like string, or a string
// matching its enum or pattern). Keys without a namespace, and those of
// namespaces Nova does not know, are anyone's and pass. The messages are
// Nova's ("Validation failed; ...").
//
// The registry is Nova's nova/api/validation/extra_specs, with the hw:
// specs added after it (vif_multiqueue_enabled, virtio_packed_ring,
// locked_memory, ephemeral_encryption*, viommu_model, maxphysaddr_*).
// Where Nova reads a list from a library (os-traits' standard traits),
// any name of the library's form is taken, so a spec Nova accepts is
// never refused here.

// specType is the type of a known spec's value.
type specType int

const (
	specStr specType = iota
	specInt
	specBool
)

// knownSpec is one registered extra spec: its name (a pattern when it
// has parameters) and what its value may be.
type knownSpec struct {
	name     *regexp.Regexp
	typ      specType
	enum     []string
	pattern  string
	min, max *int
}

func ptr(n int) *int { return &n }

// spec registers a name ({param} parts given as patterns in params).
func spec(name string, typ specType, opts ...func(*knownSpec)) knownSpec {
	k := knownSpec{typ: typ}
	for _, o := range opts {
		o(&k)
	}
	k.name = regexp.MustCompile("^(?:" + name + ")$")
	return k
}

func enum(v ...string) func(*knownSpec) { return func(k *knownSpec) { k.enum = v } }
func pat(p string) func(*knownSpec)     { return func(k *knownSpec) { k.pattern = p } }
func minv(n int) func(*knownSpec)       { return func(k *knownSpec) { k.min = ptr(n) } }
func maxv(n int) func(*knownSpec)       { return func(k *knownSpec) { k.max = ptr(n) } }

const (
	cpuMapPattern = `\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*`
	groupPattern  = `([a-zA-Z0-9_-]{1,64})?`
)

// resourceClasses are placement's standard resource classes
// (os-resource-classes).
var resourceClasses = []string{"VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF", "NUMA_SOCKET", "NUMA_CORE",
	"NUMA_THREAD", "NUMA_MEMORY_MB", "IPV4_ADDRESS", "VGPU", "VGPU_DISPLAY_HEAD", "NET_BW_EGR_KILOBIT_PER_SEC",
	"NET_BW_IGR_KILOBIT_PER_SEC", "PCPU", "MEM_ENCRYPTION_CONTEXT", "FPGA", "PGPU", "NET_PACKET_RATE_KILOPACKET_PER_SEC",
	"NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC", "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC"}

// knownSpecs is the registry; knownNamespaces the namespaces (the part
// before the first ':') of its names, as patterns.
var knownSpecs, knownNamespaces = buildKnownSpecs()

func buildKnownSpecs() ([]knownSpec, []*regexp.Regexp) {
	b := func(name string) knownSpec { return spec(regexp.QuoteMeta(name), specBool) }
	i := func(name string, opts ...func(*knownSpec)) knownSpec {
		return spec(regexp.QuoteMeta(name), specInt, opts...)
	}
	s := func(name string, opts ...func(*knownSpec)) knownSpec {
		return spec(regexp.QuoteMeta(name), specStr, opts...)
	}
	specs := []knownSpec{
		// hw
		b("hw:cpu_realtime"),
		s("hw:cpu_realtime_mask", pat(`(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*`)),
		b("hw:hide_hypervisor_id"),
		s("hw:cpu_policy", enum("dedicated", "shared", "mixed")),
		s("hw:cpu_thread_policy", enum("prefer", "isolate", "require")),
		s("hw:emulator_threads_policy", enum("isolate", "share")),
		s("hw:cpu_dedicated_mask", pat(cpuMapPattern)),
		s("hw:mem_page_size", pat(`(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)`)),
		i("hw:numa_nodes", minv(1)),
		spec(`hw:numa_cpus\.(?P<id>\d+)`, specStr, pat(cpuMapPattern)),
		spec(`hw:numa_mem\.(?P<id>\d+)`, specInt, minv(1)),
		s("hw:pci_numa_affinity_policy", enum("required", "preferred", "legacy", "socket")),
		i("hw:cpu_sockets", minv(1)), i("hw:cpu_cores", minv(1)), i("hw:cpu_threads", minv(1)),
		i("hw:max_cpu_sockets", minv(1)), i("hw:max_cpu_cores", minv(1)), i("hw:max_cpu_threads", minv(1)),
		b("hw:boot_menu"), b("hw:mem_encryption"),
		s("hw:pmem", pat(`([a-zA-Z0-9_]+(,)?)+`)),
		b("hw:pmu"),
		i("hw:serial_port_count", minv(0)),
		s("hw:tpm_model", enum("tpm-tis", "tpm-crb")),
		s("hw:tpm_version", enum("1.2", "2.0")),
		s("hw:watchdog_action", enum("none", "pause", "poweroff", "reset", "disabled")),
		b("hw:vif_multiqueue_enabled"), b("hw:virtio_packed_ring"), b("hw:locked_memory"),
		b("hw:ephemeral_encryption"), s("hw:ephemeral_encryption_format", enum("luks", "plain")),
		s("hw:viommu_model", enum("intel", "smmuv3", "virtio", "auto")),
		s("hw:maxphysaddr_mode", enum("passthrough", "emulate")), i("hw:maxphysaddr_bits", minv(1)),
		// hw_rng, hw_video, os
		b("hw_rng:allowed"), i("hw_rng:rate_bytes", minv(0)), i("hw_rng:rate_period", minv(0)),
		i("hw_video:ram_max_mb", minv(0)),
		s("os:secure_boot", enum("disabled", "required")),
		// accel, pci_passthrough, vmware
		s("accel:device_profile"),
		s("pci_passthrough:alias", pat(`[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*`)),
		s("vmware:hw_version"), s("vmware:storage_policy"),
		// aggregate_instance_extra_specs, capabilities
		spec(`aggregate_instance_extra_specs:(?P<key>.+)`, specStr),
		// no namespace
		b("hide_hypervisor_id"),
		s("group_policy", enum("isolate", "none")),
		// resources, trait
		spec(`resources(?P<group>`+groupPattern+`):CUSTOM_(?P<resource>[A-Z0-9_]+)`, specInt),
		spec(`trait(?P<group>`+groupPattern+`):(?P<trait>[A-Z0-9_]+)`, specStr, enum("required", "forbidden")),
	}
	for _, c := range resourceClasses {
		specs = append(specs, spec(`resources(?P<group>`+groupPattern+`):`+c, specInt))
	}
	for _, c := range []string{"id", "uuid", "service_id", "host", "vcpus", "memory_mb", "local_gb", "vcpus_used",
		"memory_mb_used", "local_gb_used", "hypervisor_type", "hypervisor_version", "hypervisor_hostname", "free_ram_mb",
		"free_disk_gb", "current_workload", "running_vms", "disk_available_least", "host_ip", "mapped",
		"cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio", "total_usable_ram_mb",
		"total_usable_disk_gb", "disk_mb_used", "free_disk_mb", "vcpus_total", "num_instances", "num_io_ops",
		"failed_builds", "aggregates", "cell_uuid", "updated"} {
		specs = append(specs, s("capabilities:"+c))
	}
	for _, c := range []string{"cpu_info", "metrics", "stats", "numa_topology", "supported_hv_specs", "pci_device_pools",
		"nodename", "pci_stats", "supported_instances", "limits", "instances"} {
		specs = append(specs, spec(`capabilities:`+c+`(?P<filter>(:\w+)*)`, specStr))
	}
	// quota: VMware's, then libvirt's.
	for _, res := range []string{"cpu", "memory", "disk_io", "vif"} {
		specs = append(specs, i("quota:"+res+"_limit"), i("quota:"+res+"_reservation"),
			s("quota:"+res+"_shares_level"), i("quota:"+res+"_shares_share"))
	}
	for _, k := range []string{"shares", "period", "quota"} {
		specs = append(specs, i("quota:cpu_"+k, minv(0)))
	}
	for _, st := range []string{"read", "write", "total"} {
		for _, m := range []string{"bytes", "iops"} {
			specs = append(specs, i("quota:disk_"+st+"_"+m+"_sec", minv(0)))
		}
	}
	for _, st := range []string{"inbound", "outbound"} {
		for _, m := range []string{"average", "peak", "burst"} {
			specs = append(specs, i("quota:vif_"+st+"_"+m, minv(0)))
		}
	}
	// powervm
	specs = append(specs,
		i("powervm:min_mem", minv(256)), i("powervm:max_mem", minv(256)),
		i("powervm:min_vcpu", minv(1)), i("powervm:max_vcpu", minv(1)),
		s("powervm:proc_units", pat(`\d+\.\d+`)), s("powervm:min_proc_units", pat(`\d+\.\d+`)), s("powervm:max_proc_units", pat(`\d+\.\d+`)),
		b("powervm:dedicated_proc"),
		i("powervm:shared_weight", minv(0), maxv(255)), i("powervm:availability_priority", minv(0), maxv(255)),
		b("powervm:uncapped"),
		s("powervm:dedicated_sharing_mode", enum("share_idle_procs", "keep_idle_procs", "share_idle_procs_active", "share_idle_procs_always")),
		s("powervm:processor_compatibility", enum("default", "POWER6", "POWER6+", "POWER6_Enhanced", "POWER6+_Enhanced", "POWER7", "POWER8")),
		s("powervm:shared_proc_pool_name"), b("powervm:srr_capability"),
	)
	seen := map[string]bool{}
	var namespaces []*regexp.Regexp
	for _, k := range specs {
		src := strings.TrimSuffix(strings.TrimPrefix(k.name.String(), "^(?:"), ")$")
		ns, _, ok := strings.Cut(src, ":")
		if !ok || seen[ns] {
			continue
		}
		seen[ns] = true
		namespaces = append(namespaces, regexp.MustCompile("^(?:"+ns+")$"))
	}
	return specs, namespaces
}

// validateSpec is Nova's validators.validate: a known spec's value
// checked, an unknown name in a known namespace refused.
func validateSpec(name, value string) error {
	for _, k := range knownSpecs {
		if k.name.MatchString(name) {
			return k.validate(value)
		}
	}
	ns, _, ok := strings.Cut(name, ":")
	if !ok {
		return nil
	}
	for _, re := range knownNamespaces {
		if re.MatchString(ns) {
			return badRequest("Validation failed; extra spec '%s' does not appear to be a valid extra spec.", name)
		}
	}
	return nil
}

func (k knownSpec) validate(value string) error {
	switch k.typ {
	case specInt:
		n, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(value), "+"))
		if err != nil {
			return badRequest("Validation failed; '%s' is not a valid integer value.", value)
		}
		if k.max != nil && *k.max < n {
			return badRequest("Validation failed; '%d' is greater than the max value of '%d'.", n, *k.max)
		}
		if k.min != nil && *k.min > n {
			return badRequest("Validation failed; '%d' is less than the min value of '%d'.", n, *k.min)
		}
	case specBool:
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "1", "t", "true", "on", "y", "yes", "0", "f", "false", "off", "n", "no":
		default:
			return badRequest("Validation failed; '%s' is not a valid boolean-like value.", value)
		}
	default:
		if k.pattern != "" {
			if !regexp.MustCompile("^(?:" + k.pattern + ")$").MatchString(value) {
				return badRequest("Validation failed; '%s' is not of the format '%s'.", value, k.pattern)
			}
		} else if len(k.enum) > 0 && !slices.Contains(k.enum, value) {
			return badRequest("Validation failed; '%s' is not one of: %s.", value, strings.Join(k.enum, ", "))
		}
	}
	return nil
}

// validateSpecs validates every spec of a request from 2.86, in name
// order (the first failure is the answer).
func validateSpecs(specs map[string]string) error {
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := validateSpec(n, specs[n]); err != nil {
			return err
		}
	}
	return nil
}
