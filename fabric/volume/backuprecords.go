package volume

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Backup records (admin): export_record gives what is needed to find a
// backup's objects again, import_record makes a backup of such a record
// after its row was lost, or in another cloud reading the same object
// store. The record names the objects' project, container and prefix;
// the imported backup belongs to the importer's project, as Cinder makes
// it, and reads the objects where they are. Two rows may so share
// objects: deleting one leaves them to the other.

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// backupService names the format of the records, in Cinder's field.
const backupService = "cinder.backup.drivers.rackstack"

// backupRecord is what backup_url encodes (base64 of JSON, as Cinder's).
type backupRecord struct {
	ID             string            `json:"id"`
	Name           string            `json:"display_name,omitempty"`
	Description    string            `json:"display_description,omitempty"`
	ProjectID      string            `json:"project_id"`
	VolumeID       string            `json:"volume_id"`
	SnapshotID     string            `json:"snapshot_id,omitempty"`
	ParentID       string            `json:"parent_id,omitempty"`
	Size           int               `json:"size"`
	Container      string            `json:"container"`
	Prefix         string            `json:"service_metadata"`
	ObjectCount    int               `json:"object_count"`
	StoredBytes    int64             `json:"stored_bytes"`
	Metadata       map[string]string `json:"metadata,omitempty"`
	VolumeMetadata map[string]string `json:"volume_metadata,omitempty"`
	DataAt         time.Time         `json:"data_timestamp"`
	CreatedAt      time.Time         `json:"created_at"`
}

func (s *Service) exportBackup(w http.ResponseWriter, r *http.Request) error {
	if err := s.needBackups(); err != nil {
		return err
	}
	b, err := s.ownBackup(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if b.Status != volstate.BackupAvailable {
		return badRequest("Invalid backup: Backup status must be available and not %s.", b.Status)
	}
	if b.Key != "" {
		return badRequest("Invalid backup: backup %s is of an encrypted volume; its key does not leave this cloud, and a record without it would restore unreadable ciphertext.", b.ID)
	}
	rec := backupRecord{ID: b.ID, Name: b.Name, Description: b.Description, ProjectID: b.ObjectProject(), VolumeID: b.VolumeID,
		SnapshotID: b.SnapshotID, ParentID: b.ParentID, Size: b.Size, Container: b.Container, Prefix: b.ObjectPrefix(),
		ObjectCount: b.ObjectCount, StoredBytes: b.StoredBytes, Metadata: b.Metadata, VolumeMetadata: b.VolumeMetadata,
		DataAt: b.DataAt, CreatedAt: b.CreatedAt}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"backup-record": map[string]any{
		"backup_service": backupService, "backup_url": base64.StdEncoding.EncodeToString(raw)}})
	return nil
}

func (s *Service) importBackup(w http.ResponseWriter, r *http.Request) error {
	proj, err := project(r)
	if err != nil {
		return err
	}
	if err := s.needBackups(); err != nil {
		return err
	}
	o, err := body(r, "backup-record")
	if err != nil {
		return err
	}
	in := newInput(o)
	service := in.Required("backup_service", 255)
	url := in.Required("backup_url", 1<<16)
	if in.Err != nil {
		return in.Err
	}
	if service != backupService {
		return cinderWording{}.BadField("backup_service", service, "backups here are of "+backupService)
	}
	var rec backupRecord
	raw, err := base64.StdEncoding.DecodeString(url)
	if err == nil {
		err = json.Unmarshal(raw, &rec)
	}
	switch {
	case err != nil:
		return cinderWording{}.BadField("backup_url", "...", "is not a backup record: "+err.Error())
	case rec.ProjectID == "" || rec.Container == "" || rec.Prefix == "" || rec.VolumeID == "":
		return cinderWording{}.BadField("backup_url", "...", "the record lacks project_id, container, service_metadata or volume_id")
	case rec.Size < 1:
		return cinderWording{}.BadField("backup_url", "...", "the record's size is not a positive number of GiB")
	}
	if rec.ID == "" {
		rec.ID = api.NewUUID()
	} else if !uuidPattern.MatchString(rec.ID) {
		return cinderWording{}.BadField("backup_url", "...", "the record's id is not a UUID")
	}
	if err := s.cfg.Backups.Check(r.Context(), rec.ProjectID, rec.Container, rec.Prefix); err != nil {
		return badRequest("Invalid backup: the record's objects (%s/%s in project %s) cannot be read: %v", rec.Container, rec.Prefix, rec.ProjectID, err)
	}
	now := s.now()
	p := principal(r)
	b := volstate.Backup{ID: rec.ID, Name: rec.Name, Description: rec.Description, Project: proj, User: p.UserID,
		VolumeID: rec.VolumeID, SnapshotID: rec.SnapshotID, ParentID: rec.ParentID, Size: rec.Size, Status: volstate.BackupAvailable,
		Container: rec.Container, ObjectCount: rec.ObjectCount, StoredBytes: rec.StoredBytes, Metadata: rec.Metadata,
		VolumeMetadata: rec.VolumeMetadata, DataAt: rec.DataAt, CreatedAt: now, UpdatedAt: now}
	if rec.ProjectID != proj {
		b.DataProject = rec.ProjectID
	}
	if rec.Prefix != rec.ID {
		b.Prefix = rec.Prefix
	}
	var row volstate.Backup
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdImportBackup, volstate.ImportBackupCmd{Row: b}, &row); err != nil {
		return err
	}
	s.log.Info("backup imported", "backup", row.ID, "project", proj, "objects", rec.ProjectID+"/"+rec.Container+"/"+rec.Prefix)
	api.JSON(w, http.StatusCreated, map[string]any{"backup": map[string]any{"id": row.ID, "name": nullable(row.Name), "links": s.links(r, "backups", row.ID)}})
	return nil
}

// deleteBackupObjects deletes a deleting backup's objects, unless
// another backup row (an import of it, or what it was imported from)
// reads them.
func (s *Service) deleteBackupObjects(ctx context.Context, b *volstate.Backup) error {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	for _, o := range store.All[volstate.Backup](tx, volstate.BackupTable, "id") {
		if o.ID != b.ID && o.ObjectProject() == b.ObjectProject() && o.Container == b.Container && o.ObjectPrefix() == b.ObjectPrefix() {
			s.log.Info("backup deleted; its objects stay for another backup", "backup", b.ID, "other", o.ID)
			return nil
		}
	}
	return s.cfg.Backups.Delete(ctx, b.ObjectProject(), b.Container, b.ObjectPrefix())
}
