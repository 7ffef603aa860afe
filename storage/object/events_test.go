package object

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// A container's creation, its ACL changes and its deletion are events,
// with who asked; the writes into it are not.
func TestContainerChangesAreEvents(t *testing.T) {
	f := newFixture(t, 3)
	ctx := store.WithOrigin(context.Background(), store.Origin{User: "alice", Project: "p"})
	if _, err := f.svc.PutContainer(ctx, Container{Project: "p", Name: "c"}, true); err != nil {
		t.Fatal(err)
	}
	f.put("p", "c", "o", random(5000))
	if _, err := f.svc.PutContainer(ctx, Container{Project: "p", Name: "c", ReadACL: ".r:*"}, false); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(ctx, "p", "c", "o"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DeleteContainer(ctx, "p", "c"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range eventstate.List(f.local.State.Txn(), eventstate.Filter{ResourceID: containerID("p", "c")}) {
		got = append(got, fmt.Sprintf("%s %s by %s in %s (%s)", e.ResourceType, e.Action, e.UserID, e.Project, e.Reason))
	}
	want := "container create by alice in p (); container update by alice in p (read ACL .r:*); container delete by alice in p ()"
	if g := strings.Join(got, "; "); g != want {
		t.Fatalf("events\n%s\nwant\n%s", g, want)
	}
}
