package image

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/image/imagestate"
)

func TestImportFilter(t *testing.T) {
	def := DefaultImportFilter()
	loop := ImportFilter{AllowedSchemes: []string{"http"}, AllowedHosts: []string{"127.0.0.1"}, AllowedPorts: []int{8080}}
	noBad := ImportFilter{DisallowedHosts: []string{"bad.example"}, DisallowedPorts: []int{25}}
	for _, c := range []struct {
		f    ImportFilter
		uri  string
		pass bool
	}{
		{def, "http://images.example/cirros.img", true},
		{def, "https://images.example:443/cirros.img", true},
		{def, "http://images.example:8080/cirros.img", false},
		{def, "ftp://images.example/cirros.img", false},
		{def, "file:///etc/passwd", false},
		{def, "http://127.0.0.1/x", false},
		{def, "http://[::1]/x", false},
		{def, "http://10.1.2.3/x", false},
		{def, "http://169.254.169.254/latest/meta-data", false},
		{def, "http://100.64.0.1/x", false},
		{def, "http://[::ffff:127.0.0.1]/x", false},
		{def, "http://0.0.0.0/x", false},
		{def, "http://93.184.216.34/x", true},
		{loop, "http://127.0.0.1:8080/x", true},
		{loop, "http://127.0.0.1/x", false},
		{loop, "https://127.0.0.1:8080/x", false},
		{loop, "http://images.example:8080/x", false},
		{noBad, "http://bad.example/x", false},
		{noBad, "http://good.example:25/x", false},
		{noBad, "http://good.example:8443/x", true},
	} {
		u, err := url.Parse(c.uri)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.f.Check(u); (err == nil) != c.pass {
			t.Errorf("%s with %+v: %v, want pass %v", c.uri, c.f, err, c.pass)
		}
	}
}

// loopbackFilter lets the fixture fetch from srv, a loopback server,
// and nothing else.
func loopbackFilter(t *testing.T, srv *httptest.Server) func(*Config) {
	u, _ := url.Parse(srv.URL)
	port, _ := strconv.Atoi(u.Port())
	return func(c *Config) {
		c.ImportFilter = &ImportFilter{AllowedSchemes: []string{"http"}, AllowedHosts: []string{"127.0.0.1"}, AllowedPorts: []int{port}}
	}
}

