package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rackstack/rackstack/dataplane"
)

// launchCloud is the one-node cloud the launch suite measures: a rackd it
// started with compute and the dataplane on, and what a server needs (an
// image, a small flavor, a network with a subnet), reached over HTTP.
type launchCloud struct {
	rackd   *proc
	dir     string // temp dir: rackd's data dir, disk and log
	runDir  string // QEMU's sockets and pid files (--vm-run-dir)
	pinDir  string // /sys/fs/bpf/rackbench-<pid>: removeStale knows the name
	log     io.Writer
	http    *http.Client
	token   string
	project string
	imageID string
	flavor  string
	network string
	// capacity is how many 1-vCPU servers the node takes at once.
	capacity int
	servers  map[string]bool // ids created and not yet seen gone
}

const (
	launchFlavorRAM = 128 // MiB: enough for the test image (node/testimage/README.md)
	launchSubnet    = "10.77.0.0/24"
)

// cloudSetup is what startCloud makes: the guest image and its disk
// format, the bench flavor's memory, and rackd flags beyond the launch
// suite's.
type cloudSetup struct {
	image, format string
	ramMB         int
	rackdArgs     []string
}

// startLaunchCloud starts the launch suite's cloud: the test image, the
// bench flavor with launchFlavorRAM.
func startLaunchCloud(ctx context.Context, o options, image string) (*launchCloud, error) {
	return startCloud(ctx, o, cloudSetup{image: image, format: "qcow2", ramMB: launchFlavorRAM})
}

// startCloud starts rackd and creates the image, flavor and network.
// On error everything started so far is torn down.
func startCloud(ctx context.Context, o options, setup cloudSetup) (c *launchCloud, err error) {
	dir, err := os.MkdirTemp("", "rackbench-launch")
	if err != nil {
		return nil, err
	}
	c = &launchCloud{
		dir:     dir,
		runDir:  fmt.Sprintf("/run/rackbench-%d", os.Getpid()),
		pinDir:  fmt.Sprintf("/sys/fs/bpf/rackbench-%d", os.Getpid()),
		log:     o.Log,
		http:    &http.Client{Timeout: 30 * time.Second},
		servers: map[string]bool{},
	}
	defer func() {
		if err != nil {
			err = c.withLogTail(err)
			c.close()
			c = nil
		}
	}()
	listen, err1 := freeAddr()
	raftAddr, err2 := freeAddr()
	if err1 != nil || err2 != nil {
		return c, errors.New("no free port")
	}
	data := filepath.Join(dir, "rackd")
	c.rackd = &proc{name: "rackd", dataDir: data, listen: listen, args: []string{
		"--name", "bench", "--data-dir", data, "--listen", listen, "--raft-listen", raftAddr, "--s3-listen", "off",
		"--disk", filepath.Join(dir, "disk"), "--dataplane", "on", "--bpf-dir", filepath.Join(c.pinDir, "rackd"),
		"--compute", "on", "--accel", "tcg", "--vm-run-dir", c.runDir, "--bootstrap",
	}}
	c.rackd.args = append(c.rackd.args, setup.rackdArgs...)
	if err := c.rackd.start(o.BinDir); err != nil {
		return c, fmt.Errorf("start rackd: %w", err)
	}
	if err := waitHealthy(c.rackd.url(), 60*time.Second); err != nil {
		return c, err
	}
	pw, err := readPassword(data)
	if err != nil {
		return c, err
	}
	if err := c.login(ctx, pw); err != nil {
		return c, err
	}
	// Ten servers at once plus stragglers of a wave being deleted: no quota
	// may refuse one.
	quota := map[string]any{"quota_set": map[string]any{"instances": -1, "cores": -1, "ram": -1}}
	if _, err := c.do(ctx, "PUT", "/compute/v2.1/os-quota-sets/"+c.project, quota, nil, 200); err != nil {
		return c, err
	}
	if err := c.uploadImage(ctx, setup.image, setup.format); err != nil {
		return c, err
	}
	var fl struct {
		Flavor struct{ ID string } `json:"flavor"`
	}
	if _, err := c.do(ctx, "POST", "/compute/v2.1/flavors", map[string]any{"flavor": map[string]any{
		"name": "bench.tiny", "vcpus": 1, "ram": setup.ramMB, "disk": 1,
	}}, &fl, 200); err != nil {
		return c, err
	}
	c.flavor = fl.Flavor.ID
	var nw struct {
		Network struct{ ID string } `json:"network"`
	}
	if _, err := c.do(ctx, "POST", "/network/v2.0/networks", map[string]any{"network": map[string]any{"name": "bench"}}, &nw, 201); err != nil {
		return c, err
	}
	c.network = nw.Network.ID
	if _, err := c.do(ctx, "POST", "/network/v2.0/subnets", map[string]any{"subnet": map[string]any{
		"network_id": c.network, "ip_version": 4, "cidr": launchSubnet, "name": "bench",
	}}, nil, 201); err != nil {
		return c, err
	}
	return c, c.waitHypervisor(ctx)
}

