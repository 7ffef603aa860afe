//go:build integration

package integration

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestNeutronSharedGroupsBulkAndPaging drives, through the openstack CLI
// (and the API where the CLI has no command) against one rackd:
//   - security group RBAC: a group shared with one project by
//     `network rbac create --type security_group` is seen by it and used
//     by its ports and its rules' remote group; it cannot share it on or
//     delete it, and the owner cannot take the policy away while it is in
//     use; a third project never sees it;
//   - bulk create of security groups: all or none;
//   - paging links walked forward to the end and back;
//   - bad input (a group named twice on a port, an IPv6-only protocol in
//     an IPv4 rule) exits non-zero naming the cause.
func TestNeutronSharedGroupsBulkAndPaging(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n1 := newRackd(t, "n2", "--s3-listen", "off")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	users := map[string][]string{}
	projects := map[string]string{}
	for _, p := range []string{"sgown", "sguse", "sgout"} {
		openstack(t, admin, "project", "create", p)
		openstack(t, admin, "user", "create", "--project", p, "--password", p+"-pass-1", p+"u")
		openstack(t, admin, "role", "add", "--project", p, "--user", p+"u", "member")
		users[p] = osEnv(creds, n1, "OS_USERNAME="+p+"u", "OS_PASSWORD="+p+"-pass-1", "OS_PROJECT_NAME="+p)
		projects[p] = strings.TrimSpace(openstack(t, admin, "project", "show", "-f", "value", "-c", "id", p))
	}
	own, use, out := users["sgown"], users["sguse"], users["sgout"]
	idOf := func(s string) string { return strings.TrimSpace(s) }
	fails := func(t *testing.T, what string, env []string, want string, args ...string) {
		t.Helper()
		o, err := openstackErr(env, args...)
		if err == nil {
			t.Errorf("%s: openstack %s exited 0:\n%s", what, strings.Join(args, " "), o)
			return
		}
		if want != "" && !strings.Contains(o, want) {
			t.Errorf("%s: openstack %s said %q, want it to name %q", what, strings.Join(args, " "), o, want)
		}
	}
	if got := openstack(t, own, "extension", "show", "-f", "value", "-c", "alias", "rbac-security-groups"); idOf(got) != "rbac-security-groups" {
		t.Errorf("extension rbac-security-groups: %q", got)
	}

	t.Run("security group RBAC", func(t *testing.T) {
		sg := idOf(openstack(t, own, "security", "group", "create", "-f", "value", "-c", "id", "web"))
		fails(t, "unshared group seen", use, "", "security", "group", "show", sg)
		pol := idOf(openstack(t, own, "network", "rbac", "create", "-f", "value", "-c", "id", "--type", "security_group",
			"--action", "access_as_shared", "--target-project", projects["sguse"], sg))
		if got := openstack(t, use, "security", "group", "show", "-f", "value", "-c", "name", sg); idOf(got) != "web" {
			t.Errorf("shared group as seen by its target: %q", got)
		}
		// The CLI does not show "shared"; the API does, to the target.
		var seen map[string]map[string]any
		if code, err := call("GET", n1.url()+"/network/v2.0/security-groups/"+sg, token(t, n1, "sguseu", "sguse-pass-1", "sguse"), nil, &seen); err != nil || code != 200 || seen["security_group"]["shared"] != true {
			t.Errorf("target's API view: %d %v %v", code, err, seen)
		}
		fails(t, "a third project sees it", out, "", "security", "group", "show", sg)
		openstack(t, use, "network", "create", "usenet")
		openstack(t, use, "subnet", "create", "--network", "usenet", "--subnet-range", "10.44.0.0/24", "usesub")
		port := idOf(openstack(t, use, "port", "create", "-f", "value", "-c", "id", "--network", "usenet", "--security-group", sg, "inshared"))
		if got := openstack(t, use, "port", "show", "-f", "value", "-c", "security_group_ids", port); !strings.Contains(got, sg) {
			t.Errorf("port's groups %q, want %s", got, sg)
		}
		fails(t, "a third project's port in it", out, "", "port", "create", "--network", "usenet", "--security-group", sg, "x")
		openstack(t, use, "security", "group", "create", "mine")
		rule := idOf(openstack(t, use, "security", "group", "rule", "create", "-f", "value", "-c", "id", "--ingress", "--remote-group", sg, "mine"))
		fails(t, "the target shares it on", use, "", "network", "rbac", "create", "--type", "security_group",
			"--action", "access_as_shared", "--target-project", projects["sgout"], sg)
		fails(t, "the target deletes it", use, "", "security", "group", "delete", sg)
		fails(t, "the target adds a rule to it", use, "", "security", "group", "rule", "create", "--ingress", sg)
		fails(t, "policy deleted while a port uses the group", own, port, "network", "rbac", "delete", pol)
		fails(t, "group deleted while a port is in it", own, "in use", "security", "group", "delete", sg)
		openstack(t, use, "port", "delete", port)
		fails(t, "policy deleted while a rule names the group", own, rule, "network", "rbac", "delete", pol)
		openstack(t, use, "security", "group", "rule", "delete", rule)
		openstack(t, own, "network", "rbac", "delete", pol)
		fails(t, "unshared again", use, "", "security", "group", "show", sg)
		openstack(t, own, "security", "group", "delete", sg)
	})

	tok := token(t, n1, "sgownu", "sgown-pass-1", "sgown")
	net := n1.url() + "/network/v2.0"
	t.Run("bulk security groups", func(t *testing.T) {
		var res map[string][]map[string]any
		code, err := call("POST", net+"/security-groups", tok, map[string]any{"security_groups": []any{
			map[string]any{"name": "bulk-a"}, map[string]any{"name": "bulk-b", "description": "second"}}}, &res)
		if err != nil || code != 201 || len(res["security_groups"]) != 2 {
			t.Fatalf("bulk create: %d %v %v", code, err, res)
		}
		for _, g := range res["security_groups"] {
			if got := openstack(t, own, "security", "group", "show", "-f", "value", "-c", "name", g["id"].(string)); idOf(got) != g["name"] {
				t.Errorf("group %v shown as %q", g["id"], got)
			}
		}
		var bad map[string]map[string]any
		code, err = call("POST", net+"/security-groups", tok, map[string]any{"security_groups": []any{
			map[string]any{"name": "bulk-c"}, map[string]any{"name": "bulk-d", "colour": "red"}}}, &bad)
		if err != nil || code != 400 || !strings.Contains(fmt.Sprint(bad["NeutronError"]["message"]), "colour") {
			t.Errorf("bad bulk: %d %v %v", code, err, bad)
		}
		if got := openstack(t, own, "security", "group", "list", "-f", "value", "-c", "Name"); strings.Contains(got, "bulk-c") {
			t.Errorf("a refused bulk left a group:\n%s", got)
		}
		// Items wrapped as {"security_group": {...}}, as tempest sends
		// them; ports likewise, with their tags.
		var wrapped map[string][]map[string]any
		code, err = call("POST", net+"/security-groups", tok, map[string]any{"security_groups": []any{
			map[string]any{"security_group": map[string]any{"name": "bulk-w"}}}}, &wrapped)
		if err != nil || code != 201 || len(wrapped["security_groups"]) != 1 || wrapped["security_groups"][0]["name"] != "bulk-w" {
			t.Errorf("wrapped bulk: %d %v %v", code, err, wrapped)
		}
		openstack(t, own, "network", "create", "tagnet")
		netID := idOf(openstack(t, own, "network", "show", "-f", "value", "-c", "id", "tagnet"))
		var ports map[string][]map[string]any
		code, err = call("POST", net+"/ports", tok, map[string]any{"ports": []any{
			map[string]any{"port": map[string]any{"network_id": netID, "name": "tp1", "tags": []string{"tag-2", "tag-1"}}},
			map[string]any{"port": map[string]any{"network_id": netID, "name": "tp2"}}}}, &ports)
		if err != nil || code != 201 || len(ports["ports"]) != 2 {
			t.Fatalf("tagged port bulk: %d %v %v", code, err, ports)
		}
		if got := openstack(t, own, "port", "list", "--tags", "tag-1", "-f", "value", "-c", "Name"); idOf(got) != "tp1" {
			t.Errorf("ports tagged tag-1: %q", got)
		}
	})

	t.Run("paging links", func(t *testing.T) {
		for _, n := range []string{"pg-b", "pg-c", "pg-a"} {
			openstack(t, own, "network", "create", n)
		}
		type page struct {
			Networks []struct{ Name string }      `json:"networks"`
			Links    []struct{ Rel, Href string } `json:"networks_links"`
		}
		get := func(url string) (names string, links map[string]string) {
			var p page
			if code, err := call("GET", url, tok, nil, &p); err != nil || code != 200 {
				t.Fatalf("GET %s: %d %v", url, code, err)
			}
			var ns []string
			for _, n := range p.Networks {
				ns = append(ns, n.Name)
			}
			links = map[string]string{}
			for _, l := range p.Links {
				links[l.Rel] = l.Href
			}
			return strings.Join(ns, ","), links
		}
		url := net + "/networks?limit=1&sort_key=name&sort_dir=asc&name__startswith=pg-"
		var fwd, back []string
		for range 3 {
			names, links := get(url)
			fwd = append(fwd, names)
			if url = links["next"]; url == "" {
				t.Fatalf("page %q has no next link", names)
			}
		}
		names, links := get(url)
		if names != "" || links["next"] != "" || links["previous"] == "" {
			t.Fatalf("past the end: %q %v", names, links)
		}
		url = links["previous"]
		for range 3 {
			names, links := get(url)
			back = append(back, names)
			url = links["previous"]
		}
		if strings.Join(fwd, " ") != "pg-a pg-b pg-c" || strings.Join(back, " ") != "pg-c pg-b pg-a" {
			t.Errorf("walked forward %v, back %v", fwd, back)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		g := idOf(openstack(t, own, "security", "group", "create", "-f", "value", "-c", "id", "v4only"))
		fails(t, "IPv6-only protocol in an IPv4 rule", own, "ethertype", "security", "group", "rule", "create", "--ingress", "--ethertype", "IPv4", "--protocol", "ipv6-route", g)
		openstack(t, own, "security", "group", "rule", "create", "--ingress", "--ethertype", "IPv6", "--protocol", "ipv6-route", g)
		openstack(t, own, "network", "create", "ownnet")
		openstack(t, own, "subnet", "create", "--network", "ownnet", "--subnet-range", "10.45.0.0/24", "ownsub")
		port := idOf(openstack(t, own, "port", "create", "-f", "value", "-c", "id", "--network", "ownnet", "p"))
		var bad map[string]map[string]any
		code, err := call("PUT", net+"/ports/"+port, tok, map[string]any{"port": map[string]any{"security_groups": []string{g, g}}}, &bad)
		if err != nil || code != 400 || !strings.Contains(fmt.Sprint(bad["NeutronError"]["message"]), "security_groups") {
			t.Errorf("a group named twice: %d %v %v", code, err, bad)
		}
		fails(t, "RBAC on a missing security group", own, "", "network", "rbac", "create", "--type", "security_group",
			"--action", "access_as_shared", "--target-project", projects["sguse"], "no-such-group")
	})
}
