package identity

import (
	"context"
	"sync"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// laggingNode is a follower's view of a Local whose leader (another
// service on the same Local) wrote what this node has not applied yet:
// its local reads (LeasedRead) see the state as it was when lag was
// called, until a consistent Read catches it up, as cluster.Node's does.
type laggingNode struct {
	local *store.Local
	mu    sync.Mutex
	stale *memdb.Txn // nil: caught up
}

func (l *laggingNode) lag() {
	l.mu.Lock()
	l.stale = l.local.Local()
	l.mu.Unlock()
}

func (l *laggingNode) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	return l.local.Propose(ctx, typ, body)
}

func (l *laggingNode) Read(ctx context.Context) (*memdb.Txn, error) {
	l.mu.Lock()
	l.stale = nil
	l.mu.Unlock()
	return l.local.Read(ctx)
}

func (l *laggingNode) LeasedRead(context.Context) (*memdb.Txn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stale != nil {
		return l.stale, nil
	}
	return l.local.Local(), nil
}

// AwaitEverywhere: every node confirms it applied the write.
func (l *laggingNode) AwaitEverywhere(context.Context, uint64) error {
	l.mu.Lock()
	l.stale = nil
	l.mu.Unlock()
	return nil
}

// leaderNode is the node the writes go through: a revocation it awaits
// everywhere is applied on the lagging node too.
type leaderNode struct {
	*store.Local
	follower *laggingNode
}

func (l leaderNode) LeasedRead(context.Context) (*memdb.Txn, error) { return l.Local.Local(), nil }

func (l leaderNode) AwaitEverywhere(ctx context.Context, index uint64) error {
	return l.follower.AwaitEverywhere(ctx, index)
}

// laggingPair is two nodes' fixtures over one state: a, the leader's,
// whose writes b, the follower's, applies only once caught up (follower
// lags on request).
func laggingPair(t *testing.T) (a, b *fixture, follower *laggingNode) {
	t.Helper()
	local, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	follower = &laggingNode{local: local}
	return newFixtureOn(t, local, leaderNode{local, follower}), newFixtureOn(t, local, follower), follower
}

// A user, project and grant acknowledged through one node are seen by
// the next token request and token check on another node, even if that
// node has not applied them yet (within its state lease): the client was
// told they exist.
func TestGrantThroughOneNodeHoldsOnAnother(t *testing.T) {
	a, b, follower := laggingPair(t)

	// A token issued through a with a grant b has not applied: b's check
	// of it (as a subject, and as a request's own token) accepts it.
	follower.lag()
	pid, _, tok := a.tenant("p-new", "u-new", "member")
	if code, _, body := b.call("GET", "/auth/tokens", b.admin, nil, "X-Subject-Token", tok); code != 200 {
		t.Errorf("check through the lagging node of a token issued with a new grant: %d %v", code, body)
	}
	follower.lag()
	pid2 := a.mk("/projects", "project", map[string]any{"name": "p-new2"})
	_, _, users := a.call("GET", "/users?name=u-new", a.admin, nil)
	uid := users["users"].([]any)[0].(map[string]any)["id"].(string)
	if code, _, _ := a.call("PUT", "/projects/"+pid2+"/users/"+uid+"/roles/"+a.roleID("member"), a.admin, nil); code != 204 {
		t.Fatalf("grant: %d", code)
	}
	tok2 := a.login("u-new", "u-new-pw", "p-new2")
	if code, _, body := b.call("GET", "/auth/projects", tok2, nil); code != 200 {
		t.Errorf("request through the lagging node with a token issued before it applied the grant: %d %v", code, body)
	}

	// A token asked of b right after a granted the role.
	follower.lag()
	pid3 := a.mk("/projects", "project", map[string]any{"name": "p-new3"})
	if code, _, _ := a.call("PUT", "/projects/"+pid3+"/users/"+uid+"/roles/"+a.roleID("member"), a.admin, nil); code != 204 {
		t.Fatalf("grant: %d", code)
	}
	if code, _, body := b.call("POST", "/auth/tokens", "", passwordAuth("u-new", "u-new-pw", "p-new3")); code != 201 {
		t.Errorf("token through the lagging node right after the grant: %d %v", code, body)
	}

	// A token that is refused stays refused: after the role's removal
	// (awaited everywhere), b refuses the token of the removed grant.
	if code, _, _ := a.call("DELETE", "/projects/"+pid+"/users/"+uid+"/roles/"+a.roleID("member"), a.admin, nil); code != 204 {
		t.Fatalf("role removal: %d", code)
	}
	if code, _, _ := b.call("GET", "/auth/tokens", b.admin, nil, "X-Subject-Token", tok); code != 404 {
		t.Errorf("token of a removed grant checked through the other node: %d, want 404", code)
	}
}
