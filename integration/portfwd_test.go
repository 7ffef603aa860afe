//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/dataplane/dataplanetest"
	"github.com/rackstack/rackstack/fabric/testenv"
)

const pfNetnsEnv = "RACKSTACK_PF_NETNS"

// TestFloatingIPPortForwarding drives floating IP port forwarding with
// the openstack CLI against a real rackd with its dataplane on: create,
// list, show, set and delete; Neutron's refusals (the floating IP then
// associated with a port, a duplicate, another project); a port range;
// and real traffic: this namespace, on the public network
// (172.24.9.1), connects to the floating IP's forwarded port and reaches
// a server behind the internal port's device, also while rackd is killed
// (-9) and after it restarts, while the floating IP's other ports stay
// shut.
func TestFloatingIPPortForwarding(t *testing.T) {
	testenv.RequireRoot(t, "make a network namespace and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "ip"} {
		testenv.RequireCommand(t, c)
	}
	if inOwnNetns(t, pfNetnsEnv, "pf") {
		return
	}

	n1, _, creds, admin := dataplaneRackd(t, "pf")
	member := projectMember(t, creds, n1, admin, "pfp", "upf", "pfp-pass-1")
	if !eventually(30*time.Second, func() bool { _, err := openstackErr(admin, "network", "show", "public"); return err == nil }) {
		t.Fatal("no network public")
	}

	netID := strings.TrimSpace(openstack(t, member, "network", "create", "-f", "value", "-c", "id", "pfnet"))
	openstack(t, member, "subnet", "create", "--network", netID, "--subnet-range", "10.64.0.0/24", "pfsub")
	openstack(t, member, "router", "create", "pfr")
	openstack(t, member, "router", "add", "subnet", "pfr", "pfsub")
	openstack(t, member, "router", "set", "--external-gateway", "public", "pfr")
	port := strings.TrimSpace(openstack(t, member, "port", "create", "-f", "value", "-c", "id", "--network", netID, "pfport"))
	internal := portIP(t, member, port)
	fip := strings.TrimSpace(openstack(t, member, "floating", "ip", "create", "-f", "value", "-c", "floating_ip_address", "public"))
	openstack(t, member, "security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "5000:5002", "--ingress", "default")

	forward := func(env []string, extra ...string) (string, error) {
		args := append([]string{"floating", "ip", "port", "forwarding", "create", "-f", "value", "-c", "id", "--internal-ip-address", internal, "--port", port}, extra...)
		out, err := openstackErr(env, append(args, fip)...)
		return strings.TrimSpace(out), err
	}
	pf, err := forward(member, "--internal-protocol-port", "5000", "--external-protocol-port", "2222", "--protocol", "tcp", "--description", "to 5000")
	if err != nil {
		t.Fatalf("port forwarding create: %v %s", err, pf)
	}
	if out, err := forward(member, "--internal-protocol-port", "5001", "--external-protocol-port", "2222", "--protocol", "tcp"); err == nil || !strings.Contains(out, "duplicate") {
		t.Errorf("a second forwarding of tcp 2222: %v %s", err, out)
	}
	if out, err := openstackErr(member, "floating", "ip", "set", "--port", port, fip); err == nil || !strings.Contains(out, "Port Forwarding") {
		t.Errorf("associating a floating IP that has forwardings: %v %s", err, out)
	}
	// Another project sees neither the floating IP nor its forwardings.
	other := projectMember(t, creds, n1, admin, "pfq", "uq", "pfq-pass-1")
	fipID := strings.TrimSpace(openstack(t, member, "floating", "ip", "show", "-f", "value", "-c", "id", fip))
	if out, err := openstackErr(other, "floating", "ip", "port", "forwarding", "list", fipID); err == nil {
		t.Errorf("another project listed the forwardings: %s", out)
	}

	var shown map[string]any
	if err := json.Unmarshal([]byte(openstack(t, member, "floating", "ip", "port", "forwarding", "show", "-f", "json", fip, pf)), &shown); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"protocol": "tcp", "external_port": 2222, "internal_port": 5000, "internal_ip_address": internal, "internal_port_id": port, "description": "to 5000"} {
		if fmt.Sprint(shown[k]) != fmt.Sprint(want) {
			t.Errorf("shown %s = %v, want %v (%v)", k, shown[k], want, shown)
		}
	}
	openstack(t, member, "floating", "ip", "port", "forwarding", "set", "--description", "ssh-ish", "--external-protocol-port", "2200", fip, pf)
	if got := openstack(t, member, "floating", "ip", "port", "forwarding", "list", "-f", "value", "-c", "ID", "-c", "External Port", fip); strings.Join(strings.Fields(got), " ") != pf+" 2200" {
		t.Errorf("list after set: %q", got)
	}

	// Traffic: the port bound here with its device and a guest behind it
	// serving 5000 and 5001.
	openstack(t, admin, "port", "set", "--host", "pf", port)
	here := "/run/netns/" + os.Getenv(pfNetnsEnv)
	dev := dataplane.DeviceName(port)
	dataplanetest.Veths(t, here, dev)
	t.Cleanup(func() { exec.Command("ip", "link", "del", dev).Run() })
	mac, err := net.ParseMAC(strings.TrimSpace(openstack(t, member, "port", "show", "-f", "value", "-c", "mac_address", port)))
	if err != nil {
		t.Fatal(err)
	}
	guest := dataplanetest.Guest(t, here, dev, mac, netip.PrefixFrom(netip.MustParseAddr(internal), 24), netip.MustParseAddr("10.64.0.1"))
	for _, p := range []string{"5000", "5001", "5002"} {
		ln := listenIn(t, filepath.Base(guest), net.JoinHostPort(internal, p))
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%s %s\n", c.LocalAddr(), c.RemoteAddr().(*net.TCPAddr).IP)
				c.Close()
			}
		}()
	}
	// reachOn is what the guest says to a connection to fip's port p.
	reachOn := func(p string) string {
		c, err := net.DialTimeout("tcp4", net.JoinHostPort(fip, p), 2*time.Second)
		if err != nil {
			return ""
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(c)
		return strings.TrimSpace(string(b))
	}
	reach := func() string { return reachOn("2200") }
	var said string
	if !eventually(60*time.Second, func() bool { said = reach(); return said != "" }) {
		t.Fatalf("never reached the guest through %s:2200", fip)
	}
	want := internal + ":5000 172.24.9.1"
	if said != want {
		t.Errorf("the guest said %q, want %q", said, want)
	}
	// A port range (floating-ip-port-forwarding-port-ranges, which this
	// openstack CLI has no options for): 3001 goes to 5001, 3002 to 5002.
	tok := token(t, n1, "upf", "pfp-pass-1", "pfp")
	var ranged struct {
		PF map[string]any `json:"port_forwarding"`
	}
	if code, err := call("POST", n1.url()+"/network/v2.0/floatingips/"+fipID+"/port_forwardings", tok, map[string]any{"port_forwarding": map[string]any{
		"protocol": "tcp", "external_port_range": "3001:3002", "internal_port_range": "5001:5002", "internal_port_id": port, "internal_ip_address": internal,
	}}, &ranged); code != 201 || err != nil {
		t.Fatalf("range forwarding create: %d %v", code, err)
	}
	for ext, in := range map[string]string{"3001": "5001", "3002": "5002"} {
		want := internal + ":" + in + " 172.24.9.1"
		var said string
		if !eventually(30*time.Second, func() bool { said = reachOn(ext); return said == want }) {
			t.Errorf("through %s:%s the guest said %q, want %q", fip, ext, said, want)
		}
	}
	openstack(t, member, "floating", "ip", "port", "forwarding", "delete", fip, fmt.Sprint(ranged.PF["id"]))
	if !eventually(30*time.Second, func() bool { return reachOn("3001") == "" }) {
		t.Errorf("%s:3001 still forwarded after the range's delete", fip)
	}

	// kill -9 rackd: the pinned maps go on forwarding without it, and the
	// restarted rackd has the forwarding it acknowledged.
	n1.kill()
	if said := reach(); said != want {
		t.Errorf("with rackd killed, the guest said %q, want %q", said, want)
	}
	n1.start()
	n1.waitHealthy()
	if got := openstack(t, member, "floating", "ip", "port", "forwarding", "list", "-f", "value", "-c", "ID", fip); strings.TrimSpace(got) != pf {
		t.Errorf("forwardings after the restart: %q, want %s", got, pf)
	}
	if said := reach(); said != want {
		t.Errorf("after the restart, the guest said %q, want %q", said, want)
	}
	for _, p := range []string{"5000", "5001", "2222"} {
		if c, err := net.DialTimeout("tcp4", net.JoinHostPort(fip, p), time.Second); err == nil {
			c.Close()
			t.Errorf("%s:%s is not forwarded, yet a connection got in", fip, p)
		}
	}

	openstack(t, member, "floating", "ip", "port", "forwarding", "delete", fip, pf)
	if got := strings.TrimSpace(openstack(t, member, "floating", "ip", "port", "forwarding", "list", "-f", "value", fip)); got != "" {
		t.Errorf("forwardings after delete: %q", got)
	}
	if !eventually(30*time.Second, func() bool {
		c, err := net.DialTimeout("tcp4", net.JoinHostPort(fip, "2200"), time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	}) {
		t.Errorf("%s:2200 still forwarded after the delete", fip)
	}
	// Free of forwardings, the floating IP may be associated again.
	openstack(t, member, "floating", "ip", "set", "--port", port, fip)
}
