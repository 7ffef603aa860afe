package volume

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// novaEvents passes proposals through, keeping the volume-extended
// events the service sends Nova.
type novaEvents struct {
	store.Replicated
	mu  sync.Mutex
	got []computestate.VolumeExtendedCmd
}

func (n *novaEvents) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	if typ == computestate.CmdVolumeExtended {
		n.mu.Lock()
		n.got = append(n.got, body.(computestate.VolumeExtendedCmd))
		n.mu.Unlock()
		return store.Result{}, nil
	}
	return n.Replicated.Propose(ctx, typ, body)
}

// An attached volume that grew is announced to Nova, as Cinder sends
// the volume-extended external event: with the server, the volume, the
// new size and the user; an available one is not.
func TestExtendInUseTellsNova(t *testing.T) {
	var events *novaEvents
	f := newFixture(t, func(c *Config) { events = &novaEvents{Replicated: c.Repl}; c.Repl = events })
	id := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	other := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: "n1", Device: "/dev/vdc"}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: id, Attachment: att}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttached, volstate.AttachedCmd{VolumeID: id, AttachmentID: att.ID}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{id, other} {
		r := f.call("POST", "volumes/"+v+"/action", alice, map[string]any{"os-extend": map[string]any{"new_size": 3}}, "OpenStack-API-Version", "volume 3.42")
		if r.Code != http.StatusAccepted {
			t.Fatalf("extend %s: %d %s", v, r.Code, r.Raw)
		}
	}
	if len(events.got) != 1 {
		t.Fatalf("nova was told %d times: %+v", len(events.got), events.got)
	}
	e := events.got[0]
	if e.ServerID != att.ServerID || e.VolumeID != id || e.Size != 3*volstate.GiB || e.UserID != "alice" || e.RequestID == "" {
		t.Fatalf("event %+v", e)
	}
}
