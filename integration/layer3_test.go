//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// l3NetnsEnv names the namespace TestLayer3 runs in, once it has
// re-executed itself there.
const l3NetnsEnv = "RACKSTACK_L3_NETNS"

// TestLayer3 is issue 13's flow on one node with TCG guests: a router
// between two subnets and the public network, vm1 reaching vm2 across
// subnets and the outside through SNAT and fetching its metadata, and the
// host reaching vm2 on its floating IP. rackd makes the public network's
// host side (172.24.4.1) and the metadata veth where it runs, so the test
// runs itself, rackd, QEMU and the CLI in a namespace of its own.
func TestLayer3(t *testing.T) {
	testenv.RequireRoot(t, "make network namespaces, taps and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage", "ip", "ping", "wget"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	if os.Getenv(l3NetnsEnv) == "" {
		ns := nsName("l3")
		addNetns(t, ns)
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^TestLayer3$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), l3NetnsEnv+"="+ns, "RACKSTACK_BIN="+binDir)
		out, err := cmd.CombinedOutput()
		t.Logf("in namespace %s:\n%s", ns, out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestLayer3") {
			t.Fatalf("TestLayer3 in its namespace: %v", err)
		}
		return
	}

	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-l3%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n1 := newRackd(t, "l3", "--disk", t.TempDir(), "--dataplane", "on", "--bpf-dir", bpfDir, "--compute", "on", "--accel", "tcg",
		"--s3-listen", "off", "--public", "172.24.4.0/24")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	// Guests outlive rackd by design: delete them while rackd still runs,
	// or two TCG guests would spin through every later test. Each start
	// registers the stop of that rackd, so the deletion is registered
	// after each start, to run before that stop; the first to succeed ends it.
	deleted := false
	deleteGuests := func() {
		if deleted {
			return
		}
		out, err := openstackErr(admin, "server", "delete", "--wait", "vm1", "vm2")
		if err != nil && !strings.Contains(out, "No server with a name or ID") {
			t.Logf("deleting the guests: %v\n%s", err, out)
			return
		}
		deleted = true
	}
	t.Cleanup(deleteGuests)
	openstack(t, admin, "image", "create", "--file", img, "--disk-format", "qcow2", "--container-format", "bare", "--public", "testimg")
	openstack(t, admin, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "m1.tiny")
	// The public network is made once the admin exists.
	if !eventually(30*time.Second, func() bool { _, err := openstackErr(admin, "network", "show", "public"); return err == nil }) {
		t.Fatal("no network public")
	}
	openstack(t, admin, "network", "create", "net1")
	openstack(t, admin, "subnet", "create", "--network", "net1", "--subnet-range", "10.40.1.0/24", "sub1")
	openstack(t, admin, "network", "create", "net2")
	openstack(t, admin, "subnet", "create", "--network", "net2", "--subnet-range", "10.40.2.0/24", "sub2")
	openstack(t, admin, "router", "create", "r1")
	openstack(t, admin, "router", "add", "subnet", "r1", "sub1")
	openstack(t, admin, "router", "add", "subnet", "r1", "sub2")
	openstack(t, admin, "router", "set", "--external-gateway", "public", "r1")
	if st := strings.TrimSpace(openstack(t, admin, "router", "show", "r1", "-f", "value", "-c", "status")); st != "ACTIVE" {
		t.Fatalf("router r1 is %s", st)
	}
	// The default group lets members in; the host comes in by ping and HTTP.
	openstack(t, admin, "security", "group", "rule", "create", "--protocol", "icmp", "--ingress", "default")
	openstack(t, admin, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80", "--ingress", "default")

	create := func(name string, extra ...string) serverInfo {
		args := append([]string{"server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--wait", "-f", "json"}, extra...)
		var s serverInfo
		if out := openstack(t, admin, append(args, name)...); json.Unmarshal([]byte(out), &s) != nil || s.Status != "ACTIVE" {
			t.Fatalf("server create %s:\n%s", name, out)
		}
		return s
	}
	create("vm2", "--network", "net2")
	vm2IP := firstIP(t, showServer(t, admin, "vm2"))
	waitConsole(t, admin, "vm2", 3*time.Minute, "RACKSTACK-TEST-IMAGE: ready")

	// The host reaches vm2 on its floating IP.
	fip := strings.TrimSpace(openstack(t, admin, "floating", "ip", "create", "public", "-f", "value", "-c", "floating_ip_address"))
	openstack(t, admin, "server", "add", "floating", "ip", "vm2", fip)
	if !eventually(30*time.Second, func() bool {
		return strings.TrimSpace(openstack(t, admin, "floating", "ip", "show", fip, "-f", "value", "-c", "status")) == "ACTIVE"
	}) {
		t.Fatalf("floating IP %s never became ACTIVE", fip)
	}
	if !eventually(30*time.Second, func() bool { return pings(os.Getenv(l3NetnsEnv), fip) }) {
		t.Fatalf("the host cannot ping vm2 on %s", fip)
	}
	page, err := exec.Command("wget", "-q", "-T", "5", "-O", "-", "http://"+fip+"/").CombinedOutput()
	if err != nil || strings.TrimSpace(string(page)) != "vm2" {
		t.Fatalf("http://%s/: %v %q", fip, err, page)
	}

	// kill -9 rackd while the host pings vm2's floating IP: the pinned
	// programs and maps go on translating, and the new rackd adopts them.
	ping := exec.Command("ping", "-i", "0.05", "-c", "160", "-W", "1", fip)
	var pingOut strings.Builder
	ping.Stdout, ping.Stderr = &pingOut, &pingOut
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	n1.kill()
	time.Sleep(2 * time.Second)
	n1.start()
	n1.waitHealthy()
	t.Cleanup(deleteGuests)
	ping.Wait()
	sent, received := pingCounts(pingOut.String())
	t.Logf("ping to the floating IP across a rackd kill -9: %d sent, %d received", sent, received)
	if sent < 150 || sent-received > 5 {
		t.Fatalf("ping to %s lost %d of %d across the restart:\n%s", fip, sent-received, sent, pingOut.String())
	}

	// vm1 (net1, no floating IP) reaches vm2 through the router, the
	// outside (the host's 172.24.4.1) through SNAT, and its metadata (by
	// nc: the image's static busybox wget crashes looking up "http").
	ud := filepath.Join(t.TempDir(), "ud.sh")
	os.WriteFile(ud, []byte(fmt.Sprintf(`#!/bin/sh
for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 1 %s >/dev/null 2>&1 && break; sleep 1; done
ping -c 2 -W 1 %s >/dev/null 2>&1 && echo L3-ROUTED-OK || echo L3-ROUTED-FAIL
ping -c 2 -W 1 172.24.4.1 >/dev/null 2>&1 && echo L3-SNAT-OK || echo L3-SNAT-FAIL
get() { printf 'GET %%s HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' "$1" | nc -w 5 169.254.169.254 80; }
echo L3-META-ID=$(get /latest/meta-data/instance-id | tail -n 1)
echo L3-META-HOST=$(get /openstack/latest/meta_data.json | grep -o '"hostname": *"[^"]*"')
`, vm2IP, vm2IP)), 0o644)
	vm1 := create("vm1", "--network", "net1", "--user-data", ud)
	console := waitConsole(t, admin, "vm1", 4*time.Minute, "user-data ran")
	for _, want := range []string{"L3-ROUTED-OK", "L3-SNAT-OK", "L3-META-ID=" + vm1.ID, `L3-META-HOST="hostname":"vm1"`} {
		if !strings.Contains(console, want) {
			t.Errorf("vm1's console lacks %q:\n%s", want, console)
		}
	}
	if agents := openstack(t, admin, "network", "agent", "list", "-f", "value", "-c", "Agent Type"); !strings.Contains(agents, "L3 agent") || !strings.Contains(agents, "Metadata agent") {
		t.Errorf("agents:\n%s", agents)
	}
}
