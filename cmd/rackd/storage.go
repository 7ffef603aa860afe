package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/object"
)

// openObjectStore opens this node's disks, serves them to the other nodes
// on the peer port and returns the object service.
func openObjectStore(o *options, node *cluster.Node, log *slog.Logger) (*object.Service, error) {
	local := map[string]disk.Disk{}
	dirs := map[string]*disk.Dir{}
	for _, p := range o.Disks {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		d, err := disk.OpenDir(abs)
		if err != nil {
			return nil, fmt.Errorf("--disk %s: %w", p, err)
		}
		if other, dup := dirs[d.ID()]; dup {
			return nil, fmt.Errorf("--disk %s and %s are the same disk (id %s)", other.Path(), abs, d.ID())
		}
		local[d.ID()], dirs[d.ID()] = d, d
	}
	node.HandlePeer(blob.PeerPrefix, blob.PeerHandler(local))
	k, m, _ := o.coding()
	blobs := &blob.Store{
		Node: o.Name, Local: local, Log: log,
		Transport: &blob.HTTPTransport{Client: node.PeerClient(), Addr: node.PeerAddress},
	}
	return object.New(object.Config{
		Repl: node, Blobs: blobs, Node: o.Name, Log: log, K: k, M: m,
		NodeUp:     node.NodeUp,
		NodeLost:   func(name string) bool { return node.DownFor(name) > o.HealAfter },
		IsLeader:   node.IsLeader,
		ScrubEvery: o.ScrubEvery,
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
				rows = append(rows, object.DiskRow{ID: id, Path: d.Path(), Total: total, Free: free})
			}
			return rows
		},
	}), nil
}
