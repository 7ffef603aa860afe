package compute

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/provision/agentapi"
)

// Bare-metal servers: a flavor with resources:CUSTOM_<CLASS>=1 places
// the server on a whole node of that class, claimed in the apply.

const (
	nodeA = "0a000000-0000-4000-8000-00000000000a"
	nodeB = "0b000000-0000-4000-8000-00000000000b"
	nodeC = "0c000000-0000-4000-8000-00000000000c"
)

func newBaremetalFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixtureWith(t, bmstate.Schema())
	f.stdFlavors()
	f.flavor("bm", "bm.small", 1, 1, 1)
	f.expect("POST", "/v2.1/flavors/bm/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{
		"resources:CUSTOM_BAREMETAL_SMALL": "1", "resources:VCPU": "0", "resources:MEMORY_MB": "0", "resources:DISK_GB": "0",
		"capabilities:boot_mode": "uefi"}}, 200, "")
	return f
}

// addNode enrols a node in a state of the test's choosing.
func (f *fixture) addNode(id, class, state string) {
	f.t.Helper()
	n := bmstate.Node{ID: id, Driver: "fake-hardware", ResourceClass: class, ProvisionState: state, Conductor: "n1", CreatedAt: f.now}
	if _, err := f.local.Propose(context.Background(), bmstate.CmdCreateNode, bmstate.CreateNodeCmd{Row: n}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) node(id string) *bmstate.Node {
	f.t.Helper()
	n := store.Get[bmstate.Node](f.local.State.Txn(), bmstate.NodeTable, id)
	if n == nil {
		f.t.Fatalf("node %s is gone", id)
	}
	return n
}

// putNode changes a node as the conductor does (read, change, PutNode).
func (f *fixture) putNode(id string, change func(n *bmstate.Node)) {
	f.t.Helper()
	n := f.node(id).Clone()
	rev := n.Revision
	change(n)
	if _, err := f.local.Propose(context.Background(), bmstate.CmdPutNode, bmstate.PutNodeCmd{Row: *n, Revision: rev}); err != nil {
		f.t.Fatal(err)
	}
}

// bmServer creates a server of the bare-metal flavor without networks
// (before 2.37: nothing said) and returns its id.
func (f *fixture) bmServer(tok, name string) string {
	f.t.Helper()
	body := f.expect("POST", "/v2.1/servers", tok, "", map[string]any{"server": map[string]any{"name": name, "imageRef": img1, "flavorRef": "bm"}}, 202, "")
	return body["server"].(map[string]any)["id"].(string)
}

func TestBaremetalFlavorExtraSpecs(t *testing.T) {
	f := newBaremetalFixture(t)
	specs := f.expect("GET", "/v2.1/flavors/bm/os-extra_specs", alice, "", nil, 200, "")["extra_specs"].(map[string]any)
	if specs["resources:CUSTOM_BAREMETAL_SMALL"] != "1" || specs["resources:VCPU"] != "0" {
		t.Fatalf("extra specs %v", specs)
	}
	for name, c := range map[string]struct{ key, value string }{
		"two nodes":         {"resources:CUSTOM_X", "2"},
		"not a number":      {"resources:CUSTOM_X", "one"},
		"not whole":         {"resources:VCPU", "1.5"},
		"negative":          {"resources:MEMORY_MB", "-1"},
		"unknown class":     {"resources:NOT_A_CLASS", "1"},
		"lower-case custom": {"resources:custom_lower", "1"},
	} {
		t.Run(name, func(t *testing.T) {
			f.t = t
			f.expect("POST", "/v2.1/flavors/small/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{c.key: c.value}}, 400, "badRequest", c.key)
			f.expect("PUT", "/v2.1/flavors/small/os-extra_specs/"+c.key, admin, "", map[string]any{c.key: c.value}, 400, "badRequest", c.key)
		})
	}
	f.t = t
	// A number is a string as Nova stores it, and 0 asks for nothing.
	f.expect("POST", "/v2.1/flavors/small/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{"resources:CUSTOM_Y": 0, "resources:VCPU": 2}}, 200, "")
	if got := f.expect("GET", "/v2.1/flavors/small/os-extra_specs", admin, "", nil, 200, "")["extra_specs"].(map[string]any); got["resources:CUSTOM_Y"] != "0" {
		t.Fatalf("extra specs %v", got)
	}
}

func TestBaremetalServerClaimsOneNode(t *testing.T) {
	f := newBaremetalFixture(t)
	f.addNode(nodeA, "baremetal-large", bmstate.StateAvailable)
	f.addNode(nodeB, "baremetal_small", bmstate.StateManageable)
	f.addNode(nodeC, "Baremetal-Small", bmstate.StateAvailable)
	ports := f.ports.count()

	id := f.bmServer(alice, "metal")
	sv := f.row(id)
	if sv.Baremetal != nodeC || sv.Host != "n1" || sv.Status != "BUILD" || sv.TaskState != "spawning" || len(sv.Ports) != 0 {
		t.Fatalf("server %+v: want BUILD on node %s through conductor n1, no ports", sv, nodeC)
	}
	if f.ports.count() != ports {
		t.Errorf("a bare-metal server made %d Neutron ports", f.ports.count()-ports)
	}
	n := f.node(nodeC)
	if n.InstanceUUID != id || n.ProvisionState != bmstate.StateDeploying || n.TargetProvisionState != bmstate.StateActive || n.Revision != 2 {
		t.Fatalf("claimed node %+v", n)
	}
	info := n.InstanceInfo
	caps, _ := info["capabilities"].(map[string]any)
	if info["image_source"] != img1 || info["root_gb"] != float64(1) || info["image_disk_format"] != "qcow2" || info["configdrive"] != true ||
		info["display_name"] != "metal" || caps["boot_mode"] != "uefi" {
		t.Fatalf("instance_info %v", info)
	}
	for _, other := range []string{nodeA, nodeB} {
		if n := f.node(other); n.InstanceUUID != "" || n.Revision != 1 {
			t.Errorf("node %s (class %s, %s) was claimed: %+v", other, n.ResourceClass, n.ProvisionState, n)
		}
	}

	// The admin view: the conductor as host, the node as hypervisor, as
	// Nova on Ironic shows them; the address once the inventory has it.
	v := f.show(admin, id, "2.47")
	if v["OS-EXT-SRV-ATTR:host"] != "n1" || v["OS-EXT-SRV-ATTR:hypervisor_hostname"] != nodeC {
		t.Fatalf("host %v, hypervisor_hostname %v", v["OS-EXT-SRV-ATTR:host"], v["OS-EXT-SRV-ATTR:hypervisor_hostname"])
	}
	if a := v["addresses"].(map[string]any); len(a) != 0 {
		t.Fatalf("addresses before any inventory: %v", a)
	}
	f.putNode(nodeC, func(n *bmstate.Node) {
		n.Inventory = &agentapi.Inventory{Boot: agentapi.Boot{PXEInterface: "52:54:00:00:00:0c"}, Interfaces: []agentapi.Interface{
			{Name: "eth1", MACAddress: "52:54:00:00:01:0c", IPv4Address: "198.51.100.9"},
			{Name: "eth0", MACAddress: "52:54:00:00:00:0C", IPv4Address: "192.0.2.50"},
		}}
	})
	addrs := f.show(alice, id, "")["addresses"].(map[string]any)
	prov, _ := addrs["provisioning"].([]any)
	if len(addrs) != 1 || len(prov) != 1 {
		t.Fatalf("addresses %v", addrs)
	}
	if a := prov[0].(map[string]any); a["addr"] != "192.0.2.50" || a["version"] != float64(4) || a["OS-EXT-IPS-MAC:mac_addr"] != "52:54:00:00:00:0c" || a["OS-EXT-IPS:type"] != "fixed" {
		t.Fatalf("provisioning address %v", a)
	}
	ips := f.expect("GET", "/v2.1/servers/"+id+"/ips", alice, "", nil, 200, "")["addresses"].(map[string]any)
	if _, ok := ips["provisioning"]; !ok {
		t.Errorf("os-ips %v", ips)
	}

	// The conductor's host lends the machine nothing: its hypervisor
	// counts no server, and virtual machines still fit on it.
	for _, h := range f.expect("GET", "/v2.1/os-hypervisors/detail", admin, "", nil, 200, "")["hypervisors"].([]any) {
		if h := h.(map[string]any); h["vcpus_used"] != float64(0) {
			t.Errorf("hypervisor %v uses %v vcpus", h["hypervisor_hostname"], h["vcpus_used"])
		}
	}

	// No node free: Nova's build failure, nothing claimed.
	again := f.bmServer(alice, "metal2")
	if sv := f.row(again); sv.Status != "ERROR" || sv.Fault == nil || sv.Fault.Message != noValidHost || sv.Baremetal != "" || sv.Host != "" {
		t.Fatalf("second server %+v", sv)
	}
	if n := f.node(nodeA); n.InstanceUUID != "" {
		t.Fatalf("node of another class claimed: %+v", n)
	}
	// Deleting it goes at once: it holds nothing.
	f.expect("DELETE", "/v2.1/servers/"+again, alice, "", nil, 204, "")
	if f.row(again) != nil {
		t.Fatal("unplaced bare-metal server not deleted at once")
	}
}

func TestBaremetalConcurrentCreatesShareNoNode(t *testing.T) {
	f := newBaremetalFixture(t)
	f.addNode(nodeA, "BAREMETAL_SMALL", bmstate.StateAvailable)
	var wg sync.WaitGroup
	ids := make([]string, 4)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := f.do("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": fmt.Sprint("m", i), "imageRef": img1, "flavorRef": "bm"}})
			if r.code == 202 {
				ids[i] = r.body["server"].(map[string]any)["id"].(string)
			}
		}()
	}
	wg.Wait()
	placed, failed := 0, 0
	for _, id := range ids {
		sv := f.row(id)
		switch {
		case sv == nil:
			t.Fatalf("a create failed: %v", ids)
		case sv.Baremetal == nodeA && sv.Status == "BUILD":
			placed++
			if n := f.node(nodeA); n.InstanceUUID != id {
				t.Fatalf("node holds %s, server %s claims it", n.InstanceUUID, id)
			}
		case sv.Status == "ERROR" && sv.Fault.Message == noValidHost:
			failed++
		default:
			t.Fatalf("server %+v", sv)
		}
	}
	if placed != 1 || failed != 3 {
		t.Fatalf("%d placed, %d failed: want 1 and 3", placed, failed)
	}
}

