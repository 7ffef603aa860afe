package inventory

import (
	"bufio"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// flagsOfInterest are the CPU flags the scheduler and hypervisor care about.
var flagsOfInterest = map[string]bool{"vmx": true, "svm": true, "avx2": true, "avx512f": true, "aes": true}

// Read inventories this machine.
func Read() (Inventory, error) { return ReadFrom("/") }

// ReadFrom inventories the machine whose /proc and /sys are under root
// (tests pass a fixture tree). Missing optional files are not errors.
func ReadFrom(root string) (Inventory, error) {
	var inv Inventory
	inv.Hostname = readTrim(filepath.Join(root, "proc/sys/kernel/hostname"))
	inv.Kernel = readTrim(filepath.Join(root, "proc/sys/kernel/osrelease"))
	if err := readCPU(filepath.Join(root, "proc/cpuinfo"), &inv); err != nil {
		return inv, err
	}
	if err := readMem(filepath.Join(root, "proc/meminfo"), &inv); err != nil {
		return inv, err
	}
	inv.Disks = readDisks(filepath.Join(root, "sys/block"))
	inv.NICs = readNICs(filepath.Join(root, "sys/class/net"), root == "/")
	inv.BootTime = readBootTime(filepath.Join(root, "proc/stat"))
	inv.LoadAverage = readLoadAverage(filepath.Join(root, "proc/loadavg"))
	inv.Users = countUsers(filepath.Join(root, "run/utmp"))
	return inv, nil
}

// readBootTime reads the btime line of /proc/stat; 0 if there is none.
func readBootTime(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// readLoadAverage reads the three load averages of /proc/loadavg.
func readLoadAverage(path string) []float64 {
	f := strings.Fields(readTrim(path))
	if len(f) < 3 {
		return nil
	}
	out := make([]float64, 3)
	for i := range out {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil
		}
		out[i] = v
	}
	return out
}

// utmpRecord is the size of glibc's struct utmp on Linux (x86-64 and
// arm64); its first field, ut_type, is 7 for a logged-in user.
const utmpRecord, utmpUserProcess = 384, 7

// countUsers counts the user processes in utmp, as uptime(1) does.
func countUsers(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for off := 0; off+utmpRecord <= len(b); off += utmpRecord {
		if int16(binary.LittleEndian.Uint16(b[off:])) == utmpUserProcess {
			n++
		}
	}
	return n
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readCPU(path string, inv *Inventory) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			inv.CPUs++
		case "model name":
			if inv.CPUModel == "" {
				inv.CPUModel = v
			}
		case "flags":
			for _, fl := range strings.Fields(v) {
				if flagsOfInterest[fl] {
					flags[fl] = true
				}
			}
		}
	}
	for fl := range flags {
		inv.CPUFlags = append(inv.CPUFlags, fl)
	}
	sort.Strings(inv.CPUFlags)
	return sc.Err()
}

func readMem(path string, inv *Inventory) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err == nil {
				inv.MemoryBytes = kb * 1024
			}
		}
	}
	return sc.Err()
}

func readDisks(dir string) []Disk {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []Disk
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		d := Disk{Name: name}
		if sectors, err := strconv.ParseUint(readTrim(filepath.Join(dir, name, "size")), 10, 64); err == nil {
			d.SizeBytes = sectors * 512
		}
		d.Rotational = readTrim(filepath.Join(dir, name, "queue/rotational")) == "1"
		d.Model = readTrim(filepath.Join(dir, name, "device/model"))
		out = append(out, d)
	}
	return out
}

func readNICs(dir string, live bool) []NIC {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []NIC
	for _, e := range ents {
		name := e.Name()
		n := NIC{Name: name, MAC: readTrim(filepath.Join(dir, name, "address"))}
		n.MTU, _ = strconv.Atoi(readTrim(filepath.Join(dir, name, "mtu")))
		n.Up = readTrim(filepath.Join(dir, name, "operstate")) == "up"
		if sp, err := strconv.Atoi(readTrim(filepath.Join(dir, name, "speed"))); err == nil && sp > 0 {
			n.SpeedMbps = sp
		}
		if live {
			if ifi, err := net.InterfaceByName(name); err == nil {
				if addrs, err := ifi.Addrs(); err == nil {
					for _, a := range addrs {
						n.Addrs = append(n.Addrs, a.String())
					}
				}
			}
		}
		out = append(out, n)
	}
	return out
}
