package volume

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Backups, as Cinder backs up into Swift: a backup's bytes are objects in
// the project's own object store (a container, volumebackups unless the
// caller names one), chunked, only the chunks with data; an incremental
// backup writes only the chunks changed since the volume's latest
// backup. Writing, restoring and deleting run in the background, the
// backup creating / restoring / deleting meanwhile. A backup outlives its
// volume.

// BackupStore writes and reads backups' objects.
type BackupStore interface {
	// Backup writes source (a volume, or a snapshot when snapshot is
	// set) as objects under prefix in project's container; parent is
	// the prefix of the backup it adds to ("" for a full one). It
	// returns how many objects it wrote and their bytes.
	Backup(ctx context.Context, b BackupJob) (objects int, bytes int64, err error)
	// Restore writes the backup under prefix into volume.
	Restore(ctx context.Context, project, container, prefix, volume string) error
	// Delete deletes the objects under prefix (not the parent's).
	Delete(ctx context.Context, project, container, prefix string) error
	// Check reads the backup under prefix enough to say it is whole.
	Check(ctx context.Context, project, container, prefix string) error
}

// BackupJob is one backup to write.
type BackupJob struct {
	Project, Container, Prefix, Parent string
	// Source is the volume or snapshot to read.
	Source   string
	Snapshot bool
}

// defaultContainer is where backups go unless the caller names one.
const defaultContainer = "volumebackups"

func (s *Service) backups(r *http.Request, detail bool) api.Collection[volstate.Backup] {
	visible := visibleTo(allTenants(r) || byID(r))
	return api.Collection[volstate.Backup]{
		Table: volstate.BackupTable, One: "backup",
		Visible: func(p *api.Principal, b *volstate.Backup) bool { return visible(p, b.Project) },
		View: func(tx *memdb.Txn, p *api.Principal, b *volstate.Backup) api.View {
			return s.backupView(tx, r, p, b, detail)
		},
		NotFound: func(id string) error { return notFound("Backup", id) },
		Listing:  s.cinderListing("backups", []string{"id", "name", "status", "size", "volume_id", "container", "created_at", "updated_at", "description"}, nil),
	}
}

func (s *Service) backupView(tx *memdb.Txn, r *http.Request, p *api.Principal, b *volstate.Backup, detail bool) api.View {
	v := api.View{"id": b.ID, "name": nullable(b.Name), "links": s.links(r, "backups", b.ID)}
	if !detail {
		return v
	}
	md := b.Metadata
	if md == nil {
		md = map[string]string{}
	}
	for k, x := range map[string]any{
		"description": nullable(b.Description), "status": b.Status, "size": b.Size, "volume_id": b.VolumeID,
		"snapshot_id": nullable(b.SnapshotID), "container": b.Container, "availability_zone": "nova",
		"created_at": timeText(b.CreatedAt), "updated_at": timeText(b.UpdatedAt), "data_timestamp": timeText(b.DataAt),
		"object_count": b.ObjectCount, "is_incremental": b.ParentID != "", "fail_reason": nullable(b.Reason),
		"has_dependent_backups": len(volstate.Children(tx, b.ID)) > 0,
	} {
		v[k] = x
	}
	if atLeast(r, 18) && p.IsAdmin() {
		v["os-backup-project-attr:project_id"] = b.Project
	}
	if atLeast(r, 43) {
		v["metadata"] = md
	}
	if atLeast(r, 56) {
		v["user_id"] = b.User
	}
	if atLeast(r, 64) && b.KeyID != "" {
		v["encryption_key_id"] = b.KeyID
	}
	return v
}

func (s *Service) listBackups(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := project(r); err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		c := s.backups(sortParams(r), detail)
		return listCounted(w, r, c.Listing, c.Views(tx, principal(r)), nil)
	}
}

func (s *Service) showBackup(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	return s.backups(r, true).Show(w, r, tx, chi.URLParam(r, "id"))
}

// ownBackup is backup id if the caller may change it.
func (s *Service) ownBackup(r *http.Request, id string) (*volstate.Backup, error) {
	return own(s, r, s.backups(r, true), id, volstate.LoadBackup, func(b *volstate.Backup) string { return b.Project }, "backup:update")
}

