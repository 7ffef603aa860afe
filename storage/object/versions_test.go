package object

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

func (f *fixture) versioning(project, container, status string) {
	f.t.Helper()
	if err := f.svc.SetVersioning(f.ctx, project, container, status); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) readVersion(project, container, name, version string) []byte {
	f.t.Helper()
	o, err := f.svc.HeadVersion(f.ctx, project, container, name, version)
	if err != nil {
		f.t.Fatalf("head %s?%s: %v", name, version, err)
	}
	var buf bytes.Buffer
	if err := f.svc.Read(f.ctx, o, 0, o.Size, &buf); err != nil {
		f.t.Fatalf("read %s?%s: %v", name, version, err)
	}
	return buf.Bytes()
}

// versionsOf lists the versions of every name as "name:version:flags"
// (L latest, D delete marker), paging one entry at a time so that the
// markers are exercised too.
func (f *fixture) versionsOf(project, container string) []string {
	f.t.Helper()
	var out []string
	var o VersionListOptions
	for i := 0; ; i++ {
		o.Limit = 1
		es, more, err := f.svc.ListVersions(f.ctx, project, container, o)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, e := range es {
			s := e.Object.Name + ":" + ShownVersion(e.Object.VersionID) + ":"
			if e.IsLatest {
				s += "L"
			}
			if e.Object.DeleteMarker {
				s += "D"
			}
			out = append(out, s)
			o.KeyMarker, o.VersionMarker = e.Object.Name, ShownVersion(e.Object.VersionID)
		}
		if !more {
			return out
		}
		if i > 100 {
			f.t.Fatal("listing does not end")
		}
	}
}

func (f *fixture) usage(project, container string) string {
	f.t.Helper()
	c, err := f.svc.Container(f.ctx, project, container)
	if err != nil {
		f.t.Fatal(err)
	}
	return fmt.Sprintf("%d/%d+%d/%d", c.Objects, c.Bytes, c.VersionObjects, c.VersionBytes)
}

func same(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func TestVersioningEnabled(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	// Written before versioning: the null version.
	f.put("p", "c", "k", []byte("zero"))
	f.versioning("p", "c", VersioningEnabled)
	v1 := f.put("p", "c", "k", []byte("one!"))
	v2 := f.put("p", "c", "k", []byte("two!!"))
	if v1.VersionID == "" || v2.VersionID == "" || v1.VersionID == v2.VersionID || v2.VersionID > v1.VersionID {
		t.Fatalf("version ids %q %q (newer ones sort first)", v1.VersionID, v2.VersionID)
	}
	if got := f.get("p", "c", "k"); string(got) != "two!!" {
		t.Fatalf("current %q", got)
	}
	for v, want := range map[string]string{NullVersion: "zero", v1.VersionID: "one!", v2.VersionID: "two!!"} {
		if got := f.readVersion("p", "c", "k", v); string(got) != want {
			t.Fatalf("version %s: %q, want %q", v, got, want)
		}
	}
	same(t, "versions", f.versionsOf("p", "c"), []string{"k:" + v2.VersionID + ":L", "k:" + v1.VersionID + ":", "k:null:"})
	if u := f.usage("p", "c"); u != "1/5+2/8" {
		t.Fatalf("usage %s", u)
	}

	// A delete writes a marker: the name reads as deleted, its versions stay.
	rm, err := f.svc.Remove(f.ctx, "p", "c", "k", "")
	if err != nil || !rm.DeleteMarker || rm.VersionID == NullVersion {
		t.Fatalf("delete: %+v %v", rm, err)
	}
	var del *DeletedError
	if _, err := f.svc.Head(f.ctx, "p", "c", "k"); !errors.As(err, &del) || del.VersionID != rm.VersionID || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("head of a deleted name: %v", err)
	}
	if es, _, _ := f.svc.List(f.ctx, "p", "c", ListOptions{}); len(es) != 0 {
		t.Fatalf("listing shows a deleted object: %v", es)
	}
	same(t, "after delete", f.versionsOf("p", "c"), []string{"k:" + rm.VersionID + ":LD", "k:" + v2.VersionID + ":", "k:" + v1.VersionID + ":", "k:null:"})
	if u := f.usage("p", "c"); u != "0/0+3/13" {
		t.Fatalf("usage %s", u)
	}
	if err := f.svc.DeleteContainer(f.ctx, "p", "c"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete of a container holding versions: %v", err)
	}

	// Removing the marker brings v2 back.
	if rm2, err := f.svc.Remove(f.ctx, "p", "c", "k", rm.VersionID); err != nil || !rm2.DeleteMarker {
		t.Fatalf("remove marker: %+v %v", rm2, err)
	}
	if got := f.get("p", "c", "k"); string(got) != "two!!" {
		t.Fatalf("after the marker went: %q", got)
	}
	// Removing the current version for good promotes v1 and frees v2's blob.
	garbage := len(store.All[Garbage](f.tx(), tGarbage, "id"))
	if _, err := f.svc.Remove(f.ctx, "p", "c", "k", v2.VersionID); err != nil {
		t.Fatal(err)
	}
	if n := len(store.All[Garbage](f.tx(), tGarbage, "id")); n != garbage+1 {
		t.Fatalf("garbage %d -> %d, want one more blob", garbage, n)
	}
	if got := f.get("p", "c", "k"); string(got) != "one!" {
		t.Fatalf("after removing the current version: %q", got)
	}
	same(t, "after removals", f.versionsOf("p", "c"), []string{"k:" + v1.VersionID + ":L", "k:null:"})
	if _, err := f.svc.Remove(f.ctx, "p", "c", "k", v2.VersionID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing a removed version: %v", err)
	}
	for _, v := range []string{v1.VersionID, NullVersion} {
		if _, err := f.svc.Remove(f.ctx, "p", "c", "k", v); err != nil {
			t.Fatal(err)
		}
	}
	if u := f.usage("p", "c"); u != "0/0+0/0" {
		t.Fatalf("usage %s", u)
	}
	if err := f.svc.DeleteContainer(f.ctx, "p", "c"); err != nil {
		t.Fatalf("delete of the emptied container: %v", err)
	}
}

