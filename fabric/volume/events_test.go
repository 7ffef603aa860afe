package volume

import (
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/events/eventstate/eventtest"
)

// events lists one resource's events as "type action from>to by who
// (reason)".
func (f *fixture) events(id string) string {
	return eventtest.Lines(f.local.State.Txn(), id, projA)
}

// A volume's, a snapshot's and a backup's lives are in the event log:
// who asked for each change, and what the service did on its own.
func TestVolumeStateChangesAreEvents(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusAccepted, "POST", "volumes/"+vol+"/action", alice, map[string]any{"os-extend": map[string]any{"new_size": 2}})
	att := f.expectV(http.StatusOK, "POST", "attachments", alice, map[string]any{"attachment": map[string]any{"volume_uuid": vol, "instance_uuid": "srv-1"}}, v327...)["attachment"].(map[string]any)
	f.expectV(http.StatusOK, "DELETE", "attachments/"+att["id"].(string), alice, nil, v327...)
	snap := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}}).Body["snapshot"].(map[string]any)["id"].(string)
	backup := f.createBackup(alice, map[string]any{"volume_id": vol})
	f.waitStatus(alice, "backups/"+backup, "backup", "available")
	f.expect(http.StatusAccepted, "DELETE", "snapshots/"+snap, alice, nil)
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+vol, alice, nil)

	for id, want := range map[string]string{
		vol: "volume create >creating by alice; volume update creating>available by alice; " +
			"volume update available>extending by alice; volume update extending>available by alice; " +
			"volume update available>reserved by alice (attached to server srv-1); " +
			"volume update reserved>available by alice (no longer attached to server srv-1); " +
			"volume update available>deleting by alice; volume delete deleting>DELETED by alice",
		snap: "snapshot create >creating by alice; snapshot update creating>available by alice; " +
			"snapshot update available>deleting by alice; snapshot delete deleting>DELETED by alice",
		// The backup is written in the background: its end is the system's.
		backup: "backup create >creating by alice; backup state creating>available by system",
	} {
		if got := f.events(id); got != want {
			t.Errorf("events of %s\n%s\nwant\n%s", id, got, want)
		}
	}
}
