package compute

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/storage/object"
)

// noObjects is an object store without objects: the proxy's images are
// made without data, so only a delete reaches it.
type noObjects struct{}

var errNoObjects = errors.New("no objects in this test")

func (noObjects) Container(context.Context, string, string) (*object.Container, error) {
	return nil, errNoObjects
}
func (noObjects) PutContainer(context.Context, object.Container, bool) (bool, error) {
	return false, errNoObjects
}
func (noObjects) Put(context.Context, string, string, string, io.Reader, object.PutOptions) (*object.Object, error) {
	return nil, errNoObjects
}
func (noObjects) Head(context.Context, string, string, string) (*object.Object, error) {
	return nil, errNoObjects
}
func (noObjects) Read(context.Context, *object.Object, int64, int64, io.Writer) error {
	return errNoObjects
}
func (noObjects) Delete(context.Context, string, string, string) error { return nil }
func (noObjects) List(context.Context, string, string, object.ListOptions) ([]object.Entry, bool, error) {
	return nil, false, errNoObjects
}

// newImageProxyFixture is the compute fixture with the real image service
// on the same replicated state, its API behind the proxy and served at
// /image for the test to make images with.
func newImageProxyFixture(t *testing.T) (*fixture, *httptest.Server) {
	t.Helper()
	f := newFixtureWith(t, image.Schema())
	is, err := image.New(image.Config{Repl: f.local, Auth: f.svc.cfg.Auth, Objects: noObjects{}, Node: "n1", Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.ImageAPI = is.Handler()
	return f, apitest.Serve(t, "/image", is.Handler())
}

// glanceImage makes an image (without data) through Glance v2.
func glanceImage(t *testing.T, srv *httptest.Server, tok string, attrs map[string]any) string {
	t.Helper()
	res := apitest.Call(t, "POST", srv.URL+"/image/v2/images", tok, attrs)
	if res.Code != 201 {
		t.Fatalf("create image: %d %v", res.Code, res.Body)
	}
	return res.Body["id"].(string)
}

func TestImageProxy(t *testing.T) {
	f, glance := newImageProxyFixture(t)
	pub := glanceImage(t, glance, admin, map[string]any{"name": "cirros", "visibility": "public", "min_ram": 64, "min_disk": 1,
		"disk_format": "qcow2", "container_format": "bare", "distro": "cirros"})
	snap := glanceImage(t, glance, alice, map[string]any{"name": "snap", "min_ram": 512,
		"instance_uuid": "99999999-9999-4999-8999-999999999999", "image_type": "snapshot"})

	// Show: Nova's detailed view, the properties its metadata.
	im := f.expect("GET", "/v2.1/images/"+snap, alice, "", nil, 200, "")["image"].(map[string]any)
	want := map[string]any{"id": snap, "name": "snap", "status": "SAVING", "progress": 25.0, "minRam": 512.0, "minDisk": 0.0,
		"metadata": map[string]any{"instance_uuid": "99999999-9999-4999-8999-999999999999", "image_type": "snapshot"},
		"created":  "2026-11-24T12:00:00Z", "updated": "2026-11-24T12:00:00Z", "OS-EXT-IMG-SIZE:size": nil}
	for k, v := range want {
		if !reflect.DeepEqual(im[k], v) {
			t.Fatalf("image %s = %#v, want %#v (%v)", k, im[k], v, im)
		}
	}
	if sv := im["server"].(map[string]any); sv["id"] != "99999999-9999-4999-8999-999999999999" || len(sv["links"].([]any)) != 2 {
		t.Fatalf("server of a snapshot: %v", sv)
	}
	if len(im["links"].([]any)) != 2 {
		t.Fatalf("links %v", im["links"])
	}
	// Another project's private image does not exist for bob.
	f.expect("GET", "/v2.1/images/"+snap, bob, "", nil, 404, "itemNotFound", "Image not found.")
	f.expect("GET", "/v2.1/images/00000000-0000-4000-8000-000000000000", alice, "", nil, 404, "itemNotFound")

	// Lists, short and detailed, with Nova's filters.
	list := func(query, tok string, detail bool) []string {
		t.Helper()
		p := "/v2.1/images"
		if detail {
			p += "/detail"
		}
		l := f.expect("GET", p+query, tok, "", nil, 200, "")["images"].([]any)
		for _, it := range l {
			if _, ok := it.(map[string]any)["status"]; ok != detail {
				t.Fatalf("%s%s: view %v", p, query, it)
			}
		}
		return ids(l)
	}
	if got := list("", alice, false); len(got) != 2 {
		t.Fatalf("alice lists %v", got)
	}
	if got := list("", bob, true); !reflect.DeepEqual(got, []string{pub}) {
		t.Fatalf("bob lists %v", got)
	}
	for q, w := range map[string][]string{
		"?name=cirros": {pub}, "?server=99999999-9999-4999-8999-999999999999": {snap},
		"?server=http://x/compute/v2.1/servers/99999999-9999-4999-8999-999999999999": {snap},
		"?type=snapshot": {snap}, "?minRam=100": {snap}, "?minDisk=1": {pub}, "?status=SAVING": nil,
		"?changes-since=2026-11-24T11:00:00Z": {snap, pub}, "?changes-since=2026-11-24T13:00:00Z": nil,
		"?property-distro=cirros": {pub},
	} {
		for _, detail := range []bool{false, true} {
			got := list(q, alice, detail)
			if len(got) != len(w) || len(w) == 1 && got[0] != w[0] {
				t.Fatalf("%s (detail %v): %v, want %v", q, detail, got, w)
			}
		}
	}
	f.expect("GET", "/v2.1/images?minRam=x", alice, "", nil, 400, "badRequest", "minRam")
	if l := f.expect("GET", "/v2.1/images?limit=1", alice, "", nil, 200, ""); len(l["images"].([]any)) != 1 || l["images_links"] == nil {
		t.Fatalf("limit=1: %v", l)
	}

	// Metadata: merge, replace, one item.
	md := "/v2.1/images/" + snap + "/metadata"
	got := f.expect("POST", md, alice, "", map[string]any{"metadata": map[string]any{"os_distro": "cirros", "image_type": "backup"}}, 200, "")["metadata"]
	if !reflect.DeepEqual(got, map[string]any{"instance_uuid": "99999999-9999-4999-8999-999999999999", "image_type": "backup", "os_distro": "cirros"}) {
		t.Fatalf("merged %v", got)
	}
	got = f.expect("PUT", md, alice, "", map[string]any{"metadata": map[string]any{"a": "1", "os_distro": "fedora"}}, 200, "")["metadata"]
	if !reflect.DeepEqual(got, map[string]any{"a": "1", "os_distro": "fedora"}) {
		t.Fatalf("replaced %v", got)
	}
	if got := f.expect("GET", md, alice, "", nil, 200, "")["metadata"]; !reflect.DeepEqual(got, map[string]any{"a": "1", "os_distro": "fedora"}) {
		t.Fatalf("listed %v", got)
	}
	if got := f.expect("GET", md+"/a", alice, "", nil, 200, "")["meta"]; !reflect.DeepEqual(got, map[string]any{"a": "1"}) {
		t.Fatalf("item %v", got)
	}
	if got := f.expect("PUT", md+"/b", alice, "", map[string]any{"meta": map[string]any{"b": "2"}}, 200, "")["meta"]; !reflect.DeepEqual(got, map[string]any{"b": "2"}) {
		t.Fatalf("set item %v", got)
	}
	// A key with ':' escaped, as clients may send it.
	if got := f.expect("PUT", md+"/hw%3Aarch", alice, "", map[string]any{"meta": map[string]any{"hw:arch": "x86_64"}}, 200, "")["meta"]; !reflect.DeepEqual(got, map[string]any{"hw:arch": "x86_64"}) {
		t.Fatalf("set escaped item %v", got)
	}
	f.expect("DELETE", md+"/hw%3Aarch", alice, "", nil, 204, "")
	f.expect("PUT", md+"/b", alice, "", map[string]any{"meta": map[string]any{"c": "2"}}, 400, "badRequest", "Request body and URI mismatch")
	f.expect("PUT", md+"/b", alice, "", map[string]any{"meta": map[string]any{"b": "2", "c": "3"}}, 400, "badRequest", "too many items")
	f.expect("PUT", md, alice, "", map[string]any{"metadata": map[string]any{"name": "x"}}, 400, "badRequest", "metadata")
	f.expect("POST", md, alice, "", map[string]any{"meta": map[string]any{}}, 400, "badRequest", "metadata")
	f.expect("DELETE", md+"/a", alice, "", nil, 204, "")
	f.expect("DELETE", md+"/a", alice, "", nil, 404, "itemNotFound", "Invalid metadata key")
	f.expect("GET", md+"/a", alice, "", nil, 404, "itemNotFound", "Invalid metadata key")
	if got := f.expect("GET", md, alice, "", nil, 200, "")["metadata"]; !reflect.DeepEqual(got, map[string]any{"b": "2", "os_distro": "fedora"}) {
		t.Fatalf("after delete %v", got)
	}
	// Who may change an image is Glance's: bob cannot see it, a
	// project's member cannot change the public one.
	f.expect("POST", md, bob, "", map[string]any{"metadata": map[string]any{"x": "1"}}, 404, "itemNotFound")
	f.expect("POST", "/v2.1/images/"+pub+"/metadata", alice, "", map[string]any{"metadata": map[string]any{"x": "1"}}, 403, "forbidden")

	// Microversions: the proxy ends at 2.35, its metadata at 2.38.
	f.expect("GET", "/v2.1/images/"+snap, alice, "2.35", nil, 200, "")
	f.expect("GET", "/v2.1/images/"+snap, alice, "2.36", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/images", alice, "2.36", nil, 404, "itemNotFound")
	f.expect("GET", md, alice, "2.38", nil, 200, "")
	f.expect("GET", md, alice, "2.39", nil, 404, "itemNotFound")

	// Delete.
	f.expect("DELETE", "/v2.1/images/"+snap, bob, "", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/images/"+snap, alice, "", nil, 204, "")
	f.expect("GET", "/v2.1/images/"+snap, alice, "", nil, 404, "itemNotFound")

	// Without an image service the proxy says so.
	f.svc.cfg.ImageAPI = nil
	f.expect("GET", "/v2.1/images", alice, "", nil, 501, "notImplemented", "image service")
}
