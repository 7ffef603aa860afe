package volume

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

const (
	admin   = "admin-token"
	alice   = "alice-token" // member of projA
	bob     = "bob-token"   // member of projB
	readerT = "reader-token"
	projA   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	projB   = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// fakeBlocks is the block store as the service sees it: sizes and
// policies by id, and an error to fail the next calls with.
type fakeBlocks struct {
	mu       sync.Mutex
	size     map[string]int64
	policy   map[string]volstate.Policy
	parent   map[string]string
	fail     error
	deleted  []string
	snapshot map[string]string
}

func newFakeBlocks() *fakeBlocks {
	return &fakeBlocks{size: map[string]int64{}, policy: map[string]volstate.Policy{}, parent: map[string]string{}, snapshot: map[string]string{}}
}

func (b *fakeBlocks) Create(_ context.Context, id string, size int64, p volstate.Policy) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	if _, ok := b.size[id]; ok {
		return fmt.Errorf("create %s: exists", id)
	}
	b.size[id], b.policy[id] = size, p
	return nil
}

func (b *fakeBlocks) Clone(_ context.Context, id, from string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	src, ok := b.size[from]
	if !ok {
		return fmt.Errorf("clone %s: no %s", id, from)
	}
	b.size[id], b.parent[id] = src, from
	return nil
}

func (b *fakeBlocks) Snapshot(_ context.Context, id, volume string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	src, ok := b.size[volume]
	if !ok {
		return fmt.Errorf("snapshot %s: no %s", id, volume)
	}
	b.size[id], b.snapshot[id] = src, volume
	return nil
}

func (b *fakeBlocks) Resize(_ context.Context, id string, size int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	cur, ok := b.size[id]
	if !ok {
		return fmt.Errorf("resize %s: no such volume", id)
	}
	if size < cur {
		return fmt.Errorf("resize %s: shrink from %d to %d", id, cur, size)
	}
	b.size[id] = size
	return nil
}

func (b *fakeBlocks) Delete(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fail != nil {
		return b.fail
	}
	delete(b.size, id)
	b.deleted = append(b.deleted, id)
	return nil
}

func (b *fakeBlocks) Exists(_ context.Context, id string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.size[id]
	return ok, b.fail
}

func (b *fakeBlocks) sizeOf(id string) (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.size[id]
	return n, ok
}

func (b *fakeBlocks) setFail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = err
}

type fixture struct {
	t      *testing.T
	local  *store.Local
	blocks *fakeBlocks
	data   *fakeData
	svc    *Service
	url    string
}

func newFixture(t *testing.T, opts ...func(*Config)) *fixture {
	t.Helper()
	local, err := store.NewLocal(Schema(), eventstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	blocks := newFakeBlocks()
	auth := apitest.Tokens{
		admin:   {UserID: "admin", ProjectID: projA, Roles: []string{"admin"}},
		alice:   {UserID: "alice", ProjectID: projA, Roles: []string{"member"}},
		bob:     {UserID: "bob", ProjectID: projB, Roles: []string{"member"}},
		readerT: {UserID: "rita", ProjectID: projA, Roles: []string{"reader"}},
	}
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	data := newFakeData(blocks)
	cfg := Config{Repl: local, Auth: auth, Blocks: blocks, Images: data, Data: data, Backups: data, Uploads: data, Node: "n1", Now: func() time.Time { return now }}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { svc.Run(ctx); close(ran) }()
	t.Cleanup(func() { cancel(); <-ran })
	srv := apitest.Serve(t, "/volume", svc.Handler())
	return &fixture{t: t, local: local, blocks: blocks, data: data, svc: svc, url: srv.URL + "/volume"}
}

// call makes a request as token in token's project.
func (f *fixture) call(method, path, token string, body any, header ...string) apitest.Response {
	f.t.Helper()
	proj := projA
	if token == bob {
		proj = projB
	}
	if strings.HasPrefix(path, "/") {
		return apitest.Call(f.t, method, f.url+path, token, body, header...)
	}
	return apitest.Call(f.t, method, f.url+"/v3/"+proj+"/"+path, token, body, header...)
}

func (f *fixture) expect(code int, method, path, token string, body any) apitest.Response {
	f.t.Helper()
	resp := f.call(method, path, token, body)
	if resp.Code != code {
		f.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.Code, resp.Raw, code)
	}
	return resp
}

func (f *fixture) createVolume(token string, attrs map[string]any) map[string]any {
	f.t.Helper()
	return f.expect(http.StatusAccepted, "POST", "volumes", token, map[string]any{"volume": attrs}).Body["volume"].(map[string]any)
}

func (f *fixture) showVolume(token, id string) map[string]any {
	f.t.Helper()
	return f.expect(http.StatusOK, "GET", "volumes/"+id, token, nil).Body["volume"].(map[string]any)
}

// fault is the one fault of a Cinder error body: its key and message.
func fault(t *testing.T, r apitest.Response) (string, string) {
	t.Helper()
	for k, v := range r.Body {
		m, _ := v.(map[string]any)
		msg, _ := m["message"].(string)
		return k, msg
	}
	t.Fatalf("no fault in %s", r.Raw)
	return "", ""
}

func TestVersionDiscovery(t *testing.T) {
	f := newFixture(t)
	for path, code := range map[string]int{"/": http.StatusMultipleChoices, "/v3/": http.StatusOK} {
		r := f.expect(code, "GET", path, "", nil)
		vs := r.Body["versions"].([]any)
		v := vs[0].(map[string]any)
		if v["id"] != "v3.0" || v["min_version"] != "3.0" || v["version"] != versionText(maxMinor) {
			t.Errorf("GET %s: %v", path, v)
		}
		self := v["links"].([]any)[1].(map[string]any)["href"].(string)
		if !strings.HasSuffix(self, "/volume/v3/") {
			t.Errorf("GET %s: self link %s", path, self)
		}
		if got := r.Header.Get("OpenStack-API-Version"); got != "volume 3.0" {
			t.Errorf("GET %s: version header %q", path, got)
		}
	}
}

