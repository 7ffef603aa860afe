package swift

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
)

// tarOf builds a tar of files (name → body); a name ending in "@" is a
// symlink instead, and one ending in "/" a directory.
func tarOf(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		name, body := f[0], f[1]
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}
		switch {
		case strings.HasSuffix(name, "@"):
			h = &tar.Header{Name: strings.TrimSuffix(name, "@"), Typeflag: tar.TypeSymlink, Linkname: "elsewhere"}
		case strings.HasSuffix(name, "/"):
			h = &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type extractReport struct {
	Created int         `json:"Number Files Created"`
	Status  string      `json:"Response Status"`
	Body    string      `json:"Response Body"`
	Errors  [][2]string `json:"Errors"`
}

func (e *env) extract(path, token string, archive []byte) extractReport {
	e.T.Helper()
	r := e.must(http.StatusOK, "PUT", path, token, string(archive), "Accept", "application/json")
	var rep extractReport
	if err := json.Unmarshal([]byte(r.body), &rep); err != nil {
		e.T.Fatalf("report %q: %v", r.body, err)
	}
	return rep
}

func TestExtractArchive(t *testing.T) {
	e := newEnv(t)
	archive := tarOf(t,
		[2]string{"tmpdir/", ""},
		[2]string{"tmpdir/empty", ""},
		[2]string{"./tmpdir/sub/b.txt", "bee"},
		[2]string{"loose", "a top-level file names no container"},
		[2]string{"tmpdir/link@", ""},
	)
	rep := e.extract("/v1/AUTH_p1?extract-archive=tar", alice, archive)
	if rep.Created != 2 || rep.Status != "201 Created" || len(rep.Errors) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if got := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/tmpdir?format=txt", alice, "").body; got != "empty\nsub/b.txt\n" {
		t.Errorf("tmpdir lists %q", got)
	}
	if got := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/tmpdir/sub/b.txt", alice, "").body; got != "bee" {
		t.Errorf("sub/b.txt = %q", got)
	}
	if got := e.must(http.StatusOK, "GET", "/v1/AUTH_p1?format=txt", alice, "").body; got != "tmpdir\n" {
		t.Errorf("account lists %q", got)
	}

	// Into a container and prefix, gzip'd, with the request's metadata.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarOf(t, [2]string{"x.txt", "ex"}))
	zw.Close()
	rep = e.extract("/v1/AUTH_p1/into/pre?extract-archive=tar.gz", alice, gz.Bytes())
	if rep.Created != 1 || rep.Status != "201 Created" {
		t.Fatalf("tar.gz report %+v", rep)
	}
	_ = e.must(http.StatusOK, "GET", "/v1/AUTH_p1/into/pre/x.txt", alice, "")

	// bzip2 (testdata/docs.tar.bz2: docs/readme.txt).
	bz, err := os.ReadFile("testdata/docs.tar.bz2")
	if err != nil {
		t.Fatal(err)
	}
	rep = e.extract("/v1/AUTH_p1?extract-archive=tar.bz2", alice, bz)
	if rep.Created != 1 || rep.Status != "201 Created" {
		t.Fatalf("tar.bz2 report %+v", rep)
	}
	if got := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/docs/readme.txt", alice, "").body; got != "bz2 body" {
		t.Errorf("docs/readme.txt = %q", got)
	}

	// Then Swift's bulk delete removes what it made (tempest's flow).
	r := e.must(http.StatusOK, "DELETE", "/v1/AUTH_p1?bulk-delete", alice, "tmpdir/empty\ntmpdir/sub/b.txt\ntmpdir", "Accept", "application/json")
	if !strings.Contains(r.body, `"Number Deleted":3`) {
		t.Errorf("bulk delete: %s", r.body)
	}
}

func TestExtractArchiveRefusals(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("n", maxObjectName+1)
	tests := map[string]struct {
		path, token string
		archive     []byte
		status      string
		body        string
		errors      int
		created     int
	}{
		"unsupported format":  {"/v1/AUTH_p1?extract-archive=zip", alice, tarOf(t, [2]string{"c/o", "x"}), "400 Bad Request", "Unsupported archive format", 0, 0},
		"not a tar":           {"/v1/AUTH_p1?extract-archive=tar", alice, []byte(strings.Repeat("garbage!", 100)), "400 Bad Request", "Invalid Tar File", 0, 0},
		"not gzip":            {"/v1/AUTH_p1?extract-archive=tar.gz", alice, tarOf(t, [2]string{"c/o", "x"}), "400 Bad Request", "Invalid Tar File", 0, 0},
		"no valid files":      {"/v1/AUTH_p1?extract-archive=tar", alice, tarOf(t, [2]string{"loose", "x"}), "400 Bad Request", "Invalid Tar File: No Valid Files", 0, 0},
		"a name too long":     {"/v1/AUTH_p1?extract-archive=tar", alice, tarOf(t, [2]string{"c/ok", "x"}, [2]string{"c/" + long, "x"}), "502 Bad Gateway", "", 1, 1},
		"a reader may not":    {"/v1/AUTH_p1?extract-archive=tar", "reader-tok", tarOf(t, [2]string{"r/o", "x"}), "", "", 0, 0},
		"another project's":   {"/v1/AUTH_p2?extract-archive=tar", alice, tarOf(t, [2]string{"c/o", "x"}), "", "", 0, 0},
		"cut short (tar EOF)": {"/v1/AUTH_p1?extract-archive=tar", alice, tarOf(t, [2]string{"cut/o", strings.Repeat("x", 4000)})[:2048], "400 Bad Request", "Invalid Tar File", 0, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := e.with(t)
			if tc.status == "" {
				// Refused before the archive is read, as any write
				// to the account by one who may not.
				e.must(http.StatusForbidden, "PUT", tc.path, tc.token, string(tc.archive))
				return
			}
			rep := e.extract(tc.path, tc.token, tc.archive)
			if rep.Status != tc.status || !strings.HasPrefix(rep.Body, tc.body) || len(rep.Errors) != tc.errors || rep.Created != tc.created {
				t.Fatalf("report %+v, want %s %q, %d errors, %d created", rep, tc.status, tc.body, tc.errors, tc.created)
			}
		})
	}
	// Nothing was stored by the refused archives.
	for _, c := range []string{"r", "cut"} {
		e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/"+c+"/o", alice, "")
	}
}

func TestInfoOffersBulkUpload(t *testing.T) {
	e := newEnv(t)
	var info map[string]any
	json.Unmarshal([]byte(e.must(http.StatusOK, "GET", "/info", "", "").body), &info)
	if _, ok := info["bulk_upload"]; !ok {
		t.Fatal("/info does not offer bulk_upload")
	}
}
