package swift

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/object/objecttest"
)

// Signatures as Swift's container_sync_realms.get_sig computes them; the
// expected values were computed with Python's hmac and hashlib:
//
//	hmac.new(realm_key, b'%s\n%s\n%s\n%s\n%s' % (method, path, ts, nonce, user_key), hashlib.sha1).hexdigest()
func TestSyncSignatureVectors(t *testing.T) {
	for _, v := range []struct{ method, path, ts, nonce, realmKey, userKey, want string }{
		{"PUT", "/object/v1/AUTH_p2/c2/obj", "1700000000.12345", "abc123", "realmkey", "sync_key", "2d85f5f55f40e3aea088c82cc3cb1ff77f47c161"},
		{"DELETE", "/v1/AUTH_p1/dst/a%20b/%C3%A9", "1700000001.00000", "0f0f", "k", "secret", "d0e4ecdf256e4590c6f082a4fd8c8be6c40cab69"},
		{"HEAD", "/v1/AUTH_x/c/o", "0", "n", "k2", "u", "260479808e88193e6640d80fe035527cb4d806e7"},
	} {
		if got := syncSig(v.method, v.path, v.ts, v.nonce, v.realmKey, v.userKey); got != v.want {
			t.Errorf("syncSig(%s %s) = %s, want %s", v.method, v.path, got, v.want)
		}
	}
	// urllib.parse.quote('a b/é!$&\'()*+,;=:@~_.-', safe='/')
	if got, want := pyQuote("a b/é!$&'()*+,;=:@~_.-"), "a%20b/%C3%A9%21%24%26%27%28%29%2A%2B%2C%3B%3D%3A%40~_.-"; got != want {
		t.Errorf("pyQuote = %s, want %s", got, want)
	}
}

func TestParseRealms(t *testing.T) {
	conf := `
[DEFAULT]
mtime_check_interval = 300

# realm one
[realm1]
key = realm1key
key2 = realm1key2
cluster_clustername1 = https://host1/v1/
cluster_Clustername2 = https://host2/v1/

[Realm2]
key: realm2key
; no clusters
`
	rs, err := ParseRealms(strings.NewReader(conf))
	if err != nil {
		t.Fatal(err)
	}
	if got := rs.Names(); len(got) != 2 || got[0] != "REALM1" || got[1] != "REALM2" {
		t.Fatalf("realms %v", got)
	}
	if k, k2 := rs.keys("Realm1"); k != "realm1key" || k2 != "realm1key2" {
		t.Fatalf("keys of realm1: %q %q", k, k2)
	}
	if k, _ := rs.keys("realm2"); k != "realm2key" {
		t.Fatalf("key of realm2: %q", k)
	}
	if err := rs.SetCurrent("//realm1/clustername2"); err != nil {
		t.Fatal(err)
	}
	if err := rs.SetCurrent("//realm1/nope"); err == nil {
		t.Fatal("an undeclared current cluster was accepted")
	}
	// /info: realms with clusters only, names upper-case, current marked;
	// never a key.
	raw, _ := json.Marshal(rs.info())
	want := `{"realms":{"REALM1":{"clusters":{"CLUSTERNAME1":{},"CLUSTERNAME2":{"current":true}}}}}`
	if string(raw) != want {
		t.Fatalf("info %s, want %s", raw, want)
	}
	for _, bad := range []string{
		"[r]\ncluster_a = https://h/v1/\n", // no key
		"[r]\nkey = k\ncluster_a = ftp://h/\n",
		"[r]\nkey = k\njunk\n",
		"[r\nkey = k\n",
		"[r]\nkey = k\n[R]\nkey = k\n",
	} {
		if _, err := ParseRealms(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseRealms accepted %q", bad)
		}
	}
}

// syncEnv serves Swift with one realm whose one cluster is this server.
type syncEnv struct {
	*env
	h *Handler
}

