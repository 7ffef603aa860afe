package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The layers of ARCHITECTURE.md, by package path prefix (the longest
// matching prefix wins). A package may import packages of its own layer
// and of the layers below it, never one above. (The finer rule, that
// agents import services' types packages and not their handlers, is not
// a matter of layers and is not checked here.)
var layerOf = map[string]int{
	// 1. ground
	"fabric/store": 1, "fabric/api": 1, "fabric/revert": 1, "fabric/testenv": 1, "fabric/buildinfo": 1,
	// 2. kernel and data layers
	"storage/ec": 2, "storage/placement": 2, "storage/disk": 2, "storage/blob": 2, "storage/block": 2,
	"bpf": 2, "dataplane": 2, "provision": 2,
	"node/hypervisor": 2, "node/configdrive": 2, "node/inventory": 2,
	// 3. services
	"fabric": 3, "storage": 3,
	// 4. node agents
	"node": 4,
	// 5. clients and binaries
	"fabric/client": 5, "cmd": 5,
	// end-to-end tests see everything
	"integration": 6,
}

// Wire-type packages are leaves any layer may import.
var wireTypes = []string{"fabric/cluster/clusterapi", "dataplane/dataplaneapi", "storage/object/objectapi", "storage/block/blockapi", "provision/agentapi"}

// Imports that run up and are being removed, each with why it is there.
// An entry that no longer occurs is reported, to be deleted; a new upward
// import fails the test.
var knownUpward = map[string]string{}

const module = "github.com/rackstack/rackstack/"

func layer(pkg string) (int, bool) {
	best, n := "", 0
	for prefix, l := range layerOf {
		if (pkg == prefix || strings.HasPrefix(pkg, prefix+"/")) && len(prefix) > len(best) {
			best, n = prefix, l
		}
	}
	return n, best != ""
}

// TestImportsRunOneWay checks the module's import graph against the
// layers: rackd composes every layer, so its tests hold the rule.
func TestImportsRunOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		from, ok := layer(pkg)
		if !ok {
			t.Errorf("package %s is in no layer: add it to layerOf and to ARCHITECTURE.md", pkg)
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := strings.TrimPrefix(imp, module)
			to, ok := layer(dep)
			if !ok || to <= from || isWireType(dep) {
				continue
			}
			edge := pkg + " -> " + dep
			if _, known := knownUpward[edge]; known {
				seen[edge] = true
				continue
			}
			t.Errorf("%s imports upward (layer %d imports layer %d); see ARCHITECTURE.md", edge, from, to)
		}
	}
	for edge, why := range knownUpward {
		if !seen[edge] {
			t.Logf("known upward import %s (%s) is gone: delete it from knownUpward", edge, why)
		}
	}
}

func isWireType(pkg string) bool {
	for _, w := range wireTypes {
		if pkg == w {
			return true
		}
	}
	return false
}
