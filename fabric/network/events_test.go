package network

import (
	"context"
	"testing"

	"github.com/rackstack/rackstack/fabric/events/eventstate/eventtest"
)

// events lists one resource's events as "type action from>to by who
// (reason)".
func (f *fixture) events(id string) string {
	return eventtest.Lines(f.local.State.Txn(), id, projA)
}

// Networks, subnets, ports, routers and floating IPs record who made,
// changed and removed them, and what the nodes reported.
func TestNetworkStateChangesAreEvents(t *testing.T) {
	f := newFixture(t)
	w := f.l3(alice)
	fip := f.mk(alice, "floatingips", "floatingip", map[string]any{"floating_network_id": w.ext})["id"].(string)
	f.expect("PUT", "/v2.0/floatingips/"+fip, alice, map[string]any{"floatingip": map[string]any{"port_id": w.port}}, 200, "")
	if err := f.svc.SetFloatingIPStatus(context.Background(), fip, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetPortStatus(context.Background(), w.port, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	f.expect("PUT", "/v2.0/floatingips/"+fip, alice, map[string]any{"floatingip": map[string]any{"port_id": nil}}, 200, "")
	f.expect("DELETE", "/v2.0/floatingips/"+fip, alice, nil, 204, "")
	f.expect("PUT", "/v2.0/networks/"+w.net, alice, map[string]any{"network": map[string]any{"admin_state_up": false}}, 200, "")
	f.expect("PUT", "/v2.0/networks/"+w.net, alice, map[string]any{"network": map[string]any{"name": "renamed"}}, 200, "") // no event
	f.expect("PUT", "/v2.0/routers/"+w.router+"/remove_router_interface", alice, map[string]any{"subnet_id": w.subnet}, 200, "")
	f.expect("DELETE", "/v2.0/routers/"+w.router, alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/ports/"+w.port, alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/subnets/"+w.subnet, alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/networks/"+w.net, alice, nil, 204, "")

	for id, want := range map[string]string{
		fip: "floatingip create >DOWN by u-alice; " +
			"floatingip update DOWN>DOWN by u-alice (associated with port " + w.port + " (10.1.0.2)); " +
			"floatingip state DOWN>ACTIVE by system; " +
			"floatingip update ACTIVE>DOWN by u-alice (no longer associated with port " + w.port + " (10.1.0.2)); " +
			"floatingip delete DOWN>DELETED by u-alice",
		w.port:   "port create >DOWN by u-alice; port state DOWN>ACTIVE by system; port delete ACTIVE>DELETED by u-alice",
		w.router: "router create > by u-alice (gateway on network " + w.ext + "); router delete >DELETED by u-alice",
		w.subnet: "subnet create > by u-alice (10.1.0.0/24 on network " + w.net + "); subnet delete >DELETED by u-alice",
		w.net:    "network create >ACTIVE by u-alice; network update ACTIVE>ACTIVE by u-alice (admin state down); network delete ACTIVE>DELETED by u-alice",
		// The admin's network is the admin's project's.
		w.ext: "network create >ACTIVE by u-admin in " + projAdm,
	} {
		if got := f.events(id); got != want {
			t.Errorf("events of %s\n%s\nwant\n%s", id, got, want)
		}
	}
}

// Security groups, their rules and subnet pools record who made and
// removed them; a rule's event says what it lets through and where.
func TestSecurityGroupsRulesAndPoolsAreEvents(t *testing.T) {
	f := newFixture(t)
	sg := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "web"})["id"].(string)
	rule := f.mk(alice, "security-group-rules", "security_group_rule", map[string]any{
		"security_group_id": sg, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
		"port_range_min": 80, "port_range_max": 81, "remote_ip_prefix": "10.0.0.0/8"})["id"].(string)
	f.expect("DELETE", "/v2.0/security-group-rules/"+rule, alice, nil, 204, "")
	f.expect("DELETE", "/v2.0/security-groups/"+sg, alice, nil, 204, "")
	pool := f.mk(alice, "subnetpools", "subnetpool", map[string]any{"name": "p", "prefixes": []string{"10.40.0.0/16"}, "default_prefixlen": 24})["id"].(string)
	f.expect("DELETE", "/v2.0/subnetpools/"+pool, alice, nil, 204, "")
	for id, want := range map[string]string{
		sg:   "security_group create > by u-alice; security_group delete >DELETED by u-alice",
		rule: "security_group_rule create > by u-alice (ingress IPv4 tcp 80-81 from 10.0.0.0/8 in group " + sg + "); security_group_rule delete >DELETED by u-alice",
		pool: "subnetpool create > by u-alice (10.40.0.0/16); subnetpool delete >DELETED by u-alice",
	} {
		if got := f.events(id); got != want {
			t.Errorf("events of %s\n%s\nwant\n%s", id, got, want)
		}
	}
}
