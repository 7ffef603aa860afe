package bmstate

import (
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/provision/agentapi"
)

func TestBMCHost(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.7": "10.0.0.7", "10.0.0.7:623": "10.0.0.7", "https://10.0.0.7:8000": "10.0.0.7",
		"http://BMC.example": "bmc.example", "[fd00::7]:623": "fd00::7", "fd00::7": "fd00::7", " ": "",
	} {
		if got := bmcHost(in); got != want {
			t.Errorf("bmcHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDiscoveryByAnAmbiguousBMCAddressEnrolsANewNode(t *testing.T) {
	l := allocWorld(t,
		Node{ID: "a", DriverInfo: map[string]string{"ipmi_address": "10.0.0.7"}},
		Node{ID: "b", DriverInfo: map[string]string{"redfish_address": "https://10.0.0.7"}})
	inv := &agentapi.Inventory{BMCAddress: "10.0.0.7"}
	res, err := propose(t, l, CmdDiscover, DiscoverCmd{Node: Node{ID: "new", Inventory: inv}, Ports: []Port{{ID: "p", Address: "52:54:00:00:00:01"}}})
	if err != nil {
		t.Fatal(err)
	}
	var row Node
	if err := res.Decode(&row); err != nil || row.ID != "new" {
		t.Fatalf("discovered %q (%v): two nodes share the address, neither may be guessed", row.ID, err)
	}
	if n := store.Get[Node](l.Local(), NodeTable, "a"); n.Inventory != nil {
		t.Fatal("node a took the inventory")
	}
}
