//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"
)

// TestDevCloudConductsFakeHardware: `rackd dev` without provisioning
// services (what `make run` starts) conducts Ironic's fake-hardware nodes
// itself, so its bare-metal API can be driven end to end with the real
// client (as openstacksdk's functional tests do): enroll → manage →
// provide → deploy → undeploy, power requests carried out, retirement.
// An ipmi node, which needs a provisioning network to boot, is left to a
// conductor that has one.
func TestDevCloudConductsFakeHardware(t *testing.T) {
	n := newRackd(t, "fk", "--public", "off", "--s3-listen", "off")
	n.args = append([]string{"dev"}, n.args...)
	n.start()
	n.waitHealthy()
	env := osEnv(openrc(t, n.dataDir), n)
	bm := func(args ...string) string {
		t.Helper()
		return openstack(t, env, append([]string{"baremetal"}, args...)...)
	}
	show := func(node string) map[string]any {
		t.Helper()
		return decodeJSON[map[string]any](t, bm("node", "show", "-f", "json", node))
	}
	waitState := func(node, state string) map[string]any {
		t.Helper()
		var last map[string]any
		if !eventually(90*time.Second, func() bool {
			last = show(node)
			return last["provision_state"] == state
		}) {
			t.Fatalf("node %s: %v (last_error %v), want %s", node, last["provision_state"], last["last_error"], state)
		}
		return last
	}

	c := decodeJSON[[]map[string]any](t, bm("conductor", "list", "-f", "json"))
	if len(c) != 1 || c[0]["Hostname"] != "fk" || c[0]["Alive"] != true {
		t.Fatalf("conductors: %v", c)
	}
	bm("node", "create", "--driver", "fake-hardware", "--name", "f1", "--resource-class", "fake")
	bm("port", "create", "52:54:00:aa:bb:01", "--node", "f1")
	if v := bm("node", "validate", "f1", "-f", "value", "-c", "Interface", "-c", "Result"); !strings.Contains(v, "boot True") || !strings.Contains(v, "deploy True") {
		t.Fatalf("validate:\n%s", v)
	}
	bm("node", "manage", "f1")
	if n := waitState("f1", "manageable"); n["power_state"] != nil {
		t.Fatalf("fake power reported %v before any power request", n["power_state"])
	}
	bm("node", "power", "on", "f1")
	if !eventually(60*time.Second, func() bool { return show("f1")["power_state"] == "power on" }) {
		t.Fatalf("power on: %v", show("f1")["power_state"])
	}

	// Retired: not provided, cleaned back to manageable.
	bm("node", "set", "f1", "--retired", "--retired-reason", "end of warranty")
	if out, err := openstackErr(env, "baremetal", "node", "provide", "f1"); err == nil || !strings.Contains(out, "retired") {
		t.Fatalf("provide of a retired node: %v\n%s", err, out)
	}
	bm("node", "unset", "f1", "--retired")
	if n := show("f1"); n["retired"] != false || n["retired_reason"] != nil {
		t.Fatalf("unretired: %v %v", n["retired"], n["retired_reason"])
	}

	bm("node", "provide", "f1")
	waitState("f1", "available")
	if out, err := openstackErr(env, "baremetal", "node", "set", "f1", "--retired"); err == nil || !strings.Contains(out, "available") {
		t.Fatalf("retiring an available node: %v\n%s", err, out)
	}
	bm("node", "deploy", "f1")
	waitState("f1", "active")
	bm("node", "undeploy", "f1")
	waitState("f1", "available")

	// The dev conductor does not drive hardware it cannot boot.
	bm("node", "create", "--driver", "ipmi", "--name", "i1", "--driver-info", "ipmi_address=127.0.0.1")
	if n := show("i1"); n["conductor"] != nil {
		t.Fatalf("ipmi node conducted by %v", n["conductor"])
	}
	bm("node", "delete", "i1")
	bm("node", "delete", "f1")
}