// waitStatus polls the image until its status is not importing.
func (f *fixture) waitImported(id string) map[string]any {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		img := f.show(admin, id)
		if img["status"] != "importing" {
			return img
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("image %s still importing", id)
	return nil
}

func (f *fixture) imageTasks(tok, id string) []map[string]any {
	f.t.Helper()
	var out []map[string]any
	for _, t := range f.expect(http.StatusOK, "GET", "/v2/images/"+id+"/tasks", tok, nil).body["tasks"].([]any) {
		out = append(out, t.(map[string]any))
	}
	return out
}

func webDownload(uri string) map[string]any {
	return map[string]any{"method": map[string]any{"name": "web-download", "uri": uri}}
}

// web-download: the cloud fetches the URL; the image is importing, then
// active with the digests of what was fetched; its task records the
// request and its success. Tasks are the owner's to read per image, an
// admin's to list.
func TestWebDownload(t *testing.T) {
	data := randomBytes(t, 300_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/disk.raw":
			w.Write(data)
		case "/elsewhere":
			// A redirect must pass the filter too: port 80 is not allowed.
			http.Redirect(w, r, "http://127.0.0.1:80/disk.raw", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := newFixture(t, loopbackFilter(t, srv))
	info := f.expect(http.StatusOK, "GET", "/v2/info/import", alice, nil).body
	if v := info["import-methods"].(map[string]any)["value"].([]any); len(v) != 2 || v[1] != "web-download" {
		t.Fatalf("import methods: %v", info)
	}
	id := f.create(alice, map[string]any{"name": "web"})["id"].(string)
	res := f.expect(http.StatusAccepted, "POST", "/v2/images/"+id+"/import", alice, webDownload(srv.URL+"/disk.raw"))
	img := f.waitImported(id)
	md, sha := md5.Sum(data), sha512.Sum512(data)
	if img["status"] != "active" || img["size"] != float64(len(data)) || img["checksum"] != hex.EncodeToString(md[:]) || img["os_hash_value"] != hex.EncodeToString(sha[:]) {
		t.Fatalf("imported image: %v", img)
	}
	if dl := f.do("GET", "/v2/images/"+id+"/file", alice, nil); dl.code != http.StatusOK || !bytes.Equal(dl.raw, data) {
		t.Fatalf("download: %d, equal %v", dl.code, bytes.Equal(dl.raw, data))
	}
	tasks := f.imageTasks(alice, id)
	if len(tasks) != 1 {
		t.Fatalf("tasks: %v", tasks)
	}
	task := tasks[0]
	in := task["input"].(map[string]any)["import_req"].(map[string]any)["method"].(map[string]any)
	if task["status"] != "success" || task["type"] != "api_image_import" || task["owner"] != projA || task["image_id"] != id || task["user_id"] != "u-alice" ||
		task["request_id"] != res.header.Get("X-Openstack-Request-Id") || in["name"] != "web-download" || in["uri"] != srv.URL+"/disk.raw" || task["expires_at"] == nil {
		t.Fatalf("task: %v (request id %s)", task, res.header.Get("X-Openstack-Request-Id"))
	}
	taskID := task["id"].(string)
	f.expect(http.StatusNotFound, "GET", "/v2/images/"+id+"/tasks", bob, nil)
	f.expect(http.StatusForbidden, "GET", "/v2/tasks", alice, nil)
	f.expect(http.StatusForbidden, "GET", "/v2/tasks/"+taskID, alice, nil)
	if full := f.expect(http.StatusOK, "GET", "/v2/tasks/"+taskID, admin, nil).body; full["status"] != "success" || full["result"].(map[string]any)["image_id"] != id {
		t.Fatalf("show task: %v", full)
	}
	list := f.expect(http.StatusOK, "GET", "/v2/tasks?status=success", admin, nil).body
	if l := list["tasks"].([]any); len(l) != 1 || l[0].(map[string]any)["id"] != taskID || l[0].(map[string]any)["input"] != nil {
		t.Fatalf("list tasks: %v", list)
	}
	f.expect(http.StatusBadRequest, "GET", "/v2/tasks?status=bogus", admin, nil, "status")
	// An active image is not imported again.
	f.expect(http.StatusConflict, "POST", "/v2/images/"+id+"/import", alice, webDownload(srv.URL+"/disk.raw"), "queued")

	// Refused before anything starts: no URI, a URI the filter refuses.
	other := f.create(alice, map[string]any{"name": "other"})["id"].(string)
	f.expect(http.StatusBadRequest, "POST", "/v2/images/"+other+"/import", alice, map[string]any{"method": map[string]any{"name": "web-download"}}, "URI")
	f.expect(http.StatusBadRequest, "POST", "/v2/images/"+other+"/import", alice, webDownload("http://127.0.0.1:80/disk.raw"), "filtering")
	f.expect(http.StatusBadRequest, "POST", "/v2/images/"+other+"/import", alice, webDownload("http://169.254.169.254/x"), "filtering")
	f.expect(http.StatusForbidden, "POST", "/v2/images/"+other+"/import", carol, webDownload(srv.URL+"/disk.raw"))
	if n := len(f.imageTasks(alice, other)); n != 0 {
		t.Fatalf("refused imports left %d tasks", n)
	}

	// Failures after the answer: the task fails naming why, the image is
	// queued again and can be imported once the cause is gone.
	port := strings.TrimPrefix(srv.URL, "http://127.0.0.1:")
	for path, why := range map[string]string{
		"/missing":   "404",
		"/elsewhere": "redirect",
		// A name that resolves to loopback, not named in allowed hosts.
		"localhost": "internal address",
	} {
		uri := srv.URL + path
		if path == "localhost" {
			uri = "http://localhost:" + port + "/disk.raw"
			// The filter allows only 127.0.0.1 by name: allow localhost's
			// scheme, name check passes (no allowed list of hosts here).
			f.svc.importFilter.AllowedHosts = nil
		}
		f.tick() // tasks list newest first
		f.expect(http.StatusAccepted, "POST", "/v2/images/"+other+"/import", alice, webDownload(uri))
		if img := f.waitImported(other); img["status"] != "queued" {
			t.Fatalf("%s: image after a failed import: %v", path, img)
		}
		last := f.imageTasks(alice, other)[0]
		if last["status"] != "failure" || !strings.Contains(last["message"].(string), why) {
			t.Fatalf("%s: task %v, want a failure naming %s", path, last, why)
		}
		f.svc.importFilter.AllowedHosts = []string{"127.0.0.1"}
	}
	f.expect(http.StatusAccepted, "POST", "/v2/images/"+other+"/import", alice, webDownload(srv.URL+"/disk.raw"))
	if img := f.waitImported(other); img["status"] != "active" {
		t.Fatalf("retried import: %v", img)
	}
	if n := len(f.imageTasks(alice, other)); n != 4 {
		t.Fatalf("tasks of the retried image: %d, want 4", n)
	}
}

// The data is bounded by the image size cap as an upload's is.
func TestWebDownloadTooLarge(t *testing.T) {
	data := randomBytes(t, 5000)
	chunked := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if chunked {
			w.(http.Flusher).Flush() // no Content-Length: only the count stops it
		}
		w.Write(data)
	}))
	defer srv.Close()
	f := newFixture(t, loopbackFilter(t, srv), func(c *Config) { c.MaxImageSize = 4096 })
	for _, ch := range []bool{false, true} {
		chunked = ch
		id := f.create(alice, map[string]any{"name": "big"})["id"].(string)
		f.expect(http.StatusAccepted, "POST", "/v2/images/"+id+"/import", alice, webDownload(srv.URL+"/big"))
		if img := f.waitImported(id); img["status"] != "queued" {
			t.Fatalf("chunked %v: image %v", ch, img)
		}
		if task := f.imageTasks(alice, id)[0]; task["status"] != "failure" || !strings.Contains(task["message"].(string), "4096") {
			t.Fatalf("chunked %v: task %v", ch, task)
		}
	}
}

