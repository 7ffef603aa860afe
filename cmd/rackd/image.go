package main

import (
	"context"
	"log/slog"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/storage/object"
)

// openImageService builds the Glance service: image data goes into the
// object store, uploads that die with a lost node are given back after
// --heal-after.
func openImageService(o *options, node *cluster.Node, auth api.Authenticator, objects *object.Service, log *slog.Logger) (*image.Service, error) {
	return image.New(image.Config{
		Repl: node, Auth: auth, Objects: objects, Log: log, Node: o.Name, PublicURL: o.PublicURL,
		IsLeader: node.IsLeader,
		NodeLost: func(name string) bool { return node.DownFor(name) > o.HealAfter },
	})
}

// computeImages is the image service as server create sees it.
type computeImages struct{ images *image.Service }

var _ compute.Images = computeImages{}

func (c computeImages) Get(ctx context.Context, p *api.Principal, id string) (compute.ImageInfo, error) {
	img, err := c.images.Get(ctx, p, id)
	if err != nil {
		return compute.ImageInfo{}, err
	}
	return compute.ImageInfo{ID: img.ID, Name: img.Name, Status: img.Status, MinDisk: img.MinDisk, MinRAM: img.MinRAM, Size: img.Size,
		DiskFormat: img.DiskFormat, Properties: img.Properties}, nil
}
