package compute

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

// editPorts is fakePorts with security groups the proxy can change, kept
// as the network service keeps them: by project, with their rules; a
// group in inUse is on a port.
type editPorts struct {
	*fakePorts
	mu     sync.Mutex
	groups []*SecurityGroupInfo
	inUse  map[string]bool
	n      int
	// ruleCalls counts the rules asked of the network service.
	ruleCalls int
}

func (e *editPorts) newID() string {
	e.n++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", e.n)
}

// find is group id within project ("" : any).
func (e *editPorts) find(project, id string) (*SecurityGroupInfo, error) {
	for _, g := range e.groups {
		if g.ID == id && (project == "" || g.Project == project) {
			return g, nil
		}
	}
	return nil, store.Fault(store.KindNotFound, "SecurityGroupNotFound", "Security group %s does not exist", id)
}

func (e *editPorts) SecurityGroup(_ context.Context, project, nameOrID string) (string, string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.groups {
		if g.Project == project && (g.ID == nameOrID || g.Name == nameOrID) {
			return g.ID, g.Name, nil
		}
	}
	return "", "", store.Fault(store.KindNotFound, "SecurityGroupNotFound", "Security group %s is not found", nameOrID)
}

func (e *editPorts) SetPortSecurityGroup(context.Context, string, string, bool) (bool, error) {
	return false, nil
}

func (e *editPorts) SecurityGroups(_ context.Context, project string) ([]SecurityGroupInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []SecurityGroupInfo
	for _, g := range e.groups {
		if project == "" || g.Project == project {
			c := *g
			c.Rules = append([]SecurityGroupRuleInfo(nil), g.Rules...)
			out = append(out, c)
		}
	}
	return out, nil
}

func (e *editPorts) CreateSecurityGroup(_ context.Context, project, name, description string) (SecurityGroupInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if name == "full" {
		return SecurityGroupInfo{}, store.Fault(store.KindConflict, "OverQuota", "Quota exceeded for resources: ['security_group'].")
	}
	g := &SecurityGroupInfo{ID: e.newID(), Name: name, Description: description, Project: project,
		Rules: []SecurityGroupRuleInfo{{ID: e.newID(), Direction: "egress"}}}
	e.groups = append(e.groups, g)
	return *g, nil
}

