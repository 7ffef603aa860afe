package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/object/objecttest"
)

const (
	admin   = "admin-token"
	alice   = "alice-token" // member of project A
	bob     = "bob-token"   // member of project B
	carol   = "carol-token" // reader of project A
	projA   = "project-a"
	projB   = "project-b"
	projAdm = "project-admin"
)

type fixture struct {
	t       *testing.T
	svc     *Service
	local   *store.Local
	objects *object.Service
	srv     *httptest.Server
	now     time.Time
}

func newFixture(t *testing.T, tweak ...func(*Config)) *fixture {
	t.Helper()
	local, err := store.NewLocal(Schema(), eventstate.Schema())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, local: local, objects: objecttest.New(t, 6, 4096), now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	auth := apitest.Tokens{
		admin: {UserID: "u-admin", ProjectID: projAdm, Roles: []string{"admin", "member", "reader"}},
		alice: {UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}},
		bob:   {UserID: "u-bob", ProjectID: projB, Roles: []string{"member", "reader"}},
		carol: {UserID: "u-carol", ProjectID: projA, Roles: []string{"reader"}},
	}
	cfg := Config{Repl: local, Auth: auth, Objects: f.objects, Node: "n1", Now: func() time.Time { return f.now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tw := range tweak {
		tw(&cfg)
	}
	f.svc, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/image/", http.StripPrefix("/image", f.svc.Handler()))
	mux.Handle("/image", http.StripPrefix("/image", f.svc.Handler()))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// tick moves the fixture's clock on, so timestamps differ.
func (f *fixture) tick() { f.now = f.now.Add(time.Second) }

type response struct {
	code   int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do makes a request; body is JSON-encoded unless it is a string or
// []byte, sent as is with contentType.
func (f *fixture) do(method, path, tok string, body any, header ...string) response {
	f.t.Helper()
	res := apitest.Call(f.t, method, f.srv.URL+"/image"+path, tok, body, append([]string{"Accept", "application/json"}, header...)...)
	return response{code: res.Code, header: res.Header, raw: res.Raw, body: res.Body}
}

// expect checks a request's status; for errors, that Glance's body names
// the problem (inMsg).
func (f *fixture) expect(status int, method, path, tok string, body any, inMsg ...string) response {
	f.t.Helper()
	res := f.do(method, path, tok, body)
	if res.code != status {
		f.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.code, status, res.raw)
	}
	if status >= 400 {
		msg, _ := res.body["message"].(string)
		if res.body["title"] != http.StatusText(status) || msg == "" {
			f.t.Fatalf("%s %s: not a Glance error body: %s", method, path, res.raw)
		}
		for _, s := range inMsg {
			if !strings.Contains(msg, s) {
				f.t.Fatalf("%s %s: message %q lacks %q", method, path, msg, s)
			}
		}
	}
	return res
}

func (f *fixture) create(tok string, fields map[string]any) map[string]any {
	f.t.Helper()
	f.tick()
	if _, ok := fields["disk_format"]; !ok {
		fields["disk_format"] = "raw"
	}
	if _, ok := fields["container_format"]; !ok {
		fields["container_format"] = "bare"
	}
	return f.expect(http.StatusCreated, "POST", "/v2/images", tok, fields).body
}

func (f *fixture) upload(tok, id string, data []byte) {
	f.t.Helper()
	f.expect(http.StatusNoContent, "PUT", "/v2/images/"+id+"/file", tok, data)
}

func (f *fixture) show(tok, id string) map[string]any {
	f.t.Helper()
	return f.expect(http.StatusOK, "GET", "/v2/images/"+id, tok, nil).body
}

func (f *fixture) patch(status int, tok, id string, ops ...map[string]any) response {
	f.t.Helper()
	raw, _ := json.Marshal(ops)
	res := f.do("PATCH", "/v2/images/"+id, tok, string(raw), "Content-Type", patchV21)
	if res.code != status {
		f.t.Fatalf("PATCH %s %v: status %d, want %d: %s", id, ops, res.code, status, res.raw)
	}
	return res
}

// dataObjects lists the objects in the data container by the image each
// belongs to (an image id per object).
func (f *fixture) dataObjects() []string {
	f.t.Helper()
	entries, _, err := f.objects.List(context.Background(), f.svc.cfg.Account, f.svc.cfg.Container, object.ListOptions{})
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, imageOf(e.Name()))
	}
	return out
}

