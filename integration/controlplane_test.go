//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// rackctl runs the real rackctl against node with admin credentials.
func rackctl(t *testing.T, creds map[string]string, node *rackd, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "rackctl"), args...)
	cmd.Env = osEnv(creds, node)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type memberStatus struct {
	Name     string `json:"name"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
	Up       bool   `json:"up"`
}

type clusterStatus struct {
	Node         string         `json:"node"`
	Leader       string         `json:"leader"`
	AppliedIndex uint64         `json:"applied_index"`
	CommitIndex  uint64         `json:"commit_index"`
	Healthy      bool           `json:"healthy"`
	Quorum       bool           `json:"quorum"`
	Problems     []string       `json:"problems"`
	Halted       string         `json:"halted"`
	Members      []memberStatus `json:"members"`
}

func status(t *testing.T, creds map[string]string, node *rackd) (clusterStatus, error) {
	t.Helper()
	out, err := rackctl(t, creds, node, "cluster", "status", "-o", "json")
	if err != nil {
		return clusterStatus{}, fmt.Errorf("rackctl cluster status: %v: %s", err, out)
	}
	var st clusterStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("decode status %q: %w", out, err)
	}
	return st, nil
}

func waitStatus(t *testing.T, creds map[string]string, node *rackd, what string, ok func(clusterStatus) bool) clusterStatus {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last clusterStatus
	var err error
	for time.Now().Before(deadline) {
		last, err = status(t, creds, node)
		if err == nil && ok(last) {
			return last
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last status %+v, err %v", what, last, err)
	return last
}

// glance runs the real glance CLI (openstackclient has no metadefs
// commands) and returns its output; it fails the test on a non-zero exit.
func glance(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := glanceErr(env, args...)
	if err != nil {
		t.Fatalf("glance %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func glanceErr(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer traceCommand(time.Now(), "glance", args)
	return runCombined(ctx, env, "/usr/bin/glance", args...)
}

// TestControlPlaneCluster forms a three-node cluster of real rackd processes
// on loopback, drives it with the real openstack CLI and rackctl, kills the
// leader with SIGKILL under a stream of writes, and checks that nothing
// acknowledged is lost and that the killed node catches up.
func TestControlPlaneCluster(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	testenv.RequireCommand(t, "/usr/bin/glance")
	nodes := map[string]*rackd{}
	n1 := newRackd(t, "n1")
	n1.start("--bootstrap")
	n1.waitHealthy()
	nodes["n1"] = n1
	creds := openrc(t, n1.dataDir)
	if creds["OS_PASSWORD"] == "" || !strings.Contains(n1.log(), "source ") {
		t.Fatalf("bootstrap did not print how to reach the cloud; log:\n%s", n1.log())
	}
	if strings.Contains(n1.log(), creds["OS_PASSWORD"]) {
		t.Fatal("the admin password appears in rackd's log")
	}
	checkMetricsAndVersion(t, n1, creds)

	out, err := rackctl(t, creds, n1, "cluster", "join-token", "create", "--ttl", "1h", "--uses", "2", "-o", "json")
	if err != nil {
		t.Fatalf("join-token create: %v\n%s", err, out)
	}
	var jt struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &jt); err != nil || jt.Token == "" {
		t.Fatalf("join token output %q: %v", out, err)
	}
	// n2 and n3 join at once; the leader adds them one at a time.
	for _, name := range []string{"n2", "n3"} {
		nodes[name] = newRackd(t, name, "--join", n1.url(), "--join-token", jt.Token)
		nodes[name].start()
	}
	nodes["n2"].waitHealthy()
	nodes["n3"].waitHealthy()
	st := waitStatus(t, creds, n1, "three healthy voters", func(s clusterStatus) bool {
		if len(s.Members) != 3 || !s.Healthy {
			return false
		}
		for _, m := range s.Members {
			if m.Suffrage != "voter" || !m.Up {
				return false
			}
		}
		return true
	})
	leader := nodes[st.Leader]
	var followers []*rackd
	for _, n := range []*rackd{nodes["n1"], nodes["n2"], nodes["n3"]} {
		if n != leader {
			followers = append(followers, n)
		}
	}

	// A spent token is refused with a clear message and the node exits.
	// Both refused nodes start at once.
	bad := newRackd(t, "n4", "--join", n1.url(), "--join-token", jt.Token)
	bad.start()
	bogus := newRackd(t, "n5", "--join", n1.url(), "--join-token", "rsj_nonsense")
	bogus.start()
	if err, log := bad.waitExit(60 * time.Second); err == nil || !strings.Contains(log, "already been used") {
		t.Fatalf("join with a spent token: err=%v log:\n%s", err, log)
	}
	if err, log := bogus.waitExit(60 * time.Second); err == nil || !strings.Contains(log, "malformed") {
		t.Fatalf("join with a bogus token: err=%v log:\n%s", err, log)
	}

	// A revoked token is listed no more and admits no one; --uses 0 is refused.
	out, err = rackctl(t, creds, n1, "cluster", "join-token", "create", "--ttl", "1h", "-o", "json")
	var jt2 struct {
		Token string `json:"token"`
		ID    string `json:"id"`
	}
	if err != nil || json.Unmarshal([]byte(out), &jt2) != nil || jt2.ID == "" {
		t.Fatalf("second join token: %v\n%s", err, out)
	}
	if out, err := rackctl(t, creds, n1, "cluster", "join-token", "list"); err != nil || !strings.Contains(out, jt2.ID) {
		t.Fatalf("join-token list lacks %s: %v\n%s", jt2.ID, err, out)
	}
	if out, err := rackctl(t, creds, n1, "cluster", "join-token", "revoke", jt2.ID); err != nil {
		t.Fatalf("join-token revoke: %v\n%s", err, out)
	}
	if out, err := rackctl(t, creds, n1, "cluster", "join-token", "list"); err != nil || strings.Contains(out, jt2.ID) {
		t.Fatalf("join-token list after revoke: %v\n%s", err, out)
	}
	revoked := newRackd(t, "n6", "--join", n1.url(), "--join-token", jt2.Token)
	revoked.start()
	if err, log := revoked.waitExit(60 * time.Second); err == nil || !strings.Contains(log, "not valid") {
		t.Fatalf("join with a revoked token: err=%v log:\n%s", err, log)
	}
	if out, err := rackctl(t, creds, n1, "cluster", "join-token", "create", "--uses", "0"); err == nil || !strings.Contains(out, "--uses must be at least 1") {
		t.Fatalf("--uses 0: %v\n%s", err, out)
	}

	// The real openstack CLI, through a follower.
	f := followers[0]
	env := osEnv(creds, f)
	// The admin's reads go beside alice's making (the CLI's start-up is
	// most of each step's time).
	noProject := []string{"OS_PROJECT_NAME=", "OS_PROJECT_DOMAIN_NAME="}
	inParallel(t, "through a follower", map[string]func(t *testing.T){
		"admin": func(t *testing.T) {
			if out := openstack(t, env, "token", "issue", "-f", "json"); !strings.Contains(out, `"expires"`) {
				t.Fatalf("token issue: %s", out)
			}
			cat := openstack(t, env, "catalog", "list", "-f", "json")
			if !strings.Contains(cat, "identity") || !strings.Contains(cat, f.url()) {
				t.Fatalf("catalog list through %s: %s", f.name, cat)
			}
			if out := openstack(t, append(osEnv(creds, f), noProject...), "--os-system-scope", "all", "token", "issue", "-f", "json"); !strings.Contains(out, `"system": "all"`) {
				t.Fatalf("admin system token: %s", out)
			}
		},
		// The metadata definitions catalog is replicated state: made
		// through this follower, read below through the other.
		"metadefs": func(t *testing.T) {
			glance(t, env, "md-namespace-create", "RS::CI::Catalog", "--visibility", "public", "--protected", "True")
			glance(t, env, "md-tag-create-multiple", "RS::CI::Catalog", "--names", "ci-a,ci-b")
		},
		"alice": func(t *testing.T) {
			openstack(t, env, "project", "create", "demo")
			openstack(t, env, "user", "create", "--project", "demo", "--password", "alice-pass-1", "alice")
			openstack(t, env, "role", "add", "--project", "demo", "--user", "alice", "member")
		},
	})
	// alice logs in through the other follower: read-your-writes across nodes.
	aliceEnv := osEnv(creds, followers[1], "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	openstack(t, aliceEnv, "token", "issue")
	// alice is a member of demo, not an admin: creating projects is refused.
	if out, err := openstackErr(aliceEnv, "project", "create", "nope"); err == nil {
		t.Fatalf("a member created a project: %s", out)
	}
	// She reads the public namespace and its tags; writes are admins'.
	if out := glance(t, aliceEnv, "md-namespace-show", "RS::CI::Catalog"); !strings.Contains(out, "ci-a") || !strings.Contains(out, "ci-b") {
		t.Fatalf("md-namespace-show through %s: %s", followers[1].name, out)
	}
	if out, err := glanceErr(aliceEnv, "md-namespace-create", "alice-ns"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("a member created a metadefs namespace: err=%v %s", err, out)
	}
	if out, err := glanceErr(env, "md-namespace-delete", "RS::CI::Catalog"); err == nil || !strings.Contains(out, "protected") {
		t.Fatalf("a protected namespace deleted: err=%v %s", err, out)
	}
	// System scope: the bootstrap admin holds admin on the system; alice
	// may scope to it only once granted a role there, and her system token
	// is issued by another node than the one the grant went through. The
	// CLI sends a project scope when one is set, so it is cleared.
	aliceSystem := append(append([]string{}, aliceEnv...), noProject...)
	if out, err := openstackErr(aliceSystem, "--os-system-scope", "all", "token", "issue"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("system token without a system role: err=%v %s", err, out)
	}
	openstack(t, env, "role", "add", "--system", "all", "--user", "alice", "reader")
	if out := openstack(t, aliceSystem, "--os-system-scope", "all", "token", "issue", "-f", "json"); !strings.Contains(out, `"system": "all"`) {
		t.Fatalf("alice's system token: %s", out)
	}

	checkRevocationEverywhere(t, creds, []*rackd{nodes["n1"], nodes["n2"], nodes["n3"]})

	// Kill the leader with SIGKILL while a client keeps writing through a
	// follower; every acknowledged write must survive and writes resume.
	writer := followers[0]
	tok := token(t, writer, "admin", creds["OS_PASSWORD"], "admin")
	var mu sync.Mutex
	var acked []string
	ackedAfterKill := 0
	killed := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(90 * time.Second)
		for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
			name := fmt.Sprintf("p%04d", i)
			var resp struct {
				Project struct {
					ID string `json:"id"`
				} `json:"project"`
			}
			code, err := call("POST", writer.url()+"/identity/v3/projects", tok, map[string]any{"project": map[string]any{"name": name}}, &resp)
			if err == nil && code == 201 {
				mu.Lock()
				acked = append(acked, name)
				select {
				case <-killed:
					ackedAfterKill++
				default:
				}
				n := ackedAfterKill
				mu.Unlock()
				if n >= 20 {
					return
				}
			} else {
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	leader.kill()
	close(killed)
	<-done
	mu.Lock()
	if ackedAfterKill < 20 {
		t.Fatalf("writes did not resume after the leader died: %d acknowledged after the kill (%d before)", ackedAfterKill, len(acked)-ackedAfterKill)
	}
	t.Logf("acknowledged %d writes, %d after killing leader %s", len(acked), ackedAfterKill, leader.name)
	names := append([]string(nil), acked...)
	mu.Unlock()
	for _, n := range followers {
		var list struct {
			Projects []struct {
				Name string `json:"name"`
			} `json:"projects"`
		}
		if code, err := call("GET", n.url()+"/identity/v3/projects", tok, nil, &list); err != nil || code != 200 {
			t.Fatalf("list projects on %s: %d %v", n.name, code, err)
		}
		have := map[string]bool{}
		for _, p := range list.Projects {
			have[p.Name] = true
		}
		for _, name := range names {
			if !have[name] {
				t.Fatalf("acknowledged project %s missing on %s", name, n.name)
			}
		}
	}

	// With a voter down the cluster keeps its quorum but is not healthy,
	// and says which node is down.
	st = waitStatus(t, creds, writer, "a new leader, and the killed voter reported down", func(s clusterStatus) bool {
		return s.Leader != "" && s.Leader != leader.name && s.Quorum && !s.Healthy && strings.Contains(strings.Join(s.Problems, "; "), "voter "+leader.name+" is down")
	})
	if out, err := rackctl(t, creds, writer, "cluster", "status"); err != nil || !strings.Contains(out, "healthy:  no (degraded") {
		t.Fatalf("cluster status with a voter down: %v\n%s", err, out)
	}

	// The killed node restarts and catches up.
	target := st.CommitIndex
	leader.start()
	leader.waitHealthy()
	waitStatus(t, creds, leader, "the restarted node to catch up", func(s clusterStatus) bool {
		return s.Node == leader.name && s.AppliedIndex >= target && s.Healthy
	})
	openstack(t, osEnv(creds, leader), "project", "show", names[len(names)-1])
	out, err = rackctl(t, creds, leader, "node", "list")
	if err != nil || !strings.Contains(out, "n1") || !strings.Contains(out, "n3") {
		t.Fatalf("node list: %v\n%s", err, out)
	}

	// A corrupt data dir gives a clear error instead of a crash.
	victim := followers[1]
	victim.kill()
	db := filepath.Join(victim.dataDir, "raft", "raft.db")
	if err := os.WriteFile(db, []byte(strings.Repeat("garbage!", 8192)), 0o600); err != nil {
		t.Fatal(err)
	}
	victim.start()
	if err, log := victim.waitExit(60 * time.Second); err == nil || !strings.Contains(log, "raft log") || strings.Contains(log, "panic") {
		t.Fatalf("corrupt data dir: err=%v log:\n%s", err, log)
	}
}

// checkMetricsAndVersion: /metrics on the API port needs an admin token
// (as X-Auth-Token or a Prometheus bearer token), and /healthz and the API
// root say which build runs.
func checkMetricsAndVersion(t *testing.T, n *rackd, creds map[string]string) {
	t.Helper()
	if code, err := call("GET", n.url()+"/metrics", "", nil, nil); err != nil || code != 401 {
		t.Fatalf("/metrics without a token: %d %v, want 401", code, err)
	}
	admin := token(t, n, "admin", creds["OS_PASSWORD"], "admin")
	req, _ := http.NewRequest("GET", n.url()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "rackstack_api_requests_total") {
		t.Fatalf("/metrics with an admin bearer token: %d\n%.300s", resp.StatusCode, body)
	}
	for _, path := range []string{"/healthz", "/"} {
		var doc struct {
			Version string `json:"version"`
		}
		if code, err := call("GET", n.url()+path, "", nil, &doc); err != nil || code != 200 || doc.Version == "" {
			t.Fatalf("%s: %d %v, version %q", path, code, err, doc.Version)
		}
	}
	out, err := exec.Command(filepath.Join(binDir, "rackd"), "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "rackd ") {
		t.Fatalf("rackd --version: %v %s", err, out)
	}
}

// checkRevocationEverywhere: a token revoked, or a role removed, through
// one node is refused by every other node as soon as the call returned.
func checkRevocationEverywhere(t *testing.T, creds map[string]string, nodes []*rackd) {
	t.Helper()
	admin := token(t, nodes[0], "admin", creds["OS_PASSWORD"], "admin")
	for i := 0; i < 9; i++ {
		via, then := nodes[i%3], nodes[(i+1)%3]
		tok := token(t, via, "alice", "alice-pass-1", "demo")
		if code, err := call("GET", then.url()+"/identity/v3/auth/projects", tok, nil, nil); err != nil || code != 200 {
			t.Fatalf("fresh token through %s: %d %v", then.name, code, err)
		}
		req, _ := http.NewRequest("DELETE", via.url()+"/identity/v3/auth/tokens", nil)
		req.Header.Set("X-Auth-Token", admin)
		req.Header.Set("X-Subject-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 204 {
			t.Fatalf("revoke through %s: %v %v", via.name, resp, err)
		}
		resp.Body.Close()
		if code, err := call("POST", then.url()+"/network/v2.0/networks", tok, map[string]any{"network": map[string]any{"name": "after-revoke"}}, nil); err != nil || code != 401 {
			t.Fatalf("a token revoked through %s wrote through %s right after: %d %v", via.name, then.name, code, err)
		}
	}
	// Role removal: alice's project token stops working everywhere.
	var users struct {
		Users []struct{ ID string } `json:"users"`
	}
	var projects struct {
		Projects []struct{ ID string } `json:"projects"`
	}
	var roles struct {
		Roles []struct{ ID string } `json:"roles"`
	}
	call("GET", nodes[0].url()+"/identity/v3/users?name=alice", admin, nil, &users)
	call("GET", nodes[0].url()+"/identity/v3/projects?name=demo", admin, nil, &projects)
	call("GET", nodes[0].url()+"/identity/v3/roles?name=member", admin, nil, &roles)
	if len(users.Users) != 1 || len(projects.Projects) != 1 || len(roles.Roles) != 1 {
		t.Fatalf("look up alice, demo, member: %+v %+v %+v", users, projects, roles)
	}
	grant := "/identity/v3/projects/" + projects.Projects[0].ID + "/users/" + users.Users[0].ID + "/roles/" + roles.Roles[0].ID
	for i := 0; i < 3; i++ {
		via, then := nodes[i], nodes[(i+1)%3]
		tok := token(t, via, "alice", "alice-pass-1", "demo")
		if code, err := call("DELETE", via.url()+grant, admin, nil, nil); err != nil || code != 204 {
			t.Fatalf("remove alice's role through %s: %d %v", via.name, code, err)
		}
		if code, err := call("GET", then.url()+"/network/v2.0/networks", tok, nil, nil); err != nil || code != 401 {
			t.Fatalf("a token whose role was removed through %s was accepted by %s right after: %d %v", via.name, then.name, code, err)
		}
		if code, err := call("PUT", via.url()+grant, admin, nil, nil); err != nil || code != 204 {
			t.Fatalf("give alice her role back: %d %v", code, err)
		}
	}
}