func TestMicroversionsOutsideTheRangeAre406(t *testing.T) {
	f := newFixture(t)
	tests := map[string]struct {
		header string
		code   int
	}{
		"none":           {"", http.StatusOK},
		"3.0":            {"volume 3.0", http.StatusOK},
		"the newest":     {"volume " + versionText(maxMinor), http.StatusOK},
		"latest":         {"volume latest", http.StatusOK},
		"other services": {"compute 2.90, volume 3.0", http.StatusOK},
		"too new":        {"volume " + versionText(maxMinor+1), http.StatusNotAcceptable},
		"v2":             {"volume 2.0", http.StatusNotAcceptable},
		"garbage":        {"volume three", http.StatusBadRequest},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var h []string
			if tc.header != "" {
				h = []string{"OpenStack-API-Version", tc.header}
			}
			r := f.call("GET", "volumes", alice, nil, h...)
			if r.Code != tc.code {
				t.Fatalf("%d %s, want %d", r.Code, r.Raw, tc.code)
			}
		})
	}
}

// cinderclient learns the range at the root, asking with its own highest
// version: the root ignores the header (Cinder checks it under /v3 only).
func TestRootDiscoveryIgnoresTheVersionHeader(t *testing.T) {
	f := newFixture(t)
	r := f.call("GET", "/", alice, nil, "OpenStack-API-Version", "volume 3.99")
	if r.Code != http.StatusMultipleChoices || !strings.Contains(string(r.Raw), `"version":"`+versionText(maxMinor)+`"`) {
		t.Fatalf("root discovery with volume 3.99: %d %s", r.Code, r.Raw)
	}
	if r := f.call("GET", "/v3/", alice, nil, "OpenStack-API-Version", "volume 3.99"); r.Code != http.StatusNotAcceptable {
		t.Fatalf("/v3/ with volume 3.99: %d %s", r.Code, r.Raw)
	}
}

