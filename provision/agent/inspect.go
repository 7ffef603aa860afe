package agent

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/node/inventory"
	"github.com/rackstack/rackstack/provision/agentapi"
)

// Inspect inventories the machine whose /proc and /sys are under root ("/"
// in the ramdisk; tests pass a fixture tree) in Ironic's format. bootMAC is
// the MAC the machine PXE-booted from. What node/inventory reads (CPU count
// and model, memory, the disk and NIC lists) comes from there; the agent
// adds what Ironic's inventory has and a hypervisor node's does not: every
// CPU flag, DMI, physical memory, disk serials and NIC drivers.
func Inspect(root, bootMAC string) (agentapi.Inventory, error) {
	base, err := inventory.ReadFrom(root)
	if err != nil {
		return agentapi.Inventory{}, fmt.Errorf("inspect machine: %w", err)
	}
	inv := agentapi.Inventory{
		Hostname: base.Hostname,
		CPU: agentapi.CPU{
			ModelName:    base.CPUModel,
			Count:        base.CPUs,
			Architecture: machineArch(),
		},
		Memory: agentapi.Memory{Total: int64(base.MemoryBytes)},
		SystemVendor: agentapi.SystemVendor{
			Manufacturer: readTrim(root, "sys/class/dmi/id/sys_vendor"),
			ProductName:  readTrim(root, "sys/class/dmi/id/product_name"),
			SerialNumber: readTrim(root, "sys/class/dmi/id/product_serial"),
			UUID:         readTrim(root, "sys/class/dmi/id/product_uuid"),
		},
		Boot: agentapi.Boot{CurrentBootMode: "bios", PXEInterface: strings.ToLower(bootMAC)},
	}
	if inv.Hostname == "(none)" {
		inv.Hostname = "" // the kernel's word for no hostname
	}
	inv.CPU.Frequency, inv.CPU.Flags = cpuDetails(filepath.Join(root, "proc/cpuinfo"))
	inv.Memory.PhysicalMB = physicalMiB(root, base.MemoryBytes)
	if _, err := os.Stat(filepath.Join(root, "sys/firmware/efi")); err == nil {
		inv.Boot.CurrentBootMode = "uefi"
	}
	for _, d := range base.Disks {
		if skipDisk(d.Name) || d.SizeBytes == 0 {
			continue
		}
		inv.Disks = append(inv.Disks, disk(root, d))
	}
	for _, n := range base.NICs {
		dir := filepath.Join(root, "sys/class/net", n.Name)
		// Only NICs with a device behind them: not lo, bridges or tunnels.
		if _, err := os.Stat(filepath.Join(dir, "device")); err != nil {
			continue
		}
		ifc := agentapi.Interface{
			Name:       n.Name,
			MACAddress: strings.ToLower(n.MAC),
			HasCarrier: readTrim(root, "sys/class/net", n.Name, "carrier") == "1",
			SpeedMbps:  n.SpeedMbps,
		}
		if link, err := os.Readlink(filepath.Join(dir, "device/driver")); err == nil {
			ifc.Driver = filepath.Base(link)
		}
		for _, a := range n.Addrs {
			if ip, _, err := net.ParseCIDR(a); err == nil && ip.To4() != nil {
				ifc.IPv4Address = ip.String()
				break
			}
		}
		inv.Interfaces = append(inv.Interfaces, ifc)
	}
	return inv, nil
}

// skipDisk says which block devices are never deploy targets: loop and RAM
// disks (node/inventory already drops them), CD drives, device-mapper.
func skipDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "sr", "dm-", "fd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// disk adds what the kernel says about a disk's identity: virtio-blk and
// NVMe expose the serial directly, SCSI and SATA in VPD page 0x80.
func disk(root string, d inventory.Disk) agentapi.Disk {
	dir := filepath.Join("sys/block", d.Name)
	out := agentapi.Disk{
		Name:       "/dev/" + d.Name,
		Size:       int64(d.SizeBytes),
		Rotational: d.Rotational,
		Model:      d.Model,
		Vendor:     readTrim(root, dir, "device/vendor"),
		Serial:     firstOf(readTrim(root, dir, "serial"), readTrim(root, dir, "device/serial"), vpdSerial(root, dir)),
	}
	if wwid := firstOf(readTrim(root, dir, "wwid"), readTrim(root, dir, "device/wwid")); wwid != "" {
		// Ironic reports NAA names as 0x-prefixed hex, as lsblk does.
		if hex, ok := strings.CutPrefix(wwid, "naa."); ok {
			wwid = "0x" + hex
		}
		out.WWN = wwid
	}
	return out
}

// vpdSerial reads the unit serial number page (4-byte header, then ASCII).
func vpdSerial(root, dir string) string {
	b, err := os.ReadFile(filepath.Join(root, dir, "device/vpd_pg80"))
	if err != nil || len(b) <= 4 {
		return ""
	}
	return strings.TrimSpace(strings.Trim(string(b[4:]), "\x00"))
}

// cpuDetails reads the first processor's frequency and all its flags:
// Ironic's inventory carries the full list, not only the ones a hypervisor
// schedules on.
func cpuDetails(path string) (mhz string, flags []string) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			if flags != nil {
				break // the end of the first processor's block
			}
			continue
		}
		switch strings.TrimSpace(k) {
		case "cpu MHz":
			if mhz == "" {
				mhz = strings.TrimSpace(v)
			}
		case "flags":
			if flags == nil {
				flags = strings.Fields(v)
			}
		}
	}
	return mhz, flags
}

// physicalMiB is the installed memory: the online memory blocks the kernel
// lists under /sys/devices/system/memory (which count what the firmware
// reserved, unlike MemTotal); without them, MemTotal rounded up to whole
// 128 MiB, the smallest memory block x86 kernels use.
func physicalMiB(root string, total uint64) int {
	dir := filepath.Join(root, "sys/devices/system/memory")
	block, err := strconv.ParseUint(strings.TrimPrefix(readTrim(dir, "block_size_bytes"), "0x"), 16, 64)
	if err == nil && block > 0 {
		ents, _ := os.ReadDir(dir)
		var online uint64
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "memory") && readTrim(dir, e.Name(), "state") == "online" {
				online++
			}
		}
		if online > 0 {
			return int(online * block >> 20)
		}
	}
	const unit = 128 << 20
	return int((total + unit - 1) / unit * unit >> 20)
}

// machineArch is the architecture as uname -m names it, which is what
// Ironic reports.
func machineArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	}
	return runtime.GOARCH
}

func readTrim(parts ...string) string {
	b, err := os.ReadFile(filepath.Join(parts...))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
