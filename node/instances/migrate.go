package instances

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// Nova's cold migration, on the nodes (the API's side and the crash
// argument are in fabric/compute/server_migrate.go). Each node's part is
// keyed by the server's ResizeSeq, recorded next to its disks once done,
// as a resize's is:
//
//   - the source (task_state resize_migrating, the server still its
//     own) powers the guest off, copies a local root disk, flattened,
//     into the migration's image (a boot volume needs no copy) and
//     reports the step done, SHUTOFF; the API then gives the server to
//     the new host. An image already active was uploaded by a pass
//     whose report was lost: it is not copied again.
//   - the new host (task_state resize_finish, MigrateFrom another node)
//     makes the server's disk from that image (a qcow2 overlay of its
//     cached copy, made beside and renamed into place), deletes the
//     image, and starts the guest unless the server is stopped.
//   - the source keeps the guest's directory, its disk and the guest
//     powered off while MigrateFrom names it: a revert starts it there
//     again as a resize's revert does; a confirm clears MigrateFrom and
//     the source removes it as any guest not its own.

// migratingOut says the server waits for this node, its source, to save
// it for a cold migration.
func migratingOut(s computestate.Server, rec record) bool {
	return s.TaskState == computestate.TaskResizeMigrating && s.ResizeSeq > rec.ResizeSeq
}

// migratingIn says this node is the new host of a cold migration.
func (a *Agent) migratingIn(s computestate.Server) bool {
	return s.MigrateFrom != "" && s.MigrateFrom != a.Node
}

// migrateOut powers the guest off and copies its local root disk into
// s.MigrateImage, then reports the step done.
func (a *Agent) migrateOut(ctx context.Context, s computestate.Server, vm hypervisor.VM, state hypervisor.PowerState, rec *record) error {
	a.Log.Info("compute: migrating out", "server", s.ID, "to", s.MigrateTo, "image", s.MigrateImage, "resize", s.ResizeSeq)
	if vm != nil && state != hypervisor.Shutdown {
		if err := vm.PowerOff(ctx, a.grace()); err != nil {
			return fmt.Errorf("stop guest for the migration: %w", err)
		}
	}
	if s.BootVolume == "" {
		if err := a.saveDisk(ctx, s); err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrConflict) {
				// Shutting down, or an upload of a dead pass not given
				// back yet: the next pass does the step again.
				return err
			}
			a.Log.Warn("compute: migration failed", "server", s.ID, "err", err)
			if a.Snapshots != nil {
				if derr := a.Snapshots.DiscardUnfinished(ctx, s.MigrateImage); derr != nil && !errors.Is(derr, store.ErrNotFound) {
					a.Log.Warn("compute: delete the image of a failed migration", "server", s.ID, "image", s.MigrateImage, "err", derr)
				}
			}
			rec.ResizeSeq = s.ResizeSeq
			if werr := a.writeRecord(s.ID, *rec); werr != nil {
				return werr
			}
			return a.report(ctx, s.ID, withFault(rec.observed("ERROR", 4), fmt.Sprintf("Migration of instance %s failed: %v", s.ID, err)))
		}
	}
	rec.ResizeSeq = s.ResizeSeq
	if err := os.MkdirAll(a.instanceDir(s.ID), 0o700); err != nil {
		return err
	}
	if err := a.writeRecord(s.ID, *rec); err != nil {
		return err
	}
	a.Log.Info("compute: migrated out", "server", s.ID, "to", s.MigrateTo)
	return a.report(ctx, s.ID, rec.observed("SHUTOFF", 4))
}

// saveDisk uploads the server's root disk, flattened, into its
// migration's image, unless that image is active already.
func (a *Agent) saveDisk(ctx context.Context, s computestate.Server) error {
	if s.MigrateImage == "" || a.Snapshots == nil {
		return errors.New("this node cannot store the disk of a migrating server")
	}
	if tx, err := a.State(ctx); err == nil {
		img, err := imagestate.Load(tx, s.MigrateImage)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("image %s was deleted", s.MigrateImage)
		case err == nil && img.Status == imagestate.StatusActive:
			return nil
		}
	}
	dir := a.instanceDir(s.ID)
	out := filepath.Join(dir, "migrate-"+s.MigrateImage+".qcow2")
	defer os.Remove(out)
	if err := copyDisk(ctx, nil, hypervisor.Shutdown, filepath.Join(dir, "disk"), out); err != nil {
		return err
	}
	f, err := os.Open(out)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := a.Snapshots.Upload(ctx, s.MigrateImage, f, st.Size()); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	a.Log.Info("compute: migrating disk uploaded", "server", s.ID, "image", s.MigrateImage, "bytes", st.Size())
	return nil
}

// migrateIn makes a migrated server's local root disk from its
// migration's image, when it has none here yet, and deletes the image:
// the disk is an overlay of this node's cached copy of it.
func (a *Agent) migrateIn(ctx context.Context, s computestate.Server) error {
	if s.BootVolume != "" {
		return nil
	}
	dir := a.instanceDir(s.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	disk := filepath.Join(dir, "disk")
	if _, err := os.Stat(disk); err != nil {
		if s.MigrateImage == "" {
			return errors.New("the migration names no image to make the disk from")
		}
		base, img, err := a.cachedImage(ctx, s.MigrateImage)
		if err != nil {
			return fmt.Errorf("image %s: %w", s.MigrateImage, err)
		}
		if err := overlay(ctx, base, imageFormat(img), disk, s.RootGB); err != nil {
			return err
		}
	}
	if s.MigrateImage != "" && a.Snapshots != nil {
		if err := a.Snapshots.Discard(ctx, s.MigrateImage); err != nil && !errors.Is(err, store.ErrNotFound) {
			// The server has its disk: a leftover image is logged.
			a.Log.Warn("compute: delete the image of a migrated server", "server", s.ID, "image", s.MigrateImage, "err", err)
		}
	}
	return nil
}

// keepSource keeps a migrated server's guest on its source powered off
// until the migration is confirmed or reverted.
func (a *Agent) keepSource(ctx context.Context, id string) {
	vm, err := a.Driver.Adopt(ctx, id)
	if err != nil {
		return
	}
	if st, err := vm.State(ctx); err == nil && st != hypervisor.Shutdown {
		if err := vm.PowerOff(ctx, a.grace()); err != nil {
			a.Log.Warn("compute: power off the source guest of a migration", "server", id, "err", err)
		}
	}
}
