package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// provCloud is the one-node cloud of the provision suite: a rackd started
// `rackd dev`-style (bootstrap, a disk for image bytes) with its
// provisioning services on the segment's bridge, and the bare-metal flavor
// and test image its servers use. API calls go through launchCloud's
// client (admin token, JSON).
type provCloud struct {
	api    *launchCloud
	flavor string
}

// bmResourceClass is the nodes' resource class; the flavor asks for
// CUSTOM_BAREMETAL_BENCH.
const bmResourceClass = "baremetal-bench"

func startProvCloud(ctx context.Context, o options, pr provPrereqs, seg *provSegment, dir string) (c *provCloud, err error) {
	api := &launchCloud{dir: dir, log: o.Log, http: &http.Client{Timeout: 30 * time.Second}, servers: map[string]bool{}}
	c = &provCloud{api: api}
	defer func() {
		if err != nil {
			err = api.withLogTail(err)
			c.close()
			c = nil
		}
	}()
	listen, err1 := freeAddr()
	raftAddr, err2 := freeAddr()
	httpPort, err3 := freePortOn(seg.hostIP())
	if err := errors.Join(err1, err2, err3); err != nil {
		return c, fmt.Errorf("no free port: %w", err)
	}
	data := filepath.Join(dir, "rackd")
	api.rackd = &proc{name: "rackd", dataDir: data, listen: listen, args: []string{
		"--name", "bench", "--data-dir", data, "--listen", listen, "--raft-listen", raftAddr, "--s3-listen", "off",
		"--disk", filepath.Join(dir, "disk"), "--dataplane", "off", "--compute", "off",
		"--provision-interface", seg.bridge, "--provision-ramdisk", pr.ramdisk,
		"--provision-http-port", strconv.Itoa(httpPort), "--bootstrap",
	}}
	if o.ProvisionDHCP == "full" {
		api.rackd.args = append(api.rackd.args, "--provision-dhcp", "full", "--provision-range", seg.leaseRange())
	}
	if err := api.rackd.start(o.BinDir); err != nil {
		return c, fmt.Errorf("start rackd: %w", err)
	}
	if err := waitHealthy(api.rackd.url(), 60*time.Second); err != nil {
		return c, err
	}
	pw, err := readPassword(data)
	if err != nil {
		return c, err
	}
	if err := api.login(ctx, pw); err != nil {
		return c, err
	}
	quota := map[string]any{"quota_set": map[string]any{"instances": -1, "cores": -1, "ram": -1}}
	if _, err := api.do(ctx, "PUT", "/compute/v2.1/os-quota-sets/"+api.project, quota, nil, 200); err != nil {
		return c, err
	}
	if err := api.uploadImage(ctx, pr.image, "qcow2"); err != nil {
		return c, err
	}
	// An Ironic flavor: the node's resource class, and no VCPU, RAM or
	// disk of a hypervisor.
	var fl struct {
		Flavor struct{ ID string } `json:"flavor"`
	}
	if _, err := api.do(ctx, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{
		"name": "bm.bench", "vcpus": 1, "ram": 1, "disk": 1,
	}}, &fl, 200); err != nil {
		return c, err
	}
	c.flavor = fl.Flavor.ID
	specs := map[string]any{"extra_specs": map[string]string{
		"resources:CUSTOM_BAREMETAL_BENCH": "1", "resources:VCPU": "0", "resources:MEMORY_MB": "0", "resources:DISK_GB": "0",
	}}
	if _, err := api.do(ctx, "POST", "/compute/v2.1/flavors/"+c.flavor+"/os-extra_specs", specs, nil, 200); err != nil {
		return c, err
	}
	return c, nil
}