// changeBackup applies change to backup id's current row and proposes
// it, retrying on a stale revision.
func (s *Service) changeBackup(ctx context.Context, id string, change func(b *volstate.Backup) error) (*volstate.Backup, error) {
	return changeRow(ctx, s.cfg.Repl, func(tx *memdb.Txn) (*volstate.Backup, error) { return volstate.LoadBackup(tx, id) },
		func(cur *volstate.Backup) (string, any, error) {
			next := cur.Clone()
			if err := change(next); err != nil {
				return "", nil, err
			}
			next.UpdatedAt = s.now()
			return volstate.CmdPutBackup, volstate.PutBackupCmd{Row: *next, Revision: cur.Revision}, nil
		})
}

func (s *Service) needBackups() error {
	if s.cfg.Backups == nil {
		return &api.Error{Status: http.StatusNotImplemented, Msg: "backups are not supported by this cloud"}
	}
	return nil
}

func (s *Service) createBackup(w http.ResponseWriter, r *http.Request) error {
	proj, err := project(r)
	if err != nil {
		return err
	}
	if err := s.needBackups(); err != nil {
		return err
	}
	o, err := body(r, "backup")
	if err != nil {
		return err
	}
	in := newInput(o)
	now := s.now()
	p := principal(r)
	b := volstate.Backup{ID: api.NewUUID(), Project: proj, User: p.UserID, Status: volstate.BackupCreating, CreatedAt: now, UpdatedAt: now, DataAt: now}
	b.Name = in.Str("name", "", 255)
	b.Description = in.Str("description", "", 255)
	b.VolumeID = in.Required("volume_id", 36)
	b.SnapshotID = in.Str("snapshot_id", "", 36)
	b.Container = in.Str("container", defaultContainer, 255)
	incremental := in.Bool("incremental", false)
	force := in.Bool("force", false)
	b.Metadata = metadata(in, "metadata")
	backupZone(r, in)
	if in.Err != nil {
		return in.Err
	}
	if b.Container == "" {
		b.Container = defaultContainer
	}
	if strings.Contains(b.Container, "/") {
		return cinderWording{}.BadField("container", b.Container, "a container name has no '/'")
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	vol, err := s.namedVolume(tx, r, b.VolumeID)
	if err != nil {
		return err
	}
	b.VolumeMetadata = vol.Metadata
	if vol.Key != "" {
		// The objects hold the volume's ciphertext, LUKS header and
		// all: the backup keeps the key that opens it, as Cinder does.
		if b.Key, b.KeyID, err = s.copyKey(vol.Key, vol.ID, b.ID); err != nil {
			return err
		}
	}
	if b.SnapshotID != "" {
		snap, err := s.snapshots(r, true).Get(tx, p, b.SnapshotID)
		if err != nil {
			return err
		}
		if snap.VolumeID != vol.ID {
			return badRequest("Invalid snapshot: snapshot %s is not a snapshot of volume %s.", snap.ID, vol.ID)
		}
		if snap.Status != volstate.SnapStatusAvailable {
			return badRequest("Invalid snapshot: Snapshot to be backed up must be available, but the current status is \"%s\".", snap.Status)
		}
		b.DataAt = snap.CreatedAt
	} else if vol.Status == volstate.StatusInUse && !force {
		return badRequest("Invalid volume: Volume to be backed up must be available or in-use with force, but the current status is \"in-use\".")
	}
	if incremental {
		parent := latestBackup(tx, vol.ID, proj)
		if parent == nil {
			return badRequest("Invalid backup: No backups available to do an incremental backup.")
		}
		b.ParentID = parent.ID
	}
	b.WorkNode, b.WorkRun = s.cfg.Node, s.run
	var row volstate.Backup
	release := s.carry(b.ID)
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateBackup, volstate.CreateBackupCmd{Row: b, AnyProject: vol.Project != proj}, &row); err != nil {
		release()
		return err
	}
	job := BackupJob{Project: b.Project, Container: b.Container, Prefix: b.ID, Parent: b.ParentID, Source: b.VolumeID}
	if b.SnapshotID != "" {
		job.Source, job.Snapshot = b.SnapshotID, true
	}
	s.background(func(ctx context.Context) {
		defer release()
		objects, bytes, err := s.backupBlocks(ctx, job)
		_, cerr := s.changeBackup(ctx, b.ID, func(b *volstate.Backup) error {
			if b.Status != volstate.BackupCreating {
				return errSettled // force-deleted while it was written
			}
			b.WorkNode, b.WorkRun = "", ""
			if err != nil {
				b.Status, b.Reason = volstate.BackupError, "write the backup's objects: "+err.Error()
				return nil
			}
			b.Status, b.Reason, b.ObjectCount, b.StoredBytes = volstate.BackupAvailable, "", objects, bytes
			return nil
		})
		switch {
		case errors.Is(cerr, errSettled), errors.Is(cerr, store.ErrNotFound):
			// The delete may have run before the last objects were
			// written: they are this writer's to delete.
			if derr := s.deleteBackupObjects(ctx, &row); derr != nil {
				s.log.Warn("volume: delete the objects of a backup deleted while written", "backup", b.ID, "err", derr)
			}
			return
		case cerr != nil:
			s.log.Warn("volume: record backup", "backup", b.ID, "err", cerr)
		}
		if err != nil {
			s.log.Warn("volume: backup failed", "backup", b.ID, "volume", b.VolumeID, "err", err)
		}
	})
	api.JSON(w, http.StatusAccepted, map[string]any{"backup": api.View{"id": row.ID, "name": nullable(row.Name), "links": s.links(r, "backups", row.ID)}})
	return nil
}

