package identity

import (
	"context"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// leasedLocal is a Local that records which writes were awaited on every
// node, as cluster.Node would wait for them.
type leasedLocal struct {
	local   *store.Local
	last    uint64   // index of the latest write
	awaited []uint64 // indexes AwaitEverywhere was called with
}

func (l *leasedLocal) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	res, err := l.local.Propose(ctx, typ, body)
	if err == nil {
		l.last = res.Index
	}
	return res, err
}

func (l *leasedLocal) Read(ctx context.Context) (*memdb.Txn, error) { return l.local.Read(ctx) }

func (l *leasedLocal) LeasedRead(context.Context) (*memdb.Txn, error) { return l.local.Local(), nil }

func (l *leasedLocal) AwaitEverywhere(_ context.Context, index uint64) error {
	l.awaited = append(l.awaited, index)
	return nil
}

// Every call that takes access away returns only after its write is
// applied on every node (AwaitEverywhere), so that no follower accepts a
// revoked token, grant or credential after the call returned.
func TestEveryRevocationIsAwaitedOnEveryNode(t *testing.T) {
	local, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	repl := &leasedLocal{local: local}
	f := newFixtureOn(t, local, repl)
	member := f.roleID("member")
	tests := map[string]func() (method, path, tok string, body any, hdr []string){
		"token revoke": func() (string, string, string, any, []string) {
			_, _, tok := f.tenant("p-revoke", "u-revoke", "member")
			return "DELETE", "/auth/tokens", f.admin, nil, []string{"X-Subject-Token", tok}
		},
		"password change": func() (string, string, string, any, []string) {
			_, uid, _ := f.tenant("p-pw", "u-pw", "member")
			return "POST", "/users/" + uid + "/password", "", map[string]any{"user": map[string]any{"original_password": "u-pw-pw", "password": "new-password"}}, nil
		},
		"password set by an admin": func() (string, string, string, any, []string) {
			_, uid, _ := f.tenant("p-pwa", "u-pwa", "member")
			return "PATCH", "/users/" + uid, f.admin, map[string]any{"user": map[string]any{"password": "new-password"}}, nil
		},
		"user disable": func() (string, string, string, any, []string) {
			_, uid, _ := f.tenant("p-dis", "u-dis", "member")
			return "PATCH", "/users/" + uid, f.admin, map[string]any{"user": map[string]any{"enabled": false}}, nil
		},
		"user delete": func() (string, string, string, any, []string) {
			_, uid, _ := f.tenant("p-del", "u-del", "member")
			return "DELETE", "/users/" + uid, f.admin, nil, nil
		},
		"role removal": func() (string, string, string, any, []string) {
			pid, uid, _ := f.tenant("p-role", "u-role", "member")
			return "DELETE", "/projects/" + pid + "/users/" + uid + "/roles/" + member, f.admin, nil, nil
		},
		"ec2 credential delete": func() (string, string, string, any, []string) {
			pid, uid, tok := f.tenant("p-ec2", "u-ec2", "member")
			_, _, body := f.call("POST", "/users/"+uid+"/credentials/OS-EC2", tok, map[string]any{"tenant_id": pid})
			access := body["credential"].(map[string]any)["access"].(string)
			return "DELETE", "/users/" + uid + "/credentials/OS-EC2/" + access, tok, nil, nil
		},
		"credential delete": func() (string, string, string, any, []string) {
			_, uid, tok := f.tenant("p-cred", "u-cred", "member")
			_, _, body := f.call("POST", "/credentials", tok, map[string]any{"credential": map[string]any{"user_id": uid, "type": "totp", "blob": "seed"}})
			return "DELETE", "/credentials/" + body["credential"].(map[string]any)["id"].(string), tok, nil, nil
		},
	}
	for name, setup := range tests {
		t.Run(name, func(t *testing.T) {
			method, path, tok, body, hdr := setup()
			before := len(repl.awaited)
			if code, _, out := f.call(method, path, tok, body, hdr...); code/100 != 2 {
				t.Fatalf("%s %s: %d %v", method, path, code, out)
			}
			if len(repl.awaited) == before || repl.awaited[len(repl.awaited)-1] != repl.last {
				t.Fatalf("the call returned without waiting until every node applied its write (awaited %v, last write %d)", repl.awaited[before:], repl.last)
			}
		})
	}
}
