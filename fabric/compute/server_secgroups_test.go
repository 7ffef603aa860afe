package compute

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

// groupPorts is fakePorts with security groups on its ports, as the
// network service keeps them: groups by project, each port's by id.
type groupPorts struct {
	*fakePorts
	mu     sync.Mutex
	groups map[string]map[string]string // project -> id -> name
	onPort map[string][]string          // port -> group ids
}

func (g *groupPorts) SecurityGroup(_ context.Context, project, nameOrID string) (string, string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, name := range g.groups[project] {
		if id == nameOrID || name == nameOrID {
			return id, name, nil
		}
	}
	return "", "", store.Fault(store.KindNotFound, "SecurityGroupNotFound", "Security group %s is not found for project %s", nameOrID, project)
}

func (g *groupPorts) SetPortSecurityGroup(_ context.Context, portID, groupID string, on bool) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	have := g.onPort[portID]
	if slices.Contains(have, groupID) == on {
		return false, nil
	}
	if on {
		g.onPort[portID] = append(slices.Clone(have), groupID)
	} else {
		g.onPort[portID] = slices.DeleteFunc(slices.Clone(have), func(x string) bool { return x == groupID })
	}
	return true, nil
}

func (g *groupPorts) SecurityGroups(_ context.Context, project string) ([]SecurityGroupInfo, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []SecurityGroupInfo
	for p, groups := range g.groups {
		if project != "" && p != project {
			continue
		}
		for id, name := range groups {
			info := SecurityGroupInfo{ID: id, Name: name, Project: p}
			if name == "web" {
				port := 80
				info.Rules = []SecurityGroupRuleInfo{
					{ID: "r-http", Direction: "ingress", Protocol: "tcp", PortMin: &port, PortMax: &port, RemoteIPPrefix: "10.0.0.0/8"},
					{ID: "r-icmp", Direction: "ingress", Protocol: "icmp", RemoteGroupID: "g-def"},
					{ID: "r-out", Direction: "egress"},
				}
			}
			out = append(out, info)
		}
	}
	return out, nil
}

