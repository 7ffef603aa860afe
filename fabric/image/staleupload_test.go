package image

import (
	"bytes"
	"context"
	"net/http"
	"testing"
)

// An upload given back while it still streams (its node was taken for
// lost: frozen, or cut off from the cluster for longer than the leader
// waits) may go on storing its data once the node is back. Meanwhile
// another upload may have made the image active. The stale upload must
// neither replace the active image's data with its own nor delete it.
func TestStaleUploadLeavesTheNewerUploadsData(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{})["id"].(string)
	pw, done := f.streamUpload(alice, id)
	pw.Write(randomBytes(t, 10_000))
	f.waitStatus(id, "saving")
	// The leader gives the upload back, as for a lost node.
	f.svc.resetUploads(context.Background(), func(*Image) bool { return true })
	if st := f.show(alice, id)["status"]; st != "queued" {
		t.Fatalf("after the upload was given back: %v", st)
	}
	newer := randomBytes(t, 30_000)
	f.upload(alice, id, newer)
	// The stale upload ends.
	pw.Write(randomBytes(t, 10_000))
	pw.Close()
	if code := <-done; code/100 == 2 {
		t.Errorf("the stale upload was acknowledged: %d", code)
	}
	if st := f.show(alice, id)["status"]; st != "active" {
		t.Fatalf("image is %v after the stale upload ended, want active", st)
	}
	if objs := f.dataObjects(); len(objs) != 1 {
		t.Errorf("data objects %v, want the newer upload's alone", objs)
	}
	res := f.do("GET", "/v2/images/"+id+"/file", alice, nil)
	if res.code != http.StatusOK || !bytes.Equal(res.raw, newer) {
		t.Fatalf("the active image's data after the stale upload ended: HTTP %d, %d bytes, equal to the newer upload's: %v", res.code, len(res.raw), bytes.Equal(res.raw, newer))
	}
}
