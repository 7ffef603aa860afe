//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestRollingUpgrade: a three-node cluster where one node runs a rackd
// that does not know a command type the others do (an older release:
// RACKD_FORGET_COMMANDS leaves host aggregates out of its state). The
// new feature is refused through the real CLI with a clear message
// naming that node, on every node alike, while everything the older
// node knows keeps working and the older node keeps applying the log
// (it does not halt). Once that node restarts on the full rackd (the
// upgrade), the feature works, and the older node reads what it made.
func TestRollingUpgrade(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n1 := newRackd(t, "n1")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	tok := joinToken(t, creds, n1, 2)
	n2 := newRackd(t, "n2", "--join", n1.url(), "--join-token", tok)
	n2.start()
	old := newRackd(t, "n3", "--join", n1.url(), "--join-token", tok)
	old.env = []string{"RACKD_FORGET_COMMANDS=compute.aggregate.create"}
	old.start()
	n2.waitHealthy()
	old.waitHealthy()
	healthy := func(s clusterStatus) bool {
		if len(s.Members) != 3 || !s.Healthy {
			return false
		}
		for _, m := range s.Members {
			if m.Suffrage != "voter" || !m.Up {
				return false
			}
		}
		return true
	}
	// The older node declares what it knows as it registers; the status
	// names it once it has (a new type before that would still halt it).
	waitStatus(t, creds, n1, "three voters up, n3 named as older", func(s clusterStatus) bool {
		up := 0
		for _, m := range s.Members {
			if m.Suffrage == "voter" && m.Up {
				up++
			}
		}
		return up == 3 && s.Quorum && strings.Contains(strings.Join(s.Problems, "; "), "node n3 runs an older rackd")
	})
	env := osEnv(creds, n1)
	refusal, err := openstackErr(env, "aggregate", "create", "agg-early")
	if err == nil {
		t.Fatalf("aggregate create succeeded with a member that cannot apply it:\n%s", refusal)
	}
	if !strings.Contains(refusal, "being upgraded") || !strings.Contains(refusal, "n3") || !strings.Contains(refusal, "503") {
		t.Fatalf("the refusal does not say the cluster is being upgraded and which node holds it back:\n%s", refusal)
	}
	// Through the other upgraded node alike. (The older node itself is
	// not asked: a real older rackd would not serve the new API at all,
	// where this one serves it without the command behind it.)
	for _, via := range []*rackd{n2} {
		if out, err := openstackErr(osEnv(creds, via), "aggregate", "create", "agg-via-"+via.name); err == nil || !strings.Contains(out, "being upgraded") {
			t.Fatalf("aggregate create through %s: %v\n%s", via.name, err, out)
		}
	}
	// What every node knows works, and the older node applies it.
	openstack(t, env, "flavor", "create", "--ram", "64", "--disk", "1", "--vcpus", "1", "up.f1")
	if out := openstack(t, osEnv(creds, old), "flavor", "show", "up.f1", "-f", "value", "-c", "name"); strings.TrimSpace(out) != "up.f1" {
		t.Fatalf("the older node does not see the flavor: %q", out)
	}
	st, err := status(t, creds, old)
	if err != nil || st.Halted != "" || strings.Contains(strings.Join(st.Problems, " "), "halt") {
		t.Fatalf("the older node after a refused command: %+v, %v\n%s", st, err, old.log())
	}
	if out := openstack(t, env, "aggregate", "list", "-f", "value", "-c", "Name"); strings.TrimSpace(out) != "" {
		t.Fatalf("a refused aggregate was made: %q", out)
	}

	// The upgrade: the node restarts on the full rackd and declares it.
	old.kill()
	old.env = nil
	old.start()
	old.waitHealthy()
	waitStatus(t, creds, n1, "three healthy voters after the upgrade", healthy)
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := openstackErr(env, "aggregate", "create", "agg1")
		if err == nil {
			break
		}
		if !strings.Contains(out, "being upgraded") || time.Now().After(deadline) {
			t.Fatalf("aggregate create after the upgrade: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if out := openstack(t, osEnv(creds, old), "aggregate", "show", "agg1", "-f", "value", "-c", "name"); strings.TrimSpace(out) != "agg1" {
		t.Fatalf("the upgraded node does not see the aggregate: %q", out)
	}
}