func TestBaremetalServerRefusesTenantNetworks(t *testing.T) {
	f := newBaremetalFixture(t)
	f.addNode(nodeA, "baremetal-small", bmstate.StateAvailable)
	port := f.ports.userPort(netA, projA)
	for _, nets := range []any{
		[]any{map[string]any{"uuid": netA}},
		[]any{map[string]any{"port": port}},
	} {
		f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "m", "imageRef": img1, "flavorRef": "bm", "networks": nets}},
			400, "badRequest", "networks", "Tenant networks on bare-metal servers are not supported", "switch configuration", "provisioning network")
	}
	if n := f.node(nodeA); n.InstanceUUID != "" {
		t.Fatalf("a refused server claimed %+v", n)
	}
	// "none" and "auto" leave the choice to the cloud: fine.
	for _, nets := range []string{"none", "auto"} {
		f.addNode(map[string]string{"none": nodeB, "auto": nodeC}[nets], "baremetal-small", bmstate.StateAvailable)
		body := f.expect("POST", "/v2.1/servers", alice, "2.37", map[string]any{"server": map[string]any{"name": "m", "imageRef": img1, "flavorRef": "bm", "networks": nets}}, 202, "")
		if sv := f.row(body["server"].(map[string]any)["id"].(string)); sv.Baremetal == "" || len(sv.Ports) != 0 {
			t.Fatalf("networks %q: %+v", nets, sv)
		}
	}
	// A flavor asking for two nodes' classes is refused, naming them.
	f.flavor("bm2", "bm.two", 1, 1, 1)
	f.expect("POST", "/v2.1/flavors/bm2/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{
		"resources:CUSTOM_A": "1", "resources:CUSTOM_B": "1"}}, 200, "")
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "m", "imageRef": img1, "flavorRef": "bm2"}},
		400, "badRequest", "CUSTOM_A, CUSTOM_B")
}

