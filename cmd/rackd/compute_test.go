package main

import (
	"testing"

	"github.com/rackstack/rackstack/fabric/network"
)

func TestCatalogListsNova(t *testing.T) {
	for _, s := range catalog(&options{S3Listen: "off"}) {
		if s.Type == "compute" {
			if s.Name != "nova" || s.Path != "/compute/v2.1" {
				t.Fatalf("compute entry %+v", s)
			}
			return
		}
	}
	t.Fatal("no compute service in the catalog")
}

func TestPortInfo(t *testing.T) {
	pi := portInfo(network.Port{ID: "p", NetworkID: "n", MAC: "fa:16:3e:00:00:01", DeviceID: "s", HostID: "h",
		FixedIPs: []network.FixedIP{{SubnetID: "a", IP: "10.0.0.2"}, {SubnetID: "b", IP: "fd00::2"}}}, "net")
	if pi.NetworkName != "net" || pi.Host != "h" || len(pi.IPs) != 2 || pi.IPs[1] != "fd00::2" {
		t.Fatalf("%+v", pi)
	}
}
