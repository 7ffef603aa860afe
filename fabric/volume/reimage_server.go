package volume

import (
	"context"
	"errors"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// ReimageForServer is os-reimage with reimage_reserved as Nova's rebuild
// of a volume-backed server (compute microversion 2.93) calls it: the
// volume, p's and reserved for its server (the server's guest is off),
// gets image's disk written over it; it returns once the copy has ended,
// nil when the volume holds the image, the volume's reason otherwise.
func (s *Service) ReimageForServer(ctx context.Context, p *api.Principal, volumeID, imageID string) error {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	v, err := volstate.LoadVolume(tx, volumeID)
	if err != nil {
		return err
	}
	if v.Project != p.ProjectID {
		return notFound("Volume", volumeID)
	}
	if err := s.reimageFrom(ctx, p, v, imageID, true); err != nil {
		return err
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return err
		}
		cur, err := volstate.LoadVolume(tx, volumeID)
		switch {
		case err != nil:
			return err
		case cur.Status == volstate.StatusDownloading:
			continue
		case cur.Status == volstate.StatusError:
			return errors.New(cur.Reason)
		default:
			return nil
		}
	}
}
