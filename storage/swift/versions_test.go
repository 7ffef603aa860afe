package swift

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/object/objecttest"
)

// versionRow is one row of a JSON container listing.
type versionRow struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Bytes       int64  `json:"bytes"`
}

// listJSON lists a container (with a query, e.g. "prefix=...") as JSON.
func (e *env) listJSON(path, query string) []versionRow {
	e.T.Helper()
	r := e.must(http.StatusOK, "GET", path+"?format=json&"+query, alice, "")
	var rows []versionRow
	if err := json.Unmarshal([]byte(r.body), &rows); err != nil {
		e.T.Fatalf("listing %s: %v: %s", path, err, r.body)
	}
	return rows
}

func (e *env) body(path string) string {
	e.T.Helper()
	return e.must(http.StatusOK, "GET", path, alice, "").body
}

func TestVersionsStackModeArchivesAndRestores(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/arch", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base", alice, "", "X-Versions-Location", "arch")
	if got := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/base", alice, "").header.Get("X-Versions-Location"); got != "arch" {
		t.Fatalf("HEAD shows X-Versions-Location %q", got)
	}
	if got := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/arch", alice, "").header.Get("X-Versions-Location"); got != "" {
		t.Fatalf("the archive shows X-Versions-Location %q", got)
	}

	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/obj", alice, "one", "X-Object-Meta-Color", "red", "Content-Type", "text/one")
	if rows := e.listJSON("/v1/AUTH_p1/arch", ""); len(rows) != 0 {
		t.Fatalf("a first write archived %v", rows)
	}
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/obj", alice, "two")
	// A POST changes metadata only: no new version.
	e.must(http.StatusAccepted, "POST", "/v1/AUTH_p1/base/obj", alice, "", "X-Object-Meta-Color", "blue")
	rows := e.listJSON("/v1/AUTH_p1/arch", "")
	if len(rows) != 1 || !strings.HasPrefix(rows[0].Name, "003obj/") || len(rows[0].Name) != len("003obj/")+16 {
		t.Fatalf("archive after the second write: %+v", rows)
	}
	if got := e.body("/v1/AUTH_p1/base/obj"); got != "two" {
		t.Fatalf("current = %q", got)
	}
	r := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/arch/"+rows[0].Name, alice, "")
	if r.body != "one" || r.header.Get("X-Object-Meta-Color") != "red" || r.header.Get("Content-Type") != "text/one" {
		t.Fatalf("archived version: %q %v", r.body, r.header)
	}

	// Copies replace the object too: COPY and X-Copy-From archive first.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/arch/src", alice, "three")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/obj", alice, "", "X-Copy-From", "arch/src")
	e.must(http.StatusCreated, "COPY", "/v1/AUTH_p1/base/obj", alice, "", "Destination", "base/obj")
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/arch/src", alice, "")
	if rows := e.listJSON("/v1/AUTH_p1/arch", "prefix=003obj/"); len(rows) != 3 {
		t.Fatalf("archive after two copies: %+v", rows)
	}

	// Each DELETE pops the newest archived version back.
	for _, want := range []string{"three", "two", "one"} {
		e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/base/obj", alice, "")
		if got := e.body("/v1/AUTH_p1/base/obj"); got != want {
			t.Fatalf("after a DELETE: %q, want %q", got, want)
		}
	}
	if got := e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/base/obj", alice, "").header.Get("X-Object-Meta-Color"); got != "red" {
		t.Errorf("restored first version has Color %q", got)
	}
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/base/obj", alice, "")
	e.must(http.StatusNotFound, "GET", "/v1/AUTH_p1/base/obj", alice, "")
	e.must(http.StatusNotFound, "DELETE", "/v1/AUTH_p1/base/obj", alice, "")
	for _, c := range []string{"base", "arch"} {
		r := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/"+c, alice, "")
		if r.header.Get("X-Container-Object-Count") != "0" || r.header.Get("X-Container-Bytes-Used") != "0" {
			t.Errorf("%s not empty at the end: %v", c, r.header)
		}
	}
}