func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	h := &Handler{Auth: principals}
	served := objecttest.Serve(t, 6, 4096, func(svc *object.Service) http.Handler { h.Store = svc; return h })
	h.Realms = NewRealm("realm1", "realmkey", map[string]string{"here": served.Srv.URL + "/v1/"})
	if err := h.Realms.SetCurrent("//realm1/here"); err != nil {
		t.Fatal(err)
	}
	return &syncEnv{env: &env{served}, h: h}
}

// signed is a header set of a sync request signed as the syncer signs it.
func signed(method, path, ts, realmKey, userKey string) []string {
	return []string{"X-Timestamp", ts, syncAuthHeader, "realm1 nonce1 " + syncSig(method, path, ts, "nonce1", realmKey, userKey)}
}

// X-Container-Sync-To is validated against the realms with Swift's
// messages, and a refused request changes nothing; the target and key
// are shown only to those who may set them.
func TestSyncToValidation(t *testing.T) {
	e := newSyncEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	for _, bad := range []struct{ value, msg string }{
		{"//nope/here/AUTH_p1/d", "No realm key for 'nope'"},
		{"//realm1/there/AUTH_p1/d", "No cluster endpoint for 'realm1' 'there'"},
		{"//realm1/here/AUTH_p1", "Invalid X-Container-Sync-To format"},
		{"//realm1/here/AUTH_p1/d/e", "Invalid X-Container-Sync-To format"},
		{"http://127.0.0.1/v1/AUTH_p1/d", "Full URLs are not allowed"},
	} {
		r := e.must(http.StatusBadRequest, "POST", "/v1/AUTH_p1/c", alice, "", "X-Container-Sync-To", bad.value, "X-Container-Sync-Key", "k", "X-Container-Meta-Color", "red")
		if !strings.Contains(r.body, bad.msg) {
			t.Errorf("%s: %q, want %q", bad.value, r.body, bad.msg)
		}
		e.must(http.StatusBadRequest, "PUT", "/v1/AUTH_p1/new", alice, "", "X-Container-Sync-To", bad.value)
	}
	r := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/c", alice, "")
	if r.header.Get("X-Container-Sync-To") != "" || r.header.Get("X-Container-Sync-Key") != "" || r.header.Get("X-Container-Meta-Color") != "" {
		t.Fatalf("a refused request was half-written: %v", r.header)
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/new", alice, "")

	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Container-Sync-To", "//REALM1/Here/AUTH_p2/d", "X-Container-Sync-Key", "secret")
	r = e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/c", alice, "")
	if r.header.Get("X-Container-Sync-To") != "//REALM1/Here/AUTH_p2/d" || r.header.Get("X-Container-Sync-Key") != "secret" {
		t.Fatalf("the owner does not see the sync headers: %v", r.header)
	}
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Container-Read", "p1:rita,.r:*,.rlistings")
	for _, tok := range []string{"reader-tok", ""} {
		r = e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/c", tok, "")
		if r.header.Get("X-Container-Sync-Key") != "" || r.header.Get("X-Container-Sync-To") != "" {
			t.Fatalf("%q sees the sync headers: %v", tok, r.header)
		}
	}
	// Not with object versioning, either way round.
	r = e.must(http.StatusBadRequest, "POST", "/v1/AUTH_p1/c", alice, "", "X-Versions-Enabled", "true")
	if !strings.Contains(r.body, "Cannot enable object versioning") {
		t.Errorf("versioning on a synced container: %q", r.body)
	}
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/v", alice, "", "X-Versions-Enabled", "true")
	r = e.must(http.StatusBadRequest, "POST", "/v1/AUTH_p1/v", alice, "", "X-Container-Sync-To", "//realm1/here/AUTH_p2/d")
	if !strings.Contains(r.body, "Cannot configure container sync") {
		t.Errorf("sync of a versioned container: %q", r.body)
	}
	// Clearing.
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Container-Sync-To", "")
	if r = e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/c", alice, ""); r.header.Get("X-Container-Sync-To") != "" {
		t.Fatalf("cleared sync-to still shown: %v", r.header)
	}
	// /info lists the realm as Swift's middleware does.
	var info struct {
		CS map[string]any `json:"container_sync"`
	}
	json.Unmarshal([]byte(e.must(http.StatusOK, "GET", "/info", "", "").body), &info)
	raw, _ := json.Marshal(info.CS)
	if string(raw) != `{"realms":{"REALM1":{"clusters":{"HERE":{"current":true}}}}}` {
		t.Fatalf("/info container_sync %s", raw)
	}
}