func ids(body map[string]any) []string {
	var out []string
	list, _ := body["images"].([]any)
	for _, x := range list {
		out = append(out, x.(map[string]any)["id"].(string))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVersionDiscovery(t *testing.T) {
	f := newFixture(t)
	for path, status := range map[string]int{"": http.StatusMultipleChoices, "/": http.StatusMultipleChoices, "/versions": http.StatusOK} {
		res := f.do("GET", path, "", nil)
		if res.code != status {
			t.Fatalf("GET /image%s: %d, want %d", path, res.code, status)
		}
		found := false
		for _, v := range res.body["versions"].([]any) {
			v := v.(map[string]any)
			link := v["links"].([]any)[0].(map[string]any)
			if v["id"] == "v2.0" && link["rel"] == "self" && link["href"] == f.srv.URL+"/image/v2/" {
				found = true
			}
		}
		if !found {
			t.Fatalf("GET /image%s lists no v2.0 with a self link: %s", path, res.raw)
		}
	}
	f.expect(http.StatusUnauthorized, "GET", "/v2/images", "", nil)
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	f := newFixture(t)
	img := f.create(alice, map[string]any{"name": "cirros", "disk_format": "qcow2", "os_distro": "cirros"})
	id := img["id"].(string)
	if img["status"] != "queued" || img["size"] != nil || img["checksum"] != nil || img["visibility"] != "shared" || img["owner"] != projA {
		t.Fatalf("new image: %v", img)
	}
	if res := f.expect(http.StatusNoContent, "GET", "/v2/images/"+id+"/file", alice, nil); len(res.raw) != 0 {
		t.Fatalf("file of a queued image: %q", res.raw)
	}
	// A qcow2 header saying the disk is 1 GiB, then random bytes.
	data := randomBytes(t, 100_000)
	copy(data, "QFI\xfb\x00\x00\x00\x03")
	for i := 8; i < 24; i++ {
		data[i] = 0
	}
	copy(data[24:32], []byte{0, 0, 0, 0, 0x40, 0, 0, 0})
	sum := md5.Sum(data)
	res := f.do("PUT", "/v2/images/"+id+"/file", alice, data, "Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	if res.code != http.StatusNoContent {
		t.Fatalf("upload: %d %s", res.code, res.raw)
	}
	got := f.show(alice, id)
	sha := sha512.Sum512(data)
	want := map[string]any{"status": "active", "size": float64(len(data)), "checksum": hex.EncodeToString(sum[:]),
		"os_hash_algo": "sha512", "os_hash_value": hex.EncodeToString(sha[:]), "virtual_size": float64(1 << 30), "os_distro": "cirros"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	f.expect(http.StatusNotFound, "GET", "/v2/images/"+id+"/file", bob, nil)
	dl := f.do("GET", "/v2/images/"+id+"/file", alice, nil)
	if dl.code != http.StatusOK || !bytes.Equal(dl.raw, data) {
		t.Fatalf("download: %d, %d bytes, equal %v", dl.code, len(dl.raw), bytes.Equal(dl.raw, data))
	}
	if dl.header.Get("Content-MD5") != hex.EncodeToString(sum[:]) || dl.header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("download headers: %v", dl.header)
	}
	part := f.do("GET", "/v2/images/"+id+"/file", alice, nil, "Range", "bytes=1000-1999")
	if part.code != http.StatusPartialContent || !bytes.Equal(part.raw, data[1000:2000]) || part.header.Get("Content-Range") != "bytes 1000-1999/100000" {
		t.Fatalf("range: %d %v", part.code, part.header)
	}
	// A second upload to an active image is refused.
	f.expect(http.StatusConflict, "PUT", "/v2/images/"+id+"/file", alice, []byte("again"))
	// The compute side streams it by id.
	rc, row, err := f.svc.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, data) || row.Checksum != hex.EncodeToString(sum[:]) || row.Status != StatusActive {
		t.Fatalf("Open: %v, %d bytes, %+v", err, len(back), row)
	}
	if objs := f.dataObjects(); len(objs) != 1 || objs[0] != id {
		t.Fatalf("data objects %v, want [%s]", objs, id)
	}
}

func TestDownloadRangeUnsatisfiable(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{})["id"].(string)
	f.upload(alice, id, []byte("0123456789"))
	res := f.do("GET", "/v2/images/"+id+"/file", alice, nil, "Range", "bytes=50-60")
	if res.code != http.StatusRequestedRangeNotSatisfiable || res.header.Get("Content-Range") != "bytes */10" {
		t.Fatalf("range past the end: %d %v", res.code, res.header)
	}
}

// rawUpload sends an upload over a bare connection and hangs up after
// sending body, which is less than the request promised.
func (f *fixture) rawUpload(id string, head string, body []byte) {
	f.t.Helper()
	u, _ := url.Parse(f.srv.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		f.t.Fatal(err)
	}
	fmt.Fprintf(c, "PUT /image/v2/images/%s/file HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\nContent-Type: application/octet-stream\r\n%s\r\n", id, u.Host, alice, head)
	c.Write(body)
	c.(*net.TCPConn).CloseWrite()
	// Wait for the server to give up on the request.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, bufio.NewReader(c))
	c.Close()
}

// streamUpload starts an upload of image id whose body is what the
// caller writes to pw, until it closes it; done gets the answer's status
// (0 if the request failed).
func (f *fixture) streamUpload(tok, id string) (pw *io.PipeWriter, done <-chan int) {
	pr, pw := io.Pipe()
	codes := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("PUT", f.srv.URL+"/image/v2/images/"+id+"/file", pr)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			codes <- 0
			return
		}
		resp.Body.Close()
		codes <- resp.StatusCode
	}()
	return pw, codes
}

