package object

import (
	"errors"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

// Delete of an expired object removes it but answers not found, as Head
// does for it: every front end sees an expired object as gone.
func TestDeleteOfExpiredObjectIsNotFoundAndRemovesIt(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	now := time.Unix(1_700_000_000, 0)
	f.svc.cfg.Now = func() time.Time { return now }
	f.expiring("o", 1_700_000_010)
	f.expiring("live", 1_700_000_100)
	now = time.Unix(1_700_000_010, 0)
	if err := f.svc.Delete(f.ctx, "p", "c", "o"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete of an expired object: %v, want not found", err)
	}
	if got := f.listed(); len(got) != 1 || got[0] != "live" {
		t.Fatalf("listed after the delete: %v", got)
	}
	if err := f.svc.Delete(f.ctx, "p", "c", "live"); err != nil {
		t.Fatalf("delete of a live object: %v", err)
	}
}
