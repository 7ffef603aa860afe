package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/fabric/volume"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/volumes"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/block/nbd"
	"github.com/rackstack/rackstack/storage/object"
)

// openVolumeService builds the Cinder service on the block store.
func openVolumeService(o *options, node *cluster.Node, auth api.Authenticator, blocks *block.Store, images *image.Service, objects *object.Service, log *slog.Logger) (*volume.Service, error) {
	// Copies a killed rackd left behind; their volumes are settled as
	// error by the service.
	os.RemoveAll(filepath.Join(o.DataDir, "volume-copies"))
	return volume.New(volume.Config{Repl: node, Auth: auth, Blocks: volumeBlocks{blocks}, Log: log, PublicURL: o.PublicURL,
		Images: volumeImages{images}, Backups: &volumeBackups{blocks: blocks, objects: objects}, Data: &volumeData{blocks: blocks, images: images, tmp: filepath.Join(o.DataDir, "volume-copies"),
			state: node.Read, unseal: node.Secrets().Open},
		Uploads: &volumeUploads{blocks: blocks, images: images, tmp: filepath.Join(o.DataDir, "volume-copies")},
		Secrets: node.Secrets(),
		Node:    o.Name, IsLeader: node.IsLeader, NodeLost: func(name string) bool { return node.DownFor(name) > o.HealAfter },
		HoldLease: groupHoldLease, HoldNodes: upNodes(node)})
}

// volumeBlocks is the block store as the volume service uses it: a
// type's policy becomes the store's options.
type volumeBlocks struct{ s *block.Store }

var _ volume.Blocks = volumeBlocks{}

func (b volumeBlocks) Create(ctx context.Context, id string, size int64, p volstate.Policy) error {
	return b.s.Create(ctx, id, size, blockOptions(p))
}

// blockOptions maps a policy to the store's options: N replicas are a
// code of 1 data and N-1 parity shards.
func blockOptions(p volstate.Policy) block.Options {
	if p.Replicas > 0 {
		return block.Options{K: 1, M: p.Replicas - 1}
	}
	return block.Options{K: p.K, M: p.M}
}

func (b volumeBlocks) Clone(ctx context.Context, id, from string) error {
	return b.s.Clone(ctx, id, from)
}
func (b volumeBlocks) Snapshot(ctx context.Context, id, volume string) error {
	return b.s.Snapshot(ctx, id, volume)
}
func (b volumeBlocks) SnapshotGroup(ctx context.Context, pairs []volume.SnapshotPair) error {
	ps := make([]block.SnapshotPair, len(pairs))
	for i, p := range pairs {
		ps[i] = block.SnapshotPair{ID: p.ID, Volume: p.Volume}
	}
	return b.s.SnapshotGroup(ctx, ps)
}

// groupHoldLease bounds how long a group snapshot holds its volumes'
// writers (a guest's I/O waits that long at most; usually the time of
// one flush and one command). Half of it is left for the nodes to hold
// (flush) them, which a loaded node needs.
const groupHoldLease = 20 * time.Second

// upNodes lists the nodes that are up: they hold a group's volumes for
// a group snapshot.
func upNodes(node *cluster.Node) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) {
		nodes, err := node.Nodes()
		if err != nil {
			return nil, err
		}
		var out []string
		for _, n := range nodes {
			if n.Status == "up" {
				out = append(out, n.Name)
			}
		}
		return out, nil
	}
}

func (b volumeBlocks) Resize(ctx context.Context, id string, size int64) error {
	return b.s.Resize(ctx, id, size)
}
func (b volumeBlocks) Delete(ctx context.Context, id string) error { return b.s.Delete(ctx, id) }
func (b volumeBlocks) Exists(ctx context.Context, id string) (bool, error) {
	return blockExists(ctx, b.s, id)
}

// nbdExports serves this node's attached volumes to its guests: each
// volume open in the block store (holding its writer fence) and
// exported under its id on one unix socket.
type nbdExports struct {
	store  *block.Store
	srv    *nbd.Server
	socket string
	holds  *volumes.Holds

	mu    sync.Mutex
	open  map[string]*block.Volume
	gates map[string]*volumes.Gate
}

