package compute

import (
	"slices"
	"testing"
)

// TestServerInterfaces: Nova's os-interface. A port attached (the
// client's, or one made on a network) is bound to the server and in its
// row, where the node agent plugs it; it is listed and shown; a detach
// takes it out of the row, deletes the port the server made and gives
// the client's back. Bad input names the field; states, locks, ports in
// use and other projects' servers and ports answer as Nova.
func TestServerInterfaces(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "web")
	path := "/v2.1/servers/" + id + "/os-interface"
	// Building: not yet.
	own := f.ports.userPort(netA, projA)
	f.expect("POST", path, alice, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": own}}, 409, "conflictingRequest", "vm_state building")
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	boot := f.row(id).Ports
	if len(boot) != 1 {
		t.Fatalf("boot ports %v", boot)
	}

	list := func() []string {
		t.Helper()
		var ids []string
		for _, a := range f.expect("GET", path, alice, "", nil, 200, "")["interfaceAttachments"].([]any) {
			ids = append(ids, a.(map[string]any)["port_id"].(string))
		}
		return ids
	}
	if got := list(); !slices.Equal(got, boot) {
		t.Fatalf("interfaces %v, want %v", got, boot)
	}

	// Bad bodies name the field; nothing is made.
	before := f.ports.count()
	for _, c := range []struct {
		body  any
		inMsg string
	}{
		{map[string]any{"interfaceAttachment": map[string]any{"port_id": "nope"}}, "port_id"},
		{map[string]any{"interfaceAttachment": map[string]any{"net_id": 7}}, "net_id"},
		{map[string]any{"interfaceAttachment": map[string]any{"net_id": netA, "fixed_ips": []any{map[string]any{"ip_address": "10.0.0.300"}}}}, "ip_address"},
		{map[string]any{"interfaceAttachment": map[string]any{"net_id": netA, "port_id": own}}, "both"},
		{map[string]any{"interfaceAttachment": map[string]any{"fixed_ips": []any{map[string]any{"ip_address": "10.0.0.9"}}}}, "network_id"},
		{map[string]any{"interfaceAttachment": map[string]any{"mac": "x"}}, "'mac'"},
		{map[string]any{"interfaceAttachment": "x"}, "interfaceAttachment"},
	} {
		f.expect("POST", path, alice, "", c.body, 400, "badRequest", c.inMsg)
	}
	// Another project's network and port: not found; their server too.
	f.expect("POST", path, alice, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": netB}}, 404, "itemNotFound")
	theirs := f.ports.userPort(netB, projB)
	f.expect("POST", path, alice, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": theirs}}, 404, "itemNotFound")
	f.expect("POST", path, bob, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": theirs}}, 404, "itemNotFound")
	f.expect("GET", path, bob, "", nil, 404, "itemNotFound")
	f.expect("POST", path, carol, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": own}}, 403, "forbidden")
	// A port in use: the server's own, or another device's.
	f.expect("POST", path, alice, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": boot[0]}}, 409, "conflictingRequest", "still in use")
	if f.ports.count() != before+1 {
		t.Fatalf("ports %d, want %d (only bob's)", f.ports.count(), before+1)
	}

	// Attach the client's port: bound to the server on its host, 200.
	a := f.expect("POST", path, alice, "", map[string]any{"interfaceAttachment": map[string]any{"port_id": own}}, 200, "")["interfaceAttachment"].(map[string]any)
	if a["port_id"] != own || a["net_id"] != netA || a["mac_addr"] == "" || len(a["fixed_ips"].([]any)) != 1 {
		t.Fatalf("attachment %v", a)
	}
	if pt, _ := f.ports.get(own); pt.DeviceID != id || pt.Host != f.row(id).Host || pt.Host == "" {
		t.Fatalf("attached port %+v", pt)
	}
	// Attach on a network, with an address: made, owned by the server.
	made := f.expect("POST", path, alice, "2.70", map[string]any{"interfaceAttachment": map[string]any{"net_id": netA,
		"fixed_ips": []any{map[string]any{"ip_address": "10.0.0.77"}}}}, 200, "")["interfaceAttachment"].(map[string]any)
	madeID := made["port_id"].(string)
	if ip := made["fixed_ips"].([]any)[0].(map[string]any)["ip_address"]; ip != "10.0.0.77" {
		t.Fatalf("made port's address %v", ip)
	}
	if _, ok := made["tag"]; !ok {
		t.Fatal("no tag at 2.70")
	}
	row := f.row(id)
	if !slices.Equal(row.Ports, append(slices.Clone(boot), own, madeID)) || !slices.Contains(row.CreatedPorts, madeID) || slices.Contains(row.CreatedPorts, own) {
		t.Fatalf("row ports %v created %v", row.Ports, row.CreatedPorts)
	}
	if got := list(); len(got) != 3 {
		t.Fatalf("interfaces %v", got)
	}
	if v := f.expect("GET", path+"/"+own, alice, "", nil, 200, "")["interfaceAttachment"].(map[string]any); v["port_id"] != own {
		t.Fatalf("show %v", v)
	}
	f.expect("GET", path+"/"+theirs, alice, "", nil, 404, "itemNotFound")

	// Locked: 409 for the owner, an admin may.
	f.action(alice, id, map[string]any{"lock": nil}, 202)
	f.expect("DELETE", path+"/"+own, alice, "", nil, 409, "conflictingRequest", "locked")
	f.action(alice, id, map[string]any{"unlock": nil}, 202)

	// Detach: the client's port is unbound and kept, the made one goes.
	f.expect("DELETE", path+"/"+own, alice, "", nil, 202, "")
	if pt, ok := f.ports.get(own); !ok || pt.DeviceID != "" || pt.Host != "" {
		t.Fatalf("detached client port %+v (exists %v)", pt, ok)
	}
	f.expect("DELETE", path+"/"+madeID, alice, "", nil, 202, "")
	if _, ok := f.ports.get(madeID); ok {
		t.Fatal("the port the attach made outlived its detach")
	}
	f.expect("DELETE", path+"/"+madeID, alice, "", nil, 404, "itemNotFound")
	if got := f.row(id).Ports; !slices.Equal(got, boot) {
		t.Fatalf("row ports after detaches %v", got)
	}
	// Each is in the action log.
	var actions []string
	for _, a := range f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions", alice, "", nil, 200, "")["instanceActions"].([]any) {
		actions = append(actions, a.(map[string]any)["action"].(string))
	}
	for _, want := range []string{"attach_interface", "detach_interface"} {
		if n := len(slices.DeleteFunc(slices.Clone(actions), func(a string) bool { return a != want })); n != 2 {
			t.Fatalf("%d %s actions in %v, want 2", n, want, actions)
		}
	}

	// Stopped: allowed (the next start boots with it); detaching the
	// last port is allowed too.
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.expect("DELETE", path+"/"+boot[0], alice, "", nil, 409, "conflictingRequest", "task_state powering-off")
	f.report(id, Observed{Status: "SHUTOFF", PowerState: PowerShutdown})
	f.expect("DELETE", path+"/"+boot[0], alice, "", nil, 202, "")
	if got := list(); len(got) != 0 {
		t.Fatalf("interfaces after the last detach %v", got)
	}
	// Deleting the server deletes a port an attach made for it.
	again := f.expect("POST", path, alice, "", map[string]any{"interfaceAttachment": map[string]any{"net_id": netA}}, 200, "")["interfaceAttachment"].(map[string]any)["port_id"].(string)
	if !slices.Contains(f.row(id).CreatedPorts, again) {
		t.Fatalf("created ports %v", f.row(id).CreatedPorts)
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	f.report(id, Observed{Gone: true})
	if _, ok := f.ports.get(again); ok {
		t.Fatal("the port an attach made outlived its server")
	}
	if pt, ok := f.ports.get(own); !ok || pt.DeviceID != "" {
		t.Fatalf("the client's port after the server's delete: %+v (exists %v)", pt, ok)
	}
}
