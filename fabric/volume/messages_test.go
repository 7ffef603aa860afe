package volume

import (
	"errors"
	"net/http"
	"testing"
)

func (f *fixture) messages(token string) []map[string]any {
	f.t.Helper()
	r := f.call("GET", "messages", token, nil, "OpenStack-API-Version", "volume 3.3")
	if r.Code != http.StatusOK {
		f.t.Fatalf("list messages: %d %s", r.Code, r.Raw)
	}
	var out []map[string]any
	for _, m := range r.Body["messages"].([]any) {
		out = append(out, m.(map[string]any))
	}
	return out
}

// A type whose capability specs no back end has makes a volume that goes
// to error, as Cinder's scheduler leaves it, with a user message in
// Cinder's words and numbering; the message is the project's, shown,
// listed and deleted from 3.3.
func TestUnschedulableVolumeLeavesAMessage(t *testing.T) {
	f := newFixture(t)
	f.typeWith("bogus", map[string]any{"storage_protocol": "storage_protocol-1", "vendor_name": "vendor-2"})
	f.typeWith("fits", map[string]any{"storage_protocol": "nbd", "capabilities:vendor_name": "<in> Rack", "spec1": "val1", "vendor:x": "y"})
	if got := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "fits"}); got["status"] != "available" {
		t.Fatalf("a type the back end fits: %v", got["status"])
	}
	if len(f.messages(alice)) != 0 {
		t.Fatal("a message with nothing failed")
	}
	vol := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "bogus"})["id"].(string)
	if got := f.showVolume(alice, vol)["status"]; got != "error" {
		t.Fatalf("unschedulable volume is %v", got)
	}
	ms := f.messages(alice)
	if len(ms) != 1 {
		t.Fatalf("messages %v", ms)
	}
	m := ms[0]
	if m["resource_uuid"] != vol || m["resource_type"] != "VOLUME" || m["event_id"] != "VOLUME_VOLUME_001_003" || m["message_level"] != "ERROR" ||
		m["user_message"] != "schedule allocate volume:Could not find any available weighted backend." || m["guaranteed_until"] == nil || m["request_id"] == "" {
		t.Fatalf("message %v", m)
	}
	id := m["id"].(string)
	if r := f.call("GET", "messages/"+id, alice, nil, "OpenStack-API-Version", "volume 3.3"); r.Code != http.StatusOK || r.Body["message"].(map[string]any)["id"] != id {
		t.Fatalf("show: %d %s", r.Code, r.Raw)
	}
	if r := f.call("GET", "messages", alice, nil); r.Code != http.StatusNotFound {
		t.Fatalf("messages at 3.0: %d", r.Code)
	}
	if len(f.messages(bob)) != 0 || len(f.messages(admin)) != 1 {
		t.Fatal("messages are the project's (and an admin's)")
	}
	if r := f.call("DELETE", "messages/"+id, bob, nil, "OpenStack-API-Version", "volume 3.3"); r.Code != http.StatusNotFound {
		t.Fatalf("another project deletes: %d", r.Code)
	}
	if r := f.call("DELETE", "messages/"+id, alice, nil, "OpenStack-API-Version", "volume 3.3"); r.Code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Code, r.Raw)
	}
	if r := f.call("GET", "messages/"+id, alice, nil, "OpenStack-API-Version", "volume 3.3"); r.Code != http.StatusNotFound {
		t.Fatalf("show after delete: %d", r.Code)
	}
	// The volume in error is deleted as any other.
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+vol, alice, nil)
}

// An extend whose blocks could not grow tells its user so.
func TestFailedExtendLeavesAMessage(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.blocks.mu.Lock()
	f.blocks.fail = errors.New("no space")
	f.blocks.mu.Unlock()
	f.call("POST", "volumes/"+vol+"/action", alice, map[string]any{"os-extend": map[string]any{"new_size": 2}})
	ms := f.messages(alice)
	if len(ms) != 1 || ms[0]["event_id"] != "VOLUME_VOLUME_007_010" || ms[0]["resource_uuid"] != vol {
		t.Fatalf("messages %v", ms)
	}
}
