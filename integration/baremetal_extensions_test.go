//go:build integration

package integration

import (
	"strings"
	"testing"
)

// TestBaremetalUnbuiltCalls drives, with the real python-ironicclient,
// the Ironic calls this cloud answers without carrying them out: a
// node's BIOS settings (none are ever cached: no driver here reads a
// BIOS), detaching a VIF (none is ever attached), and the management
// calls no driver here implements (NMI, boot mode, secure boot), which
// Ironic refuses as UnsupportedDriverExtension, and vendor passthru (no
// hardware type here has vendor methods). Before, each was a 404
// "resource could not be found", as if the API lacked the route.
func TestBaremetalUnbuiltCalls(t *testing.T) {
	n1 := newRackd(t, "bmx1")
	n1.start("--bootstrap")
	n1.waitHealthy()
	env := osEnv(openrc(t, n1.dataDir), n1)
	run := func(args ...string) string {
		t.Helper()
		return openstack(t, env, append([]string{"baremetal"}, args...)...)
	}
	fails := func(want string, args ...string) {
		t.Helper()
		out, err := openstackErr(env, append([]string{"baremetal"}, args...)...)
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("openstack baremetal %s: %v, want a failure saying %q:\n%s", strings.Join(args, " "), err, want, out)
		}
	}
	id := strings.TrimSpace(run("node", "create", "--driver", "ipmi", "--name", "x1", "-f", "value", "-c", "uuid"))

	if bios := decodeJSON[[]any](t, run("node", "bios", "setting", "list", "x1", "-f", "json")); len(bios) != 0 {
		t.Fatalf("bios settings of a new node: %v", bios)
	}
	if bios := decodeJSON[[]any](t, run("node", "bios", "setting", "list", "x1", "--long", "-f", "json")); len(bios) != 0 {
		t.Fatalf("bios settings (long) of a new node: %v", bios)
	}
	fails("Node "+id+" doesn't have a BIOS setting 'ProcVirtualization' (HTTP 404)", "node", "bios", "setting", "show", "x1", "ProcVirtualization")
	fails("Node nope could not be found", "node", "bios", "setting", "list", "nope")

	const vif = "5a6d7b20-98b9-46db-bee3-deacbfeb5b2a"
	fails("Unable to detach VIF "+vif+" from node "+id+" because it is not attached to it. (HTTP 400)", "node", "vif", "detach", "x1", vif)

	fails("Driver ipmi does not support inject_nmi (disabled or not implemented). (HTTP 400)", "node", "inject", "nmi", "x1")
	fails("Driver ipmi does not support set_boot_mode (disabled or not implemented). (HTTP 400)", "node", "boot", "mode", "set", "x1", "uefi")
	fails("Driver ipmi does not support set_secure_boot_state (disabled or not implemented). (HTTP 400)", "node", "secure", "boot", "on", "x1")

	// No hardware type here has vendor methods.
	for _, list := range [][]string{{"node", "passthru", "list", "x1"}, {"driver", "passthru", "list", "ipmi"}} {
		if m := decodeJSON[[]any](t, run(append(list, "-f", "json")...)); len(m) != 0 {
			t.Fatalf("%s: %v", strings.Join(list, " "), m)
		}
	}
	fails("No handler for method bmc_reset (HTTP 400)", "node", "passthru", "call", "x1", "bmc_reset")
	fails("No handler for method bmc_reset (HTTP 400)", "node", "passthru", "call", "--http-method", "GET", "x1", "bmc_reset")
	fails("No handler for method lookup (HTTP 400)", "driver", "passthru", "call", "ipmi", "lookup")

	// A refused call leaves the node as it was.
	node := decodeJSON[map[string]any](t, run("node", "show", "x1", "-f", "json"))
	if node["provision_state"] != "enroll" || node["boot_mode"] != nil || node["secure_boot"] != nil || node["last_error"] != nil {
		t.Fatalf("node after refused calls: %v", node)
	}
}