func (f *fixture) waitStatus(id, status string) map[string]any {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		img := f.show(alice, id)
		if img["status"] == status || time.Now().After(deadline) {
			if img["status"] != status {
				f.t.Fatalf("image %s is %v, want %s", id, img["status"], status)
			}
			return img
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFailedUploadLeavesImageQueuedWithoutData(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxImageSize = 50_000 })
	data := randomBytes(t, 20_000)
	tests := map[string]func(id string){
		"content-length cut short": func(id string) {
			f.rawUpload(id, "Content-Length: 20000\r\n", data[:7000])
		},
		"chunked cut short": func(id string) {
			f.rawUpload(id, "Transfer-Encoding: chunked\r\n", []byte(fmt.Sprintf("%x\r\n%s\r\n", 7000, data[:7000])))
		},
		"wrong md5": func(id string) {
			res := f.do("PUT", "/v2/images/"+id+"/file", alice, data, "Content-MD5", strings.Repeat("0", 32))
			if res.code != http.StatusBadRequest {
				t.Fatalf("bad md5: %d %s", res.code, res.raw)
			}
		},
		"too large, declared": func(id string) {
			f.expect(http.StatusRequestEntityTooLarge, "PUT", "/v2/images/"+id+"/file", alice, randomBytes(t, 60_000))
		},
		"too large, chunked": func(id string) {
			req, _ := http.NewRequest("PUT", f.srv.URL+"/image/v2/images/"+id+"/file", io.MultiReader(bytes.NewReader(randomBytes(t, 60_000))))
			req.ContentLength = -1
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("X-Auth-Token", alice)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("chunked too large: %d", resp.StatusCode)
			}
		},
		"wrong content type": func(id string) {
			res := f.do("PUT", "/v2/images/"+id+"/file", alice, string(data))
			if res.code != http.StatusUnsupportedMediaType {
				t.Fatalf("json upload: %d", res.code)
			}
		},
	}
	for name, fail := range tests {
		t.Run(name, func(t *testing.T) {
			id := f.create(alice, map[string]any{"name": name})["id"].(string)
			fail(id)
			img := f.waitStatus(id, "queued")
			if img["size"] != nil || img["checksum"] != nil {
				t.Fatalf("failed upload left %v", img)
			}
			if objs := f.dataObjects(); len(objs) != 0 {
				t.Fatalf("failed upload left data %v", objs)
			}
			// The image takes a proper upload afterwards.
			f.upload(alice, id, data)
			if got := f.show(alice, id); got["status"] != "active" || got["size"] != float64(len(data)) {
				t.Fatalf("retry: %v", got)
			}
			f.expect(http.StatusNoContent, "DELETE", "/v2/images/"+id, alice, nil)
		})
	}
	// An image without formats takes no data.
	id := f.create(alice, map[string]any{"disk_format": nil, "container_format": nil})["id"].(string)
	f.expect(http.StatusBadRequest, "PUT", "/v2/images/"+id+"/file", alice, data, "disk_format")
}

func TestDeleteDuringUploadDropsData(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{})["id"].(string)
	pw, done := f.streamUpload(alice, id)
	pw.Write(randomBytes(t, 10_000))
	f.waitStatus(id, "saving")
	f.expect(http.StatusNoContent, "DELETE", "/v2/images/"+id, alice, nil)
	pw.Write(randomBytes(t, 10_000))
	pw.Close()
	if code := <-done; code != http.StatusGone {
		t.Fatalf("upload to a deleted image: %d, want 410", code)
	}
	if objs := f.dataObjects(); len(objs) != 0 {
		t.Fatalf("upload to a deleted image left data %v", objs)
	}
}

func TestCreateValidation(t *testing.T) {
	f := newFixture(t)
	chosen := "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	tests := map[string]struct {
		tok    string
		fields map[string]any
		status int
		inMsg  string
	}{
		"bad disk format":       {alice, map[string]any{"disk_format": "wrong"}, 400, "disk_format"},
		"bad container format":  {alice, map[string]any{"container_format": "wrong"}, 400, "container_format"},
		"status is read-only":   {alice, map[string]any{"status": "active"}, 403, "status"},
		"size is read-only":     {alice, map[string]any{"size": 5}, 403, "size"},
		"reserved namespace":    {alice, map[string]any{"os_glance_foo": "bar"}, 403, "os_glance_foo"},
		"reserved attribute":    {alice, map[string]any{"deleted": "true"}, 403, "deleted"},
		"id not a uuid":         {alice, map[string]any{"id": "abc"}, 400, "id"},
		"negative min_ram":      {alice, map[string]any{"min_ram": -1}, 400, "min_ram"},
		"fractional min_disk":   {alice, map[string]any{"min_disk": 1.5}, 400, "min_disk"},
		"property not a string": {alice, map[string]any{"hw_cpu_cores": 4}, 400, "hw_cpu_cores"},
		"name too long":         {alice, map[string]any{"name": strings.Repeat("x", 256)}, 400, "name"},
		"protected not a bool":  {alice, map[string]any{"protected": "yes"}, 400, "protected"},
		"bad visibility":        {alice, map[string]any{"visibility": "everyone"}, 400, "visibility"},
		"public needs admin":    {alice, map[string]any{"visibility": "public"}, 403, "publicize_image"},
		"others' owner":         {alice, map[string]any{"owner": projB}, 403, projB},
		"reader cannot create":  {carol, map[string]any{"name": "x"}, 403, ""},
		"bad kernel id":         {alice, map[string]any{"kernel_id": "kernel"}, 400, "kernel_id"},
		"too many tags":         {alice, map[string]any{"tags": manyTags(129)}, 413, "tags"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fields := map[string]any{"disk_format": "raw", "container_format": "bare"}
			for k, v := range tc.fields {
				fields[k] = v
			}
			f.expect(tc.status, "POST", "/v2/images", tc.tok, fields, tc.inMsg)
		})
	}
	if res := f.expect(http.StatusOK, "GET", "/v2/images", alice, nil); len(ids(res.body)) != 0 {
		t.Fatalf("refused creates left images: %s", res.raw)
	}
	img := f.create(alice, map[string]any{"id": chosen, "tags": []any{"a", "b", "a"}, "min_ram": 512, "protected": false})
	if img["id"] != chosen || fmt.Sprint(img["tags"]) != "[a b]" || img["min_ram"] != float64(512) {
		t.Fatalf("created %v", img)
	}
	f.expect(http.StatusConflict, "POST", "/v2/images", alice, map[string]any{"id": chosen})
	// Admins may give an image to another project and make it public.
	img = f.create(admin, map[string]any{"owner": projB, "visibility": "public"})
	if img["owner"] != projB || img["visibility"] != "public" {
		t.Fatalf("admin create: %v", img)
	}
	if img := f.show(bob, img["id"].(string)); img["owner"] != projB {
		t.Fatalf("bob's image: %v", img)
	}
}