func TestVersionsHistoryModeKeepsEverythingAndMarksDeletes(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/arch", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base", alice, "", "X-History-Location", "arch")
	r := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/base", alice, "")
	if r.header.Get("X-History-Location") != "arch" || r.header.Get("X-Versions-Location") != "" {
		t.Fatalf("history mode shows %v", r.header)
	}
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/o", alice, "v1")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/o", alice, "v2")
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/base/o", alice, "")
	e.must(http.StatusNotFound, "GET", "/v1/AUTH_p1/base/o", alice, "")
	rows := e.listJSON("/v1/AUTH_p1/arch", "prefix=001o/")
	if len(rows) != 3 || rows[2].ContentType != deleteMarkerType || rows[2].Bytes != 0 {
		t.Fatalf("archive after history DELETE: %+v", rows)
	}
	if e.body("/v1/AUTH_p1/arch/"+rows[0].Name) != "v1" || e.body("/v1/AUTH_p1/arch/"+rows[1].Name) != "v2" {
		t.Fatal("archive does not hold v1 then v2")
	}

	// In stack mode a delete marker on top undoes the delete: the version
	// under it comes back, and both leave the archive.
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/base", alice, "", "X-Versions-Location", "arch")
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/base/o", alice, "")
	if got := e.body("/v1/AUTH_p1/base/o"); got != "v2" {
		t.Fatalf("after popping the marker: %q", got)
	}
	if rows := e.listJSON("/v1/AUTH_p1/arch", "prefix=001o/"); len(rows) != 1 || e.body("/v1/AUTH_p1/arch/"+rows[0].Name) != "v1" {
		t.Fatalf("archive after popping the marker: %+v", rows)
	}
}

func TestVersionsHeadersFollowSwift(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/arch", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	loc := func() (string, string) {
		r := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/c", alice, "")
		return r.header.Get("X-Versions-Location"), r.header.Get("X-History-Location")
	}
	r := e.must(http.StatusBadRequest, "POST", "/v1/AUTH_p1/c", alice, "", "X-Versions-Location", "arch", "X-History-Location", "arch")
	if !strings.Contains(r.body, "Only one of") {
		t.Errorf("both headers: %q", r.body)
	}
	e.must(http.StatusBadRequest, "PUT", "/v1/AUTH_p1/c2", alice, "", "X-Versions-Location", "arch", "X-History-Location", "arch")
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c2", alice, "")
	e.must(http.StatusPreconditionFailed, "POST", "/v1/AUTH_p1/c", alice, "", "X-Versions-Location", "a/b")
	if v, h := loc(); v != "" || h != "" {
		t.Fatalf("refused requests set %q %q", v, h)
	}
	// One of the two empty: the other is meant.
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Versions-Location", "", "X-History-Location", "arch")
	if v, h := loc(); v != "" || h != "arch" {
		t.Fatalf("history set: %q %q", v, h)
	}
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Versions-Location", "arch", "X-History-Location", "")
	if v, h := loc(); v != "arch" || h != "" {
		t.Fatalf("stack set: %q %q", v, h)
	}
	// Other metadata writes keep it.
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Container-Meta-A", "1")
	e.must(http.StatusAccepted, "PUT", "/v1/AUTH_p1/c", alice, "")
	if v, _ := loc(); v != "arch" {
		t.Fatalf("a metadata write dropped versioning: %q", v)
	}
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-Remove-Versions-Location", "x")
	if v, h := loc(); v != "" || h != "" {
		t.Fatalf("X-Remove-Versions-Location left %q %q", v, h)
	}
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-History-Location", "arch")
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/c", alice, "", "X-History-Location", "")
	if v, h := loc(); v != "" || h != "" {
		t.Fatalf("an empty X-History-Location left %q %q", v, h)
	}
	// Not versioned any more: an overwrite archives nothing.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "1")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "2")
	if rows := e.listJSON("/v1/AUTH_p1/arch", ""); len(rows) != 0 {
		t.Fatalf("an unversioned container archived %+v", rows)
	}
}

