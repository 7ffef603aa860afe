//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// gapsNetnsEnv names the namespace TestNeutronGaps runs in, once it has
// re-executed itself there.
const gapsNetnsEnv = "RACKSTACK_GAPS_NETNS"

// TestNeutronGaps drives the real openstack CLI (and, where the CLI has
// no command, the HTTP API) through what gophercloud's acceptance suite
// found missing: RBAC policies sharing a network with one project (which
// then sees and uses it while a third project cannot), a router's extra
// routes added and removed atomically, router ports ACTIVE while their
// router forwards and DOWN while it is disabled, subnet pool prefixes,
// network IP availability, the rbac_policy quota and a writable MTU. rackd makes the
// public network's host side where it runs, so the test runs itself and
// rackd in a namespace of its own.
func TestNeutronGaps(t *testing.T) {
	testenv.RequireRoot(t, "make a network namespace and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "ip"} {
		testenv.RequireCommand(t, c)
	}
	if inOwnNetns(t, gapsNetnsEnv, "gaps") {
		return
	}

	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-gaps%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n1 := newRackd(t, "gaps", "--dataplane", "on", "--bpf-dir", bpfDir, "--s3-listen", "off", "--public", "172.24.9.0/24")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	if !eventually(30*time.Second, func() bool { _, err := openstackErr(admin, "network", "show", "public"); return err == nil }) {
		t.Fatal("no network public")
	}

	// Three projects with a member each: pa owns the network, pb is
	// given it, pc is not.
	projectID := map[string]string{}
	member := map[string][]string{}
	for _, p := range []string{"pa", "pb", "pc"} {
		projectID[p] = strings.TrimSpace(openstack(t, admin, "project", "create", "-f", "value", "-c", "id", p))
		openstack(t, admin, "user", "create", "--project", p, "--password", p+"-pass-1", "u"+p)
		openstack(t, admin, "role", "add", "--project", p, "--user", "u"+p, "member")
		member[p] = userEnv(creds, n1, "u"+p, p+"-pass-1", p)
	}
	a, b, c := member["pa"], member["pb"], member["pc"]

	netID := strings.TrimSpace(openstack(t, a, "network", "create", "-f", "value", "-c", "id", "shnet"))
	subID := strings.TrimSpace(openstack(t, a, "subnet", "create", "-f", "value", "-c", "id", "--network", netID, "--subnet-range", "10.61.0.0/24", "shsub"))

	t.Run("rbac", func(t *testing.T) {
		if _, err := openstackErr(b, "network", "show", netID); err == nil {
			t.Fatal("pb sees pa's network before any policy")
		}
		policy := strings.TrimSpace(openstack(t, a, "network", "rbac", "create", "-f", "value", "-c", "id",
			"--target-project", projectID["pb"], "--action", "access_as_shared", "--type", "network", netID))
		var shown struct {
			Shared bool `json:"shared"`
		}
		if err := json.Unmarshal([]byte(openstack(t, b, "network", "show", "-f", "json", netID)), &shown); err != nil || !shown.Shared {
			t.Fatalf("pb's view of the network: %+v %v", shown, err)
		}
		port := strings.TrimSpace(openstack(t, b, "port", "create", "-f", "value", "-c", "id", "--network", netID, "bport"))
		// The third project neither sees nor uses it.
		if out, err := openstackErr(c, "network", "show", netID); err == nil {
			t.Fatalf("pc sees the network: %s", out)
		}
		if out, err := openstackErr(c, "port", "create", "--network", netID, "cport"); err == nil {
			t.Fatalf("pc made a port on the network: %s", out)
		}
		if ids := openstack(t, c, "network", "list", "-f", "value", "-c", "ID"); strings.Contains(ids, netID) {
			t.Fatalf("pc lists the network: %s", ids)
		}
		// In use by pb's port, the policy stays.
		if out, err := openstackErr(a, "network", "rbac", "delete", policy); err == nil || !strings.Contains(out, "cannot be removed") {
			t.Fatalf("deleting a policy in use: %v %s", err, out)
		}
		openstack(t, b, "port", "delete", port)
		openstack(t, a, "network", "rbac", "delete", policy)
		if _, err := openstackErr(b, "network", "show", netID); err == nil {
			t.Fatal("pb still sees the network after the policy went")
		}
		// The rbac_policy quota holds.
		openstack(t, admin, "quota", "set", "--rbac-policies", "1", projectID["pa"])
		openstack(t, a, "network", "rbac", "create", "--target-project", projectID["pb"], "--action", "access_as_shared", "--type", "network", netID)
		if out, err := openstackErr(a, "network", "rbac", "create", "--target-project", projectID["pc"], "--action", "access_as_shared", "--type", "network", netID); err == nil || !strings.Contains(out, "Quota exceeded") {
			t.Fatalf("a policy over quota: %v %s", err, out)
		}
	})

	t.Run("router", func(t *testing.T) {
		openstack(t, a, "router", "create", "r1")
		openstack(t, a, "router", "add", "subnet", "r1", subID)
		openstack(t, admin, "router", "set", "--external-gateway", "public", "r1")
		statuses := func() map[string]string {
			out := openstack(t, admin, "port", "list", "--router", "r1", "--long", "-f", "json", "-c", "Status", "-c", "Device Owner")
			var raw []map[string]string
			if err := json.Unmarshal([]byte(out), &raw); err != nil {
				t.Fatalf("port list: %v\n%s", err, out)
			}
			got := map[string]string{}
			for _, p := range raw {
				got[p["Device Owner"]] = p["Status"]
			}
			return got
		}
		if got := statuses(); got["network:router_interface"] != "ACTIVE" || got["network:router_gateway"] != "ACTIVE" {
			t.Fatalf("router ports: %v", got)
		}
		openstack(t, a, "router", "set", "--disable", "r1")
		if got := statuses(); got["network:router_interface"] != "DOWN" || got["network:router_gateway"] != "DOWN" {
			t.Fatalf("router ports of a disabled router: %v", got)
		}
		openstack(t, a, "router", "set", "--enable", "r1")
		if got := statuses(); got["network:router_interface"] != "ACTIVE" {
			t.Fatalf("router ports enabled again: %v", got)
		}

		// Extra routes, added and removed by add_extraroutes and
		// remove_extraroutes.
		routes := func() string {
			return openstack(t, a, "router", "show", "r1", "-f", "json", "-c", "routes")
		}
		openstack(t, a, "router", "add", "route", "--route", "destination=10.99.0.0/24,gateway=10.61.0.9", "r1")
		openstack(t, a, "router", "add", "route", "--route", "destination=10.98.0.0/24,gateway=10.61.0.8", "r1")
		if r := routes(); !strings.Contains(r, "10.99.0.0/24") || !strings.Contains(r, "10.98.0.0/24") {
			t.Fatalf("routes after adding: %s", r)
		}
		openstack(t, a, "router", "remove", "route", "--route", "destination=10.99.0.0/24,gateway=10.61.0.9", "r1")
		if r := routes(); strings.Contains(r, "10.99.0.0/24") || !strings.Contains(r, "10.98.0.0/24") {
			t.Fatalf("routes after removing: %s", r)
		}
		if out, err := openstackErr(a, "router", "add", "route", "--route", "destination=10.97.0.0/24,gateway=192.0.2.9", "r1"); err == nil {
			t.Fatalf("a route whose next hop is on none of the router's subnets: %s", out)
		}
	})

	t.Run("subnet pool prefixes", func(t *testing.T) {
		poolID := strings.TrimSpace(openstack(t, a, "subnet", "pool", "create", "-f", "value", "-c", "id", "--pool-prefix", "10.70.0.0/16", "--default-prefix-length", "24", "pool1"))
		openstack(t, a, "subnet", "pool", "set", "--pool-prefix", "10.71.0.0/16", "pool1")
		if out := openstack(t, a, "subnet", "pool", "show", "-f", "json", "-c", "prefixes", "pool1"); !strings.Contains(out, "10.70.0.0/16") || !strings.Contains(out, "10.71.0.0/16") {
			t.Fatalf("prefixes after set: %s", out)
		}
		// add_prefixes and remove_prefixes have no CLI command: over HTTP.
		tok := token(t, n1, "upa", "pa-pass-1", "pa")
		var got struct {
			Prefixes []string `json:"prefixes"`
		}
		url := n1.url() + "/network/v2.0/subnetpools/" + poolID
		if st, err := call(http.MethodPut, url+"/add_prefixes", tok, map[string]any{"prefixes": []string{"10.72.0.0/16"}}, &got); st != 200 || err != nil || !slices.Contains(got.Prefixes, "10.72.0.0/16") {
			t.Fatalf("add_prefixes: %d %v %v", st, err, got)
		}
		if st, err := call(http.MethodPut, url+"/remove_prefixes", tok, map[string]any{"prefixes": []string{"10.70.0.0/16"}}, &got); st != 200 || err != nil || slices.Contains(got.Prefixes, "10.70.0.0/16") || len(got.Prefixes) != 2 {
			t.Fatalf("remove_prefixes: %d %v %v", st, err, got)
		}
		if out := openstack(t, a, "subnet", "pool", "show", "-f", "json", "-c", "prefixes", "pool1"); strings.Contains(out, "10.70.0.0/16") || !strings.Contains(out, "10.72.0.0/16") {
			t.Fatalf("prefixes after the HTTP calls: %s", out)
		}
	})

	t.Run("mtu", func(t *testing.T) {
		openstack(t, a, "network", "create", "--mtu", "1440", "mtunet")
		openstack(t, a, "network", "set", "--mtu", "1350", "mtunet")
		if mtu := strings.TrimSpace(openstack(t, a, "network", "show", "-f", "value", "-c", "mtu", "mtunet")); mtu != "1350" {
			t.Fatalf("mtu after set: %s", mtu)
		}
		if out, err := openstackErr(a, "network", "set", "--mtu", "9000", "mtunet"); err == nil || !strings.Contains(out, "too big") {
			t.Fatalf("an MTU over the physical network's: %v %s", err, out)
		}
	})

	t.Run("ip availability", func(t *testing.T) {
		// Every port on the network holds an address of the subnet (the
		// router's interface at least).
		var ports []struct {
			IPs []any `json:"Fixed IP Addresses"`
		}
		out := openstack(t, admin, "port", "list", "--network", netID, "-f", "json", "-c", "Fixed IP Addresses")
		if err := json.Unmarshal([]byte(out), &ports); err != nil {
			t.Fatalf("port list: %v\n%s", err, out)
		}
		used := 0
		for _, p := range ports {
			used += len(p.IPs)
		}
		if used == 0 {
			t.Fatal("no address in use on the network: the count would prove nothing")
		}
		var show struct {
			Used   int `json:"used_ips"`
			Total  int `json:"total_ips"`
			Subnet []struct {
				ID    string `json:"subnet_id"`
				Used  int    `json:"used_ips"`
				Total int    `json:"total_ips"`
			} `json:"subnet_ip_availability"`
		}
		out = openstack(t, admin, "ip", "availability", "show", "-f", "json", netID)
		if err := json.Unmarshal([]byte(out), &show); err != nil {
			t.Fatalf("ip availability show: %v\n%s", err, out)
		}
		if show.Total != 253 || show.Used != used || len(show.Subnet) != 1 || show.Subnet[0].ID != subID || show.Subnet[0].Used != used {
			t.Fatalf("ip availability of shnet (%d addresses in use): %s", used, out)
		}
		if list := openstack(t, admin, "ip", "availability", "list", "-f", "value", "-c", "Network ID"); !strings.Contains(list, netID) {
			t.Fatalf("ip availability list: %s", list)
		}
		if out, err := openstackErr(a, "ip", "availability", "show", netID); err == nil {
			t.Fatalf("a member read IP availability: %s", out)
		}
	})
}
