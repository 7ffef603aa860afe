package image

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"slices"
	"testing"
)

// glance-direct: stage, then import. The staged image is uploading, its
// data not downloadable; the import makes it active with the digests of
// what was staged; the other methods, multiple stores and an import of
// nothing staged are refused, naming why.
func TestStageAndImport(t *testing.T) {
	f := newFixture(t)
	info := f.expect(http.StatusOK, "GET", "/v2/info/import", alice, nil).body
	if v := info["import-methods"].(map[string]any)["value"].([]any); len(v) != 2 || v[0] != "glance-direct" {
		t.Fatalf("import methods: %v", info)
	}
	res := f.do("POST", "/v2/images", alice, map[string]any{"name": "imp", "disk_format": "raw", "container_format": "bare"})
	if res.code != http.StatusCreated || res.header.Get("OpenStack-image-import-methods") != "glance-direct,web-download" {
		t.Fatalf("create: %d, import methods header %q", res.code, res.header.Get("OpenStack-image-import-methods"))
	}
	id := res.body["id"].(string)
	glanceDirect := map[string]any{"method": map[string]any{"name": "glance-direct"}}
	f.expect(http.StatusConflict, "POST", "/v2/images/"+id+"/import", alice, glanceDirect, "staged")
	data := randomBytes(t, 70_000)
	f.expect(http.StatusNoContent, "PUT", "/v2/images/"+id+"/stage", alice, data)
	if got := f.show(alice, id); got["status"] != "uploading" {
		t.Fatalf("staged image: %v", got)
	}
	if dl := f.do("GET", "/v2/images/"+id+"/file", alice, nil); dl.code != http.StatusNoContent || len(dl.raw) != 0 {
		t.Fatalf("download of staged data: %d, %d bytes", dl.code, len(dl.raw))
	}
	f.expect(http.StatusConflict, "PUT", "/v2/images/"+id+"/file", alice, data, "uploading")
	f.expect(http.StatusConflict, "PUT", "/v2/images/"+id+"/stage", alice, data, "uploading")
	for name, body := range map[string]map[string]any{
		// The default filter refuses loopback addresses and port 1.
		"web-download": {"method": map[string]any{"name": "web-download", "uri": "http://127.0.0.1:1/x"}},
		"copy-image":   {"method": map[string]any{"name": "copy-image"}},
		"no method":    {},
		"stores":       {"method": map[string]any{"name": "glance-direct"}, "stores": []string{"fast"}},
	} {
		if res := f.do("POST", "/v2/images/"+id+"/import", alice, body); res.code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, res.code, res.raw)
		}
	}
	f.expect(http.StatusNotFound, "POST", "/v2/images/"+id+"/import", bob, glanceDirect)
	f.expect(http.StatusForbidden, "POST", "/v2/images/"+id+"/import", carol, glanceDirect)
	// all_stores is the one store (tempest sends it by default).
	f.expect(http.StatusAccepted, "POST", "/v2/images/"+id+"/import", alice, map[string]any{"method": map[string]any{"name": "glance-direct"}, "all_stores": true, "all_stores_must_succeed": true})
	got := f.show(alice, id)
	sum := md5.Sum(data)
	if got["status"] != "active" || got["checksum"] != hex.EncodeToString(sum[:]) || got["size"] != float64(len(data)) {
		t.Fatalf("imported image: %v", got)
	}
	if dl := f.do("GET", "/v2/images/"+id+"/file", alice, nil); dl.code != http.StatusOK || !bytes.Equal(dl.raw, data) {
		t.Fatalf("download after import: %d, equal %v", dl.code, bytes.Equal(dl.raw, data))
	}
	f.expect(http.StatusConflict, "POST", "/v2/images/"+id+"/import", alice, glanceDirect)

	// Deleting an image with staged data deletes the data.
	other := f.create(alice, map[string]any{"name": "staged-only"})["id"].(string)
	f.expect(http.StatusNoContent, "PUT", "/v2/images/"+other+"/stage", alice, data)
	if !slices.Contains(f.dataObjects(), other) {
		t.Fatalf("staged data not stored: %v", f.dataObjects())
	}
	f.expect(http.StatusNoContent, "DELETE", "/v2/images/"+other, alice, nil)
	if slices.Contains(f.dataObjects(), other) {
		t.Fatalf("staged data left after the image was deleted: %v", f.dataObjects())
	}
}