func TestVolumeLifecycle(t *testing.T) {
	f := newFixture(t)
	v := f.createVolume(alice, map[string]any{"size": 2, "name": "v1", "description": "d", "metadata": map[string]any{"k": "v"}})
	id := v["id"].(string)
	if v["status"] != "available" || v["size"] != float64(2) || v["volume_type"] != volstate.DefaultTypeName || v["bootable"] != "false" {
		t.Fatalf("created %v", v)
	}
	if _, ok := v["os-vol-tenant-attr:tenant_id"]; ok {
		t.Fatalf("create answers the show-only extension attributes: %v", v)
	}
	if n, ok := f.blocks.sizeOf(id); !ok || n != 2*volstate.GiB {
		t.Fatalf("blocks of %s: %d %v", id, n, ok)
	}
	if got := f.showVolume(alice, id); got["name"] != "v1" || got["metadata"].(map[string]any)["k"] != "v" || got["os-vol-tenant-attr:tenant_id"] != projA {
		t.Fatalf("show %v", got)
	}

	list := f.expect(http.StatusOK, "GET", "volumes", alice, nil).Body["volumes"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["name"] != "v1" || list[0].(map[string]any)["status"] != nil {
		t.Fatalf("summary list %v", list)
	}
	if got := f.expect(http.StatusOK, "GET", "volumes/detail?name=v1", alice, nil).Body["volumes"].([]any); len(got) != 1 {
		t.Fatalf("filter by name: %v", got)
	}
	if got := f.expect(http.StatusOK, "GET", "volumes/detail?sort_key=display_name&sort_dir=asc", alice, nil).Body["volumes"].([]any); len(got) != 1 {
		t.Fatalf("sorted by display_name: %v", got)
	}
	if got := f.expect(http.StatusOK, "GET", "volumes/detail?sort=name:asc,size", alice, nil).Body["volumes"].([]any); len(got) != 1 {
		t.Fatalf("sorted by sort=: %v", got)
	}
	if got := f.expect(http.StatusOK, "GET", "volumes/detail?name=other", alice, nil).Body["volumes"].([]any); len(got) != 0 {
		t.Fatalf("filter by another name: %v", got)
	}
	if got := f.expect(http.StatusOK, "GET", "volumes/detail?metadata=%7B%27k%27%3A+%27v%27%7D", alice, nil).Body["volumes"].([]any); len(got) != 1 {
		t.Fatalf("filter by metadata: %v", got)
	}

	up := f.expect(http.StatusOK, "PUT", "volumes/"+id, alice, map[string]any{"volume": map[string]any{"name": "renamed"}}).Body["volume"].(map[string]any)
	if up["name"] != "renamed" || up["description"] != "d" {
		t.Fatalf("update %v", up)
	}

	f.expect(http.StatusAccepted, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-extend": map[string]any{"new_size": 5}})
	if got := f.showVolume(alice, id); got["size"] != float64(5) || got["status"] != "available" {
		t.Fatalf("after extend: %v", got)
	}
	if n, _ := f.blocks.sizeOf(id); n != 5*volstate.GiB {
		t.Fatalf("blocks after extend: %d", n)
	}
	for _, bad := range []map[string]any{{}, {"new_size": nil}, {"new_size": "big"}, {"new_size": 0}} {
		r := f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-extend": bad})
		if _, msg := fault(t, r); !strings.Contains(msg, "new_size") {
			t.Fatalf("os-extend %v: %s", bad, msg)
		}
	}
	r := f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-extend": map[string]any{"new_size": 3}})
	if k, msg := fault(t, r); k != "badRequest" || !strings.Contains(msg, "greater than current size") {
		t.Fatalf("shrink: %s %s", k, msg)
	}

	f.expect(http.StatusOK, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-set_bootable": map[string]any{"bootable": true}})
	if got := f.showVolume(alice, id); got["bootable"] != "true" {
		t.Fatalf("bootable: %v", got["bootable"])
	}

	f.expect(http.StatusAccepted, "DELETE", "volumes/"+id, alice, nil)
	f.expect(http.StatusNotFound, "GET", "volumes/"+id, alice, nil)
	if _, ok := f.blocks.sizeOf(id); ok {
		t.Fatal("blocks kept after delete")
	}
}

func TestVolumeCreateRefusesBadInputNamingTheField(t *testing.T) {
	f := newFixture(t)
	tests := map[string]struct {
		body  map[string]any
		code  int
		field string
	}{
		"no size":        {map[string]any{"name": "x"}, http.StatusBadRequest, "size"},
		"size zero":      {map[string]any{"size": 0}, http.StatusBadRequest, "size"},
		"size text":      {map[string]any{"size": "big"}, http.StatusBadRequest, "size"},
		"name not text":  {map[string]any{"size": 1, "name": 5}, http.StatusBadRequest, "name"},
		"multiattach":    {map[string]any{"size": 1, "multiattach": true}, http.StatusBadRequest, "multiattach"},
		"bad metadata":   {map[string]any{"size": 1, "metadata": map[string]any{"k": 1}}, http.StatusBadRequest, "metadata.k"},
		"other zone":     {map[string]any{"size": 1, "availability_zone": "az9"}, http.StatusBadRequest, "availability_zone"},
		"unknown type":   {map[string]any{"size": 1, "volume_type": "gold"}, http.StatusNotFound, ""},
		"from a backup":  {map[string]any{"size": 1, "backup_id": api.NewUUID()}, http.StatusBadRequest, "backup_id"},
		"unknown image":  {map[string]any{"size": 1, "imageRef": api.NewUUID()}, http.StatusNotFound, ""},
		"two sources":    {map[string]any{"size": 1, "snapshot_id": "a", "source_volid": "b"}, http.StatusBadRequest, ""},
		"missing source": {map[string]any{"snapshot_id": api.NewUUID()}, http.StatusNotFound, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := f.call("POST", "volumes", alice, map[string]any{"volume": tc.body})
			if r.Code != tc.code {
				t.Fatalf("%d %s, want %d", r.Code, r.Raw, tc.code)
			}
			if _, msg := fault(t, r); tc.field != "" && !strings.Contains(msg, tc.field) {
				t.Fatalf("message %q does not name %s", msg, tc.field)
			}
		})
	}
	if got := f.expect(http.StatusOK, "GET", "volumes", alice, nil).Body["volumes"].([]any); len(got) != 0 {
		t.Fatalf("refused creates left volumes: %v", got)
	}
}

func TestProjectsSeeOnlyTheirVolumes(t *testing.T) {
	f := newFixture(t)
	id := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusNotFound, "GET", "volumes/"+id, bob, nil)
	f.expect(http.StatusNotFound, "DELETE", "volumes/"+id, bob, nil)
	f.expect(http.StatusNotFound, "POST", "volumes/"+id+"/action", bob, map[string]any{"os-extend": map[string]any{"new_size": 2}})
	if got := f.expect(http.StatusOK, "GET", "volumes/detail", bob, nil).Body["volumes"].([]any); len(got) != 0 {
		t.Fatalf("bob lists %v", got)
	}
	// The project in the URL must be the token's.
	r := apitest.Call(t, "GET", f.url+"/v3/"+projA+"/volumes", bob, nil)
	if r.Code != http.StatusForbidden {
		t.Fatalf("bob in projA's URL: %d %s", r.Code, r.Raw)
	}
	// A reader reads but does not write.
	f.expect(http.StatusOK, "GET", "volumes/"+id, readerT, nil)
	f.expect(http.StatusForbidden, "POST", "volumes", readerT, map[string]any{"volume": map[string]any{"size": 1}})
	// An admin sees every project's with all_tenants.
	r = apitest.Call(t, "GET", f.url+"/v3/"+projB+"/volumes/detail?all_tenants=1", admin, nil)
	if got := r.Body["volumes"].([]any); r.Code != http.StatusOK || len(got) != 1 {
		t.Fatalf("admin all_tenants: %d %s", r.Code, r.Raw)
	}
}

func TestSnapshotsAndClones(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1, "name": "src"})["id"].(string)
	snap := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol, "name": "s1"}}).Body["snapshot"].(map[string]any)
	sid := snap["id"].(string)
	if snap["status"] != "available" || snap["size"] != float64(1) || snap["volume_id"] != vol {
		t.Fatalf("snapshot %v", snap)
	}
	if got := f.expect(http.StatusOK, "GET", "snapshots/detail", alice, nil).Body["snapshots"].([]any); len(got) != 1 {
		t.Fatalf("snapshots %v", got)
	}
	// A volume with snapshots is not deleted.
	r := f.expect(http.StatusBadRequest, "DELETE", "volumes/"+vol, alice, nil)
	if _, msg := fault(t, r); !strings.Contains(msg, "snapshots") {
		t.Fatalf("delete with snapshots: %s", msg)
	}

	fromSnap := f.createVolume(alice, map[string]any{"snapshot_id": sid, "size": 3})
	if fromSnap["snapshot_id"] != sid || fromSnap["size"] != float64(3) || fromSnap["status"] != "available" {
		t.Fatalf("from snapshot %v", fromSnap)
	}
	if n, _ := f.blocks.sizeOf(fromSnap["id"].(string)); n != 3*volstate.GiB || f.blocks.parent[fromSnap["id"].(string)] != sid {
		t.Fatalf("blocks of the clone: %d from %s", n, f.blocks.parent[fromSnap["id"].(string)])
	}
	clone := f.createVolume(alice, map[string]any{"source_volid": vol})
	if clone["source_volid"] != vol || clone["size"] != float64(1) {
		t.Fatalf("clone %v", clone)
	}
	f.expect(http.StatusBadRequest, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"snapshot_id": sid, "size": 0}})

	f.expect(http.StatusOK, "PUT", "snapshots/"+sid, alice, map[string]any{"snapshot": map[string]any{"name": "s2"}})
	f.expect(http.StatusNotFound, "GET", "snapshots/"+sid, bob, nil)
	f.expect(http.StatusForbidden, "POST", "snapshots/"+sid+"/action", alice, map[string]any{"os-reset_status": map[string]any{"status": "error"}})
	f.expect(http.StatusAccepted, "POST", "snapshots/"+sid+"/action", admin, map[string]any{"os-reset_status": map[string]any{"status": "error"}})
	f.expect(http.StatusAccepted, "DELETE", "snapshots/"+sid, alice, nil)
	f.expect(http.StatusNotFound, "GET", "snapshots/"+sid, alice, nil)
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+vol, alice, nil)
}