func TestBaremetalServerLifecycle(t *testing.T) {
	f := newBaremetalFixture(t)
	f.addNode(nodeA, "baremetal-small", bmstate.StateAvailable)
	id := f.bmServer(alice, "metal")
	// The claim is an Ironic allocation of the server's id on the node.
	if a := bmstate.AllocationByNode(f.local.State.Txn(), nodeA); a == nil || a.ID != id || a.State != bmstate.AllocActive || f.node(nodeA).AllocationID != id {
		t.Fatalf("allocation of the claimed node: %+v", a)
	}

	// The conductor reports the deploy done.
	f.putNode(nodeA, func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState, n.PowerState = bmstate.StateActive, "", bmstate.PowerOn
	})
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.TaskState != "" || sv.LaunchedAt.IsZero() {
		t.Fatalf("after the deploy: %+v", sv)
	}

	// What a machine cannot do is refused, saying why.
	for _, a := range []string{"pause", "suspend"} {
		f.action(alice, id, map[string]any{a: nil}, 409, "not supported for bare-metal servers")
	}
	for _, a := range []string{"resize", "confirmResize", "revertResize", "migrate", "shelve", "rescue", "os-migrateLive"} {
		f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{a: map[string]any{}}, 400, "badRequest", a+" is not supported for bare-metal servers")
	}
	// ... and is an admin's, with a body, for a virtual machine.
	vm := f.server(alice, "vm")
	f.expect("POST", "/v2.1/servers/"+vm+"/action", alice, "", map[string]any{"os-migrateLive": nil}, 403, "forbidden", "os-migrate-server:migrate_live")
	f.expect("POST", "/v2.1/servers/"+vm+"/action", admin, "", map[string]any{"os-migrateLive": nil}, 400, "badRequest", "os-migrateLive")

	// Stop, start, reboot: the node's power target, each counted.
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	if n := f.node(nodeA); n.TargetPowerState != bmstate.PowerOff || n.PowerSeq != 1 {
		t.Fatalf("after stop: node power target %q seq %d", n.TargetPowerState, n.PowerSeq)
	}
	f.putNode(nodeA, func(n *bmstate.Node) { n.PowerState, n.TargetPowerState = bmstate.PowerOff, "" })
	f.report(id, Observed{Status: "SHUTOFF", PowerState: PowerShutdown})
	if sv := f.row(id); sv.Status != "SHUTOFF" {
		t.Fatalf("after stop: %s", sv.Status)
	}
	f.action(alice, id, map[string]any{"os-start": nil}, 202)
	if n := f.node(nodeA); n.TargetPowerState != bmstate.PowerOn || n.PowerSeq != 2 {
		t.Fatalf("after start: node power target %q seq %d", n.TargetPowerState, n.PowerSeq)
	}
	f.putNode(nodeA, func(n *bmstate.Node) { n.PowerState, n.TargetPowerState = bmstate.PowerOn, "" })
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	f.action(alice, id, map[string]any{"reboot": map[string]any{"type": "SOFT"}}, 202)
	if n := f.node(nodeA); n.TargetPowerState != bmstate.Rebooting || n.PowerSeq != 3 {
		t.Fatalf("after reboot: node power target %q seq %d", n.TargetPowerState, n.PowerSeq)
	}
	// Still rebooting while the node's reset is pending ...
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	if sv := f.row(id); sv.Status != "REBOOT" {
		t.Fatalf("reboot pending: %s", sv.Status)
	}
	// ... done once the conductor has reset it.
	f.putNode(nodeA, func(n *bmstate.Node) { n.TargetPowerState = "" })
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	if sv := f.row(id); sv.Status != "ACTIVE" {
		t.Fatalf("reboot done: %s", sv.Status)
	}

	// Delete: the node tears down in the same apply; the server stays
	// until the conductor reports it gone.
	rev := f.node(nodeA).Revision
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	n := f.node(nodeA)
	if n.ProvisionState != bmstate.StateDeleting || n.TargetProvisionState != bmstate.StateAvailable || n.Revision != rev+1 || n.InstanceUUID != id {
		t.Fatalf("after delete: node %+v", n)
	}
	if sv := f.row(id); sv == nil || sv.Want != "deleted" || sv.TaskState != "deleting" {
		t.Fatalf("after delete: server %+v", sv)
	}
	// A second delete changes nothing.
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	if f.node(nodeA).Revision != rev+1 {
		t.Fatal("a second delete changed the node again")
	}
	// A tear-down that failed shows as ERROR, and is tried again by
	// deleting again.
	f.putNode(nodeA, func(n *bmstate.Node) { n.ProvisionState, n.LastError = bmstate.StateError, "power off failed" })
	f.report(id, Observed{Status: "ERROR", Fault: "tear-down failed: power off failed"})
	if v := f.show(alice, id, ""); v["status"] != "ERROR" || v["fault"].(map[string]any)["message"] != "tear-down failed: power off failed" {
		t.Fatalf("after a failed tear-down: %v %v", v["status"], v["fault"])
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	if n := f.node(nodeA); n.ProvisionState != bmstate.StateDeleting || n.LastError != "" {
		t.Fatalf("delete after a failed tear-down: node %+v", n)
	}
	if sv := f.row(id); sv.TaskState != "deleting" || sv.Want != "deleted" {
		t.Fatalf("delete after a failed tear-down: server %+v", sv)
	}
	// Cleaning done: the conductor makes the node available and reports
	// the server gone; the node is free for the next server.
	f.putNode(nodeA, func(n *bmstate.Node) { n.ProvisionState, n.TargetProvisionState = bmstate.StateAvailable, "" })
	f.report(id, Observed{Gone: true})
	if f.row(id) != nil {
		t.Fatal("server still there after Gone")
	}
	if a := bmstate.AllocationByNode(f.local.State.Txn(), nodeA); a != nil {
		t.Fatalf("allocation left after the server went: %+v", a)
	}
	if n := f.node(nodeA); n.InstanceUUID != "" || n.InstanceInfo != nil || n.AllocationID != "" {
		t.Fatalf("node still names the gone server: %+v", n)
	}
	next := f.bmServer(alice, "metal-again")
	if sv := f.row(next); sv.Baremetal != nodeA {
		t.Fatalf("freed node not claimed again: %+v", sv)
	}
}