var _ volumes.Exports = (*nbdExports)(nil)

func newNBDExports(s *block.Store, socket string, holds *volumes.Holds, log *slog.Logger) *nbdExports {
	return &nbdExports{store: s, srv: nbd.NewServer(log.With("service", "nbd")), socket: socket, holds: holds,
		open: map[string]*block.Volume{}, gates: map[string]*volumes.Gate{}}
}

func (e *nbdExports) Export(ctx context.Context, id string) (int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.open[id]; ok {
		return v.Size(), nil
	}
	v, err := e.store.Open(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("open volume %s: %w", id, err)
	}
	g := e.holds.Gate(id, v)
	if err := e.srv.Export(id, g); err != nil {
		e.holds.Forget(id, g)
		v.Close()
		return 0, err
	}
	e.open[id], e.gates[id] = v, g
	return v.Size(), nil
}

func (e *nbdExports) Unexport(ctx context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.open[id]
	if !ok {
		return nil
	}
	if err := e.srv.Unexport(id); err != nil && !errors.Is(err, nbd.ErrNotExported) {
		return err
	}
	delete(e.open, id)
	e.holds.Forget(id, e.gates[id])
	delete(e.gates, id)
	if err := v.Close(); err != nil {
		return fmt.Errorf("close volume %s: %w", id, err)
	}
	return nil
}

func (e *nbdExports) Exported() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.open))
	for id := range e.open {
		out = append(out, id)
	}
	return out
}

func (e *nbdExports) Socket() string { return e.socket }

// luksHeaderLen is how much of a volume a LUKS1 header's fixed part
// takes: its magic, version, cipher and key slots' descriptions.
const luksHeaderLen = 4096

// Blank reports whether exported volume id has never been written where
// a LUKS header goes (it reads as zeroes).
func (e *nbdExports) Blank(ctx context.Context, id string) (bool, error) {
	e.mu.Lock()
	v, ok := e.open[id]
	e.mu.Unlock()
	if !ok {
		return false, fmt.Errorf("read volume %s: not exported", id)
	}
	head := make([]byte, min(luksHeaderLen, v.Size()))
	if _, err := v.ReadAt(head, 0); err != nil {
		return false, fmt.Errorf("read volume %s: %w", id, err)
	}
	for _, b := range head {
		if b != 0 {
			return false, nil
		}
	}
	return true, nil
}

// Serve serves the exports until ctx ends, then closes the volumes
// (flushing what guests wrote).
func (e *nbdExports) Serve(ctx context.Context) error {
	err := e.srv.ServeUnix(ctx, e.socket)
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, v := range e.open {
		if cerr := v.Close(); cerr != nil {
			slog.Warn("close volume", "volume", id, "err", cerr)
		}
		delete(e.open, id)
	}
	return err
}

// openVolumeAgent starts the agent that plugs volumes into this node's
// guests, where this node runs guests.
func openVolumeAgent(o *options, node *cluster.Node, drv hypervisor.Driver, blocks *block.Store, holds *volumes.Holds, log *slog.Logger) (*volumes.Agent, *nbdExports) {
	if drv == nil {
		return nil, nil
	}
	ex := newNBDExports(blocks, filepath.Join(vmRunDir(o), "nbd.sock"), holds, log)
	return &volumes.Agent{
		Node: o.Name, State: node.Read, Driver: drv, Exports: ex, Log: log,
		Unseal: node.Secrets().Open, Blank: ex.Blank,
		Propose: func(ctx context.Context, typ string, body any) error {
			_, err := node.Propose(ctx, typ, body)
			return err
		},
	}, ex
}

// volumeNodes lists the cluster's nodes for Cinder's services and hosts.
func volumeNodes(node *cluster.Node) func(context.Context) ([]volume.NodeState, error) {
	return func(context.Context) ([]volume.NodeState, error) {
		nodes, err := node.Nodes()
		if err != nil {
			return nil, err
		}
		out := make([]volume.NodeState, 0, len(nodes))
		for _, n := range nodes {
			out = append(out, volume.NodeState{Name: n.Name, Up: n.Status == "up", Seen: n.LastHeartbeat})
		}
		return out, nil
	}
}
