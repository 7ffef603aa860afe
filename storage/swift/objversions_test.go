package swift

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

type objectVersionRow struct {
	Name        string `json:"name"`
	VersionID   string `json:"version_id"`
	IsLatest    bool   `json:"is_latest"`
	ContentType string `json:"content_type"`
	Subdir      string `json:"subdir"`
}

func (e *env) versions(path, query string) []objectVersionRow {
	e.T.Helper()
	r := e.must(http.StatusOK, "GET", path+"?versions&format=json&"+query, alice, "")
	var rows []objectVersionRow
	if err := json.Unmarshal([]byte(r.body), &rows); err != nil {
		e.T.Fatalf("versions of %s: %v: %s", path, err, r.body)
	}
	return rows
}

func TestObjectVersioning(t *testing.T) {
	e := newEnv(t)
	c := "/v1/AUTH_p1/c"
	e.must(http.StatusCreated, "PUT", c, alice, "")
	e.must(http.StatusCreated, "PUT", c+"/k", alice, "zero")
	e.must(http.StatusNoContent, "POST", c, alice, "", "X-Versions-Enabled", "true")
	if h := e.must(http.StatusNoContent, "HEAD", c, alice, "").header; h.Get("X-Versions-Enabled") != "True" {
		t.Fatalf("X-Versions-Enabled %q", h.Get("X-Versions-Enabled"))
	}
	v1 := e.must(http.StatusCreated, "PUT", c+"/k", alice, "one").header.Get("X-Object-Version-Id")
	v2 := e.must(http.StatusCreated, "PUT", c+"/k", alice, "two").header.Get("X-Object-Version-Id")
	if v1 == "" || v2 == "" || v1 == v2 {
		t.Fatalf("version ids %q %q", v1, v2)
	}
	r := e.must(http.StatusOK, "GET", c+"/k", alice, "")
	if r.body != "two" || r.header.Get("X-Object-Version-Id") != v2 {
		t.Fatalf("current %q %v", r.body, r.header)
	}
	for v, want := range map[string]string{"null": "zero", v1: "one", v2: "two"} {
		if got := e.body(c + "/k?version-id=" + v); got != want {
			t.Fatalf("version %s: %q want %q", v, got, want)
		}
	}
	e.must(http.StatusNotFound, "GET", c+"/k?version-id=nosuch", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/plain", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/plain/k", alice, "x")
	e.must(http.StatusBadRequest, "GET", "/v1/AUTH_p1/plain/k?version-id="+v1, alice, "")
	e.must(http.StatusOK, "GET", "/v1/AUTH_p1/plain/k?version-id=null", alice, "")
	e.must(http.StatusBadRequest, "PUT", c+"/k?version-id="+v1, alice, "x")
	e.must(http.StatusBadRequest, "POST", c+"/k?version-id="+v1, alice, "")
	// Another project reads none of it.
	e.must(http.StatusNotFound, "GET", "/v1/AUTH_p2/c/k?version-id="+v1, "bob-tok", "")
	// COPY from an old version.
	e.must(http.StatusCreated, "COPY", c+"/k?version-id="+v1, alice, "", "Destination", "c/copy")
	if got := e.body(c + "/copy"); got != "one" {
		t.Fatalf("copy of v1: %q", got)
	}
	e.must(http.StatusNoContent, "DELETE", c+"/copy?version-id="+e.must(http.StatusOK, "HEAD", c+"/copy", alice, "").header.Get("X-Object-Version-Id"), alice, "")

	// DELETE writes a marker, named in X-Object-Version-Id; a name
	// without a current object is 404, as Swift answers.
	if v := e.must(http.StatusNoContent, "DELETE", c+"/k", alice, "").header.Get("X-Object-Version-Id"); v == "" || v == "null" {
		t.Fatalf("DELETE names marker %q", v)
	}
	if v := e.must(http.StatusNotFound, "DELETE", c+"/never", alice, "").header.Get("X-Object-Version-Id"); v == "" {
		t.Fatal("a DELETE of a missing name names no marker")
	}
	e.must(http.StatusNoContent, "DELETE", c+"/never?version-id="+e.versions(c, "prefix=never")[0].VersionID, alice, "")
	e.must(http.StatusNotFound, "GET", c+"/k", alice, "")
	rows := e.versions(c, "")
	if len(rows) != 4 || rows[0].ContentType != deleteMarkerType || !rows[0].IsLatest || rows[1].VersionID != v2 || rows[3].VersionID != "null" {
		t.Fatalf("versions after delete: %+v", rows)
	}
	e.must(http.StatusNotFound, "GET", c+"/k?version-id="+rows[0].VersionID, alice, "")
	// Paged by marker and version_marker.
	var paged []string
	q := "limit=1"
	for range 10 {
		page := e.versions(c, q)
		if len(page) == 0 {
			break
		}
		paged = append(paged, page[0].VersionID)
		q = "limit=1&marker=" + page[0].Name + "&version_marker=" + page[0].VersionID
	}
	if fmt.Sprint(paged) != fmt.Sprint([]string{rows[0].VersionID, v2, v1, "null"}) {
		t.Fatalf("paged %v", paged)
	}
	e.must(http.StatusBadRequest, "GET", c+"?versions&format=json&version_marker="+v1, alice, "")
	e.must(http.StatusNotAcceptable, "GET", c+"?versions&format=txt", alice, "")

	// The container keeps its versions: not deletable, not legacy.
	e.must(http.StatusConflict, "DELETE", c, alice, "")
	e.must(http.StatusBadRequest, "POST", c, alice, "", "X-Versions-Location", "arch")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/legacy", alice, "", "X-Versions-Location", "arch")
	e.must(http.StatusBadRequest, "POST", "/v1/AUTH_p1/legacy", alice, "", "X-Versions-Enabled", "true")

	// Removing the marker brings v2 back, and the answer names it as
	// the current version; suspended writes are "null".
	if cur := e.must(http.StatusNoContent, "DELETE", c+"/k?version-id="+rows[0].VersionID, alice, "").header.Get("X-Object-Current-Version-Id"); cur != v2 {
		t.Fatalf("X-Object-Current-Version-Id after removing the marker: %q, want %s", cur, v2)
	}
	if got := e.body(c + "/k"); got != "two" {
		t.Fatalf("after removing the marker: %q", got)
	}
	e.must(http.StatusNoContent, "POST", c, alice, "", "X-Versions-Enabled", "false")
	if h := e.must(http.StatusNoContent, "HEAD", c, alice, "").header; h.Get("X-Versions-Enabled") != "False" {
		t.Fatalf("X-Versions-Enabled %q", h.Get("X-Versions-Enabled"))
	}
	if v := e.must(http.StatusCreated, "PUT", c+"/k", alice, "null again").header.Get("X-Object-Version-Id"); v != "null" {
		t.Fatalf("a suspended write has version %q", v)
	}
	// The null version written while suspended replaced the old null one.
	for _, row := range e.versions(c, "") {
		e.must(http.StatusNoContent, "DELETE", c+"/"+row.Name+"?version-id="+row.VersionID, alice, "")
	}
	if rows := e.versions(c, ""); len(rows) != 0 {
		t.Fatalf("left: %+v", rows)
	}
	e.must(http.StatusNoContent, "DELETE", c, alice, "")
}
