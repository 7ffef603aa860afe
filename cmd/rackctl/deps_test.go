package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksOnlyAPITypes keeps rackctl a thin client: it decodes the status
// bodies from the leaf *api packages, and must not link the server side
// that produces them. One import of a producing package (dataplane,
// storage/object, fabric/cluster) brings these back.
func TestLinksOnlyAPITypes(t *testing.T) {
	forbidden := map[string]string{
		"github.com/cilium/ebpf":                      "the BPF loader (dataplane)",
		"github.com/vishvananda/netlink":              "the BPF loader (dataplane)",
		"github.com/hashicorp/raft":                   "Raft (fabric/store)",
		"github.com/hashicorp/raft-boltdb":            "the Raft log store (fabric/store)",
		"github.com/klauspost/reedsolomon":            "the erasure coder (storage)",
		"github.com/rackstack/rackstack/fabric/store": "the state store",
	}
	// go test puts its own go command first in PATH.
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps printed nothing")
	}
	for _, dep := range deps {
		for prefix, what := range forbidden {
			if dep == prefix || strings.HasPrefix(dep, prefix+"/") {
				t.Errorf("rackctl links %s, %s; import the API types package instead", dep, what)
			}
		}
	}
}
