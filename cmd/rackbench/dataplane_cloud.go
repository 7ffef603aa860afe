package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	cloudclient "github.com/rackstack/rackstack/fabric/client"
)

// dataplaneCloud is `rackbench dataplane --cloud --from NODE --to NODE`:
// tenant traffic between two benchmark ports of a temporary network, one
// on each node (node/benchport: a namespace with a veth plugged into the
// dataplane as a guest's tap), with a security group of each --rules size
// on both. From one node to another the traffic crosses the real uplink
// with the network's VLAN; with --from = --to it stays on the node.
//
// Everything lives in a rackbench- project (cloud.go) and is removed at
// the end, on error and on Ctrl-C: the bench ports on the nodes, the
// Neutron ports, groups, subnet and network, the project's quotas.
func dataplaneCloud(ctx context.Context, o options) ([]Result, error) {
	if o.From == "" || o.To == "" {
		return nil, fmt.Errorf("--from and --to name the nodes of the two ports")
	}
	rules, err := parseRules(o.Rules)
	if err != nil {
		return nil, err
	}
	s, nodes, err := connectNodes(ctx, o, []string{o.From, o.To})
	if err != nil {
		return nil, fmt.Errorf("--from/--to: %w", err)
	}
	if o.Shape != nil {
		*o.Shape = shapeOf(nodes[:1+boolInt(o.From != o.To)])
	}
	for _, n := range []string{o.From, o.To} {
		if _, err := call(ctx, func(ctx context.Context) (any, error) { return s.c.DataplaneStatus(ctx, n) }); err != nil {
			return nil, fmt.Errorf("%w: node %s has no dataplane: %v", errNoCapacity, n, err)
		}
	}
	run := &dataplaneRun{s: s, project: runName()}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := run.cleanup(cctx); err != nil {
			s.log("rackbench dataplane: cleanup of %s: %v (run `rackbench clean --cloud`)", run.project, err)
		}
	}()
	if err := run.setup(ctx, rules); err != nil {
		return nil, err
	}
	path := "vlan"
	if o.From == o.To {
		path = "local"
	}
	tests := []struct {
		metric, unit, kind string
		streams            int
	}{
		{"tcp_stream", "Gbit/s", "stream", 1}, {"tcp_stream", "Gbit/s", "stream", 4},
		{"tcp_rr", "transactions/s", "rr", 0}, {"tcp_crr", "connections/s", "crr", 0},
	}
	prog := newProgress(o, len(rules)*len(tests)*o.Runs)
	defer prog.done()
	var out []Result
	for _, n := range rules {
		client, server, err := run.portPair(ctx, n, o.From, o.To)
		if err != nil {
			return nil, fmt.Errorf("rules=%d: %w", n, err)
		}
		for _, t := range tests {
			var vals []float64
			for r := 0; r < o.Runs; r++ {
				prog.start(fmt.Sprintf("%s streams=%d rules=%d run %d", t.kind, max(t.streams, 1), n, r+1))
				v, err := run.measure(ctx, o.From, client, server, t.kind, t.streams, o.Duration)
				if err != nil {
					return nil, fmt.Errorf("rules=%d %s: %w", n, t.kind, err)
				}
				vals = append(vals, v)
			}
			params := map[string]any{"from": o.From, "to": o.To, "path": path, "rules": n, "security": "on"}
			if t.kind == "stream" {
				params["streams"] = t.streams
			}
			out = append(out, newResult("dataplane", "rackstack-cloud", params, t.metric, t.unit, vals))
		}
		if err := run.dropPair(ctx, client, server); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// maxRules bounds --rules: each rule is one Neutron object.
const maxRules = 20000

func parseRules(spec string) ([]int, error) {
	var out []int
	for _, f := range splitList(spec) {
		var n int
		if _, err := fmt.Sscanf(f, "%d", &n); err != nil || n < 0 || n > maxRules || fmt.Sprint(n) != f {
			return nil, fmt.Errorf("--rules: %q is not a number of rules from 0 to %d", f, maxRules)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--rules: empty list")
	}
	return out, nil
}

const (
	benchCIDR     = "10.250.0.0/24"
	benchClientIP = "10.250.0.10"
	benchServerIP = "10.250.0.11"
	benchOwner    = "rackbench:port"
)

// dataplaneRun is one run's network resources, recorded as made.
type dataplaneRun struct {
	s         *cloudSession
	project   string
	projectID string
	network   string
	groups    map[int]string // rules → security group id
}

// benchPort is a Neutron port of the run with its bench port on a node.
type benchPort struct {
	id, node, mac, ip string
}

func (r *dataplaneRun) do(ctx context.Context, method, path string, in, out any) error {
	_, err := call(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, r.s.c.Do(ctx, method, path, in, out) })
	return err
}

func (r *dataplaneRun) setup(ctx context.Context, rules []int) error {
	p, err := call(ctx, func(ctx context.Context) (cloudclient.Project, error) {
		return r.s.c.CreateProject(ctx, r.project, "temporary project of a rackbench run; `rackbench clean --cloud` removes it", []string{benchTag})
	})
	if err != nil {
		return fmt.Errorf("create project %s: %w", r.project, err)
	}
	r.projectID = p.ID
	most := 0
	for _, n := range rules {
		most = max(most, n)
	}
	// The project is the run's alone: its quotas fit the largest group.
	quota := map[string]any{"quota": map[string]any{"security_group_rule": len(rules)*(most+4) + 8, "security_group": len(rules) + 2, "port": 4, "network": 1, "subnet": 1}}
	if err := r.do(ctx, http.MethodPut, "/network/v2.0/quotas/"+p.ID, quota, nil); err != nil {
		return fmt.Errorf("set quotas of %s: %w", r.project, err)
	}
	var net struct {
		Network struct{ ID string } `json:"network"`
	}
	if err := r.do(ctx, http.MethodPost, "/network/v2.0/networks", map[string]any{"network": map[string]any{"name": r.project, "project_id": p.ID}}, &net); err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	r.network = net.Network.ID
	sub := map[string]any{"subnet": map[string]any{"name": r.project, "project_id": p.ID, "network_id": r.network, "ip_version": 4,
		"cidr": benchCIDR, "gateway_ip": nil, "enable_dhcp": false}}
	if err := r.do(ctx, http.MethodPost, "/network/v2.0/subnets", sub, nil); err != nil {
		return fmt.Errorf("create subnet: %w", err)
	}
	r.groups = map[int]string{}
	for _, n := range rules {
		id, err := r.group(ctx, n)
		if err != nil {
			return fmt.Errorf("security group of %d rules: %w", n, err)
		}
		r.groups[n] = id
	}
	return nil
}

// group makes a security group of n ingress rules that match nothing of
// the benchmark's traffic (TCP to other ports from /32s elsewhere), and
// the rule that admits it: what a lookup costs with n rules present.
func (r *dataplaneRun) group(ctx context.Context, n int) (string, error) {
	var g struct {
		Group struct{ ID string } `json:"security_group"`
	}
	in := map[string]any{"security_group": map[string]any{"name": fmt.Sprintf("%s-%d", r.project, n), "project_id": r.projectID}}
	if err := r.do(ctx, http.MethodPost, "/network/v2.0/security-groups", in, &g); err != nil {
		return "", err
	}
	rule := func(min, max int, remote string) map[string]any {
		return map[string]any{"security_group_id": g.Group.ID, "project_id": r.projectID, "direction": "ingress", "ethertype": "IPv4",
			"protocol": "tcp", "port_range_min": min, "port_range_max": max, "remote_ip_prefix": remote}
	}
	batch := []any{rule(5201, 5202, benchCIDR)}
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := r.do(ctx, http.MethodPost, "/network/v2.0/security-group-rules", map[string]any{"security_group_rules": batch}, nil)
		batch = batch[:0]
		return err
	}
	for i := 0; i < n; i++ {
		port := 10000 + i%50000
		batch = append(batch, rule(port, port, fmt.Sprintf("10.%d.%d.%d/32", 100+i/65536%100, i/256%256, i%256)))
		if len(batch) == 1000 {
			if err := flush(); err != nil {
				return "", err
			}
		}
	}
	return g.Group.ID, flush()
}

