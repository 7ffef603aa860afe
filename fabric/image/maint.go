package image

import (
	"context"
	"errors"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

// Maintenance: uploads that died with their node, and data no image
// refers to.

// settleEvery is how often uploads are looked at for being abandoned: an
// image left saving cannot be uploaded again until then, so this is as
// often as the volume service settles its work.
const settleEvery = 15 * time.Second

// Run gives back uploads that died with this node or with a lost node, and
// deletes image data no image refers to; it returns when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	tick := time.NewTicker(settleEvery)
	defer tick.Stop()
	var lastSweep time.Time
	for {
		// Uploads this node ran before it restarted are gone.
		s.resetUploads(ctx, func(img *Image) bool { return img.UploadNode == s.cfg.Node && img.UploadRun != s.run })
		// So are imports of this process that no fetch runs for: their
		// start's outcome was unknown, or so was their end's.
		s.resetUploads(ctx, s.unfetchedImport)
		// And uploads of this process that no request streams.
		s.resetUploads(ctx, s.unreceivedUpload)
		if s.cfg.IsLeader() {
			s.expireTasks(ctx)
			s.resetUploads(ctx, func(img *Image) bool { return img.UploadNode != s.cfg.Node && s.cfg.NodeLost(img.UploadNode) })
			if time.Since(lastSweep) >= 10*time.Minute {
				if s.sweepObjects(ctx) {
					lastSweep = time.Now()
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// resetUploads returns the images whose upload (saving) or staging
// (uploading) abandoned says was abandoned to queued.
func (s *Service) resetUploads(ctx context.Context, abandoned func(*Image) bool) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return
	}
	for _, img := range store.All[Image](tx, tImages, "id") {
		if img.UploadID == "" || !abandoned(img) {
			continue
		}
		upload := img.UploadID
		if t := s.uploadTask(tx, img.ID, upload); t != nil {
			s.log.Warn("image import abandoned; image is queued again", "image", img.ID, "node", img.UploadNode, "task", t.ID)
			s.failImport(ctx, *t, "Import failed: its fetch on node "+img.UploadNode+" stopped (the node restarted or was lost, or the import's start could not be confirmed).")
			continue
		}
		_, err := s.mutate(ctx, img.ID, func(img *Image) error {
			if img.UploadID != upload {
				return errSkip
			}
			s.log.Warn("image upload abandoned; image is queued again", "image", img.ID, "node", img.UploadNode)
			clearUpload(img, StatusQueued, s.now())
			return nil
		})
		if err != nil && !errors.Is(err, errSkip) && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("reset abandoned upload", "image", img.ID, "err", err)
		}
	}
}

var errSkip = errors.New("nothing to do")

// orphanAge is how old data without an image must be before it is
// deleted: an upload that stored its data has not yet marked its image
// active.
const orphanAge = 10 * time.Minute

// sweepObjects deletes objects of the data container that no image
// refers to (an upload or a delete cut short by a crash); it reports
// whether it got through the whole container.
func (s *Service) sweepObjects(ctx context.Context) bool {
	if _, err := s.cfg.Objects.Container(ctx, s.cfg.Account, s.cfg.Container); err != nil {
		return errors.Is(err, store.ErrNotFound)
	}
	marker := ""
	for {
		entries, more, err := s.cfg.Objects.List(ctx, s.cfg.Account, s.cfg.Container, object.ListOptions{Marker: marker, Limit: 1000})
		if err != nil {
			s.log.Warn("list image data", "err", err)
			return false
		}
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return false
		}
		for _, e := range entries {
			o := e.Object
			if o == nil {
				continue
			}
			marker = o.Name
			if s.cfg.Now().Sub(o.Modified) < orphanAge {
				continue
			}
			img := store.Get[Image](tx, tImages, imageOf(o.Name))
			if img != nil && (img.Object == o.Name || img.StagedObject == o.Name || img.UploadID != "") {
				continue
			}
			s.log.Info("deleting image data no image refers to", "object", o.Name)
			if err := s.cfg.Objects.Delete(ctx, s.cfg.Account, s.cfg.Container, o.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("delete orphaned image data", "object", o.Name, "err", err)
			}
		}
		if !more || len(entries) == 0 {
			return true
		}
	}
}

// uploadTask is the unended task running image id's upload, or nil.
func (s *Service) uploadTask(tx *memdb.Txn, id, upload string) *Task {
	for _, t := range store.All[Task](tx, imagestate.TaskTable, "image", id) {
		if t.Upload == upload && !t.Done() {
			return t
		}
	}
	return nil
}

// unreceivedUpload reports whether img is an upload (saving) or a
// staging (uploading) of this process that no request streams any more:
// its start committed after the request was told its outcome was
// unknown, or its end's or abort's outcome was unknown. Nothing would
// ever give it back but a restart.
func (s *Service) unreceivedUpload(img *Image) bool {
	return img.UploadNode == s.cfg.Node && img.UploadRun == s.run && (img.Status == StatusSaving || img.Status == StatusUploading) &&
		!s.fetching(img.UploadID)
}

// unfetchedImport reports whether img is an import of this process that
// no fetch runs for (a minute after it began, so that a start just
// committed is not taken).
func (s *Service) unfetchedImport(img *Image) bool {
	return img.UploadNode == s.cfg.Node && img.UploadRun == s.run && img.Status == StatusImporting &&
		!s.fetching(img.UploadID) && s.now().Sub(img.UploadStarted) > time.Minute
}
