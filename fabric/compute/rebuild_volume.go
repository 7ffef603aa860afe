package compute

import (
	"context"
	"fmt"
	"net/http"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// The rebuild of a volume-backed server (2.93): its boot volume is
// reimaged with the rebuild's image, as Nova's compute manager does it
// through Cinder's os-reimage. The API records the rebuild (REBUILD,
// Server.ReimageImage); the server's node agent powers the guest off and
// then, in order:
//
//  1. ReserveBootVolume: the boot volume goes from in-use to reserved
//     (its attachment kept), so that the node's volume agent leaves it
//     alone; the node then ends its export of the volume.
//  2. ReimageBootVolume: the volume service writes the image over the
//     volume (os-reimage, reimage_reserved) and, done, the volume is
//     in-use again; the node boots the guest from it and reports the
//     rebuild done, as for an image-backed server.
//
// Each step is one command checked against the rebuild it is for (the
// server in REBUILD with that RebuildSeq), and each may be done again: a
// node that restarts in the middle redoes both (a reserved or failed
// volume is reserved again, and reimaged again). A reimage that fails
// leaves the volume in error, which the next rebuild reserves and
// reimages again; the node reports the server ERROR saying why.

const cmdBootVolumeState = "compute.server.boot_volume_state"

// bootVolumeSize is the size in GB of a volume-backed server's boot volume.
func (s *Service) bootVolumeSize(r *http.Request, sv *Server) (int, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return 0, err
	}
	v, err := volstate.LoadVolume(tx, sv.BootVolume)
	if err != nil {
		return 0, err
	}
	return v.Size, nil
}

// ReserveBootVolume is step 1 for server id's rebuild seq.
func (s *Service) ReserveBootVolume(ctx context.Context, id string, seq int) error {
	_, err := s.reimageServer(ctx, id, seq)
	if err != nil {
		return err
	}
	_, err = api.Propose(ctx, s.cfg.Repl, cmdBootVolumeState, bootVolumeStateCmd{ServerID: id, Seq: seq, Reserve: true, Now: s.now()}, nil)
	return err
}

// ReimageBootVolume is step 2 for server id's rebuild seq: it returns
// once the volume holds the image and is in-use again.
func (s *Service) ReimageBootVolume(ctx context.Context, id string, seq int) error {
	sv, err := s.reimageServer(ctx, id, seq)
	if err != nil {
		return err
	}
	if s.cfg.Volumes == nil {
		return fmt.Errorf("no volume service to reimage boot volume %s", sv.BootVolume)
	}
	// The volume is the server's project's; the rebuild was asked by
	// one who may rebuild the server.
	p := &api.Principal{UserID: sv.UserID, ProjectID: sv.Project, Roles: []string{"member", "reader"}}
	if err := s.cfg.Volumes.Reimage(ctx, p, sv.BootVolume, sv.ReimageImage); err != nil {
		return fmt.Errorf("reimage boot volume %s with image %s: %w", sv.BootVolume, sv.ReimageImage, err)
	}
	_, err = api.Propose(ctx, s.cfg.Repl, cmdBootVolumeState, bootVolumeStateCmd{ServerID: id, Seq: seq, Now: s.now()}, nil)
	return err
}

// reimageServer is server id if it waits for the reimage of rebuild seq.
func (s *Service) reimageServer(ctx context.Context, id string, seq int) (*Server, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil, err
	}
	sv := store.Get[Server](tx, tServers, id)
	if err := reimageWaits(sv, id, seq); err != nil {
		return nil, err
	}
	return sv, nil
}

func reimageWaits(sv *Server, id string, seq int) error {
	if sv == nil || sv.Hidden {
		return serverNotFound(id)
	}
	if !computestate.Reimaging(sv) || sv.RebuildSeq != seq || sv.TaskState != "rebuilding" {
		return conflict("Server %s waits for no reimage of its boot volume for rebuild %d.", id, seq)
	}
	return nil
}

type bootVolumeStateCmd struct {
	ServerID string `json:"server_id"`
	Seq      int    `json:"seq"`
	// Reserve: in-use (or reserved, or error) to reserved; otherwise
	// reserved back to in-use.
	Reserve bool      `json:"reserve,omitempty"`
	Now     time.Time `json:"now"`
}

func applyBootVolumeState(tx *memdb.Txn, c bootVolumeStateCmd) (any, error) {
	sv := store.Get[Server](tx, tServers, c.ServerID)
	if err := reimageWaits(sv, c.ServerID, c.Seq); err != nil {
		return nil, err
	}
	cur := store.Get[volstate.Volume](tx, volstate.VolumeTable, sv.BootVolume)
	if cur == nil || len(cur.Attachments) != 1 || cur.Attachments[0].ServerID != sv.ID || !cur.Attachments[0].Root {
		return nil, conflict("Volume %s is not the boot volume of server %s.", sv.BootVolume, sv.ID)
	}
	v := cur.Clone()
	switch {
	case c.Reserve && (v.Status == volstate.StatusInUse || v.Status == volstate.StatusReserved || v.Status == volstate.StatusError):
		v.Status = volstate.StatusReserved
	case !c.Reserve && (v.Status == volstate.StatusReserved || v.Status == volstate.StatusInUse):
		v.Status = volstate.StatusInUse
	default:
		return nil, conflict("Boot volume %s of server %s is %s.", v.ID, sv.ID, v.Status)
	}
	v.UpdatedAt = c.Now
	v.Revision++
	return nil, tx.Insert(volstate.VolumeTable, v)
}
