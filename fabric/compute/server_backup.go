package compute

import (
	"math"
	"net/http"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
)

// createBackup (Nova's "Create Server Back Up"): createImage's snapshot
// of an image-backed server (one path: snapshotServer, the node agent's
// snapshot), made as an image with image_type=backup and backup_type,
// the server in task_state image_backup while it is made. Once the
// image is active the agent keeps the server's `rotation` newest
// backups of that backup_type and deletes the older ones (Nova's
// _rotate_backups: rotation 0 deletes them all, the new one too). A
// volume-backed server is refused with 400, as Nova does.

const createBackupRule = "os_compute_api:os-create-backup"

func (s *Service) createBackup(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, createBackupRule)
	if err != nil {
		return err
	}
	o, ok := arg.(map[string]any)
	if !ok {
		return badField("createBackup", arg, "%s is not of type 'object'", api.Text(arg))
	}
	if err := allowOnly(o, "name", "backup_type", "rotation", "metadata"); err != nil {
		return err
	}
	in := newInput(o)
	name := snapshotName(in)
	kind := str(in, "backup_type", true, 0, 0)
	rotation := integer(in, "rotation", true, 0, 0, math.MaxInt32)
	meta := metadata(in, "metadata")
	if in.Err != nil {
		return in.Err
	}
	return s.snapshotServer(w, r, sv, name, meta, &computestate.Backup{Type: kind, Rotation: rotation}, false)
}