// An archive step that fails refuses the write and leaves the current
// object as it was: the archive is missing, another project's, full, or
// not the caller's to write.
func TestVersionsFailedArchiveKeepsTheCurrentObject(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base", alice, "", "X-Versions-Location", "arch")
	// Another project's container of that name is not this one's archive.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p2/arch", "bob-tok", "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/o", alice, "current")
	e.must(http.StatusPreconditionFailed, "PUT", "/v1/AUTH_p1/base/o", alice, "new")
	e.must(http.StatusPreconditionFailed, "PUT", "/v1/AUTH_p1/base/o", alice, "", "X-Copy-From", "base/o")
	if got := e.body("/v1/AUTH_p1/base/o"); got != "current" {
		t.Fatalf("after refused writes: %q", got)
	}
	if r := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p2/arch", "bob-tok", ""); r.header.Get("X-Container-Object-Count") != "0" {
		t.Fatalf("p1's version went into p2's container: %v", r.header)
	}
	// Stack mode with no archive: a plain delete.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/gone", alice, "x")
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/base/gone", alice, "")

	// A full archive.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/arch", alice, "", "X-Container-Meta-Quota-Bytes", "3")
	e.must(http.StatusPreconditionFailed, "PUT", "/v1/AUTH_p1/base/o", alice, "new")
	if got := e.body("/v1/AUTH_p1/base/o"); got != "current" {
		t.Fatalf("after a write the full archive refused: %q", got)
	}
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/arch", alice, "", "X-Remove-Container-Meta-Quota-Bytes", "x")

	// Bob may write base (a write ACL) but not the archive.
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/base", alice, "", "X-Container-Write", "p2:bob")
	e.must(http.StatusForbidden, "PUT", "/v1/AUTH_p1/base/o", "bob-tok", "bob's")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/new", "bob-tok", "nothing to archive")
	if got := e.body("/v1/AUTH_p1/base/o"); got != "current" {
		t.Fatalf("after bob's refused write: %q", got)
	}
	// Given the archive too, he may.
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1/arch", alice, "", "X-Container-Write", "p2:bob")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/o", "bob-tok", "bob's")
	if rows := e.listJSON("/v1/AUTH_p1/arch", "prefix=001o/"); len(rows) != 1 || e.body("/v1/AUTH_p1/arch/"+rows[0].Name) != "current" {
		t.Fatalf("archive after bob's write: %+v", rows)
	}

	// History mode refuses a DELETE it cannot archive, keeping the object.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/hist", alice, "", "X-History-Location", "nowhere")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/hist/o", alice, "kept")
	e.must(http.StatusPreconditionFailed, "DELETE", "/v1/AUTH_p1/hist/o", alice, "")
	if got := e.body("/v1/AUTH_p1/hist/o"); got != "kept" {
		t.Fatalf("after a refused history DELETE: %q", got)
	}
}

// Form posts, archive uploads and bulk deletes go through versioning as
// they go through Swift's pipeline.
func TestVersionsBulkDeleteExtractArchiveAndFormPost(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/arch", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base", alice, "", "X-Versions-Location", "arch", "X-Container-Meta-Owner", "alice")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/o", alice, "v1")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/o", alice, "v2")
	e.must(http.StatusOK, "POST", "/v1/AUTH_p1?bulk-delete", alice, "/base/o\n", "Content-Type", "text/plain", "Accept", "application/json")
	if got := e.body("/v1/AUTH_p1/base/o"); got != "v1" {
		t.Fatalf("after a bulk delete: %q", got)
	}
	if rep := e.extract("/v1/AUTH_p1/base?extract-archive=tar", alice, tarOf(t, [2]string{"o", "v3"})); rep.Created != 1 {
		t.Fatalf("archive upload: %+v", rep)
	}
	if got := e.body("/v1/AUTH_p1/base/o"); got != "v3" {
		t.Fatalf("after an archive upload: %q", got)
	}
	// The upload into the existing container kept its settings.
	r := e.must(http.StatusNoContent, "HEAD", "/v1/AUTH_p1/base", alice, "")
	if r.header.Get("X-Versions-Location") != "arch" || r.header.Get("X-Container-Meta-Owner") != "alice" {
		t.Fatalf("container after an archive upload: %v", r.header)
	}
	if rows := e.listJSON("/v1/AUTH_p1/arch", ""); len(rows) != 1 || e.body("/v1/AUTH_p1/arch/"+rows[0].Name) != "v1" {
		t.Fatalf("archive: %+v", rows)
	}
	// A form upload, signed and without a token, archives too.
	e.must(http.StatusNoContent, "POST", "/v1/AUTH_p1", alice, "", "X-Account-Meta-Temp-URL-Key", "akey")
	f := form{path: "/v1/AUTH_p1/base", maxSize: 100, maxCount: 1, expires: time.Now().Add(time.Hour), key: "akey", files: [][2]string{{"o", "v4"}}}
	if r := e.post(f, ""); r.status != http.StatusCreated {
		t.Fatalf("form upload: %d %q", r.status, r.body)
	}
	rows := e.listJSON("/v1/AUTH_p1/arch", "")
	if got := e.body("/v1/AUTH_p1/base/o"); got != "v4" || len(rows) != 2 || e.body("/v1/AUTH_p1/arch/"+rows[1].Name) != "v3" {
		t.Fatalf("after a form upload: %q, archive %+v", got, rows)
	}
}

