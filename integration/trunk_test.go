//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/dataplane/dataplanetest"
	"github.com/rackstack/rackstack/fabric/testenv"
)

const trunkNetnsEnv = "RACKSTACK_TRUNK_NETNS"

// TestNeutronTrunk drives Neutron trunks with the openstack CLI against a
// real rackd with its dataplane on: a trunk made with a subport, another
// added and removed (network trunk set/unset --subport), subport list,
// the parent's trunk_details, the refusals (a second trunk on the parent,
// deleting a port in a trunk, a VLAN id twice); then traffic: the parent
// bound here with a guest behind its device whose VLAN 10 sub-interface
// is the subport, getting the subport's address by DHCP, reaching a port of the subport's network and reached
// by it, while its untagged frames stay the parent's; and the trunk
// deleted, its ports freed.
func TestNeutronTrunk(t *testing.T) {
	testenv.RequireRoot(t, "make a network namespace and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "ip", "ping"} {
		testenv.RequireCommand(t, c)
	}
	if inOwnNetns(t, trunkNetnsEnv, "trunk") {
		return
	}

	n1, _, creds, admin := dataplaneRackd(t, "trunk")
	member := projectMember(t, creds, n1, admin, "tp", "utp", "tp-pass-1")

	if out := openstack(t, member, "extension", "list", "--network", "-f", "value", "-c", "Alias"); !strings.Contains(out, "trunk-details") {
		t.Errorf("trunk-details is not listed: %s", out)
	}
	id := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(openstack(t, member, append(args, "-f", "value", "-c", "id")...))
	}
	net1 := id("network", "create", "tnet1")
	openstack(t, member, "subnet", "create", "--network", net1, "--subnet-range", "10.71.0.0/24", "tsub1")
	net2 := id("network", "create", "tnet2")
	openstack(t, member, "subnet", "create", "--network", net2, "--subnet-range", "10.72.0.0/24", "tsub2")
	parent := id("port", "create", "--network", net1, "tparent")
	sub := id("port", "create", "--network", net2, "tsubport")
	sub2 := id("port", "create", "--network", net2, "tsubport2")
	peer := id("port", "create", "--network", net2, "tpeer")

	trunk := id("network", "trunk", "create", "--parent-port", parent,
		"--subport", "port="+sub+",segmentation-type=vlan,segmentation-id=10", "trunk1")
	openstack(t, member, "network", "trunk", "set", "--subport", "port="+sub2+",segmentation-type=vlan,segmentation-id=20", "trunk1")
	if out := openstack(t, member, "network", "subport", "list", "--trunk", "trunk1", "-f", "value", "-c", "Port", "-c", "Segmentation ID"); !strings.Contains(out, sub+" 10") || !strings.Contains(out, sub2+" 20") {
		t.Errorf("subport list: %q", out)
	}
	if out, err := openstackErr(member, "network", "trunk", "set", "--subport", "port="+peer+",segmentation-type=vlan,segmentation-id=20", "trunk1"); err == nil || !strings.Contains(out, "already in use") {
		t.Errorf("a VLAN id twice: %v %s", err, out)
	}
	if out, err := openstackErr(member, "network", "trunk", "create", "--parent-port", parent, "trunk2"); err == nil {
		t.Errorf("a second trunk on the parent: %s", out)
	}
	for _, p := range []string{parent, sub} {
		if out, err := openstackErr(member, "port", "delete", p); err == nil {
			t.Errorf("deleted port %s of a trunk: %s", p, out)
		}
	}
	openstack(t, member, "network", "trunk", "unset", "--subport", sub2, "trunk1")
	var details struct {
		TrunkDetails struct {
			TrunkID  string `json:"trunk_id"`
			SubPorts []struct {
				PortID string `json:"port_id"`
				SegID  int    `json:"segmentation_id"`
			} `json:"sub_ports"`
		} `json:"trunk_details"`
	}
	if err := json.Unmarshal([]byte(openstack(t, member, "port", "show", "-f", "json", parent)), &details); err != nil ||
		details.TrunkDetails.TrunkID != trunk || len(details.TrunkDetails.SubPorts) != 1 || details.TrunkDetails.SubPorts[0].PortID != sub || details.TrunkDetails.SubPorts[0].SegID != 10 {
		t.Errorf("the parent's trunk_details: %+v %v", details, err)
	}
	if got := strings.TrimSpace(openstack(t, member, "port", "show", "-f", "value", "-c", "device_owner", sub)); got != "trunk:subport" {
		t.Errorf("subport's device_owner %q", got)
	}
	if got := strings.TrimSpace(openstack(t, member, "port", "show", "-f", "value", "-c", "device_owner", sub2)); got != "" {
		t.Errorf("removed subport's device_owner %q", got)
	}

	// Traffic: the parent and the peer bound here, each with a guest
	// behind its device; the parent's guest has the subport as its VLAN
	// 10 sub-interface.
	openstack(t, admin, "port", "set", "--host", "trunk", parent)
	openstack(t, admin, "port", "set", "--host", "trunk", peer)
	here := "/run/netns/" + os.Getenv(trunkNetnsEnv)
	devP, devPeer := dataplane.DeviceName(parent), dataplane.DeviceName(peer)
	dataplanetest.Veths(t, here, devP, devPeer)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", devP).Run()
		exec.Command("ip", "link", "del", devPeer).Run()
	})
	guest := qosGuest(t, member, here, parent, devP)
	guestPeer := qosGuest(t, member, here, peer, devPeer)
	subIP, peerIP := portIP(t, member, sub), portIP(t, member, peer)
	dataplanetest.VLAN(t, guest, devP+"p", 10, guest, "sub10", netip.MustParsePrefix(subIP+"/24"))
	subMAC := strings.TrimSpace(openstack(t, member, "port", "show", "-f", "value", "-c", "mac_address", sub))
	if out, err := exec.Command("ip", "-n", filepath.Base(guest), "link", "set", "sub10", "address", subMAC).CombinedOutput(); err != nil {
		t.Fatalf("sub10's MAC: %v %s", err, out)
	}
	if !eventually(60*time.Second, func() bool {
		return strings.TrimSpace(openstack(t, member, "network", "trunk", "show", "-f", "value", "-c", "status", "trunk1")) == "ACTIVE"
	}) {
		t.Errorf("the trunk never became ACTIVE")
	}
	// The subport's DHCP, on the guest's VLAN 10 sub-interface.
	var ack *dhcpv4.DHCPv4
	if !eventually(30*time.Second, func() bool {
		return dataplanetest.In(t, guest, func() error {
			c, err := nclient4.New("sub10", nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(1))
			if err != nil {
				return err
			}
			defer c.Close()
			l, err := c.Request(context.Background())
			if err == nil {
				ack = l.ACK
			}
			return err
		}) == nil
	}) || ack.YourIPAddr.String() != subIP {
		t.Errorf("DHCP on the subport gave %v, want %s", ack, subIP)
	}
	pingNS := func(ns string, args ...string) error {
		a := append([]string{"netns", "exec", filepath.Base(ns), "ping", "-n", "-c", "2", "-i", "0.2", "-W", "2"}, args...)
		return exec.Command("ip", a...).Run()
	}
	if !eventually(30*time.Second, func() bool { return pingNS(guest, "-I", "sub10", peerIP) == nil }) {
		t.Errorf("the parent's guest never reached %s through the subport", peerIP)
	}
	if err := pingNS(guestPeer, subIP); err != nil {
		t.Errorf("the peer did not reach the subport %s: %v", subIP, err)
	}
	// Untagged, the parent's guest is on the parent's network only.
	if err := pingNS(guest, "-I", devP+"p", peerIP); err == nil {
		t.Errorf("the parent's untagged frames reached the subport's network")
	}

	// Deleting the trunk frees its ports and takes the subport off the
	// parent's device.
	openstack(t, member, "network", "trunk", "delete", "trunk1")
	if out, err := openstackErr(member, "network", "trunk", "show", trunk); err == nil {
		t.Errorf("the trunk is still shown: %s", out)
	}
	if !eventually(30*time.Second, func() bool { return pingNS(guest, "-I", "sub10", peerIP) != nil }) {
		t.Errorf("the subport still forwards after its trunk was deleted")
	}
	openstack(t, member, "port", "delete", sub)
}
