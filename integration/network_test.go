//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netns"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/testenv"
)

// netns names are short: interface and namespace names are bounded.
func nsName(role string) string { return fmt.Sprintf("rs%d%s", os.Getpid()%100000, role) }

// ip runs iproute2 and fails the test on error.
func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// dataplaneRackd starts a one-node cloud named name with its dataplane
// on, pinned in a BPF directory of this process (returned, removed after
// the test), and a public network 172.24.9.0/24; it returns the node, the
// directory, the cloud's credentials and the admin's environment. extra
// are more rackd flags (compute, disks).
func dataplaneRackd(t *testing.T, name string, extra ...string) (*rackd, string, map[string]string, []string) {
	t.Helper()
	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-%s%d", name, os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n := newRackd(t, name, append([]string{"--dataplane", "on", "--bpf-dir", bpfDir, "--s3-listen", "off", "--public", "172.24.9.0/24"}, extra...)...)
	n.start("--bootstrap")
	n.waitHealthy()
	creds := openrc(t, n.dataDir)
	return n, bpfDir, creds, osEnv(creds, n)
}

// projectMember makes project and user, a member of it with password,
// and returns the user's environment.
func projectMember(t *testing.T, creds map[string]string, n *rackd, admin []string, project, user, password string) []string {
	t.Helper()
	openstack(t, admin, "project", "create", project)
	openstack(t, admin, "user", "create", "--project", project, "--password", password, user)
	openstack(t, admin, "role", "add", "--project", project, "--user", user, "member")
	return userEnv(creds, n, user, password, project)
}

// inOwnNetns runs the calling test again, in a network namespace made
// for it (role names it) and removed after, and reports true in this
// process: the test then returns, its outcome the run's in the
// namespace, whose log it shows. There env names the namespace, and
// inOwnNetns reports false: the test goes on. extra are more flags for
// the run.
func inOwnNetns(t *testing.T, env, role string, extra ...string) bool {
	t.Helper()
	if os.Getenv(env) != "" {
		return false
	}
	ns := nsName(role)
	addNetns(t, ns)
	args := append([]string{"netns", "exec", ns, os.Args[0], "-test.run", "^" + t.Name() + "$", "-test.v", "-test.count=1"}, extra...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), env+"="+ns, "RACKSTACK_BIN="+binDir)
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns, out)
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s in its namespace: %v", t.Name(), err)
	}
	return true
}

// addNetns creates a namespace with its loopback up and removes it when
// the test ends.
func addNetns(t *testing.T, name string) string {
	t.Helper()
	exec.Command("ip", "netns", "del", name).Run()
	ip(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ip(t, "-n", name, "link", "set", "lo", "up")
	return "/run/netns/" + name
}

// inNS runs a command inside a namespace, bounded by timeout.
func inNS(ns string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...).CombinedOutput()
	return string(out), err
}

// pings reports whether one echo from ns to addr comes back within a second.
func pings(ns, addr string) bool {
	_, err := inNS(ns, 3*time.Second, "ping", "-c", "1", "-W", "1", addr)
	return err == nil
}

// guest is a network namespace standing in for a VM: eth0 in it is the
// peer of the port's device on its node.
type guest struct {
	ns     string
	portID string
	mac    string
	ip     string // from DHCP
}

// plug creates the port's device on node (named as Nova names taps) with
// the guest's eth0 at its other end, carrying the port's MAC.
func plug(t *testing.T, nodeNS, guestNS, portID, mac string) *guest {
	t.Helper()
	addNetns(t, guestNS)
	dev := dataplane.DeviceName(portID)
	ip(t, "-n", nodeNS, "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", guestNS)
	ip(t, "-n", guestNS, "link", "set", "eth0", "address", mac, "up")
	ip(t, "-n", nodeNS, "link", "set", dev, "up")
	return &guest{ns: guestNS, portID: portID, mac: mac}
}

