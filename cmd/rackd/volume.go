package main

import (
	"context"
	"log/slog"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/volume"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/object"
)

// openBlockStore builds the block store: volumes' blobs on the object
// store's disks, coded as --ec codes objects unless a volume type says
// otherwise.
func openBlockStore(o *options, node *cluster.Node, objects *object.Service, blobs *blob.Store, log *slog.Logger) *block.Store {
	k, m, _ := o.coding()
	return block.New(block.Config{
		Repl: node, Blobs: blobs, Disks: objects.ActiveDisks, K: k, M: m, Log: log.With("service", "block"),
		IsLeader: node.IsLeader,
	})
}

// openVolumeService builds the Cinder service on the block store.
func openVolumeService(o *options, node *cluster.Node, auth api.Authenticator, blocks *block.Store, log *slog.Logger) (*volume.Service, error) {
	return volume.New(volume.Config{Repl: node, Auth: auth, Blocks: volumeBlocks{blocks}, Log: log, PublicURL: o.PublicURL})
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
func (b volumeBlocks) Resize(ctx context.Context, id string, size int64) error {
	return b.s.Resize(ctx, id, size)
}
func (b volumeBlocks) Delete(ctx context.Context, id string) error { return b.s.Delete(ctx, id) }
