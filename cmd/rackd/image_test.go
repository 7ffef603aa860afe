package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object/objecttest"
)

func TestCatalogListsGlance(t *testing.T) {
	for _, s := range catalog(&options{S3Listen: "off"}) {
		if s.Type == "image" {
			if s.Name != "glance" || s.Path != "/image" {
				t.Fatalf("image entry %+v", s)
			}
			return
		}
	}
	t.Fatal("no image service in the catalog")
}

// Server create sees an image as its owner does, and not at all from
// another project.
func TestComputeSeesImagesAsGlanceDoes(t *testing.T) {
	local, err := store.NewLocal(image.Schema())
	if err != nil {
		t.Fatal(err)
	}
	owner := &api.Principal{ProjectID: "p1", Roles: []string{"member"}}
	svc, err := image.New(image.Config{Repl: local, Auth: apitest.Tokens{"t": owner}, Objects: objecttest.New(t, 6, 4096)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/image", svc.Handler()))
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/image/v2/images", strings.NewReader(
		`{"id": "6a1f8e7c-1111-4222-8333-944455556666", "name": "x", "min_ram": 256, "visibility": "private"}`))
	req.Header.Set("X-Auth-Token", "t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v", err, resp)
	}
	resp.Body.Close()
	c := computeImages{svc}
	info, err := c.Get(context.Background(), owner, "6a1f8e7c-1111-4222-8333-944455556666")
	if err != nil || info.Name != "x" || info.MinRAM != 256 || info.Status != image.StatusQueued {
		t.Fatalf("owner's view: %+v %v", info, err)
	}
	other := &api.Principal{ProjectID: "p2", Roles: []string{"member"}}
	if _, err := c.Get(context.Background(), other, "6a1f8e7c-1111-4222-8333-944455556666"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other project's view: %v", err)
	}
}