func manyTags(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = fmt.Sprintf("tag-%d", i)
	}
	return out
}

func TestListFiltersSortAndPages(t *testing.T) {
	f := newFixture(t)
	type spec struct {
		name, disk, container string
		size                  int
		tags                  []any
		props                 map[string]any
	}
	specs := []spec{
		{"alpha", "raw", "bare", 3000, []any{"red", "big"}, map[string]any{"os_distro": "debian"}},
		{"bravo", "qcow2", "bare", 1000, []any{"red"}, map[string]any{"os_distro": "ubuntu"}},
		{"charlie", "qcow2", "ovf", 2000, []any{"blue"}, nil},
		{"delta", "iso", "bare", 0, nil, map[string]any{"os_distro": "debian"}},
		{"echo", "vmdk", "bare", -1, []any{"red"}, nil}, // no data
	}
	byName := map[string]string{}
	for _, s := range specs {
		fields := map[string]any{"name": s.name, "disk_format": s.disk, "container_format": s.container}
		if s.tags != nil {
			fields["tags"] = s.tags
		}
		for k, v := range s.props {
			fields[k] = v
		}
		id := f.create(alice, fields)["id"].(string)
		byName[s.name] = id
		if s.size >= 0 {
			f.upload(alice, id, randomBytes(t, s.size))
		}
	}
	f.patch(http.StatusOK, alice, byName["charlie"], map[string]any{"op": "replace", "path": "/protected", "value": true})
	t.Cleanup(func() {})
	// An image of another project and a hidden one never show up below.
	f.create(bob, map[string]any{"name": "alpha"})
	f.create(alice, map[string]any{"name": "hidden", "os_hidden": true})

	names := func(res response) string {
		idToName := map[string]string{}
		for n, id := range byName {
			idToName[id] = n
		}
		var out []string
		for _, id := range ids(res.body) {
			if n, ok := idToName[id]; ok {
				out = append(out, n)
			} else {
				out = append(out, "?"+id)
			}
		}
		return strings.Join(out, ",")
	}
	tests := map[string]struct {
		query string
		want  string
	}{
		"default order is newest first": {"", "echo,delta,charlie,bravo,alpha"},
		"name":                          {"name=alpha", "alpha"},
		"name in":                       {"name=in:alpha,delta&sort=name:asc", "alpha,delta"},
		"status":                        {"status=queued", "echo"},
		"disk format":                   {"disk_format=qcow2&sort_key=name&sort_dir=asc", "bravo,charlie"},
		"container format":              {"container_format=ovf", "charlie"},
		"one tag":                       {"tag=red&sort=name:asc", "alpha,bravo,echo"},
		"every tag":                     {"tag=red&tag=big", "alpha"},
		"size range":                    {"size_min=1000&size_max=2500&sort=size:asc", "bravo,charlie"},
		"exact size":                    {"size=0", "delta"},
		"protected":                     {"protected=true", "charlie"},
		"property":                      {"os_distro=debian&sort=name", "delta,alpha"},
		"owner":                         {"owner=" + projA + "&name=alpha", "alpha"},
		"visibility":                    {"visibility=shared&name=bravo", "bravo"},
		"sort by size descending":       {"sort=size:desc", "alpha,charlie,bravo,delta,echo"},
		"sort_key asc":                  {"sort_key=size&sort_dir=asc", "echo,delta,bravo,charlie,alpha"},
		"several sort keys":             {"sort=disk_format:asc,name:desc", "delta,charlie,bravo,alpha,echo"},
		"created_at operator":           {"created_at=gte:" + url.QueryEscape(f.now.Add(-3*time.Second).Format(time.RFC3339)), "echo,delta"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := f.expect(http.StatusOK, "GET", "/v2/images?"+tc.query, alice, nil)
			if got := names(res); got != tc.want {
				t.Fatalf("%s: got %s, want %s", tc.query, got, tc.want)
			}
		})
	}
	if res := f.expect(http.StatusOK, "GET", "/v2/images?os_hidden=true", alice, nil); len(ids(res.body)) != 1 {
		t.Fatalf("os_hidden=true: %s", res.raw)
	}

	// Pages of two, followed by their next links, give everything once.
	var seen []string
	path := "/v2/images?limit=2&sort=name:asc"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		res := f.expect(http.StatusOK, "GET", path, alice, nil)
		if res.body["first"] != "/v2/images?limit=2&sort=name%3Aasc" || res.body["schema"] != "/v2/schemas/images" {
			t.Fatalf("page links: %s", res.raw)
		}
		seen = append(seen, strings.Split(names(res), ",")...)
		next, _ := res.body["next"].(string)
		path = strings.TrimPrefix(next, "")
		if next != "" && !strings.HasPrefix(next, "/v2/images?") {
			t.Fatalf("next link %q", next)
		}
	}
	if got := strings.Join(seen, ","); got != "alpha,bravo,charlie,delta,echo" {
		t.Fatalf("pages gave %s", got)
	}
	// The marker need not match the filter.
	res := f.expect(http.StatusOK, "GET", "/v2/images?sort=name:asc&disk_format=qcow2&marker="+byName["alpha"], alice, nil)
	if got := names(res); got != "bravo,charlie" {
		t.Fatalf("after marker: %s", got)
	}

	bad := map[string]string{
		"sort_key=nonsense":                        "nonsense",
		"sort=name:sideways":                       "sideways",
		"sort=name&sort_key=name":                  "combined",
		"limit=-1":                                 "limit",
		"limit=x":                                  "limit",
		"marker=" + api.NewUUID():                  "marker",
		"visibility=everyone":                      "visibility",
		"member_status=maybe":                      "maybe",
		"status=nonsense":                          "nonsense",
		"size_min=small":                           "size_min",
		"created_at=gte:yesterday":                 "yesterday",
		"sort_key=name&sort_dir=asc&sort_dir=desc": "sort dirs",
	}
	for q, inMsg := range bad {
		f.expect(http.StatusBadRequest, "GET", "/v2/images?"+q, alice, nil, inMsg)
	}
}