// The receiving side: a request signed with the realm key and the
// destination's sync key is let in without a token and keeps the
// source's timestamp; any other is 401; an older write or delete is 409.
func TestSyncReceive(t *testing.T) {
	e := newSyncEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p2/d", "bob-tok", "", "X-Container-Sync-Key", "secret")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p2/nokey", "bob-tok", "")
	const ts = "1700000000.12340"
	path := "/v1/AUTH_p2/d/a b"
	quoted := "/v1/AUTH_p2/d/a%20b"

	e.must(http.StatusUnauthorized, "PUT", quoted, "", "x", signed("PUT", quoted, ts, "realmkey", "wrong")...)
	e.must(http.StatusUnauthorized, "PUT", quoted, "", "x", signed("PUT", quoted, ts, "otherkey", "secret")...)
	e.must(http.StatusUnauthorized, "PUT", quoted, "", "x", signed("POST", quoted, ts, "realmkey", "secret")...)
	e.must(http.StatusUnauthorized, "PUT", "/v1/AUTH_p2/nokey/a", "", "x", signed("PUT", "/v1/AUTH_p2/nokey/a", ts, "realmkey", "")...)
	r := e.must(http.StatusUnauthorized, "PUT", quoted, "", "x", syncAuthHeader, "realm1 only-two")
	if !strings.HasPrefix(r.header.Get("Www-Authenticate"), "SwiftContainerSync") {
		t.Errorf("401 without SwiftContainerSync challenge: %v", r.header)
	}
	// The signature is over the X-Timestamp too.
	e.must(http.StatusUnauthorized, "PUT", quoted, "", "x", append(signed("PUT", quoted, ts, "realmkey", "secret"), "X-Timestamp", "1700000001.00000")...)
	e.must(http.StatusNotFound, "HEAD", quoted, "bob-tok", "")

	e.must(http.StatusCreated, "PUT", quoted, "", "synced body", append(signed("PUT", quoted, ts, "realmkey", "secret"), "X-Object-Meta-Color", "blue")...)
	r = e.must(http.StatusOK, "GET", path, "bob-tok", "")
	if r.body != "synced body" || r.header.Get("X-Timestamp") != ts || r.header.Get("X-Object-Meta-Color") != "blue" {
		t.Fatalf("synced object: %q %v", r.body, r.header)
	}
	// The signed HEAD the syncer makes.
	if r = e.must(http.StatusOK, "HEAD", quoted, "", "", signed("HEAD", quoted, ts, "realmkey", "secret")...); r.header.Get("X-Timestamp") != ts {
		t.Fatalf("signed HEAD: %v", r.header)
	}
	// As new or older: refused, nothing changed.
	e.must(http.StatusConflict, "PUT", quoted, "", "stale", signed("PUT", quoted, ts, "realmkey", "secret")...)
	e.must(http.StatusConflict, "PUT", quoted, "", "stale", signed("PUT", quoted, "1699999999.00000", "realmkey", "secret")...)
	e.must(http.StatusConflict, "DELETE", quoted, "", "", signed("DELETE", quoted, ts, "realmkey", "secret")...)
	if r = e.must(http.StatusOK, "GET", path, "bob-tok", ""); r.body != "synced body" {
		t.Fatalf("after refused writes: %q", r.body)
	}
	e.must(http.StatusNoContent, "DELETE", quoted, "", "", signed("DELETE", quoted, "1700000000.12350", "realmkey", "secret")...)
	e.must(http.StatusNotFound, "HEAD", quoted, "bob-tok", "")
	e.must(http.StatusBadRequest, "PUT", quoted, "", "x", signed("PUT", quoted, "soon", "realmkey", "secret")...)
}

