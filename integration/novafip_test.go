//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// novafipNetnsEnv names the namespace TestNovaFloatingIPProxy runs in,
// once it has re-executed itself there.
const novafipNetnsEnv = "RACKSTACK_NOVAFIP_NETNS"

// TestNovaFloatingIPProxy drives Nova's deprecated floating IP proxy
// (os-floating-ips, os-floating-ip-pools at 2.35) and the
// addFloatingIp/removeFloatingIp actions (to 2.43) over raw REST against
// a real rackd with its dataplane, and checks each step in Neutron's
// view through the real openstack CLI: a floating IP allocated through
// Nova is Neutron's, addFloatingIp associates it with the server's port
// (port_id, fixed_ip_address) and the node's dataplane forwards it
// (ACTIVE), removeFloatingIp disassociates it (DOWN), and a delete
// through Nova releases it. Another project's floating IP is neither
// listed nor associable. addFloatingIp needs a server with a port, so
// the test boots a TCG guest; rackd makes the public network's host
// side where it runs, so it runs in a namespace of its own.
func TestNovaFloatingIPProxy(t *testing.T) {
	testenv.RequireRoot(t, "make network namespaces, taps and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage", "ip"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	if inOwnNetns(t, novafipNetnsEnv, "nf") {
		return
	}

	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-nf%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n := startDevCloud(t, "novafip", "--disk", t.TempDir(), "--dataplane", "on", "--bpf-dir", bpfDir, "--compute", "on", "--accel", "tcg",
		"--s3-listen", "off", "--public", "172.24.4.0/24")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	alice := osEnv(creds, n, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	setupTestimgAndAlice(t, admin, img)
	deleteServersAtCleanup(t, admin)
	bob := projectMember(t, creds, n, admin, "other", "bob", "bob-pass-1")
	if !eventually(30*time.Second, func() bool { _, err := openstackErr(admin, "network", "show", "public"); return err == nil }) {
		t.Fatal("no network public")
	}
	openstack(t, alice, "network", "create", "net1")
	openstack(t, alice, "subnet", "create", "--network", "net1", "--subnet-range", "10.60.1.0/24", "sub1")
	openstack(t, alice, "router", "create", "r1")
	openstack(t, alice, "router", "add", "subnet", "r1", "sub1")
	openstack(t, alice, "router", "set", "--external-gateway", "public", "r1")
	openstack(t, alice, "server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--network", "net1", "--wait", "vm1")
	vm := showServer(t, alice, "vm1")
	vmIP := firstIP(t, vm)
	vmPort := strings.TrimSpace(openstack(t, alice, "port", "list", "--server", vm.ID, "-f", "value", "-c", "ID"))

	nova := n.url() + "/compute/v2.1"
	tok := token(t, n, "alice", "alice-pass-1", "demo")
	bobTok := token(t, n, "bob", "bob-pass-1", "other")
	type fip struct {
		ID       string `json:"id"`
		IP       string `json:"ip"`
		Pool     string `json:"pool"`
		FixedIP  any    `json:"fixed_ip"`
		Instance any    `json:"instance_id"`
	}
	call := func(tok, method, path, minor, body string, want int) string {
		t.Helper()
		code, out := novaCall(t, method, nova+path, tok, minor, body)
		if code != want {
			t.Fatalf("%s %s at 2.%s: %d, want %d: %s", method, path, minor, code, want, out)
		}
		return out
	}
	allocate := func(tok string) fip {
		t.Helper()
		var v struct {
			FIP fip `json:"floating_ip"`
		}
		if out := call(tok, "POST", "/os-floating-ips", "35", `{"pool": "public"}`, 200); json.Unmarshal([]byte(out), &v) != nil || v.FIP.ID == "" {
			t.Fatalf("allocate: %s", out)
		}
		return v.FIP
	}
	neutron := func(id string) map[string]any {
		t.Helper()
		return decodeJSON[map[string]any](t, openstack(t, alice, "floating", "ip", "show", id, "-f", "json"))
	}
	action := func(tok, minor, body string, want int) string {
		t.Helper()
		return call(tok, "POST", "/servers/"+vm.ID+"/action", minor, body, want)
	}

	if out := call(tok, "GET", "/os-floating-ip-pools", "35", "", 200); !strings.Contains(out, `{"name":"public"}`) {
		t.Fatalf("pools: %s", out)
	}
	mine := allocate(tok)
	theirs := allocate(bobTok)
	if mine.Pool != "public" || mine.FixedIP != nil || mine.Instance != nil {
		t.Fatalf("allocated: %+v", mine)
	}
	if nf := neutron(mine.ID); nf["floating_ip_address"] != mine.IP || nf["port_id"] != nil {
		t.Fatalf("Neutron's view of the floating IP allocated through Nova: %v", nf)
	}
	if out := call(tok, "GET", "/os-floating-ips", "35", "", 200); !strings.Contains(out, mine.ID) || strings.Contains(out, theirs.ID) {
		t.Fatalf("alice's floating IPs (hers %s, not bob's %s): %s", mine.ID, theirs.ID, out)
	}
	call(tok, "GET", "/os-floating-ips/"+theirs.ID, "35", "", 404)
	action(tok, "35", `{"addFloatingIp": {"address": "`+theirs.IP+`"}}`, 404)

	// Associated through Nova: Neutron shows the server's port and
	// address, and the node's dataplane forwards it.
	action(tok, "35", `{"addFloatingIp": {"address": "`+mine.IP+`", "fixed_address": "`+vmIP+`"}}`, 202)
	nf := neutron(mine.ID)
	if nf["port_id"] != vmPort || nf["fixed_ip_address"] != vmIP || nf["router_id"] == nil {
		t.Fatalf("Neutron's view after addFloatingIp (want port %s at %s): %v", vmPort, vmIP, nf)
	}
	if !eventually(60*time.Second, func() bool { return neutron(mine.ID)["status"] == "ACTIVE" }) {
		t.Fatalf("the floating IP associated through Nova never became ACTIVE: %v", neutron(mine.ID))
	}
	var shown struct {
		FIP fip `json:"floating_ip"`
	}
	if out := call(tok, "GET", "/os-floating-ips/"+mine.ID, "35", "", 200); json.Unmarshal([]byte(out), &shown) != nil || shown.FIP.Instance != vm.ID || shown.FIP.FixedIP != vmIP {
		t.Fatalf("Nova's view after addFloatingIp: %s", out)
	}
	// The actions are gone from 2.44, the proxy from 2.36.
	action(tok, "44", `{"removeFloatingIp": {"address": "`+mine.IP+`"}}`, 404)
	call(tok, "GET", "/os-floating-ips", "36", "", 404)

	action(tok, "43", `{"removeFloatingIp": {"address": "`+mine.IP+`"}}`, 202)
	if nf := neutron(mine.ID); nf["port_id"] != nil || nf["fixed_ip_address"] != nil {
		t.Fatalf("Neutron's view after removeFloatingIp: %v", nf)
	}
	if !eventually(60*time.Second, func() bool { return neutron(mine.ID)["status"] == "DOWN" }) {
		t.Fatalf("the floating IP disassociated through Nova is still forwarded: %v", neutron(mine.ID))
	}
	action(tok, "35", `{"removeFloatingIp": {"address": "`+mine.IP+`"}}`, 409)

	call(tok, "DELETE", "/os-floating-ips/"+mine.ID, "35", "", 202)
	if out, err := openstackErr(alice, "floating", "ip", "show", mine.ID); err == nil {
		t.Fatalf("the floating IP deleted through Nova is still in Neutron:\n%s", out)
	}
	// The CLI's own floating IP commands (Neutron's) still see bob's.
	if out := openstack(t, bob, "floating", "ip", "list", "-f", "value", "-c", "ID"); strings.TrimSpace(out) != theirs.ID {
		t.Fatalf("bob's floating IPs: %q, want %s", out, theirs.ID)
	}
}
