//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// glanceCLI runs python-glanceclient's `glance` (the CLI that has
// web-download: Debian's openstackclient 6.0 has no --import-method),
// its standard input closed: glance takes any other for image data.
func glanceCLI(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	defer traceCommand(time.Now(), "glance", args)
	return runCombined(ctx, env, "/bin/sh", append([]string{"-c", `exec /usr/bin/glance --os-image-api-version 2 "$@" <&-`, "glance"}, args...)...)
}

// waitImage polls the image until its status is no longer importing and
// returns it.
func waitImage(t *testing.T, env []string, name string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		img := showJSON(t, env, "image", "show", name)
		if img["status"] != "importing" || time.Now().After(deadline) {
			return img
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func imageTasks(t *testing.T, n *rackd, tok, id string) []map[string]any {
	t.Helper()
	var out struct {
		Tasks []map[string]any `json:"tasks"`
	}
	if code, err := call("GET", n.url()+"/image/v2/images/"+id+"/tasks", tok, nil, &out); code != 200 || err != nil {
		t.Fatalf("GET image tasks: %d %v", code, err)
	}
	return out.Tasks
}

// Glance's web-download import with the real glance CLI: the cloud
// fetches the image from a loopback HTTP server this test runs, which
// the cloud's import filter names (and nothing else); the image is
// active with the data's checksum and downloads byte for byte, its task
// records the request. A fetch that fails, and one cut off by a kill -9
// of rackd, leave the image queued and the task failed; a URL the
// filter refuses is refused at once.
func TestWebDownloadImport(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/openstack")
	testenv.RequireCommand(t, "/usr/bin/glance")
	data := make([]byte, 3<<20+321)
	rand.Read(data)
	slowStarted, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/disk.raw":
			w.Write(data)
		case "/slow":
			w.Header().Set("Content-Length", "1048576")
			w.Write(data[:65536])
			w.(http.Flusher).Flush()
			select {
			case slowStarted <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	defer close(release)
	u, _ := url.Parse(srv.URL)
	n := startDevCloud(t, "webdl", "--disk", t.TempDir(), "--s3-listen", "off",
		"--image-import-allowed-schemes", "http", "--image-import-allowed-hosts", "127.0.0.1", "--image-import-allowed-ports", u.Port())
	creds := openrc(t, n.dataDir)
	admin := osEnv(creds, n)
	tok := token(t, n, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])

	if out, err := glanceCLI(admin, "import-info"); err != nil || !strings.Contains(out, "web-download") {
		t.Fatalf("glance import-info: %v\n%s", err, out)
	}
	if out, err := glanceCLI(admin, "image-create-via-import", "--import-method", "web-download", "--uri", srv.URL+"/disk.raw",
		"--disk-format", "raw", "--container-format", "bare", "--name", "web"); err != nil {
		t.Fatalf("glance image-create-via-import: %v\n%s", err, out)
	}
	img := waitImage(t, admin, "web")
	sum := md5.Sum(data)
	if img["status"] != "active" || img["checksum"] != hex.EncodeToString(sum[:]) || img["size"] != float64(len(data)) {
		t.Fatalf("imported image: %v", img)
	}
	id := img["id"].(string)
	back := filepath.Join(t.TempDir(), "back.raw")
	openstack(t, admin, "image", "save", "--file", back, "web")
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the imported image downloads other bytes (%d of %d): %v", len(got), len(data), err)
	}
	tasks := imageTasks(t, n, tok, id)
	if len(tasks) != 1 {
		t.Fatalf("image tasks: %v", tasks)
	}
	task := tasks[0]
	method := task["input"].(map[string]any)["import_req"].(map[string]any)["method"].(map[string]any)
	if task["status"] != "success" || method["name"] != "web-download" || method["uri"] != srv.URL+"/disk.raw" || !strings.HasPrefix(task["request_id"].(string), "req-") {
		t.Fatalf("task: %v", task)
	}
	taskID := task["id"].(string)
	if out, err := glanceCLI(admin, "image-tasks", id); err != nil || !strings.Contains(out, "| success") {
		t.Fatalf("glance image-tasks: %v\n%s", err, out)
	}
	if out, err := glanceCLI(admin, "task-list"); err != nil || !strings.Contains(out, taskID) {
		t.Fatalf("glance task-list: %v\n%s", err, out)
	}
	if out, err := glanceCLI(admin, "task-show", taskID); err != nil || !strings.Contains(out, "success") {
		t.Fatalf("glance task-show: %v\n%s", err, out)
	}

	// Refused at once: a port, a host the filter does not allow.
	for _, uri := range []string{"http://127.0.0.1:9/x", "http://localhost:" + u.Port() + "/disk.raw"} {
		if out, err := glanceCLI(admin, "image-create-via-import", "--import-method", "web-download", "--uri", uri,
			"--disk-format", "raw", "--container-format", "bare", "--name", "refused"); err == nil || !strings.Contains(out, "filtering") {
			t.Fatalf("import of %s: %v\n%s", uri, err, out)
		}
	}

	// A fetch that fails: the image is queued again, the task says why.
	if out, err := glanceCLI(admin, "image-create-via-import", "--import-method", "web-download", "--uri", srv.URL+"/missing",
		"--disk-format", "raw", "--container-format", "bare", "--name", "missing"); err != nil {
		t.Fatalf("glance image-create-via-import of a missing file: %v\n%s", err, out)
	}
	img = waitImage(t, admin, "missing")
	if img["status"] != "queued" {
		t.Fatalf("image after a failed fetch: %v", img)
	}
	if ts := imageTasks(t, n, tok, img["id"].(string)); len(ts) != 1 || ts[0]["status"] != "failure" || !strings.Contains(ts[0]["message"].(string), "404") {
		t.Fatalf("tasks after a failed fetch: %v", ts)
	}

	// kill -9 while the data comes: after the restart the import is given
	// back, the image queued and its task failed, and it imports again.
	if out, err := glanceCLI(admin, "image-create-via-import", "--import-method", "web-download", "--uri", srv.URL+"/slow",
		"--disk-format", "raw", "--container-format", "bare", "--name", "cut"); err != nil {
		t.Fatalf("glance image-create-via-import of a slow file: %v\n%s", err, out)
	}
	select {
	case <-slowStarted:
	case <-time.After(time.Minute):
		t.Fatal("the cloud never fetched /slow")
	}
	cut := showJSON(t, admin, "image", "show", "cut")
	if cut["status"] != "importing" {
		t.Fatalf("image while its data comes: %v", cut)
	}
	n.kill()
	n.start()
	n.waitHealthy()
	tok = token(t, n, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	cut = waitImage(t, admin, "cut")
	if cut["status"] != "queued" {
		t.Fatalf("image whose import was cut by kill -9: %v", cut)
	}
	if ts := imageTasks(t, n, tok, cut["id"].(string)); len(ts) != 1 || ts[0]["status"] != "failure" || !strings.Contains(ts[0]["message"].(string), "restarted") {
		raw, _ := json.Marshal(ts)
		t.Fatalf("tasks of the cut import: %s", raw)
	}
	if out, err := glanceCLI(admin, "image-import", "--import-method", "web-download", "--uri", srv.URL+"/disk.raw", cut["id"].(string)); err != nil {
		t.Fatalf("glance image-import again: %v\n%s", err, out)
	}
	if cut = waitImage(t, admin, "cut"); cut["status"] != "active" || cut["checksum"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("image imported again: %v", cut)
	}
}