func TestPatch(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{"name": "old", "hw_disk_bus": "virtio"})["id"].(string)
	res := f.patch(http.StatusOK, alice, id,
		map[string]any{"op": "replace", "path": "/name", "value": "new"},
		map[string]any{"op": "add", "path": "/os_distro", "value": "debian"},
		map[string]any{"op": "add", "path": "/hw_disk_bus", "value": "scsi"}, // add replaces in v2.1
		map[string]any{"op": "replace", "path": "/min_disk", "value": 2},
		map[string]any{"op": "add", "path": "/tags", "value": []any{"x", "y"}},
		map[string]any{"op": "replace", "path": "/visibility", "value": "private"},
		map[string]any{"op": "add", "path": "/a~1b", "value": "slash"},
	)
	want := map[string]any{"name": "new", "os_distro": "debian", "hw_disk_bus": "scsi", "min_disk": float64(2), "visibility": "private", "a/b": "slash"}
	for k, v := range want {
		if res.body[k] != v {
			t.Errorf("%s = %v, want %v", k, res.body[k], v)
		}
	}
	if fmt.Sprint(res.body["tags"]) != "[x y]" {
		t.Errorf("tags = %v", res.body["tags"])
	}
	f.patch(http.StatusOK, alice, id, map[string]any{"op": "remove", "path": "/os_distro"})
	if img := f.show(alice, id); img["os_distro"] != nil {
		t.Fatalf("removed property still there: %v", img)
	}

	// v2.0 patches, as tempest sends them: add refuses an existing property.
	raw := `[{"replace": "/name", "value": "v20"}, {"add": "/new_prop", "value": "1"}]`
	if r := f.do("PATCH", "/v2/images/"+id, alice, raw, "Content-Type", patchV20); r.code != 200 || r.body["name"] != "v20" || r.body["new_prop"] != "1" {
		t.Fatalf("v2.0 patch: %d %s", r.code, r.raw)
	}
	if r := f.do("PATCH", "/v2/images/"+id, alice, `[{"add": "/new_prop", "value": "2"}]`, "Content-Type", patchV20); r.code != http.StatusConflict {
		t.Fatalf("v2.0 add of an existing property: %d", r.code)
	}

	before := f.show(alice, id)
	tests := map[string]struct {
		status int
		ops    []map[string]any
	}{
		"status is read-only":     {403, []map[string]any{{"op": "replace", "path": "/status", "value": "active"}}},
		"id is read-only":         {403, []map[string]any{{"op": "replace", "path": "/id", "value": api.NewUUID()}}},
		"checksum is read-only":   {403, []map[string]any{{"op": "add", "path": "/checksum", "value": "x"}}},
		"reserved property":       {403, []map[string]any{{"op": "add", "path": "/os_glance_foo", "value": "bar"}}},
		"base may not be removed": {403, []map[string]any{{"op": "remove", "path": "/name"}}},
		"remove missing property": {409, []map[string]any{{"op": "remove", "path": "/nope"}}},
		"replace missing":         {409, []map[string]any{{"op": "replace", "path": "/nope", "value": "x"}}},
		"public needs admin":      {403, []map[string]any{{"op": "replace", "path": "/visibility", "value": "public"}}},
		"owner needs admin":       {403, []map[string]any{{"op": "replace", "path": "/owner", "value": projB}}},
		"bad min_ram":             {400, []map[string]any{{"op": "replace", "path": "/min_ram", "value": "lots"}}},
		"bad disk format":         {400, []map[string]any{{"op": "replace", "path": "/disk_format", "value": "floppy"}}},
		"unknown op":              {400, []map[string]any{{"op": "move", "path": "/name", "from": "/x"}}},
		"deep path":               {400, []map[string]any{{"op": "add", "path": "/tags/-", "value": "x"}}},
		"no value":                {400, []map[string]any{{"op": "replace", "path": "/name"}}},
		// The good first change must not be kept either.
		"all or nothing": {403, []map[string]any{
			{"op": "replace", "path": "/name", "value": "half"},
			{"op": "replace", "path": "/status", "value": "active"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := f.patch(tc.status, alice, id, tc.ops...)
			if res.body["message"] == nil {
				t.Fatalf("no message: %s", res.raw)
			}
		})
	}
	after := f.show(alice, id)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("refused patches changed the image:\n%v\n%v", before, after)
	}
	if r := f.do("PATCH", "/v2/images/"+id, alice, `[]`); r.code != http.StatusUnsupportedMediaType {
		t.Fatalf("patch as application/json: %d", r.code)
	}
	// Formats change only while the image has no data.
	f.upload(alice, id, []byte("data"))
	f.patch(http.StatusForbidden, alice, id, map[string]any{"op": "replace", "path": "/disk_format", "value": "qcow2"})
	f.patch(http.StatusOK, alice, id, map[string]any{"op": "replace", "path": "/disk_format", "value": "raw"})
	// Admins may change the owner.
	if r := f.patch(http.StatusOK, admin, id, map[string]any{"op": "replace", "path": "/owner", "value": projB}); r.body["owner"] != projB {
		t.Fatalf("owner: %v", r.body)
	}
}

