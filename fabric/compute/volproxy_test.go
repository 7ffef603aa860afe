package compute

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// memBlocks is the block store in memory: which volumes and snapshots
// have blocks.
type memBlocks struct {
	mu  sync.Mutex
	ids map[string]int64
}

func (b *memBlocks) put(id string, size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ids[id] = size
}

func (b *memBlocks) Create(_ context.Context, id string, size int64, _ volstate.Policy) error {
	b.put(id, size)
	return nil
}

func (b *memBlocks) Clone(_ context.Context, id, from string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	size, ok := b.ids[from]
	if !ok {
		return fmt.Errorf("no blocks of %s", from)
	}
	b.ids[id] = size
	return nil
}

func (b *memBlocks) Snapshot(ctx context.Context, id, vol string) error { return b.Clone(ctx, id, vol) }

func (b *memBlocks) Resize(_ context.Context, id string, size int64) error {
	b.put(id, size)
	return nil
}

func (b *memBlocks) Delete(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.ids, id)
	return nil
}

func (b *memBlocks) Exists(_ context.Context, id string) (bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.ids[id]
	return ok, nil
}

// newProxyFixture is the compute fixture with the real volume service
// on the same replicated state, its API behind the proxy.
func newProxyFixture(t *testing.T) (*fixture, *memBlocks) {
	t.Helper()
	f := newFixtureWith(t, volstate.Schema())
	blocks := &memBlocks{ids: map[string]int64{}}
	vs, err := volume.New(volume.Config{Repl: f.local, Auth: f.svc.cfg.Auth, Blocks: blocks, Node: "n1", Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.VolumeAPI = vs.Handler()
	return f, blocks
}

func (f *fixture) proxyVolume(tok string, extra ...any) map[string]any {
	f.t.Helper()
	v := map[string]any{"size": 1}
	for i := 0; i+1 < len(extra); i += 2 {
		v[extra[i].(string)] = extra[i+1]
	}
	return f.expect("POST", "/v2.1/os-volumes", tok, "", map[string]any{"volume": v}, 200, "")["volume"].(map[string]any)
}

func ids(l []any) []string {
	var out []string
	for _, v := range l {
		out = append(out, v.(map[string]any)["id"].(string))
	}
	return out
}

func TestVolumeProxyVolumes(t *testing.T) {
	f, blocks := newProxyFixture(t)

	r := f.do("POST", "/v2.1/os-volumes", alice, "", map[string]any{"volume": map[string]any{
		"size": "2", "display_name": "data", "display_description": "scratch", "metadata": map[string]any{"Type": "work"}}})
	if r.code != 200 {
		t.Fatalf("create: %d %v", r.code, r.body)
	}
	v := r.body["volume"].(map[string]any)
	id := v["id"].(string)
	if r.header.Get("Location") == "" || r.header.Get("Location")[len(r.header.Get("Location"))-len(id):] != id {
		t.Fatalf("Location %q", r.header.Get("Location"))
	}
	want := map[string]any{"id": id, "status": "available", "size": float64(2), "availabilityZone": "nova", "displayName": "data",
		"displayDescription": "scratch", "volumeType": volstate.DefaultTypeName, "snapshotId": nil,
		"metadata": map[string]any{"Type": "work"}, "attachments": []any{map[string]any{}}}
	created := v["createdAt"]
	delete(v, "createdAt")
	if !reflect.DeepEqual(v, want) || created == nil {
		t.Fatalf("created view %v, want %v", v, want)
	}
	// The volume service's own volume, with its blocks: no second store.
	if row := f.vol(id); row.Project != projA || row.Name != "data" || row.Size != 2 {
		t.Fatalf("volume row %+v", row)
	}
	if ok, _ := blocks.Exists(context.Background(), id); !ok {
		t.Fatal("no blocks were made")
	}

	shown := f.expect("GET", "/v2.1/os-volumes/"+id, alice, "", nil, 200, "")["volume"].(map[string]any)
	if shown["displayName"] != "data" || shown["createdAt"] != created {
		t.Fatalf("show %v", shown)
	}
	// The legacy v2 endpoint serves it too (at 2.1).
	f.expect("GET", "/v2/os-volumes/"+id, alice, "", nil, 200, "")

	// Lists, paged as Nova pages them: offset and limit over the whole.
	f.proxyVolume(alice)
	f.proxyVolume(alice)
	all := f.expect("GET", "/v2.1/os-volumes", alice, "", nil, 200, "")["volumes"].([]any)
	detail := f.expect("GET", "/v2.1/os-volumes/detail", alice, "", nil, 200, "")["volumes"].([]any)
	if len(all) != 3 || !reflect.DeepEqual(all, detail) {
		t.Fatalf("list %v, detail %v", all, detail)
	}
	found := false
	for _, x := range all {
		if reflect.DeepEqual(x, shown) {
			found = true
		}
	}
	if !found {
		t.Fatalf("the list does not show the volume as show does: %v", all)
	}
	if got := f.expect("GET", "/v2.1/os-volumes?limit=2", alice, "", nil, 200, "")["volumes"].([]any); !reflect.DeepEqual(ids(got), ids(all)[:2]) {
		t.Fatalf("limit=2: %v", ids(got))
	}
	if got := f.expect("GET", "/v2.1/os-volumes/detail?offset=1&limit=1", alice, "", nil, 200, "")["volumes"].([]any); !reflect.DeepEqual(ids(got), ids(all)[1:2]) {
		t.Fatalf("offset=1&limit=1: %v", ids(got))
	}
	if got := f.expect("GET", "/v2.1/os-volumes?offset=5", alice, "", nil, 200, "")["volumes"].([]any); len(got) != 0 {
		t.Fatalf("offset past the end: %v", got)
	}
	f.expect("GET", "/v2.1/os-volumes?limit=two", alice, "", nil, 400, "badRequest", "limit")
	f.expect("GET", "/v2.1/os-volumes/detail?offset=-1", alice, "", nil, 400, "badRequest", "offset")

	// Another project sees none of them, and cannot delete them.
	if got := f.expect("GET", "/v2.1/os-volumes/detail", bob, "", nil, 200, "")["volumes"].([]any); len(got) != 0 {
		t.Fatalf("bob sees %v", got)
	}
	f.expect("GET", "/v2.1/os-volumes/"+id, bob, "", nil, 404, "itemNotFound", id)
	f.expect("DELETE", "/v2.1/os-volumes/"+id, bob, "", nil, 404, "itemNotFound")
	// A reader of the project sees them but changes nothing.
	f.expect("GET", "/v2.1/os-volumes/"+id, carol, "", nil, 200, "")
	f.expect("DELETE", "/v2.1/os-volumes/"+id, carol, "", nil, 403, "forbidden")
	f.expect("POST", "/v2.1/os-volumes", carol, "", map[string]any{"volume": map[string]any{"size": 1}}, 403, "forbidden")

	f.expect("DELETE", "/v2.1/os-volumes/"+id, alice, "", nil, 202, "")
	f.expect("GET", "/v2.1/os-volumes/"+id, alice, "", nil, 404, "itemNotFound", id)
	f.expect("DELETE", "/v2.1/os-volumes/"+id, alice, "", nil, 404, "itemNotFound")
	if ok, _ := blocks.Exists(context.Background(), id); ok {
		t.Fatal("the deleted volume's blocks remain")
	}
}

func TestVolumeProxyBadInput(t *testing.T) {
	f, _ := newProxyFixture(t)
	for _, c := range []struct {
		vol   any
		field string
	}{
		{map[string]any{}, "size"},
		{map[string]any{"size": 0}, "size"},
		{map[string]any{"size": "#$%"}, "size"},
		{map[string]any{"size": ""}, "size"},
		{map[string]any{"size": 1.5}, "size"},
		{map[string]any{"size": nil}, "size"},
		{map[string]any{"size": 1, "display_name": 5}, "display_name"},
		{map[string]any{"size": 1, "display_description": nil}, "display_description"},
		{map[string]any{"size": 1, "metadata": "x"}, "metadata"},
		{map[string]any{"size": 1, "imageRef": "x"}, "imageRef"},
		{"volume", "volume"},
	} {
		f.expect("POST", "/v2.1/os-volumes", alice, "", map[string]any{"volume": c.vol}, 400, "badRequest", c.field)
	}
	// What the volume service refuses comes back as Nova's 400 / 404.
	f.expect("POST", "/v2.1/os-volumes", alice, "", map[string]any{"volume": map[string]any{"size": 1, "availability_zone": "elsewhere"}}, 400, "badRequest", "availability_zone")
	f.expect("POST", "/v2.1/os-volumes", alice, "", map[string]any{"volume": map[string]any{"size": 1, "volume_type": "no-such-type"}}, 404, "itemNotFound", "no-such-type")
	f.expect("POST", "/v2.1/os-volumes", alice, "", map[string]any{"volume": map[string]any{"size": 1, "snapshot_id": api.NewUUID()}}, 404, "itemNotFound", "Snapshot")

	vol := f.proxyVolume(alice)["id"].(string)
	for _, c := range []struct {
		snap  any
		field string
	}{
		{map[string]any{}, "volume_id"},
		{map[string]any{"volume_id": 7}, "volume_id"},
		{map[string]any{"volume_id": vol, "force": "maybe"}, "force"},
		{map[string]any{"volume_id": vol, "display_name": false}, "display_name"},
		{map[string]any{"volume_id": vol, "metadata": map[string]any{}}, "metadata"},
	} {
		f.expect("POST", "/v2.1/os-snapshots", alice, "", map[string]any{"snapshot": c.snap}, 400, "badRequest", c.field)
	}
	f.expect("POST", "/v2.1/os-snapshots", alice, "", map[string]any{"snapshot": map[string]any{"volume_id": api.NewUUID()}}, 404, "itemNotFound", "Volume")
	// Nothing was made by the refused requests.
	if got := f.expect("GET", "/v2.1/os-volumes", alice, "", nil, 200, "")["volumes"].([]any); len(got) != 1 {
		t.Fatalf("volumes after refused creates: %v", got)
	}
	if got := f.expect("GET", "/v2.1/os-snapshots", alice, "", nil, 200, "")["snapshots"].([]any); len(got) != 0 {
		t.Fatalf("snapshots after refused creates: %v", got)
	}
}

func TestVolumeProxySnapshots(t *testing.T) {
	f, blocks := newProxyFixture(t)
	vol := f.proxyVolume(alice, "size", 3)["id"].(string)

	sn := f.expect("POST", "/v2.1/os-snapshots", alice, "", map[string]any{"snapshot": map[string]any{
		"volume_id": vol, "display_name": "snap", "display_description": "before", "force": "false"}}, 200, "")["snapshot"].(map[string]any)
	id := sn["id"].(string)
	created := sn["createdAt"]
	delete(sn, "createdAt")
	want := map[string]any{"id": id, "volumeId": vol, "status": "available", "size": float64(3), "displayName": "snap", "displayDescription": "before"}
	if !reflect.DeepEqual(sn, want) || created == nil {
		t.Fatalf("snapshot %v, want %v", sn, want)
	}
	if ok, _ := blocks.Exists(context.Background(), id); !ok {
		t.Fatal("the snapshot has no blocks")
	}
	shown := f.expect("GET", "/v2.1/os-snapshots/"+id, alice, "", nil, 200, "")["snapshot"].(map[string]any)
	if shown["displayName"] != "snap" || shown["volumeId"] != vol {
		t.Fatalf("show %v", shown)
	}
	f.expect("POST", "/v2.1/os-snapshots", alice, "", map[string]any{"snapshot": map[string]any{"volume_id": vol}}, 200, "")
	list := f.expect("GET", "/v2.1/os-snapshots", alice, "", nil, 200, "")["snapshots"].([]any)
	detail := f.expect("GET", "/v2.1/os-snapshots/detail", alice, "", nil, 200, "")["snapshots"].([]any)
	if len(list) != 2 || !reflect.DeepEqual(list, detail) {
		t.Fatalf("list %v detail %v", list, detail)
	}
	if got := f.expect("GET", "/v2.1/os-snapshots?offset=1&limit=1", alice, "", nil, 200, "")["snapshots"].([]any); !reflect.DeepEqual(ids(got), ids(list)[1:]) {
		t.Fatalf("offset=1&limit=1: %v", ids(got))
	}
	// A volume made from the snapshot through the proxy.
	from := f.proxyVolume(alice, "size", 3, "snapshot_id", id)
	if from["snapshotId"] != id {
		t.Fatalf("volume from snapshot %v", from)
	}
	f.expect("DELETE", "/v2.1/os-volumes/"+from["id"].(string), alice, "", nil, 202, "")

	// Another project's snapshots do not exist for bob.
	if got := f.expect("GET", "/v2.1/os-snapshots/detail", bob, "", nil, 200, "")["snapshots"].([]any); len(got) != 0 {
		t.Fatalf("bob sees %v", got)
	}
	f.expect("GET", "/v2.1/os-snapshots/"+id, bob, "", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-snapshots/"+id, bob, "", nil, 404, "itemNotFound")
	f.expect("POST", "/v2.1/os-snapshots", bob, "", map[string]any{"snapshot": map[string]any{"volume_id": vol}}, 404, "itemNotFound")

	// A volume with snapshots is not deleted (the volume service's 400).
	f.expect("DELETE", "/v2.1/os-volumes/"+vol, alice, "", nil, 400, "badRequest", "snapshots")
	f.expect("DELETE", "/v2.1/os-snapshots/"+id, alice, "", nil, 202, "")
	f.expect("GET", "/v2.1/os-snapshots/"+id, alice, "", nil, 404, "itemNotFound", id)
}

// The proxy is Nova's to 2.35: from 2.36 every route of it is 404.
func TestVolumeProxyMicroversions(t *testing.T) {
	f, _ := newProxyFixture(t)
	vol := f.proxyVolume(alice)["id"].(string)
	sn := f.expect("POST", "/v2.1/os-snapshots", alice, "2.35", map[string]any{"snapshot": map[string]any{"volume_id": vol}}, 200, "")["snapshot"].(map[string]any)["id"].(string)
	f.expect("GET", "/v2.1/os-volumes", alice, "2.35", nil, 200, "")
	for _, version := range []string{"2.36", "2.79", "latest"} {
		for _, c := range [][2]string{{"GET", "/os-volumes"}, {"GET", "/os-volumes/detail"}, {"GET", "/os-volumes/" + vol}, {"DELETE", "/os-volumes/" + vol},
			{"POST", "/os-volumes"}, {"GET", "/os-snapshots"}, {"GET", "/os-snapshots/detail"}, {"GET", "/os-snapshots/" + sn},
			{"DELETE", "/os-snapshots/" + sn}, {"POST", "/os-snapshots"}} {
			var body any
			if c[0] == "POST" {
				body = map[string]any{"volume": map[string]any{"size": 1}}
			}
			f.expect(c[0], "/v2.1"+c[1], alice, version, body, 404, "itemNotFound")
			// Even for a caller whose roles would not pass.
			f.expect(c[0], "/v2.1"+c[1], carol, version, body, 404, "itemNotFound")
		}
	}
	// Nothing was deleted or made past 2.35.
	if got := f.expect("GET", "/v2.1/os-volumes", alice, "2.1", nil, 200, "")["volumes"].([]any); len(got) != 1 {
		t.Fatalf("volumes %v", got)
	}
	f.expect("GET", "/v2.1/os-snapshots/"+sn, alice, "2.1", nil, 200, "")
	exts := f.expect("GET", "/v2.1/extensions/os-volumes", alice, "", nil, 200, "")
	if exts["extension"].(map[string]any)["name"] != "Volumes" {
		t.Fatalf("extension %v", exts)
	}
}

// A volume attached through os-volume_attachments shows the attachment.
func TestVolumeProxyAttachment(t *testing.T) {
	f, _ := newProxyFixture(t)
	f.stdFlavors()
	srv := f.server(alice, "vm")
	f.report(srv, Observed{Status: "ACTIVE", PowerState: 1})
	vol := f.proxyVolume(alice)["id"].(string)
	f.expect("POST", "/v2.1/servers/"+srv+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": vol}}, 200, "")
	v := f.expect("GET", "/v2.1/os-volumes/"+vol, alice, "", nil, 200, "")["volume"].(map[string]any)
	want := []any{map[string]any{"id": vol, "volumeId": vol, "serverId": srv, "device": "/dev/vdc"}}
	if !reflect.DeepEqual(v["attachments"], want) || v["status"] != volstate.StatusAttaching {
		t.Fatalf("attached volume %v", v)
	}
	// An attached volume is not deleted.
	f.expect("DELETE", "/v2.1/os-volumes/"+vol, alice, "", nil, 400, "badRequest", "attached")
}

// Without the volume service the proxy says it is not there (501), not
// an empty list.
func TestVolumeProxyWithoutVolumeService(t *testing.T) {
	f := newFixture(t)
	f.expect("GET", "/v2.1/os-volumes", alice, "", nil, 501, "")
	f.expect("POST", "/v2.1/os-snapshots", alice, "", map[string]any{"snapshot": map[string]any{"volume_id": api.NewUUID()}}, 501, "")
	f.expect("GET", "/v2.1/os-volumes", alice, "2.36", nil, 404, "itemNotFound")
}