func TestBaremetalDeployFailureAndRelease(t *testing.T) {
	f := newBaremetalFixture(t)
	f.addNode(nodeA, "baremetal-small", bmstate.StateAvailable)
	id := f.bmServer(alice, "metal")
	// The conductor's deploy failed: ERROR with its fault.
	f.putNode(nodeA, func(n *bmstate.Node) {
		n.ProvisionState, n.LastError = bmstate.StateDeployFail, "image checksum mismatch"
		n.Agent = &bmstate.AgentBoot{Op: "deploy"}
	})
	f.report(id, Observed{Status: "ERROR", Fault: "deploy failed: image checksum mismatch"})
	v := f.show(alice, id, "")
	if v["status"] != "ERROR" || !strings.Contains(v["fault"].(map[string]any)["message"].(string), "checksum mismatch") {
		t.Fatalf("after a failed deploy: %v %v", v["status"], v["fault"])
	}
	// Delete tears it down from deploy failed, dropping the deploy's boot.
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	if n := f.node(nodeA); n.ProvisionState != bmstate.StateDeleting || n.Agent != nil || n.LastError != "" {
		t.Fatalf("after delete: %+v", n)
	}
	// A node taken away from the server (an operator's doing) leaves
	// nothing to tear down: delete removes the server at once.
	f.addNode(nodeB, "baremetal-small", bmstate.StateAvailable)
	other := f.bmServer(alice, "metal2")
	f.putNode(nodeB, func(n *bmstate.Node) { n.InstanceUUID = "" })
	f.expect("DELETE", "/v2.1/servers/"+other, alice, "", nil, 204, "")
	if f.row(other) != nil {
		t.Fatal("server whose node is gone was not removed")
	}
}

