//go:build integration

package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// TestS3Versioning drives object versioning on a real rackd with the real
// aws CLI and the swift CLI (and plain HTTP where the CLI has no verb): S3
// bucket versioning (enabled, suspended, delete markers, versions removed
// for good, ListObjectVersions, DeleteObjects by version, MFA delete
// refused), the same versions through Swift's object versioning, another
// project kept out, a kill -9 of rackd during versioned writes keeping
// every acknowledged version, and the blobs of removed versions collected.
func TestS3Versioning(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/aws")
	testenv.RequireCommand(t, "/usr/bin/swift")
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := newStorageNode(t, "n1", 3)
	n.start("--bootstrap")
	n.waitHealthy()
	creds := openrc(t, n.dataDir)
	home := t.TempDir()
	alice, bob := twoTenants(t, n.rackd, creds, home)
	aliceOS := alice.OS
	dir := t.TempDir()
	awsAs := func(c tenant, args ...string) (string, error) {
		return tool(c.awsEnv(home), dir, "/usr/bin/aws", append([]string{"--endpoint-url", "http://" + n.s3}, args...)...)
	}
	aws := func(t *testing.T, v any, args ...string) {
		t.Helper()
		out, err := awsAs(alice, args...)
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if v != nil && strings.TrimSpace(out) != "" { // a response with nothing to say prints nothing
			if err := json.Unmarshal([]byte(out), v); err != nil {
				t.Fatalf("aws %s: decode %q: %v", strings.Join(args, " "), out, err)
			}
		}
	}
	refused := func(t *testing.T, c tenant, code string, args ...string) {
		t.Helper()
		out, err := awsAs(c, args...)
		if err == nil || !strings.Contains(out, code) {
			t.Errorf("aws %s: want %s, got %v:\n%s", strings.Join(args, " "), code, err, out)
		}
	}
	type putOut struct{ VersionId string }
	put := func(t *testing.T, key, body string) string {
		t.Helper()
		f := filepath.Join(dir, "body")
		os.WriteFile(f, []byte(body), 0o644)
		var out putOut
		aws(t, &out, "s3api", "put-object", "--bucket", "vers", "--key", key, "--body", f)
		return out.VersionId
	}
	get := func(t *testing.T, key, version string) (string, error) {
		f := filepath.Join(dir, "got")
		os.Remove(f)
		args := []string{"s3api", "get-object", "--bucket", "vers", "--key", key}
		if version != "" {
			args = append(args, "--version-id", version)
		}
		if out, err := awsAs(alice, append(args, f)...); err != nil {
			return out, err
		}
		b, err := os.ReadFile(f)
		return string(b), err
	}
	mustGet := func(t *testing.T, key, version string) string {
		t.Helper()
		s, err := get(t, key, version)
		if err != nil {
			t.Fatalf("get-object %s version %q: %v: %s", key, version, err, s)
		}
		return s
	}
	type entry struct {
		Key, VersionId string
		IsLatest       bool
	}
	type versions struct {
		Versions, DeleteMarkers []entry
	}
	listVersions := func(t *testing.T, args ...string) versions {
		t.Helper()
		var v versions
		aws(t, &v, append([]string{"s3api", "list-object-versions", "--bucket", "vers"}, args...)...)
		return v
	}
	swiftURL := n.url() + "/object/v1/AUTH_" + alice.ProjectID
	aliceTok := token(t, n.rackd, "alice", "alice-pass-1", "demo")
	swift := func(t *testing.T, args ...string) string {
		t.Helper()
		return mustTool(t, aliceOS, dir, "/usr/bin/swift", args...)
	}
	// swiftDo is one Swift request with alice's token.
	swiftDo := func(t *testing.T, method, path string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, swiftURL+path, nil)
		req.Header.Set("X-Auth-Token", aliceTok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}

	aws(t, nil, "s3api", "create-bucket", "--bucket", "vers")
	// Written before versioning: the null version.
	put(t, "doc", "before versioning")
	var status struct{ Status string }
	aws(t, &status, "s3api", "get-bucket-versioning", "--bucket", "vers")
	if status.Status != "" {
		t.Fatalf("a new bucket's versioning: %q", status.Status)
	}
	refused(t, alice, "NotImplemented", "s3api", "put-bucket-versioning", "--bucket", "vers", "--mfa", "arn:aws:iam::123456789012:mfa/x 123456",
		"--versioning-configuration", "Status=Enabled,MFADelete=Enabled")
	refused(t, bob, "NoSuchBucket", "s3api", "put-bucket-versioning", "--bucket", "vers", "--versioning-configuration", "Status=Enabled")
	aws(t, &status, "s3api", "get-bucket-versioning", "--bucket", "vers")
	if status.Status != "" {
		t.Fatalf("refused requests changed versioning: %q", status.Status)
	}
	aws(t, nil, "s3api", "put-bucket-versioning", "--bucket", "vers", "--versioning-configuration", "Status=Enabled")
	aws(t, &status, "s3api", "get-bucket-versioning", "--bucket", "vers")
	if status.Status != "Enabled" {
		t.Fatalf("versioning after Enabled: %q", status.Status)
	}
	v1 := put(t, "doc", "first version")
	v2 := put(t, "doc", "second version")
	if v1 == "" || v2 == "" || v1 == v2 || v1 == "null" {
		t.Fatalf("version ids %q %q", v1, v2)
	}
	for v, want := range map[string]string{"": "second version", "null": "before versioning", v1: "first version", v2: "second version"} {
		if got := mustGet(t, "doc", v); got != want {
			t.Fatalf("version %q: %q, want %q", v, got, want)
		}
	}
	l := listVersions(t)
	if fmt.Sprint(l.Versions) != fmt.Sprint([]entry{{"doc", v2, true}, {"doc", v1, false}, {"doc", "null", false}}) || len(l.DeleteMarkers) != 0 {
		t.Fatalf("list-object-versions: %+v", l)
	}

	// Another project sees none of it.
	refused(t, bob, "NoSuchBucket", "s3api", "list-object-versions", "--bucket", "vers")
	refused(t, bob, "NoSuchBucket", "s3api", "get-object", "--bucket", "vers", "--key", "doc", "--version-id", v1, filepath.Join(dir, "bob"))
	refused(t, bob, "NoSuchBucket", "s3api", "delete-object", "--bucket", "vers", "--key", "doc", "--version-id", v1)

	// A delete writes a marker; the key reads as deleted.
	var del struct {
		DeleteMarker bool
		VersionId    string
	}
	aws(t, &del, "s3api", "delete-object", "--bucket", "vers", "--key", "doc")
	if !del.DeleteMarker || del.VersionId == "" {
		t.Fatalf("delete-object: %+v", del)
	}
	marker := del.VersionId
	if out, err := get(t, "doc", ""); err == nil || !strings.Contains(out, "NoSuchKey") {
		t.Fatalf("get-object of a deleted key: %v %s", err, out)
	}
	l = listVersions(t)
	if fmt.Sprint(l.DeleteMarkers) != fmt.Sprint([]entry{{"doc", marker, true}}) || len(l.Versions) != 3 || l.Versions[0].IsLatest {
		t.Fatalf("after the delete: %+v", l)
	}
	refused(t, alice, "BucketNotEmpty", "s3api", "delete-bucket", "--bucket", "vers")
	refused(t, alice, "NotImplemented", "s3api", "delete-object", "--bucket", "vers", "--key", "doc", "--version-id", v1, "--mfa", "arn:aws:iam::123456789012:mfa/x 123456")

	// The same versions through Swift.
	if out := swift(t, "stat", "vers"); !strings.Contains(out, "Versions-Enabled: True") {
		t.Fatalf("swift stat of a versioned bucket:\n%s", out)
	}
	code, _, body := swiftDo(t, "GET", "/vers?versions&format=json")
	var rows []struct {
		Name, VersionID, ContentType string
		IsLatest                     bool
	}
	var raw []map[string]any
	json.Unmarshal([]byte(body), &raw)
	for _, r := range raw {
		rows = append(rows, struct {
			Name, VersionID, ContentType string
			IsLatest                     bool
		}{fmt.Sprint(r["name"]), fmt.Sprint(r["version_id"]), fmt.Sprint(r["content_type"]), r["is_latest"] == true})
	}
	if code != 200 || len(rows) != 4 || rows[0].VersionID != marker || !strings.Contains(rows[0].ContentType, "swift_versions_deleted=1") || !rows[0].IsLatest || rows[1].VersionID != v2 {
		t.Fatalf("swift versions listing (%d): %+v\n%s", code, rows, body)
	}
	if code, h, body := swiftDo(t, "GET", "/vers/doc?version-id="+v1); code != 200 || body != "first version" || h.Get("X-Object-Version-Id") != v1 {
		t.Fatalf("swift GET ?version-id=%s: %d %q %v", v1, code, body, h)
	}
	// Removing the marker through Swift makes v2 current again for S3.
	swift(t, "delete", "vers", "doc", "--version-id", marker)
	if got := mustGet(t, "doc", ""); got != "second version" {
		t.Fatalf("after removing the marker: %q", got)
	}
	// A Swift upload is a version S3 lists.
	os.WriteFile(filepath.Join(dir, "f"), []byte("from swift"), 0o644)
	swift(t, "upload", "vers", "f", "--object-name", "doc")
	if l := listVersions(t, "--prefix", "doc"); len(l.Versions) != 4 || !l.Versions[0].IsLatest || l.Versions[1].VersionId != v2 {
		t.Fatalf("after a swift upload: %+v", l)
	} else if got := mustGet(t, "doc", l.Versions[0].VersionId); got != "from swift" {
		t.Fatalf("the swift version: %q", got)
	}
	// Removing the current version for good promotes the next newest.
	cur := listVersions(t, "--prefix", "doc").Versions[0].VersionId
	aws(t, nil, "s3api", "delete-object", "--bucket", "vers", "--key", "doc", "--version-id", cur)
	if got := mustGet(t, "doc", ""); got != "second version" {
		t.Fatalf("after removing the current version: %q", got)
	}

	// Suspended: writes are the null version, replacing the null one.
	aws(t, nil, "s3api", "put-bucket-versioning", "--bucket", "vers", "--versioning-configuration", "Status=Suspended")
	if v := put(t, "doc", "suspended write"); v != "null" {
		t.Fatalf("a write while suspended has version %q", v)
	}
	if got := mustGet(t, "doc", "null"); got != "suspended write" {
		t.Fatalf("null version after a suspended write: %q", got)
	}
	if l := listVersions(t); len(l.Versions) != 3 {
		t.Fatalf("after the suspended write (null replaced): %+v", l)
	}
	aws(t, nil, "s3api", "put-bucket-versioning", "--bucket", "vers", "--versioning-configuration", "Status=Enabled")

	// Versions in blobs (past the inline size): noncurrent ones keep
	// their shards, and removing them for good collects the shards (the
	// orphan sweep's grace is an hour, so only the collector can have
	// deleted them). Every object so far is small, so these are the only
	// shard files.
	big := make([]byte, 64<<10)
	var bigVersions []string
	for range 3 {
		rand.Read(big)
		bigVersions = append(bigVersions, put(t, "big", string(big)))
	}
	if got := mustGet(t, "big", bigVersions[0]); sha([]byte(got)) == sha(big) || len(got) != len(big) {
		t.Fatalf("the oldest blob version reads %d bytes, or the newest's", len(got))
	}
	if files := shardFiles(n.disks, -1); len(files) == 0 {
		t.Fatal("no shard files: the versions of big are not in blobs")
	}
	for _, v := range bigVersions {
		aws(t, nil, "s3api", "delete-object", "--bucket", "vers", "--key", "big", "--version-id", v)
	}
	waitStorage(t, creds, n.rackd, "the removed versions' blobs collected", 2*time.Minute, func(s storageStatus) bool {
		return s.Garbage == 0 && len(shardFiles(n.disks, -1)) == 0
	})

	// kill -9 during versioned writes: every acknowledged version stays.
	acked := map[string]string{} // version id -> sha of its body
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// Past the inline size, so versions are blobs too.
				size := 100
				if i%2 == 0 {
					size = 40 << 10
				}
				b := make([]byte, size)
				rand.Read(b)
				req, _ := http.NewRequest("PUT", "http://"+n.s3+"/vers/crash", bytes.NewReader(b))
				sigv4.Sign(req, alice.Access, alice.Secret, "us-east-1", sigv4.UnsignedPayload, time.Now())
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if v := res.Header.Get("x-amz-version-id"); res.StatusCode == 200 && v != "" {
					mu.Lock()
					acked[v] = sha(b)
					mu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		c := len(acked)
		mu.Unlock()
		if c >= 20 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.kill()
	close(stop)
	wg.Wait()
	if len(acked) < 20 {
		t.Fatalf("only %d versioned writes acknowledged before the kill", len(acked))
	}
	t.Logf("%d versioned writes acknowledged before kill -9", len(acked))
	n.start()
	n.waitHealthy()
	listed := map[string]bool{}
	for _, v := range listVersions(t, "--prefix", "crash").Versions {
		listed[v.VersionId] = true
	}
	for v, want := range acked {
		if !listed[v] {
			t.Errorf("acknowledged version %s is not listed after kill -9 and restart", v)
			continue
		}
		if got := mustGet(t, "crash", v); sha([]byte(got)) != want {
			t.Errorf("version %s reads other bytes after kill -9 and restart", v)
		}
	}
	// Versions from before the kill too.
	if got := mustGet(t, "doc", v1); got != "first version" {
		t.Fatalf("v1 after restart: %q", got)
	}

	// Emptying the bucket by version (DeleteObjects) lets it be deleted.
	// (A write in flight at the kill may have left shard files no command
	// names: the orphan sweep takes those after its hour of grace.)
	for {
		l := listVersions(t, "--max-items", "500")
		if len(l.Versions)+len(l.DeleteMarkers) == 0 {
			break
		}
		var objs []map[string]string
		for _, e := range append(l.Versions, l.DeleteMarkers...) {
			objs = append(objs, map[string]string{"Key": e.Key, "VersionId": e.VersionId})
		}
		spec, _ := json.Marshal(map[string]any{"Objects": objs, "Quiet": true})
		var res struct{ Errors []any }
		aws(t, &res, "s3api", "delete-objects", "--bucket", "vers", "--delete", string(spec))
		if len(res.Errors) > 0 {
			t.Fatalf("delete-objects: %+v", res.Errors)
		}
	}
	aws(t, nil, "s3api", "delete-bucket", "--bucket", "vers")
	waitStorage(t, creds, n.rackd, "no parts and no garbage left", 2*time.Minute, func(s storageStatus) bool {
		return s.Parts == 0 && s.Garbage == 0
	})
}