func TestDataFailuresLeaveTheVolumeInErrorWithTheCause(t *testing.T) {
	f := newFixture(t)
	f.blocks.setFail(errors.New("disk on fire"))
	r := f.call("POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "name": "doomed"}})
	if r.Code != http.StatusInternalServerError {
		t.Fatalf("create with failing blocks: %d %s", r.Code, r.Raw)
	}
	list := f.expect(http.StatusOK, "GET", "volumes/detail", admin, nil).Body["volumes"].([]any)
	if len(list) != 1 {
		t.Fatalf("volumes %v", list)
	}
	v := list[0].(map[string]any)
	if v["status"] != "error" || !strings.Contains(v["rackstack:error_reason"].(string), "disk on fire") {
		t.Fatalf("failed volume %v", v)
	}
	id := v["id"].(string)
	if got := f.showVolume(alice, id); got["rackstack:error_reason"] != nil {
		t.Fatalf("a member sees the internal cause: %v", got)
	}
	// A failed delete is error_deleting; a later one succeeds.
	f.expect(http.StatusInternalServerError, "DELETE", "volumes/"+id, alice, nil)
	if got := f.showVolume(alice, id); got["status"] != "error_deleting" {
		t.Fatalf("after failed delete: %v", got["status"])
	}
	f.blocks.setFail(nil)
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+id, alice, nil)

	ok := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.blocks.setFail(errors.New("no space"))
	f.expect(http.StatusInternalServerError, "POST", "volumes/"+ok+"/action", alice, map[string]any{"os-extend": map[string]any{"new_size": 2}})
	if got := f.showVolume(alice, ok); got["status"] != "error_extending" || got["size"] != float64(1) {
		t.Fatalf("after failed extend: %v %v", got["status"], got["size"])
	}
}

func TestQuotasAreTakenAtomically(t *testing.T) {
	f := newFixture(t)
	r := apitest.Call(t, "PUT", f.url+"/v3/"+projA+"/os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"volumes": 2, "gigabytes": 5}})
	if r.Code != http.StatusOK || r.Body["quota_set"].(map[string]any)["volumes"] != float64(2) {
		t.Fatalf("set quota: %d %s", r.Code, r.Raw)
	}
	f.expect(http.StatusForbidden, "PUT", "os-quota-sets/"+projB, bob, map[string]any{"quota_set": map[string]any{"volumes": 100}})
	f.createVolume(bob, map[string]any{"size": 2})
	r = f.expect(http.StatusRequestEntityTooLarge, "POST", "volumes", bob, map[string]any{"volume": map[string]any{"size": 4}})
	if k, msg := fault(t, r); k != "overLimit" || !strings.Contains(msg, "gigabytes") {
		t.Fatalf("over gigabytes: %s %s", k, msg)
	}
	v2 := f.createVolume(bob, map[string]any{"size": 1})["id"].(string)
	r = f.expect(http.StatusRequestEntityTooLarge, "POST", "volumes", bob, map[string]any{"volume": map[string]any{"size": 1}})
	if _, msg := fault(t, r); !strings.Contains(msg, "volumes") {
		t.Fatalf("over volumes: %s", msg)
	}
	// Extending takes gigabytes too.
	f.expect(http.StatusRequestEntityTooLarge, "POST", "volumes/"+v2+"/action", bob, map[string]any{"os-extend": map[string]any{"new_size": 4}})
	if got := f.showVolume(bob, v2); got["size"] != float64(1) || got["status"] != "available" {
		t.Fatalf("refused extend changed the volume: %v", got)
	}

	q := f.expect(http.StatusOK, "GET", "os-quota-sets/"+projB+"?usage=True", bob, nil).Body["quota_set"].(map[string]any)
	if vol := q["volumes"].(map[string]any); vol["limit"] != float64(2) || vol["in_use"] != float64(2) {
		t.Fatalf("usage %v", q)
	}
	f.expect(http.StatusForbidden, "GET", "os-quota-sets/"+projA, bob, nil)
	lim := f.expect(http.StatusOK, "GET", "limits", bob, nil).Body["limits"].(map[string]any)["absolute"].(map[string]any)
	if lim["maxTotalVolumes"] != float64(2) || lim["totalVolumesUsed"] != float64(2) || lim["totalGigabytesUsed"] != float64(3) {
		t.Fatalf("limits %v", lim)
	}
	def := f.expect(http.StatusOK, "GET", "os-quota-sets/"+projB+"/defaults", bob, nil).Body["quota_set"].(map[string]any)
	if def["volumes"] != float64(10) {
		t.Fatalf("defaults %v", def)
	}
	f.expect(http.StatusBadRequest, "PUT", "os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"volumes": -2}})
	f.expect(http.StatusBadRequest, "PUT", "os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"cores": 2}})
	f.expect(http.StatusOK, "DELETE", "os-quota-sets/"+projB, admin, nil)
	f.createVolume(bob, map[string]any{"size": 1})
}

func TestTypesChooseThePolicy(t *testing.T) {
	f := newFixture(t)
	types := f.expect(http.StatusOK, "GET", "types", alice, nil).Body["volume_types"].([]any)
	if len(types) != 1 || types[0].(map[string]any)["name"] != volstate.DefaultTypeName {
		t.Fatalf("types %v", types)
	}
	f.expect(http.StatusForbidden, "POST", "types", alice, map[string]any{"volume_type": map[string]any{"name": "ec"}})
	r := f.expect(http.StatusBadRequest, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "ec", "extra_specs": map[string]any{volstate.PolicySpec: "ec:0+2"}}})
	if _, msg := fault(t, r); !strings.Contains(msg, volstate.PolicySpec) {
		t.Fatalf("bad policy: %s", msg)
	}
	ec := f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "ec", "extra_specs": map[string]any{volstate.PolicySpec: "ec:4+2"}}}).Body["volume_type"].(map[string]any)
	f.expect(http.StatusConflict, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "ec"}})
	rep := f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "fast"}}).Body["volume_type"].(map[string]any)
	f.expect(http.StatusOK, "PUT", "types/"+rep["id"].(string)+"/extra_specs/"+volstate.PolicySpec, admin, map[string]any{volstate.PolicySpec: "replicated:3"})
	f.expect(http.StatusOK, "PUT", "types/"+rep["id"].(string), admin, map[string]any{"volume_type": map[string]any{"description": "low latency"}})

	v := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "ec"})
	if v["volume_type"] != "ec" || f.blocks.policy[v["id"].(string)] != (volstate.Policy{K: 4, M: 2}) {
		t.Fatalf("ec volume %v, policy %+v", v, f.blocks.policy[v["id"].(string)])
	}
	v2 := f.createVolume(alice, map[string]any{"size": 1, "volume_type": rep["id"]})
	if f.blocks.policy[v2["id"].(string)] != (volstate.Policy{Replicas: 3}) {
		t.Fatalf("replicated policy %+v", f.blocks.policy[v2["id"].(string)])
	}
	// A used type keeps its policy and is not deleted.
	f.expect(http.StatusBadRequest, "POST", "types/"+ec["id"].(string)+"/extra_specs", admin, map[string]any{"extra_specs": map[string]any{volstate.PolicySpec: "ec:2+1"}})
	f.expect(http.StatusBadRequest, "DELETE", "types/"+ec["id"].(string), admin, nil)
	f.expect(http.StatusBadRequest, "DELETE", "types/"+volstate.DefaultTypeID, admin, nil)
	f.expect(http.StatusOK, "POST", "types/"+volstate.DefaultTypeID+"/extra_specs", admin, map[string]any{"extra_specs": map[string]any{"x": "y"}})
	if got := f.expect(http.StatusOK, "GET", "types/default", alice, nil).Body["volume_type"].(map[string]any); got["extra_specs"].(map[string]any)["x"] != "y" {
		t.Fatalf("default type %v", got)
	}
	f.expect(http.StatusAccepted, "DELETE", "types/"+volstate.DefaultTypeID+"/extra_specs/x", admin, nil)
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+v["id"].(string), alice, nil)
	f.expect(http.StatusAccepted, "DELETE", "types/"+ec["id"].(string), admin, nil)
}

