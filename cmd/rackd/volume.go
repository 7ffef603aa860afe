package main

import (
	"log/slog"

	"github.com/rackstack/rackstack/fabric/cluster"
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
