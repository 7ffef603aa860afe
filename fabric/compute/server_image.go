package compute

import (
	"context"
	"net/http"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// ImageStep proposes a node agent's step of a snapshot; the end of a
// shelve's leaves the offloaded server's ports bound to no host.
func (s *Service) ImageStep(ctx context.Context, c computestate.ImageStepCmd) error {
	_, err := s.cfg.Repl.Propose(ctx, computestate.CmdImageStep, c)
	if err == nil && c.Result == "Success" {
		if tx, rerr := s.cfg.Repl.Read(ctx); rerr == nil {
			if sv := store.Get[Server](tx, tServers, c.ServerID); sv != nil && sv.VMState == computestate.VMShelvedOffloaded && sv.Host == "" {
				s.unbindHost(ctx, sv)
			}
		}
	}
	return err
}

// createImage (Nova's "Create Image" server action): a snapshot of an
// image-backed server's root disk becomes a new image. The image is made
// here, queued, owned by the server's project and private; the server's
// task_state goes image_snapshot and its node agent copies the guest's
// disk (paused for the copy when it runs), flattened, into the image,
// which goes saving then active, and reports the steps
// (computestate.CmdImageStep). A failed copy deletes the image and the
// server goes back to its state, as Nova does. A server booted from a
// volume is snapshotted as Nova's snapshot_volume_backed does it
// (server_image_volume.go).

const createImageRule = "os_compute_api:servers:create_image"

// SnapshotImages makes the images createImage asks for.
type SnapshotImages interface {
	// CreateSnapshot makes the queued image n and answers its id.
	CreateSnapshot(ctx context.Context, p *api.Principal, n SnapshotImage) (string, error)
	// Discard deletes an image whose data was not written.
	Discard(ctx context.Context, id string) error
}

// SnapshotImage is the image createImage makes of a server.
type SnapshotImage struct {
	Name string
	// Project owns it (the server's).
	Project string
	// BaseImage is the image the server was built from: its properties
	// are inherited, as Nova copies them, less those Nova does not.
	BaseImage string
	// MinDisk is the server's root disk (GB), at least: Nova's snapshot
	// has the larger of it and the base image's (whose min_ram it has).
	MinDisk int
	// Properties are set over the inherited ones.
	Properties map[string]string
	// Mapping says the image only maps volume snapshots (a volume-backed
	// server's): it holds no data and is made active at once, empty.
	Mapping bool
	// Hidden keeps it out of the default image list (Glance's
	// os_hidden): a cold migration's copy of a disk, not the user's.
	Hidden bool
}

// NotInherited are the base image's properties Nova's snapshot does not
// copy (non_inheritable_image_properties and the image signature).
var NotInherited = map[string]bool{"cache_in_nova": true, "bittorrent": true, "img_signature": true,
	"img_signature_hash_method": true, "img_signature_key_type": true, "img_signature_certificate_uuid": true}

// createImageMinor is the microversion from which createImage answers
// {"image_id": ...} and no Location header.
const createImageMinor = 45

func (s *Service) createImage(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, createImageRule)
	if err != nil {
		return err
	}
	o, ok := arg.(map[string]any)
	if !ok {
		return badField("createImage", arg, "%s is not of type 'object'", api.Text(arg))
	}
	if err := allowOnly(o, "name", "metadata"); err != nil {
		return err
	}
	in := newInput(o)
	name := snapshotName(in)
	meta := metadata(in, "metadata")
	if in.Err != nil {
		return in.Err
	}
	return s.snapshotServer(w, r, sv, name, meta, nil, false)
}

// snapshotName reads the name of the image a snapshot makes.
func snapshotName(in *api.Input) string {
	name := str(in, "name", true, 1, 255)
	if in.Err == nil && (strings.TrimSpace(name) != name || name == "") {
		in.Fail(badField("name", name, "'%s' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'", name))
	}
	return name
}

