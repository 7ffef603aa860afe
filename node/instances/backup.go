package instances

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// rotateBackups ends a createBackup whose image is made (Nova's
// _rotate_backups): of the images of the server's project that are its
// backups of this type (properties image_type=backup, backup_type,
// instance_uuid), the newest Rotation stay and the others are deleted,
// oldest first; with Rotation 0 all go, the new one too. Only the
// server's project's images are looked at, so another project's image
// naming this server is never touched. A protected backup is left (the
// image service refuses to delete it). A failed deletion is logged: the
// backup itself is made, and the next backup of the type rotates again.
func (a *Agent) rotateBackups(ctx context.Context, s computestate.Server) {
	b := s.SnapshotBackup
	if b == nil || a.Snapshots == nil {
		return
	}
	tx, err := a.State(ctx)
	if err != nil {
		a.Log.Warn("compute: rotate backups: read the images", "server", s.ID, "err", err)
		return
	}
	var backups []*imagestate.Image
	for _, img := range store.All[imagestate.Image](tx, imagestate.Table, "owner", s.Project) {
		p := img.Properties
		if p["image_type"] == "backup" && p["backup_type"] == b.Type && p["instance_uuid"] == s.ID {
			backups = append(backups, img)
		}
	}
	// Newest first (Nova sorts by created_at, desc); the id breaks ties
	// so that every pass picks the same ones.
	slices.SortFunc(backups, func(x, y *imagestate.Image) int {
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	if len(backups) <= b.Rotation {
		return
	}
	excess := backups[b.Rotation:]
	a.Log.Info("compute: rotating out backups", "server", s.ID, "backup_type", b.Type, "rotation", b.Rotation, "found", len(backups), "deleting", len(excess))
	for i := len(excess) - 1; i >= 0; i-- {
		img := excess[i]
		if img.Protected {
			a.Log.Warn("compute: rotate backups: a protected backup is kept", "server", s.ID, "image", img.ID)
			continue
		}
		if err := a.Snapshots.Discard(ctx, img.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.Log.Warn("compute: rotate backups: delete", "server", s.ID, "image", img.ID, "err", err)
		}
	}
}
