//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// TestBaremetalAPI drives the Ironic API with the real python-ironicclient
// (`openstack baremetal ...`) against a rackd without provisioning
// services: no conductor runs, so a provision verb leaves its node in the
// working state it leads to (manage → verifying), power requests stay
// pending, and a boot device cannot be set. The conductor's side is
// tested where it is built (node/conductor) and end to end in
// TestBaremetal.
func TestBaremetalAPI(t *testing.T) {
	n1 := newRackd(t, "bm1")
	n1.start("--bootstrap")
	n1.waitHealthy()
	env := osEnv(openrc(t, n1.dataDir), n1)
	const password = "ipmi-Secret-4711"
	var mu sync.Mutex
	var outputs []string
	keep := func(out string) {
		mu.Lock()
		defer mu.Unlock()
		outputs = append(outputs, out)
	}
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		out := openstack(t, env, append([]string{"baremetal"}, args...)...)
		keep(out)
		return out
	}
	fails := func(t *testing.T, want string, args ...string) {
		t.Helper()
		out, err := openstackErr(env, append([]string{"baremetal"}, args...)...)
		keep(out)
		if err == nil || !strings.Contains(out, want) {
			t.Fatalf("openstack baremetal %s: %v, want a failure saying %q:\n%s", strings.Join(args, " "), err, want, out)
		}
	}
	show := func(t *testing.T, node string) map[string]any {
		t.Helper()
		return decodeJSON[map[string]any](t, run(t, "node", "show", "-f", "json", node))
	}

	// Each node's life is its own: bm-1's, the longest, goes beside the
	// others', as the CLI's start-up is most of this test's time.
	driverChecks := func(t *testing.T) {
		drivers := run(t, "driver", "list", "-f", "value", "-c", "Supported driver(s)")
		for _, d := range []string{"ipmi", "redfish", "fake-hardware"} {
			if !strings.Contains(drivers, d) {
				t.Fatalf("driver list lacks %s:\n%s", d, drivers)
			}
		}
		if c := decodeJSON[[]any](t, run(t, "conductor", "list", "-f", "json")); len(c) != 0 {
			t.Fatalf("conductors without provisioning services: %v", c)
		}
		fails(t, "driver", "node", "create", "--driver", "idrac")
	}
	bm1 := func(t *testing.T) {
		node := decodeJSON[map[string]any](t, run(t, "node", "create", "-f", "json", "--driver", "ipmi", "--name", "bm-1",
			"--driver-info", "ipmi_address=127.0.0.1", "--driver-info", "ipmi_port=6230",
			"--driver-info", "ipmi_username=admin", "--driver-info", "ipmi_password="+password,
			"--property", "cpus=2", "--resource-class", "baremetal-small"))
		info, _ := node["driver_info"].(map[string]any)
		if node["provision_state"] != "enroll" || info["ipmi_password"] != "******" || info["ipmi_port"] != "6230" ||
			node["resource_class"] != "baremetal-small" || node["power_interface"] != "ipmitool" {
			t.Fatalf("node create: %v", node)
		}
		if list := run(t, "node", "list", "-f", "value", "-c", "Name", "-c", "Provisioning State"); !strings.Contains(list, "bm-1 enroll") {
			t.Fatalf("node list:\n%s", list)
		}

		run(t, "node", "set", "bm-1", "--property", "memory_mb=2048", "--instance-info", "image_source=img-1", "--description", "rack 1, U3")
		run(t, "node", "unset", "bm-1", "--property", "cpus")
		node = show(t, "bm-1")
		props, _ := node["properties"].(map[string]any)
		ii, _ := node["instance_info"].(map[string]any)
		if _, ok := props["cpus"]; ok || props["memory_mb"] == nil || ii["image_source"] != "img-1" || node["description"] != "rack 1, U3" {
			t.Fatalf("after set/unset: %v", node)
		}

		run(t, "port", "create", "52:54:00:12:34:56", "--node", "bm-1")
		fails(t, "already exists", "port", "create", "52:54:00:12:34:56", "--node", "bm-1")
		if ports := decodeJSON[[]map[string]any](t, run(t, "port", "list", "-f", "json", "--node", "bm-1")); len(ports) != 1 || ports[0]["Address"] != "52:54:00:12:34:56" {
			t.Fatalf("port list: %v", ports)
		}

		run(t, "node", "power", "on", "bm-1")
		if n := show(t, "bm-1"); n["target_power_state"] != "power on" {
			t.Fatalf("after power on: %v", n["target_power_state"])
		}
		run(t, "node", "power", "off", "bm-1")
		if n := show(t, "bm-1"); n["target_power_state"] != "power off" {
			t.Fatalf("after power off: %v", n["target_power_state"])
		}
		fails(t, "No conductor is registered", "node", "boot", "device", "set", "bm-1", "pxe")

		run(t, "node", "maintenance", "set", "bm-1", "--reason", "cabling")
		if n := show(t, "bm-1"); n["maintenance"] != true || n["maintenance_reason"] != "cabling" {
			t.Fatalf("maintenance: %v %v", n["maintenance"], n["maintenance_reason"])
		}
		run(t, "node", "maintenance", "unset", "bm-1")

		// No conductor takes the node on: it stays in the working state.
		run(t, "node", "manage", "bm-1")
		if n := show(t, "bm-1"); n["provision_state"] != "verifying" || n["target_provision_state"] != "manageable" {
			t.Fatalf("after manage: %v → %v", n["provision_state"], n["target_provision_state"])
		}

		history := decodeJSON[[]map[string]any](t, run(t, "--os-baremetal-api-version", "1.78", "node", "history", "list", "-f", "json", "bm-1"))
		var events []string
		for _, h := range history {
			events = append(events, h["Description of the event"].(string))
		}
		if joined := strings.Join(events, "\n"); !strings.Contains(joined, "power on requested") || !strings.Contains(joined, "manage requested: enroll -> verifying") {
			t.Fatalf("history:\n%s", joined)
		}
	}
	bm2 := func(t *testing.T) {
		// A node enrolled at microversion 1.10 starts available, as in Ironic.
		old := decodeJSON[map[string]any](t, run(t, "--os-baremetal-api-version", "1.10", "node", "create", "-f", "json", "--driver", "fake-hardware", "--name", "bm-2"))
		if old["provision_state"] != "available" {
			t.Fatalf("1.10 node: %v", old["provision_state"])
		}
		fails(t, `can not be performed on node "`+old["uuid"].(string)+`" while it is in state "available"`, "node", "undeploy", "bm-2")
		// Ironic's fake deploy interface (fake-hardware's) writes no image and
		// asks for none; a real one's image_source check is in the unit tests.
		run(t, "node", "deploy", "bm-2")
		if n := show(t, "bm-2"); n["provision_state"] != "deploying" || n["target_provision_state"] != "active" {
			t.Fatalf("after deploy: %v → %v", n["provision_state"], n["target_provision_state"])
		}
	}
	bm3 := func(t *testing.T) {
		run(t, "--os-baremetal-api-version", "1.10", "node", "create", "--driver", "fake-hardware", "--name", "bm-3")
		run(t, "node", "manage", "bm-3")
		if n := show(t, "bm-3"); n["provision_state"] != "manageable" {
			t.Fatalf("available → manage: %v", n["provision_state"])
		}
		run(t, "node", "inspect", "bm-3")
		if n := show(t, "bm-3"); n["provision_state"] != "inspecting" {
			t.Fatalf("after inspect: %v", n["provision_state"])
		}
	}
	bm4 := func(t *testing.T) {
		run(t, "node", "create", "--driver", "redfish", "--name", "bm-4")
		run(t, "node", "delete", "bm-4")
		fails(t, "could not be found", "node", "show", "bm-4")
	}
	inParallel(t, "nodes", map[string]func(t *testing.T){
		"bm-1": bm1,
		"the others": func(t *testing.T) {
			for _, f := range []func(t *testing.T){driverChecks, bm2, bm3, bm4} {
				f(t)
			}
		},
	})

	for _, out := range append(outputs, n1.log()) {
		if strings.Contains(out, password) {
			t.Fatalf("the BMC password shows:\n%s", out)
		}
	}
}

// decodeJSON decodes the JSON document in a command's output (which may
// carry warnings before it).
func decodeJSON[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	i := strings.IndexAny(out, "{[")
	if i < 0 || json.Unmarshal([]byte(out[i:]), &v) != nil {
		t.Fatalf("not JSON:\n%s", out)
	}
	return v
}
