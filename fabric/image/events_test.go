package image

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
)

// An image's life is in the event log: who created, uploaded, hid and
// deleted it.
func TestImageStateChangesAreEvents(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{"name": "img"})["id"].(string)
	f.upload(alice, id, []byte("some bytes"))
	f.expect(http.StatusNoContent, "POST", "/v2/images/"+id+"/actions/deactivate", alice, nil)
	f.expect(http.StatusNoContent, "POST", "/v2/images/"+id+"/actions/reactivate", alice, nil)
	f.patch(http.StatusOK, alice, id, map[string]any{"op": "replace", "path": "/visibility", "value": "private"})
	f.expect(http.StatusNoContent, "DELETE", "/v2/images/"+id, alice, nil)

	var got []string
	for _, e := range eventstate.List(f.local.State.Txn(), eventstate.Filter{ResourceID: id}) {
		s := fmt.Sprintf("%s %s %s>%s by %s in %s", e.ResourceType, e.Action, e.From, e.To, e.UserID, e.Project)
		if e.Reason != "" {
			s += " (" + e.Reason + ")"
		}
		got = append(got, s)
	}
	want := "image create >queued by u-alice in project-a (visibility shared); image update queued>saving by u-alice in project-a; " +
		"image update saving>active by u-alice in project-a; image update active>deactivated by u-alice in project-a; " +
		"image update deactivated>active by u-alice in project-a; " +
		"image update active>active by u-alice in project-a (visibility shared → visibility private); " +
		"image delete active>DELETED by u-alice in project-a"
	if g := strings.Join(got, "; "); g != want {
		t.Fatalf("events\n%s\nwant\n%s", g, want)
	}
}