// latestBackup is the newest available backup of volume that project
// owns: what project's incremental backup adds to. As in Cinder, the
// parent is never another project's backup (an admin's backup of a
// member's volume, or the member's when the admin backs up): its objects
// are in that project's container.
func latestBackup(tx *memdb.Txn, volume, project string) *volstate.Backup {
	var latest *volstate.Backup
	for _, b := range store.All[volstate.Backup](tx, volstate.BackupTable, "volume", volume) {
		if b.Project != project || b.Status != volstate.BackupAvailable || b.DataProject != "" || b.Prefix != "" {
			// An imported backup's objects may be another project's.
			continue
		}
		if latest == nil || b.DataAt.After(latest.DataAt) || (b.DataAt.Equal(latest.DataAt) && b.CreatedAt.After(latest.CreatedAt)) ||
			(b.DataAt.Equal(latest.DataAt) && b.CreatedAt.Equal(latest.CreatedAt) && b.ParentID == latest.ID) {
			latest = b
		}
	}
	return latest
}

func (s *Service) deleteBackup(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	if err := s.needBackups(); err != nil {
		return err
	}
	return s.startBackupDelete(w, r, false)
}

// startBackupDelete marks a request's backup deleting and deletes it in
// the background. Forced (an admin's os-force_delete), a backup still
// being written or restored from is deleted too, as Cinder's force
// delete cancels them: the writer, finding its backup gone, deletes what
// it wrote after (see createBackup), and a restore reading it fails.
func (s *Service) startBackupDelete(w http.ResponseWriter, r *http.Request, force bool) error {
	b, err := s.ownBackup(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if len(volstate.Children(tx, b.ID)) > 0 {
		return badRequest("Invalid backup: Incremental backups exist for this backup.")
	}
	release := s.carry(b.ID)
	row, err := s.changeBackup(r.Context(), b.ID, func(b *volstate.Backup) error {
		switch b.Status {
		case volstate.BackupAvailable, volstate.BackupError, volstate.BackupErrorDeleting:
		case volstate.BackupCreating, volstate.BackupRestoring:
			if !force {
				return badRequest("Invalid backup: Backup status must be available or error (it is %s).", b.Status)
			}
		default:
			return badRequest("Invalid backup: Backup status must be available, error, creating or restoring to be force deleted (it is %s).", b.Status)
		}
		b.Status, b.WorkNode, b.WorkRun = volstate.BackupDeleting, s.cfg.Node, s.run
		return nil
	})
	if err != nil {
		release()
		return err
	}
	s.background(func(ctx context.Context) {
		defer release()
		s.removeBackup(ctx, row)
	})
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// removeBackup deletes a deleting backup's objects, then its row.
func (s *Service) removeBackup(ctx context.Context, b *volstate.Backup) {
	err := s.deleteBackupObjects(ctx, b)
	if err != nil {
		s.log.Warn("volume: delete backup objects", "backup", b.ID, "err", err)
		if _, cerr := s.changeBackup(ctx, b.ID, func(b *volstate.Backup) error {
			b.Status, b.Reason, b.WorkNode, b.WorkRun = volstate.BackupErrorDeleting, "delete the backup's objects: "+err.Error(), "", ""
			return nil
		}); cerr != nil {
			s.log.Warn("volume: record backup delete failure", "backup", b.ID, "err", cerr)
		}
		return
	}
	for attempt := 0; attempt < 10; attempt++ {
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return
		}
		cur, err := volstate.LoadBackup(tx, b.ID)
		if err != nil {
			return
		}
		_, err = s.cfg.Repl.Propose(ctx, volstate.CmdDeleteBackup, volstate.DeleteBackupCmd{ID: b.ID, Revision: cur.Revision})
		if !volstate.IsStale(err) {
			if err != nil {
				s.log.Warn("volume: delete backup", "backup", b.ID, "err", err)
			}
			return
		}
	}
}

func (s *Service) backupAction(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	action, arg, err := readAction(r)
	if err != nil {
		return err
	}
	if action == "os-force_delete" {
		if !principal(r).IsAdmin() {
			return policyDenied("volume_extension:backup_admin_actions:force_delete")
		}
		if err := s.needBackups(); err != nil {
			return err
		}
		return s.startBackupDelete(w, r, true)
	}
	if action == "os-reset_status" {
		if !principal(r).IsAdmin() {
			return policyDenied("backup:reset_status")
		}
		in, err := actionArg(arg, "os-reset_status")
		if err != nil {
			return err
		}
		status := in.Str("status", "", 255)
		if in.Err != nil {
			return in.Err
		}
		if !slices.Contains(volstate.BackupStatuses(), status) {
			return cinderWording{}.BadField("status", status, "must be one of "+strings.Join(volstate.BackupStatuses(), ", "))
		}
		b, err := s.ownBackup(r, chi.URLParam(r, "id"))
		if err != nil {
			return err
		}
		if _, err := s.changeBackup(r.Context(), b.ID, func(b *volstate.Backup) error {
			b.Status, b.WorkNode, b.WorkRun = status, "", ""
			return nil
		}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return badRequest("There is no such action: %s", action)
}

// restoreBackup writes a backup into a volume: the one named, which must
// be available and large enough, or a new one of the backup's size.
func (s *Service) restoreBackup(w http.ResponseWriter, r *http.Request) error {
	proj, err := project(r)
	if err != nil {
		return err
	}
	if err := s.needBackups(); err != nil {
		return err
	}
	o, err := body(r, "restore")
	if err != nil {
		return err
	}
	in := newInput(o)
	target := in.Str("volume_id", "", 36)
	name := in.Str("name", "", 255)
	if in.Err != nil {
		return in.Err
	}
	b, err := s.ownBackup(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if b.Status != volstate.BackupAvailable {
		return badRequest("Invalid backup: Backup status must be available (it is %s).", b.Status)
	}
	p := principal(r)
	if target == "" {
		if name == "" {
			name = "restore_backup_" + b.ID
		}
		var release func()
		target, release, err = s.newRestoreVolume(r.Context(), p, proj, b, name)
		if err != nil {
			return err
		}
		defer release()
	} else {
		defer s.carry(target)()
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		if _, err := s.volumes(r, true).Get(tx, p, target); err != nil {
			return err
		}
		if _, err := s.changeVolume(r.Context(), target, func(v *volstate.Volume) error {
			if v.Status != volstate.StatusAvailable || len(v.Attachments) > 0 {
				return badRequest("Invalid volume: Volume to be restored to must be available (it is %s).", v.Status)
			}
			if v.Size < b.Size {
				return badRequest("Invalid volume: volume size %d is too small to restore backup of size %d.", v.Size, b.Size)
			}
			switch {
			case b.Key != "" && v.Key == "":
				return badRequest("Invalid volume: backup %s is of an encrypted volume; volume %s is not encrypted, and its data would be unreadable ciphertext.", b.ID, v.ID)
			case b.Key == "" && v.Key != "":
				return badRequest("Invalid volume: backup %s is of an unencrypted volume; restored over encrypted volume %s it would not open.", b.ID, v.ID)
			case b.Key != "":
				// The data is the backup's ciphertext under its LUKS
				// header: the volume takes the backup's key, as Cinder
				// gives it a copy of it.
				key, keyID, err := s.copyKey(b.Key, b.ID, v.ID)
				if err != nil {
					return err
				}
				v.Key, v.KeyID = key, keyID
			}
			v.Status, v.Reason = volstate.StatusRestoringBackup, ""
			s.worked(v)
			return nil
		}); err != nil {
			return err
		}
	}
	// The backup is carried from before the proposal that marks it
	// restoring until the background restore ends (restoreInto).
	releaseBackup := s.carry(b.ID)
	defer releaseBackup()
	if _, err := s.changeBackup(r.Context(), b.ID, func(b *volstate.Backup) error {
		if b.Status != volstate.BackupAvailable {
			return badRequest("Invalid backup: Backup status must be available (it is %s).", b.Status)
		}
		b.Status, b.WorkNode, b.WorkRun = volstate.BackupRestoring, s.cfg.Node, s.run
		return nil
	}); err != nil {
		// The volume is not written: it is given back.
		s.finish(r.Context(), target, volstate.StatusAvailable, volstate.StatusError, "", nil)
		return err
	}
	s.restoreInto(b, target, volstate.StatusErrorRestoring)
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	volName := ""
	if v := store.Get[volstate.Volume](tx, volstate.VolumeTable, target); v != nil {
		volName = v.Name
	}
	api.JSON(w, http.StatusAccepted, map[string]any{"restore": map[string]any{"backup_id": b.ID, "volume_id": target, "volume_name": volName}})
	return nil
}

// restoreInto writes backup b (marked restoring) into volume target in
// the background; the backup becomes available again, then the volume
// available, or failed.
func (s *Service) restoreInto(b *volstate.Backup, target, failed string) {
	release, releaseBackup := s.carry(target), s.carry(b.ID)
	s.background(func(ctx context.Context) {
		defer release()
		defer releaseBackup()
		err := s.cfg.Backups.Restore(ctx, b.ObjectProject(), b.Container, b.ObjectPrefix(), target)
		if err == nil && len(b.VolumeMetadata) > 0 {
			// The backed-up volume's metadata comes with its data.
			if _, merr := s.changeVolume(ctx, target, func(v *volstate.Volume) error {
				if v.Metadata == nil {
					v.Metadata = map[string]string{}
				}
				maps.Copy(v.Metadata, b.VolumeMetadata)
				return nil
			}); merr != nil {
				s.log.Warn("volume: restore metadata", "backup", b.ID, "volume", target, "err", merr)
			}
		}
		// The backup is released before the volume is finished, so a
		// client that waited for the volume finds the backup free for
		// its next restore (the other order left a window where the
		// volume was available and the backup still restoring).
		if _, cerr := s.changeBackup(ctx, b.ID, func(b *volstate.Backup) error {
			if b.Status != volstate.BackupRestoring {
				return errSettled // force-deleted while restored from
			}
			b.Status, b.WorkNode, b.WorkRun = volstate.BackupAvailable, "", ""
			return nil
		}); cerr != nil && !errors.Is(cerr, errSettled) && !errors.Is(cerr, store.ErrNotFound) {
			s.log.Warn("volume: record restore", "backup", b.ID, "err", cerr)
		}
		if _, ferr := s.finish(ctx, target, volstate.StatusAvailable, failed, "restore backup "+b.ID, err); ferr != nil {
			s.log.Warn("volume: restore backup", "backup", b.ID, "volume", target, "err", ferr)
		}
	})
}

// newRestoreVolume makes the volume a restore without a target writes
// into: the backup's size, restoring-backup from the start.
func (s *Service) newRestoreVolume(ctx context.Context, p *api.Principal, proj string, b *volstate.Backup, name string) (id string, release func(), err error) {
	release = func() {}
	defer func() {
		if err != nil {
			release()
		}
	}()
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return "", release, err
	}
	t, err := volstate.ProjectDefaultType(tx, proj)
	if err != nil {
		return "", release, err
	}
	if src := store.Get[volstate.Volume](tx, volstate.VolumeTable, b.VolumeID); src != nil {
		if st, err := volstate.LoadType(tx, src.TypeID); err == nil {
			t = st
		}
	}
	policy, err := policyOf(t)
	if err != nil {
		return "", release, err
	}
	now := s.now()
	v := volstate.Volume{ID: api.NewUUID(), Name: name, Project: proj, User: p.UserID, Size: b.Size, Status: volstate.StatusCreating,
		TypeID: t.ID, CreatedAt: now, UpdatedAt: now}
	switch {
	case b.Key != "" && t.Encryption == nil:
		return "", release, badRequest("Invalid backup: backup %s is of an encrypted volume whose type is gone; restore it into an existing encrypted volume.", b.ID)
	case b.Key != "":
		if v.Key, v.KeyID, err = s.copyKey(b.Key, b.ID, v.ID); err != nil {
			return "", release, err
		}
	case t.Encryption != nil:
		return "", release, badRequest("Invalid backup: backup %s is of an unencrypted volume and its type %s is now encrypted; restore it into an existing unencrypted volume.", b.ID, t.Name)
	}
	s.worked(&v)
	release = s.carry(v.ID)
	if _, err := api.Propose(ctx, s.cfg.Repl, volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: v}, nil); err != nil {
		return "", release, err
	}
	if err := s.cfg.Blocks.Create(ctx, v.ID, int64(v.Size)*volstate.GiB, policy); err != nil {
		_, ferr := s.finish(ctx, v.ID, volstate.StatusAvailable, volstate.StatusError, "create the volume's blocks", err)
		return "", release, ferr
	}
	if _, err := s.changeVolume(ctx, v.ID, func(v *volstate.Volume) error {
		v.Status = volstate.StatusRestoringBackup
		return nil
	}); err != nil {
		return "", release, err
	}
	return v.ID, release, nil
}

// settleBackups gives backups whose work was abandoned a final status: an
// interrupted write is error, an interrupted restore leaves the backup
// available (its volume is settled as error), an interrupted delete is
// done again.
func (s *Service) settleBackups(ctx context.Context, tx *memdb.Txn) {
	if s.cfg.Backups == nil {
		return
	}
	for _, b := range store.All[volstate.Backup](tx, volstate.BackupTable, "id") {
		switch b.Status {
		case volstate.BackupCreating, volstate.BackupRestoring, volstate.BackupDeleting:
		default:
			continue
		}
		if !s.workAbandoned(b.ID, b.WorkNode, b.WorkRun) {
			continue
		}
		if b.Status == volstate.BackupDeleting {
			s.removeBackup(ctx, b)
			continue
		}
		node, run, was := b.WorkNode, b.WorkRun, b.Status
		_, err := s.changeBackup(ctx, b.ID, func(b *volstate.Backup) error {
			if b.Status != was || b.WorkNode != node || b.WorkRun != run {
				return errSettled
			}
			b.WorkNode, b.WorkRun = "", ""
			if was == volstate.BackupCreating {
				b.Status, b.Reason = volstate.BackupError, "the process writing the backup stopped before it finished"
			} else {
				b.Status = volstate.BackupAvailable
			}
			return nil
		})
		if err != nil && !errors.Is(err, errSettled) && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("volume: settle abandoned backup", "backup", b.ID, "err", err)
		}
	}
}
