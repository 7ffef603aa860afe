package object

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	"github.com/rackstack/rackstack/fabric/store"
)

func TestObjectTags(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	o := f.put("p", "c", "a", []byte("hello"))
	tags := map[string]string{"k": "v", "e": ""}
	if _, err := f.svc.SetTags(f.ctx, "p", "c", "a", tags); err != nil {
		t.Fatal(err)
	}
	head := func(name string) *Object {
		t.Helper()
		o, err := f.svc.Head(f.ctx, "p", "c", name)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	if got := head("a").Tags; !maps.Equal(got, tags) {
		t.Fatalf("tags %v, want %v", got, tags)
	}
	// A metadata update keeps them; the bytes are untouched.
	if _, err := f.svc.SetMeta(f.ctx, head("a"), Attrs{Meta: map[string]string{"m": "1"}}); err != nil {
		t.Fatal(err)
	}
	if got := head("a"); !maps.Equal(got.Tags, tags) || got.Version != o.Version || !bytes.Equal(f.get("p", "c", "a"), []byte("hello")) {
		t.Fatalf("after SetMeta: tags %v version %s (was %s)", got.Tags, got.Version, o.Version)
	}
	// None removes them.
	if _, err := f.svc.SetTags(f.ctx, "p", "c", "a", nil); err != nil || head("a").Tags != nil {
		t.Fatalf("after removing: %v (%v)", head("a").Tags, err)
	}
	// A new object under the name brings its own.
	f.svc.SetTags(f.ctx, "p", "c", "a", tags)
	f.put("p", "c", "a", []byte("new bytes"))
	if got := head("a").Tags; got != nil {
		t.Fatalf("an overwrite kept the old tags: %v", got)
	}
	if _, err := f.svc.SetTags(f.ctx, "p", "c", "missing", tags); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tagging a missing object: %v", err)
	}
	// An expired object is gone for tagging too.
	f.svc.Put(f.ctx, "p", "c", "old", bytes.NewReader([]byte("x")), PutOptions{Size: 1, Attrs: Attrs{Headers: map[string]string{DeleteAtHeader: FormatDeleteAt(1)}}})
	if _, err := f.svc.SetTags(f.ctx, "p", "c", "old", tags); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tagging an expired object: %v", err)
	}
	// Tags given to an upload are the completed object's.
	u, err := f.svc.CreateUpload(f.ctx, "p", "c", "mp", Attrs{Tags: map[string]string{"stage": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := f.svc.PutPart(f.ctx, u, 1, bytes.NewReader([]byte("part")), 4, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CompleteUpload(f.ctx, u, []CompletePart{{Number: 1, ETag: pt.Part.ETag}}); err != nil {
		t.Fatal(err)
	}
	if got := head("mp").Tags; got["stage"] != "1" || len(got) != 1 {
		t.Fatalf("completed upload's tags: %v", got)
	}
}

func TestCopyPart(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	src := f.put("p", "c", "src", []byte("0123456789"))
	u, err := f.svc.CreateUpload(f.ctx, "p", "c", "dst", Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.CopyPart(f.ctx, u, 1, src, 3, 4)
	if err != nil || p.Part.Size != 4 || p.Part.ETag != md5Hex([]byte("3456")) {
		t.Fatalf("CopyPart: %+v, %v", p, err)
	}
	if _, err := f.svc.CopyPart(f.ctx, u, 2, src, 8, 3); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a range past the source's end: %v", err)
	}
	if _, err := f.svc.CompleteUpload(f.ctx, u, []CompletePart{{Number: 1, ETag: p.Part.ETag}}); err != nil {
		t.Fatal(err)
	}
	if got := f.get("p", "c", "dst"); string(got) != "3456" {
		t.Fatalf("object of the copied part: %q", got)
	}
}