// cpuOvercommit is the scheduler's default vCPU allocation ratio (Nova's
// initial_cpu_allocation_ratio), which rackd does not let one change.
const cpuOvercommit = 4

// do sends a JSON request to rackd as the admin.
func (c *launchCloud) do(ctx context.Context, method, path string, in, out any, want ...int) (int, error) {
	return c.doHeader(ctx, method, path, nil, in, out, want...)
}

// doHeader is do with extra request headers (a microversion).
func (c *launchCloud) doHeader(ctx context.Context, method, path string, header map[string]string, in, out any, want ...int) (int, error) {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.rackd.url()+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return send(c.http, req, out, want...)
}

// send does req with hc and decodes a JSON answer into out; a status not in
// want is an error that quotes the body.
func send(hc *http.Client, req *http.Request, out any, want ...int) (int, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	for _, w := range want {
		if resp.StatusCode != w {
			continue
		}
		if out != nil && len(raw) > 0 && resp.StatusCode/100 == 2 {
			if err := json.Unmarshal(raw, out); err != nil {
				return resp.StatusCode, fmt.Errorf("%s %s: decode: %w", req.Method, req.URL.Path, err)
			}
		}
		return resp.StatusCode, nil
	}
	if len(raw) > 300 {
		raw = raw[:300]
	}
	return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", req.Method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(raw))
}

// login takes an admin token scoped to the admin project.
func (c *launchCloud) login(ctx context.Context, password string) error {
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": "admin", "domain": map[string]any{"id": "default"}, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"id": "default"}}},
	}}
	raw, _ := json.Marshal(body)
	var last error
	for i := 0; i < 50; i++ {
		req, err := http.NewRequestWithContext(ctx, "POST", c.rackd.url()+"/identity/v3/auth/tokens", bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		var tok struct {
			Token struct {
				Project struct{ ID string } `json:"project"`
			} `json:"token"`
		}
		resp, err := c.http.Do(req)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 201 {
				c.token, c.project = resp.Header.Get("X-Subject-Token"), tok.Token.Project.ID
				return nil
			}
			if err == nil {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
		}
		last = err
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
	return fmt.Errorf("admin token: %w", last)
}

// uploadImage creates a public image of format from path and waits until
// it is active.
func (c *launchCloud) uploadImage(ctx context.Context, path, format string) error {
	var img struct{ ID string }
	if _, err := c.do(ctx, "POST", "/image/v2/images", map[string]any{
		"name": "bench", "disk_format": format, "container_format": "bare", "visibility": "public",
	}, &img, 201); err != nil {
		return err
	}
	c.imageID = img.ID
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	uctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(uctx, "PUT", c.rackd.url()+"/image/v2/images/"+img.ID+"/file", f)
	if err != nil {
		return err
	}
	req.ContentLength = st.Size()
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Auth-Token", c.token)
	// Bounded by uctx, not by the API client's timeout.
	if _, err := send(&http.Client{}, req, nil, 204); err != nil {
		return fmt.Errorf("upload image: %w", err)
	}
	return poll(ctx, 500*time.Millisecond, time.Minute, "image active", func() (bool, error) {
		var got struct{ Status string }
		if _, err := c.do(ctx, "GET", "/image/v2/images/"+img.ID, nil, &got, 200); err != nil {
			return false, err
		}
		if got.Status == "killed" || got.Status == "deleted" {
			return false, fmt.Errorf("image is %s", got.Status)
		}
		return got.Status == "active", nil
	})
}

// waitHypervisor waits until the node's compute agent shows as a
// hypervisor that is up, so the scheduler has somewhere to place servers,
// and notes how many of the bench flavor's servers it takes at once.
func (c *launchCloud) waitHypervisor(ctx context.Context) error {
	return poll(ctx, 250*time.Millisecond, time.Minute, "a hypervisor that is up", func() (bool, error) {
		var got struct {
			Hypervisors []struct {
				State string `json:"state"`
				VCPUs int    `json:"vcpus"`
			} `json:"hypervisors"`
		}
		if _, err := c.do(ctx, "GET", "/compute/v2.1/os-hypervisors/detail", nil, &got, 200); err != nil {
			return false, err
		}
		for _, h := range got.Hypervisors {
			if h.State == "up" && h.VCPUs > 0 {
				c.capacity = h.VCPUs * cpuOvercommit
				return true, nil
			}
		}
		return false, nil
	})
}

// createServer sends POST /servers for one server of the bench flavor on
// the bench network, and returns its id.
func (c *launchCloud) createServer(ctx context.Context, name string) (string, error) {
	var got struct {
		Server struct{ ID string } `json:"server"`
	}
	_, err := c.do(ctx, "POST", "/compute/v2.1/servers", map[string]any{"server": map[string]any{
		"name": name, "imageRef": c.imageID, "flavorRef": c.flavor, "networks": []map[string]string{{"uuid": c.network}},
	}}, &got, 202)
	if err != nil {
		return "", err
	}
	return got.Server.ID, nil
}

// serverState is a server as GET /servers/detail lists it.
type serverState struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Fault  *struct {
		Message string `json:"message"`
	} `json:"fault"`
}