func TestVisibilityAcrossProjects(t *testing.T) {
	f := newFixture(t)
	listed := func(tok, query, id string) bool {
		return contains(ids(f.expect(http.StatusOK, "GET", "/v2/images?"+query, tok, nil).body), id)
	}
	private := f.create(alice, map[string]any{"visibility": "private"})["id"].(string)
	f.expect(http.StatusNotFound, "GET", "/v2/images/"+private, bob, nil)
	f.expect(http.StatusNotFound, "GET", "/v2/images/"+private+"/file", bob, nil)
	f.expect(http.StatusNotFound, "DELETE", "/v2/images/"+private, bob, nil)
	if listed(bob, "", private) || listed(bob, "visibility=all", private) || !listed(alice, "", private) || !listed(admin, "", private) {
		t.Fatal("private image listed wrongly")
	}
	// A reader of the project sees it but may not change it.
	f.show(carol, private)
	f.patch(http.StatusForbidden, carol, private, map[string]any{"op": "replace", "path": "/name", "value": "x"})
	f.expect(http.StatusForbidden, "DELETE", "/v2/images/"+private, carol, nil)

	public := f.create(admin, map[string]any{"visibility": "public"})["id"].(string)
	f.upload(admin, public, []byte("public data"))
	f.show(bob, public)
	if dl := f.do("GET", "/v2/images/"+public+"/file", bob, nil); string(dl.raw) != "public data" {
		t.Fatalf("bob's download of a public image: %d %q", dl.code, dl.raw)
	}
	if !listed(bob, "", public) {
		t.Fatal("public image not listed")
	}
	f.patch(http.StatusForbidden, bob, public, map[string]any{"op": "replace", "path": "/name", "value": "mine"})
	f.expect(http.StatusForbidden, "DELETE", "/v2/images/"+public, bob, nil)
	f.expect(http.StatusForbidden, "PUT", "/v2/images/"+public+"/tags/x", bob, nil)

	community := f.create(alice, map[string]any{"visibility": "community"})["id"].(string)
	f.show(bob, community)
	if listed(bob, "", community) || !listed(bob, "visibility=community", community) || !listed(bob, "visibility=all", community) || !listed(alice, "", community) {
		t.Fatal("community image listed wrongly")
	}

	shared := f.create(alice, map[string]any{"visibility": "shared"})["id"].(string)
	f.expect(http.StatusNotFound, "GET", "/v2/images/"+shared, bob, nil)
	m := f.expect(http.StatusOK, "POST", "/v2/images/"+shared+"/members", alice, map[string]any{"member": projB}).body
	if m["status"] != "pending" || m["member_id"] != projB || m["image_id"] != shared {
		t.Fatalf("member: %v", m)
	}
	f.expect(http.StatusConflict, "POST", "/v2/images/"+shared+"/members", alice, map[string]any{"member": projB})
	f.show(bob, shared) // members see it whatever their answer
	if listed(bob, "", shared) || !listed(bob, "visibility=shared&member_status=pending", shared) {
		t.Fatal("pending shared image listed wrongly")
	}
	f.expect(http.StatusForbidden, "PUT", "/v2/images/"+shared+"/members/"+projB, alice, map[string]any{"status": "accepted"})
	f.expect(http.StatusBadRequest, "PUT", "/v2/images/"+shared+"/members/"+projB, bob, map[string]any{"status": "maybe"})
	f.expect(http.StatusOK, "PUT", "/v2/images/"+shared+"/members/"+projB, bob, map[string]any{"status": "accepted"})
	if !listed(bob, "", shared) {
		t.Fatal("accepted shared image not listed")
	}
	if got := f.expect(http.StatusOK, "GET", "/v2/images/"+shared+"/members/"+projB, bob, nil).body; got["status"] != "accepted" {
		t.Fatalf("member as bob sees it: %v", got)
	}
	if ms := f.expect(http.StatusOK, "GET", "/v2/images/"+shared+"/members", alice, nil).body["members"].([]any); len(ms) != 1 {
		t.Fatalf("members: %v", ms)
	}
	f.expect(http.StatusForbidden, "DELETE", "/v2/images/"+shared+"/members/"+projB, bob, nil)
	f.expect(http.StatusForbidden, "POST", "/v2/images/"+private+"/members", alice, map[string]any{"member": projB}, "shared")
	f.expect(http.StatusNoContent, "DELETE", "/v2/images/"+shared+"/members/"+projB, alice, nil)
	f.expect(http.StatusNotFound, "GET", "/v2/images/"+shared, bob, nil)
	if listed(bob, "visibility=all&member_status=all", shared) {
		t.Fatal("removed member still lists the image")
	}
	// The compute side's check.
	tx := f.local.Local()
	for _, c := range []struct {
		id   string
		who  *api.Principal
		want bool
	}{
		{private, &api.Principal{ProjectID: projB, Roles: []string{"member"}}, false},
		{private, &api.Principal{ProjectID: projA, Roles: []string{"member"}}, true},
		{public, &api.Principal{ProjectID: projB, Roles: []string{"member"}}, true},
		{community, &api.Principal{ProjectID: projB, Roles: []string{"member"}}, true},
	} {
		img, err := Load(tx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.svc.Visible(c.who, img); got != c.want {
			t.Errorf("Visible(%s, %s) = %v", c.who.ProjectID, img.Visibility, got)
		}
	}
	if _, err := Load(tx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of nothing: %v", err)
	}
}

func TestProtectedDeleteAndDataRemoval(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{"protected": true})["id"].(string)
	f.upload(alice, id, []byte("keep me"))
	f.expect(http.StatusForbidden, "DELETE", "/v2/images/"+id, alice, nil, "protected")
	f.expect(http.StatusForbidden, "DELETE", "/v2/images/"+id, admin, nil, "protected")
	f.patch(http.StatusOK, alice, id, map[string]any{"op": "replace", "path": "/protected", "value": false})
	if objs := f.dataObjects(); len(objs) != 1 {
		t.Fatalf("data before delete: %v", objs)
	}
	f.expect(http.StatusNoContent, "DELETE", "/v2/images/"+id, alice, nil)
	f.expect(http.StatusNotFound, "GET", "/v2/images/"+id, alice, nil, id)
	f.expect(http.StatusNotFound, "DELETE", "/v2/images/"+id, alice, nil)
	if objs := f.dataObjects(); len(objs) != 0 {
		t.Fatalf("data after delete: %v", objs)
	}
	f.expect(http.StatusNotFound, "GET", "/v2/images/", alice, nil)
	f.expect(http.StatusNotFound, "DELETE", "/v2/images/", alice, nil)
}