// snapshotServer makes the queued image name of server sv, with the
// request's metadata meta over the snapshot's properties (image_type,
// instance_uuid, user_id, base_image_ref) and a backup's backup_type
// over both, as Nova's, and starts its node's copy into it: createImage's
// and, with backup, createBackup's; with shelve, shelve's.
func (s *Service) snapshotServer(w http.ResponseWriter, r *http.Request, sv *Server, name string, meta map[string]string, backup *computestate.Backup, shelve bool) error {
	action := computestate.ActionCreateImage
	if backup != nil {
		action = computestate.ActionCreateBackup
	} else if shelve {
		action = computestate.ActionShelve
	}
	if err := refuseLocked(r, sv); err != nil {
		return err
	}
	if isBaremetal(sv) {
		return baremetalNotSupported(action, sv.ID)
	}
	if sv.BootVolume != "" && backup != nil {
		// Nova refuses it (compute API's backup): not a missing part.
		return badRequest("Backup is not supported for volume-backed instances.")
	}
	if s.cfg.Snapshots == nil {
		return notImplemented("The server action %s is not implemented by this cloud.", action)
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if limit := quotaLimit(tx, sv.Project, "metadata_items"); limit >= 0 && len(meta) > limit {
		// Nova's check_img_metadata_properties_quota: a plain 403.
		return forbidden("Image metadata limit exceeded: %d metadata_items, the quota is %d.", len(meta), limit)
	}
	// Checked here too, so that a server that cannot be snapshotted now
	// gets no image made for nothing; the command checks it again.
	if err := snapshottable(sv, action); err != nil {
		return err
	}
	if sv.BootVolume != "" {
		return s.createVolumeBackedImage(w, r, tx, sv, name, meta)
	}
	p := principal(r)
	all := map[string]string{"image_type": "snapshot", "instance_uuid": sv.ID, "user_id": p.UserID, "base_image_ref": sv.ImageID}
	if backup != nil {
		all["image_type"] = "backup"
	}
	for k, v := range meta {
		all[k] = v
	}
	if backup != nil {
		all["backup_type"] = backup.Type
	}
	imageID, err := s.cfg.Snapshots.CreateSnapshot(r.Context(), p, SnapshotImage{Name: name, Project: sv.Project, BaseImage: sv.ImageID,
		MinDisk: sv.RootGB, Properties: all})
	if err != nil {
		return err
	}
	c := serverImageCmd{ID: sv.ID, ImageID: imageID, UserID: p.UserID, RequestID: requestID(r.Context()), Now: s.now(), Admin: p.IsAdmin(),
		Backup: backup, Shelve: shelve}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerImage, c, nil); err != nil {
		if api.Rejected(err) {
			// Refused: nothing will write the image. (An unknown outcome
			// leaves it: the server may be making it.)
			if derr := s.cfg.Snapshots.Discard(context.WithoutCancel(r.Context()), imageID); derr != nil {
				s.log.Warn("compute: delete the image of a refused snapshot", "action", action, "image", imageID, "err", derr)
			}
		}
		return err
	}
	if shelve {
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	// Nova names no Location for a backup kept by no rotation.
	s.imageAccepted(w, r, imageID, backup == nil || backup.Rotation > 0)
	return nil
}

// imageAccepted answers a createImage or createBackup that made image
// id: its id in the body from 2.45, its URL in Location before (if
// location).
func (s *Service) imageAccepted(w http.ResponseWriter, r *http.Request, id string, location bool) {
	if atLeast(r, createImageMinor) {
		api.JSON(w, http.StatusAccepted, map[string]any{"image_id": id})
		return
	}
	if location {
		w.Header().Set("Location", s.imageURL(r, id))
	}
	w.WriteHeader(http.StatusAccepted)
}

// imageURL is where the image service serves image id, as Nova's
// Location names it: the image API beside this one.
func (s *Service) imageURL(r *http.Request, id string) string {
	return api.BaseURL(r, s.cfg.PublicURL) + "/image/v2/images/" + id
}

// snapshottable refuses a server createImage (or createBackup: action)
// cannot snapshot now: Nova allows it from active, stopped, paused and
// suspended with no task.
func snapshottable(sv *Server, action string) error {
	switch sv.VMState {
	case vmActive, vmStopped, vmPaused, vmSuspended:
	default:
		return stateConflict(action, sv.ID, "vm_state", sv.VMState)
	}
	if sv.TaskState != "" {
		return stateConflict(action, sv.ID, "task_state", sv.TaskState)
	}
	if sv.Host == "" {
		return conflict("Cannot '%s' instance %s: it was never placed on a host.", action, sv.ID)
	}
	return nil
}

// serverImageCmd starts the snapshot of server ID into queued image
// ImageID; with Backup, a createBackup's.
type serverImageCmd struct {
	ID        string    `json:"id"`
	ImageID   string    `json:"image_id"`
	UserID    string    `json:"user_id"`
	RequestID string    `json:"request_id"`
	Admin     bool      `json:"admin,omitempty"`
	Now       time.Time `json:"now"`
	// Backup is a createBackup's rotation.
	Backup *computestate.Backup `json:"backup,omitempty"`
	// Shelve is a shelve's snapshot; with no ImageID (a volume-backed
	// server) the server is offloaded at once.
	Shelve bool `json:"shelve,omitempty"`
}

func (c serverImageCmd) action() (action, event, task string) {
	if c.Shelve {
		return computestate.ActionShelve, computestate.EventShelve, computestate.TaskShelving
	}
	if c.Backup != nil {
		return computestate.ActionCreateBackup, computestate.EventBackup, computestate.TaskImageBackup
	}
	return computestate.ActionCreateImage, computestate.EventSnapshot, computestate.TaskImageSnapshot
}

func serverImageEvents(c serverImageCmd) eventMeta {
	action, _, _ := c.action()
	return eventMeta{ids: []string{c.ID}, user: c.UserID, request: c.RequestID, action: action, now: c.Now}
}

func applyServerImage(tx *memdb.Txn, c serverImageCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	action, event, task := c.action()
	if c.Shelve && c.Backup != nil {
		return nil, store.Invalidf("%s: a shelve is no backup", action)
	}
	if c.ImageID == "" && !(c.Shelve && old.BootVolume != "") {
		return nil, store.Invalidf("%s: an image id is required", action)
	}
	if c.Backup != nil && c.Backup.Rotation < 0 {
		return nil, store.Invalidf("%s: rotation %d is negative", action, c.Backup.Rotation)
	}
	if old.Locked && !c.Admin {
		return nil, serverLocked(old.ID)
	}
	if old.Baremetal != "" || (old.BootVolume != "") != (c.Shelve && c.ImageID == "") {
		return nil, store.Invalidf("%s of server %s: only image-backed virtual machines are snapshotted here", action, old.ID)
	}
	if err := snapshottable(old, action); err != nil {
		return nil, err
	}
	s := *old
	s.Updated = c.Now
	ev := ActionEvent{Event: event, Start: c.Now, Host: s.Host}
	if c.ImageID == "" {
		// A volume-backed shelve: its disk is the volume; offloaded now.
		offload(&s, "")
		ev.Finish, ev.Result = c.Now, "Success"
	} else {
		s.SnapshotImage, s.SnapshotBackup, s.SnapshotShelve = c.ImageID, c.Backup, c.Shelve
		setState(&s, s.VMState, task)
	}
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	return nil, tx.Insert(tActions, &Action{ID: s.ID + "/" + c.RequestID, ServerID: s.ID, Project: s.Project, UserID: c.UserID,
		Action: action, RequestID: c.RequestID, Start: c.Now, Events: []ActionEvent{ev}})
}

// applyImageStep records the node agent's progress on a snapshot: a
// step's task state, or its end (the task state back to none and the
// action's event finished). A step of a snapshot the server no longer
// makes is a conflict.
func applyImageStep(tx *memdb.Txn, c computestate.ImageStepCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ServerID)
	if old == nil {
		return nil, serverNotFound(c.ServerID)
	}
	if c.ImageID == "" || old.SnapshotImage != c.ImageID {
		return nil, conflict("Server %s is not making image %s.", c.ServerID, c.ImageID)
	}
	s := *old
	s.Updated = c.Now
	switch c.Result {
	case "":
		if c.Task != computestate.TaskImagePendingUpload && c.Task != computestate.TaskImageUploading {
			return nil, store.Invalidf("image step: task %q is not image_pending_upload or image_uploading", c.Task)
		}
		if s.Want != "deleted" {
			task := c.Task
			if s.SnapshotShelve {
				task = "shelving_" + task // Nova's shelving_image_pending_upload, shelving_image_uploading
			}
			setState(&s, s.VMState, task)
		}
		return nil, tx.Insert(tServers, &s)
	case "Success", "Error":
	default:
		return nil, store.Invalidf("image step: result %q is not Success or Error", c.Result)
	}
	shelve := s.SnapshotShelve
	s.SnapshotImage, s.SnapshotBackup, s.SnapshotShelve = "", nil, false
	if computestate.SnapshotTask(s.TaskState) {
		setState(&s, s.VMState, "")
	}
	if shelve && c.Result == "Success" && s.Want != "deleted" {
		offload(&s, c.ImageID)
	}
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	if a := computestate.OpenSnapshot(tx, s.ID); a != nil {
		done := *a
		ev := done.Events[0]
		ev.Finish, ev.Result = c.Now, c.Result
		if c.Result == "Error" {
			ev.Details, done.Message = c.Details, "Error"
		}
		done.Events = []ActionEvent{ev}
		return nil, tx.Insert(tActions, &done)
	}
	return nil, nil
}
