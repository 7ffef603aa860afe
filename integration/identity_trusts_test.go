//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// userEnv is the CLI's environment for user with password, scoped to
// project ("" for none: a trust gives the scope), on node n.
func userEnv(creds map[string]string, n *rackd, user, password, project string) []string {
	env := []string{}
	for _, kv := range osEnv(creds, n) {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_PROJECT_ID", "OS_TENANT_NAME", "OS_PROJECT_DOMAIN_NAME", "OS_PROJECT_DOMAIN_ID":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "OS_USERNAME="+user, "OS_PASSWORD="+password)
	if project != "" {
		env = append(env, "OS_PROJECT_NAME="+project, "OS_PROJECT_DOMAIN_NAME=Default")
	}
	return env
}

// idOf runs a CLI create/show with -f json and returns the id.
func idOf(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out := openstack(t, env, append(args, "-f", "json")...)
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.ID == "" {
		t.Fatalf("openstack %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v.ID
}

// Trusts with the real CLI, as Heat uses them: a user delegates its
// member role on a project to another user, who then works in that
// project with `--os-trust-id` and nothing of the trustor's; the trust
// gives no more than it delegates, and once deleted gives nothing, and
// the tokens it gave are refused.
func TestTrustCLI(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "trusts")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)

	project := idOf(t, admin, "project", "create", "stackp")
	trustor := idOf(t, admin, "user", "create", "--password", "tor-pass", "--project", "stackp", "tor")
	trustee := idOf(t, admin, "user", "create", "--password", "tee-pass", "tee")
	openstack(t, admin, "role", "add", "--project", "stackp", "--user", "tor", "member")
	openstack(t, admin, "role", "create", "kept")
	openstack(t, admin, "role", "add", "--project", "stackp", "--user", "tor", "kept")
	tor := userEnv(creds, n, "tor", "tor-pass", "stackp")

	// A user that may not list users names them by id.
	out := openstack(t, tor, "trust", "create", "--project", project, "--role", "member", "--impersonate", trustor, trustee, "-f", "json")
	var tr map[string]any
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr["id"] == nil {
		t.Fatalf("trust create: %v\n%s", err, out)
	}
	id := tr["id"].(string)
	if tr["impersonation"] != true || tr["project_id"] != project || tr["trustee_user_id"] != trustee || tr["roles"] != "member" {
		t.Fatalf("trust create output: %v", tr)
	}
	if out := openstack(t, tor, "trust", "list", "-f", "json"); !strings.Contains(out, id) {
		t.Fatalf("trust list as the trustor lacks the trust:\n%s", out)
	}
	if out := openstack(t, admin, "trust", "list", "-f", "json"); !strings.Contains(out, id) {
		t.Fatalf("trust list as admin lacks the trust:\n%s", out)
	}
	if out := openstack(t, tor, "trust", "show", id, "-f", "json"); !strings.Contains(out, trustee) || !strings.Contains(out, `"member"`) {
		t.Fatalf("trust show:\n%s", out)
	}
	// A role the trustor does not hold cannot be delegated.
	if out, err := openstackErr(tor, "trust", "create", "--project", project, "--role", "admin", trustor, trustee); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("delegating admin: err=%v\n%s", err, out)
	}

	// The trustee, with no project of its own there: the trust's scope.
	teeAlone := userEnv(creds, n, "tee", "tee-pass", "")
	tee := append(append([]string{}, teeAlone...), "OS_TRUST_ID="+id)
	out = openstack(t, tee, "token", "issue", "-f", "json")
	var tok struct {
		ID        string `json:"id"`
		ProjectID string `json:"project_id"`
		UserID    string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(out), &tok); err != nil || tok.ProjectID != project || tok.UserID != trustor {
		t.Fatalf("token issue with a trust (impersonating %s on %s): %v\n%s", trustor, project, err, out)
	}
	if out := openstack(t, teeAlone, "--os-trust-id", id, "token", "issue", "-f", "json"); !strings.Contains(out, project) {
		t.Fatalf("token issue --os-trust-id:\n%s", out)
	}
	// It works in the project through another service, as member only.
	openstack(t, tee, "network", "create", "through-trust")
	if out, err := openstackErr(tee, "project", "create", "not-allowed"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("an admin call through a member trust: err=%v\n%s", err, out)
	}
	var body struct {
		Token struct {
			Roles []struct{ Name string } `json:"roles"`
			Trust *struct {
				ID string `json:"id"`
			} `json:"OS-TRUST:trust"`
		} `json:"token"`
	}
	adminTok := token(t, n, "admin", creds["OS_PASSWORD"], "admin")
	req, _ := http.NewRequest("GET", n.url()+"/identity/v3/auth/tokens", nil)
	req.Header.Set("X-Auth-Token", adminTok)
	req.Header.Set("X-Subject-Token", tok.ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body.Token.Trust == nil || body.Token.Trust.ID != id {
		t.Fatalf("the token body names no trust: %+v", body)
	}
	for _, r := range body.Token.Roles {
		if r.Name == "kept" || r.Name == "admin" {
			t.Fatalf("a trust token holds %s, not delegated: %+v", r.Name, body.Token.Roles)
		}
	}
	// A trust token makes no credentials of its own.
	if out, err := openstackErr(tee, "application", "credential", "create", "escape"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("application credential from a trust token: err=%v\n%s", err, out)
	}

	openstack(t, tor, "trust", "delete", id)
	if out, err := openstackErr(tee, "token", "issue"); err == nil || !strings.Contains(out, "404") {
		t.Fatalf("token issue with a deleted trust: err=%v\n%s", err, out)
	}
	if code, err := call("GET", n.url()+"/network/v2.0/networks", tok.ID, nil, nil); err != nil || code != 401 {
		t.Fatalf("a token of a deleted trust: %d %v", code, err)
	}
	if out := openstack(t, tor, "trust", "list", "-f", "json"); strings.Contains(out, id) {
		t.Fatalf("trust list after delete:\n%s", out)
	}
}

// A trust's use limit holds across a cluster: tokens asked of all three
// nodes at once are issued exactly as many times as the trust allows,
// and a trust deleted through one node voids its tokens on the others
// when the call returns.
func TestTrustUsesAcrossNodes(t *testing.T) {
	n1 := newRackd(t, "tr1")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	out, err := rackctl(t, creds, n1, "cluster", "join-token", "create", "--ttl", "1h", "--uses", "2", "-o", "json")
	var jt struct {
		Token string `json:"token"`
	}
	if err != nil || json.Unmarshal([]byte(out), &jt) != nil || jt.Token == "" {
		t.Fatalf("join-token create: %v\n%s", err, out)
	}
	nodes := []*rackd{n1}
	for _, name := range []string{"tr2", "tr3"} {
		n := newRackd(t, name, "--join", n1.url(), "--join-token", jt.Token)
		n.start()
		nodes = append(nodes, n)
	}
	for _, n := range nodes[1:] {
		n.waitHealthy()
	}
	waitStatus(t, creds, n1, "three healthy voters", func(s clusterStatus) bool { return len(s.Members) == 3 && s.Healthy })

	admin := token(t, n1, "admin", creds["OS_PASSWORD"], "admin")
	mk := func(path, key string, fields map[string]any) string {
		t.Helper()
		var out map[string]map[string]any
		if code, err := call("POST", n1.url()+"/identity/v3"+path, admin, map[string]any{key: fields}, &out); err != nil || code != 201 {
			t.Fatalf("create %s: %d %v", path, code, err)
		}
		return out[key]["id"].(string)
	}
	project := mk("/projects", "project", map[string]any{"name": "shared"})
	trustor := mk("/users", "user", map[string]any{"name": "tor", "password": "tor-pass"})
	trustee := mk("/users", "user", map[string]any{"name": "tee", "password": "tee-pass"})
	var roles struct {
		Roles []struct{ ID string } `json:"roles"`
	}
	call("GET", n1.url()+"/identity/v3/roles?name=member", admin, nil, &roles)
	if code, err := call("PUT", n1.url()+"/identity/v3/projects/"+project+"/users/"+trustor+"/roles/"+roles.Roles[0].ID, admin, nil, nil); err != nil || code != 204 {
		t.Fatalf("grant: %d %v", code, err)
	}
	torTok := token(t, n1, "tor", "tor-pass", "shared")
	trust := func(uses any) string {
		t.Helper()
		var out struct {
			Trust struct{ ID string } `json:"trust"`
		}
		in := map[string]any{"trust": map[string]any{"trustor_user_id": trustor, "trustee_user_id": trustee, "project_id": project,
			"impersonation": false, "roles": []any{map[string]any{"name": "member"}}, "remaining_uses": uses}}
		if code, err := call("POST", n1.url()+"/identity/v3/OS-TRUST/trusts", torTok, in, &out); err != nil || code != 201 {
			t.Fatalf("create trust: %d %v", code, err)
		}
		return out.Trust.ID
	}
	issue := func(n *rackd, id string) (int, string) {
		body := fmt.Sprintf(`{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":%q,"password":"tee-pass"}}},"scope":{"OS-TRUST:trust":{"id":%q}}}}`, trustee, id)
		resp, err := http.Post(n.url()+"/identity/v3/auth/tokens", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Subject-Token")
	}

	const uses, asks = 4, 15
	id := trust(uses)
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < asks; i++ {
		wg.Add(1)
		go func(n *rackd) {
			defer wg.Done()
			code, _ := issue(n, id)
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}(nodes[i%3])
	}
	wg.Wait()
	if codes[201] != uses || codes[403] != asks-uses {
		t.Fatalf("%d asks of a trust of %d uses across three nodes: %v", asks, uses, codes)
	}
	for _, n := range nodes {
		var out struct {
			Trust struct {
				RemainingUses *int `json:"remaining_uses"`
			} `json:"trust"`
		}
		if code, err := call("GET", n.url()+"/identity/v3/OS-TRUST/trusts/"+id, torTok, nil, &out); err != nil || code != 200 || out.Trust.RemainingUses == nil || *out.Trust.RemainingUses != 0 {
			t.Fatalf("the trust on %s: %d %v %+v", n.name, code, err, out)
		}
	}

	// Deleted through one node, refused by the next right after.
	for i := 0; i < 3; i++ {
		via, then := nodes[i], nodes[(i+1)%3]
		id := trust(nil)
		code, tok := issue(via, id)
		if code != 201 {
			t.Fatalf("trust token through %s: %d", via.name, code)
		}
		if code, err := call("GET", then.url()+"/network/v2.0/networks", tok, nil, nil); err != nil || code != 200 {
			t.Fatalf("a trust token through %s: %d %v", then.name, code, err)
		}
		if code, err := call("DELETE", via.url()+"/identity/v3/OS-TRUST/trusts/"+id, torTok, nil, nil); err != nil || code != 204 {
			t.Fatalf("delete the trust through %s: %d %v", via.name, code, err)
		}
		if code, err := call("GET", then.url()+"/network/v2.0/networks", tok, nil, nil); err != nil || code != 401 {
			t.Fatalf("a token of a trust deleted through %s was accepted by %s right after: %d %v", via.name, then.name, code, err)
		}
	}
}

// Inherited roles (OS-INHERIT) with the real CLI: a role added on a
// domain with --inherited lets the user work in a project of the domain
// (one made after the grant too), not on the domain itself, and the
// revoke takes it away.
func TestInheritedRoleCLI(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "inherit")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)

	openstack(t, admin, "domain", "create", "corp")
	openstack(t, admin, "user", "create", "--domain", "corp", "--password", "ivy-pass", "ivy")
	openstack(t, admin, "role", "add", "--domain", "corp", "--user", "ivy", "--user-domain", "corp", "--inherited", "member")
	if out := openstack(t, admin, "role", "assignment", "list", "--user", "ivy", "--user-domain", "corp", "--inherited", "-f", "json"); !strings.Contains(out, `"Inherited": true`) {
		t.Fatalf("role assignment list --inherited:\n%s", out)
	}
	project := idOf(t, admin, "project", "create", "--domain", "corp", "later")
	ivy := []string{}
	for _, kv := range userEnv(creds, n, "ivy", "ivy-pass", "") {
		if !strings.HasPrefix(kv, "OS_USER_DOMAIN_NAME=") {
			ivy = append(ivy, kv)
		}
	}
	ivy = append(ivy, "OS_USER_DOMAIN_NAME=corp")
	inProject := append(append([]string{}, ivy...), "OS_PROJECT_ID="+project)
	if out := openstack(t, inProject, "token", "issue", "-f", "json"); !strings.Contains(out, project) {
		t.Fatalf("token issue in a project of the domain:\n%s", out)
	}
	openstack(t, inProject, "network", "create", "inherited-net")
	onDomain := append(append([]string{}, ivy...), "OS_DOMAIN_NAME=corp")
	if out, err := openstackErr(onDomain, "token", "issue"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("a domain token from a role inherited to projects: err=%v\n%s", err, out)
	}
	openstack(t, admin, "role", "remove", "--domain", "corp", "--user", "ivy", "--user-domain", "corp", "--inherited", "member")
	if out, err := openstackErr(inProject, "token", "issue"); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("token issue after the inherited role was removed: err=%v\n%s", err, out)
	}
}

