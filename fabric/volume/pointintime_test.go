package volume

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// A clone, an upload to an image and a backup of a volume written over
// NBD on another node read it held there, as a snapshot of it does: the
// writer's node flushes it and its writes wait until one command has
// snapshotted it into the copy's temporary snapshot, which goes after.
// With no other node up they read it as before, with no hold.
func TestCopiesOfAnExportHeldOnItsNode(t *testing.T) {
	for _, c := range []struct {
		name string
		// copy copies vol and names the snapshot a held copy reads, and
		// the clone it made (or "").
		copy func(h *holdFixture, vol string) (tmp, clone string)
	}{
		{"clone", func(h *holdFixture, vol string) (string, string) {
			id := h.createVolume(alice, map[string]any{"size": 1, "source_volid": vol})["id"].(string)
			h.waitStatus(alice, "volumes/"+id, "volume", "available")
			return "copy-" + id, id
		}},
		{"upload", func(h *holdFixture, vol string) (string, string) {
			h.expectV(http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice,
				uploadAction(map[string]any{"image_name": "img1", "disk_format": "raw"}), v31...)
			h.waitStatus(alice, "volumes/"+vol, "volume", "available")
			return uploadSnapshot(vol), ""
		}},
		{"backup", func(h *holdFixture, vol string) (string, string) {
			return "backup-held-" + h.createBackup(alice, map[string]any{"volume_id": vol}), ""
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHoldFixture(t, time.Minute)
			h.nodes = []string{"n1", "n2"}
			n2 := h.agent("n2")
			vol := h.createVolume(alice, map[string]any{"size": 1})["id"].(string)
			gate := n2.Gate(vol, &heldDevice{id: vol, ev: h.ev})
			stop := writing(gate)
			tmp, clone := c.copy(h, vol)
			h.heldAround([]string{vol}, stop)
			if clone != "" && h.blocks.parentOf(clone) != tmp {
				t.Fatalf("clone %s made from %q, not from its held snapshot %s", clone, h.blocks.parentOf(clone), tmp)
			}
			if len(h.blocks.calls) != 1 || len(h.blocks.calls[0]) != 1 || h.blocks.calls[0][0] != (SnapshotPair{ID: tmp, Volume: vol}) {
				t.Fatalf("snapshot commands %v, want one of %s", h.blocks.calls, tmp)
			}
			if !slices.Contains(h.blocks.deletedIDs(), tmp) {
				t.Fatalf("the copy's snapshot %s was not deleted: %v", tmp, h.blocks.deletedIDs())
			}
			if n := h.requestsLeft(); n != 0 {
				t.Fatalf("%d hold requests left", n)
			}

			// No other node up: no hold, no command.
			h.nodes = []string{"n1"}
			if _, clone := c.copy(h, vol); len(h.blocks.calls) != 1 || (clone != "" && h.blocks.parentOf(clone) != vol) {
				t.Fatalf("with no other node up: snapshot commands %v, clone made from %q", h.blocks.calls, h.blocks.parentOf(clone))
			}
		})
	}
}

func (b *fakeBlocks) parentOf(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.parent[id]
}

func (b *fakeBlocks) deletedIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.deleted)
}
