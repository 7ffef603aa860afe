package identity

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"golang.org/x/crypto/bcrypt"

	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/fabric/store"
)

// loggedLocal keeps every command proposed, as the Raft log would.
type loggedLocal struct {
	local *store.Local
	log   []string
}

func (l *loggedLocal) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	raw, _ := json.Marshal(body)
	l.log = append(l.log, string(raw))
	return l.local.Propose(ctx, typ, body)
}

func (l *loggedLocal) Read(ctx context.Context) (*memdb.Txn, error) { return l.local.Read(ctx) }

// Credential secrets never reach the log or a snapshot in clear, and S3's
// lookups still find them.
func TestCredentialSecretsAreSealedAtRest(t *testing.T) {
	f, logged := sealedFixture(t)
	pid, uid, tok := f.tenant("s3", "erin", "member")
	_, _, body := f.call("POST", "/users/"+uid+"/credentials/OS-EC2", tok, map[string]any{"tenant_id": pid})
	cred := body["credential"].(map[string]any)
	secret, access := cred["secret"].(string), cred["access"].(string)
	_, _, body = f.call("POST", "/credentials", tok, map[string]any{"credential": map[string]any{"user_id": uid, "type": "totp", "blob": "totp-seed-0123456789"}})
	otherID := body["credential"].(map[string]any)["id"].(string)
	if code, _, body := f.call("PATCH", "/credentials/"+otherID, tok, map[string]any{"credential": map[string]any{"blob": "totp-seed-replaced"}}); code != 200 || body["credential"].(map[string]any)["blob"] != "totp-seed-replaced" {
		t.Fatalf("update a credential: %d %v", code, body)
	}
	snap, _, err := store.SnapshotRoundTrip(f.local.State, Schema())
	if err != nil {
		t.Fatal(err)
	}
	for _, clear := range []string{secret, "totp-seed"} {
		if strings.Contains(string(snap), clear) {
			t.Errorf("the snapshot holds %q in clear", clear)
		}
		for _, cmd := range logged.log {
			if strings.Contains(cmd, clear) {
				t.Errorf("a command holds %q in clear: %s", clear, cmd)
			}
		}
	}
	if _, got, err := f.svc.EC2Principal(context.Background(), access); err != nil || got != secret {
		t.Fatalf("EC2Principal secret = %q, %v; want the one issued", got, err)
	}
	if code, _, body := f.call("GET", "/users/"+uid+"/credentials/OS-EC2/"+access, tok, nil); code != 200 || body["credential"].(map[string]any)["secret"] != secret {
		t.Fatalf("show the ec2 credential: %d %v", code, body)
	}
}

// A credential an older build stored in clear still works, and the
// leader seals it.
func TestPlaintextCredentialsFromOlderBuildsStillWork(t *testing.T) {
	local, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := secrets.NewKey()
	ring, _ := secrets.NewKeyring(key)
	f := &fixture{t: t, local: local, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	f.svc, err = New(Config{Repl: local, Now: func() time.Time { return f.now }, BcryptCost: bcrypt.MinCost, Secrets: ring})
	if err != nil {
		t.Fatal(err)
	}
	f.start()
	pid, uid, _ := f.tenant("old", "olga", "member")
	blob := `{"access":"oldaccess","secret":"old-clear-secret"}`
	row, _ := json.Marshal(Credential{ID: ec2CredentialID("oldaccess"), UserID: uid, ProjectID: pid, Type: "ec2", Blob: blob, Access: "oldaccess"})
	if _, err := local.Propose(context.Background(), cmdPut, putCmd{Table: tCredentials, Create: true, Row: row}); err != nil {
		t.Fatal(err)
	}
	if _, got, err := f.svc.EC2Principal(context.Background(), "oldaccess"); err != nil || got != "old-clear-secret" {
		t.Fatalf("clear credential: %q, %v", got, err)
	}
	if err := f.svc.sealPlaintextCredentials(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := store.Get[Credential](local.Local(), tCredentials, ec2CredentialID("oldaccess"))
	if c == nil || !secrets.Sealed(c.Blob) || strings.Contains(c.Blob, "old-clear-secret") {
		t.Fatalf("after sealing: %+v", c)
	}
	if _, got, err := f.svc.EC2Principal(context.Background(), "oldaccess"); err != nil || got != "old-clear-secret" {
		t.Fatalf("sealed credential: %q, %v", got, err)
	}
}

// sealedFixture is a started fixture whose service seals secrets with a
// new cluster key and proposes through a log it keeps (logged), to look
// for secrets in clear.
func sealedFixture(t *testing.T) (*fixture, *loggedLocal) {
	t.Helper()
	local, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	logged := &loggedLocal{local: local}
	key, _ := secrets.NewKey()
	ring, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, local: local, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	if f.svc, err = New(Config{Repl: logged, Now: func() time.Time { return f.now }, BcryptCost: bcrypt.MinCost, Secrets: ring}); err != nil {
		t.Fatal(err)
	}
	f.start()
	return f, logged
}