func TestDeactivateReactivateAndTags(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{})["id"].(string)
	f.expect(http.StatusForbidden, "POST", "/v2/images/"+id+"/actions/deactivate", alice, nil)
	f.upload(alice, id, []byte("bytes"))
	f.expect(http.StatusNoContent, "POST", "/v2/images/"+id+"/actions/deactivate", alice, nil)
	f.expect(http.StatusNoContent, "POST", "/v2/images/"+id+"/actions/deactivate", alice, nil)
	if img := f.show(alice, id); img["status"] != "deactivated" {
		t.Fatalf("status %v", img["status"])
	}
	f.expect(http.StatusForbidden, "GET", "/v2/images/"+id+"/file", alice, nil, "deactivated")
	if dl := f.do("GET", "/v2/images/"+id+"/file", admin, nil); string(dl.raw) != "bytes" {
		t.Fatalf("admin download of a deactivated image: %d", dl.code)
	}
	f.expect(http.StatusNoContent, "POST", "/v2/images/"+id+"/actions/reactivate", alice, nil)
	if dl := f.do("GET", "/v2/images/"+id+"/file", alice, nil); string(dl.raw) != "bytes" {
		t.Fatalf("download after reactivation: %d", dl.code)
	}

	f.expect(http.StatusNoContent, "PUT", "/v2/images/"+id+"/tags/blue", alice, nil)
	f.expect(http.StatusNoContent, "PUT", "/v2/images/"+id+"/tags/blue", alice, nil)
	f.expect(http.StatusNoContent, "PUT", "/v2/images/"+id+"/tags/green", alice, nil)
	if img := f.show(alice, id); fmt.Sprint(img["tags"]) != "[blue green]" {
		t.Fatalf("tags %v", img["tags"])
	}
	f.expect(http.StatusNoContent, "DELETE", "/v2/images/"+id+"/tags/blue", alice, nil)
	f.expect(http.StatusNotFound, "DELETE", "/v2/images/"+id+"/tags/blue", alice, nil)
	f.expect(http.StatusNotFound, "PUT", "/v2/images/"+api.NewUUID()+"/tags/blue", alice, nil)
	if img := f.show(alice, id); fmt.Sprint(img["tags"]) != "[green]" {
		t.Fatalf("tags %v", img["tags"])
	}
}

func TestSchemas(t *testing.T) {
	f := newFixture(t)
	for _, name := range []string{"image", "images", "member", "members", "task", "tasks"} {
		res := f.expect(http.StatusOK, "GET", "/v2/schemas/"+name, alice, nil)
		if res.body["name"] != name || res.body["properties"] == nil {
			t.Fatalf("schema %s: %s", name, res.raw)
		}
	}
	props := f.expect(http.StatusOK, "GET", "/v2/schemas/image", alice, nil).body["properties"].(map[string]any)
	status := props["status"].(map[string]any)
	if status["readOnly"] != true || !strings.Contains(fmt.Sprint(props["disk_format"]), "qcow2") {
		t.Fatalf("image schema properties: %v", props)
	}
	f.expect(http.StatusNotFound, "GET", "/v2/schemas/nonsense", alice, nil)
}

