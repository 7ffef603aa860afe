package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/provision/bmc/bmcsim"
)

// provMachine is a simulated server of the provision suite: a QEMU guest
// under TCG with an empty raw disk and a virtio NIC on a tap of the
// segment, PXE first, behind a Redfish BMC served in this process
// (bmcsim) that starts and stops that QEMU.
type provMachine struct {
	name     string
	mac      string
	cpus     int
	dir      string
	console  string
	m        *bmcsim.Machine
	bmc      *bmcsim.RedfishServer
	password string
	closed   bool
	watch    *consoleWatch // the console, stamped (provision_timeline.go)
}

const (
	provMachineCPUs  = 1
	provMachineMemMB = 512
	provMachineDisk  = 1 << 30
)

// provMAC is machine seq's MAC: locally administered, the suite's PID in
// the middle octets so that two runs never share one.
func provMAC(pid, seq int) string {
	return fmt.Sprintf("52:54:%02x:%02x:%02x:%02x", (pid>>16)&0xff, (pid>>8)&0xff, pid&0xff, seq&0xff)
}

// newProvMachine makes machine seq: its disk, tap, QEMU command line and
// BMC. The machine is off.
func newProvMachine(seg *provSegment, dir string, seq int) (*provMachine, error) {
	pid := os.Getpid()
	mc := &provMachine{
		name:     fmt.Sprintf("rb%d-m%d", pid, seq),
		mac:      provMAC(pid, seq),
		cpus:     provMachineCPUs,
		dir:      filepath.Join(dir, fmt.Sprintf("machine%d", seq)),
		password: fmt.Sprintf("bmc-%d-%d", pid, seq),
	}
	if err := os.MkdirAll(mc.dir, 0o755); err != nil {
		return nil, err
	}
	mc.console = filepath.Join(mc.dir, "console.log")
	disk := filepath.Join(mc.dir, "disk.raw")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		return nil, err
	}
	if err := os.Truncate(disk, provMachineDisk); err != nil {
		return nil, err
	}
	tap, err := seg.tap(context.Background(), seq)
	if err != nil {
		return nil, err
	}
	argv := []string{"qemu-system-x86_64", "-accel", "tcg", "-cpu", "max",
		"-smp", strconv.Itoa(mc.cpus), "-m", strconv.Itoa(provMachineMemMB),
		"-display", "none", "-monitor", "none", "-serial", "file:" + mc.console,
		"-smbios", "type=1,manufacturer=Rackbench,product=" + mc.name + ",serial=SN-" + mc.name,
		"-drive", "file=" + disk + ",format=raw,if=none,id=d0",
		"-device", "virtio-blk-pci,drive=d0,serial=DISK-" + mc.name,
		"-netdev", "tap,id=n0,ifname=" + tap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=" + mc.mac,
		"-boot", "n"}
	mc.m, err = bmcsim.Create(filepath.Join(mc.dir, "machine"), argv)
	if err != nil {
		return nil, err
	}
	mc.bmc, err = bmcsim.StartRedfish("127.0.0.1:0", &bmcsim.Redfish{Machine: mc.m, SystemID: mc.name, User: "admin", Password: mc.password})
	if err != nil {
		return mc, err
	}
	mc.watch = watchConsole(mc)
	return mc, nil
}

// driverInfo is what an operator gives Ironic for the machine's BMC.
func (mc *provMachine) driverInfo() map[string]string {
	return map[string]string{
		"redfish_address":   mc.bmc.URL,
		"redfish_system_id": "/redfish/v1/Systems/" + mc.name,
		"redfish_username":  "admin",
		"redfish_password":  mc.password,
		"redfish_verify_ca": "false",
	}
}

// bmcHTTP talks to the loopback BMCs, whose certificates are self-signed.
var bmcHTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
	TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the BMC this process serves on loopback
}}

// bmcPower sends a Redfish ComputerSystem.Reset of resetType (On,
// ForceOff) to the machine's BMC, as an operator's tool does.
func (mc *provMachine) bmcPower(ctx context.Context, resetType string) error {
	raw, _ := json.Marshal(map[string]string{"ResetType": resetType})
	req, err := http.NewRequestWithContext(ctx, "POST", mc.bmc.URL+"/redfish/v1/Systems/"+mc.name+"/Actions/ComputerSystem.Reset", bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", mc.password)
	if _, err := send(bmcHTTP, req, nil, 200, 202, 204); err != nil {
		return fmt.Errorf("power %s %s: %w", resetType, mc.name, err)
	}
	return nil
}

// waitOff waits until the machine's QEMU stopped (the discovery agent
// powers it off when it is done).
func (mc *provMachine) waitOff(ctx context.Context, d time.Duration) error {
	err := poll(ctx, 500*time.Millisecond, d, mc.name+" powered off", func() (bool, error) {
		on, err := mc.m.PowerState()
		return !on, err
	})
	if err != nil {
		return fmt.Errorf("%w\nconsole:\n%s", err, mc.consoleTail(15))
	}
	return nil
}

func (mc *provMachine) consoleTail(n int) string {
	raw, _ := os.ReadFile(mc.console)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}

// close stops the machine's QEMU (by the PID its directory records) and
// its BMC; a second call does nothing.
func (mc *provMachine) close(log io.Writer) {
	if mc == nil || mc.closed {
		return
	}
	mc.closed = true
	mc.watch.close()
	if mc.m != nil {
		if err := mc.m.PowerOff(false); err != nil {
			fmt.Fprintf(log, "provision: power off %s: %v\n", mc.name, err)
		}
	}
	if mc.bmc != nil {
		if err := mc.bmc.Stop(); err != nil {
			fmt.Fprintf(log, "provision: stop the BMC of %s: %v\n", mc.name, err)
		}
	}
}
