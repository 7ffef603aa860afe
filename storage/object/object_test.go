package object

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/object/objectapi"
)

type fixture struct {
	t     *testing.T
	local *store.Local
	svc   *Service
	disks map[string]disk.Disk
	dirs  []string
	rows  []DiskRow
	ctx   context.Context
}

// newFixture is one node with n disk directories.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	local, err := store.NewLocal(Schema(), eventstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, local: local, disks: map[string]disk.Disk{}, ctx: context.Background()}
	for i := 0; i < n; i++ {
		f.addDisk()
	}
	f.svc = New(Config{
		// Objects here are small so that they span stripes and disks:
		// they must go to blobs (inline_test.go covers inline ones).
		InlineMax: -1,
		Repl:      local, Node: "n1", MaxShard: 4096,
		Blobs: &blob.Store{Node: "n1", Local: f.disks},
		Local: func() []DiskRow { return f.rows },
	})
	if err := f.svc.RegisterDisks(f.ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) addDisk() {
	dir := filepath.Join(f.t.TempDir(), "disk")
	d, err := disk.OpenDir(dir)
	if err != nil {
		f.t.Fatal(err)
	}
	f.disks[d.ID()] = d
	f.dirs = append(f.dirs, dir)
	f.rows = append(f.rows, DiskRow{ID: d.ID(), Path: dir})
}

func (f *fixture) container(project, name string) {
	f.t.Helper()
	if _, err := f.svc.PutContainer(f.ctx, Container{Project: project, Name: name}, true); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) put(project, container, name string, data []byte) *Object {
	f.t.Helper()
	o, err := f.svc.Put(f.ctx, project, container, name, bytes.NewReader(data), PutOptions{Size: int64(len(data))})
	if err != nil {
		f.t.Fatalf("put %s: %v", name, err)
	}
	return o
}

func (f *fixture) get(project, container, name string) []byte {
	f.t.Helper()
	o, err := f.svc.Head(f.ctx, project, container, name)
	if err != nil {
		f.t.Fatalf("head %s: %v", name, err)
	}
	var buf bytes.Buffer
	if err := f.svc.Read(f.ctx, o, 0, o.Size, &buf); err != nil {
		f.t.Fatalf("read %s: %v", name, err)
	}
	return buf.Bytes()
}

