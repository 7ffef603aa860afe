package compute

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

func TestStateMachine(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	status := func(want, task string) {
		t.Helper()
		sv := f.row(id)
		if sv.Status != want || sv.TaskState != task {
			t.Fatalf("status %s/%s, want %s/%s", sv.Status, sv.TaskState, want, task)
		}
	}
	// Building: nothing but delete and hard reboot... not even that.
	f.action(alice, id, map[string]any{"os-stop": nil}, 409, "Cannot 'stop' instance "+id+" while it is in vm_state building")
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "SOFT"}}, 409, "vm_state building")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	status("ACTIVE", "")
	f.action(alice, id, map[string]any{"os-start": nil}, 409, "vm_state active")
	f.action(alice, id, map[string]any{"unpause": nil}, 409, "vm_state active")
	f.action(alice, id, map[string]any{"resume": nil}, 409, "vm_state active")
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	status("ACTIVE", "powering-off")
	if f.row(id).Want != "stopped" {
		t.Fatal("stop did not ask for stopped")
	}
	f.action(alice, id, map[string]any{"os-stop": nil}, 409, "task_state powering-off")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning}) // not there yet
	status("ACTIVE", "powering-off")
	f.report(id, Observed{Status: "SHUTOFF", PowerState: PowerShutdown})
	status("SHUTOFF", "")
	if v := f.show(alice, id, ""); v["OS-EXT-STS:vm_state"] != "stopped" || v["OS-EXT-STS:power_state"] != 4.0 {
		t.Fatalf("stopped: %v", v)
	}
	f.action(alice, id, map[string]any{"os-stop": nil}, 409, "Cannot 'stop' instance "+id+" while it is in vm_state stopped")
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "SOFT"}}, 409, "vm_state stopped")
	f.action(alice, id, map[string]any{"os-start": nil}, 202)
	status("SHUTOFF", "powering-on")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	status("ACTIVE", "")
	// Reboots: the node completes a reboot by reporting its sequence.
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "SOFT"}}, 202)
	status("REBOOT", "rebooting")
	if sv := f.row(id); sv.RebootSeq != 1 || sv.RebootHard {
		t.Fatalf("reboot request: %+v", sv)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebootSeq: 0})
	status("REBOOT", "rebooting")
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "SOFT"}}, 409, "task_state rebooting")
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "HARD"}}, 202)
	status("HARD_REBOOT", "rebooting_hard")
	if sv := f.row(id); sv.RebootSeq != 2 || !sv.RebootHard {
		t.Fatalf("hard reboot request: %+v", sv)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebootSeq: 2})
	status("ACTIVE", "")
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "gentle"}}, 400, "type")
	f.action(alice, id, map[string]any{"reboot": nil}, 400, "reboot")
	// Pause and suspend.
	f.action(alice, id, map[string]any{"pause": nil}, 202)
	status("ACTIVE", "pausing")
	f.report(id, Observed{Status: "PAUSED", PowerState: PowerPaused})
	status("PAUSED", "")
	f.action(alice, id, map[string]any{"suspend": nil}, 409, "vm_state paused")
	f.action(alice, id, map[string]any{"unpause": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	status("ACTIVE", "")
	f.action(alice, id, map[string]any{"suspend": nil}, 202)
	f.report(id, Observed{Status: "SUSPENDED", PowerState: PowerSuspended})
	status("SUSPENDED", "")
	f.action(alice, id, map[string]any{"resume": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	status("ACTIVE", "")
	// A hard reboot is allowed from error.
	f.report(id, Observed{Status: "ERROR", Fault: "qemu died: out of memory", PowerState: PowerCrashed})
	status("ERROR", "")
	v := f.show(alice, id, "")
	if v["fault"].(map[string]any)["message"] != "qemu died: out of memory" {
		t.Fatalf("fault: %v", v["fault"])
	}
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "SOFT"}}, 409, "vm_state error")
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "HARD"}}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebootSeq: 3})
	status("ACTIVE", "")
	if f.row(id).Fault != nil {
		t.Fatal("fault kept after recovery")
	}
	// Unknown actions and malformed bodies.
	f.action(alice, id, map[string]any{"explode": nil}, 400, "There is no such action: explode")
	f.action(alice, id, map[string]any{"os-stop": nil, "os-start": nil}, 400, "Malformed")
	// An argument of a value-less action is not read: Nova's schema for
	// pause takes any value.
	f.action(alice, id, map[string]any{"pause": "now"}, 202)
	f.report(id, Observed{Status: "PAUSED", PowerState: 3})
	f.action(alice, id, map[string]any{"unpause": map[string]any{}}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	// Delete: deleting until the node reports it gone; then ports go.
	portID := f.row(id).Ports[0]
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	status("ACTIVE", "deleting")
	if f.row(id).Want != "deleted" {
		t.Fatal("delete did not ask for deleted")
	}
	f.action(alice, id, map[string]any{"os-stop": nil}, 409, "task_state deleting")
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "") // again: fine
	f.report(id, Observed{Status: "SHUTOFF", PowerState: PowerShutdown})
	status("ACTIVE", "deleting")
	if _, ok := f.ports.get(portID); !ok {
		t.Fatal("port deleted before the server is gone")
	}
	// The port goes while the row is still there, so a client that saw
	// the server gone finds its network free.
	rowAtPortDelete := false
	f.ports.onDelete = func(string) { rowAtPortDelete = f.row(id) != nil }
	f.report(id, Observed{Gone: true})
	f.ports.onDelete = nil
	if f.row(id) != nil {
		t.Fatal("gone server still there")
	}
	if _, ok := f.ports.get(portID); ok {
		t.Fatal("port of a gone server left")
	}
	if !rowAtPortDelete {
		t.Error("the port was deleted after the server's row: a client that saw the server gone could find its network still in use")
	}
	f.expect("GET", "/v2.1/servers/"+id, alice, "", nil, 404, "itemNotFound")
}