func TestRunGivesBackAbandonedUploadsAndSweepsOrphans(t *testing.T) {
	lost := map[string]bool{"n2": true}
	f := newFixture(t, func(c *Config) { c.NodeLost = func(n string) bool { return lost[n] } })
	ctx := context.Background()
	mine := f.create(alice, map[string]any{})["id"].(string)      // by this node before it restarted
	theirs := f.create(alice, map[string]any{})["id"].(string)    // by a lost node
	running := f.create(alice, map[string]any{})["id"].(string)   // by this node now
	elsewhere := f.create(alice, map[string]any{})["id"].(string) // by a node that is up
	for id, at := range map[string][2]string{mine: {"n1", "old"}, theirs: {"n2", "x"}, running: {"n1", f.svc.run}, elsewhere: {"n3", "y"}} {
		if _, err := f.svc.mutate(ctx, id, func(img *Image) error {
			img.Status, img.UploadID, img.UploadNode, img.UploadRun = StatusSaving, "u-"+id, at[0], at[1]
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	f.svc.live.Store("u-"+running, true) // its request streams it
	// Data an upload stored before its node died, with no image.
	if err := f.svc.ensureContainer(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.objects.Put(ctx, f.svc.cfg.Account, f.svc.cfg.Container, "gone-image", strings.NewReader("orphan"), object.PutOptions{Size: 6}); err != nil {
		t.Fatal(err)
	}
	f.now = time.Now().Add(time.Hour)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- f.svc.Run(ctx) }()
	f.waitStatus(mine, "queued")
	f.waitStatus(theirs, "queued")
	deadline := time.Now().Add(10 * time.Second)
	for len(f.dataObjects()) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if objs := f.dataObjects(); len(objs) != 0 {
		t.Fatalf("orphaned data kept: %v", objs)
	}
	for _, id := range []string{running, elsewhere} {
		if img := f.show(alice, id); img["status"] != "saving" {
			t.Fatalf("live upload of %s given back: %v", id, img["status"])
		}
	}
}

func TestSnapshotRestoreEveryCommand(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{"name": "a", "tags": []any{"t"}, "os_distro": "x"})["id"].(string)
	f.upload(alice, id, []byte("data"))
	f.expect(http.StatusOK, "POST", "/v2/images/"+id+"/members", alice, map[string]any{"member": projB})
	gone := f.create(alice, map[string]any{})["id"].(string)
	f.expect(http.StatusNoContent, "DELETE", "/v2/images/"+gone, alice, nil)
	f.expect(http.StatusCreated, "POST", "/v2/metadefs/namespaces", admin, map[string]any{"namespace": "kept", "tags": []any{map[string]any{"name": "t1"}}})
	f.expect(http.StatusCreated, "POST", "/v2/metadefs/namespaces/kept/tags/t2", admin, nil)
	f.expect(http.StatusCreated, "POST", "/v2/metadefs/namespaces", admin, map[string]any{"namespace": "dropped"})
	f.expect(http.StatusNoContent, "DELETE", "/v2/metadefs/namespaces/dropped", admin, nil)
	imported := f.create(alice, map[string]any{"name": "imported"})["id"].(string)
	f.expect(http.StatusNoContent, "PUT", "/v2/images/"+imported+"/stage", alice, []byte("staged"))
	f.expect(http.StatusAccepted, "POST", "/v2/images/"+imported+"/import", alice, map[string]any{"method": map[string]any{"name": "glance-direct"}})
	f.now = f.now.Add(taskTTL)
	f.svc.expireTasks(context.Background())
	first := store.EveryCommandSurvivesSnapshot(t, f.local, Schema(), eventstate.Schema())
	// The gone image's row is gone (its events stay, naming it as their
	// resource_id).
	if !bytes.Contains(first, []byte(projB)) || bytes.Contains(first, []byte(`"id":"`+gone+`"`)) ||
		!bytes.Contains(first, []byte(`"t2"`)) || bytes.Contains(first, []byte(`"dropped"`)) {
		t.Fatalf("snapshot content wrong: %s", first)
	}
}

func TestErrorBodyFollowsAccept(t *testing.T) {
	f := newFixture(t)
	id := api.NewUUID()
	tests := map[string]struct {
		accept, contentType string
	}{
		"sdk":         {"application/json", "application/json"},
		"anything":    {"*/*", "text/html; charset=UTF-8"},
		"none":        {"", "text/html; charset=UTF-8"},
		"json first":  {"text/html;q=0.5, application/json", "application/json"},
		"neither":     {"text/plain", "text/plain; charset=UTF-8"},
		"application": {"application/*", "application/json"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", f.srv.URL+"/image/v2/images/"+id, nil)
			req.Header.Set("X-Auth-Token", alice)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != tc.contentType || !strings.Contains(string(raw), "No image found with ID "+id) {
				t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
			}
		})
	}
}

// A client that sends the start of an image and then stops, keeping its
// connection open, must not hold the stripe its data is read into beyond
// the blob store's fill timeout: it is told 408 and the image is queued
// again.
func TestTricklingUploadGivesBackItsBlocks(t *testing.T) {
	bufs := blob.NewBuffers(blob.DefaultBufferBudget)
	objs, _ := objecttest.NewWithBlobs(t, 6, 4096, &blob.Store{Buffers: bufs, FillTimeout: 300 * time.Millisecond})
	f := newFixture(t, func(c *Config) { c.Objects = objs })
	f.objects = objs
	id := f.create(alice, map[string]any{})["id"].(string)

	u, _ := url.Parse(f.srv.URL)
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Less than one stripe (4 × 4 KiB) of the promised MiB, then nothing.
	fmt.Fprintf(c, "PUT /image/v2/images/%s/file HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", id, u.Host, alice, 1<<20)
	c.Write(randomBytes(t, 1000))
	// The fill timeout ends the wait; this deadline only keeps a broken
	// build from hanging.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled upload: %v", err)
	}
	msg, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(msg), "too slowly") {
		t.Fatalf("trickled upload: %d %v %s, want 408", res.StatusCode, res.Header, msg)
	}
	if out := bufs.Out(); out != 0 {
		t.Fatalf("the trickled upload still holds %d bytes of blocks", out)
	}
	f.waitStatus(id, StatusQueued)
	if objs := f.dataObjects(); len(objs) != 0 {
		t.Fatalf("data objects %v after a trickled upload", objs)
	}
}
