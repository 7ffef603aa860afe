//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// autotopoNetnsEnv names the namespace TestAutoAllocatedTopology runs in,
// once it has re-executed itself there.
const autotopoNetnsEnv = "RACKSTACK_AUTOTOPO_NETNS"

// TestAutoAllocatedTopology drives the real openstack CLI through
// Neutron's auto-allocated topology, its availability zones, and Nova's
// networks "auto": the dry run names what the cloud lacks (a default
// external network, a default subnet pool) until an admin provides it; a
// member whose project has no network boots a server with --nic auto and
// the guest gets its address on the project's auto-allocated network,
// which `network auto allocated topology create` then returns; delete
// takes the topology down. rackd makes the public network's host side
// where it runs, so the test runs itself and rackd in a namespace of its
// own.
func TestAutoAllocatedTopology(t *testing.T) {
	testenv.RequireRoot(t, "make a network namespace, taps and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage", "ip"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	if inOwnNetns(t, autotopoNetnsEnv, "autotopo") {
		return
	}

	n1, _, creds, admin := dataplaneRackd(t, "autotopo", "--disk", t.TempDir(), "--compute", "on", "--accel", "tcg")
	// Guests outlive rackd by design: delete them while rackd still runs.
	t.Cleanup(func() {
		if out, err := openstackErr(admin, "server", "delete", "--wait", "autovm"); err != nil && !strings.Contains(out, "No server with a name or ID") {
			t.Logf("deleting the guest: %v\n%s", err, out)
		}
	})
	setupTestimgAndAlice(t, admin, img)
	alice := userEnv(creds, n1, "alice", "alice-pass-1", "demo")
	if !eventually(30*time.Second, func() bool { _, err := openstackErr(admin, "network", "show", "public"); return err == nil }) {
		t.Fatal("no network public")
	}
	topology := func(env []string, args ...string) (string, error) {
		return openstackErr(env, append([]string{"network", "auto", "allocated", "topology"}, args...)...)
	}

	// The dry run names what is missing, one thing after another.
	if out, err := topology(alice, "create", "--check-resources"); err == nil || !strings.Contains(out, "No default router:external network") {
		t.Fatalf("dry run with no default external network: %v\n%s", err, out)
	}
	// Nova refuses "auto" the same way, creating nothing.
	if out, err := openstackErr(alice, "--os-compute-api-version", "2.37", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "auto", "autovm"); err == nil ||
		!strings.Contains(out, "Unable to automatically allocate a network") || !strings.Contains(out, "No default router:external network") {
		t.Fatalf("server create --nic auto with nothing to allocate from: %v\n%s", err, out)
	}
	if out, err := openstackErr(alice, "network", "set", "--default", "public"); err == nil {
		t.Fatalf("a member made the default external network:\n%s", out)
	}
	openstack(t, admin, "network", "set", "--default", "public")
	if d := strings.TrimSpace(openstack(t, admin, "network", "show", "public", "-f", "value", "-c", "is_default")); d != "True" {
		t.Fatalf("public is_default %q", d)
	}
	if out, err := topology(alice, "create", "--check-resources"); err == nil || !strings.Contains(out, "No default subnetpools defined") {
		t.Fatalf("dry run with no default subnet pool: %v\n%s", err, out)
	}
	openstack(t, admin, "subnet", "pool", "create", "--share", "--default", "--pool-prefix", "10.100.0.0/16", "--default-prefix-length", "26", "autopool")
	if out, err := topology(alice, "create", "--check-resources"); err != nil {
		t.Fatalf("dry run on a ready cloud: %v\n%s", err, out)
	}
	if nets := openstack(t, alice, "network", "list", "-f", "value", "-c", "Name"); strings.Contains(nets, "auto_allocated_network") {
		t.Fatalf("the dry run allocated a network:\n%s", nets)
	}

	// Neutron's zones are Nova's.
	var zones []map[string]any
	if err := json.Unmarshal([]byte(openstack(t, alice, "availability", "zone", "list", "--network", "--long", "-f", "json")), &zones); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	for _, z := range zones {
		if z["Zone Name"] == "nova" && z["Zone Status"] == "available" {
			kinds[fmt.Sprint(z["Zone Resource"])] = true
		}
	}
	if !kinds["network"] || !kinds["router"] {
		t.Fatalf("network availability zones: %v", zones)
	}
	if z := strings.TrimSpace(openstack(t, alice, "availability", "zone", "list", "--compute", "-f", "value", "-c", "Zone Name")); z != "nova" {
		t.Fatalf("compute zones %q", z)
	}
	// A node an aggregate puts in another zone is there for Neutron too.
	host := strings.TrimSpace(openstack(t, admin, "compute", "service", "list", "--service", "nova-compute", "-f", "value", "-c", "Host"))
	openstack(t, admin, "aggregate", "create", "--zone", "az9", "agg9")
	openstack(t, admin, "aggregate", "add", "host", "agg9", host)
	if z := strings.TrimSpace(openstack(t, alice, "availability", "zone", "list", "--network", "-f", "value", "-c", "Zone Name")); z != "az9\naz9" {
		t.Fatalf("network zones with the node in az9: %q", z)
	}
	openstack(t, alice, "network", "create", "--availability-zone-hint", "az9", "hinted9")
	if out, err := openstackErr(alice, "network", "create", "--availability-zone-hint", "nova", "hinted"); err == nil || !strings.Contains(out, "nova") {
		t.Fatalf("a hint of a zone no node is in: %v\n%s", err, out)
	}
	openstack(t, admin, "aggregate", "remove", "host", "agg9", host)
	openstack(t, admin, "aggregate", "delete", "agg9")
	openstack(t, alice, "network", "delete", "hinted9")
	openstack(t, alice, "network", "create", "--availability-zone-hint", "nova", "hinted")
	if out, err := openstackErr(alice, "network", "create", "--availability-zone-hint", "mars", "unhinted"); err == nil || !strings.Contains(out, "mars") {
		t.Fatalf("a hint of no zone: %v\n%s", err, out)
	}
	openstack(t, alice, "network", "delete", "hinted")

	// alice's project has no network: --nic auto allocates its topology
	// and the guest gets its address there.
	openstack(t, alice, "--os-compute-api-version", "2.37", "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--nic", "auto", "--wait", "autovm")
	vm := showServer(t, alice, "autovm")
	if _, ok := vm.Addresses["auto_allocated_network"]; vm.Status != "ACTIVE" || !ok || len(vm.Addresses) != 1 {
		t.Fatalf("server on auto network: %+v", vm)
	}
	addr := firstIP(t, vm)
	if !strings.HasPrefix(addr, "10.100.0.") {
		t.Fatalf("server's address %s is not of the default pool", addr)
	}
	waitConsole(t, alice, "autovm", 5*time.Minute, "RACKSTACK-TEST-IMAGE: ready", "RACKSTACK-TEST-IMAGE: ip="+addr)

	// The topology is the one the server is on, and the same every time.
	netID := strings.TrimSpace(openstack(t, alice, "network", "show", "auto_allocated_network", "-f", "value", "-c", "id"))
	for i := 0; i < 2; i++ {
		out, err := topology(alice, "create", "-f", "value", "-c", "id")
		if err != nil || strings.TrimSpace(out) != netID {
			t.Fatalf("topology create: %v %q, want %s", err, out, netID)
		}
	}
	if gw := openstack(t, alice, "router", "show", "auto_allocated_router", "-f", "json", "-c", "external_gateway_info"); !strings.Contains(gw, strings.TrimSpace(openstack(t, admin, "network", "show", "public", "-f", "value", "-c", "id"))) {
		t.Fatalf("auto router's gateway: %s", gw)
	}
	// Another member may not act for alice's project; the admin may.
	demo := strings.TrimSpace(openstack(t, admin, "project", "show", "demo", "-f", "value", "-c", "id"))
	if out, err := topology(admin, "create", "--project", demo, "-f", "value", "-c", "id"); err != nil || strings.TrimSpace(out) != netID {
		t.Fatalf("admin's topology create for demo: %v %q", err, out)
	}

	// While the server is on it, the topology stays whole; then it goes.
	if out, err := topology(alice, "delete"); err == nil {
		t.Fatalf("topology deleted under a server:\n%s", out)
	}
	if _, err := openstackErr(alice, "network", "show", netID); err != nil {
		t.Fatalf("a refused delete took the network: %v", err)
	}
	openstack(t, alice, "server", "delete", "--wait", "autovm")
	if out, err := topology(alice, "delete"); err != nil {
		t.Fatalf("topology delete: %v\n%s", err, out)
	}
	if nets := openstack(t, alice, "network", "list", "-f", "value", "-c", "Name"); strings.Contains(nets, "auto_allocated_network") {
		t.Fatalf("network left after the topology's delete:\n%s", nets)
	}
	if rs := openstack(t, alice, "router", "list", "-f", "value", "-c", "Name"); strings.Contains(rs, "auto_allocated_router") {
		t.Fatalf("router left after the topology's delete:\n%s", rs)
	}
}
