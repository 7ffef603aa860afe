package volume

import (
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// A transfer gives its key once; another project that presents it takes
// the volume and its snapshots; a wrong key takes nothing; a withdrawn
// transfer gives the volume back to available.
func TestVolumeTransfer(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1, "name": "moving"})["id"].(string)
	snap := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}}).Body["snapshot"].(map[string]any)["id"].(string)
	tr := f.expect(http.StatusAccepted, "POST", "os-volume-transfer", alice, map[string]any{"transfer": map[string]any{"volume_id": vol, "name": "t1"}}).Body["transfer"].(map[string]any)
	id, key := tr["id"].(string), tr["auth_key"].(string)
	if len(key) != 16 || tr["volume_id"] != vol {
		t.Fatalf("transfer %v", tr)
	}
	if got := f.showVolume(alice, vol)["status"]; got != volstate.StatusAwaitingTransfer {
		t.Fatalf("volume offered: %v", got)
	}
	shown := f.expect(http.StatusOK, "GET", "os-volume-transfer/"+id, alice, nil).Body["transfer"].(map[string]any)
	if _, ok := shown["auth_key"]; ok || shown["name"] != "t1" {
		t.Fatalf("show %v", shown)
	}
	if l := f.expect(http.StatusOK, "GET", "os-volume-transfer/detail", alice, nil).Body["transfers"].([]any); len(l) != 1 {
		t.Fatalf("list %v", l)
	}
	if l := f.expect(http.StatusOK, "GET", "os-volume-transfer", bob, nil).Body["transfers"].([]any); len(l) != 0 {
		t.Fatalf("bob lists %v", l)
	}
	f.expect(http.StatusBadRequest, "DELETE", "volumes/"+vol, alice, nil)
	f.expect(http.StatusBadRequest, "POST", "os-volume-transfer/"+id+"/accept", bob, map[string]any{"accept": map[string]any{"auth_key": "0123456789abcdef"}})
	f.expect(http.StatusAccepted, "POST", "os-volume-transfer/"+id+"/accept", bob, map[string]any{"accept": map[string]any{"auth_key": key}})
	got := f.showVolume(bob, vol)
	if got["status"] != "available" || got["os-vol-tenant-attr:tenant_id"] != projB {
		t.Fatalf("accepted volume %v", got)
	}
	f.expect(http.StatusNotFound, "GET", "volumes/"+vol, alice, nil)
	f.expect(http.StatusOK, "GET", "snapshots/"+snap, bob, nil)
	f.expect(http.StatusNotFound, "GET", "os-volume-transfer/"+id, alice, nil)

	// Withdrawn (at Cinder 3.55's path).
	tr = f.expect(http.StatusAccepted, "POST", "volume-transfers", bob, map[string]any{"transfer": map[string]any{"volume_id": vol}}).Body["transfer"].(map[string]any)
	f.expect(http.StatusAccepted, "DELETE", "volume-transfers/"+tr["id"].(string), bob, nil)
	if got := f.showVolume(bob, vol)["status"]; got != "available" {
		t.Fatalf("after the transfer was withdrawn: %v", got)
	}
	f.expect(http.StatusNotFound, "POST", "os-volume-transfer", alice, map[string]any{"transfer": map[string]any{"volume_id": vol}})
}

// The accepting project's quota holds.
func TestVolumeTransferTakesTheAcceptorsQuota(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	key := f.expect(http.StatusAccepted, "POST", "os-volume-transfer", alice, map[string]any{"transfer": map[string]any{"volume_id": vol}}).Body["transfer"].(map[string]any)
	f.expect(http.StatusOK, "PUT", "os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"volumes": 0}})
	r := f.call("POST", "os-volume-transfer/"+key["id"].(string)+"/accept", bob, map[string]any{"accept": map[string]any{"auth_key": key["auth_key"]}})
	if r.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("accept over quota: %d %s", r.Code, r.Raw)
	}
	if got := f.showVolume(alice, vol)["status"]; got != volstate.StatusAwaitingTransfer {
		t.Fatalf("volume after a refused accept: %v", got)
	}
}