// freePortOn picks a free TCP port on ip.
func freePortOn(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ironic sends an Ironic API request with a microversion that shows
// properties and inventory fields.
func (c *provCloud) ironic(ctx context.Context, method, path string, in, out any, want ...int) (int, error) {
	return c.api.doHeader(ctx, method, "/baremetal"+path, map[string]string{"X-OpenStack-Ironic-API-Version": "1.81"}, in, out, want...)
}

// bmNodeRow is what the suite reads of a node.
type bmNodeRow struct {
	UUID           string         `json:"uuid"`
	ProvisionState string         `json:"provision_state"`
	LastError      string         `json:"last_error"`
	Properties     map[string]any `json:"properties"`
}

type bmPortRow struct {
	Address  string `json:"address"`
	NodeUUID string `json:"node_uuid"`
}

// enrolled matches machines to nodes: a node whose port has the
// machine's MAC and whose properties have cpus set (its inventory came
// in). It returns node ids by MAC.
func enrolled(nodes []bmNodeRow, ports []bmPortRow, macs []string) map[string]string {
	withCPUs := map[string]bool{}
	for _, n := range nodes {
		if v, ok := n.Properties["cpus"]; ok && v != nil && fmt.Sprint(v) != "" && fmt.Sprint(v) != "0" {
			withCPUs[n.UUID] = true
		}
	}
	out := map[string]string{}
	for _, p := range ports {
		for _, mac := range macs {
			if strings.EqualFold(p.Address, mac) && withCPUs[p.NodeUUID] {
				out[mac] = p.NodeUUID
			}
		}
	}
	return out
}

// waitEnrolled polls the node and port lists every 0.5 s until every
// machine is enrolled with inventory, and returns node ids by machine.
func (c *provCloud) waitEnrolled(ctx context.Context, ms []*provMachine, d time.Duration) (map[*provMachine]string, error) {
	var macs []string
	for _, m := range ms {
		macs = append(macs, m.mac)
	}
	var found map[string]string
	err := poll(ctx, 500*time.Millisecond, d, "machines enrolled with inventory", func() (bool, error) {
		var nodes struct {
			Nodes []bmNodeRow `json:"nodes"`
		}
		var ports struct {
			Ports []bmPortRow `json:"ports"`
		}
		if _, err := c.ironic(ctx, "GET", "/v1/nodes/detail", nil, &nodes, 200); err != nil {
			return false, err
		}
		if _, err := c.ironic(ctx, "GET", "/v1/ports/detail", nil, &ports, 200); err != nil {
			return false, err
		}
		found = enrolled(nodes.Nodes, ports.Ports, macs)
		return len(found) == len(macs), nil
	})
	if err != nil {
		var tails []string
		for _, m := range ms {
			if found[m.mac] == "" {
				tails = append(tails, m.name+" console:\n"+m.consoleTail(15))
			}
		}
		return nil, fmt.Errorf("%w\n%s", err, strings.Join(tails, "\n"))
	}
	out := map[*provMachine]string{}
	for _, m := range ms {
		out[m] = found[m.mac]
	}
	return out, nil
}

// setBMC gives the node its Redfish BMC and the bench resource class.
func (c *provCloud) setBMC(ctx context.Context, id string, m *provMachine) error {
	patch := []map[string]any{
		{"op": "replace", "path": "/driver", "value": "redfish"},
		{"op": "replace", "path": "/resource_class", "value": bmResourceClass},
	}
	for k, v := range m.driverInfo() {
		patch = append(patch, map[string]any{"op": "add", "path": "/driver_info/" + k, "value": v})
	}
	_, err := c.ironic(ctx, "PATCH", "/v1/nodes/"+id, patch, nil, 200)
	return err
}

// provisionState asks for a provision state change (manage, provide).
func (c *provCloud) provisionState(ctx context.Context, id, target string) error {
	_, err := c.ironic(ctx, "PUT", "/v1/nodes/"+id+"/states/provision", map[string]any{"target": target}, nil, 202)
	return err
}

// waitStates waits until every node is in want; a node in a failed state
// ends the wait with its last_error.
func (c *provCloud) waitStates(ctx context.Context, ids map[*provMachine]string, want string, d time.Duration) error {
	return poll(ctx, 500*time.Millisecond, d, "nodes "+want, func() (bool, error) {
		all := true
		for m, id := range ids {
			var n bmNodeRow
			if _, err := c.ironic(ctx, "GET", "/v1/nodes/"+id, nil, &n, 200); err != nil {
				return false, err
			}
			if strings.HasSuffix(n.ProvisionState, "failed") || n.ProvisionState == "error" {
				return false, fmt.Errorf("node %s (%s) is %q waiting for %q: %s\nconsole:\n%s", id, m.name, n.ProvisionState, want, n.LastError, m.consoleTail(15))
			}
			if n.ProvisionState != want {
				all = false
			}
		}
		return all, nil
	})
}

// deploy sends n POST /servers of the bare-metal flavor at once and
// returns when it sent them and the time until all are ACTIVE (polled
// every 0.5 s).
func (c *provCloud) deploy(ctx context.Context, prefix string, n int, d time.Duration) (time.Time, time.Duration, error) {
	names := map[string]bool{}
	gate := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i+1)
		names[name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			_, errs[i] = c.api.do(ctx, "POST", "/compute/v2.1/servers", map[string]any{"server": map[string]any{
				"name": name, "imageRef": c.api.imageID, "flavorRef": c.flavor,
			}}, nil, 202)
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return start, 0, fmt.Errorf("create servers: %w", err)
	}
	err := poll(ctx, 500*time.Millisecond, d, "ACTIVE servers", func() (bool, error) {
		list, err := c.api.listServers(ctx)
		if err != nil {
			return false, err
		}
		active := 0
		for _, s := range list {
			if !names[s.Name] {
				continue
			}
			switch s.Status {
			case "ACTIVE":
				active++
			case "ERROR":
				msg := ""
				if s.Fault != nil {
					msg = s.Fault.Message
				}
				return false, fmt.Errorf("server %s (%s) is ERROR: %s", s.Name, s.ID, msg)
			}
		}
		return active == n, nil
	})
	if err != nil {
		return start, 0, err
	}
	return start, time.Since(start), nil
}

// cpu is the CPU time rackd has used so far (0 when it is not running).
func (c *provCloud) cpu() time.Duration {
	r := c.api.rackd
	if r == nil || r.cmd == nil || r.cmd.Process == nil {
		return 0
	}
	d, _ := cpuTime(r.cmd.Process.Pid)
	return d
}

// logPath is rackd's log file.
func (c *provCloud) logPath() string {
	r := c.api.rackd
	return filepath.Join(filepath.Dir(r.dataDir), r.name+".log")
}

func (c *provCloud) withLogTail(err error) error { return c.api.withLogTail(err) }

// close stops rackd (SIGTERM, then SIGKILL by its PID). Its servers'
// machines are the suite's to power off; its data dir is the suite's
// temp dir.
func (c *provCloud) close() {
	r := c.api.rackd
	if r == nil || r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		r.cmd = nil
	case <-time.After(15 * time.Second):
		fmt.Fprintln(c.api.log, "provision: rackd did not stop on SIGTERM within 15s; killing it")
		r.kill()
	}
}