// countingHandler counts the writes that reach the destination and fails
// those of names in fail with 503.
type countingHandler struct {
	next http.Handler
	mu   sync.Mutex
	puts map[string]int
	fail map[string]bool
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(syncAuthHeader) != "" && r.Method != http.MethodHead {
		name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		c.mu.Lock()
		c.puts[r.Method+" "+name]++
		failing := c.fail[name]
		c.mu.Unlock()
		if failing {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
	}
	c.next.ServeHTTP(w, r)
}

func (c *countingHandler) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts[key]
}

// The syncer sends a container's objects (those from before sync was set
// too) and deletes to the destination, each once; a change it could not
// send stays queued in the state, so a new syncer (rackd restarted, or
// another node leading) sends it, and sends nothing already taken.
func TestSyncerResumesAfterRestart(t *testing.T) {
	h := &Handler{Auth: principals}
	counter := &countingHandler{next: h, puts: map[string]int{}, fail: map[string]bool{}}
	served := objecttest.Serve(t, 6, 4096, func(svc *object.Service) http.Handler { h.Store = svc; return counter })
	h.Realms = NewRealm("realm1", "realmkey", map[string]string{"here": served.Srv.URL + "/v1/"})
	e := &env{served}
	ctx := context.Background()

	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p2/dst", "bob-tok", "", "X-Container-Sync-Key", "secret")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src/before", alice, "from before sync")
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/src", alice, "", "X-Container-Sync-To", "//realm1/here/AUTH_p2/dst", "X-Container-Sync-Key", "secret")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src/a", alice, "aaa", "X-Object-Meta-K", "v", "Content-Type", "text/plain")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src/b", alice, "bbb")
	counter.fail["b"] = true

	first := &Syncer{Store: h.Store, Realms: h.Realms, RetryAfter: time.Hour}
	first.Pass(ctx)
	for name, body := range map[string]string{"before": "from before sync", "a": "aaa"} {
		r := e.must(http.StatusOK, "GET", "/v1/AUTH_p2/dst/"+name, "bob-tok", "")
		src := e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/src/"+name, alice, "")
		if r.body != body || r.header.Get("X-Timestamp") != src.header.Get("X-Timestamp") || r.header.Get("Etag") != src.header.Get("Etag") ||
			r.header.Get("Content-Type") != src.header.Get("Content-Type") || r.header.Get("X-Object-Meta-K") != src.header.Get("X-Object-Meta-K") {
			t.Fatalf("synced %s: %q %v, source %v", name, r.body, r.header, src.header)
		}
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p2/dst/b", "bob-tok", "")
	if n := counter.count("PUT b"); n != 1 {
		t.Fatalf("b tried %d times", n)
	}
	// The failed change waits (RetryAfter), so the same syncer does not
	// hammer the destination.
	first.Pass(ctx)
	if n := counter.count("PUT b"); n != 1 {
		t.Fatalf("b retried before RetryAfter: %d", n)
	}

	// "Restart": a new syncer with nothing in memory; the destination is
	// back. It sends b, and neither a nor before again.
	counter.fail["b"] = false
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/src/a", alice, "")
	second := &Syncer{Store: h.Store, Realms: h.Realms}
	second.Pass(ctx)
	if r := e.must(http.StatusOK, "GET", "/v1/AUTH_p2/dst/b", "bob-tok", ""); r.body != "bbb" {
		t.Fatalf("b after the restart: %q", r.body)
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p2/dst/a", "bob-tok", "")
	if counter.count("PUT a") != 1 || counter.count("PUT before") != 1 || counter.count("PUT b") != 2 || counter.count("DELETE a") != 1 {
		t.Fatalf("requests sent: %v", counter.puts)
	}
	// Nothing is left queued; another pass sends nothing.
	chs, _, _ := h.Store.SyncChanges(ctx, "p1/src", 0, 100)
	if len(chs) != 0 {
		t.Fatalf("still queued: %+v", chs)
	}
	second.Pass(ctx)
	if counter.count("PUT b") != 2 || counter.count("DELETE a") != 1 {
		t.Fatalf("a pass with nothing queued sent: %v", counter.puts)
	}
}

// Changes that keep failing never hold back newer ones, however many
// there are (here one more than a pass takes).
func TestSyncerFailuresDoNotHoldBackNewChanges(t *testing.T) {
	h := &Handler{Auth: principals}
	counter := &countingHandler{next: h, puts: map[string]int{}, fail: map[string]bool{"x": true}}
	served := objecttest.Serve(t, 6, 4096, func(svc *object.Service) http.Handler { h.Store = svc; return counter })
	h.Realms = NewRealm("realm1", "realmkey", map[string]string{"here": served.Srv.URL + "/v1/"})
	e := &env{served}
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/dst", alice, "", "X-Container-Sync-Key", "k")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src", alice, "", "X-Container-Sync-To", "//realm1/here/AUTH_p1/dst", "X-Container-Sync-Key", "k")
	sy := &Syncer{Store: h.Store, Realms: h.Realms, Batch: 1, RetryAfter: time.Hour}
	sy.Pass(context.Background()) // the (empty) full pass
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src/x", alice, "x")
	sy.Pass(context.Background())
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src/y", alice, "y")
	sy.Pass(context.Background())
	if r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/dst/y", alice, ""); r.body != "y" {
		t.Fatalf("y: %q", r.body)
	}
	if counter.count("PUT x") != 1 {
		t.Fatalf("x tried %d times", counter.count("PUT x"))
	}
}