// dhcp asks for an address from inside the guest with a real DHCP client
// (DISCOVER, OFFER, REQUEST, ACK) and configures it on eth0.
func (g *guest) dhcp(t *testing.T) {
	t.Helper()
	var addr string
	var prefix int
	err := func() error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		target, err := netns.GetFromName(g.ns)
		if err != nil {
			return err
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			return err
		}
		defer netns.Set(orig)
		c, err := nclient4.New("eth0", nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(5))
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		lease, err := c.Request(ctx)
		if err != nil {
			return err
		}
		ones, _ := lease.ACK.SubnetMask().Size()
		addr, prefix = lease.ACK.YourIPAddr.String(), ones
		return nil
	}()
	if err != nil {
		t.Fatalf("DHCP in %s: %v", g.ns, err)
	}
	g.ip = addr
	ip(t, "-n", g.ns, "addr", "add", fmt.Sprintf("%s/%d", addr, prefix), "dev", "eth0")
}

type portInfo struct {
	ID       string `json:"id"`
	MAC      string `json:"mac_address"`
	Status   string `json:"status"`
	FixedIPs []struct {
		IP string `json:"ip_address"`
	} `json:"fixed_ips"`
}

func TestNetworking(t *testing.T) {
	testenv.RequireRoot(t, "make network namespaces and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "ip", "ping", "tcpdump"} {
		testenv.RequireCommand(t, c)
	}
	pid := os.Getpid()
	// Two "nodes": namespaces joined by a veth "wire", each rackd's
	// dataplane working in its own. A third rackd, without a dataplane,
	// keeps a quorum while n1 restarts.
	n1ns, n2ns := nsName("n1"), nsName("n2")
	n1path, n2path := addNetns(t, n1ns), addNetns(t, n2ns)
	ip(t, "-n", n1ns, "link", "add", "up0", "type", "veth", "peer", "name", "up0", "netns", n2ns)
	ip(t, "-n", n1ns, "link", "set", "up0", "up")
	ip(t, "-n", n2ns, "link", "set", "up0", "up")
	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-it%d", pid)
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	dp := func(nsPath, name string) []string {
		return []string{"--dataplane", "on", "--dataplane-netns", nsPath, "--uplink", "up0", "--bpf-dir", bpfDir + "/" + name, "--s3-listen", "off"}
	}
	n1 := newRackd(t, "n1", dp(n1path, "n1")...)
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	out, err := rackctl(t, creds, n1, "cluster", "join-token", "create", "--uses", "2", "-o", "json")
	if err != nil {
		t.Fatalf("join-token: %v %s", err, out)
	}
	var jt struct {
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(out), &jt)
	n2 := newRackd(t, "n2", append(dp(n2path, "n2"), "--join", n1.url(), "--join-token", jt.Token)...)
	n3 := newRackd(t, "n3", "--dataplane", "off", "--s3-listen", "off", "--join", n1.url(), "--join-token", jt.Token)
	n2.start()
	n3.start()
	n2.waitHealthy()
	n3.waitHealthy()

	admin := osEnv(creds, n1)
	openstack(t, admin, "project", "create", "demo")
	openstack(t, admin, "user", "create", "--project", "demo", "--password", "alice-pass-1", "alice")
	openstack(t, admin, "role", "add", "--project", "demo", "--user", "alice", "member")
	alice := osEnv(creds, n2, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")

	// Steps that do not depend on each other go at once: the CLI's
	// start-up is most of each one's time.
	// Two networks with the same addresses: only the VLANs keep them apart.
	var proj string
	inParallel(t, "networks", map[string]func(t *testing.T){
		"net1": func(t *testing.T) {
			openstack(t, alice, "network", "create", "net1")
			openstack(t, alice, "subnet", "create", "--network", "net1", "--subnet-range", "10.10.0.0/24", "sub1")
			openstack(t, alice, "subnet", "create", "--network", "net1", "--ip-version", "6", "--subnet-range", "fd10::/64", "sub1v6")
		},
		"net2": func(t *testing.T) {
			openstack(t, alice, "network", "create", "net2")
			openstack(t, alice, "subnet", "create", "--network", "net2", "--subnet-range", "10.10.0.0/24", "sub2")
			openstack(t, alice, "security", "group", "create", "locked")
			proj = strings.TrimSpace(openstack(t, admin, "project", "show", "-f", "value", "-c", "id", "demo"))
		},
	})
	// admin creates the ports (binding:host_id is an admin attribute) in
	// alice's project.
	var pa, pb, pc, pd portInfo
	port := func(p *portInfo, name, network, host string, extra ...string) func(t *testing.T) {
		return func(t *testing.T) {
			args := append([]string{"port", "create", "--network", network, "--host", host, "-f", "json", "--project", proj}, extra...)
			if err := json.Unmarshal([]byte(openstack(t, admin, append(args, name)...)), p); err != nil {
				t.Fatalf("port %s: %v", name, err)
			}
		}
	}
	inParallel(t, "ports", map[string]func(t *testing.T){
		"pa": port(&pa, "pa", "net1", "n1"),
		"pb": port(&pb, "pb", "net1", "n1", "--security-group", "locked"),
		"pc": port(&pc, "pc", "net1", "n2"),
		"pd": port(&pd, "pd", "net2", "n1", "--fixed-ip", "ip-address=10.10.0.50"),
	})

	ga := plug(t, n1ns, nsName("ga"), pa.ID, pa.MAC)
	gb := plug(t, n1ns, nsName("gb"), pb.ID, pb.MAC)
	gc := plug(t, n2ns, nsName("gc"), pc.ID, pc.MAC)
	gd := plug(t, n1ns, nsName("gd"), pd.ID, pd.MAC)

	// Each node plugs its ports and reports them ACTIVE.
	waitPorts(t, alice, []string{pa.ID, pb.ID, pc.ID, pd.ID}, "ACTIVE")

	// The guests' traffic and the subnet pools have nothing in common:
	// they go at once.
	inParallel(t, "dataplane and pools", map[string]func(t *testing.T){
		"dataplane": func(t *testing.T) {
			// DHCP: each guest gets its port's fixed IP from the node hosting it.
			for _, g := range []struct {
				g *guest
				p portInfo
			}{{ga, pa}, {gb, pb}, {gc, pc}, {gd, pd}} {
				g.g.dhcp(t)
				// net1's ports have an IPv6 address too, in either order (the
				// subnets' creation times are whole seconds): DHCP gives the IPv4.
				v4 := ""
				for _, f := range g.p.FixedIPs {
					if !strings.Contains(f.IP, ":") && v4 == "" {
						v4 = f.IP
					}
				}
				if g.g.ip != v4 {
					t.Fatalf("guest of %s got %s by DHCP, its port has %+v", g.p.ID, g.g.ip, g.p.FixedIPs)
				}
			}
			t.Logf("DHCP leases: a=%s b=%s c=%s d=%s", ga.ip, gb.ip, gc.ip, gd.ip)

			// Same network, across nodes, with the VLAN tag on the wire.
			capture := startCapture(t, n2ns, "up0")
			if !eventually(10*time.Second, func() bool { return pings(ga.ns, gc.ip) }) {
				t.Fatalf("a (n1) cannot ping c (n2) on the same network")
			}
			tags := capture()
			vlan, err := strconv.Atoi(strings.TrimSpace(openstack(t, admin, "network", "show", "net1", "-f", "value", "-c", "provider:segmentation_id")))
			if err != nil || vlan == 0 {
				t.Fatalf("net1 has no segmentation id (%v)", err)
			}
			if !strings.Contains(tags, fmt.Sprintf("vlan %d", vlan)) || !strings.Contains(tags, "ICMP echo request") {
				t.Fatalf("the wire did not carry ICMP tagged with VLAN %d; capture:\n%s", vlan, tags)
			}

			// Other network, same addresses: nothing gets through, not even ARP.
			if pings(ga.ns, gd.ip) {
				t.Fatalf("a (net1) reached d (net2)")
			}
			// b's only group has no ingress rule: a cannot reach it. A rule added
			// through the API opens it; its removal closes it to new flows.
			if pings(ga.ns, gb.ip) {
				t.Fatalf("a reached b, whose groups allow no ingress")
			}
			var rule struct {
				ID string `json:"id"`
			}
			json.Unmarshal([]byte(openstack(t, alice, "security", "group", "rule", "create", "--protocol", "icmp", "--ingress", "locked", "-f", "json")), &rule)
			added := time.Now()
			if !eventually(10*time.Second, func() bool { return pings(ga.ns, gb.ip) }) {
				t.Fatalf("the ICMP rule on b's group did not take effect")
			}
			t.Logf("rule added → first ping through: %s", time.Since(added).Round(time.Millisecond))
			openstack(t, alice, "security", "group", "rule", "delete", rule.ID)
			if !eventually(10*time.Second, func() bool { return !pings(ga.ns, gb.ip) }) {
				t.Fatalf("new pings still reach b after its rule was deleted")
			}

			// Anti-spoofing: an address the port does not own goes nowhere.
			before := dataplaneCounters(t, creds, n1, "n1")
			ip(t, "-n", ga.ns, "addr", "add", "10.10.0.99/32", "dev", "eth0")
			if _, err := inNS(ga.ns, 5*time.Second, "ping", "-c", "2", "-W", "1", "-I", "10.10.0.99", gc.ip); err == nil {
				t.Fatalf("a ping from a spoofed source reached c")
			}
			after := dataplaneCounters(t, creds, n1, "n1")
			if after["drop_spoof_ip"] <= before["drop_spoof_ip"] {
				t.Fatalf("drop_spoof_ip did not grow: %d → %d", before["drop_spoof_ip"], after["drop_spoof_ip"])
			}

			// IPv6 on net1, between guests in the default group across nodes:
			// neighbour discovery and ping pass the security groups; b's group
			// lets nothing in; a source the port does not own goes nowhere.
			v6 := func(g *guest, p portInfo) string {
				for _, f := range p.FixedIPs {
					if strings.Contains(f.IP, ":") {
						ip(t, "-n", g.ns, "addr", "add", f.IP+"/64", "dev", "eth0", "nodad")
						return f.IP
					}
				}
				t.Fatalf("port %s has no IPv6 address from sub1v6: %+v", p.ID, p.FixedIPs)
				return ""
			}
			a6, b6, c6 := v6(ga, pa), v6(gb, pb), v6(gc, pc)
			if !eventually(10*time.Second, func() bool { return pings(ga.ns, c6) }) {
				t.Fatalf("a (n1) cannot ping c (n2) over IPv6 (%s → %s)", a6, c6)
			}
			if pings(ga.ns, b6) {
				t.Fatalf("a reached b over IPv6, whose groups allow no ingress")
			}
			before = dataplaneCounters(t, creds, n1, "n1")
			ip(t, "-n", ga.ns, "addr", "add", "fd10::99/64", "dev", "eth0", "nodad")
			if _, err := inNS(ga.ns, 5*time.Second, "ping", "-c", "2", "-W", "1", "-I", "fd10::99", c6); err == nil {
				t.Fatalf("a ping from a spoofed IPv6 source reached c")
			}
			after = dataplaneCounters(t, creds, n1, "n1")
			if after["drop_spoof_ip"] <= before["drop_spoof_ip"] {
				t.Fatalf("drop_spoof_ip did not grow for IPv6: %d → %d", before["drop_spoof_ip"], after["drop_spoof_ip"])
			}
		},
		"subnet pools": func(t *testing.T) {
			// Subnets from a pool, as the openstack CLI asks for them: by prefix
			// length, the pool's default, never overlapping.
			openstack(t, alice, "subnet", "pool", "create", "--pool-prefix", "10.50.0.0/16", "--default-prefix-length", "24", "pool1")
			openstack(t, alice, "network", "create", "net3")
			for _, c := range []struct {
				name, cidr string
				extra      []string
			}{{"sub3", "10.50.0.0/26", []string{"--prefix-length", "26"}}, {"sub4", "10.50.1.0/24", nil}} {
				args := append([]string{"subnet", "create", "--network", "net3", "--subnet-pool", "pool1", "-f", "value", "-c", "cidr"}, c.extra...)
				if got := strings.TrimSpace(openstack(t, alice, append(args, c.name)...)); got != c.cidr {
					t.Errorf("subnet %s from pool1: cidr %q, want %s", c.name, got, c.cidr)
				}
			}
			// A /32 picked from the pool has Neutron's gateway, the address
			// after its first (Terraform reads none as no_gateway).
			if got := strings.Fields(openstack(t, alice, "subnet", "create", "--network", "net3", "--subnet-pool", "pool1", "--prefix-length", "32", "--no-dhcp",
				"-f", "value", "-c", "cidr", "-c", "gateway_ip", "sub32")); strings.Join(got, " ") != "10.50.0.64/32 10.50.0.65" {
				t.Errorf("a /32 from pool1: cidr and gateway %q, want 10.50.0.64/32 10.50.0.65", got)
			}
			// The admin's shared default pool serves --use-default-subnet-pool.
			openstack(t, admin, "subnet", "pool", "create", "--pool-prefix", "10.51.0.0/16", "--default-prefix-length", "24", "--share", "--default", "defpool")
			if got := strings.TrimSpace(openstack(t, alice, "subnet", "create", "--network", "net3", "--use-default-subnet-pool", "-f", "value", "-c", "cidr", "sub5")); got != "10.51.0.0/24" {
				t.Errorf("subnet sub5 from the default pool: cidr %q, want 10.51.0.0/24", got)
			}
		},
	})

	// A second rackd given n1's pins (two dev clouds with one node name
	// did this) refuses to start and names n1's rackd; n1 goes on
	// forwarding, and its /healthz shows the dataplane with no drift.
	twin := newRackd(t, "twin", dp(n1path, "n1")...)
	twin.start("--bootstrap")
	err, log := twin.waitExit(60 * time.Second)
	if err == nil || !strings.Contains(log, "pin directory in use") || !strings.Contains(log, fmt.Sprintf("pid %d", n1.cmd.Process.Pid)) {
		t.Fatalf("a second rackd on n1's pins: exit %v; log:\n%s", err, log)
	}
	if !pings(ga.ns, gc.ip) {
		t.Fatalf("a→c stopped after a second rackd tried n1's pins")
	}
	if h := healthz(t, n1); h.Dataplane == nil || h.Dataplane.DriftRepaired != 0 || h.Dataplane.PinDir != bpfDir+"/n1" {
		t.Fatalf("n1 /healthz dataplane: %+v", h.Dataplane)
	}

	// rackctl shows each node's dataplane, n2's through n1.
	show, err := rackctl(t, creds, n1, "dataplane", "show", "--node", "n2")
	if err != nil || !strings.Contains(show, pc.ID) || !strings.Contains(show, "port_in") || !strings.Contains(show, "up0") {
		t.Fatalf("rackctl dataplane show --node n2: %v\n%s", err, show)
	}
	t.Logf("rackctl dataplane show --node n2:\n%s", show)

	// Kill rackd on n1 while a pings c: the pinned programs and maps keep
	// forwarding, and the restarted rackd adopts them.
	ping := exec.Command("ip", "netns", "exec", ga.ns, "ping", "-i", "0.05", "-c", "160", "-W", "1", gc.ip)
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
	done := make(chan error, 1)
	go func() { done <- ping.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		ping.Process.Kill()
		t.Fatalf("ping did not finish")
	}
	sent, received := pingCounts(pingOut.String())
	t.Logf("ping across the rackd restart: %d sent, %d received; missing icmp_seq %v", sent, received, missingSeqs(pingOut.String(), sent))
	if sent < 150 || sent-received > 5 {
		t.Fatalf("ping lost %d of %d packets across the restart:\n%s", sent-received, sent, pingOut.String())
	}
	if !pings(ga.ns, gc.ip) || pings(ga.ns, gd.ip) {
		t.Fatalf("after the restart: a→c must work and a→d must not")
	}

	// A port deleted while its node's rackd is down is unplugged when it
	// comes back: start reconciles the pinned state with the replicated one.
	n2.kill()
	openstack(t, osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo"), "port", "delete", pc.ID)
	if !pings(ga.ns, gc.ip) {
		t.Fatalf("c stopped answering while n2's rackd was down: the pinned dataplane should go on forwarding")
	}
	n2.start()
	n2.waitHealthy()
	if !eventually(10*time.Second, func() bool { return !pings(ga.ns, gc.ip) }) {
		t.Fatalf("c still answers after its port was deleted")
	}
	show, _ = rackctl(t, creds, n1, "dataplane", "show", "--node", "n2")
	if strings.Contains(show, pc.ID) {
		t.Fatalf("n2 still shows deleted port %s:\n%s", pc.ID, show)
	}
}

type health struct {
	Status    string `json:"status"`
	Dataplane *struct {
		PinDir        string `json:"pin_dir"`
		DriftRepaired uint64 `json:"drift_repaired"`
	} `json:"dataplane"`
}

func healthz(t *testing.T, node *rackd) health {
	t.Helper()
	resp, err := http.Get(node.url() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	return h
}

// eventually polls f until it holds or d has passed: every 100 ms, or
// after as long as the last call took when that is longer. A poll that
// runs a client (the openstack CLI) then takes at most half a core from
// what it waits for, a guest under TCG on two cores, say.
func eventually(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		start := time.Now()
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(max(100*time.Millisecond, time.Since(start)))
	}
}

func waitPorts(t *testing.T, env []string, ids []string, status string) {
	t.Helper()
	for _, id := range ids {
		var got string
		if !eventually(20*time.Second, func() bool {
			got = strings.TrimSpace(openstack(t, env, "port", "show", "-f", "value", "-c", "status", id))
			return got == status
		}) {
			t.Fatalf("port %s is %s, want %s", id, got, status)
		}
	}
}

// startCapture runs tcpdump on a device in a namespace; the returned
// function stops it and returns what it printed.
func startCapture(t *testing.T, ns, dev string) func() string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "tcpdump", "-l", "-n", "-e", "-i", dev, "-c", "20", "vlan")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			time.Sleep(500 * time.Millisecond)
			cmd.Process.Signal(os.Interrupt)
			wait := make(chan struct{})
			go func() { cmd.Wait(); close(wait) }()
			select {
			case <-wait:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-wait
			}
		}
		return out.String()
	}
	t.Cleanup(func() { stop() })
	time.Sleep(time.Second) // tcpdump attaches
	return stop
}

func dataplaneCounters(t *testing.T, creds map[string]string, via *rackd, node string) map[string]uint64 {
	t.Helper()
	out, err := rackctl(t, creds, via, "dataplane", "show", "--node", node, "-o", "json")
	if err != nil {
		t.Fatalf("rackctl dataplane show: %v\n%s", err, out)
	}
	var st struct {
		Counters map[string]uint64 `json:"counters"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("dataplane show json: %v\n%s", err, out)
	}
	return st.Counters
}

var pingSeq = regexp.MustCompile(`icmp_seq=(\d+)`)

// missingSeqs lists the echo sequence numbers that got no reply.
func missingSeqs(out string, sent int) []int {
	got := map[int]bool{}
	for _, m := range pingSeq.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		got[n] = true
	}
	var missing []int
	for i := 1; i <= sent; i++ {
		if !got[i] {
			missing = append(missing, i)
		}
	}
	return missing
}

var pingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

func pingCounts(out string) (sent, received int) {
	m := pingStats.FindStringSubmatch(out)
	if m == nil {
		return 0, 0
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received
}