func (f *fixture) tx() *memdb.Txn {
	tx, err := f.svc.read(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return tx
}

func TestVersioningSuspended(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	f.versioning("p", "c", VersioningEnabled)
	v1 := f.put("p", "c", "k", []byte("one"))
	f.versioning("p", "c", VersioningSuspended)
	n1 := f.put("p", "c", "k", []byte("null1"))
	if n1.VersionID != "" {
		t.Fatalf("a write while suspended has version %q", n1.VersionID)
	}
	garbage := len(store.All[Garbage](f.tx(), tGarbage, "id"))
	f.put("p", "c", "k", []byte("null2"))
	if n := len(store.All[Garbage](f.tx(), tGarbage, "id")); n != garbage+1 {
		t.Fatalf("the replaced null version's blob was not collected: %d -> %d", garbage, n)
	}
	same(t, "suspended", f.versionsOf("p", "c"), []string{"k:null:L", "k:" + v1.VersionID + ":"})
	// A delete while suspended: a null marker replaces the null version.
	rm, err := f.svc.Remove(f.ctx, "p", "c", "k", "")
	if err != nil || rm.VersionID != NullVersion || !rm.DeleteMarker {
		t.Fatalf("delete while suspended: %+v %v", rm, err)
	}
	same(t, "suspended delete", f.versionsOf("p", "c"), []string{"k:null:LD", "k:" + v1.VersionID + ":"})
	// Enabled again: the null marker stays a version like the others.
	f.versioning("p", "c", VersioningEnabled)
	v3 := f.put("p", "c", "k", []byte("three"))
	same(t, "re-enabled", f.versionsOf("p", "c"), []string{"k:" + v3.VersionID + ":L", "k:null:D", "k:" + v1.VersionID + ":"})
	if u := f.usage("p", "c"); u != "1/5+1/3" {
		t.Fatalf("usage %s", u)
	}
}

func TestVersionsListingDelimiterAndProjects(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	f.container("other", "c")
	f.versioning("p", "c", VersioningEnabled)
	f.versioning("other", "c", VersioningEnabled)
	f.put("p", "c", "a", []byte("1"))
	f.put("p", "c", "a", []byte("2"))
	f.put("p", "c", "d/x", []byte("3"))
	f.put("p", "c", "d/y", []byte("4"))
	f.svc.Delete(f.ctx, "p", "c", "e")
	es, more, err := f.svc.ListVersions(f.ctx, "p", "c", VersionListOptions{Delimiter: "/"})
	if err != nil || more {
		t.Fatal(err, more)
	}
	var got []string
	for _, e := range es {
		if e.Subdir != "" {
			got = append(got, e.Subdir)
		} else {
			got = append(got, e.Object.Name)
		}
	}
	same(t, "delimited", got, []string{"a", "a", "d/", "e"})
	es, _, _ = f.svc.ListVersions(f.ctx, "p", "c", VersionListOptions{Prefix: "d/", KeyMarker: "d/x"})
	if len(es) != 1 || es[0].Object.Name != "d/y" {
		t.Fatalf("prefix+key-marker: %v", es)
	}
	// Another project's container of the same name sees none of them.
	if es, _, _ := f.svc.ListVersions(f.ctx, "other", "c", VersionListOptions{}); len(es) != 0 {
		t.Fatalf("another project sees %d versions", len(es))
	}
	v, _ := f.svc.Head(f.ctx, "p", "c", "a")
	if _, err := f.svc.HeadVersion(f.ctx, "other", "c", "a", v.VersionID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another project reads a version: %v", err)
	}
	if _, err := f.svc.Remove(f.ctx, "other", "c", "a", v.VersionID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another project removes a version: %v", err)
	}
}

func TestNoncurrentVersionsKeepTheirBlobs(t *testing.T) {
	f := newFixture(t, 3)
	f.container("p", "c")
	f.versioning("p", "c", VersioningEnabled)
	old := f.put("p", "c", "k", random(10_000))
	f.put("p", "c", "k", random(10))
	named := map[string]bool{}
	for _, pp := range f.svc.partsOf(f.tx()) {
		named[pp.part.Blob] = true
	}
	if !named[old.Parts[0].Blob] {
		t.Fatal("a noncurrent version's blob is not among the parts the maintenance keeps (the orphan sweep would delete it)")
	}
	// The orphan sweep, past its grace, leaves the noncurrent version whole.
	f.svc.cfg.OrphanGrace = 0
	for range 2 {
		if err := f.svc.sweepOrphans(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.readVersion("p", "c", "k", old.VersionID); len(got) != 10_000 {
		t.Fatalf("noncurrent version read %d bytes", len(got))
	}
}

func TestVersioningAndLegacyVersionsExclude(t *testing.T) {
	f := newFixture(t, 3)
	if _, err := f.svc.PutContainer(f.ctx, Container{Project: "p", Name: "c", Versions: "archive", VersionsMode: VersionsStack}, true); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetVersioning(f.ctx, "p", "c", VersioningEnabled); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("versioning on a legacy-versioned container: %v", err)
	}
	f.container("p", "d")
	f.versioning("p", "d", VersioningSuspended)
	if err := f.svc.UpdateContainer(f.ctx, Container{Project: "p", Name: "d", Versions: "archive", VersionsMode: VersionsStack}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("legacy versions on a versioned container: %v", err)
	}
	// A metadata write that does not name the state keeps it.
	if err := f.svc.UpdateContainer(f.ctx, Container{Project: "p", Name: "d", Meta: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.svc.Container(f.ctx, "p", "d"); c.Versioning != VersioningSuspended {
		t.Fatalf("versioning %q after a metadata write", c.Versioning)
	}
	if err := f.svc.SetVersioning(f.ctx, "p", "d", "On"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	// A container never versioned has only the null version.
	f.container("p", "plain")
	f.put("p", "plain", "k", []byte("x"))
	if _, err := f.svc.HeadVersion(f.ctx, "p", "plain", "k", "0123456789abcdef"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("another version in an unversioned container: %v", err)
	}
	if _, err := f.svc.Remove(f.ctx, "p", "plain", "k", "0123456789abcdef"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("removing another version in an unversioned container: %v", err)
	}
	if _, err := f.svc.Remove(f.ctx, "p", "plain", "k", NullVersion); err != nil {
		t.Fatalf("removing the null version: %v", err)
	}
}
