package qemu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

var (
	_ hypervisor.Devices   = (*vm)(nil)
	_ hypervisor.Diagnoser = (*vm)(nil)
)

// pciDevice is one device of QMP's query-pci, with the bridge's devices
// behind it (the hot-plug root ports).
type pciDevice struct {
	Bus       int    `json:"bus"`
	Slot      int    `json:"slot"`
	Function  int    `json:"function"`
	QdevID    string `json:"qdev_id"`
	ClassInfo struct {
		Class int `json:"class"`
	} `json:"class_info"`
	Bridge *struct {
		Devices []pciDevice `json:"devices"`
	} `json:"pci_bridge"`
}

// PCI classes of the virtio devices buildArgs and the hot plugs make:
// virtio-net is an Ethernet controller, virtio-blk a SCSI storage one.
const (
	pciClassEthernet = 0x0200
	pciClassStorage  = 0x0100
)

// Devices implements hypervisor.Devices: the virtio NICs and disks
// QEMU's query-pci finds, at the addresses it reports (the bus numbers
// behind the root ports are those the guest's firmware programmed),
// each NIC with the MAC and each disk with the serial QEMU gives it.
func (v *vm) Devices(ctx context.Context) ([]hypervisor.GuestDevice, error) {
	var out []hypervisor.GuestDevice
	err := v.hotCommand(ctx, "list devices", func(c *qmp.Client) error {
		var buses []struct {
			Devices []pciDevice `json:"devices"`
		}
		if err := c.Execute(ctx, "query-pci", nil, &buses); err != nil {
			return err
		}
		var walk func(ds []pciDevice) error
		walk = func(ds []pciDevice) error {
			for _, d := range ds {
				if d.Bridge != nil {
					if err := walk(d.Bridge.Devices); err != nil {
						return err
					}
				}
				if d.QdevID == "" {
					continue
				}
				g := hypervisor.GuestDevice{Address: fmt.Sprintf("0000:%02x:%02x.%x", d.Bus, d.Slot, d.Function)}
				path := "/machine/peripheral/" + d.QdevID
				switch d.ClassInfo.Class {
				case pciClassEthernet:
					g.Kind = hypervisor.DeviceNIC
					if err := c.Execute(ctx, "qom-get", map[string]any{"path": path, "property": "mac"}, &g.MAC); err != nil {
						return fmt.Errorf("mac of %s: %w", d.QdevID, err)
					}
				case pciClassStorage:
					g.Kind = hypervisor.DeviceDisk
					var serial *string
					if err := c.Execute(ctx, "qom-get", map[string]any{"path": path, "property": "serial"}, &serial); err != nil {
						return fmt.Errorf("serial of %s: %w", d.QdevID, err)
					}
					if serial != nil {
						g.Serial = *serial
					}
				default:
					continue
				}
				out = append(out, g)
			}
			return nil
		}
		for _, b := range buses {
			if err := walk(b.Devices); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// blockStats is one entry of QMP's query-blockstats.
type blockStats struct {
	Device string `json:"device"`
	Qdev   string `json:"qdev"`
	Stats  struct {
		RdBytes      int64 `json:"rd_bytes"`
		WrBytes      int64 `json:"wr_bytes"`
		RdOperations int64 `json:"rd_operations"`
		WrOperations int64 `json:"wr_operations"`
		FailedRd     int64 `json:"failed_rd_operations"`
		FailedWr     int64 `json:"failed_wr_operations"`
		FailedFlush  int64 `json:"failed_flush_operations"`
	} `json:"stats"`
}

// Diagnostics implements hypervisor.Diagnoser, from the running QEMU:
// its run state (query-status), the vCPU threads (query-cpus-fast) and
// their CPU time (/proc/<pid>/task/<tid>/stat), each guest disk's I/O
// (query-blockstats), the NICs' taps' counters (sysfs), the process's
// start (its uptime) and resident memory.
func (v *vm) Diagnostics(ctx context.Context) (hypervisor.Diagnostics, error) {
	var d hypervisor.Diagnostics
	spec, err := readSpec(v.p.spec)
	if err != nil {
		return d, fmt.Errorf("diagnostics %s: %w", v.id, err)
	}
	d.Hypervisor, d.MemoryMB, d.ConfigDrive = v.d.accel, spec.MemoryMB, spec.ConfigDrive != ""
	pid, err := v.running("diagnostics")
	if err != nil {
		return d, err
	}
	nics, err := v.NICs(ctx)
	if err != nil {
		return d, err
	}
	err = v.hotCommand(ctx, "diagnostics", func(c *qmp.Client) error {
		var st status
		if err := c.Execute(ctx, "query-status", nil, &st); err != nil {
			return err
		}
		d.State = powerState(st.Status)
		var cpus []struct {
			Index    int `json:"cpu-index"`
			ThreadID int `json:"thread-id"`
		}
		if err := c.Execute(ctx, "query-cpus-fast", nil, &cpus); err != nil {
			return err
		}
		for _, cpu := range cpus {
			t, _ := threadCPUTime(pid, cpu.ThreadID) // a thread gone is no time
			d.CPUs = append(d.CPUs, hypervisor.CPUStat{ID: cpu.Index, Time: t})
		}
		var blocks []blockStats
		if err := c.Execute(ctx, "query-blockstats", nil, &blocks); err != nil {
			return err
		}
		for _, b := range blocks {
			name := guestDeviceName(b.Qdev)
			if name == "" {
				continue // a block node no guest device uses
			}
			d.Disks = append(d.Disks, hypervisor.DiskStat{Name: name, ReadBytes: b.Stats.RdBytes, ReadRequests: b.Stats.RdOperations,
				WriteBytes: b.Stats.WrBytes, WriteRequests: b.Stats.WrOperations, Errors: b.Stats.FailedRd + b.Stats.FailedWr + b.Stats.FailedFlush})
		}
		return nil
	})
	if err != nil {
		return d, err
	}
	for _, n := range nics {
		d.NICs = append(d.NICs, tapStats(n.NIC))
	}
	if up, err := processAge(pid); err == nil {
		d.Uptime = up
	}
	if rss, err := residentMB(pid); err == nil {
		d.UsedMB = min(rss, d.MemoryMB)
	}
	return d, nil
}

// guestDeviceName is the device id in a blockstats qdev path
// ("/machine/peripheral/disk0/virtio-backend" → "disk0"), or the path
// itself for one not under /machine/peripheral; "" for none.
func guestDeviceName(qdev string) string {
	rest, ok := strings.CutPrefix(qdev, "/machine/peripheral/")
	if !ok {
		return qdev
	}
	name, _, _ := strings.Cut(rest, "/")
	return name
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture QEMU runs guests on here.
const clockTicks = 100

// threadCPUTime is a thread's user and system time.
func threadCPUTime(pid, tid int) (time.Duration, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "task", strconv.Itoa(tid), "stat"))
	if err != nil {
		return 0, err
	}
	f, err := statFields(string(raw))
	if err != nil {
		return 0, err
	}
	// Fields after the command: state is [0]; utime [11], stime [12].
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("cpu times of thread %d: %q %q", tid, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// statFields splits a /proc stat line after its "(comm)", which may
// hold spaces.
func statFields(line string) ([]string, error) {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return nil, fmt.Errorf("stat line %q", line)
	}
	f := strings.Fields(line[i+1:])
	if len(f) < 20 {
		return nil, fmt.Errorf("stat line %q: %d fields", line, len(f))
	}
	return f, nil
}

// processAge is how long ago pid started: its start time (in clock
// ticks since boot) against the system's uptime.
func processAge(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	f, err := statFields(string(raw))
	if err != nil {
		return 0, err
	}
	start, err := strconv.ParseInt(f[19], 10, 64) // starttime
	if err != nil {
		return 0, err
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	secs, err := strconv.ParseFloat(strings.Fields(string(up))[0], 64)
	if err != nil {
		return 0, err
	}
	age := time.Duration(secs*float64(time.Second)) - time.Duration(start)*time.Second/clockTicks
	return max(age, 0), nil
}

// residentMB is the process's resident memory (VmRSS).
func residentMB(pid int) (int, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				return 0, err
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// tapStats are a NIC's counters as the guest sees them: the tap's,
// turned round. A tap whose counters cannot be read counts nothing.
func tapStats(n hypervisor.NIC) hypervisor.NICStat {
	s := hypervisor.NICStat{MAC: n.MAC, Tap: n.Tap}
	read := func(name string) int64 {
		raw, err := os.ReadFile(filepath.Join("/sys/class/net", n.Tap, "statistics", name))
		if err != nil {
			return 0
		}
		v, _ := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		return v
	}
	s.RxOctets, s.RxPackets, s.RxErrors, s.RxDrop = read("tx_bytes"), read("tx_packets"), read("tx_errors"), read("tx_dropped")
	s.TxOctets, s.TxPackets, s.TxErrors, s.TxDrop = read("rx_bytes"), read("rx_packets"), read("rx_errors"), read("rx_dropped")
	return s
}
