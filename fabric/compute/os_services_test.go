package compute

import (
	"testing"
)

// serviceOf is the nova-compute service of host as os-services lists it.
func (f *fixture) serviceOf(version, host string) map[string]any {
	f.t.Helper()
	for _, raw := range f.expect("GET", "/v2.1/os-services?binary=nova-compute&host="+host, admin, version, nil, 200, "")["services"].([]any) {
		return raw.(map[string]any)
	}
	f.t.Fatalf("no nova-compute on %s", host)
	return nil
}

// A forced-down compute service reads as down (os-services, the
// hypervisor, the server's host_status), takes no new server, and its
// servers may be evacuated; forced up again it is up. By uuid from
// 2.53, by host and binary on force-down from 2.11.
func TestForcedDownService(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	src := f.row(id).Host
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	svc := f.serviceOf("2.53", src)
	path := "/v2.1/os-services/" + svc["id"].(string)
	f.expect("PUT", path, alice, "2.53", map[string]any{"forced_down": true}, 403, "forbidden", servicesRule)
	f.expect("PUT", path, admin, "2.53", map[string]any{"forced_down": "maybe"}, 400, "badRequest", "forced_down")
	f.expect("PUT", path, admin, "2.53", map[string]any{}, 400, "badRequest", "At least one of status or forced_down")
	f.expect("PUT", path, admin, "2.53", map[string]any{"status": "enabled", "disabled_reason": "x"}, 400, "badRequest", "disabled_reason")
	f.expect("PUT", path, admin, "2.53", map[string]any{"bogus": 1}, 400, "badRequest", "bogus")
	f.expect("PUT", "/v2.1/os-services/"+hostUUID("service", "nope"), admin, "2.53", map[string]any{"forced_down": true}, 404, "itemNotFound")
	sched := serviceUUID("nova-scheduler", src)
	f.expect("PUT", "/v2.1/os-services/"+sched, admin, "2.53", map[string]any{"forced_down": true}, 400, "badRequest", "Only nova-compute")
	if got := f.serviceOf("2.53", src); got["forced_down"] != false || got["state"] != "up" {
		t.Fatalf("refused updates changed the service: %v", got)
	}
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "2.14", map[string]any{"evacuate": map[string]any{}}, 400, "badRequest", "still in use")

	got := f.expect("PUT", path, admin, "2.53", map[string]any{"forced_down": true}, 200, "")["service"].(map[string]any)
	if got["forced_down"] != true || got["state"] != "down" || got["status"] != "enabled" || got["id"] != svc["id"] {
		t.Fatalf("forced down: %v", got)
	}
	if got := f.serviceOf("2.53", src); got["forced_down"] != true || got["state"] != "down" {
		t.Fatalf("listed after force down: %v", got)
	}
	if hs := f.show(admin, id, "2.16")["host_status"]; hs != "DOWN" {
		t.Fatalf("host_status %v", hs)
	}
	// Its servers may be evacuated (the node's heartbeats still say up).
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "2.14", map[string]any{"evacuate": map[string]any{}}, 200, "")
	if sv := f.row(id); sv.Host == src || sv.TaskState != "rebuilding" {
		t.Fatalf("after evacuate: %+v", sv)
	}
	// No new server goes there: the other host is full now, src has
	// room but is down.
	if h := f.row(f.server(alice, "more")).Host; h != "" {
		t.Fatalf("a server was placed on %s (src %s forced down)", h, src)
	}
	// Before 2.53, by host and binary; force-down is 2.11's.
	f.expect("PUT", "/v2.1/os-services/force-down", admin, "2.10", map[string]any{"host": src, "binary": "nova-compute", "forced_down": false}, 404, "itemNotFound")
	f.expect("PUT", "/v2.1/os-services/force-down", admin, "2.11", map[string]any{"host": "nope", "binary": "nova-compute", "forced_down": false}, 404, "itemNotFound")
	f.expect("PUT", "/v2.1/os-services/force-down", admin, "2.11", map[string]any{"host": src, "binary": "nova-compute", "forced_down": 1}, 400, "badRequest", "forced_down")
	out := f.expect("PUT", "/v2.1/os-services/force-down", admin, "2.11", map[string]any{"host": src, "binary": "nova-compute", "forced_down": false}, 200, "")["service"].(map[string]any)
	if out["forced_down"] != false || out["host"] != src {
		t.Fatalf("force-down answer %v", out)
	}
	if got := f.serviceOf("2.11", src); got["forced_down"] != false || got["state"] != "up" {
		t.Fatalf("after forced up: %v", got)
	}
}

