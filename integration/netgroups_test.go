//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// connectsIn says whether a TCP connection from namespace ns to addr is
// made within two seconds.
func connectsIn(ns, addr string) bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return false
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return false
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return false
	}
	defer netns.Set(orig)
	c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// TestNetGroups drives address groups, stateless security groups and
// subnet service types through the openstack CLI against one rackd whose
// dataplane enforces them on guests in namespaces:
//   - a rule whose remote is an address group admits a guest only while
//     the group holds its address (address group set / unset), and the
//     group cannot be deleted while the rule names it;
//   - a guest in a stateless group reaches a server only once a rule lets
//     the replies in, while one in a stateful group with the same rules
//     does at once; stateful cannot change while a port uses the group;
//   - a port of device owner compute:nova gets its address from the
//     subnet of that service type, another port from the plain subnet;
//   - bad input exits non-zero and names the field.
func TestNetGroups(t *testing.T) {
	testenv.RequireRoot(t, "make network namespaces and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "ip"} {
		testenv.RequireCommand(t, c)
	}
	nodeNS := nsName("ngn")
	nodePath := addNetns(t, nodeNS)
	ip(t, "-n", nodeNS, "link", "add", "up0", "type", "veth", "peer", "name", "up0p")
	ip(t, "-n", nodeNS, "link", "set", "up0", "up")
	ip(t, "-n", nodeNS, "link", "set", "up0p", "up")
	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-ng%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n1 := newRackd(t, "ng1", "--dataplane", "on", "--dataplane-netns", nodePath, "--uplink", "up0", "--bpf-dir", bpfDir, "--s3-listen", "off")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	openstack(t, admin, "project", "create", "ng")
	openstack(t, admin, "user", "create", "--project", "ng", "--password", "ng-pass-1", "nguser")
	openstack(t, admin, "role", "add", "--project", "ng", "--user", "nguser", "member")
	user := osEnv(creds, n1, "OS_USERNAME=nguser", "OS_PASSWORD=ng-pass-1", "OS_PROJECT_NAME=ng")
	proj := strings.TrimSpace(openstack(t, admin, "project", "show", "-f", "value", "-c", "id", "ng"))
	idOf := func(out string) string { return strings.TrimSpace(out) }
	fails := func(t *testing.T, what string, env []string, want string, args ...string) {
		t.Helper()
		out, err := openstackErr(env, args...)
		if err == nil {
			t.Errorf("%s: openstack %s exited 0:\n%s", what, strings.Join(args, " "), out)
			return
		}
		if want != "" && !strings.Contains(out, want) {
			t.Errorf("%s: openstack %s said %q, want it to name %q", what, strings.Join(args, " "), out, want)
		}
	}

	openstack(t, user, "network", "create", "ngnet")
	openstack(t, user, "subnet", "create", "--network", "ngnet", "--subnet-range", "10.30.0.0/24", "plain")
	fails(t, "service type of no device owner", user, "nova", "subnet", "create", "--network", "ngnet", "--subnet-range", "10.31.0.0/24", "--service-type", "nova", "bad")
	novaSub := idOf(openstack(t, user, "subnet", "create", "-f", "value", "-c", "id", "--network", "ngnet", "--subnet-range", "10.31.0.0/24", "--service-type", "compute:nova", "novasub"))
	if got := openstack(t, user, "subnet", "show", "-f", "value", "-c", "service_types", novaSub); !strings.Contains(got, "compute:nova") {
		t.Errorf("service_types shown %q", got)
	}

	t.Run("service types", func(t *testing.T) {
		addrOf := func(extra ...string) string {
			var p portInfo
			args := append([]string{"port", "create", "--network", "ngnet", "-f", "json", "--project", proj}, extra...)
			if err := json.Unmarshal([]byte(openstack(t, admin, append(args, "st"+fmt.Sprint(len(extra)))...)), &p); err != nil || len(p.FixedIPs) != 1 {
				t.Fatalf("port %v: %v %+v", extra, err, p)
			}
			return p.FixedIPs[0].IP
		}
		if a := addrOf("--device-owner", "compute:nova"); !strings.HasPrefix(a, "10.31.0.") {
			t.Errorf("compute:nova port got %s, want one of 10.31.0.0/24", a)
		}
		if a := addrOf(); !strings.HasPrefix(a, "10.30.0.") {
			t.Errorf("plain port got %s, want one of 10.30.0.0/24", a)
		}
		fails(t, "a plain port on the service subnet", admin, novaSub, "port", "create", "--network", "ngnet", "--project", proj, "--fixed-ip", "subnet="+novaSub, "stbad")
	})

	// Guests: a serves TCP 8080 to anyone (group srv); e lets 8080 in
	// only from address group office; s (stateless) and f (stateful)
	// have the same rules: out anywhere, nothing in.
	openstack(t, user, "security", "group", "create", "srv")
	openstack(t, user, "security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--dst-port", "8080", "--remote-ip", "0.0.0.0/0", "srv")
	openstack(t, user, "address", "group", "create", "office")
	// The CLI refuses this one itself; the API's own answer is checked
	// below.
	fails(t, "a bad address", user, "10.0.0.0/33", "address", "group", "create", "--address", "10.0.0.0/33", "badag")
	tok := token(t, n1, "nguser", "ng-pass-1", "ng")
	var agErr map[string]map[string]any
	if code, err := call("POST", n1.url()+"/network/v2.0/address-groups", tok, map[string]any{"address_group": map[string]any{
		"name": "badag", "addresses": []string{"10.0.0.0/33"}}}, &agErr); err != nil || code != 400 || !strings.Contains(fmt.Sprint(agErr["NeutronError"]["message"]), "addresses") {
		t.Errorf("address group with a bad address: %d %v %v", code, err, agErr)
	}
	openstack(t, user, "security", "group", "create", "guarded")
	agRule := idOf(openstack(t, user, "security", "group", "rule", "create", "-f", "value", "-c", "id", "--ingress", "--protocol", "tcp", "--dst-port", "8080", "--remote-address-group", "office", "guarded"))
	if got := openstack(t, user, "security", "group", "rule", "show", "-f", "value", "-c", "remote_address_group_id", agRule); idOf(got) == "" || idOf(got) == "None" {
		t.Errorf("rule's remote_address_group_id %q", got)
	}
	openstack(t, user, "security", "group", "create", "--stateless", "sl")
	if got := idOf(openstack(t, user, "security", "group", "show", "-f", "value", "-c", "stateful", "sl")); got != "False" {
		t.Errorf("sl stateful %q, want False", got)
	}
	openstack(t, user, "security", "group", "create", "sf")

	type gport struct {
		name, group string
		p           portInfo
		g           *guest
	}
	guests := []*gport{{name: "a", group: "srv"}, {name: "e", group: "guarded"}, {name: "s", group: "sl"}, {name: "f", group: "sf"}}
	for _, gp := range guests {
		out := openstack(t, admin, "port", "create", "--network", "ngnet", "--host", "ng1", "-f", "json", "--project", proj,
			"--fixed-ip", "subnet=plain", "--security-group", gp.group, "ng"+gp.name)
		if err := json.Unmarshal([]byte(out), &gp.p); err != nil {
			t.Fatal(err)
		}
		gp.g = plug(t, nodeNS, nsName("ng"+gp.name), gp.p.ID, gp.p.MAC)
		ip(t, "-n", gp.g.ns, "addr", "add", gp.p.FixedIPs[0].IP+"/24", "dev", "eth0")
	}
	a, e, s, f := guests[0], guests[1], guests[2], guests[3]
	waitPorts(t, user, []string{a.p.ID, e.p.ID, s.p.ID, f.p.ID}, "ACTIVE")
	srvA := a.p.FixedIPs[0].IP + ":8080"
	srvE := e.p.FixedIPs[0].IP + ":8080"
	go acceptAll(listenIn(t, a.g.ns, srvA))
	go acceptAll(listenIn(t, e.g.ns, srvE))

	t.Run("address group", func(t *testing.T) {
		if !eventually(20*time.Second, func() bool { return connectsIn(f.g.ns, srvA) }) {
			t.Fatal("f never reached a:8080: the dataplane is not forwarding")
		}
		if connectsIn(a.g.ns, srvE) {
			t.Fatal("a reached e:8080 while office is empty")
		}
		openstack(t, user, "address", "group", "set", "--address", a.p.FixedIPs[0].IP, "office")
		if !eventually(20*time.Second, func() bool { return connectsIn(a.g.ns, srvE) }) {
			t.Fatal("a never reached e:8080 with its address in office")
		}
		if connectsIn(f.g.ns, srvE) {
			t.Error("f reached e:8080: only a's address is in office")
		}
		fails(t, "an address office already has", user, "already exist", "address", "group", "set", "--address", a.p.FixedIPs[0].IP+"/32", "office")
		fails(t, "deleting office while a rule uses it", user, "in use", "address", "group", "delete", "office")
		openstack(t, user, "address", "group", "unset", "--address", a.p.FixedIPs[0].IP, "office")
		if !eventually(20*time.Second, func() bool { return !connectsIn(a.g.ns, srvE) }) {
			t.Fatal("a still reaches e:8080 after its address left office")
		}
		fails(t, "removing an address office has not", user, "not found", "address", "group", "unset", "--address", "10.99.0.0/16", "office")
		// Both remotes at once: refused by the API with the fields named.
		gid := idOf(openstack(t, user, "security", "group", "show", "-f", "value", "-c", "id", "guarded"))
		ag := idOf(openstack(t, user, "address", "group", "show", "-f", "value", "-c", "id", "office"))
		var body map[string]map[string]any
		code, err := call("POST", n1.url()+"/network/v2.0/security-group-rules", tok, map[string]any{"security_group_rule": map[string]any{
			"security_group_id": gid, "direction": "ingress", "remote_address_group_id": ag, "remote_ip_prefix": "10.0.0.0/8"}}, &body)
		if err != nil || code != 400 || !strings.Contains(fmt.Sprint(body["NeutronError"]["message"]), "remote_address_group_id") {
			t.Errorf("rule with two remotes: %d %v %v", code, err, body)
		}
		openstack(t, user, "security", "group", "rule", "delete", agRule)
		openstack(t, user, "address", "group", "delete", "office")
	})

	t.Run("stateless", func(t *testing.T) {
		if !eventually(20*time.Second, func() bool { return connectsIn(f.g.ns, srvA) }) {
			t.Fatal("f (stateful) never reached a:8080")
		}
		if connectsIn(s.g.ns, srvA) {
			t.Fatal("s (stateless, no rule for replies) reached a:8080")
		}
		fails(t, "stateful on a group in use", user, "in use", "security", "group", "set", "--stateful", "sl")
		openstack(t, user, "security", "group", "rule", "create", "--ingress", "--protocol", "tcp", "--remote-ip", a.p.FixedIPs[0].IP+"/32", "sl")
		if !eventually(20*time.Second, func() bool { return connectsIn(s.g.ns, srvA) }) {
			t.Fatal("s never reached a:8080 with a rule for the replies")
		}
	})
}

// acceptAll accepts connections on l and closes them, until l closes.
func acceptAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