func (e *editPorts) UpdateSecurityGroup(_ context.Context, project, id string, name, description *string) (SecurityGroupInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, err := e.find(project, id)
	if err != nil {
		return SecurityGroupInfo{}, err
	}
	if g.Name == "default" && name != nil && *name != "default" {
		return SecurityGroupInfo{}, store.Fault(store.KindConflict, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
	}
	if name != nil {
		g.Name = *name
	}
	if description != nil {
		g.Description = *description
	}
	return *g, nil
}

func (e *editPorts) DeleteSecurityGroup(_ context.Context, project, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	g, err := e.find(project, id)
	if err != nil {
		return err
	}
	if g.Name == "default" && project != "" {
		return store.Fault(store.KindConflict, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
	}
	if e.inUse[id] {
		return store.Fault(store.KindConflict, "SecurityGroupInUse", "Security Group %s in use.", id)
	}
	for i, x := range e.groups {
		if x == g {
			e.groups = append(e.groups[:i], e.groups[i+1:]...)
		}
	}
	return nil
}

func (e *editPorts) CreateSecurityGroupRule(_ context.Context, project, groupID string, rule SecurityGroupRuleInfo) (SecurityGroupRuleInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ruleCalls++
	g, err := e.find(project, groupID)
	if err != nil {
		return rule, err
	}
	rule.ID = e.newID()
	g.Rules = append(g.Rules, rule)
	return rule, nil
}

func (e *editPorts) DeleteSecurityGroupRule(_ context.Context, project, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.groups {
		if project != "" && g.Project != project {
			continue
		}
		for i, rl := range g.Rules {
			if rl.ID == id {
				g.Rules = append(g.Rules[:i], g.Rules[i+1:]...)
				return nil
			}
		}
	}
	return store.Fault(store.KindNotFound, "SecurityGroupRuleNotFound", "Security group rule %s does not exist", id)
}

// Nova's security group proxy makes, renames and deletes groups through
// the network service, refusing bad input in Nova's words and naming the
// field, to 2.35; another project's groups do not exist for the caller.
func TestSecurityGroupProxyWrites(t *testing.T) {
	f := newFixture(t)
	ep := &editPorts{fakePorts: f.ports, inUse: map[string]bool{}}
	f.svc.cfg.Ports = ep
	def, _ := ep.CreateSecurityGroup(context.Background(), projA, "default", "Default security group")
	theirs, _ := ep.CreateSecurityGroup(context.Background(), projB, "theirs", "")
	sg := func(fields map[string]any) map[string]any { return map[string]any{"security_group": fields} }
	long := strings.Repeat("x", 256)

	made := f.expect("POST", "/v2.1/os-security-groups", alice, "2.35", sg(map[string]any{"name": "web", "description": "web servers"}), 200, "")["security_group"].(map[string]any)
	id, _ := made["id"].(string)
	if made["name"] != "web" || made["description"] != "web servers" || made["tenant_id"] != projA || len(made["rules"].([]any)) != 0 {
		t.Fatalf("made %v", made)
	}
	if list := f.expect("GET", "/v2.1/os-security-groups", alice, "", nil, 200, "")["security_groups"].([]any); len(list) != 2 {
		t.Fatalf("list after create: %v", list)
	}

	// Bad bodies name the field and make nothing.
	for _, c := range []struct {
		body  any
		field string
	}{
		{map[string]any{}, "security_group"},
		{sg(map[string]any{"description": "d"}), "name"},
		{sg(map[string]any{"name": " ", "description": "d"}), "name"},
		{sg(map[string]any{"name": long, "description": "d"}), "name"},
		{sg(map[string]any{"name": 7, "description": "d"}), "name"},
		{sg(map[string]any{"name": "n"}), "description"},
		{sg(map[string]any{"name": "n", "description": long}), "description"},
		{sg(map[string]any{"name": "n", "description": "d", "stateful": false}), "stateful"},
	} {
		f.expect("POST", "/v2.1/os-security-groups", alice, "", c.body, 400, "badRequest", c.field)
	}
	f.expect("POST", "/v2.1/os-security-groups", alice, "", sg(map[string]any{"name": "full", "description": ""}), 403, "forbidden", "Quota exceeded")
	f.expect("POST", "/v2.1/os-security-groups", carol, "", sg(map[string]any{"name": "n", "description": ""}), 403, "forbidden")
	if n := len(f.expect("GET", "/v2.1/os-security-groups", alice, "", nil, 200, "")["security_groups"].([]any)); n != 2 {
		t.Fatalf("refused creates made groups: %d", n)
	}

	// Update: name and description; ids are UUIDs; others' are not found.
	up := f.expect("PUT", "/v2.1/os-security-groups/"+id, alice, "", sg(map[string]any{"name": "www", "description": "new"}), 200, "")["security_group"].(map[string]any)
	if up["name"] != "www" || up["description"] != "new" || up["id"] != id {
		t.Fatalf("updated %v", up)
	}
	f.expect("PUT", "/v2.1/os-security-groups/not-a-uuid", alice, "", sg(map[string]any{"name": "x"}), 400, "badRequest", "uuid")
	f.expect("PUT", "/v2.1/os-security-groups/"+theirs.ID, alice, "", sg(map[string]any{"name": "x"}), 404, "itemNotFound")
	f.expect("PUT", "/v2.1/os-security-groups/"+id, alice, "", sg(map[string]any{"name": long}), 400, "badRequest", "name")
	f.expect("PUT", "/v2.1/os-security-groups/"+def.ID, alice, "", sg(map[string]any{"name": "x"}), 400, "badRequest", "default")
	f.expect("PUT", "/v2.1/os-security-groups/"+id, alice, "2.36", sg(map[string]any{"name": "x"}), 404, "itemNotFound")

	// Delete: the default group and a group in use are Nova's 400.
	f.expect("DELETE", "/v2.1/os-security-groups/"+def.ID, alice, "", nil, 400, "badRequest", "default security group")
	ep.inUse[id] = true
	f.expect("DELETE", "/v2.1/os-security-groups/"+id, alice, "", nil, 400, "badRequest", "in use")
	delete(ep.inUse, id)
	f.expect("DELETE", "/v2.1/os-security-groups/"+theirs.ID, alice, "", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-security-groups/nope", alice, "", nil, 400, "badRequest", "uuid")
	f.expect("DELETE", "/v2.1/os-security-groups/"+id, alice, "2.36", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-security-groups/"+id, alice, "", nil, 202, "")
	f.expect("DELETE", "/v2.1/os-security-groups/"+id, alice, "", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-security-groups/"+theirs.ID, bob, "", nil, 200, "")

	// A network service that cannot change groups: not implemented.
	f.svc.cfg.Ports = &groupPorts{fakePorts: f.ports}
	f.expect("POST", "/v2.1/os-security-groups", alice, "", sg(map[string]any{"name": "n", "description": ""}), 501, "notImplemented")
}

// Rules are Nova's ingress rules: tcp/udp/icmp with Nova's port checks,
// from an address range or a group; the same rule twice is a 400.
func TestSecurityGroupRuleProxy(t *testing.T) {
	f := newFixture(t)
	ep := &editPorts{fakePorts: f.ports}
	f.svc.cfg.Ports = ep
	ctx := context.Background()
	web, _ := ep.CreateSecurityGroup(ctx, projA, "web", "")
	peer, _ := ep.CreateSecurityGroup(ctx, projA, "peer", "")
	theirs, _ := ep.CreateSecurityGroup(ctx, projB, "theirs", "")
	rule := func(fields map[string]any) map[string]any {
		fields["parent_group_id"] = web.ID
		return map[string]any{"security_group_rule": fields}
	}
	add := func(tok string, body any, status int, fault string, inMsg ...string) map[string]any {
		t.Helper()
		out := f.expect("POST", "/v2.1/os-security-group-rules", tok, "", body, status, fault, inMsg...)
		if status != 200 {
			return nil
		}
		return out["security_group_rule"].(map[string]any)
	}

	ssh := add(alice, rule(map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}), 200, "")
	if ssh["ip_protocol"] != "tcp" || ssh["from_port"] != 22.0 || ssh["to_port"] != 22.0 || ssh["parent_group_id"] != web.ID ||
		ssh["ip_range"].(map[string]any)["cidr"] != "10.0.0.0/8" || ssh["id"] == "" {
		t.Fatalf("ssh rule %v", ssh)
	}
	add(alice, rule(map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}), 400, "badRequest", "This rule already exists in group "+web.ID)
	// From a group: every port when none is given; the group's name shown.
	fromPeer := add(alice, rule(map[string]any{"ip_protocol": "tcp", "group_id": peer.ID}), 200, "")
	if fromPeer["from_port"] != 1.0 || fromPeer["to_port"] != 65535.0 || fromPeer["group"].(map[string]any)["name"] != "peer" {
		t.Fatalf("group rule %v", fromPeer)
	}
	// ICMP of any type and code: no ports asked of the network service.
	icmp := add(alice, rule(map[string]any{"ip_protocol": "icmp", "from_port": -1, "to_port": -1}), 200, "")
	if icmp["from_port"] != -1.0 || icmp["ip_range"].(map[string]any)["cidr"] != "0.0.0.0/0" {
		t.Fatalf("icmp rule %v", icmp)
	}
	add(alice, rule(map[string]any{"ip_protocol": "udp", "from_port": "53", "to_port": "53", "cidr": "2001:db8::/32"}), 200, "")
	// A range with host bits is shown as given; by its network it is the
	// same rule.
	net := add(alice, rule(map[string]any{"ip_protocol": "tcp", "from_port": 80, "to_port": 80, "cidr": "10.2.3.124/24"}), 200, "")
	if got := net["ip_range"].(map[string]any)["cidr"]; got != "10.2.3.124/24" {
		t.Fatalf("range %v, want 10.2.3.124/24", got)
	}
	add(alice, rule(map[string]any{"ip_protocol": "tcp", "from_port": 80, "to_port": 80, "cidr": "10.2.3.0/24"}), 400, "badRequest", "already exists")
	made := ep.ruleCalls

	// Bad rules: 400 naming the field, 404 for groups the caller does not
	// have; none reaches the network service.
	for _, c := range []struct {
		fields map[string]any
		inMsg  string
	}{
		{map[string]any{"ip_protocol": "tcp", "from_port": 65536, "to_port": 22}, "Former value cannot be greater than the later"},
		{map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 65536}, "between 1-65535"},
		{map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 21}, "Invalid port range 22:21"},
		{map[string]any{"ip_protocol": "udp", "from_port": 0, "to_port": 21}, "between 1-65535"},
		{map[string]any{"ip_protocol": "icmp", "from_port": 256, "to_port": 0}, "type:code"},
		{map[string]any{"ip_protocol": "tcp", "from_port": "x", "to_port": 22}, "must be integers"},
		{map[string]any{"ip_protocol": "999abc", "from_port": 22, "to_port": 22}, "Invalid IP protocol 999abc"},
		{map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.300/8"}, "cidr"},
		{map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.1.0.0/0"}, "Bad prefix"},
		{map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8", "group_id": peer.ID}, "cidr"},
		{map[string]any{"cidr": "10.0.0.0/8"}, "Not enough parameters"},
		{map[string]any{"ip_protocol": "tcp", "from_port": 22}, "Not enough parameters"},
		{map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "group_id": "peer"}, "uuid"},
		{map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 22, "direction": "egress"}, "direction"},
	} {
		add(alice, rule(c.fields), 400, "badRequest", c.inMsg)
	}
	add(alice, map[string]any{"security_group_rule": map[string]any{"parent_group_id": "web", "ip_protocol": "tcp", "from_port": 22, "to_port": 22}}, 400, "badRequest", "uuid")
	add(alice, map[string]any{"security_group_rule": map[string]any{"parent_group_id": theirs.ID, "ip_protocol": "tcp", "from_port": 22, "to_port": 22}}, 404, "itemNotFound")
	add(alice, rule(map[string]any{"ip_protocol": "tcp", "group_id": theirs.ID}), 404, "itemNotFound")
	add(carol, rule(map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 22}), 403, "forbidden")
	f.expect("POST", "/v2.1/os-security-group-rules", alice, "2.36", rule(map[string]any{"ip_protocol": "tcp", "from_port": 22, "to_port": 22}), 404, "itemNotFound")
	if ep.ruleCalls != made {
		t.Fatalf("refused rules reached the network service: %d calls, want %d", ep.ruleCalls, made)
	}
	shown := f.expect("GET", "/v2.1/os-security-groups/"+web.ID, alice, "", nil, 200, "")["security_group"].(map[string]any)
	if n := len(shown["rules"].([]any)); n != 5 {
		t.Fatalf("web has %d rules, want 5: %v", n, shown)
	}

	// Delete: 202, then not found; another project's rule is not found.
	ruleID := ssh["id"].(string)
	f.expect("DELETE", "/v2.1/os-security-group-rules/"+ruleID, bob, "", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-security-group-rules/"+ruleID, alice, "2.36", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-security-group-rules/"+ruleID, alice, "", nil, 202, "")
	f.expect("DELETE", "/v2.1/os-security-group-rules/"+ruleID, alice, "", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-security-group-rules/r-1", alice, "", nil, 400, "badRequest", "uuid")
}

// A server's security groups are those on its ports, at any microversion.
func TestServerSecurityGroupList(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	ep := &editPorts{fakePorts: f.ports}
	f.svc.cfg.Ports = ep
	ctx := context.Background()
	web, _ := ep.CreateSecurityGroup(ctx, projA, "web", "")
	app, _ := ep.CreateSecurityGroup(ctx, projA, "app", "")
	ep.CreateSecurityGroup(ctx, projA, "unused", "")
	id := f.server(alice, "s1")
	ports := f.row(id).Ports
	f.ports.mu.Lock()
	f.ports.ports[ports[0]].SecurityGroups = []string{web.ID, app.ID}
	f.ports.mu.Unlock()
	for _, v := range []string{"", "2.36"} {
		list := f.expect("GET", "/v2.1/servers/"+id+"/os-security-groups", alice, v, nil, 200, "")["security_groups"].([]any)
		if len(list) != 2 || list[0].(map[string]any)["name"] != "app" || list[1].(map[string]any)["id"] != web.ID {
			t.Fatalf("at %q: %v", v, list)
		}
	}
	f.expect("GET", "/v2.1/servers/"+id+"/os-security-groups", bob, "", nil, 404, "itemNotFound")
}
