//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestAggregates drives Nova's host aggregates with the openstack CLI on
// a two-node cluster: a1 (the API, no compute) and a2 (compute, QEMU).
// Both are hypervisors, and with nothing else to choose by the scheduler
// takes a1 (equal nodes, the first by name); a server asking for the
// zone of an aggregate holding a2 must land on a2, and boot there.
func TestAggregates(t *testing.T) {
	testenv.RequireRoot(t, "make taps and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-agg%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })

	n1 := newRackd(t, "a1", "--disk", t.TempDir(), "--s3-listen", "off")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	out, err := rackctl(t, creds, n1, "cluster", "join-token", "create", "--uses", "1", "-o", "json")
	if err != nil {
		t.Fatalf("join-token: %v %s", err, out)
	}
	var jt struct {
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(out), &jt)
	n2 := newRackd(t, "a2", "--join", n1.url(), "--join-token", jt.Token, "--s3-listen", "off",
		"--dataplane", "on", "--bpf-dir", bpfDir, "--compute", "on", "--accel", "tcg")
	n2.start()
	n2.waitHealthy()
	// Guests outlive rackd: the purge after the kill stops them.
	t.Cleanup(func() {
		n2.kill()
		if out, err := exec.Command(filepath.Join(binDir, "rackd"), "dev", "--purge", "--name", "a2", "--data-dir", n2.dataDir, "--bpf-dir", bpfDir).CombinedOutput(); err != nil {
			t.Errorf("rackd dev --purge: %v\n%s", err, out)
		}
	})
	admin := osEnv(creds, n1)
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	deleteServersAtCleanup(t, admin)
	setupTestimgAndAlice(t, admin, img)
	openstack(t, alice, "network", "create", "net1")
	openstack(t, alice, "subnet", "create", "--network", "net1", "--subnet-range", "10.40.0.0/24", "sub1")

	// create, list, show, set, unset, add host.
	var agg struct {
		ID    int    `json:"id"`
		Name  string `json:"name"`
		AZ    string `json:"availability_zone"`
		Hosts any    `json:"hosts"`
		Props any    `json:"properties"`
	}
	decode := func(out string) {
		t.Helper()
		agg.Hosts, agg.Props = nil, nil
		if err := json.Unmarshal([]byte(out), &agg); err != nil {
			t.Fatalf("aggregate JSON: %v\n%s", err, out)
		}
	}
	decode(openstack(t, admin, "aggregate", "create", "--zone", "az1", "-f", "json", "agg1"))
	if agg.Name != "agg1" || agg.AZ != "az1" || agg.ID == 0 {
		t.Fatalf("aggregate create: %+v", agg)
	}
	if out := openstack(t, admin, "aggregate", "list", "-f", "value", "-c", "Name", "-c", "Availability Zone"); !strings.Contains(out, "agg1 az1") {
		t.Fatalf("aggregate list lacks agg1 in az1:\n%s", out)
	}
	openstack(t, admin, "aggregate", "add", "host", "agg1", "a2")
	openstack(t, admin, "aggregate", "set", "--property", "ssd=true", "--name", "agg-one", "agg1")
	decode(openstack(t, admin, "aggregate", "show", "-f", "json", "agg-one"))
	if !strings.Contains(fmt.Sprint(agg.Hosts), "a2") || !strings.Contains(fmt.Sprint(agg.Props), "ssd") || agg.AZ != "az1" {
		t.Fatalf("aggregate show after add host and set: %+v", agg)
	}
	openstack(t, admin, "aggregate", "unset", "--property", "ssd", "agg-one")
	decode(openstack(t, admin, "aggregate", "show", "-f", "json", "agg-one"))
	if strings.Contains(fmt.Sprint(agg.Props), "ssd") || agg.AZ != "az1" {
		t.Fatalf("aggregate show after unset: %+v", agg)
	}

	// a2 is in az1 for every view of the zones.
	zones := openstack(t, admin, "availability", "zone", "list", "--compute", "--long", "-f", "value", "-c", "Zone Name", "-c", "Host Name")
	if !slices.Contains(strings.Split(strings.TrimSpace(zones), "\n"), "az1 a2") || !strings.Contains(zones, "nova a1") {
		t.Fatalf("availability zone list --compute --long:\n%s", zones)
	}
	if out := openstack(t, admin, "compute", "service", "list", "--service", "nova-compute", "-f", "value", "-c", "Host", "-c", "Zone"); !strings.Contains(out, "a2 az1") {
		t.Fatalf("compute service list:\n%s", out)
	}
	if out := openstack(t, admin, "hypervisor", "show", "-f", "value", "-c", "aggregates", "a2"); !strings.Contains(out, "agg-one") {
		t.Fatalf("hypervisor show a2 lacks its aggregate: %s", out)
	}
	// The host's uptime line, as uptime(1) prints it on a2 (the CLI
	// splits it; at 2.88 it is in the hypervisor itself, and a null
	// there broke this client).
	for _, v := range []string{"2.87", "2.88"} {
		out := openstack(t, admin, "--os-compute-api-version", v, "hypervisor", "show", "-f", "json", "-c", "uptime", "-c", "load_average", "a2")
		if !strings.Contains(out, `"load_average": "`) || strings.Contains(out, `"uptime": null`) {
			t.Errorf("hypervisor show at %s: no uptime line:\n%s", v, out)
		}
	}
	if out := openstack(t, alice, "availability", "zone", "list", "--compute", "-f", "value", "-c", "Zone Name"); !strings.Contains(out, "az1") {
		t.Fatalf("a member's zone list lacks az1:\n%s", out)
	}

	// A server asking for az1 lands on a2 and boots there.
	out = openstack(t, alice, "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--network", "net1",
		"--availability-zone", "az1", "--wait", "-f", "json", "vm-az1")
	var vm struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		AZ     string `json:"OS-EXT-AZ:availability_zone"`
	}
	if err := json.Unmarshal([]byte(out), &vm); err != nil {
		t.Fatalf("server create: %v\n%s", err, out)
	}
	if host := showServer(t, admin, vm.ID).Host; vm.Status != "ACTIVE" || vm.AZ != "az1" || host != "a2" {
		t.Fatalf("server in az1: status %s zone %q host %q", vm.Status, vm.AZ, host)
	}
	// Asking no zone, a server may go anywhere that runs servers: a2,
	// never a1, which runs no compute (the scheduler's first pick among
	// equals, by name, before nodes said what they run).
	anyVM := strings.TrimSpace(openstack(t, alice, "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--network", "net1", "-f", "value", "-c", "id", "vm-any"))
	if host := showServer(t, admin, anyVM).Host; host != "a2" {
		t.Fatalf("a server asking no zone was placed on %q, not a2 (a1 runs no compute)", host)
	}
	openstack(t, alice, "server", "delete", "--wait", anyVM)

	// Bad input: a non-zero exit and Nova's reason.
	for _, c := range []struct {
		env  []string
		args []string
		want string
	}{
		{admin, []string{"aggregate", "create", "agg-one"}, "Aggregate agg-one already exists"},
		{admin, []string{"aggregate", "add", "host", "agg-one", "no-such-node"}, "Compute host no-such-node could not be found"},
		{admin, []string{"aggregate", "add", "host", "agg-one", "a2"}, "already has host a2"},
		{admin, []string{"aggregate", "remove", "host", "agg-one", "a1"}, "Cannot remove host a1"},
		{admin, []string{"aggregate", "delete", "agg-one"}, "not empty"},
		{admin, []string{"aggregate", "set", "--zone", "az9", "agg-one"}, "contain instances in this zone"},
		{admin, []string{"aggregate", "create", "--zone", "bad:zone", "agg-bad"}, "availability_zone"},
		{alice, []string{"aggregate", "list"}, "os_compute_api:os-aggregates:index"},
		{alice, []string{"server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--network", "net1", "--availability-zone", "no-such-zone", "vm-bad"}, "availability zone is not available"},
	} {
		if out, err := openstackErr(c.env, c.args...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("openstack %s: err=%v, want a failure naming %q:\n%s", strings.Join(c.args, " "), err, c.want, out)
		}
	}
	// a2 cannot be in a second zone.
	openstack(t, admin, "aggregate", "create", "--zone", "az2", "agg2")
	if out, err := openstackErr(admin, "aggregate", "add", "host", "agg2", "a2"); err == nil || !strings.Contains(out, "One or more hosts already in availability zone(s) ['az1']") {
		t.Errorf("a2 into a second zone: err=%v\n%s", err, out)
	}

	// Taken apart: the server keeps its zone; a2 is back in nova.
	openstack(t, admin, "aggregate", "remove", "host", "agg-one", "a2")
	openstack(t, admin, "aggregate", "delete", "agg-one", "agg2")
	if out := openstack(t, admin, "aggregate", "list", "-f", "value", "-c", "Name"); strings.TrimSpace(out) != "" {
		t.Fatalf("aggregates left: %s", out)
	}
	var after struct {
		AZ string `json:"OS-EXT-AZ:availability_zone"`
	}
	json.Unmarshal([]byte(openstack(t, alice, "server", "show", "-f", "json", vm.ID)), &after)
	if after.AZ != "az1" {
		t.Fatalf("server's zone after its host left the aggregate: %q", after.AZ)
	}
	if zones := openstack(t, admin, "availability", "zone", "list", "--compute", "--long", "-f", "value", "-c", "Zone Name", "-c", "Host Name"); !strings.Contains(zones, "nova a2") {
		t.Fatalf("a2 not back in nova:\n%s", zones)
	}
	openstack(t, alice, "server", "delete", "--wait", vm.ID)
}