// shardFiles counts shard files on all disks.
func (f *fixture) shardFiles() int {
	n := 0
	for _, d := range f.disks {
		names, _ := d.List()
		n += len(names)
	}
	return n
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestPutGetOverwriteDelete(t *testing.T) {
	f := newFixture(t, 6)
	f.container("p1", "c")
	for _, size := range []int{0, 1, 4096*4 + 1, 100_000} {
		data := random(size)
		name := fmt.Sprintf("obj-%d", size)
		o := f.put("p1", "c", name, data)
		sum := md5.Sum(data)
		if o.ETag != hex.EncodeToString(sum[:]) || o.Size != int64(size) {
			t.Fatalf("%s: etag %s size %d", name, o.ETag, o.Size)
		}
		if o.Parts[0].Layout.K != 4 || o.Parts[0].Layout.M != 2 {
			t.Fatalf("6 disks should give 4+2, got %+v", o.Parts[0].Layout)
		}
		if got := f.get("p1", "c", name); !bytes.Equal(got, data) {
			t.Fatalf("%s: read back %d bytes, differ", name, len(got))
		}
	}
	c, _ := f.svc.Container(f.ctx, "p1", "c")
	if c.Objects != 4 || c.Bytes != 4096*4+1+100_000+1 {
		t.Fatalf("container counts %d objects %d bytes", c.Objects, c.Bytes)
	}
	before := f.shardFiles()
	f.put("p1", "c", "obj-1", []byte("x"))
	f.svc.collectGarbage(f.ctx)
	if after := f.shardFiles(); after != before {
		t.Fatalf("overwrite left %d shard files, want %d", after, before)
	}
	if err := f.svc.DeleteContainer(f.ctx, "p1", "c"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("deleting a full container: %v", err)
	}
	for _, n := range []string{"obj-0", "obj-1", "obj-16385", "obj-100000"} {
		if err := f.svc.Delete(f.ctx, "p1", "c", n); err != nil {
			t.Fatal(err)
		}
	}
	f.svc.collectGarbage(f.ctx)
	if n := f.shardFiles(); n != 0 {
		t.Fatalf("%d shard files left after deleting everything", n)
	}
	if err := f.svc.DeleteContainer(f.ctx, "p1", "c"); err != nil {
		t.Fatal(err)
	}
}

func TestTenantsDoNotSeeEachOther(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p1", "shared-name")
	f.container("p2", "shared-name")
	f.put("p1", "shared-name", "secret", []byte("p1 data"))
	if _, err := f.svc.Head(f.ctx, "p2", "shared-name", "secret"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("p2 sees p1's object: %v", err)
	}
	list, _, _ := f.svc.List(f.ctx, "p2", "shared-name", ListOptions{})
	if len(list) != 0 {
		t.Fatalf("p2 lists %d objects of p1", len(list))
	}
	cs, _ := f.svc.Containers(f.ctx, "p2")
	if len(cs) != 1 || cs[0].Objects != 0 {
		t.Fatalf("p2 containers %+v", cs)
	}
}

func TestBadBodiesLeaveNothing(t *testing.T) {
	f := newFixture(t, 6)
	f.container("p", "c")
	data := random(50_000)
	_, err := f.svc.Put(f.ctx, "p", "c", "short", bytes.NewReader(data[:1000]), PutOptions{Size: 50_000})
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("short body: %v", err)
	}
	_, err = f.svc.Put(f.ctx, "p", "c", "long", bytes.NewReader(data), PutOptions{Size: 1000})
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("long body: %v", err)
	}
	_, err = f.svc.Put(f.ctx, "p", "c", "digest", bytes.NewReader(data), PutOptions{Size: -1, MD5: strings.Repeat("0", 32)})
	if !errors.Is(err, ErrBadDigest) {
		t.Fatalf("bad digest: %v", err)
	}
	broken := errors.New("client went away")
	_, err = f.svc.Put(f.ctx, "p", "c", "broken", &failingReader{data: data, err: broken}, PutOptions{Size: -1})
	if !errors.Is(err, broken) || !errors.Is(err, blob.ErrSource) {
		t.Fatalf("failing body: %v", err)
	}
	if n := f.shardFiles(); n != 0 {
		t.Fatalf("%d shard files left by failed writes", n)
	}
	if list, _, _ := f.svc.List(f.ctx, "p", "c", ListOptions{}); len(list) != 0 {
		t.Fatalf("failed writes are listed: %d", len(list))
	}
	if _, err := f.svc.Put(f.ctx, "p", "nope", "x", bytes.NewReader(nil), PutOptions{}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("put into a missing container: %v", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data[:min(len(r.data), 7000)])
	r.data = r.data[n:]
	return n, nil
}

func TestListing(t *testing.T) {
	f := newFixture(t, 1)
	f.container("p", "c")
	names := []string{"a", "b/1", "b/2", "b/c/3", "c", "d/1"}
	for _, n := range names {
		f.put("p", "c", n, []byte(n))
	}
	list := func(o ListOptions) string {
		t.Helper()
		es, more, err := f.svc.List(f.ctx, "p", "c", o)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			if e.Subdir != "" {
				out = append(out, "["+e.Subdir+"]")
			} else {
				out = append(out, e.Object.Name)
			}
		}
		s := strings.Join(out, ",")
		if more {
			s += ",..."
		}
		return s
	}
	tests := []struct {
		o    ListOptions
		want string
	}{
		{ListOptions{}, "a,b/1,b/2,b/c/3,c,d/1"},
		{ListOptions{Delimiter: "/"}, "a,[b/],c,[d/]"},
		{ListOptions{Prefix: "b/", Delimiter: "/"}, "b/1,b/2,[b/c/]"},
		{ListOptions{Prefix: "b/"}, "b/1,b/2,b/c/3"},
		{ListOptions{Marker: "b/1", Limit: 2}, "b/2,b/c/3,..."},
		{ListOptions{Marker: "b/", Delimiter: "/"}, "c,[d/]"},
		{ListOptions{Marker: "b/1", Delimiter: "/"}, "[b/],c,[d/]"},
		{ListOptions{EndMarker: "c"}, "a,b/1,b/2,b/c/3"},
		{ListOptions{Delimiter: "/", Limit: 2}, "a,[b/],..."},
		{ListOptions{Prefix: "zzz"}, ""},
	}
	for _, tt := range tests {
		if got := list(tt.o); got != tt.want {
			t.Errorf("%+v: got %s, want %s", tt.o, got, tt.want)
		}
	}
}