func TestUnbuiltFeaturesSaySo(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Backups, c.Images = nil, nil })
	id := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusNotImplemented, "POST", "backups", alice, map[string]any{"backup": map[string]any{"volume_id": id}})
	f.expect(http.StatusNotImplemented, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "imageRef": api.NewUUID()}})
	f.expect(http.StatusNotImplemented, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-initialize_connection": map[string]any{"connector": map[string]any{}}})
	// At Cinder's paths, the legacy manage extensions too (the CLI's
	// 'volume create --remote-source' posts to os-volume-manage).
	for _, c := range []struct{ method, path string }{
		{"GET", "clusters"}, {"GET", "clusters/detail"}, {"GET", "clusters/c1@lvm"}, {"PUT", "clusters/disable"},
		{"POST", "workers/cleanup"},
		{"GET", "manageable_volumes/detail"}, {"POST", "manageable_volumes"}, {"POST", "os-volume-manage"}, {"GET", "os-volume-manage/detail"},
		{"GET", "manageable_snapshots/detail"}, {"POST", "manageable_snapshots"}, {"POST", "os-snapshot-manage"},
	} {
		f.expect(http.StatusNotImplemented, c.method, c.path, admin, map[string]any{})
	}
	f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-dance": map[string]any{}})
}

func TestResetStatusIsAdminOnly(t *testing.T) {
	f := newFixture(t)
	id := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusForbidden, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-reset_status": map[string]any{"status": "error"}})
	f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", admin, map[string]any{"os-reset_status": map[string]any{"status": "melted"}})
	f.expect(http.StatusAccepted, "POST", "volumes/"+id+"/action", admin, map[string]any{"os-reset_status": map[string]any{"status": "error"}})
	if got := f.showVolume(alice, id); got["status"] != "error" {
		t.Fatalf("status %v", got["status"])
	}
}

func TestVolumeMetadata(t *testing.T) {
	f := newFixture(t)
	id := f.createVolume(alice, map[string]any{"size": 1, "metadata": map[string]any{"a": "1"}})["id"].(string)
	md := f.expect(http.StatusOK, "POST", "volumes/"+id+"/metadata", alice, map[string]any{"metadata": map[string]any{"b": "2"}}).Body["metadata"].(map[string]any)
	if md["a"] != "1" || md["b"] != "2" {
		t.Fatalf("merged %v", md)
	}
	md = f.expect(http.StatusOK, "PUT", "volumes/"+id+"/metadata", alice, map[string]any{"metadata": map[string]any{"c": "3"}}).Body["metadata"].(map[string]any)
	if len(md) != 1 || md["c"] != "3" {
		t.Fatalf("replaced %v", md)
	}
	f.expect(http.StatusOK, "PUT", "volumes/"+id+"/metadata/d", alice, map[string]any{"meta": map[string]any{"d": "4"}})
	f.expect(http.StatusBadRequest, "PUT", "volumes/"+id+"/metadata/d", alice, map[string]any{"meta": map[string]any{"e": "4"}})
	if got := f.expect(http.StatusOK, "GET", "volumes/"+id+"/metadata/d", alice, nil).Body["meta"].(map[string]any); got["d"] != "4" {
		t.Fatalf("key %v", got)
	}
	f.expect(http.StatusOK, "DELETE", "volumes/"+id+"/metadata/d", alice, nil)
	f.expect(http.StatusNotFound, "DELETE", "volumes/"+id+"/metadata/d", alice, nil)
	f.expect(http.StatusNotFound, "GET", "volumes/"+id+"/metadata/d", alice, nil)
}