// Policy documents (/v3/policies) with the real CLI: stored, shown,
// changed and deleted as Keystone keeps them for other services.
func TestPolicyCLI(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "policy")
	admin := osEnv(openrc(t, n.dataDir), n)
	file := t.TempDir() + "/policy.json"
	if err := os.WriteFile(file, []byte(`{"compute:get": "role:reader"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	id := idOf(t, admin, "policy", "create", "--type", "application/json", file)
	if out := openstack(t, admin, "policy", "show", id, "-f", "json"); !strings.Contains(out, `compute:get`) {
		t.Fatalf("policy show:\n%s", out)
	}
	openstack(t, admin, "policy", "set", "--type", "text/json", id)
	if out := openstack(t, admin, "policy", "list", "-f", "json"); !strings.Contains(out, id) || !strings.Contains(out, "text/json") {
		t.Fatalf("policy list:\n%s", out)
	}
	openstack(t, admin, "policy", "delete", id)
	if out, err := openstackErr(admin, "policy", "show", id); err == nil || !strings.Contains(out, "No policy") {
		t.Fatalf("policy show after delete: err=%v\n%s", err, out)
	}
}

// Endpoint filtering (OS-EP-FILTER) with the real CLI: a project given
// an endpoint group sees only its endpoints in its catalog, and the whole
// catalog again once the group is removed.
func TestEndpointFilterCLI(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := startDevCloud(t, "epfilter")
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	openstack(t, admin, "project", "create", "edge")
	openstack(t, admin, "user", "create", "--password", "ed-pass", "--project", "edge", "ed")
	openstack(t, admin, "role", "add", "--project", "edge", "--user", "ed", "member")
	ed := userEnv(creds, n, "ed", "ed-pass", "edge")
	types := func() string {
		t.Helper()
		var cat []struct {
			Type string `json:"Type"`
		}
		out := openstack(t, ed, "catalog", "list", "-f", "json")
		if err := json.Unmarshal([]byte(out), &cat); err != nil {
			t.Fatalf("catalog list: %v\n%s", err, out)
		}
		var ts []string
		for _, c := range cat {
			ts = append(ts, c.Type)
		}
		return strings.Join(ts, ",")
	}
	if all := types(); !strings.Contains(all, "compute") || !strings.Contains(all, "identity") {
		t.Fatalf("catalog before any filter: %s", all)
	}
	identity := idOf(t, admin, "service", "show", "identity")
	file := t.TempDir() + "/filters.json"
	if err := os.WriteFile(file, []byte(`{"service_id": "`+identity+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	openstack(t, admin, "endpoint", "group", "create", "--description", "identity only", "idonly", file)
	openstack(t, admin, "endpoint", "group", "add", "project", "idonly", "edge")
	if got := types(); got != "identity" {
		t.Fatalf("catalog of a project given an identity-only group: %s", got)
	}
	openstack(t, admin, "endpoint", "group", "remove", "project", "idonly", "edge")
	if all := types(); !strings.Contains(all, "compute") {
		t.Fatalf("catalog after the group was removed: %s", all)
	}
	openstack(t, admin, "endpoint", "group", "delete", "idonly")
}
