package instances

import (
	"context"
	"errors"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's shelve, on the node: the snapshot (snapshot.go) of a shelve
// powers the guest off first; once its image is made the API offloads
// the server (no host), and this node's agent, which no longer has it,
// removes the guest and its directory as it does any guest not its own.
// unshelve places the server on a host whose agent builds it from the
// shelved image (rootDisk), with its ports, and then deletes that image
// (the disk's overlay is backed by the node's cached copy of it).

// unshelved deletes the shelved image of server s once its guest is
// started from it; the ACTIVE the agent reports next clears it from the
// row. A failed deletion is logged: the server runs.
func (a *Agent) unshelved(ctx context.Context, s computestate.Server) {
	if s.ShelvedImage == "" || a.Snapshots == nil {
		return
	}
	if err := a.Snapshots.Discard(ctx, s.ShelvedImage); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.Log.Warn("compute: delete the image of an unshelved server", "server", s.ID, "image", s.ShelvedImage, "err", err)
		return
	}
	a.Log.Info("compute: unshelved; its shelved image deleted", "server", s.ID, "image", s.ShelvedImage)
}
