package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	md5simd "github.com/minio/md5-simd"

	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/placement"
)

// openObjectStore opens this node's disks, serves them to the other nodes
// on the peer port and returns the object service and the block store,
// which keep their blobs on the same disks.
func openObjectStore(o *options, node *cluster.Node, log *slog.Logger) (*object.Service, *block.Store, error) {
	local := map[string]disk.Disk{}
	dirs := map[string]*disk.Dir{}
	for _, p := range o.Disks {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, err
		}
		d, err := disk.OpenDir(abs)
		if err != nil {
			return nil, nil, fmt.Errorf("--disk %s: %w", p, err)
		}
		if other, dup := dirs[d.ID()]; dup {
			return nil, nil, fmt.Errorf("--disk %s and %s are the same disk (id %s)", other.Path(), abs, d.ID())
		}
		local[d.ID()], dirs[d.ID()] = d, d
	}
	node.HandlePeer(blob.PeerPrefix, blob.PeerHandler(local))
	k, m, _ := o.coding()
	blobs := &blob.Store{
		Node: o.Name, Local: local, Log: log, NodeUp: node.NodeUp,
		Transport: &blob.HTTPTransport{Client: node.PeerClient(), Addr: node.PeerAddress},
		MD5:       md5simd.NewServer(),
	}
	peers := &peerCounters{client: node.PeerClient(), scheme: "https", self: o.Name, nodes: node.Nodes}
	// The block store places its blobs on the disks the object store
	// registers, and the object store's maintenance heals, scrubs and
	// moves the block store's blobs: each needs the other.
	var svc *object.Service
	blocks := block.New(block.Config{
		Repl: node, Blobs: blobs, K: k, M: m,
		Disks: func(ctx context.Context) ([]placement.Disk, error) { return svc.ActiveDisks(ctx) },
		Log:   log.With("service", "block"), IsLeader: node.IsLeader,
		Degraded: func(key string) { go svc.QueueHeal(context.Background(), "block", key) },
	})
	svc = object.New(object.Config{
		Repl: node, Blobs: blobs, Node: o.Name, Log: log, K: k, M: m, Peers: peers.gather,
		NodeUp:     node.NodeUp,
		NodeLost:   func(name string) bool { return node.DownFor(name) > o.HealAfter },
		IsLeader:   node.IsLeader,
		ScrubEvery: o.ScrubEvery,
		Named:      block.Named,
		Sources:    map[string]object.BlobSource{"block": blocks},
		Wiped: func() []string {
			var out []string
			for id, d := range dirs {
				if wiped, err := d.Check(); wiped {
					log.Warn("disk directory was emptied; its shards will be rebuilt", "disk", id, "path", d.Path())
					out = append(out, id)
				} else if err != nil {
					log.Warn("check disk", "disk", id, "path", d.Path(), "err", err)
				}
			}
			return out
		},
		Local: func() []object.DiskRow {
			rows := make([]object.DiskRow, 0, len(dirs))
			for id, d := range dirs {
				total, free, _ := d.Usage()
				fs, _ := d.Filesystem()
				rows = append(rows, object.DiskRow{ID: id, Path: d.Path(), Total: total, Free: free, FS: fs})
			}
			return rows
		},
	})
	node.HandlePeer("GET "+countersPath, countersHandler(svc))
	return svc, blocks, nil
}

// countersPath is where each node serves its object store's counters on
// the peer port, for cluster-wide `rackctl storage status`.
const countersPath = "/peer/storage/v1/counters"

// countersHandler serves this node's object store counters.
func countersHandler(svc interface{ Counters() object.Counters }) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(svc.Counters())
	})
}

// peerCounters fetches the other nodes' counters over the peer port.
type peerCounters struct {
	client *http.Client
	scheme string // https on the peer port
	self   string
	nodes  func() ([]cluster.NodeInfo, error)
}

// gather asks every other node, in parallel, for its counters; a node
// that is down or does not answer is listed with the reason, so totals
// are never silently partial.
func (p *peerCounters) gather(ctx context.Context) []object.NodeCounters {
	nodes, err := p.nodes()
	if err != nil {
		return []object.NodeCounters{{Node: "?", Err: "list nodes: " + err.Error()}}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var out []object.NodeCounters
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nodes {
		if n.Name == p.self {
			continue
		}
		if n.Status != "up" {
			out = append(out, object.NodeCounters{Node: n.Name, Err: "node is " + n.Status})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := p.fetch(ctx, n.RaftAddress)
			nc := object.NodeCounters{Node: n.Name, Counters: c}
			if err != nil {
				nc.Err = err.Error()
			}
			mu.Lock()
			out = append(out, nc)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (p *peerCounters) fetch(ctx context.Context, addr string) (object.Counters, error) {
	var c object.Counters
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.scheme+"://"+addr+countersPath, nil)
	if err != nil {
		return c, fmt.Errorf("fetch counters: %w", err)
	}
	res, err := p.client.Do(req)
	if err != nil {
		return c, fmt.Errorf("fetch counters: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return c, fmt.Errorf("fetch counters: %s", res.Status)
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<20)).Decode(&c); err != nil {
		return c, fmt.Errorf("decode counters: %w", err)
	}
	return c, nil
}