// Two clouds in one realm: a container of one syncs to a container of
// the other, each verifying with its own copy of the realm.
func TestSyncBetweenClusters(t *testing.T) {
	ha, hb := &Handler{Auth: principals}, &Handler{Auth: principals}
	a := objecttest.Serve(t, 6, 4096, func(svc *object.Service) http.Handler { ha.Store = svc; return ha })
	b := objecttest.Serve(t, 6, 4096, func(svc *object.Service) http.Handler { hb.Store = svc; return hb })
	clusters := map[string]string{"one": a.Srv.URL + "/v1/", "two": b.Srv.URL + "/v1/"}
	ha.Realms, hb.Realms = NewRealm("realm1", "shared", clusters), NewRealm("realm1", "shared", clusters)
	ea, eb := &env{a}, &env{b}
	eb.must(http.StatusCreated, "PUT", "/v1/AUTH_p2/dst", "bob-tok", "", "X-Container-Sync-Key", "k")
	ea.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src", alice, "", "X-Container-Sync-To", "//realm1/two/AUTH_p2/dst", "X-Container-Sync-Key", "k")
	ea.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src/o", alice, "across")
	(&Syncer{Store: ha.Store, Realms: ha.Realms}).Pass(context.Background())
	if r := eb.must(http.StatusOK, "GET", "/v1/AUTH_p2/dst/o", "bob-tok", ""); r.body != "across" {
		t.Fatalf("o in the other cloud: %q", r.body)
	}
	ea.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p2/dst", "bob-tok", "")
	// A cloud whose realm key differs refuses: the change stays queued.
	hb.Realms = NewRealm("realm1", "not-shared", clusters)
	ea.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/src/p", alice, "refused")
	(&Syncer{Store: ha.Store, Realms: ha.Realms}).Pass(context.Background())
	eb.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p2/dst/p", "bob-tok", "")
	if chs, _, _ := ha.Store.SyncChanges(context.Background(), "p1/src", 0, 10); len(chs) != 1 || chs[0].Name != "p" {
		t.Fatalf("queued after the refusal: %+v", chs)
	}
}
