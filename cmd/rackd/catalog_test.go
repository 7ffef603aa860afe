package main

import (
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

// Every service's schema must fit in one state: no table or command type
// registered twice.
func TestSchemasBuildOneState(t *testing.T) {
	if _, err := store.NewState(schemas()...); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogListsNeutron(t *testing.T) {
	for _, s := range catalog(&options{S3Listen: "off"}) {
		if s.Type == "network" {
			if s.Name != "neutron" || s.Path != "/network" {
				t.Fatalf("network entry %+v", s)
			}
			return
		}
	}
	t.Fatal("no network service in the catalog")
}
