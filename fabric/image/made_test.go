package image

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"net/http"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// An image another service makes is a queued image of the caller's
// project, checked as a POST would be; Upload makes it active with the
// data and its checksum, as PUT .../file does; Discard deletes it,
// protected or not.
func TestImageMadeByAnotherService(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	p := &api.Principal{UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}}
	img, err := f.svc.Create(ctx, p, NewImage{Name: "from-vol", DiskFormat: "raw", ContainerFormat: "bare", Visibility: "private",
		Protected: true, MinDisk: 2, MinRAM: 128, Properties: map[string]string{"hw_disk_bus": "scsi"}})
	if err != nil {
		t.Fatal(err)
	}
	got := f.show(alice, img.ID)
	if got["status"] != "queued" || got["owner"] != projA || got["visibility"] != "private" || got["hw_disk_bus"] != "scsi" || got["protected"] != true ||
		got["min_disk"] != float64(2) || got["min_ram"] != float64(128) {
		t.Fatalf("created %v", got)
	}
	data := bytes.Repeat([]byte("volume"), 10000)
	if err := f.svc.Upload(ctx, img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(data)
	got = f.show(alice, img.ID)
	if got["status"] != "active" || got["size"] != float64(len(data)) || got["checksum"] != hex.EncodeToString(sum[:]) || got["virtual_size"] != float64(len(data)) {
		t.Fatalf("uploaded %v", got)
	}
	if dl := f.do("GET", "/v2/images/"+img.ID+"/file", alice, nil); dl.code != http.StatusOK || !bytes.Equal(dl.raw, data) {
		t.Fatalf("download: %d, %d bytes", dl.code, len(dl.raw))
	}
	if err := f.svc.Upload(ctx, img.ID, bytes.NewReader(data), int64(len(data))); err == nil {
		t.Fatal("an active image took data again")
	}
	// An active image is not unfinished: it stays.
	if err := f.svc.DiscardUnfinished(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.show(alice, img.ID); got["status"] != "active" {
		t.Fatalf("after DiscardUnfinished: %v", got["status"])
	}
	if err := f.svc.Discard(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	f.expect(http.StatusNotFound, "GET", "/v2/images/"+img.ID, alice, nil)
	queued, err := f.svc.Create(ctx, p, NewImage{Name: "half", DiskFormat: "raw", ContainerFormat: "bare", Visibility: "private", Protected: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.DiscardUnfinished(ctx, queued.ID); err != nil {
		t.Fatal(err)
	}
	f.expect(http.StatusNotFound, "GET", "/v2/images/"+queued.ID, alice, nil)
	if err := f.svc.Discard(ctx, img.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("discard again: %v", err)
	}
}

func TestImageMadeByAnotherServiceRefusals(t *testing.T) {
	f := newFixture(t)
	p := &api.Principal{UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}}
	tests := map[string]NewImage{
		"bad disk format":   {Name: "x", DiskFormat: "floppy", ContainerFormat: "bare"},
		"public by member":  {Name: "x", DiskFormat: "raw", ContainerFormat: "bare", Visibility: "public"},
		"reserved property": {Name: "x", DiskFormat: "raw", ContainerFormat: "bare", Properties: map[string]string{"os_glance_x": "1"}},
	}
	for name, n := range tests {
		t.Run(name, func(t *testing.T) {
			if img, err := f.svc.Create(context.Background(), p, n); err == nil {
				t.Fatalf("made %+v", img)
			}
		})
	}
}
