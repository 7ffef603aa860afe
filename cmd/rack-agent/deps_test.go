package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNothingOfTheServer keeps the agent small and static: it runs in a
// ramdisk loaded over PXE, and speaks to the server only through the
// provision/agentapi wire types. Everything else of ours it may link is
// listed; a new import of the module has to be added here on purpose.
func TestLinksNothingOfTheServer(t *testing.T) {
	allowed := map[string]bool{
		"github.com/rackstack/rackstack/cmd/rack-agent":     true,
		"github.com/rackstack/rackstack/provision/agent":    true,
		"github.com/rackstack/rackstack/provision/agentapi": true,
		"github.com/rackstack/rackstack/node/inventory":     true,
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps printed nothing")
	}
	for _, dep := range deps {
		if !allowed[dep] {
			t.Errorf("rack-agent links %s: the ramdisk agent links only the standard library and its own packages", dep)
		}
	}
}
