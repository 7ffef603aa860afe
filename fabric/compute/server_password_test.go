package compute

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's os-server-password: empty until the guest posts one (through
// the metadata service), shown to the owner and admins, posted once until
// cleared; clear answers 204. Other projects do not find the server.
func TestServerPassword(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "win")
	path := "/v2.1/servers/" + id + "/os-server-password"
	shown := func(tok string) any {
		t.Helper()
		return f.expect("GET", path, tok, "", nil, 200, "")["password"]
	}
	if got := shown(alice); got != "" {
		t.Fatalf("password before the guest posts one: %v", got)
	}
	ctx := context.Background()
	secret := strings.Repeat("x", MaxServerPassword)
	if err := f.svc.SetPassword(ctx, id, secret+"y"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("an oversized password: %v", err)
	}
	if err := f.svc.SetPassword(ctx, id, secret); err != nil {
		t.Fatal(err)
	}
	if got := shown(alice); got != secret {
		t.Fatalf("password shown %v", got)
	}
	if got := shown(admin); got != secret {
		t.Fatalf("password shown to an admin %v", got)
	}
	// Posted once: another post before a clear is refused, the first kept.
	if err := f.svc.SetPassword(ctx, id, "other"); err == nil || !strings.Contains(err.Error(), "already has a password") {
		t.Fatalf("second post: %v", err)
	}
	f.expect("GET", path, bob, "", nil, 404, "itemNotFound")
	f.expect("DELETE", path, bob, "", nil, 404, "itemNotFound")
	f.expect("DELETE", path, carol, "", nil, 403, "forbidden")
	if got := shown(alice); got != secret {
		t.Fatalf("password after refused clears %v", got)
	}
	f.expect("DELETE", path, alice, "", nil, 204, "")
	if got := shown(alice); got != "" {
		t.Fatalf("password after clear %v", got)
	}
	if err := f.svc.SetPassword(ctx, id, "again"); err != nil {
		t.Fatalf("post after a clear: %v", err)
	}
	// The password is not part of the server's view.
	if raw, _ := json.Marshal(f.show(admin, id, "2.79")); strings.Contains(string(raw), "again") {
		t.Fatalf("server view shows the password")
	}
	f.expect("GET", "/v2.1/servers/nope/os-server-password", alice, "", nil, 404, "itemNotFound")
}
