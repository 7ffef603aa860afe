package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os/exec"

	cloudclient "github.com/rackstack/rackstack/fabric/client"
	"github.com/rackstack/rackstack/storage/block/blockapi"
)

// blockCloud is `rackbench block --cloud --node NODE`: the block suite's
// fio jobs (block.go) against a temporary volume of the cloud's block
// store, exported over NBD by NODE.
//
// The block store has no projects, so the run makes a rackbench- project
// as the other --cloud suites do and names the volume after it: the
// project's removal (cleanProject, also what `rackbench clean --cloud`
// runs) unexports and deletes the volume first, at the end, on error and
// on Ctrl-C.
//
// A node serves its exports on loopback only, so rackbench runs on NODE.
func blockCloud(ctx context.Context, o options) ([]Result, error) {
	if o.Node == "" {
		return nil, fmt.Errorf("--node names the node that exports the volume (rackbench runs on it)")
	}
	size, err := blockSize(o.Size)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("fio"); err != nil {
		return nil, fmt.Errorf("%w: fio is not installed (make deps)", errNeed)
	}
	s, nodes, err := connectNodes(ctx, o, []string{o.Node})
	if err != nil {
		return nil, fmt.Errorf("--node: %w", err)
	}
	node := nodes[0]
	if err := onThisMachine(ctx, node.APIURL); err != nil {
		return nil, fmt.Errorf("%w: node %s serves NBD exports on its loopback only; run rackbench block --cloud on it: %v", errNeed, node.Name, err)
	}
	st, err := storageShape(ctx, o, s, nodes)
	if err != nil {
		return nil, err
	}
	if err := volumeFits(size, st.K, st.M, st.Capacity.Free); err != nil {
		return nil, err
	}
	nc, err := s.nodeClient(ctx, node)
	if err != nil {
		return nil, err
	}

	project := runName()
	var p cloudclient.Project
	defer func() {
		if p.ID == "" {
			return
		}
		cctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		if err := cleanProject(cctx, s, p); err != nil {
			s.log("rackbench block: cleanup of %s: %v (run `rackbench clean --cloud`)", project, err)
		}
	}()
	if p, err = call(ctx, func(ctx context.Context) (cloudclient.Project, error) {
		return s.c.CreateProject(ctx, project, "temporary project of a rackbench run; `rackbench clean --cloud` removes it", []string{benchTag})
	}); err != nil {
		return nil, fmt.Errorf("create project %s: %w", project, err)
	}
	if _, err := call(ctx, func(ctx context.Context) (blockapi.Volume, error) {
		return nc.CreateVolume(ctx, blockapi.CreateRequest{ID: project, Size: size})
	}); err != nil {
		return nil, fmt.Errorf("create volume %s: %w", project, err)
	}
	ex, err := call(ctx, func(ctx context.Context) (blockapi.Export, error) { return nc.ExportVolume(ctx, project) })
	if err != nil {
		return nil, fmt.Errorf("export volume %s on %s: %w", project, node.Name, err)
	}
	s.log("rackbench block: volume %s exported on %s at %s", project, node.Name, ex.URI)

	prog := newProgress(o, len(blockJobs)*o.Runs)
	defer prog.done()
	tg := fioTarget{name: "rackstack-cloud", args: []string{"--ioengine=nbd", "--uri=" + ex.URI}}
	return fioCases(ctx, o, tg, size, map[string]any{"node": node.Name, "volume": o.Size}, prog)
}

// maxBlockSize bounds --size: fio fills the whole volume first.
const maxBlockSize = 64 << 30

// blockSize parses --size of block --cloud.
func blockSize(spec string) (int64, error) {
	sizes, err := sdkSizes("--size", spec)
	if err != nil {
		return 0, err
	}
	if len(sizes) != 1 || sizes[0].size < mib || sizes[0].size > maxBlockSize || sizes[0].size%mib != 0 {
		return 0, fmt.Errorf("--size: %q is not one size of whole MiB from 1MiB to 64GiB", spec)
	}
	return int64(sizes[0].size), nil
}

// volumeFits refuses a volume whose data, with coding, would take more
// than half the free space: a benchmark must not fill the disks tenants
// write to.
func volumeFits(size int64, k, m int, free uint64) error {
	need := uint64(size)
	if k > 0 {
		need = need * uint64(k+m) / uint64(k)
	}
	if need > free/2 {
		return fmt.Errorf("%w: the volume takes %.1f GiB with coding, more than half the %.1f GiB free on the cluster's disks (a smaller --size)",
			errNoCapacity, float64(need)/(1<<30), float64(free)/(1<<30))
	}
	return nil
}

// onThisMachine says whether the host of apiURL is an address of this
// machine (loopback, or one of its interfaces).
func onThisMachine(ctx context.Context, apiURL string) error {
	u, err := url.Parse(apiURL)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("API URL %q has no host", apiURL)
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, u.Hostname())
	if err != nil {
		return fmt.Errorf("resolve %s: %w", u.Hostname(), err)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	for _, ip := range ips {
		if ip.IP.IsLoopback() {
			return nil
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip.IP) {
				return nil
			}
		}
	}
	return fmt.Errorf("its API URL %s is not an address of this machine", apiURL)
}