func TestSnapshotRestoreEveryCommand(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	sid := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}}).Body["snapshot"].(map[string]any)["id"].(string)
	f.expect(http.StatusAccepted, "DELETE", "snapshots/"+sid, alice, nil)
	typ := f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "t"}}).Body["volume_type"].(map[string]any)["id"].(string)
	f.expect(http.StatusOK, "PUT", "types/"+typ, admin, map[string]any{"volume_type": map[string]any{"description": "x"}})
	f.expect(http.StatusAccepted, "DELETE", "types/"+typ, admin, nil)
	f.expect(http.StatusOK, "PUT", "os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"volumes": 3}})
	f.expect(http.StatusOK, "PUT", "os-quota-sets/"+projA, admin, map[string]any{"quota_set": map[string]any{"snapshots": 3}})
	f.expect(http.StatusOK, "DELETE", "os-quota-sets/"+projA, admin, nil)
	f.expect(http.StatusOK, "PUT", "os-quota-class-sets/default", admin, map[string]any{"quota_class_set": map[string]any{"backups": 4}})
	qos := f.expect(http.StatusOK, "POST", "qos-specs", admin, map[string]any{"qos_specs": map[string]any{"name": "q", "consumer": "front-end", "read_iops_sec": "100"}}).Body["qos_specs"].(map[string]any)["id"].(string)
	f.expect(http.StatusOK, "PUT", "qos-specs/"+qos, admin, map[string]any{"qos_specs": map[string]any{"write_iops_sec": "50"}})
	f.expect(http.StatusAccepted, "GET", "qos-specs/"+qos+"/associate?vol_type_id="+volstate.DefaultTypeID, admin, nil)
	gq := f.expect(http.StatusOK, "POST", "qos-specs", admin, map[string]any{"qos_specs": map[string]any{"name": "gone"}}).Body["qos_specs"].(map[string]any)["id"].(string)
	f.expect(http.StatusAccepted, "DELETE", "qos-specs/"+gq, admin, nil)
	gone := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+gone, alice, nil)
	// Groups and group snapshots.
	f.groupType("gt", nil)
	grp := f.createGroup(alice, map[string]any{"group_type": "gt", "volume_types": []any{volstate.DefaultTypeName}})
	f.at(14, http.StatusAccepted, "PUT", "groups/"+grp, alice, map[string]any{"group": map[string]any{"add_volumes": f.createVolume(alice, map[string]any{"size": 1})["id"].(string)}})
	gsnap := f.at(14, http.StatusAccepted, "POST", "group_snapshots", alice, map[string]any{"group_snapshot": map[string]any{"group_id": grp}})["group_snapshot"].(map[string]any)["id"].(string)
	f.at(14, http.StatusAccepted, "POST", "groups/action", alice, map[string]any{"create-from-src": map[string]any{"group_snapshot_id": gsnap}})
	f.at(14, http.StatusAccepted, "DELETE", "group_snapshots/"+gsnap, alice, nil)
	gone2 := f.createGroup(alice, map[string]any{"group_type": "gt", "volume_types": []any{volstate.DefaultTypeName}})
	f.at(14, http.StatusAccepted, "POST", "groups/"+gone2+"/action", alice, map[string]any{"delete": map[string]any{}})
	// Attachments are the compute API's and the node agent's commands.
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: "n1", Device: "/dev/vdc"}
	for _, c := range []struct {
		typ  string
		body any
	}{
		{volstate.CmdCreateBackup, volstate.CreateBackupCmd{Row: volstate.Backup{ID: "b1", Project: projA, VolumeID: vol, Status: volstate.BackupCreating}}},
		{volstate.CmdPutBackup, volstate.PutBackupCmd{Row: volstate.Backup{ID: "b1", Project: projA, VolumeID: vol, Size: 1, Status: volstate.BackupAvailable}, Revision: 1}},
		{volstate.CmdCreateBackup, volstate.CreateBackupCmd{Row: volstate.Backup{ID: "b2", Project: projA, VolumeID: vol, Status: volstate.BackupCreating}}},
		{volstate.CmdDeleteBackup, volstate.DeleteBackupCmd{ID: "b2", Revision: 1}},
		{volstate.CmdImportBackup, volstate.ImportBackupCmd{Row: volstate.Backup{ID: "b3", Project: projB, VolumeID: "a-gone-volume", Size: 1,
			Status: volstate.BackupAvailable, DataProject: projA, Prefix: "b1"}}},
		{volstate.CmdCreateTransfer, volstate.CreateTransferCmd{Row: volstate.Transfer{ID: "t1", VolumeID: vol, Project: projA, KeyHash: "h"}}},
		{volstate.CmdAcceptTransfer, volstate.AcceptTransferCmd{ID: "t1", Project: projA, KeyHash: "h"}},
		{volstate.CmdCreateTransfer, volstate.CreateTransferCmd{Row: volstate.Transfer{ID: "t2", VolumeID: vol, Project: projA, KeyHash: "h"}}},
		{volstate.CmdDeleteTransfer, volstate.DeleteTransferCmd{ID: "t2"}},
		{volstate.CmdAttach, volstate.AttachCmd{VolumeID: vol, Project: projA, Attachment: att}},
		{volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: att.ID}},
		{volstate.CmdDetach, volstate.DetachCmd{VolumeID: vol, ServerID: att.ServerID}},
		{volstate.CmdDetached, volstate.DetachedCmd{VolumeID: vol, AttachmentID: att.ID}},
		{volstate.CmdAttach, volstate.AttachCmd{VolumeID: vol, Project: projA, Attachment: att}},
		{volstate.CmdCreateMessage, volstate.CreateMessageCmd{Row: volstate.Message{ID: "m1", Project: projA, EventID: "VOLUME_VOLUME_001_003"}}},
		{volstate.CmdCreateMessage, volstate.CreateMessageCmd{Row: volstate.Message{ID: "m2", Project: projA, Expires: time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)}}},
		{volstate.CmdDeleteMessage, volstate.DeleteMessageCmd{ID: "m2"}},
		{volstate.CmdPutGroupType, volstate.PutGroupTypeCmd{Row: volstate.GroupType{ID: "g1", Name: "g", Specs: map[string]string{"k": "v"}}, Create: true}},
		{volstate.CmdPutGroupType, volstate.PutGroupTypeCmd{Row: volstate.GroupType{ID: "g2", Name: "g2"}, Create: true}},
		{volstate.CmdDeleteGroupType, volstate.DeleteGroupTypeCmd{ID: "g2"}},
		{volstate.CmdSetDefaultType, volstate.SetDefaultTypeCmd{Row: volstate.ProjectDefault{ID: projA, TypeID: volstate.DefaultTypeID}}},
		{volstate.CmdSetDefaultType, volstate.SetDefaultTypeCmd{Row: volstate.ProjectDefault{ID: projB, TypeID: volstate.DefaultTypeID}}},
		{volstate.CmdUnsetDefaultType, volstate.UnsetDefaultTypeCmd{Project: projB}},
		{volstate.CmdPutQuiesce, volstate.PutQuiesceCmd{Row: volstate.Quiesce{ID: "q1", Volumes: []string{vol}, Nodes: []string{"n1"}, Lease: time.Minute}}},
		{volstate.CmdAnswerQuiesce, volstate.AnswerQuiesceCmd{ID: "q1", Node: "n1", Answer: volstate.QuiesceAnswer{Held: []string{vol}}}},
		{volstate.CmdPutQuiesce, volstate.PutQuiesceCmd{Row: volstate.Quiesce{ID: "q2", Nodes: []string{"n1"}, Lease: time.Minute}}},
		{volstate.CmdDeleteQuiesce, volstate.DeleteQuiesceCmd{ID: "q2"}},
	} {
		if _, err := f.local.Propose(context.Background(), c.typ, c.body); err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
	}
	snap := store.EveryCommandSurvivesSnapshot(t, f.local, Schema(), eventstate.Schema())
	// The gone volume's row is gone (its events stay, naming it as
	// their resource_id).
	if !strings.Contains(string(snap), `"id":"`+vol+`"`) || strings.Contains(string(snap), `"id":"`+gone+`"`) {
		t.Fatalf("snapshot content wrong: %s", snap)
	}
}

