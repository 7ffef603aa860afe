package compute

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor"
)

// fakeDiagnostics answers for running guests by server id.
type fakeDiagnostics map[string]hypervisor.Diagnostics

func (f fakeDiagnostics) Diagnostics(_ context.Context, host, id string) (hypervisor.Diagnostics, error) {
	d, ok := f[host+"/"+id]
	if !ok {
		return d, fmt.Errorf("no guest %s on %s: %w", id, host, hypervisor.ErrNotRunning)
	}
	return d, nil
}

// Server diagnostics: admin only (another project's server is 404 first),
// from the server's node, in Nova's standard format from 2.48 and its
// libvirt driver's before; 409 for a server with no guest running.
func TestServerDiagnostics(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "web")
	diag := "/v2.1/servers/" + id + "/diagnostics"
	f.expect("GET", diag, admin, "2.48", nil, 409, "conflictingRequest", "vm_state building")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.expect("GET", diag, admin, "2.48", nil, 501, "notImplemented", "diagnostics")
	fake := fakeDiagnostics{}
	f.svc.cfg.Diagnostics = fake
	f.expect("GET", diag, alice, "", nil, 403, "forbidden", diagnosticsRule)
	f.expect("GET", diag, bob, "", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/servers/"+id+"x/diagnostics", admin, "", nil, 404, "itemNotFound")
	f.expect("GET", diag, admin, "2.48", nil, 409, "conflictingRequest", "not ready")

	fake[f.row(id).Host+"/"+id] = hypervisor.Diagnostics{State: hypervisor.Running, Uptime: 46 * time.Second, Hypervisor: "tcg", MemoryMB: 512, UsedMB: 100,
		ConfigDrive: true,
		CPUs:        []hypervisor.CPUStat{{ID: 0, Time: 17 * time.Second}},
		Disks:       []hypervisor.DiskStat{{Name: "disk0", ReadBytes: 262144, ReadRequests: 112, WriteBytes: 4096, WriteRequests: 1, Errors: 0}},
		NICs:        []hypervisor.NICStat{{MAC: "fa:16:3e:00:00:01", Tap: "tap0", RxOctets: 10, RxPackets: 1, TxOctets: 20, TxPackets: 2}},
	}
	got := f.expect("GET", diag, admin, "2.48", nil, 200, "")
	if got["state"] != "running" || got["driver"] != "libvirt" || got["hypervisor"] != "qemu" || got["hypervisor_os"] != "linux" ||
		got["uptime"] != 46.0 || got["config_drive"] != true || got["num_cpus"] != 1.0 || got["num_disks"] != 1.0 || got["num_nics"] != 1.0 {
		t.Fatalf("diagnostics %v", got)
	}
	if c := got["cpu_details"].([]any)[0].(map[string]any); c["id"] != 0.0 || c["time"] != 17e9 {
		t.Fatalf("cpu_details %v", got["cpu_details"])
	}
	if d := got["disk_details"].([]any)[0].(map[string]any); d["read_bytes"] != 262144.0 || d["read_requests"] != 112.0 || d["errors_count"] != 0.0 {
		t.Fatalf("disk_details %v", got["disk_details"])
	}
	if n := got["nic_details"].([]any)[0].(map[string]any); n["mac_address"] != "fa:16:3e:00:00:01" || n["rx_octets"] != 10.0 || n["tx_packets"] != 2.0 {
		t.Fatalf("nic_details %v", got["nic_details"])
	}
	if m := got["memory_details"].(map[string]any); m["maximum"] != 512.0 || m["used"] != 100.0 {
		t.Fatalf("memory_details %v", got["memory_details"])
	}
	old := f.expect("GET", diag, admin, "2.47", nil, 200, "")
	if old["cpu0_time"] != 17e9 || old["memory"] != 512.0*1024 || old["disk0_read"] != 262144.0 || old["tap0_rx"] != 10.0 || old["state"] != nil {
		t.Fatalf("diagnostics before 2.48: %v", old)
	}
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4})
	f.expect("GET", diag, admin, "2.48", nil, 409, "conflictingRequest", "vm_state stopped")
	f.expect("GET", "/v2.1/extensions/os-server-diagnostics", alice, "", nil, 200, "")
}