func TestMultipartUpload(t *testing.T) {
	f := newFixture(t, 6)
	f.container("p", "c")
	u, err := f.svc.CreateUpload(f.ctx, "p", "c", "big", Attrs{ContentType: "text/plain", Meta: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2 := random(MinPartSize), random(1234)
	var parts []CompletePart
	var sums []byte
	for i, data := range [][]byte{p1, p2} {
		up, err := f.svc.PutPart(f.ctx, u, i+1, bytes.NewReader(data), int64(len(data)), "")
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, CompletePart{Number: i + 1, ETag: `"` + up.Part.ETag + `"`})
		s := md5.Sum(data)
		sums = append(sums, s[:]...)
	}
	// An abandoned extra part is collected on completion.
	if _, err := f.svc.PutPart(f.ctx, u, 3, bytes.NewReader([]byte("unused")), 6, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CompleteUpload(f.ctx, u, []CompletePart{{Number: 2, ETag: parts[1].ETag}, {Number: 3, ETag: "x"}}); err == nil {
		t.Fatal("completion with a wrong etag succeeded")
	}
	small := []CompletePart{{Number: 3, ETag: parts[0].ETag}}
	if _, err := f.svc.CompleteUpload(f.ctx, u, small); err == nil {
		t.Fatal("completion with a mismatched etag succeeded")
	}
	o, err := f.svc.CompleteUpload(f.ctx, u, parts)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x-2", md5.Sum(sums))
	if o.ETag != want || o.Size != int64(len(p1)+len(p2)) {
		t.Fatalf("etag %s size %d, want %s %d", o.ETag, o.Size, want, len(p1)+len(p2))
	}
	got := f.get("p", "c", "big")
	if !bytes.Equal(got, append(append([]byte(nil), p1...), p2...)) {
		t.Fatal("multipart object reads back different bytes")
	}
	// A range across the part boundary.
	var buf bytes.Buffer
	if err := f.svc.Read(f.ctx, o, int64(len(p1))-10, 20, &buf); err != nil || !bytes.Equal(buf.Bytes(), append(p1[len(p1)-10:], p2[:10]...)) {
		t.Fatalf("range across parts: %v", err)
	}
	tx := f.local.Local()
	if g := store.All[Garbage](tx, tGarbage, "id"); len(g) != 1 || g[0].Part.Size != 6 {
		t.Fatalf("garbage after completion: %+v", g)
	}
	u2, _ := f.svc.CreateUpload(f.ctx, "p", "c", "aborted", Attrs{})
	f.svc.PutPart(f.ctx, u2, 1, bytes.NewReader([]byte("abc")), 3, "")
	if err := f.svc.AbortUpload(f.ctx, u2); err != nil {
		t.Fatal(err)
	}
	if ups, _ := f.svc.Uploads(f.ctx, "p", "c", ""); len(ups) != 0 {
		t.Fatalf("uploads left: %d", len(ups))
	}
}

func TestStaticLargeObject(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "segs")
	f.container("p", "c")
	a, b := random(3000), random(5000)
	oa := f.put("p", "segs", "a", a)
	f.put("p", "segs", "b", b)
	m, err := f.svc.PutManifest(f.ctx, "p", "c", "slo", []Segment{{Container: "segs", Name: "a", ETag: oa.ETag}, {Container: "segs", Name: "b"}}, Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != 8000 {
		t.Fatalf("manifest size %d", m.Size)
	}
	if got := f.get("p", "c", "slo"); !bytes.Equal(got, append(append([]byte(nil), a...), b...)) {
		t.Fatal("SLO reads back different bytes")
	}
	if _, err := f.svc.PutManifest(f.ctx, "p", "c", "bad", []Segment{{Container: "segs", Name: "a", ETag: "nope"}}, Attrs{}); err == nil {
		t.Fatal("manifest with a wrong segment etag accepted")
	}
	if _, err := f.svc.PutManifest(f.ctx, "p", "c", "bad", []Segment{{Container: "segs", Name: "missing"}}, Attrs{}); err == nil {
		t.Fatal("manifest with a missing segment accepted")
	}
}

func TestCorruptShardIsHealed(t *testing.T) {
	f := newFixture(t, 6)
	f.container("p", "c")
	data := random(40_000)
	o := f.put("p", "c", "x", data)
	p := o.Parts[0]
	// Flip a byte in two shards (m = 2).
	for _, i := range []int{0, 3} {
		path := filepath.Join(f.disks[p.Layout.Disks[i].ID].Path(), "shards", p.Blob[:2], blob.ShardName(p.Blob, i))
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		raw[100] ^= 0xff
		os.WriteFile(path, raw, 0o600)
	}
	if got := f.get("p", "c", "x"); !bytes.Equal(got, data) {
		t.Fatal("degraded read returned wrong bytes")
	}
	waitFor(t, func() bool { return len(store.All[HealItem](f.local.Local(), tHeal, "id")) == 1 })
	f.svc.healQueued(f.ctx)
	if bad, err := f.svc.blobs.Verify(f.ctx, p.Blob, p.Layout, p.Size); err != nil || len(bad) != 0 {
		t.Fatalf("after heal: bad %v err %v", bad, err)
	}
	if n := len(store.All[HealItem](f.local.Local(), tHeal, "id")); n != 0 {
		t.Fatalf("heal queue still has %d", n)
	}
}

func TestScrubFindsCorruption(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	o := f.put("p", "c", "x", random(10_000))
	p := o.Parts[0]
	path := filepath.Join(f.disks[p.Layout.Disks[1].ID].Path(), "shards", p.Blob[:2], blob.ShardName(p.Blob, 1))
	os.Remove(path)
	f.svc.scrubSome(f.ctx, &scrubber{})
	if n := len(store.All[HealItem](f.local.Local(), tHeal, "id")); n != 1 {
		t.Fatalf("scrub queued %d heals, want 1", n)
	}
	f.svc.healQueued(f.ctx)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("missing shard not rebuilt: %v", err)
	}
}

func TestRebalanceOntoNewDisksAndOffGoneOnes(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	want := map[string][]byte{}
	for i := 0; i < 30; i++ {
		name := fmt.Sprintf("o%02d", i)
		want[name] = random(2000 + i*300)
		f.put("p", "c", name, want[name])
	}
	// Three more disks: placement now spreads over six, so some shards
	// must move (the coding of old objects stays 2+1).
	for i := 0; i < 3; i++ {
		f.addDisk()
	}
	f.svc.RegisterDisks(f.ctx)
	st, _ := f.svc.Status(f.ctx)
	if st.Misplaced == 0 {
		t.Fatal("no part misplaced after adding disks")
	}
	f.svc.repairPass(f.ctx)
	f.svc.collectGarbage(f.ctx)
	st, _ = f.svc.Status(f.ctx)
	if st.Misplaced != 0 || st.Moved == 0 {
		t.Fatalf("after a pass: %d misplaced, %d moved", st.Misplaced, st.Moved)
	}
	for name, data := range want {
		if got := f.get("p", "c", name); !bytes.Equal(got, data) {
			t.Fatalf("%s differs after rebalance", name)
		}
	}
	perDisk := map[string]int{}
	for _, d := range st.Disks {
		perDisk[d.ID] = d.Shards
		if d.Shards == 0 {
			t.Fatalf("disk %s holds nothing after rebalance", d.Path)
		}
	}
	// Shard files on disk match what the metadata says.
	if n := f.shardFiles(); n != 30*3 {
		t.Fatalf("%d shard files, want %d", n, 30*3)
	}
	// Now a disk is wiped and replaced: it comes back as a new disk and
	// the old one is gone. Its shards are rebuilt on the others.
	goneID := f.rows[0].ID
	os.RemoveAll(f.dirs[0])
	delete(f.disks, goneID)
	f.rows = f.rows[1:]
	f.addDisk()
	f.svc.RegisterDisks(f.ctx)
	st, _ = f.svc.Status(f.ctx)
	if perDisk[goneID] > 0 && st.Degraded == 0 {
		t.Fatal("no part degraded after losing a disk")
	}
	f.svc.repairPass(f.ctx)
	st, _ = f.svc.Status(f.ctx)
	if st.Degraded != 0 || st.Misplaced != 0 {
		t.Fatalf("after repair: %d degraded, %d misplaced", st.Degraded, st.Misplaced)
	}
	for name, data := range want {
		o, _ := f.svc.Head(f.ctx, "p", "c", name)
		if bad, err := f.svc.blobs.Verify(f.ctx, o.Parts[0].Blob, o.Parts[0].Layout, o.Size); err != nil || len(bad) > 0 {
			t.Fatalf("%s: bad shards %v after repair (%v)", name, bad, err)
		}
		if got := f.get("p", "c", name); !bytes.Equal(got, data) {
			t.Fatalf("%s differs after repair", name)
		}
	}
}

func TestEveryCommandSurvivesSnapshot(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	f.container("p", "gone")
	f.svc.DeleteContainer(f.ctx, "p", "gone")
	if err := f.svc.SetAccountMeta(f.ctx, "p", map[string]string{"quota": "none"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.svc.Account(f.ctx, "p"); a.Meta["quota"] != "none" {
		t.Fatalf("account meta %v", a.Meta)
	}
	f.put("p", "c", "a", []byte("hello"))
	o := f.put("p", "c", "a", []byte("hello again"))
	f.svc.SetMeta(f.ctx, o, Attrs{Meta: map[string]string{"color": "blue"}})
	if _, err := f.svc.SetTags(f.ctx, "p", "c", "a", map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	f.put("p", "c", "b", []byte("bye"))
	f.svc.Delete(f.ctx, "p", "c", "b")
	// Logs written before versioning hold the plain delete command.
	f.put("p", "c", "b2", []byte("bye"))
	f.svc.repl.Propose(f.ctx, cmdObjectDelete, idCmd{ID: objectID("p", "c", "b2"), Now: time.Now()})
	// Versions and delete markers survive a snapshot too.
	f.container("p", "v")
	if err := f.svc.SetVersioning(f.ctx, "p", "v", VersioningEnabled); err != nil {
		t.Fatal(err)
	}
	v1 := f.put("p", "v", "k", []byte("one"))
	f.put("p", "v", "k", []byte("two"))
	f.svc.Delete(f.ctx, "p", "v", "k")
	if _, err := f.svc.Remove(f.ctx, "p", "v", "k", v1.VersionID); err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.InlineMax = DefaultInlineMax
	if o := f.put("p", "c", "inline", []byte("small")); !o.Parts[0].Inline {
		t.Fatal("a small object was not stored inline")
	}
	f.svc.cfg.InlineMax = -1
	u, _ := f.svc.CreateUpload(f.ctx, "p", "c", "mp", Attrs{})
	pt, _ := f.svc.PutPart(f.ctx, u, 1, bytes.NewReader([]byte("part")), 4, "")
	f.svc.CompleteUpload(f.ctx, u, []CompletePart{{Number: 1, ETag: pt.Part.ETag}})
	u2, _ := f.svc.CreateUpload(f.ctx, "p", "c", "mp2", Attrs{})
	f.svc.AbortUpload(f.ctx, u2)
	f.svc.Put(f.ctx, "p", "c", "expired", bytes.NewReader([]byte("x")), PutOptions{Size: 1, Attrs: Attrs{Headers: map[string]string{DeleteAtHeader: FormatDeleteAt(1)}}})
	f.svc.expireObjects(f.ctx)
	f.svc.collectGarbage(f.ctx)
	f.svc.repl.Propose(f.ctx, cmdHealAdd, healAddCmd{Items: []HealItem{{ID: "x", Object: "y"}}})
	f.svc.healQueued(f.ctx)
	// A part is relocated only if the new disks change its placement,
	// which for one part of a few is left to chance (about 1 in 20 each
	// with three new disks): enough parts make a relocation certain in
	// practice.
	for i := range 8 {
		f.put("p", "c", fmt.Sprintf("moved%d", i), []byte("to be moved"))
	}
	f.addDisk()
	f.addDisk()
	f.addDisk()
	f.svc.RegisterDisks(f.ctx)
	f.svc.repairPass(f.ctx)
	// Container sync: the queue, a scan step, an ack, synced writes.
	f.setSync("p", "c", "//r/cl/AUTH_q/d", "k")
	if st := f.syncState("p", "c"); st != nil {
		f.svc.ScanSync(f.ctx, *st, 2)
		f.svc.AckSync(f.ctx, *st, 1, []uint64{1})
	}
	f.container("p", "synced")
	at := time.Now().UTC().Add(-time.Minute).Round(10 * time.Microsecond)
	f.svc.Put(f.ctx, "p", "synced", "s", bytes.NewReader([]byte("s")), PutOptions{Size: 1, Synced: at})
	f.svc.DeleteSynced(f.ctx, "p", "synced", "s", at.Add(time.Second))
	store.EveryCommandSurvivesSnapshot(t, f.local, Schema(), eventstate.Schema())
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met in 5s")
}

func TestWipedDiskIsRefilled(t *testing.T) {
	f := newFixture(t, 6)
	f.container("p", "c")
	want := map[string][]byte{}
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("o%d", i)
		want[name] = random(5000 + i)
		f.put("p", "c", name, want[name])
	}
	before, _ := f.disks[f.rows[4].ID].List()
	os.RemoveAll(f.dirs[4])
	var wiped []string
	f.svc.cfg.Wiped = func() []string {
		out := wiped
		wiped = nil
		return out
	}
	for id, d := range f.disks {
		if w, _ := d.(*disk.Dir).Check(); w {
			wiped = append(wiped, id)
		}
	}
	f.svc.healWiped(f.ctx)
	if n := len(store.All[HealItem](f.local.Local(), tHeal, "id")); n != len(before) {
		t.Fatalf("%d heals queued for a disk that held %d shards", n, len(before))
	}
	f.svc.healQueued(f.ctx)
	after, _ := f.disks[f.rows[4].ID].List()
	if len(after) != len(before) {
		t.Fatalf("wiped disk holds %d shards after healing, had %d", len(after), len(before))
	}
}

// The scrubber lists its pass at the start; a blob deleted meanwhile (its
// shards removed by the collector) is not damage.
func TestScrubSkipsBlobsDeletedDuringThePass(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	for _, name := range []string{"a", "b"} {
		f.put("p", "c", name, random(10_000))
	}
	sc := &scrubber{}
	f.svc.scrubSome(f.ctx, sc) // one part per tick: the other waits
	if len(sc.queue) != 1 {
		t.Fatalf("scrub queue %d, want 1 left", len(sc.queue))
	}
	tx, _ := f.svc.read(f.ctx)
	var name string
	for _, o := range store.All[Object](tx, tObjects, "id") {
		if o.ID == sc.queue[0].object {
			name = o.Name
		}
	}
	if err := f.svc.Delete(f.ctx, "p", "c", name); err != nil {
		t.Fatal(err)
	}
	f.svc.collectGarbage(f.ctx)
	f.svc.scrubSome(f.ctx, sc)
	st, err := f.svc.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Scrubbed != 2 || st.ScrubErrors != 0 || st.HealQueue != 0 {
		t.Fatalf("scrubbed %d, bad shards %d, heal queue %d: want 2, 0, 0", st.Scrubbed, st.ScrubErrors, st.HealQueue)
	}
}

// removeShards deletes shards i of a part from their disks.
func (f *fixture) removeShards(p Part, shards ...int) {
	f.t.Helper()
	for _, i := range shards {
		path := filepath.Join(f.disks[p.Layout.Disks[i].ID].Path(), "shards", p.Blob[:2], blob.ShardName(p.Blob, i))
		if err := os.Remove(path); err != nil {
			f.t.Fatal(err)
		}
	}
}

// A blob that cannot be rebuilt is retried later and later, logged at WARN
// once, counted, and shown in the status.
func TestHealBacksOffAHopelessBlob(t *testing.T) {
	f := newFixture(t, 3)
	var logs bytes.Buffer
	f.svc.log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.svc.cfg.Now = func() time.Time { return now }
	f.container("p", "c")
	o := f.put("p", "c", "x", random(10_000))
	p := o.Parts[0]
	f.removeShards(p, 0, 1) // beyond what 2+1 tolerates
	f.svc.proposeHeal(f.ctx, o.ID, p.Blob)

	attempts := func() int64 { return f.svc.Counters().HealFailures }
	f.svc.healQueued(f.ctx)
	if attempts() != 1 {
		t.Fatalf("failures after the first try: %d", attempts())
	}
	// Tried again only once its delay has passed, each delay longer.
	for _, wait := range []time.Duration{healRetryMin, 2 * healRetryMin, 4 * healRetryMin} {
		before := attempts()
		now = now.Add(wait - time.Millisecond)
		f.svc.healQueued(f.ctx)
		if attempts() != before {
			t.Fatalf("retried before its %v delay passed", wait)
		}
		now = now.Add(time.Millisecond)
		f.svc.healQueued(f.ctx)
		if attempts() != before+1 {
			t.Fatalf("not retried after %v", wait)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d WARN lines for one hopeless blob, want 1:\n%s", n, logs.String())
	}
	st, err := f.svc.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.HealBackoff) != 1 || st.HealBackoff[0].Blob != p.Blob || st.HealBackoff[0].Failures != 4 ||
		st.HealBackoff[0].Object != "p/c/x" || st.HealBackoff[0].Reason == "" || !st.HealBackoff[0].NextTry.Equal(now.Add(8*healRetryMin)) {
		t.Errorf("status backoff %+v", st.HealBackoff)
	}
	if st.HealFailures != 4 || st.HealQueue != 1 {
		t.Errorf("status heal failures %d, queue %d", st.HealFailures, st.HealQueue)
	}
	// Deleted, the blob leaves the queue and the backoff.
	if err := f.svc.Delete(f.ctx, "p", "c", "x"); err != nil {
		t.Fatal(err)
	}
	f.svc.healQueued(f.ctx)
	if b := f.svc.Counters().HealBackoff; len(b) != 0 {
		t.Errorf("backoff after delete: %+v", b)
	}
}

func TestHealDelayIsCapped(t *testing.T) {
	for n, want := range map[int]time.Duration{1: healRetryMin, 2: 2 * healRetryMin, 3: 4 * healRetryMin, 50: healRetryMax, 1000: healRetryMax} {
		if got := healDelay(n); got != want {
			t.Errorf("healDelay(%d) = %v, want %v", n, got, want)
		}
	}
}

// Status sums the counters of every node, says which did not answer, and
// counts each filesystem's space once.
func TestStatusIsClusterWide(t *testing.T) {
	f := newFixture(t, 3)
	for i := range f.rows {
		f.rows[i].Total, f.rows[i].Free, f.rows[i].FS = 100, 40, "dev-1" // one filesystem
	}
	if err := f.svc.RegisterDisks(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.Peers = func(context.Context) []NodeCounters {
		return []NodeCounters{
			{Node: "n2", Counters: Counters{Scrubbed: 5, Healed: 2, HealBackoff: []HealRetry{{Blob: "b1", Node: "n2", Failures: 3}}}},
			{Node: "n3", Err: "node is down"},
		}
	}
	f.container("p", "c")
	f.put("p", "c", "x", random(100))
	f.svc.scrubSome(f.ctx, &scrubber{})
	st, err := f.svc.Status(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Scrubbed != 6 || st.Healed != 2 || len(st.HealBackoff) != 1 {
		t.Errorf("totals scrubbed %d healed %d backoff %v, want 6, 2 and n2's blob", st.Scrubbed, st.Healed, st.HealBackoff)
	}
	var names []string
	for _, n := range st.Nodes {
		names = append(names, n.Node+":"+n.Err)
	}
	if got := strings.Join(names, ","); got != "n1:,n2:,n3:node is down" {
		t.Errorf("nodes %s", got)
	}
	if st.Capacity != (Capacity{Total: 100, Free: 40, Filesystems: 1}) {
		t.Errorf("capacity of three directories on one filesystem: %+v", st.Capacity)
	}
}

func TestCapacityCountsEachFilesystemOnce(t *testing.T) {
	disk := func(node, id, fs string, total uint64, gone bool) DiskStatus {
		return DiskStatus{Disk: objectapi.Disk{ID: id, Node: node, FS: fs, Total: total, Free: total / 2, Gone: gone}}
	}
	got := capacity([]DiskStatus{
		disk("n1", "a", "dev-1", 100, false),
		disk("n1", "b", "dev-1", 100, false), // same filesystem as a
		disk("n1", "c", "dev-2", 50, false),
		disk("n2", "d", "dev-1", 100, false), // another node's device 1
		disk("n2", "e", "", 10, false),       // unknown: its own
		disk("n2", "f", "", 10, false),
		disk("n2", "g", "dev-9", 1000, true), // gone
	})
	if want := (Capacity{Total: 270, Free: 135, Filesystems: 5}); got != want {
		t.Errorf("capacity %+v, want %+v", got, want)
	}
}

// Every background loop yields to clients: while this node serves an
// object read or write, the healer, the scrubber and the repair pass
// together move no more than BusyRate, so after the first blob the next
// waits (the healer paces stripe by stripe: its first blob's second
// stripe waits); with nothing in flight each does all of its work at once.
func TestBackgroundWorkYieldsToClients(t *testing.T) {
	// Each case readies two blobs of work for its loop, runs one pass of
	// it and counts the blobs done.
	loops := map[string]struct {
		prepare  func(f *fixture)
		run      func(f *fixture, ctx context.Context)
		done     func(f *fixture) int
		busyDone int // blobs done while a client is served
	}{
		"heal": {
			busyDone: 0, // two stripes each (MaxShard 4096, k=2)
			prepare: func(f *fixture) {
				for _, name := range []string{"x", "y"} {
					p := f.put("p", "c", name, random(10_000)).Parts[0]
					f.removeShards(p, 1)
					f.svc.proposeHeal(f.ctx, objectID("p", "c", name), p.Blob)
				}
			},
			run: func(f *fixture, ctx context.Context) { f.svc.healQueued(ctx) },
			done: func(f *fixture) int {
				f.svc.maint.mu.Lock()
				defer f.svc.maint.mu.Unlock()
				return int(f.svc.maint.healed)
			},
		},
		"scrub": {
			prepare: func(f *fixture) {
				f.svc.cfg.ScrubEvery = time.Second // every part in one tick
				f.put("p", "c", "x", random(10_000))
				f.put("p", "c", "y", random(10_000))
			},
			busyDone: 1,
			run:      func(f *fixture, ctx context.Context) { f.svc.scrubSome(ctx, &scrubber{}) },
			done: func(f *fixture) int {
				f.svc.maint.mu.Lock()
				defer f.svc.maint.mu.Unlock()
				return int(f.svc.maint.scrubbed)
			},
		},
		"repair": {
			prepare: func(f *fixture) {
				f.svc.cfg.RebalanceRate = 1 << 40 // only BusyRate holds it back
				for i := 0; i < 20; i++ {
					f.put("p", "c", fmt.Sprint("o", i), random(10_000))
				}
				for i := 0; i < 3; i++ {
					f.addDisk()
				}
				f.svc.RegisterDisks(f.ctx)
				if st, _ := f.svc.Status(f.ctx); st.Misplaced < 2 {
					f.t.Fatalf("%d parts misplaced after adding disks, want 2 or more", st.Misplaced)
				}
			},
			busyDone: 1,
			run:      func(f *fixture, ctx context.Context) { f.svc.repairPass(ctx) },
			done: func(f *fixture) int {
				f.svc.maint.mu.Lock()
				defer f.svc.maint.mu.Unlock()
				return min(int(f.svc.maint.moved), 2)
			},
		},
	}
	for name, loop := range loops {
		for _, busy := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/busy=%v", name, busy), func(t *testing.T) {
				f := newFixture(t, 3)
				f.svc.cfg.BusyRate = 1 // byte per second: paced work waits past the test
				f.container("p", "c")
				loop.prepare(f)
				f.svc.clients.lastEnd.Store(0) // the PUTs above ended long ago
				if busy {
					end := f.svc.clients.begin() // a client read in flight
					defer end()
				}
				// The pass runs until what it may do unpaced is done
				// (however slowly a loaded machine gets there), then a
				// moment more in which paced work would show up, and is
				// then stopped: paced work waits past the test.
				want := map[bool]int{false: 2, true: loop.busyDone}[busy]
				ctx, cancel := context.WithCancel(f.ctx)
				ran := make(chan struct{})
				go func() { defer close(ran); loop.run(f, ctx) }()
				for deadline := time.Now().Add(20 * time.Second); loop.done(f) < want && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				select {
				case <-ran:
				case <-time.After(300 * time.Millisecond):
				}
				cancel()
				<-ran
				if got := loop.done(f); got != want {
					t.Errorf("%d blobs done in one pass, want %d", got, want)
				}
			})
		}
	}
}

// A client request counts as load for a moment after it ends, so a
// client reading one object after another does not look idle between
// them; long after, the node is idle.
func TestClientLoadLingers(t *testing.T) {
	var l clientLoad
	if l.busy() {
		t.Fatal("busy before any request")
	}
	end := l.begin()
	if !l.busy() {
		t.Fatal("idle with a request in flight")
	}
	end()
	if !l.busy() {
		t.Fatal("idle right after a request ended")
	}
	l.lastEnd.Store(time.Now().Add(-2 * loadLinger).UnixNano())
	if l.busy() {
		t.Fatal("busy long after the last request ended")
	}
}

// While a client request is in flight the background loops get a quarter
// of BusyRate, and BusyRate in the second after one ended: a degraded
// read must not share the disks evenly with the heal it caused. The wait
// each schedules is checked, not measured.
func TestBackgroundWorkGivesWayToRequestsInFlight(t *testing.T) {
	s := &Service{cfg: Config{BusyRate: 4 << 20}}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	owed := func() time.Duration {
		t.Helper()
		s.clients.mu.Lock()
		s.clients.next = time.Time{}
		s.clients.mu.Unlock()
		start := time.Now()
		s.backOff(cancelled, start, 1<<20)
		s.clients.mu.Lock()
		defer s.clients.mu.Unlock()
		return s.clients.next.Sub(start)
	}
	end := s.clients.begin()
	if got, want := owed(), time.Second; got != want {
		t.Errorf("1 MiB with a request in flight is owed %v, want %v (a quarter of 4 MiB/s)", got, want)
	}
	end()
	if got, want := owed(), 250*time.Millisecond; got != want {
		t.Errorf("1 MiB just after a request is owed %v, want %v (4 MiB/s)", got, want)
	}
}
