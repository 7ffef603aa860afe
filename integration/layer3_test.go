//go:build integration

package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// l3NetnsEnv names the namespace TestLayer3 runs in, once it has
// re-executed itself there.
const l3NetnsEnv = "RACKSTACK_L3_NETNS"

// TestLayer3 is issue 13's flow on one node with TCG guests: a router
// between two subnets and the public network, vm1 reaching vm2 across
// subnets and an outside namespace through SNAT (which sees the router's
// gateway address) and fetching its metadata, the host reaching vm2 on its
// floating IP, and established TCP flows through both kinds of NAT
// outliving a kill -9 of rackd. rackd makes the public network's
// host side (172.24.4.1) and the metadata veth where it runs, so the test
// runs itself, rackd, QEMU and the CLI in a namespace of its own.
func TestLayer3(t *testing.T) {
	testenv.RequireRoot(t, "make network namespaces, taps and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage", "ip", "ping", "wget"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	if inOwnNetns(t, l3NetnsEnv, "l3") {
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
	label := createMeterLabel(t, admin)
	// The default group lets members in; the host comes in by ping, HTTP
	// and to vm2's echo (port 7000).
	openstack(t, admin, "security", "group", "rule", "create", "--protocol", "icmp", "--ingress", "default")
	openstack(t, admin, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80", "--ingress", "default")
	openstack(t, admin, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "7000", "--ingress", "default")

	// The outside: a namespace behind the external network's gateway
	// (this namespace, 172.24.4.1, routing between the two), as the
	// internet is behind a real external network's router. It sees vm1
	// only by what SNAT makes of it.
	outNS := nsName("out")
	addNetns(t, outNS)
	ip(t, "link", "add", "rsout0", "type", "veth", "peer", "name", "eth0", "netns", outNS)
	ip(t, "addr", "add", "198.51.100.1/24", "dev", "rsout0")
	ip(t, "link", "set", "rsout0", "up")
	ip(t, "-n", outNS, "addr", "add", outsideIP+"/24", "dev", "eth0")
	ip(t, "-n", outNS, "link", "set", "eth0", "up")
	ip(t, "-n", outNS, "route", "add", "default", "via", "198.51.100.1")
	if out, err := exec.Command("sysctl", "-w", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("forward in %s: %v\n%s", os.Getenv(l3NetnsEnv), err, out)
	}
	// whoami tells each caller the address it came from; hold keeps the
	// first connection vm1 opens, an echo the test talks through later.
	whoami := listenIn(t, outNS, outsideIP+":9001")
	saw := make(chan string, 8)
	go func() {
		for {
			c, err := whoami.Accept()
			if err != nil {
				return
			}
			from := c.RemoteAddr().(*net.TCPAddr).IP.String()
			fmt.Fprintf(c, "SAW=%s\n", from)
			c.Close()
			select {
			case saw <- from:
			default:
			}
		}
	}()
	hold := listenIn(t, outNS, outsideIP+":9000")
	held := make(chan net.Conn, 1)
	go func() {
		c, err := hold.Accept()
		if err == nil {
			held <- c
		}
	}()

	create := func(name string, extra ...string) serverInfo {
		args := append([]string{"server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--wait", "-f", "json"}, extra...)
		var s serverInfo
		if out := openstack(t, admin, append(args, name)...); json.Unmarshal([]byte(out), &s) != nil || s.Status != "ACTIVE" {
			t.Fatalf("server create %s:\n%s", name, out)
		}
		return s
	}
	script := func(name, text string) string {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// vm2 echoes what comes to its port 7000, for a flow through its
	// floating IP.
	create("vm2", "--network", "net2", "--user-data", script("vm2.sh", "nc -ll -p 7000 -e /bin/cat &\n"))
	vm2IP := firstIP(t, showServer(t, admin, "vm2"))
	// vm1 (net1, no floating IP) reaches vm2 through the router, the
	// outside through SNAT, the router's addresses with a 3000-byte
	// ping, and its metadata (by nc: the image's static
	// busybox wget crashes looking up "http"); then it opens the
	// connection to the outside that must outlive rackd.
	vm1 := create("vm1", "--network", "net1", "--user-data", script("vm1.sh", fmt.Sprintf(`
for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 1 %[1]s >/dev/null 2>&1 && break; sleep 1; done
ping -c 2 -W 1 %[1]s >/dev/null 2>&1 && echo L3-ROUTED-OK || echo L3-ROUTED-FAIL
ping -c 2 -W 1 %[2]s >/dev/null 2>&1 && echo L3-SNAT-OK || echo L3-SNAT-FAIL
ping -c 2 -W 2 -s 3000 10.40.1.1 >/dev/null 2>&1 && echo L3-BIGPING-GW-OK || echo L3-BIGPING-GW-FAIL
ping -c 2 -W 2 -s 3000 10.40.2.1 >/dev/null 2>&1 && echo L3-BIGPING-R2-OK || echo L3-BIGPING-R2-FAIL
echo L3-OUTSIDE-$(nc -w 5 %[2]s 9001 </dev/null)
get() { printf 'GET %%s HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' "$1" | nc -w 5 169.254.169.254 80; }
echo L3-META-ID=$(get /latest/meta-data/instance-id | tail -n 1)
echo L3-META-HOST=$(get /openstack/latest/meta_data.json | grep -o '"hostname": *"[^"]*"')
printf 'POST /openstack/latest/password HTTP/1.0\r\nHost: 169.254.169.254\r\nContent-Length: 14\r\n\r\nL3-GUEST-PASS-' | nc -w 5 169.254.169.254 80 >/dev/null
nc %[2]s 9000 -e /bin/cat &
`, vm2IP, outsideIP)))
	waitConsole(t, admin, "vm2", 4*time.Minute, "RACKSTACK-TEST-IMAGE: ready")

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

	console := waitConsole(t, admin, "vm1", 4*time.Minute, "user-data ran")
	var gw struct {
		Info struct {
			IPs []struct {
				IP string `json:"ip_address"`
			} `json:"external_fixed_ips"`
		} `json:"external_gateway_info"`
	}
	if out := openstack(t, admin, "router", "show", "r1", "-f", "json", "-c", "external_gateway_info"); json.Unmarshal([]byte(out), &gw) != nil || len(gw.Info.IPs) == 0 {
		t.Fatalf("router r1's gateway:\n%s", out)
	}
	gwIP := gw.Info.IPs[0].IP
	// A 3000-byte ping goes in fragments (the guest's kernel cuts it for
	// the network's MTU): the router answers one fragment at a time.
	for _, want := range []string{"L3-ROUTED-OK", "L3-SNAT-OK", "L3-BIGPING-GW-OK", "L3-BIGPING-R2-OK", "L3-OUTSIDE-SAW=" + gwIP, "L3-META-ID=" + vm1.ID, `L3-META-HOST="hostname":"vm1"`} {
		if !strings.Contains(console, want) {
			t.Errorf("vm1's console lacks %q:\n%s", want, console)
		}
	}
	// The owner reads what the guest posted to the metadata service
	// (Nova's server password, os-server-password).
	pw := exec.Command("/usr/bin/nova", "get-password", vm1.ID)
	pw.Env = admin
	// (The CLI may print a deprecation line first.)
	if out, err := pw.Output(); err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "\nL3-GUEST-PASS-") && strings.TrimSpace(string(out)) != "L3-GUEST-PASS-" {
		t.Errorf("nova get-password of the password vm1 posted: %v %q", err, out)
	}
	checkMeterCounts(t, n1, admin, label)
	select {
	case from := <-saw:
		if from != gwIP {
			t.Errorf("the outside saw vm1 come from %s, not the router's gateway address %s", from, gwIP)
		}
	default:
		t.Error("the outside saw no connection from vm1")
	}

	// Two established TCP flows through NAT: in to vm2's floating IP,
	// and vm1's out to the outside through SNAT.
	var inbound, outbound net.Conn
	if inbound, err = net.DialTimeout("tcp", net.JoinHostPort(fip, "7000"), 10*time.Second); err != nil {
		t.Fatalf("connect to vm2's echo on %s: %v", fip, err)
	}
	defer inbound.Close()
	select {
	case outbound = <-held:
		defer outbound.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("vm1 never connected to the outside's port 9000")
	}
	if from := outbound.RemoteAddr().(*net.TCPAddr).IP.String(); from != gwIP {
		t.Errorf("vm1's held connection comes from %s, not %s", from, gwIP)
	}
	echoes(t, "through the floating IP", inbound, "before")
	echoes(t, "through SNAT", outbound, "before")

	// kill -9 rackd while the host pings vm2's floating IP and both flows
	// stay open: the pinned programs and maps go on translating, and the
	// new rackd adopts them.
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
	echoes(t, "through the floating IP, after the restart", inbound, "after")
	echoes(t, "through SNAT, after the restart", outbound, "after")

	if agents := openstack(t, admin, "network", "agent", "list", "-f", "value", "-c", "Agent Type"); !strings.Contains(agents, "L3 agent") || !strings.Contains(agents, "Metadata agent") {
		t.Errorf("agents:\n%s", agents)
	}
}

// outsideIP is the outside namespace's address, behind the external
// network's gateway.
const outsideIP = "198.51.100.2"

// listenIn listens on addr in the namespace ns; the socket stays there
// whichever thread accepts on it.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	err := func() error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			return err
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			return err
		}
		defer netns.Set(orig)
		l, err = net.Listen("tcp", addr)
		return err
	}()
	if err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// echoes writes a line to c and wants it back within 20 seconds.
func echoes(t *testing.T, what string, c net.Conn, line string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		t.Fatalf("echo %s: write: %v", what, err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(got) != line {
		t.Fatalf("echo %s: got %q, %v; want %q", what, got, err, line)
	}
}