func TestVersionName(t *testing.T) {
	at := time.Unix(1440619048, 831540000)
	if got := versionName("myobject", at); got != "008myobject/1440619048.83154" {
		t.Errorf("versionName = %q", got)
	}
	if got := versionPrefix(strings.Repeat("é", 200)); !strings.HasPrefix(got, "190") {
		t.Errorf("prefix counts bytes: %q", got[:3])
	}
}

// DELETE of an object whose delete time has passed is a 404, as GET, HEAD
// and POST are, and the object is gone after it.
func TestExpiredObjectDeleteIsNotFound(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "x", "X-Delete-After", "3600")
	ctx := context.Background()
	o, err := e.Svc.Head(ctx, "p1", "c", "o")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.SetMeta(ctx, o, object.Attrs{Headers: map[string]string{object.DeleteAtHeader: object.FormatDeleteAt(time.Now().Unix() - 1)}}); err != nil {
		t.Fatal(err)
	}
	e.must(http.StatusNotFound, "DELETE", "/v1/AUTH_p1/c/o", alice, "")
	if rows := e.listJSON("/v1/AUTH_p1/c", ""); len(rows) != 0 {
		t.Fatalf("the expired object is still listed after its DELETE: %+v", rows)
	}
	e.must(http.StatusNotFound, "DELETE", "/v1/AUTH_p1/c/o", alice, "")
}

func TestCrossDomainPolicy(t *testing.T) {
	e := newEnv(t)
	r := e.must(http.StatusOK, "GET", "/crossdomain.xml", "", "")
	if !strings.HasPrefix(r.body, `<?xml version="1.0"?>`+"\n"+`<!DOCTYPE cross-domain-policy SYSTEM "http://www.adobe.com/xml/dtds/cross-domain-policy.dtd" >`+"\n<cross-domain-policy>\n") ||
		!strings.HasSuffix(r.body, "</cross-domain-policy>") || !strings.Contains(r.body, `domain="*"`) {
		t.Errorf("policy: %q", r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/xml") || r.header.Get("X-Trans-Id") == "" {
		t.Errorf("headers: %v", r.header)
	}
	e.must(http.StatusNotFound, "PUT", "/crossdomain.xml", "", "")

	var info map[string]map[string]any
	json.Unmarshal([]byte(e.must(http.StatusOK, "GET", "/info", "", "").body), &info)
	if info["crossdomain"]["cross_domain_policy"] != crossDomainPolicy {
		t.Errorf("/info crossdomain: %v", info["crossdomain"])
	}
	flags, _ := json.Marshal(info["versioned_writes"]["allowed_flags"])
	if string(flags) != `["x-versions-location","x-history-location"]` {
		t.Errorf("/info versioned_writes: %v", info["versioned_writes"])
	}
}

// A history-mode delete marker goes above the version it archived even
// when this node's clock is behind the time that version's name holds
// (its modification time, to the millisecond and moved past names
// taken, as the store recorded it): otherwise the marker sorts under
// the version, and a later stack-mode DELETE pops the wrong one.
func TestVersionsDeleteMarkerSortsAboveWhatItArchived(t *testing.T) {
	e := &env{objecttest.Serve(t, 6, 4096, func(svc *object.Service) http.Handler {
		return &Handler{Store: svc, Auth: principals, Now: func() time.Time { return time.Now().Add(-time.Minute) }}
	})}
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/arch", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base", alice, "", "X-History-Location", "arch")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/base/o", alice, "v1")
	e.must(http.StatusNoContent, "DELETE", "/v1/AUTH_p1/base/o", alice, "")
	rows := e.listJSON("/v1/AUTH_p1/arch", "prefix=001o/")
	if len(rows) != 2 || rows[0].ContentType == deleteMarkerType || rows[1].ContentType != deleteMarkerType {
		t.Fatalf("archive after a history DELETE, oldest first: %+v", rows)
	}
}