func TestReportSemantics(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	ctx := context.Background()
	for name, o := range map[string]Observed{
		"no status":      {},
		"unknown status": {Status: "RUNNING"},
	} {
		if err := f.svc.Report(ctx, id, o); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := f.svc.Report(ctx, id, Observed{Gone: true}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("gone without delete: %v", err)
	}
	if err := f.svc.Report(ctx, "nope", Observed{Status: "ACTIVE"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown server: %v", err)
	}
	// A build that fails.
	f.report(id, Observed{Status: "ERROR", Fault: "image download failed: checksum mismatch"})
	if sv := f.row(id); sv.Status != "ERROR" || sv.Fault == nil || !strings.Contains(sv.Fault.Message, "checksum") {
		t.Fatalf("failed build: %+v", sv)
	}
	// A guest that powers itself off is recorded stopped, not restarted.
	id2 := f.server(alice, "vm2")
	f.report(id2, Observed{Status: "ACTIVE", PowerState: 1})
	f.report(id2, Observed{Status: "SHUTOFF", PowerState: PowerShutdown})
	if sv := f.row(id2); sv.Status != "SHUTOFF" || sv.Want != "stopped" {
		t.Fatalf("guest shutdown: %+v", sv)
	}
	// While building, a transient SHUTOFF changes nothing but the power state.
	id3 := f.server(alice, "vm3")
	f.report(id3, Observed{Status: "SHUTOFF", PowerState: PowerShutdown})
	if sv := f.row(id3); sv.Status != "BUILD" || sv.PowerState != PowerShutdown {
		t.Fatalf("building: %+v", sv)
	}
	// A server whose node is down can be deleted: it leaves the API (and
	// the quota) at once, and its node tears it down when back.
	f.report(id3, Observed{Status: "ACTIVE", PowerState: 1})
	host := f.row(id3).Host
	f.hosts.setUp(host, false)
	if v := f.show(admin, id3, "2.16"); v["host_status"] != "DOWN" {
		t.Fatalf("host_status: %v", v["host_status"])
	}
	f.expect("DELETE", "/v2.1/servers/"+id3, alice, "", nil, 204, "")
	f.expect("GET", "/v2.1/servers/"+id3, alice, "", nil, 404, "itemNotFound")
	sv := f.row(id3)
	if sv == nil || !sv.Hidden || sv.Want != "deleted" || sv.Host != host {
		t.Fatalf("deleted on a down node: %+v", sv)
	}
	if n := len(f.expect("GET", "/v2.1/servers", alice, "", nil, 200, "")["servers"].([]any)); n != 2 {
		t.Fatalf("list shows %d", n)
	}
	servers, err := Load(f.local.State.Txn())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range servers {
		found = found || s.ID == id3
	}
	if !found {
		t.Fatal("Load leaves out the server the down node must tear down")
	}
	if u := projectUsage(f.local.State.Txn(), projA); u.Instances != 2 {
		t.Fatalf("usage counts a deleted server: %+v", u)
	}
	f.hosts.setUp(host, true)
	f.report(id3, Observed{Gone: true})
	if f.row(id3) != nil {
		t.Fatal("still there after gone")
	}
	if got := TableNames(); len(got) != 1 || got[0] != tServers {
		t.Fatalf("TableNames: %v", got)
	}
}

func TestLimitsQuotasHypervisorsZones(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.server(alice, "vm")
	lim := f.expect("GET", "/v2.1/limits", alice, "", nil, 200, "")["limits"].(map[string]any)["absolute"].(map[string]any)
	if lim["maxTotalInstances"] != 10.0 || lim["totalInstancesUsed"] != 1.0 || lim["totalRAMUsed"] != 512.0 || lim["totalCoresUsed"] != 1.0 || lim["maxImageMeta"] == nil {
		t.Fatalf("limits: %v", lim)
	}
	lim = f.expect("GET", "/v2.1/limits", alice, "2.57", nil, 200, "")["limits"].(map[string]any)["absolute"].(map[string]any)
	for _, k := range []string{"maxImageMeta", "maxPersonality", "maxSecurityGroups", "maxTotalFloatingIps"} {
		if _, ok := lim[k]; ok {
			t.Fatalf("%s at 2.57", k)
		}
	}
	f.expect("GET", "/v2.1/limits?tenant_id="+projB, alice, "", nil, 403, "forbidden")
	if u := f.expect("GET", "/v2.1/limits?tenant_id="+projA, admin, "", nil, 200, "")["limits"].(map[string]any)["absolute"].(map[string]any); u["totalInstancesUsed"] != 1.0 {
		t.Fatalf("admin limits of A: %v", u)
	}
	qs := f.expect("GET", "/v2.1/os-quota-sets/"+projA, alice, "", nil, 200, "")["quota_set"].(map[string]any)
	if qs["id"] != projA || qs["instances"] != 10.0 || qs["floating_ips"] == nil {
		t.Fatalf("quota set: %v", qs)
	}
	qs = f.expect("GET", "/v2.1/os-quota-sets/"+projA, alice, "2.57", nil, 200, "")["quota_set"].(map[string]any)
	if _, ok := qs["injected_files"]; ok {
		t.Fatalf("2.57 quota set: %v", qs)
	}
	det := f.expect("GET", "/v2.1/os-quota-sets/"+projA+"/detail", alice, "", nil, 200, "")["quota_set"].(map[string]any)
	if det["instances"].(map[string]any)["in_use"] != 1.0 {
		t.Fatalf("detail: %v", det)
	}
	f.expect("GET", "/v2.1/os-quota-sets/"+projB, alice, "", nil, 403, "forbidden")
	f.expect("GET", "/v2.1/os-quota-sets/"+projB+"/defaults", alice, "", nil, 200, "")
	f.expect("PUT", "/v2.1/os-quota-sets/"+projB, admin, "", map[string]any{"quota_set": map[string]any{"instances": 3}}, 200, "")
	f.expect("DELETE", "/v2.1/os-quota-sets/"+projB, admin, "", nil, 202, "")
	if q := f.expect("GET", "/v2.1/os-quota-sets/"+projB, admin, "", nil, 200, "")["quota_set"].(map[string]any); q["instances"] != 10.0 {
		t.Fatalf("after delete: %v", q)
	}
	// The default quota class replaces the built-in defaults.
	cls := f.expect("PUT", "/v2.1/os-quota-class-sets/default", admin, "", map[string]any{"quota_class_set": map[string]any{"instances": 20}}, 200, "")["quota_class_set"].(map[string]any)
	if cls["instances"] != 20.0 || cls["floating_ips"] == nil {
		t.Fatalf("class: %v", cls)
	}
	f.expect("PUT", "/v2.1/os-quota-class-sets/default", alice, "", map[string]any{"quota_class_set": map[string]any{"instances": 20}}, 403, "forbidden")
	if c := f.expect("GET", "/v2.1/os-quota-class-sets/default", admin, "2.57", nil, 200, "")["quota_class_set"].(map[string]any); c["server_groups"] == nil || c["instances"] != 20.0 {
		t.Fatalf("2.57 class: %v", c)
	}
	if q := f.expect("GET", "/v2.1/os-quota-sets/"+projB+"/defaults", bob, "", nil, 200, "")["quota_set"].(map[string]any); q["instances"] != 20.0 {
		t.Fatalf("defaults after class update: %v", q)
	}
	if q := f.expect("GET", "/v2.1/os-quota-sets/"+projA, alice, "", nil, 200, "")["quota_set"].(map[string]any); q["instances"] != 20.0 {
		t.Fatalf("quota after class update: %v", q)
	}
	// Hypervisors: the nodes, with what runs on them.
	f.expect("GET", "/v2.1/os-hypervisors", alice, "", nil, 403, "forbidden")
	hs := f.expect("GET", "/v2.1/os-hypervisors/detail", admin, "", nil, 200, "")["hypervisors"].([]any)
	if len(hs) != 2 {
		t.Fatalf("hypervisors: %v", hs)
	}
	n1 := hs[0].(map[string]any)
	if n1["hypervisor_hostname"] != "n1" || n1["state"] != "up" || n1["memory_mb_used"] != 512.0 || n1["running_vms"] != 1.0 ||
		n1["vcpus"] != 2.0 || n1["hypervisor_type"] != "QEMU" || n1["host_ip"] != "192.0.2.1" {
		t.Fatalf("n1: %v", n1)
	}
	if _, ok := n1["cpu_info"].(string); !ok {
		t.Fatal("cpu_info is a string before 2.28")
	}
	id := n1["id"].(float64)
	f.expect("GET", "/v2.1/os-hypervisors/"+strconv.FormatInt(int64(id), 10), admin, "", nil, 200, "")
	hs = f.expect("GET", "/v2.1/os-hypervisors?with_servers=true&hypervisor_hostname_pattern=n1", admin, "2.53", nil, 200, "")["hypervisors"].([]any)
	if len(hs) != 1 || len(hs[0].(map[string]any)["servers"].([]any)) != 1 || len(hs[0].(map[string]any)["id"].(string)) != 36 {
		t.Fatalf("2.53 list: %v", hs)
	}
	uuid := hs[0].(map[string]any)["id"].(string)
	if h := f.expect("GET", "/v2.1/os-hypervisors/"+uuid, admin, "2.53", nil, 200, "")["hypervisor"].(map[string]any); h["cpu_info"].(map[string]any)["model"] != "Test CPU" {
		t.Fatalf("2.53 show: %v", h)
	}
	f.expect("GET", "/v2.1/os-hypervisors/n1/search", admin, "", nil, 200, "")
	f.expect("GET", "/v2.1/os-hypervisors/n/servers", admin, "", nil, 200, "")
	f.expect("GET", "/v2.1/os-hypervisors/zz/search", admin, "", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-hypervisors/n1/search", admin, "2.53", nil, 404, "itemNotFound")
	st := f.expect("GET", "/v2.1/os-hypervisors/statistics", admin, "", nil, 200, "")["hypervisor_statistics"].(map[string]any)
	if st["count"] != 2.0 || st["vcpus"] != 4.0 || st["running_vms"] != 1.0 {
		t.Fatalf("statistics: %v", st)
	}
	f.expect("GET", "/v2.1/os-hypervisors/"+strconv.FormatInt(int64(id), 10)+"/uptime", admin, "", nil, 501, "notImplemented")
	f.expect("GET", "/v2.1/os-hypervisors/1/uptime", admin, "", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-hypervisors/statistics", alice, "", nil, 403, "forbidden")
	// 2.88: no usage figures nor cpu_info, uptime in the detail (null:
	// no uptime from this driver); statistics and uptime are gone.
	for _, h := range []map[string]any{
		f.expect("GET", "/v2.1/os-hypervisors/detail", admin, "2.88", nil, 200, "")["hypervisors"].([]any)[0].(map[string]any),
		f.expect("GET", "/v2.1/os-hypervisors/"+uuid, admin, "2.88", nil, 200, "")["hypervisor"].(map[string]any),
	} {
		for _, gone := range []string{"current_workload", "cpu_info", "vcpus", "vcpus_used", "free_disk_gb", "local_gb", "local_gb_used",
			"disk_available_least", "free_ram_mb", "memory_mb", "memory_mb_used", "running_vms"} {
			if _, ok := h[gone]; ok {
				t.Errorf("2.88 hypervisor shows %s: %v", gone, h)
			}
		}
		if up, ok := h["uptime"]; !ok || up != nil || h["hypervisor_type"] != "QEMU" || h["host_ip"] == nil || h["service"] == nil {
			t.Errorf("2.88 hypervisor: %v", h)
		}
	}
	if h := f.expect("GET", "/v2.1/os-hypervisors/"+uuid, admin, "2.87", nil, 200, "")["hypervisor"].(map[string]any); h["vcpus"] != 2.0 || h["uptime"] != nil {
		t.Errorf("2.87 hypervisor: %v", h)
	}
	if _, ok := f.expect("GET", "/v2.1/os-hypervisors", admin, "2.88", nil, 200, "")["hypervisors"].([]any)[0].(map[string]any)["uptime"]; ok {
		t.Error("2.88 list (not detail) shows uptime")
	}
	f.expect("GET", "/v2.1/os-hypervisors/statistics", admin, "2.88", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-hypervisors/statistics", alice, "2.88", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-hypervisors/"+uuid+"/uptime", admin, "2.88", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-hypervisors/"+uuid+"/uptime", admin, "2.87", nil, 501, "notImplemented")
	// A node that says when it booted and its load has an uptime line,
	// as uptime(1) prints it (what Nova's libvirt driver reports).
	f.hosts.mu.Lock()
	f.hosts.hosts[0].Booted = f.now.Add(-(49*time.Hour + 5*time.Minute + 30*time.Second))
	f.hosts.hosts[0].LoadAverage, f.hosts.hosts[0].Users = []float64{0.33, 0.36, 0.34}, 1
	f.hosts.mu.Unlock()
	wantUp := " 12:00:00 up 2 days,  1:05,  1 user,  load average: 0.33, 0.36, 0.34"
	if up := f.expect("GET", "/v2.1/os-hypervisors/"+strconv.FormatInt(int64(id), 10)+"/uptime", admin, "", nil, 200, "")["hypervisor"].(map[string]any); up["uptime"] != wantUp || up["hypervisor_hostname"] != "n1" {
		t.Errorf("uptime: %v, want %q", up, wantUp)
	}
	if h := f.expect("GET", "/v2.1/os-hypervisors/"+uuid, admin, "2.88", nil, 200, "")["hypervisor"].(map[string]any); h["uptime"] != wantUp {
		t.Errorf("2.88 uptime: %v, want %q", h["uptime"], wantUp)
	}
	if got := uptimeLine(Host{Booted: f.now.Add(-7 * time.Minute), LoadAverage: []float64{1, 2, 3}}, f.now); got != " 12:00:00 up 7 min,  0 users,  load average: 1.00, 2.00, 3.00" {
		t.Errorf("uptime of a node up 7 minutes: %q", got)
	}
	f.expect("GET", "/v2.1/os-aggregates", admin, "", nil, 200, "")
	// Zones and services.
	z := f.expect("GET", "/v2.1/os-availability-zone", alice, "", nil, 200, "")["availabilityZoneInfo"].([]any)
	if len(z) != 1 || z[0].(map[string]any)["zoneName"] != "nova" || z[0].(map[string]any)["hosts"] != nil {
		t.Fatalf("zones: %v", z)
	}
	z = f.expect("GET", "/v2.1/os-availability-zone/detail", admin, "", nil, 200, "")["availabilityZoneInfo"].([]any)
	if len(z[0].(map[string]any)["hosts"].(map[string]any)) != 2 {
		t.Fatalf("zone detail: %v", z)
	}
	f.expect("GET", "/v2.1/os-availability-zone/detail", alice, "", nil, 403, "forbidden")
	f.hosts.setUp("n2", false)
	svcs := f.expect("GET", "/v2.1/os-services?binary=nova-compute", admin, "2.53", nil, 200, "")["services"].([]any)
	if len(svcs) != 2 || svcs[1].(map[string]any)["state"] != "down" || svcs[0].(map[string]any)["forced_down"] != false {
		t.Fatalf("services: %v", svcs)
	}
	// Every node is also a scheduler and a conductor, up or down with
	// its heartbeat, in the internal zone; each service has its own id.
	type svc struct{ binary, host, zone, state string }
	var got []svc
	ids := map[any]bool{}
	for _, raw := range f.expect("GET", "/v2.1/os-services", admin, "2.53", nil, 200, "")["services"].([]any) {
		m := raw.(map[string]any)
		got = append(got, svc{m["binary"].(string), m["host"].(string), m["zone"].(string), m["state"].(string)})
		ids[m["id"]] = true
	}
	want := []svc{
		{"nova-conductor", "n1", "internal", "up"}, {"nova-conductor", "n2", "internal", "down"},
		{"nova-scheduler", "n1", "internal", "up"}, {"nova-scheduler", "n2", "internal", "down"},
		{"nova-compute", "n1", "nova", "up"}, {"nova-compute", "n2", "nova", "down"},
	}
	if !slices.Equal(got, want) || len(ids) != len(want) {
		t.Fatalf("services %v (%d ids), want %v", got, len(ids), want)
	}
	if n := len(f.expect("GET", "/v2.1/os-services?binary=nova-scheduler&host=n2", admin, "", nil, 200, "")["services"].([]any)); n != 1 {
		t.Fatalf("the scheduler on n2: %d services", n)
	}
	z = f.expect("GET", "/v2.1/os-availability-zone/detail", admin, "", nil, 200, "")["availabilityZoneInfo"].([]any)
	if len(z) != 2 || z[1].(map[string]any)["zoneName"] != "internal" || len(z[1].(map[string]any)["hosts"].(map[string]any)) != 2 {
		t.Fatalf("zone detail without the internal zone: %v", z)
	}
	if z = f.expect("GET", "/v2.1/os-availability-zone", alice, "", nil, 200, "")["availabilityZoneInfo"].([]any); len(z) != 1 {
		t.Fatalf("zones a member sees: %v", z)
	}
}

func TestConsoles(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	out := f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getConsoleOutput": map[string]any{"length": 50}}, 200, "")
	if out["output"] != "console of "+id+" on n1, 50 lines\n" {
		t.Fatalf("console output: %v", out)
	}
	out = f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getConsoleOutput": map[string]any{"length": nil}}, 200, "")
	if !strings.Contains(out["output"].(string), "-1 lines") {
		t.Fatalf("all lines: %v", out)
	}
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getConsoleOutput": map[string]any{"length": "x"}}, 400, "badRequest", "length")
	f.expect("POST", "/v2.1/servers/"+id+"/action", bob, "", map[string]any{"os-getConsoleOutput": map[string]any{}}, 404, "itemNotFound")
	// Serial consoles: a URL with a token, served by SerialConsole.
	c := f.expect("POST", "/v2.1/servers/"+id+"/remote-consoles", alice, "2.6", map[string]any{"remote_console": map[string]any{"protocol": "serial", "type": "serial"}}, 200, "")["remote_console"].(map[string]any)
	url := c["url"].(string)
	if !strings.HasPrefix(url, "ws://") || !strings.Contains(url, "/compute/v2.1/servers/"+id+"/serial?token=") {
		t.Fatalf("url: %v", url)
	}
	res, err := http.Get("http" + strings.TrimPrefix(url, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(got) != "serial "+id+" on n1" {
		t.Fatalf("serial endpoint: %d %s", res.StatusCode, got)
	}
	f.expect("GET", "/v2.1/servers/"+id+"/serial?token=bogus", "", "", nil, 401, "")
	other := f.server(alice, "other")
	token := url[strings.Index(url, "token=")+6:]
	f.expect("GET", "/v2.1/servers/"+other+"/serial?token="+token, "", "", nil, 401, "")
	old := f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getSerialConsole": map[string]any{"type": "serial"}}, 200, "")
	if !strings.HasPrefix(old["console"].(map[string]any)["url"].(string), "ws://") {
		t.Fatalf("os-getSerialConsole: %v", old)
	}
	f.expect("POST", "/v2.1/servers/"+id+"/remote-consoles", alice, "2.6", map[string]any{"remote_console": map[string]any{"protocol": "spice", "type": "spice-html5"}}, 400, "badRequest", "Unavailable console type spice-html5")
	f.expect("POST", "/v2.1/servers/"+id+"/remote-consoles", alice, "", map[string]any{"remote_console": map[string]any{"protocol": "serial", "type": "serial"}}, 404, "itemNotFound")
	// Tokens expire, and expired ones are swept by the next.
	f.now = f.now.Add(11 * time.Minute)
	f.expect("GET", "/v2.1/servers/"+id+"/serial?token="+token, "", "", nil, 401, "")
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getSerialConsole": map[string]any{"type": "serial"}}, 200, "")
	if n := len(store.All[ConsoleToken](f.local.State.Txn(), tConsoles, "id")); n != 1 {
		t.Fatalf("%d console tokens after sweep", n)
	}
	// Without the optional parts, honest answers.
	f.svc.cfg.ConsoleLogs, f.svc.cfg.SerialConsole = nil, nil
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getConsoleOutput": map[string]any{}}, 501, "notImplemented")
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getSerialConsole": map[string]any{"type": "serial"}}, 400, "badRequest", "Unavailable console type serial")
}

func TestMetadataAndInstanceActions(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm", "metadata", map[string]any{"a": "1"})
	path := "/v2.1/servers/" + id + "/metadata"
	md := f.expect("POST", path, alice, "", map[string]any{"metadata": map[string]any{"b": "2"}}, 200, "")["metadata"].(map[string]any)
	if len(md) != 2 {
		t.Fatalf("merge: %v", md)
	}
	md = f.expect("PUT", path, alice, "", map[string]any{"metadata": map[string]any{"c": "3"}}, 200, "")["metadata"].(map[string]any)
	if len(md) != 1 || md["c"] != "3" {
		t.Fatalf("replace: %v", md)
	}
	f.expect("PUT", path+"/d", alice, "", map[string]any{"meta": map[string]any{"d": "4"}}, 200, "")
	f.expect("PUT", path+"/d", alice, "", map[string]any{"meta": map[string]any{"e": "4"}}, 400, "badRequest", "mismatch")
	if m := f.expect("GET", path+"/d", alice, "", nil, 200, "")["meta"].(map[string]any); m["d"] != "4" {
		t.Fatalf("item: %v", m)
	}
	f.expect("DELETE", path+"/d", alice, "", nil, 204, "")
	f.expect("DELETE", path+"/d", alice, "", nil, 404, "itemNotFound")
	f.expect("GET", path+"/d", alice, "", nil, 404, "itemNotFound")
	f.expect("PUT", path, carol, "", map[string]any{"metadata": map[string]any{}}, 403, "forbidden")
	if m := f.expect("GET", path, carol, "", nil, 200, "")["metadata"].(map[string]any); len(m) != 1 {
		t.Fatalf("list: %v", m)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.now = f.now.Add(time.Second)
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	acts := f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions", alice, "", nil, 200, "")["instanceActions"].([]any)
	if len(acts) != 2 || acts[0].(map[string]any)["action"] != "stop" || acts[1].(map[string]any)["action"] != "create" {
		t.Fatalf("actions: %v", acts)
	}
	req := acts[0].(map[string]any)["request_id"].(string)
	a := f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions/"+req, alice, "", nil, 200, "")["instanceAction"].(map[string]any)
	if a["instance_uuid"] != id || a["user_id"] != "u-alice" {
		t.Fatalf("action: %v", a)
	}
	f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions/req-nope", alice, "", nil, 404, "itemNotFound")
}

func TestNewValidatesConfig(t *testing.T) {
	local, _ := store.NewLocal(Schema())
	if _, err := New(Config{Auth: apitest.Tokens{}}); err == nil {
		t.Error("no repl: no error")
	}
	if _, err := New(Config{Repl: local}); err == nil {
		t.Error("no auth: no error")
	}
	s, err := New(Config{Repl: local, Auth: apitest.Tokens{}})
	if err != nil || s.cfg.AZ != "nova" || s.cfg.Prefix != "/compute" {
		t.Fatalf("defaults: %v %+v", err, s.cfg)
	}
}

// TestSnapshotRestoreEveryCommand applies every compute command type and
// checks the state survives a snapshot and restore byte for byte.
func TestSnapshotRestoreEveryCommand(t *testing.T) {
	// The volume service's tables, with one command that puts a volume
	// as it would (attached, for an attachment update).
	vols := store.Schema{Tables: volstate.Schema().Tables, Handlers: map[string]store.Handler{
		"test.volume.put": store.Typed(func(tx *memdb.Txn, v volstate.Volume) (any, error) { return nil, tx.Insert(volstate.VolumeTable, &v) }),
		"test.server.put": store.Typed(func(tx *memdb.Txn, sv Server) (any, error) { return nil, tx.Insert(tServers, &sv) }),
	}}
	f := newFixtureWith(t, vols)
	f.stdFlavors()
	f.flavor("p", "private", 1, 64, 1, "os-flavor-access:is_public", false)
	f.expect("PUT", "/v2.1/flavors/p", admin, "2.55", map[string]any{"flavor": map[string]any{"description": "d"}}, 200, "")
	f.expect("POST", "/v2.1/flavors/p/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{"k": "v"}}, 200, "")
	f.expect("POST", "/v2.1/flavors/p/action", admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": projA}}, 200, "")
	f.expect("POST", "/v2.1/os-keypairs", alice, "", map[string]any{"keypair": map[string]any{"name": "k", "public_key": testPublicKey}}, 200, "")
	f.expect("POST", "/v2.1/os-keypairs", alice, "", map[string]any{"keypair": map[string]any{"name": "gone", "public_key": testPublicKey}}, 200, "")
	f.expect("DELETE", "/v2.1/os-keypairs/gone", alice, "", nil, 202, "")
	g := f.expect("POST", "/v2.1/os-server-groups", alice, "", map[string]any{"server_group": map[string]any{"name": "g", "policies": []any{"affinity"}}}, 200, "")["server_group"].(map[string]any)["id"].(string)
	g2 := f.expect("POST", "/v2.1/os-server-groups", alice, "", map[string]any{"server_group": map[string]any{"name": "g2", "policies": []any{"affinity"}}}, 200, "")["server_group"].(map[string]any)["id"].(string)
	f.expect("DELETE", "/v2.1/os-server-groups/"+g2, alice, "", nil, 204, "")
	body := f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "vm", "imageRef": img1, "flavorRef": "small",
		"networks": []any{map[string]any{"uuid": netA}}, "key_name": "k", "metadata": map[string]any{"x": "y"}}, "os:scheduler_hints": map[string]any{"group": g}}, 202, "")
	id := body["server"].(map[string]any)["id"].(string)
	f.expect("PUT", "/v2.1/servers/"+id, alice, "", map[string]any{"server": map[string]any{"name": "vm2"}}, 200, "")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"rebuild": map[string]any{"imageRef": img1, "metadata": map[string]any{"k": "v"}}}, 202, "")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1})
	f.expect("POST", "/v2.1/servers/"+id+"/os-interface", alice, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": netA}}, 200, "")
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.expect("PUT", "/v2.1/servers/"+id+"/tags/t1", alice, "2.26", nil, 201, "")
	if err := f.svc.SetPassword(context.Background(), id, "posted"); err != nil {
		t.Fatal(err)
	}
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getSerialConsole": map[string]any{"type": "serial"}}, 200, "")
	f.expect("PUT", "/v2.1/os-quota-sets/"+projB, admin, "", map[string]any{"quota_set": map[string]any{"instances": 3}}, 200, "")
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"cores": 30}}, 200, "")
	f.expect("DELETE", "/v2.1/os-quota-sets/"+projB, admin, "", nil, 202, "")
	f.flavor("gone", "gone", 1, 64, 1)
	f.expect("DELETE", "/v2.1/flavors/gone", admin, "", nil, 202, "")
	f.agentReports(computestate.CmdVolumeExtended, computestate.VolumeExtendedCmd{ServerID: id, VolumeID: "v", Size: 1, RequestID: "req-x", Now: f.now})
	f.agentReports(computestate.CmdExtendDone, computestate.ExtendDoneCmd{ServerID: id, VolumeID: "v", Size: 1, Result: "Success", Now: f.now})
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, RebuildSeq: 1})
	f.svc.cfg.Snapshots = &fakeSnapshots{}
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "2.45", map[string]any{"createImage": map[string]any{"name": "s"}}, 202, "")
	f.agentReports(computestate.CmdImageStep, computestate.ImageStepCmd{ServerID: id, ImageID: "snap-1", Result: "Success", Now: f.now})
	f.action(alice, id, map[string]any{"shelve": nil}, 202)
	f.agentReports(computestate.CmdImageStep, computestate.ImageStepCmd{ServerID: id, ImageID: "snap-2", Result: "Success", Now: f.now})
	f.action(alice, id, map[string]any{"unshelve": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1})
	f.action(alice, id, map[string]any{"resize": map[string]any{"flavorRef": "big"}}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1, ResizeSeq: 1})
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"revertResize": nil}, 202, "")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1, ResizeSeq: 2})
	f.action(alice, id, map[string]any{"rescue": nil}, 200)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1, ResizeSeq: 2, RescueSeq: 1})
	f.action(alice, id, map[string]any{"unrescue": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1, ResizeSeq: 2, RescueSeq: 2})
	f.action(admin, id, map[string]any{"migrate": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, RebuildSeq: 1, ResizeSeq: 3, RescueSeq: 2})
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1, ResizeSeq: 4, RescueSeq: 2})
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "", map[string]any{"confirmResize": nil}, 204, "")
	down := f.row(id).Host
	f.hosts.setUp(down, false)
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "2.14", map[string]any{"evacuate": map[string]any{}}, 200, "")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 2, ResizeSeq: 4, RescueSeq: 2})
	f.hosts.setUp(down, true)
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "2.25", liveBody(nil, "auto"), 202, "")
	lm := f.row(id).Live
	f.liveStep(id, lm.Source, computestate.LiveSource, sourced)
	f.liveStep(id, lm.Dest, computestate.LivePrepared, prepared)
	f.expect("POST", "/v2.1/servers/"+id+"/migrations/"+strconv.FormatUint(lm.Seq, 10)+"/action", admin, "2.22", map[string]any{"force_complete": nil}, 202, "")
	f.liveStep(id, lm.Source, computestate.LiveSwitched)
	f.liveStep(id, lm.Dest, computestate.LiveDone)
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	vol := api.NewUUID()
	f.agentReports("test.volume.put", volstate.Volume{ID: vol, Project: projA, Size: 1, Status: volstate.StatusInUse, TypeID: volstate.DefaultTypeID,
		Attachments: []volstate.Attachment{{ID: "att-1", ServerID: id, Device: "/dev/vdb", Since: f.now}}})
	f.expect("PUT", "/v2.1/servers/"+id+"/os-volume_attachments/"+vol, alice, "2.85", map[string]any{"volumeAttachment": map[string]any{"volumeId": vol, "delete_on_termination": true}}, 202, "")
	// A volume-backed server's rebuild (2.93) reserves its boot volume.
	bootVol, rebuilt := api.NewUUID(), api.NewUUID()
	f.agentReports("test.volume.put", volstate.Volume{ID: bootVol, Project: projA, Size: 1, Status: volstate.StatusInUse, TypeID: volstate.DefaultTypeID,
		Attachments: []volstate.Attachment{{ID: "att-2", ServerID: rebuilt, Root: true, Since: f.now}}})
	f.agentReports("test.server.put", Server{ID: rebuilt, Name: "bfv-rebuilt", Project: projA, BootVolume: bootVol, ReimageImage: img1, ReimageSeq: 1, RebuildSeq: 1,
		VMState: vmActive, TaskState: "rebuilding", Status: "REBUILD", Host: "n1", SecurityGroups: []string{"default"}})
	if err := f.svc.ReserveBootVolume(context.Background(), rebuilt, 1); err != nil {
		t.Fatal(err)
	}
	// A server whose volume, made after the 202, could not be made.
	f.svc.cfg.Volumes = &fakeBootVolumes{f: f, made: map[string]string{}, fail: errors.New("no space")}
	bfvID := f.server(alice, "bfv", "block_device_mapping_v2", bfv("image", img1, 1, true))
	f.expect("DELETE", "/v2.1/servers/"+bfvID, alice, "", nil, 204, "")
	// A volume attached to a shelved-offloaded server (2.20).
	shelved, shelvedVol := api.NewUUID(), api.NewUUID()
	f.agentReports("test.volume.put", volstate.Volume{ID: shelvedVol, Project: projA, Size: 1, Status: volstate.StatusAvailable, TypeID: volstate.DefaultTypeID})
	f.agentReports("test.server.put", Server{ID: shelved, Name: "shelved", Project: projA, ImageID: img1, ShelvedImage: img1,
		VMState: computestate.VMShelvedOffloaded, Status: "SHELVED_OFFLOADED", SecurityGroups: []string{"default"}})
	f.expect("POST", "/v2.1/servers/"+shelved+"/os-volume_attachments", alice, "2.20", map[string]any{"volumeAttachment": map[string]any{"volumeId": shelvedVol}}, 200, "")
	agg := f.aggregate("agg", "z1")
	f.expect("PUT", "/v2.1/os-aggregates/"+agg, admin, "", map[string]any{"aggregate": map[string]any{"name": "agg-kept"}}, 200, "")
	f.aggAction(agg, map[string]any{"add_host": map[string]any{"host": "n2"}}, 200, "")
	f.aggAction(agg, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"ssd": "true"}}}, 200, "")
	f.expect("DELETE", "/v2.1/os-aggregates/"+f.aggregate("gone", ""), admin, "", nil, 200, "")
	f.expect("PUT", "/v2.1/os-services/"+serviceUUID("nova-compute", "n1"), admin, "2.53", map[string]any{"status": "disabled", "disabled_reason": "kept", "forced_down": true}, 200, "")
	first := store.EveryCommandSurvivesSnapshot(t, f.local, Schema(), vols)
	for _, want := range []string{`"t":"compute_service_states"`, `"disabled_reason":"kept"`, `"t":"compute_servers"`, `"t":"compute_flavor_access"`, `"t":"compute_keypairs"`, `"t":"compute_server_groups"`,
		`"t":"compute_quotas"`, `"t":"compute_instance_actions"`, `"t":"compute_console_tokens"`, `"t":"compute_migrations"`, `"t":"compute_aggregates"`, `"name":"agg-kept"`, `"hosts":["n2"]`, `"ssd":"true"`, `"name":"vm2"`, `"want":"stopped"`, `"k":"v"`, `"tags":["t1"]`, `"password":"posted"`, `"delete_on_termination":true`, `"status":"reserved"`, `"shelved_attachments":[`} {
		if !strings.Contains(string(first), want) {
			t.Errorf("snapshot lacks %s", want)
		}
	}
	servers, err := Load(f.local.State.Txn())
	servers = slices.DeleteFunc(servers, func(sv Server) bool { return sv.ID == rebuilt || sv.ID == shelved })
	if err != nil || len(servers) != 1 || servers[0].Flavor.ID != "small" || servers[0].PublicKey != testPublicKey || servers[0].Host == "" {
		t.Fatalf("Load: %v %+v", err, servers)
	}
}

var _ = api.NewUUID