// A disabled compute service takes no new server, says why, and is
// enabled again; before 2.53 on enable, disable and disable-log-reason.
func TestDisabledService(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	svc := f.serviceOf("2.53", "n1")
	path := "/v2.1/os-services/" + svc["id"].(string)
	got := f.expect("PUT", path, admin, "2.53", map[string]any{"status": "disabled", "disabled_reason": "maintenance"}, 200, "")["service"].(map[string]any)
	if got["status"] != "disabled" || got["disabled_reason"] != "maintenance" || got["state"] != "up" {
		t.Fatalf("disabled: %v", got)
	}
	hv := f.expect("GET", "/v2.1/os-hypervisors/detail", admin, "2.53", nil, 200, "")["hypervisors"].([]any)
	for _, raw := range hv {
		h := raw.(map[string]any)
		if h["hypervisor_hostname"] == "n1" && (h["status"] != "disabled" || h["service"].(map[string]any)["disabled_reason"] != "maintenance") {
			t.Fatalf("disabled n1's hypervisor: %v", h)
		}
	}
	// n2 has room for one small server, n1 for two: the first goes to
	// n2, the next finds no host.
	if h := f.row(f.server(alice, "vm")).Host; h != "n2" {
		t.Fatalf("a server was placed on %q, want n2", h)
	}
	if h := f.row(f.server(alice, "vm")).Host; h != "" {
		t.Fatalf("a server was placed on disabled %s", h)
	}
	f.expect("PUT", "/v2.1/os-services/enable", admin, "2.1", map[string]any{"host": "n1", "binary": "nova-compute"}, 200, "")
	if got := f.serviceOf("", "n1"); got["status"] != "enabled" || got["disabled_reason"] != nil {
		t.Fatalf("enabled: %v", got)
	}
	f.expect("PUT", "/v2.1/os-services/disable-log-reason", admin, "2.1", map[string]any{"host": "n1", "binary": "nova-compute"}, 400, "badRequest", "disabled_reason")
	f.expect("PUT", "/v2.1/os-services/disable", admin, "2.1", map[string]any{"host": "n9", "binary": "nova-compute"}, 404, "itemNotFound")
	f.expect("PUT", "/v2.1/os-services/disable-log-reason", admin, "2.1", map[string]any{"host": "n1", "binary": "nova-compute", "disabled_reason": "why"}, 200, "")
	if got := f.serviceOf("", "n1"); got["status"] != "disabled" || got["disabled_reason"] != "why" {
		t.Fatalf("disabled with reason: %v", got)
	}
	f.expect("PUT", "/v2.1/os-services/enable", admin, "2.53", map[string]any{"status": "enabled"}, 404, "itemNotFound")
}

// From 2.95 an evacuated server is left stopped, whatever it was: it is
// the new host's, SHUTOFF, its migration done, and no guest starts
// there until it is started, which rebuilds it there.
func TestEvacuateLeavesStopped(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	src := f.row(id).Host
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	f.hosts.setUp(src, false)
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "2.95", map[string]any{"evacuate": map[string]any{}}, 200, "")
	sv := f.row(id)
	if sv.Host == src || sv.Want != "stopped" || sv.Status != "SHUTOFF" || sv.TaskState != "" || sv.RebuildSeq != 1 || sv.Migration != "" {
		t.Fatalf("2.95 evacuate of an active server: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); len(ms) != 1 || ms[0]["status"] != "done" || ms[0]["dest_compute"] != sv.Host {
		t.Fatalf("migrations %v", ms)
	}
	// The new host's agent finds no guest and leaves it off.
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, Node: sv.Host})
	if sv := f.row(id); sv.Status != "SHUTOFF" || sv.Want != "stopped" {
		t.Fatalf("after the new host's report: %+v", sv)
	}
	// Started, it is rebuilt there and active.
	f.action(alice, id, map[string]any{"os-start": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1, Node: sv.Host})
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.Want != "active" {
		t.Fatalf("after the start: %+v", sv)
	}
}

// 2.96 shows the zone a server is pinned to, null for none.
func TestPinnedAvailabilityZone(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	if _, ok := f.show(alice, id, "2.95")["pinned_availability_zone"]; ok {
		t.Fatal("pinned_availability_zone before 2.96")
	}
	if v, ok := f.show(alice, id, "2.96")["pinned_availability_zone"]; !ok || v != nil {
		t.Fatalf("pinned_availability_zone %v (present %v), want null", v, ok)
	}
	az := f.row(id).AZ
	id2 := f.server(alice, "vm2", "availability_zone", az)
	if v := f.show(alice, id2, "2.96")["pinned_availability_zone"]; v != az {
		t.Fatalf("pinned_availability_zone %v, want %s", v, az)
	}
	for _, raw := range f.expect("GET", "/v2.1/servers/detail", alice, "2.96", nil, 200, "")["servers"].([]any) {
		if _, ok := raw.(map[string]any)["pinned_availability_zone"]; !ok {
			t.Fatalf("detail without pinned_availability_zone: %v", raw)
		}
	}
}