// glance-direct records its task too, a success at once.
func TestGlanceDirectTask(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{"name": "gd"})["id"].(string)
	f.expect(http.StatusNoContent, "PUT", "/v2/images/"+id+"/stage", alice, randomBytes(t, 1000))
	res := f.expect(http.StatusAccepted, "POST", "/v2/images/"+id+"/import", alice, map[string]any{"method": map[string]any{"name": "glance-direct"}})
	tasks := f.imageTasks(alice, id)
	if len(tasks) != 1 || tasks[0]["status"] != "success" || tasks[0]["request_id"] != res.header.Get("X-Openstack-Request-Id") {
		t.Fatalf("tasks: %v", tasks)
	}
	// A refused import leaves no task.
	f.expect(http.StatusConflict, "POST", "/v2/images/"+id+"/import", alice, map[string]any{"method": map[string]any{"name": "glance-direct"}})
	if n := len(f.imageTasks(alice, id)); n != 1 {
		t.Fatalf("tasks after a refused import: %d", n)
	}
	// Ended tasks expire.
	f.now = f.now.Add(taskTTL + time.Minute)
	f.svc.expireTasks(context.Background())
	if n := len(f.imageTasks(alice, id)); n != 0 {
		t.Fatalf("tasks after expiry: %d", n)
	}
}

// An import whose node restarted is given back: the image queued, its
// task failed, in one command.
func TestAbandonedImport(t *testing.T) {
	// A server that never answers holds the fetch until the test ends.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			held <- c
		}
	}()
	f := newFixture(t, func(c *Config) {
		port := ln.Addr().(*net.TCPAddr).Port
		c.ImportFilter = &ImportFilter{AllowedHosts: []string{"127.0.0.1"}, AllowedPorts: []int{port}}
	})
	id := f.create(alice, map[string]any{"name": "held"})["id"].(string)
	f.expect(http.StatusAccepted, "POST", "/v2/images/"+id+"/import", alice, webDownload("http://"+ln.Addr().String()+"/x"))
	if img := f.show(alice, id); img["status"] != "importing" {
		t.Fatalf("image: %v", img)
	}
	if task := f.imageTasks(alice, id)[0]; task["status"] != "processing" {
		t.Fatalf("task: %v", task)
	}
	// As if this node had restarted: its uploads are of an earlier run.
	f.svc.run = "a-later-run"
	f.svc.resetUploads(context.Background(), func(img *Image) bool { return img.UploadRun != f.svc.run })
	if img := f.show(alice, id); img["status"] != "queued" {
		t.Fatalf("image after its node restarted: %v", img)
	}
	if task := f.imageTasks(alice, id)[0]; task["status"] != "failure" || !strings.Contains(task["message"].(string), "restarted") {
		t.Fatalf("task after its node restarted: %v", task)
	}
	// The fetch, cut off now, finds its task ended and leaves the image
	// alone.
	conn := <-held
	conn.Close()
	time.Sleep(100 * time.Millisecond)
	if img := f.show(alice, id); img["status"] != "queued" {
		t.Fatalf("image after its lost fetch ended: %v", img)
	}
	if tasks := f.imageTasks(alice, id); len(tasks) != 1 || tasks[0]["status"] != imagestate.TaskFailure {
		t.Fatalf("tasks after the lost fetch ended: %v", tasks)
	}
}