// portPair makes the client port on from and the server port on to, in
// the group of n rules, with their bench ports, and waits until the
// dataplane has plugged both (ACTIVE).
func (r *dataplaneRun) portPair(ctx context.Context, n int, from, to string) (benchPort, benchPort, error) {
	var made []benchPort
	for _, side := range []struct{ node, ip string }{{from, benchClientIP}, {to, benchServerIP}} {
		var p struct {
			Port struct {
				ID  string `json:"id"`
				MAC string `json:"mac_address"`
			} `json:"port"`
		}
		in := map[string]any{"port": map[string]any{"name": r.project, "project_id": r.projectID, "network_id": r.network,
			"fixed_ips": []any{map[string]any{"ip_address": side.ip}}, "security_groups": []string{r.groups[n]},
			"binding:host_id": side.node, "device_owner": benchOwner}}
		if err := r.do(ctx, http.MethodPost, "/network/v2.0/ports", in, &p); err != nil {
			return benchPort{}, benchPort{}, fmt.Errorf("create port on %s: %w", side.node, err)
		}
		bp := benchPort{id: p.Port.ID, node: side.node, mac: p.Port.MAC, ip: side.ip}
		made = append(made, bp)
		spec := map[string]any{"port_id": bp.id, "mac_address": bp.mac, "address": side.ip + "/24"}
		if err := r.do(ctx, http.MethodPost, benchPortsPath(side.node), spec, nil); err != nil {
			return benchPort{}, benchPort{}, fmt.Errorf("make bench port on %s: %w", side.node, err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, bp := range made {
		for {
			var p struct {
				Port struct{ Status string } `json:"port"`
			}
			if err := r.do(ctx, http.MethodGet, "/network/v2.0/ports/"+bp.id, nil, &p); err != nil {
				return benchPort{}, benchPort{}, err
			}
			if p.Port.Status == "ACTIVE" {
				break
			}
			if time.Now().After(deadline) {
				return benchPort{}, benchPort{}, fmt.Errorf("port %s on %s not ACTIVE after 60s (status %s): the node's dataplane did not plug it", bp.id, bp.node, p.Port.Status)
			}
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return benchPort{}, benchPort{}, ctx.Err()
			}
		}
	}
	return made[0], made[1], nil
}

func benchPortsPath(node string) string {
	return "/rackstack/v1/nodes/" + url.PathEscape(node) + "/bench-ports"
}

// measure runs one test from client against server; the first exchange
// of a pair also settles ARP, so each test gets a short warm-up.
func (r *dataplaneRun) measure(ctx context.Context, from string, client, server benchPort, kind string, streams int, d time.Duration) (float64, error) {
	var out struct {
		Result struct{ Value float64 } `json:"result"`
	}
	in := map[string]any{"kind": kind, "target": server.ip, "streams": streams, "duration": d.String()}
	ctx, cancel := context.WithTimeout(ctx, d+90*time.Second)
	defer cancel()
	err := r.s.c.Do(ctx, http.MethodPost, benchPortsPath(from)+"/"+url.PathEscape(client.id)+"/run", in, &out)
	return out.Result.Value, err
}

// dropPair removes a pair's bench ports and Neutron ports.
func (r *dataplaneRun) dropPair(ctx context.Context, ports ...benchPort) error {
	for _, bp := range ports {
		if err := r.do(ctx, http.MethodDelete, benchPortsPath(bp.node)+"/"+url.PathEscape(bp.id), nil, nil); err != nil && !isNotFound(err) {
			return fmt.Errorf("remove bench port %s on %s: %w", bp.id, bp.node, err)
		}
		if err := r.do(ctx, http.MethodDelete, "/network/v2.0/ports/"+bp.id, nil, nil); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete port %s: %w", bp.id, err)
		}
	}
	return nil
}

func (r *dataplaneRun) cleanup(ctx context.Context) error {
	if r.projectID == "" {
		return nil
	}
	return cleanProject(ctx, r.s, cloudclient.Project{ID: r.projectID, Name: r.project})
}