func (c *launchCloud) listServers(ctx context.Context) ([]serverState, error) {
	var got struct {
		Servers []serverState `json:"servers"`
	}
	_, err := c.do(ctx, "GET", "/compute/v2.1/servers/detail", nil, &got, 200)
	return got.Servers, err
}

// console returns the last 50 lines of a server's console; a server whose
// guest does not run yet answers 409, which is "" here.
func (c *launchCloud) console(ctx context.Context, id string) (string, error) {
	var got struct {
		Output string `json:"output"`
	}
	code, err := c.do(ctx, "POST", "/compute/v2.1/servers/"+id+"/action",
		map[string]any{"os-getConsoleOutput": map[string]any{"length": 50}}, &got, 200, 409)
	if err != nil || code == 409 {
		return "", err
	}
	return got.Output, nil
}

// deleteServers deletes servers and waits until every one is gone (404).
func (c *launchCloud) deleteServers(ctx context.Context, ids []string, d time.Duration) error {
	for _, id := range ids {
		if _, err := c.do(ctx, "DELETE", "/compute/v2.1/servers/"+id, nil, nil, 204, 404); err != nil {
			return err
		}
	}
	pending := append([]string(nil), ids...)
	return poll(ctx, 100*time.Millisecond, d, "deleted servers gone", func() (bool, error) {
		var left []string
		for _, id := range pending {
			code, err := c.do(ctx, "GET", "/compute/v2.1/servers/"+id, nil, nil, 200, 404)
			if err != nil {
				return false, err
			}
			if code == 404 {
				delete(c.servers, id)
			} else {
				left = append(left, id)
			}
		}
		pending = left
		return len(pending) == 0, nil
	})
}

// close tears down everything the suite made: servers (through the API,
// so the agent removes their QEMU, taps and disks), then rackd, then
// whatever a failed teardown left: QEMU processes in our run dir (ours by
// construction), taps of the bench network's ports, BPF pins, directories.
// It runs on a context of its own: the suite's may be cancelled already.
func (c *launchCloud) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var taps []string
	if c.rackd != nil && c.rackd.cmd != nil && c.token != "" {
		var ids []string
		for id := range c.servers {
			ids = append(ids, id)
		}
		if len(ids) > 0 {
			if err := c.deleteServers(ctx, ids, time.Minute); err != nil {
				fmt.Fprintf(c.log, "launch: delete servers: %v\n", err)
			}
		}
		if c.network != "" {
			var ports struct {
				Ports []struct{ ID string } `json:"ports"`
			}
			if _, err := c.do(ctx, "GET", "/network/v2.0/ports?network_id="+c.network, nil, &ports, 200); err == nil {
				for _, p := range ports.Ports {
					taps = append(taps, dataplane.DeviceName(p.ID))
				}
			}
		}
	}
	if c.rackd != nil && c.rackd.cmd != nil {
		c.rackd.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.rackd.done:
			c.rackd.cmd = nil
		case <-time.After(15 * time.Second):
			fmt.Fprintln(c.log, "launch: rackd did not stop on SIGTERM within 15s; killing it")
			c.rackd.kill()
		}
	}
	if left, err := qemuProcesses(c.runDir); err == nil {
		for id, pid := range left {
			fmt.Fprintf(c.log, "launch: killing QEMU %d of server %s, left running\n", pid, id)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		for id, pid := range left {
			if err := poll(ctx, 50*time.Millisecond, 10*time.Second, "QEMU exit", func() (bool, error) {
				return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH), nil
			}); err != nil {
				fmt.Fprintf(c.log, "launch: QEMU %d of server %s: %v\n", pid, id, err)
			}
		}
	}
	for _, tap := range taps {
		if _, err := os.Stat("/sys/class/net/" + tap); err == nil {
			fmt.Fprintf(c.log, "launch: removing tap %s, left behind\n", tap)
			if err := runCmd(ctx, nil, "ip", "link", "delete", tap); err != nil {
				fmt.Fprintf(c.log, "launch: %v\n", err)
			}
		}
	}
	for _, d := range []string{c.pinDir, c.runDir, c.dir} {
		if err := os.RemoveAll(d); err != nil {
			fmt.Fprintf(c.log, "launch: remove %s: %v\n", d, err)
		}
	}
}

// withLogTail adds the end of rackd's log to a start-up error.
func (c *launchCloud) withLogTail(err error) error {
	if c.rackd == nil {
		return err
	}
	raw, rerr := os.ReadFile(filepath.Join(c.dir, c.rackd.name+".log"))
	if rerr != nil || len(raw) == 0 {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return fmt.Errorf("%w\nrackd log (last lines):\n  %s", err, strings.Join(lines, "\n  "))
}

// poll calls check every interval until it reports done or fails, for at
// most d.
func poll(ctx context.Context, interval, d time.Duration, what string, check func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		done, err := check()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s within %s", what, d)
		}
		if !sleepCtx(ctx, interval) {
			return ctx.Err()
		}
	}
}

// sleepCtx sleeps for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