// POST /v2/tasks, Glance's older import: an admin's task makes an image
// and fetches its data as web-download does.
func TestImportTask(t *testing.T) {
	data := randomBytes(t, 10_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer srv.Close()
	f := newFixture(t, loopbackFilter(t, srv))
	task := func(uri string) map[string]any {
		return map[string]any{"type": "import", "input": map[string]any{"import_from": uri, "import_from_format": "raw",
			"image_properties": map[string]any{"name": "from-task", "container_format": "bare"}}}
	}
	f.expect(http.StatusForbidden, "POST", "/v2/tasks", alice, task(srv.URL+"/x"))
	f.expect(http.StatusBadRequest, "POST", "/v2/tasks", admin, map[string]any{"type": "export", "input": map[string]any{}}, "type")
	f.expect(http.StatusBadRequest, "POST", "/v2/tasks", admin, task("http://127.0.0.1:1/x"), "filtering")
	created := f.expect(http.StatusCreated, "POST", "/v2/tasks", admin, task(srv.URL+"/x")).body
	id, image := created["id"].(string), created["image_id"].(string)
	if created["type"] != "import" || created["input"].(map[string]any)["import_from"] != srv.URL+"/x" {
		t.Fatalf("created task: %v", created)
	}
	img := f.waitImported(image)
	sum := md5.Sum(data)
	if img["status"] != "active" || img["name"] != "from-task" || img["disk_format"] != "raw" || img["checksum"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("image of the task: %v", img)
	}
	if got := f.expect(http.StatusOK, "GET", "/v2/tasks/"+id, admin, nil).body; got["status"] != "success" {
		t.Fatalf("task: %v", got)
	}
	images := f.expect(http.StatusOK, "GET", "/v2/images", admin, nil).body["images"].([]any)
	if len(images) != 1 {
		t.Fatalf("refused tasks made images: %v", images)
	}
}

// An import of this process whose fetch does not run (its start's
// outcome was unknown, so nothing fetched) is given back a minute on.
func TestUnfetchedImportGivenBack(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{"name": "unfetched"})["id"].(string)
	task := Task{ID: "task-1", Type: imagestate.TaskTypeImport, Status: imagestate.TaskProcessing, ImageID: id, Upload: "up-1", CreatedAt: f.now}
	if _, err := f.svc.taskChange(context.Background(), task, true, id, func(img *Image, _ *Task) error {
		img.Status, img.UploadID, img.UploadNode, img.UploadRun, img.UploadStarted = StatusImporting, "up-1", "n1", f.svc.run, f.now
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.svc.live.Store("up-1", true)
	f.now = f.now.Add(2 * time.Minute)
	f.svc.resetUploads(context.Background(), f.svc.unfetchedImport)
	if img := f.show(alice, id); img["status"] != "importing" {
		t.Fatalf("an import whose fetch runs was given back: %v", img)
	}
	f.svc.live.Delete("up-1")
	f.now = f.now.Add(-90 * time.Second)
	f.svc.resetUploads(context.Background(), f.svc.unfetchedImport)
	if img := f.show(alice, id); img["status"] != "importing" {
		t.Fatalf("an import 30 s old was given back: %v", img)
	}
	f.now = f.now.Add(time.Minute)
	f.svc.resetUploads(context.Background(), f.svc.unfetchedImport)
	if img := f.show(alice, id); img["status"] != "queued" {
		t.Fatalf("an import no fetch runs for: %v", img)
	}
	if task := f.imageTasks(alice, id)[0]; task["status"] != "failure" {
		t.Fatalf("its task: %v", task)
	}
}