// From 3.42 an attached (in-use) volume is extended and stays in-use;
// before, it is refused as Cinder refuses it.
func TestExtendInUseNeeds342(t *testing.T) {
	f := newFixture(t)
	id := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	att := volstate.Attachment{ID: api.NewUUID(), ServerID: api.NewUUID(), Host: "n1", Device: "/dev/vdc"}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttach, volstate.AttachCmd{VolumeID: id, Attachment: att}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.local.Propose(context.Background(), volstate.CmdAttached, volstate.AttachedCmd{VolumeID: id, AttachmentID: att.ID}); err != nil {
		t.Fatal(err)
	}
	extend := map[string]any{"os-extend": map[string]any{"new_size": 2}}
	r := f.call("POST", "volumes/"+id+"/action", alice, extend)
	if r.Code != http.StatusBadRequest {
		t.Fatalf("extend in-use at 3.0: %d %s", r.Code, r.Raw)
	}
	r = f.call("POST", "volumes/"+id+"/action", alice, extend, "OpenStack-API-Version", "volume 3.42")
	if r.Code != http.StatusAccepted {
		t.Fatalf("extend in-use at 3.42: %d %s", r.Code, r.Raw)
	}
	if got := f.showVolume(alice, id); got["status"] != "in-use" || got["size"] != float64(2) {
		t.Fatalf("after extend %v %v", got["status"], got["size"])
	}
	if n, _ := f.blocks.sizeOf(id); n != 2*volstate.GiB {
		t.Fatalf("blocks %d", n)
	}
}

// The next link of a page is where the API is mounted: a client follows
// it as it is.
func TestListNextLinkKeepsTheMountPrefix(t *testing.T) {
	f := newFixture(t)
	f.createVolume(alice, map[string]any{"size": 1})
	f.createVolume(alice, map[string]any{"size": 1})
	vol := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}})
	f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": vol}})
	for _, c := range []string{"volumes", "volumes/detail", "snapshots"} {
		key := strings.Split(c, "/")[0] + "_links"
		r := f.expect(http.StatusOK, "GET", c+"?limit=1", alice, nil)
		links, _ := r.Body[key].([]any)
		if len(links) != 1 {
			t.Fatalf("%s: links %v", c, r.Body)
		}
		href := links[0].(map[string]any)["href"].(string)
		if !strings.HasPrefix(href, f.url+"/v3/"+projA+"/"+c+"?") {
			t.Errorf("%s: next %s", c, href)
		}
	}
}

// Cinder's paging: limit=0 is an empty page, offset skips entries, and a
// marker the caller has no row of is 404.
func TestListLimitZeroOffsetAndUnknownMarker(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 3; i++ {
		f.createVolume(alice, map[string]any{"size": 1})
	}
	other := f.createVolume(bob, map[string]any{"size": 1})["id"].(string)
	if got := f.expect(http.StatusOK, "GET", "volumes?limit=0", alice, nil).Body["volumes"].([]any); len(got) != 0 {
		t.Fatalf("limit=0: %v", got)
	}
	all := f.expect(http.StatusOK, "GET", "volumes?sort=id:asc", alice, nil).Body["volumes"].([]any)
	got := f.expect(http.StatusOK, "GET", "volumes?sort=id:asc&offset=1", alice, nil).Body["volumes"].([]any)
	if len(all) != 3 || len(got) != 2 || got[0].(map[string]any)["id"] != all[1].(map[string]any)["id"] {
		t.Fatalf("offset=1: %v of %v", got, all)
	}
	f.expect(http.StatusBadRequest, "GET", "volumes?offset=-1", alice, nil)
	f.expect(http.StatusNotFound, "GET", "volumes?marker="+other, alice, nil)
	f.expect(http.StatusNotFound, "GET", "snapshots?marker="+other, alice, nil)
}

