package volume

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// revert (3.40): to the volume's latest snapshot only, of the volume's
// size, of an available volume; the volume's blocks become a copy of the
// snapshot's; a failed copy leaves the volume error saying why and the
// snapshot available. Two snapshots of one second are not told apart.
func TestRevertToSnapshot(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	tick := func() { mu.Lock(); now = now.Add(time.Second); mu.Unlock() }
	f := newFixture(t, func(c *Config) {
		c.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	revert := func(code int, vol, snap string) {
		t.Helper()
		f.at(40, code, "POST", "volumes/"+vol+"/action", alice, map[string]any{"revert": map[string]any{"snapshot_id": snap}})
	}
	vid := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.waitStatus(alice, "volumes/"+vid, "volume", "available")
	revert(http.StatusBadRequest, vid, "00000000-0000-0000-0000-000000000000")

	snap := func(name string) string {
		t.Helper()
		id := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vid, "name": name}}).Body["snapshot"].(map[string]any)["id"].(string)
		f.waitStatus(alice, "snapshots/"+id, "snapshot", "available")
		return id
	}
	s1 := snap("s1")
	tick()
	s2 := snap("s2")
	f.at(39, http.StatusNotFound, "POST", "volumes/"+vid+"/action", alice, map[string]any{"revert": map[string]any{"snapshot_id": s2}})
	f.badField(40, "POST", "volumes/"+vid+"/action", map[string]any{"revert": map[string]any{}}, "snapshot_id")
	f.badField(40, "POST", "volumes/"+vid+"/action", map[string]any{"revert": map[string]any{"snapshot_id": s1}}, "snapshot_id")
	f.at(40, http.StatusNotFound, "POST", "volumes/"+vid+"/action", bob, map[string]any{"revert": map[string]any{"snapshot_id": s2}})

	revert(http.StatusAccepted, vid, s2)
	f.waitStatus(alice, "volumes/"+vid, "volume", "available")
	f.waitStatus(alice, "snapshots/"+s2, "snapshot", "available")
	if p := f.blocks.parentOf(vid); p != s2 {
		t.Fatalf("reverted volume's blocks are a copy of %q, want %s", p, s2)
	}

	// A snapshot taken in the same second as the latest: not told apart.
	s3 := snap("s3")
	revert(http.StatusBadRequest, vid, s3)
	f.expect(http.StatusAccepted, "DELETE", "snapshots/"+s3, alice, nil)
	f.waitGone("snapshots/" + s3)

	// A failed copy: the volume is error with the reason, the snapshot
	// available.
	f.blocks.setFail(errors.New("disk on fire"))
	revert(http.StatusAccepted, vid, s2)
	v := f.waitStatus(admin, "volumes/"+vid, "volume", "error")
	if r, _ := v["rackstack:error_reason"].(string); !strings.Contains(r, "disk on fire") {
		t.Fatalf("volume in error: %v", v)
	}
	f.waitStatus(alice, "snapshots/"+s2, "snapshot", "available")
	f.blocks.setFail(nil)

	// Extended after the snapshot: refused.
	w := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.waitStatus(alice, "volumes/"+w, "volume", "available")
	tick()
	ws := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": w}}).Body["snapshot"].(map[string]any)["id"].(string)
	f.waitStatus(alice, "snapshots/"+ws, "snapshot", "available")
	f.expect(http.StatusAccepted, "POST", "volumes/"+w+"/action", alice, map[string]any{"os-extend": map[string]any{"new_size": 2}})
	f.waitStatus(alice, "volumes/"+w, "volume", "available")
	revert(http.StatusBadRequest, w, ws)
}
