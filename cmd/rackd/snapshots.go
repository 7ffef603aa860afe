package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/image"
)

// computeSnapshots makes the images of createImage in the image service:
// queued, private, owned by the server's project, with the base image's
// properties Nova copies under the snapshot's own, written as qcow2 by
// the node agent that runs the server; a volume-backed server's, which
// only maps volume snapshots, active and empty at once.
type computeSnapshots struct{ images *image.Service }

var _ compute.SnapshotImages = computeSnapshots{}

func (c computeSnapshots) CreateSnapshot(ctx context.Context, p *api.Principal, n compute.SnapshotImage) (string, error) {
	props := map[string]string{}
	minDisk, minRAM := n.MinDisk, 0
	if base, err := c.images.Get(ctx, p, n.BaseImage); err == nil {
		// A base image the caller can no longer see gives nothing.
		for k, v := range base.Properties {
			if !compute.NotInherited[k] {
				props[k] = v
			}
		}
		minDisk, minRAM = max(minDisk, base.MinDisk), base.MinRAM
	}
	for k, v := range n.Properties {
		props[k] = v
	}
	// The server's project owns it, whoever asked (an admin may).
	owner := *p
	owner.ProjectID = n.Project
	img, err := c.images.Create(ctx, &owner, image.NewImage{Name: n.Name, DiskFormat: "qcow2", ContainerFormat: "bare", Visibility: "private",
		MinDisk: minDisk, MinRAM: minRAM, Properties: props, Hidden: n.Hidden})
	if err != nil {
		return "", err
	}
	if n.Mapping {
		// Only properties: active and empty, as Nova's image API makes
		// a volume-backed server's snapshot (no data, size 0).
		if err := c.images.Upload(ctx, img.ID, strings.NewReader(""), 0); err != nil {
			if derr := c.images.Discard(context.WithoutCancel(ctx), img.ID); derr != nil {
				slog.Warn("delete the image of a failed volume-backed snapshot", "image", img.ID, "err", derr)
			}
			return "", err
		}
	}
	return img.ID, nil
}

func (c computeSnapshots) Discard(ctx context.Context, id string) error {
	return c.images.Discard(ctx, id)
}
