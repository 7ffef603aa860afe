//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"
)

// checkRebuild rebuilds a running virtual machine with the openstack CLI
// (Nova's rebuild, renamed on the way): it shows REBUILD, comes back
// ACTIVE with the same id, port and address, and its console shows the
// guest booted again from the image with a config drive that carries the
// new name; the rebuild is in the action log and the event log.
func checkRebuild(t *testing.T, creds map[string]string, n *rackd, env []string, vm serverInfo, ip string) {
	t.Helper()
	before := showServer(t, env, vm.ID)
	openstack(t, env, "server", "rebuild", "--image", "testimg", "--name", "vm2-rebuilt", "--wait", vm.ID)
	after := showServer(t, env, vm.ID)
	if after.Status != "ACTIVE" || after.Name != "vm2-rebuilt" || firstIP(t, after) != ip {
		t.Fatalf("after the rebuild: %s %q at %s (was %s at %s)", after.Status, after.Name, firstIP(t, after), before.Name, ip)
	}
	console := waitConsole(t, env, vm.ID, 3*time.Minute, "RACKSTACK-TEST-IMAGE: hostname=vm2-rebuilt")
	booted := console[strings.Index(console, "RACKSTACK-TEST-IMAGE: hostname=vm2-rebuilt"):]
	if !strings.Contains(booted, "RACKSTACK-TEST-IMAGE: ip="+ip+"/") {
		console = waitConsole(t, env, vm.ID, 2*time.Minute, "RACKSTACK-TEST-IMAGE: ip="+ip+"/")
		booted = console[strings.Index(console, "RACKSTACK-TEST-IMAGE: hostname=vm2-rebuilt"):]
		if !strings.Contains(booted, "RACKSTACK-TEST-IMAGE: ip="+ip+"/") {
			t.Errorf("the rebuilt guest did not get its address %s back:\n%s", ip, booted)
		}
	}
	if out := openstack(t, env, "server", "event", "list", "-f", "value", "-c", "Action", vm.ID); !strings.Contains(out, "rebuild") {
		t.Errorf("no rebuild in the action log:\n%s", out)
	}
	if evs := serverEvents(t, creds, n, vm.ID); !hasEventLine(evs, "rebuild ACTIVE>REBUILD") || !hasEventLine(evs, "state REBUILD>ACTIVE") {
		t.Errorf("the rebuild is not in the event log:\n%s", strings.Join(evs, "\n"))
	}
}
