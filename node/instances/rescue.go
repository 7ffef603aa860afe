package instances

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// rescuing says the server waits for this node to restart its guest for
// a rescue or an unrescue (task_state rescuing or unrescuing) newer than
// the last one done here.
func rescuing(s computestate.Server, rec record) bool {
	return (s.TaskState == computestate.TaskRescuing || s.TaskState == computestate.TaskUnrescuing) &&
		s.RescueSeq > rec.RescueSeq
}

// rescue restarts the guest for Nova's rescue or unrescue (restart): the
// last rescue disk removed while the guest is off, and the guest started
// again. A rescue (RescueImage set) boots it from a fresh overlay of the
// rescue image, with its own root disk second and untouched (build); an
// unrescue boots it from its own disk alone. Either way the guest runs after it, as
// Nova's rescue starts a stopped instance and its unrescue leaves it
// active. A rackd that stops in the middle does it again on its next
// pass, with a fresh rescue disk again, which nothing has written yet.
func (a *Agent) rescue(ctx context.Context, s computestate.Server, view *netstate.View, vm hypervisor.VM, state hypervisor.PowerState, rec *record) error {
	what := "Rescue"
	if s.RescueImage == "" {
		what = "Unrescue"
	}
	a.Log.Info("compute: "+strings.ToLower(what), "server", s.ID, "rescue_image", s.RescueImage, "rescue", s.RescueSeq)
	return a.restart(ctx, s, view, vm, state, rec, restartStep{
		what: what,
		done: func(rec *record) { rec.RescueSeq = s.RescueSeq },
		offline: func() error {
			if err := os.Remove(filepath.Join(a.instanceDir(s.ID), rescueDiskName)); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("remove the last rescue disk: %w", err)
			}
			return nil
		},
		start: true,
	})
}

// rescueDiskName is the rescue disk's file in the instance directory;
// the server's delete removes it with the directory.
const rescueDiskName = "disk.rescue"

// rescueDisk is the disk a rescued guest boots from: a qcow2 overlay of
// the rescue image, the size of the server's root disk as Nova makes it.
// It is made by the rescue's first boot and kept while the server stays
// rescued, so that a guest restarted in rescue keeps what was written.
func (a *Agent) rescueDisk(ctx context.Context, s computestate.Server, dir string) (hypervisor.Disk, error) {
	disk := filepath.Join(dir, rescueDiskName)
	if _, err := os.Stat(disk); err != nil {
		base, img, err := a.cachedImage(ctx, s.RescueImage)
		if err != nil {
			return hypervisor.Disk{}, fmt.Errorf("rescue image %s: %w", s.RescueImage, err)
		}
		if err := overlay(ctx, base, imageFormat(img), disk, s.RootGB); err != nil {
			return hypervisor.Disk{}, err
		}
	}
	return hypervisor.Disk{Path: disk, Format: hypervisor.FormatQCOW2, Serial: "rescue"}, nil
}
