package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The packages below the services must not link HTTP handling: a node
// agent follows a service through its small state package (computestate,
// imagestate, netstate), never through its handlers, and the kernel and data
// layers know nothing of the API. "HTTP" here is fabric/api (the handler
// kit) and every package of the module built on it — the services.
var httpFree = []string{
	"node",
	"dataplane",
	"storage/ec", "storage/placement", "storage/disk", "storage/blob", "storage/object",
}

const modulePath = "github.com/rackstack/rackstack/"

// TestLowerLayersLinkNoHTTP walks what the node agents and the data
// layers link (without their tests) and fails on fabric/api or a service.
func TestLowerLayersLinkNoHTTP(t *testing.T) {
	var patterns []string
	for _, p := range httpFree {
		patterns = append(patterns, modulePath+p+"/...")
	}
	imports := goListImports(t, append([]string{"-deps"}, patterns...)...)
	// A service is a package of the module (not a binary) that imports
	// the handler kit.
	http := map[string]bool{"fabric/api": true}
	for pkg, imps := range goListImports(t, modulePath+"...") {
		if !strings.HasPrefix(pkg, "cmd/") && slices.Contains(imps, "fabric/api") {
			http[pkg] = true
		}
	}
	if !http["fabric/compute"] || !http["fabric/image"] {
		t.Fatalf("found no services among %v: the check would pass vacuously", http)
	}

	for pkg := range imports {
		if !underAny(pkg, httpFree) {
			continue
		}
		// Walk from pkg; the path tells the reader how it got there.
		seen := map[string]bool{pkg: true}
		queue := [][]string{{pkg}}
		for len(queue) > 0 {
			path := queue[0]
			queue = queue[1:]
			for _, dep := range imports[path[len(path)-1]] {
				if seen[dep] {
					continue
				}
				seen[dep] = true
				next := append(slices.Clone(path), dep)
				if http[dep] {
					t.Errorf("%s links %s (%s)", pkg, dep, strings.Join(next, " -> "))
					continue
				}
				queue = append(queue, next)
			}
		}
	}
}

// goListImports runs go list with args and returns each package of the
// module with the module's packages it imports, paths relative to the
// module.
func goListImports(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], modulePath) {
			continue
		}
		var deps []string
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, modulePath) {
				deps = append(deps, strings.TrimPrefix(imp, modulePath))
			}
		}
		graph[strings.TrimPrefix(fields[0], modulePath)] = deps
	}
	return graph
}

func underAny(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}