func TestBaremetalQuota(t *testing.T) {
	f := newBaremetalFixture(t)
	f.addNode(nodeA, "baremetal-small", bmstate.StateAvailable)
	f.addNode(nodeB, "baremetal-small", bmstate.StateAvailable)
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"instances": 1}}, 200, "")
	f.bmServer(alice, "metal")
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "m2", "imageRef": img1, "flavorRef": "bm"}}, 403, "overLimit", "instances")
	if n := f.node(nodeB); n.InstanceUUID != "" {
		t.Fatalf("over-quota server claimed %+v", n)
	}
	limits := f.expect("GET", "/v2.1/limits", alice, "", nil, 200, "")["limits"].(map[string]any)["absolute"].(map[string]any)
	if limits["totalInstancesUsed"] != float64(1) || limits["totalCoresUsed"] != float64(1) || limits["totalRAMUsed"] != float64(1) {
		t.Fatalf("usage %v: one server with the flavor's 1 vcpu and 1 MB", limits)
	}
}

// TestBaremetalSnapshot: a claimed node and its server survive a
// snapshot and restore byte for byte (the claim is in server create's
// command), and so does a rebuild (compute.server.rebuild).
func TestBaremetalSnapshot(t *testing.T) {
	f := newBaremetalFixture(t)
	f.addNode(nodeA, "baremetal-small", bmstate.StateAvailable)
	id := f.bmServer(alice, "metal")
	f.putNode(nodeA, func(n *bmstate.Node) { n.ProvisionState, n.TargetProvisionState = bmstate.StateActive, "" })
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"rebuild": map[string]any{"imageRef": img1}}, 202, "")
	if f.local.Applied[cmdServerRebuild] == 0 {
		t.Fatal("the rebuild was not applied")
	}
	first, second, err := store.SnapshotRoundTrip(f.local.State, Schema(), bmstate.Schema())
	if err != nil || string(first) != string(second) {
		t.Fatalf("round trip: %v", err)
	}
	for _, want := range []string{`"baremetal":"` + nodeA + `"`, `"instance_uuid":"` + id + `"`, `"image_source":"` + img1 + `"`, `"rebuild_seq":1`} {
		if !strings.Contains(string(first), want) {
			t.Errorf("snapshot lacks %s", want)
		}
	}
}

