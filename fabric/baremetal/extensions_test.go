package baremetal

import (
	"testing"
)

// TestBIOSSettings: no driver here caches BIOS settings, so a node's list
// is empty and a setting is not found, with Ironic's microversion gates.
func TestBIOSSettings(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	res := f.expect(200, "GET", "/v1/nodes/n1/bios", admin, nil)
	if b, ok := res.Body["bios"].([]any); !ok || len(b) != 0 {
		t.Fatalf("bios: %s", res.Raw)
	}
	f.expect(200, "GET", "/v1/nodes/n1/bios?detail=True", admin, nil)
	f.expect(400, "GET", "/v1/nodes/n1/bios?detail=maybe", admin, nil, "detail")
	f.expect(400, "GET", "/v1/nodes/n1/bios?detail=True&fields=name", admin, nil, "fields")
	if res := f.call("GET", "/v1/nodes/n1/bios?detail=True", admin, nil, headerVersion, "1.73"); res.Code != 406 || res.fault == "" {
		t.Fatalf("bios detail at 1.73: %d %s", res.Code, res.Raw)
	}
	if res := f.call("GET", "/v1/nodes/n1/bios", admin, nil, headerVersion, "1.39"); res.Code != 404 {
		t.Fatalf("bios at 1.39: %d %s", res.Code, res.Raw)
	}
	f.expect(404, "GET", "/v1/nodes/n1/bios/ProcVirtualization", admin, nil, "Node "+id+" doesn't have a BIOS setting 'ProcVirtualization'")
	f.expect(404, "GET", "/v1/nodes/nope/bios", admin, nil, "Node nope could not be found")
	f.expect(403, "GET", "/v1/nodes/n1/bios", member, nil)
}

// TestVIFDetach: no VIF is ever attached, so detaching one is Ironic's
// VifNotAttached (400), not a missing route.
func TestVIFDetach(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	f.expect(400, "DELETE", "/v1/nodes/n1/vifs/5a6d7b20-98b9-46db-bee3-deacbfeb5b2a", admin, nil,
		"Unable to detach VIF 5a6d7b20-98b9-46db-bee3-deacbfeb5b2a from node "+id+" because it is not attached to it.")
	f.expect(404, "DELETE", "/v1/nodes/nope/vifs/x", admin, nil, "Node nope could not be found")
	if res := f.call("DELETE", "/v1/nodes/n1/vifs/x", admin, nil, headerVersion, "1.27"); res.Code != 404 {
		t.Fatalf("vif detach at 1.27: %d %s", res.Code, res.Raw)
	}
}

// TestUnsupportedManagementCalls: an NMI, the boot mode, secure boot and
// the indicators are refused as Ironic refuses a call its driver does not
// implement, after the node and the body are checked; before their
// microversion they do not exist.
func TestUnsupportedManagementCalls(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	f.createNode(map[string]any{"name": "fake1", "driver": "fake-hardware"})
	before := f.node(id).Revision
	f.expect(400, "PUT", "/v1/nodes/n1/management/inject_nmi", admin, map[string]any{}, "Driver ipmi does not support inject_nmi (disabled or not implemented).")
	f.expect(400, "PUT", "/v1/nodes/fake1/management/inject_nmi", admin, map[string]any{}, "Driver fake-hardware does not support inject_nmi")
	f.expect(400, "GET", "/v1/nodes/n1/management/indicators", admin, nil, "does not support get_supported_indicators")
	f.expect(400, "GET", "/v1/nodes/n1/management/indicators/led@system", admin, nil, "does not support get_indicator_state")
	f.expect(400, "PUT", "/v1/nodes/n1/management/indicators/led@system", admin, map[string]any{"state": "ON"}, "does not support set_indicator_state")
	f.expect(400, "PUT", "/v1/nodes/n1/states/boot_mode", admin, map[string]any{"target": "legacy"}, "target", "legacy")
	f.expect(400, "PUT", "/v1/nodes/n1/states/boot_mode", admin, map[string]any{"target": "uefi"}, "does not support set_boot_mode")
	f.expect(400, "PUT", "/v1/nodes/n1/states/secure_boot", admin, map[string]any{"target": "on"}, "target")
	f.expect(400, "PUT", "/v1/nodes/n1/states/secure_boot", admin, map[string]any{"target": true}, "does not support set_secure_boot_state")
	f.expect(404, "PUT", "/v1/nodes/nope/states/boot_mode", admin, map[string]any{"target": "uefi"}, "Node nope could not be found")
	for _, c := range []struct{ method, path, before string }{
		{"PUT", "/v1/nodes/n1/management/inject_nmi", "1.28"},
		{"GET", "/v1/nodes/n1/management/indicators", "1.62"},
		{"PUT", "/v1/nodes/n1/states/boot_mode", "1.75"},
		{"PUT", "/v1/nodes/n1/states/secure_boot", "1.75"},
	} {
		if res := f.call(c.method, c.path, admin, map[string]any{"target": "uefi"}, headerVersion, c.before); res.Code != 404 {
			t.Fatalf("%s %s at %s: %d %s", c.method, c.path, c.before, res.Code, res.Raw)
		}
	}
	// Nothing was recorded on the node.
	if after := f.node(id).Revision; after != before {
		t.Fatalf("node revision %d → %d: a refused call changed the node", before, after)
	}
}

// TestVendorPassthru: no hardware type here has vendor methods, so a
// node's and a driver's lists are empty and a call is "No handler".
func TestVendorPassthru(t *testing.T) {
	f := newFixture(t)
	f.createNode(map[string]any{"name": "n1"})
	for _, base := range []string{"/v1/nodes/n1", "/v1/drivers/ipmi", "/v1/drivers/fake-hardware"} {
		res := f.expect(200, "GET", base+"/vendor_passthru/methods", admin, nil)
		if len(res.Body) != 0 {
			t.Fatalf("%s methods: %s", base, res.Raw)
		}
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			f.expect(400, m, base+"/vendor_passthru?method=bmc_reset", admin, map[string]any{}, "No handler for method bmc_reset")
			f.expect(400, m, base+"/vendor_passthru/bmc_reset", admin, map[string]any{}, "No handler for method bmc_reset")
		}
		f.expect(400, "POST", base+"/vendor_passthru", admin, map[string]any{}, "Method not specified")
	}
	f.expect(404, "GET", "/v1/nodes/nope/vendor_passthru/methods", admin, nil, "Node nope could not be found")
	f.expect(404, "POST", "/v1/drivers/nope/vendor_passthru?method=x", admin, map[string]any{}, "nope")
	f.expect(403, "GET", "/v1/nodes/n1/vendor_passthru/methods", member, nil)
}
