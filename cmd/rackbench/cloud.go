package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	cloudclient "github.com/rackstack/rackstack/fabric/client"
	"github.com/rackstack/rackstack/fabric/cluster/clusterapi"
)

// The --cloud suites measure a cloud that is already running, through its
// APIs, as an admin: the OS_* variables (or --os-cloud NAME from
// clouds.yaml) say where it is and who calls it, read by fabric/client as
// rackctl reads them. Everything such a run makes lives in a project of
// its own named rackbench-<run>, tagged benchTag, so a run removes what it
// made and nothing else, and `rackbench clean --cloud` finds what a killed
// run left.

const (
	benchPrefix = "rackbench-"
	benchTag    = "rackbench"
	// callTimeout bounds every API call a --cloud suite makes that is not
	// a measured transfer; opTimeout bounds one measured request.
	callTimeout = 30 * time.Second
	opTimeout   = 2 * time.Minute
	// cleanupTimeout bounds the removal of a run's resources, which runs
	// on a context of its own so that Ctrl-C does not cut it short.
	cleanupTimeout = 5 * time.Minute
)

var errNotAdmin = errors.New("needs an admin")

// cloudSession is a logged-in admin client of a running cloud.
type cloudSession struct {
	c   *cloudclient.Client
	cfg cloudclient.Config // what c was built from, for nodeClient
	me  cloudclient.Whoami
	log func(format string, args ...any)
}

// connectCloud logs in from --os-cloud or the OS_* variables and refuses
// a caller without the admin role.
func connectCloud(ctx context.Context, o options) (*cloudSession, error) {
	var cfg cloudclient.Config
	if o.OSCloud != "" {
		var err error
		if cfg, err = cloudclient.FromCloudsYAML(o.OSCloud, os.Getenv); err != nil {
			return nil, err
		}
	} else {
		var missing string
		if cfg, missing = cloudclient.FromEnv(os.Getenv); missing != "" {
			return nil, fmt.Errorf("%w: %s is not set (source an admin openrc, or pass --os-cloud NAME)", errNeed, missing)
		}
	}
	cfg.HTTP = &http.Client{Timeout: callTimeout}
	c := cloudclient.New(cfg)
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	me, err := c.Whoami(cctx)
	if err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	if !me.IsAdmin() {
		return nil, fmt.Errorf("%w: the caller's roles are %v; rackbench --cloud makes projects and credentials", errNotAdmin, me.Roles)
	}
	return &cloudSession{c: c, cfg: cfg, me: me, log: func(format string, args ...any) { fmt.Fprintf(o.Log, format+"\n", args...) }}, nil
}

// connectNodes logs in (connectCloud) and picks the named nodes of the
// cloud (pickNodes: all that are up for none).
func connectNodes(ctx context.Context, o options, names []string) (*cloudSession, []clusterapi.NodeInfo, error) {
	s, err := connectCloud(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	all, err := call(ctx, s.c.Nodes)
	if err != nil {
		return nil, nil, fmt.Errorf("list nodes: %w", err)
	}
	nodes, err := pickNodes(all, names)
	return s, nodes, err
}

// storageShape reads the storage status and records the measured
// cluster's shape, nodes and storage, in o.Shape.
func storageShape(ctx context.Context, o options, s *cloudSession, nodes []clusterapi.NodeInfo) (cloudclient.StorageStatus, error) {
	st, err := call(ctx, s.c.StorageStatus)
	if err != nil {
		return st, fmt.Errorf("read storage status: %w", err)
	}
	shape := shapeOf(nodes)
	shape.Coding, shape.Disks, shape.FreeGB = fmt.Sprintf("%d+%d", st.K, st.M), len(st.Disks), float64(st.Capacity.Free)/(1<<30)
	if o.Shape != nil {
		*o.Shape = shape
	}
	return st, nil
}

// nodeClient is a client of node n's own API, with the session's token:
// what a node serves itself (an NBD export) is asked of that node.
func (s *cloudSession) nodeClient(ctx context.Context, n clusterapi.NodeInfo) (*cloudclient.Client, error) {
	if n.APIURL == "" {
		return nil, fmt.Errorf("node %s has no API URL", n.Name)
	}
	tok, err := call(ctx, s.c.Token)
	if err != nil {
		return nil, err
	}
	cfg := s.cfg
	cfg.BaseURL, cfg.Token = n.APIURL, tok
	return cloudclient.New(cfg), nil
}

// call runs f with callTimeout.
func call[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return f(ctx)
}

// runName is a fresh rackbench-<time>-<random> name for this run.
func runName() string {
	b := make([]byte, 3)
	rand.Read(b)
	return benchPrefix + time.Now().UTC().Format("20060102t150405") + "-" + hex.EncodeToString(b)
}

// pickNodes returns the named nodes (all of them for an empty list); each
// must exist and be up.
func pickNodes(all []clusterapi.NodeInfo, names []string) ([]clusterapi.NodeInfo, error) {
	if len(names) == 0 {
		for _, n := range all {
			if n.Status == "up" {
				names = append(names, n.Name)
			}
		}
	}
	by := map[string]clusterapi.NodeInfo{}
	for _, n := range all {
		by[n.Name] = n
	}
	var out []clusterapi.NodeInfo
	for _, name := range names {
		n, ok := by[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("--nodes: no node %q in the cluster", name)
		case n.Status != "up":
			return nil, fmt.Errorf("--nodes: node %q is %s", name, n.Status)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("--nodes: no node is up")
	}
	return out, nil
}

// splitList splits a comma list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// clusterShape is what a report says about the cloud measured.
type clusterShape struct {
	Nodes  []nodeShape `json:"nodes"`
	Coding string      `json:"coding,omitempty"`
	Disks  int         `json:"disks,omitempty"`
	FreeGB float64     `json:"free_gb,omitempty"`
}

type nodeShape struct {
	Name     string  `json:"name"`
	CPU      string  `json:"cpu"`
	CPUs     int     `json:"cpus"`
	MemoryGB float64 `json:"memory_gb"`
	Kernel   string  `json:"kernel"`
	Disks    int     `json:"disks"`
}

func shapeOf(nodes []clusterapi.NodeInfo) clusterShape {
	var s clusterShape
	for _, n := range nodes {
		inv := n.Inventory
		s.Nodes = append(s.Nodes, nodeShape{Name: n.Name, CPU: inv.CPUModel, CPUs: inv.CPUs, MemoryGB: float64(inv.MemoryBytes) / (1 << 30), Kernel: inv.Kernel, Disks: len(inv.Disks)})
	}
	return s
}
