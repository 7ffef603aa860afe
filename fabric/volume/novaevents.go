package volume

import (
	"context"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// volumeExtended tells Nova that attached volume v grew to size GiB, as
// Cinder sends Nova's volume-extended external event: Nova records an
// extend_volume instance action, which the node agent finishes once the
// guest sees the new size. As in Cinder, a failure to tell Nova is
// logged and does not undo the extend (the guest is still told: the
// agent follows the volume's size, not the event).
func (s *Service) volumeExtended(ctx context.Context, v *volstate.Volume, size int, user string) {
	if len(v.Attachments) != 1 {
		return
	}
	c := computestate.VolumeExtendedCmd{ServerID: v.Attachments[0].ServerID, VolumeID: v.ID, Size: int64(size) * volstate.GiB,
		RequestID: "req-" + api.NewUUID(), UserID: user, Now: s.now()}
	if _, err := s.cfg.Repl.Propose(context.WithoutCancel(ctx), computestate.CmdVolumeExtended, c); err != nil {
		s.log.Warn("tell nova a volume grew", "volume", v.ID, "server", c.ServerID, "request_id", c.RequestID, "err", err)
	}
}
