package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// countingNode is a laggingNode that counts its catch-ups (Read) and
// can hold them until released.
type countingNode struct {
	*laggingNode
	reads atomic.Int64
	hold  chan struct{} // nil: reads go through
}

func (c *countingNode) Read(ctx context.Context) (*memdb.Txn, error) {
	c.reads.Add(1)
	if c.hold != nil {
		<-c.hold
	}
	return c.laggingNode.Read(ctx)
}

// An EC2 credential acknowledged through one node signs S3 requests on
// another right away, even before that node has applied it (within its
// state lease); and a grant made a moment ago on the credential's
// project counts there too.
func TestEC2CredentialThroughOneNodeHoldsOnAnother(t *testing.T) {
	a, b, follower := laggingPair(t)
	pid, uid, tok := a.tenant("s3", "erin", "member")

	follower.lag()
	code, _, body := a.call("POST", "/users/"+uid+"/credentials/OS-EC2", tok, map[string]any{"tenant_id": pid})
	if code != 201 {
		t.Fatalf("credential: %d %v", code, body)
	}
	cred := body["credential"].(map[string]any)
	access := cred["access"].(string)
	p, secret, err := b.svc.EC2Principal(context.Background(), access)
	if err != nil || p.ProjectID != pid || p.UserID != uid || secret != cred["secret"] {
		t.Fatalf("EC2Principal through the lagging node right after the credential was made: %+v %v", p, err)
	}

	// A credential on a project where the user's role was granted a
	// moment ago, through the other node.
	pid2 := a.mk("/projects", "project", map[string]any{"name": "s3-2"})
	code, _, body = a.call("POST", "/users/"+uid+"/credentials/OS-EC2", a.admin, map[string]any{"tenant_id": pid2})
	if code != 201 {
		t.Fatalf("credential on a project without a role: %d %v", code, body)
	}
	access2 := body["credential"].(map[string]any)["access"].(string)
	follower.lag()
	if code, _, _ := a.call("PUT", "/projects/"+pid2+"/users/"+uid+"/roles/"+a.roleID("member"), a.admin, nil); code != 204 {
		t.Fatalf("grant: %d", code)
	}
	if p, _, err := b.svc.EC2Principal(context.Background(), access2); err != nil || p.ProjectID != pid2 {
		t.Fatalf("EC2Principal through the lagging node right after the grant: %+v %v", p, err)
	}

	// Keystone's ec2tokens on the lagging node, with a key made a moment
	// ago: the key is found (the signature, made up here, is then
	// refused as a bad one, not as an unknown key).
	follower.lag()
	code, _, body = a.call("POST", "/users/"+uid+"/credentials/OS-EC2", tok, map[string]any{"tenant_id": pid})
	if code != 201 {
		t.Fatalf("credential: %d %v", code, body)
	}
	access3 := body["credential"].(map[string]any)["access"].(string)
	_, _, body = b.call("POST", "/ec2tokens", "", map[string]any{"credentials": map[string]any{
		"access": access3, "host": "h", "verb": "GET", "path": "/", "signature": "bad",
		"params": map[string]any{"SignatureVersion": "2", "SignatureMethod": "HmacSHA256", "Timestamp": b.now.Format("2006-01-02T15:04:05Z")}}})
	if msg := fmt.Sprint(body); !strings.Contains(msg, "Invalid EC2 signature") {
		t.Errorf("ec2tokens through the lagging node with a new key: %v, want the signature refused", body)
	}

	// Keystone's ec2tokens on the lagging node, well signed, with a key
	// whose user was granted a role on its project a moment ago through
	// the other node: a token, not a 401.
	pid3 := a.mk("/projects", "project", map[string]any{"name": "s3-3"})
	code, _, body = a.call("POST", "/users/"+uid+"/credentials/OS-EC2", a.admin, map[string]any{"tenant_id": pid3})
	if code != 201 {
		t.Fatalf("credential on a project without a role: %d %v", code, body)
	}
	cred4 := body["credential"].(map[string]any)
	follower.lag()
	if code, _, _ := a.call("PUT", "/projects/"+pid3+"/users/"+uid+"/roles/"+a.roleID("member"), a.admin, nil); code != 204 {
		t.Fatalf("grant: %d", code)
	}
	c4 := &ec2Creds{Access: cred4["access"].(string), Host: "h", Verb: "GET", Path: "/",
		Params: map[string]string{"SignatureVersion": "2", "SignatureMethod": "HmacSHA256", "Timestamp": b.now.Format("2006-01-02T15:04:05Z")}}
	sig, _ := ec2Signature(c4, cred4["secret"].(string))
	params := map[string]any{}
	for k, v := range c4.Params {
		params[k] = v
	}
	if code, _, body := b.call("POST", "/ec2tokens", "", map[string]any{"credentials": map[string]any{
		"access": c4.Access, "host": c4.Host, "verb": c4.Verb, "path": c4.Path, "signature": sig, "params": params}}); code != 200 {
		t.Errorf("ec2tokens through the lagging node right after the grant: %d %v, want a token", code, body)
	}

	// A key deleted (awaited everywhere) is refused on the other node.
	if code, _, _ := a.call("DELETE", "/users/"+uid+"/credentials/OS-EC2/"+access, tok, nil); code != 204 {
		t.Fatalf("delete credential: %d", code)
	}
	if _, _, err := b.svc.EC2Principal(context.Background(), access); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted key through the other node: %v", err)
	}
}

// Requests with unknown access keys, however many at once, share their
// catch-ups with the leader: at most one in flight and one queued.
func TestEC2UnknownKeysShareCatchUps(t *testing.T) {
	local, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	follower := &countingNode{laggingNode: &laggingNode{local: local}}
	newFixtureOn(t, local, leaderNode{local, follower.laggingNode})
	b := newFixtureOn(t, local, follower)
	follower.hold = make(chan struct{})
	follower.reads.Store(0)

	const lookups = 200
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range lookups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := b.svc.EC2Principal(context.Background(), fmt.Sprintf("AKFORGED%05d", i)); errors.Is(err, store.ErrNotFound) {
				refused.Add(1)
			}
		}()
	}
	// Every lookup is refused locally and waits on a catch-up, the
	// first of which is held.
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
		b.svc.ec2CatchUps.mu.Lock()
		queued := b.svc.ec2CatchUps.next != nil
		b.svc.ec2CatchUps.mu.Unlock()
		if queued && follower.reads.Load() == 1 || time.Now().After(end) {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // the stragglers join the queue
	close(follower.hold)
	wg.Wait()
	if n := refused.Load(); n != lookups {
		t.Fatalf("%d of %d unknown keys refused", n, lookups)
	}
	if n := follower.reads.Load(); n > 2 {
		t.Fatalf("%d unknown keys at once made %d catch-ups with the leader, want at most 2", lookups, n)
	}
	// A known key costs none.
	pid, uid, tok := b.tenant("s3", "erin", "member")
	_, _, body := b.call("POST", "/users/"+uid+"/credentials/OS-EC2", tok, map[string]any{"tenant_id": pid})
	access := body["credential"].(map[string]any)["access"].(string)
	before := follower.reads.Load()
	if _, _, err := b.svc.EC2Principal(context.Background(), access); err != nil {
		t.Fatal(err)
	}
	if n := follower.reads.Load() - before; n != 0 {
		t.Fatalf("a known key made %d catch-ups", n)
	}
}