// An admin lists one project's volumes with all_tenants and project_id.
func TestAdminListsOneProjectsVolumes(t *testing.T) {
	f := newFixture(t)
	mine := f.createVolume(alice, map[string]any{"size": 1})["id"].(string)
	f.createVolume(bob, map[string]any{"size": 1})
	got := f.expect(http.StatusOK, "GET", "volumes/detail?all_tenants=1&project_id="+projA, admin, nil).Body["volumes"].([]any)
	if len(got) != 1 || got[0].(map[string]any)["id"] != mine {
		t.Fatalf("project A's volumes: %v", got)
	}
	if got := f.expect(http.StatusOK, "GET", "volumes/detail?all_tenants=1", admin, nil).Body["volumes"].([]any); len(got) != 2 {
		t.Fatalf("all volumes: %v", got)
	}
}

// An admin reads any project's volume, snapshot and backup by id, in
// the admin's own project's URL; a member does not.
func TestAdminShowsAnyProjectsResources(t *testing.T) {
	f := newFixture(t)
	vol := f.createVolume(bob, map[string]any{"size": 1})["id"].(string)
	sn := f.expect(http.StatusAccepted, "POST", "snapshots", bob, map[string]any{"snapshot": map[string]any{"volume_id": vol}}).Body["snapshot"].(map[string]any)["id"].(string)
	bk := f.createBackup(bob, map[string]any{"volume_id": vol})
	for _, path := range []string{"volumes/" + vol, "snapshots/" + sn, "backups/" + bk} {
		f.expect(http.StatusOK, "GET", path, admin, nil)
		f.expect(http.StatusNotFound, "GET", path, alice, nil)
	}
	if got := f.expect(http.StatusOK, "GET", "volumes/detail", admin, nil).Body["volumes"].([]any); len(got) != 0 {
		t.Fatalf("an admin's list without all_tenants: %v", got)
	}
}

// A full page has a next link even when nothing follows (the client
// learns the end from an empty page); a sort key is checked on an empty
// list too.
func TestFullPageNextAndSortKeysOnEmptyLists(t *testing.T) {
	f := newFixture(t)
	f.expect(http.StatusBadRequest, "GET", "snapshots?sort_key=invalid", alice, nil)
	f.expect(http.StatusBadRequest, "GET", "volumes?sort=invalid:asc", alice, nil)
	f.createVolume(alice, map[string]any{"size": 1})
	r := f.expect(http.StatusOK, "GET", "volumes?limit=1", alice, nil)
	if links, _ := r.Body["volumes_links"].([]any); len(links) != 1 {
		t.Fatalf("a full last page has no next link: %s", r.Raw)
	}
}

// Create answers a volume without the extensions' attributes, which show
// carries (volume_image_metadata among them).
func TestCreateAnswerHasNoExtensionAttributes(t *testing.T) {
	f := newFixture(t)
	f.testImage()
	v := f.createVolume(alice, map[string]any{"imageRef": imageID})
	if _, ok := v["volume_image_metadata"]; ok {
		t.Fatalf("create answered %v", v)
	}
	got := f.waitStatus(alice, "volumes/"+v["id"].(string), "volume", "available")
	if _, ok := got["volume_image_metadata"]; !ok {
		t.Fatalf("show answered %v", got)
	}
}

// A size past the quota is refused as Cinder refuses it, 413 with the
// class its clients match (the cinderclient functional tests ask for
// 999999999 GB), before this cloud's own 16 TiB bound; a size within an
// unlimited quota but past the bound is a 400 naming the field. The
// gigabytes message says what was asked and what is in use.
func TestSizePastQuotaBeforeSizeBound(t *testing.T) {
	f := newFixture(t)
	v := f.createVolume(bob, map[string]any{"size": 2})["id"].(string)
	for _, c := range []struct {
		path string
		body map[string]any
		want string
	}{
		{"volumes", map[string]any{"volume": map[string]any{"size": 999999999}}, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 999999999G, quota is 1000G and 2G has been consumed."},
		{"volumes/" + v + "/action", map[string]any{"os-extend": map[string]any{"new_size": 999999999}}, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 999999997G, quota is 1000G and 2G has been consumed."},
		{"volumes", map[string]any{"volume": map[string]any{"size": 999}}, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 999G, quota is 1000G and 2G has been consumed."},
	} {
		r := f.expect(http.StatusRequestEntityTooLarge, "POST", c.path, bob, c.body)
		if k, msg := fault(t, r); k != "overLimit" || msg != c.want {
			t.Fatalf("POST %s: %s %q", c.path, k, msg)
		}
	}
	f.expect(http.StatusOK, "PUT", "os-quota-sets/"+projB, admin, map[string]any{"quota_set": map[string]any{"gigabytes": -1, "volumes": 1}})
	for _, c := range []struct {
		path, field string
		body        map[string]any
	}{
		{"volumes", "size", map[string]any{"volume": map[string]any{"size": 20000}}},
		{"volumes/" + v + "/action", "new_size", map[string]any{"os-extend": map[string]any{"new_size": 20000}}},
	} {
		r := f.expect(http.StatusBadRequest, "POST", c.path, bob, c.body)
		if _, msg := fault(t, r); !strings.Contains(msg, "field/attribute "+c.field) || !strings.Contains(msg, "maximum of 16384") {
			t.Fatalf("POST %s: %s", c.path, msg)
		}
	}
	if got := f.showVolume(bob, v); got["size"] != float64(2) || got["status"] != "available" {
		t.Fatalf("refused extends changed the volume: %v", got)
	}
	// The count quotas name their class too.
	r := f.expect(http.StatusRequestEntityTooLarge, "POST", "volumes", bob, map[string]any{"volume": map[string]any{"size": 1}})
	if _, msg := fault(t, r); !strings.HasPrefix(msg, "VolumeLimitExceeded: Maximum number of volumes allowed (1) exceeded for quota 'volumes'") {
		t.Fatalf("over volumes: %s", msg)
	}
}