// Nova's os-security-groups proxy shows the project's groups (ingress
// rules in Nova's shape) up to 2.35: the CLI finds a group there.
func TestSecurityGroupProxy(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.Ports = &groupPorts{fakePorts: f.ports,
		groups: map[string]map[string]string{projA: {"g-def": "default", "g-web": "web"}, projB: {"g-theirs": "theirs"}}}
	list := f.expect("GET", "/v2.1/os-security-groups", alice, "", nil, 200, "")["security_groups"].([]any)
	if len(list) != 2 {
		t.Fatalf("list: %v", list)
	}
	web := f.expect("GET", "/v2.1/os-security-groups/g-web", alice, "2.35", nil, 200, "")["security_group"].(map[string]any)
	rules := web["rules"].([]any)
	if web["name"] != "web" || web["tenant_id"] != projA || len(rules) != 2 {
		t.Fatalf("web: %v", web)
	}
	http := rules[0].(map[string]any)
	if http["ip_protocol"] != "tcp" || http["from_port"] != 80.0 || http["to_port"] != 80.0 || http["ip_range"].(map[string]any)["cidr"] != "10.0.0.0/8" || http["parent_group_id"] != "g-web" {
		t.Fatalf("http rule: %v", http)
	}
	icmp := rules[1].(map[string]any)
	if icmp["from_port"] != -1.0 || icmp["group"].(map[string]any)["name"] != "default" {
		t.Fatalf("icmp rule: %v", icmp)
	}
	f.expect("GET", "/v2.1/os-security-groups/g-theirs", alice, "", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-security-groups/g-theirs", bob, "", nil, 200, "")
	f.expect("GET", "/v2.1/os-security-groups/g-theirs", admin, "", nil, 200, "")
	f.expect("GET", "/v2.1/os-security-groups", alice, "2.36", nil, 404, "itemNotFound")
	f.svc.cfg.Ports = f.ports
	f.expect("GET", "/v2.1/os-security-groups", alice, "", nil, 501, "notImplemented")
}

func TestServerSecurityGroups(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	// Two NICs: the group goes on both.
	f.ports.addNetwork(netA2, "net-a2", projA, false)
	id := f.server(alice, "web", "networks", []any{map[string]any{"uuid": netA}, map[string]any{"uuid": netA2}})
	ports := f.row(id).Ports
	if len(ports) != 2 {
		t.Fatalf("ports %v", ports)
	}
	gp := &groupPorts{fakePorts: f.ports,
		groups: map[string]map[string]string{projA: {"g-def": "default", "g-web": "web"}, projB: {"g-theirs": "theirs"}},
		onPort: map[string][]string{ports[0]: {"g-def"}, ports[1]: {"g-def"}}}
	f.svc.cfg.Ports = gp
	act := func(tok string, body any, status int, fault string, inMsg ...string) {
		t.Helper()
		f.expect("POST", "/v2.1/servers/"+id+"/action", tok, "", body, status, fault, inMsg...)
	}
	shown := func() []string {
		t.Helper()
		var names []string
		for _, g := range f.show(alice, id, "")["security_groups"].([]any) {
			names = append(names, g.(map[string]any)["name"].(string))
		}
		return names
	}
	onPorts := func(want ...string) {
		t.Helper()
		gp.mu.Lock()
		defer gp.mu.Unlock()
		for _, p := range ports {
			if !slices.Equal(gp.onPort[p], want) {
				t.Fatalf("port %s groups %v, want %v", p, gp.onPort[p], want)
			}
		}
	}

	// Bad bodies name the field; unknown and other projects' groups are
	// not found; nothing changes.
	act(alice, map[string]any{"addSecurityGroup": nil}, 400, "badRequest", "addSecurityGroup")
	act(alice, map[string]any{"addSecurityGroup": map[string]any{}}, 400, "badRequest", "name")
	act(alice, map[string]any{"addSecurityGroup": map[string]any{"name": " "}}, 400, "badRequest", "name", "cannot be empty")
	act(alice, map[string]any{"addSecurityGroup": map[string]any{"name": "nope"}}, 404, "itemNotFound", "nope")
	act(alice, map[string]any{"addSecurityGroup": map[string]any{"name": "theirs"}}, 404, "itemNotFound")
	act(alice, map[string]any{"addSecurityGroup": map[string]any{"name": "g-theirs"}}, 404, "itemNotFound")
	act(bob, map[string]any{"addSecurityGroup": map[string]any{"name": "theirs"}}, 404, "itemNotFound")
	act(carol, map[string]any{"addSecurityGroup": map[string]any{"name": "web"}}, 403, "forbidden")
	onPorts("g-def")

	// Add by name: on every port, shown on the server.
	act(alice, map[string]any{"addSecurityGroup": map[string]any{"name": "web"}}, 202, "")
	onPorts("g-def", "g-web")
	if got := shown(); !slices.Equal(got, []string{"default", "web"}) {
		t.Fatalf("shown %v", got)
	}
	// Again: already there (400), by id too.
	act(alice, map[string]any{"addSecurityGroup": map[string]any{"name": "g-web"}}, 400, "badRequest", "already associated")
	// Remove default; remove it again: not associated (404).
	act(alice, map[string]any{"removeSecurityGroup": map[string]any{"name": "default"}}, 202, "")
	onPorts("g-web")
	if got := shown(); !slices.Equal(got, []string{"web"}) {
		t.Fatalf("shown %v", got)
	}
	act(alice, map[string]any{"removeSecurityGroup": map[string]any{"name": "default"}}, 404, "itemNotFound", "not associated")
	act(bob, map[string]any{"removeSecurityGroup": map[string]any{"name": "web"}}, 404, "itemNotFound")
	onPorts("g-web")
	// The last one removed: Nova shows no security_groups key at all.
	act(alice, map[string]any{"removeSecurityGroup": map[string]any{"name": "web"}}, 202, "")
	onPorts()
	if sv := f.show(alice, id, ""); sv["security_groups"] != nil {
		t.Fatalf("a server without groups shows security_groups %v", sv["security_groups"])
	}
	act(alice, map[string]any{"addSecurityGroup": map[string]any{"name": "web"}}, 202, "")

	// A network service without security groups: not implemented.
	f.svc.cfg.Ports = f.ports
	act(alice, map[string]any{"addSecurityGroup": map[string]any{"name": "web"}}, 501, "notImplemented")
}
