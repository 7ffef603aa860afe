package volume

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// os-reimage (3.68) writes an image over a volume: its blocks are
// replaced by a new thin volume of the same size and storage policy
// (its snapshots and clones keep the blocks they share), the image's
// disk is written into it in the background, and the volume returns to
// its status (available, error, or reserved when reimage_reserved asked
// for a reserved one, as Nova's rebuild of a volume-backed server does),
// bootable, with the image's volume_image_metadata; a failed copy leaves
// it error with the reason. An encrypted volume keeps its key: the
// image is written under a new LUKS header sealed by it, as a volume
// made from an image is (Data.ImageToVolume reads the volume's key). The volume is "downloading" meanwhile, and
// names the process doing it: if that process dies, settle makes it
// error.
func (s *Service) reimage(w http.ResponseWriter, r *http.Request, arg any) error {
	if err := needVersion(r, 68, "os-reimage"); err != nil {
		return err
	}
	in, err := actionArg(arg, "os-reimage")
	if err != nil {
		return err
	}
	imageID := in.Required("image_id", 36)
	reserved := in.Bool("reimage_reserved", false)
	if in.Err != nil {
		return in.Err
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if err := s.reimageFrom(r.Context(), principal(r), v, imageID, reserved); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// reimageFrom starts writing image imageID, which p may read, over v
// with its type's coding (see startReimage).
func (s *Service) reimageFrom(ctx context.Context, p *api.Principal, v *volstate.Volume, imageID string, reserved bool) error {
	size := v.Size
	img, err := s.sourceImage(ctx, p, imageID, &size)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	t, err := volstate.LoadType(tx, v.TypeID)
	if err != nil {
		return err
	}
	policy, err := policyOf(t)
	if err != nil {
		return err
	}
	return s.startReimage(ctx, v, img, policy, reserved)
}

// extendCompletion is os-extend_volume_completion (3.71), an admin's (in
// Cinder, Nova's service user's) report that the compute side of an
// extend of an attached volume finished, for back ends whose extend
// waits in "extending" for it. Here an extend is complete when the
// volume's blocks have grown (the guest learns the size through the node
// agent, recorded as Nova's extend_volume instance action), so no volume
// ever waits for it: the action is checked and refused as Cinder refuses
// it for a volume that is not waiting, never taken silently.
func (s *Service) extendCompletion(w http.ResponseWriter, r *http.Request, arg any) error {
	if !principal(r).IsAdmin() {
		return policyDenied("volume_extension:volume_admin_actions:extend_volume_completion")
	}
	in, err := actionArg(arg, "os-extend_volume_completion")
	if err != nil {
		return err
	}
	in.Bool("error", false)
	if in.Err != nil {
		return in.Err
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return badRequest("Invalid volume: Volume %s is not waiting for an extend to be completed (it is %s): an extend here is complete once the volume's blocks have grown, and the guest is told by the node agent.", v.ID, v.Status)
}

// startReimage marks volume v downloading and writes image img over it in
// the background (os-reimage's work): v returns to its status once done,
// or is error saying why.
func (s *Service) startReimage(ctx context.Context, v *volstate.Volume, img *ImageInfo, policy volstate.Policy, reserved bool) error {
	release := s.carry(v.ID)
	if _, err := s.changeVolume(ctx, v.ID, func(v *volstate.Volume) error {
		ok := v.Status == volstate.StatusAvailable || v.Status == volstate.StatusError || (reserved && v.Status == volstate.StatusReserved)
		if !ok || len(v.Attachments) > 1 {
			want := "available or error"
			if reserved {
				want = "available, error or reserved"
			}
			return badRequest("Invalid volume: Volume %s status must be %s, but current status is %s.", v.ID, want, v.Status)
		}
		v.PreviousStatus, v.Status, v.Reason = v.Status, volstate.StatusDownloading, ""
		s.worked(v)
		return nil
	}); err != nil {
		release()
		return err
	}
	s.background(func(ctx context.Context) {
		defer release()
		dataErr := s.cfg.Blocks.Delete(ctx, v.ID)
		if dataErr == nil {
			dataErr = s.cfg.Blocks.Create(ctx, v.ID, int64(v.Size)*volstate.GiB, policy)
		}
		if dataErr == nil {
			dataErr = s.cfg.Data.ImageToVolume(ctx, img.ID, v.ID)
		}
		row, err := s.changeVolume(ctx, v.ID, func(v *volstate.Volume) error {
			if v.Status != volstate.StatusDownloading || v.WorkRun != s.run {
				return errSettled
			}
			v.WorkNode, v.WorkRun = "", ""
			if dataErr != nil {
				v.Status, v.Reason, v.PreviousStatus = volstate.StatusError, "reimage with image "+img.ID+": "+dataErr.Error(), ""
				return nil
			}
			v.Status, v.PreviousStatus = v.PreviousStatus, ""
			v.ImageID, v.ImageMetadata, v.Bootable = img.ID, imageMetadata(img), true
			v.SnapshotID, v.SourceVolID = "", ""
			return nil
		})
		switch {
		case err != nil:
			s.log.Warn("volume: reimage", "volume", v.ID, "image", img.ID, "err", err)
		case dataErr != nil:
			s.log.Warn("volume: reimage failed", "volume", v.ID, "image", img.ID, "err", dataErr)
			s.tellUser(ctx, row, actCopyImage, detUnknown)
		default:
			s.log.Info("volume reimaged", "volume", v.ID, "image", img.ID)
		}
	})
	return nil
}