// TestBaremetalServerTakesNothingFromItsConductor: the conductor's host
// still has all its capacity for virtual machines beside a bare-metal
// server whose flavor is as big as the host.
func TestBaremetalServerTakesNothingFromItsConductor(t *testing.T) {
	f := newBaremetalFixture(t)
	f.flavor("bmbig", "bm.big", 2, 1024, 1)
	f.expect("POST", "/v2.1/flavors/bmbig/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{"resources:CUSTOM_BAREMETAL_SMALL": "1"}}, 200, "")
	f.addNode(nodeA, "baremetal-small", bmstate.StateAvailable)
	body := f.expect("POST", "/v2.1/servers", admin, "", map[string]any{"server": map[string]any{"name": "metal", "imageRef": img1, "flavorRef": "bmbig"}}, 202, "")
	if sv := f.row(body["server"].(map[string]any)["id"].(string)); sv.Host != "n1" || sv.Baremetal != nodeA {
		t.Fatalf("bare-metal server %+v", sv)
	}
	vm := f.expect("POST", "/v2.1/servers", admin, "2.74", map[string]any{"server": map[string]any{"name": "vm", "imageRef": img1, "flavorRef": "small", "networks": "none", "host": "n1"}}, 202, "")
	if sv := f.row(vm["server"].(map[string]any)["id"].(string)); sv.Host != "n1" || sv.Status != "BUILD" {
		t.Fatalf("virtual machine beside it: %+v (fault %+v)", sv, sv.Fault)
	}
}

func TestBaremetalRebuildDeploysTheNodeAgain(t *testing.T) {
	f := newBaremetalFixture(t)
	f.addNode(nodeA, "baremetal-small", bmstate.StateAvailable)
	id := f.bmServer(alice, "metal")
	rebuild := func(tok string, arg map[string]any, status int, inMsg ...string) map[string]any {
		t.Helper()
		return f.expect("POST", "/v2.1/servers/"+id+"/action", tok, "", map[string]any{"rebuild": arg}, status, "", inMsg...)
	}
	// Not while it is being built.
	rebuild(alice, map[string]any{"imageRef": img1}, 409, "vm_state")
	f.putNode(nodeA, func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState, n.PowerState = bmstate.StateActive, "", bmstate.PowerOn
		n.InstanceInfo["image_checksum"] = "kept"
	})
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})

	rebuild(alice, map[string]any{"imageRef": imgQueued}, 400, "not active")
	rebuild(alice, map[string]any{"imageRef": img1, "user_data": "eA=="}, 400, "user_data")
	rebuild(bob, map[string]any{"imageRef": img1}, 404)
	body := rebuild(alice, map[string]any{"imageRef": img1, "name": "metal2", "metadata": map[string]any{"k": "v"}}, 202)
	if sv := body["server"].(map[string]any); sv["status"] != "REBUILD" || sv["name"] != "metal2" {
		t.Fatalf("rebuild answered %v", sv)
	}
	n := f.node(nodeA)
	if n.ProvisionState != bmstate.StateDeploying || n.TargetProvisionState != bmstate.StateActive || n.InstanceUUID != id ||
		n.InstanceInfo["image_source"] != img1 || n.InstanceInfo["image_checksum"] != "kept" {
		t.Fatalf("node after rebuild: %s → %s, instance %s, info %v", n.ProvisionState, n.TargetProvisionState, n.InstanceUUID, n.InstanceInfo)
	}
	rebuild(alice, map[string]any{"imageRef": img1}, 409, "task_state")
	// A report from before the rebuild does not end it; the conductor's
	// report with the rebuild's number does.
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	if sv := f.row(id); sv.Status != "REBUILD" {
		t.Fatalf("a stale ACTIVE ended the rebuild: %s", sv.Status)
	}
	f.putNode(nodeA, func(n *bmstate.Node) { n.ProvisionState, n.TargetProvisionState = bmstate.StateActive, "" })
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning, RebuildSeq: 1})
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.TaskState != "" || sv.Metadata["k"] != "v" {
		t.Fatalf("after the rebuild: %s %q %v", sv.Status, sv.TaskState, sv.Metadata)
	}
	// A node in maintenance is not rebuilt.
	f.putNode(nodeA, func(n *bmstate.Node) { n.Maintenance = true })
	rebuild(alice, map[string]any{"imageRef": img1}, 409, "maintenance")
}
