package volume

import (
	"context"
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

var v327 = []string{"OpenStack-API-Version", "volume 3.27"}

func (f *fixture) expectV(code int, method, path, token string, body any, header ...string) map[string]any {
	f.t.Helper()
	r := f.call(method, path, token, body, header...)
	if r.Code != code {
		f.t.Fatalf("%s %s: %d %s, want %d", method, path, r.Code, r.Raw, code)
	}
	return r.Body
}

// The attachments API reserves a volume for an instance and lists it,
// beside the attachments Nova made; deleting ends the reservation, or
// asks the node agent to unplug what Nova attached.
func TestAttachmentsAPI(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	server := api.NewUUID()
	f.expectV(http.StatusNotFound, "GET", "attachments", alice, nil)
	a := f.expectV(http.StatusOK, "POST", "attachments", alice, map[string]any{"attachment": map[string]any{"volume_uuid": vol, "instance_uuid": server}}, v327...)["attachment"].(map[string]any)
	if a["status"] != "reserved" || a["instance"] != server || a["volume_id"] != vol {
		t.Fatalf("attachment %v", a)
	}
	if got := f.showVolume(alice, vol)["status"]; got != "reserved" {
		t.Fatalf("volume %v", got)
	}
	f.expectV(http.StatusBadRequest, "POST", "attachments", alice, map[string]any{"attachment": map[string]any{"volume_uuid": vol, "instance_uuid": server}}, v327...)
	f.expectV(http.StatusBadRequest, "POST", "attachments", alice, map[string]any{"attachment": map[string]any{"volume_uuid": vol, "connector": map[string]any{"host": "h"}}}, v327...)
	if l := f.expectV(http.StatusOK, "GET", "attachments", alice, nil, v327...)["attachments"].([]any); len(l) != 1 {
		t.Fatalf("list %v", l)
	}
	if l := f.expectV(http.StatusOK, "GET", "attachments", bob, nil, v327...)["attachments"].([]any); len(l) != 0 {
		t.Fatalf("bob lists %v", l)
	}
	f.expectV(http.StatusOK, "DELETE", "attachments/"+a["id"].(string), alice, nil, v327...)
	if got := f.showVolume(alice, vol)["status"]; got != "available" {
		t.Fatalf("after delete %v", got)
	}

	// One Nova made: deleting it is a detach the node agent carries out.
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: server, Host: "n1", Device: "/dev/vdc"}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: vol, Attachment: att}); err != nil {
		t.Fatal(err)
	}
	got := f.expectV(http.StatusOK, "GET", "attachments/"+att.ID, alice, nil, v327...)["attachment"].(map[string]any)
	if got["status"] != "attaching" || got["instance"] != server {
		t.Fatalf("Nova's attachment %v", got)
	}
	f.expectV(http.StatusOK, "DELETE", "attachments/"+att.ID, alice, nil, v327...)
	if got := f.showVolume(alice, vol)["status"]; got != "detaching" {
		t.Fatalf("after deleting Nova's attachment %v", got)
	}
}

// The legacy actions keep Cinder's bookkeeping: reserve, unreserve,
// attach (recorded), begin and roll back a detach, detach.
func TestLegacyAttachActions(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	act := func(code int, body map[string]any, want string) {
		t.Helper()
		f.expect(code, "POST", "volumes/"+vol+"/action", alice, body)
		if got := f.showVolume(alice, vol)["status"]; got != want {
			t.Fatalf("after %v: %v, want %s", body, got, want)
		}
	}
	act(http.StatusAccepted, map[string]any{"os-reserve": nil}, "attaching")
	act(http.StatusBadRequest, map[string]any{"os-reserve": nil}, "attaching")
	act(http.StatusAccepted, map[string]any{"os-unreserve": nil}, "available")
	act(http.StatusAccepted, map[string]any{"os-attach": map[string]any{"instance_uuid": api.NewUUID(), "mountpoint": "/dev/vdb"}}, "in-use")
	if atts := f.showVolume(alice, vol)["attachments"].([]any); len(atts) != 1 || atts[0].(map[string]any)["device"] != "/dev/vdb" {
		t.Fatalf("attachments %v", atts)
	}
	act(http.StatusAccepted, map[string]any{"os-begin_detaching": nil}, "detaching")
	act(http.StatusAccepted, map[string]any{"os-roll_detaching": nil}, "in-use")
	act(http.StatusAccepted, map[string]any{"os-detach": map[string]any{}}, "available")
	act(http.StatusBadRequest, map[string]any{"os-attach": map[string]any{}}, "available")
}
