//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// storageNode is a rackd with its disk directories.
type storageNode struct {
	*rackd
	disks []string
}

func newStorageNode(t *testing.T, name string, disks int, extra ...string) *storageNode {
	t.Helper()
	root := t.TempDir()
	var args, dirs []string
	for i := 0; i < disks; i++ {
		d := filepath.Join(root, fmt.Sprintf("disk%d", i))
		dirs = append(dirs, d)
		args = append(args, "--disk", d)
	}
	args = append(args, "--heal-after", "4s")
	return &storageNode{rackd: newRackd(t, name, append(args, extra...)...), disks: dirs}
}

// tool runs a client command with env in dir and returns its combined
// output; a minute and a half bounds it.
func tool(env []string, dir string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = env, dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustTool(t *testing.T, env []string, dir string, name string, args ...string) string {
	t.Helper()
	out, err := tool(env, dir, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

type storageStatus struct {
	K         int `json:"k"`
	M         int `json:"m"`
	Parts     int `json:"parts"`
	Misplaced int `json:"misplaced"`
	Degraded  int `json:"degraded"`
	HealQueue int `json:"heal_queue"`
	Garbage   int `json:"garbage"`
	Healed    int `json:"healed_shards"`
	Moved     int `json:"moved_parts"`
	Disks     []struct {
		Node   string `json:"node"`
		Path   string `json:"path"`
		Up     bool   `json:"up"`
		Gone   bool   `json:"gone"`
		Shards int    `json:"shards"`
	} `json:"disks"`
	Volumes struct {
		Volumes int `json:"volumes"`
	} `json:"volumes"`
}

func storageStatusOf(t *testing.T, creds map[string]string, node *rackd) (storageStatus, error) {
	out, err := rackctl(t, creds, node, "storage", "status", "-o", "json")
	if err != nil {
		return storageStatus{}, fmt.Errorf("rackctl storage status: %v: %s", err, out)
	}
	var st storageStatus
	return st, json.Unmarshal([]byte(out), &st)
}

func waitStorage(t *testing.T, creds map[string]string, node *rackd, what string, d time.Duration, ok func(storageStatus) bool) storageStatus {
	t.Helper()
	deadline := time.Now().Add(d)
	var last storageStatus
	var err error
	for time.Now().Before(deadline) {
		if last, err = storageStatusOf(t, creds, node); err == nil && ok(last) {
			return last
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("storage never reached %q in %s: last %+v (err %v)\nlog of %s:\n%s", what, d, last, err, node.name, tail(node.log(), 40))
	return last
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// objectSet is what the test stored: container/object → sha256.
type objectSet map[string]string

// check downloads every object through node's Swift API and compares
// digests.
func (want objectSet) check(node *rackd, project, tok string) error {
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	c := &http.Client{Timeout: 60 * time.Second}
	for _, k := range keys {
		req, _ := http.NewRequest("GET", node.url()+"/object/v1/AUTH_"+project+"/"+k, nil)
		req.Header.Set("X-Auth-Token", tok)
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s via %s: %w", k, node.name, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			return fmt.Errorf("GET %s via %s: HTTP %d, %v", k, node.name, resp.StatusCode, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != want[k] {
			return fmt.Errorf("GET %s via %s: sha256 %s, want %s", k, node.name, got, want[k])
		}
	}
	return nil
}

// shardFiles lists the shard files of index i (-1: all) on the given disks.
func shardFiles(disks []string, i int) []string {
	var out []string
	suffix := fmt.Sprintf(".%d", i)
	if i < 0 {
		suffix = ""
	}
	for _, d := range disks {
		filepath.WalkDir(filepath.Join(d, "shards"), func(p string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() && strings.HasSuffix(p, suffix) {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
}

// flipBytes corrupts one byte in the middle of every non-empty file.
func flipBytes(t *testing.T, files []string) int {
	t.Helper()
	n := 0
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil || len(raw) == 0 {
			continue
		}
		raw[len(raw)/2] ^= 0x5a
		if err := os.WriteFile(p, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// rawPut sends a request whose body is shorter than its Content-Length and
// hangs up, as a client that dies mid-upload does.
func rawPut(t *testing.T, hostport, path string, headers map[string]string, declared int, sent []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", hostport, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", path, hostport, declared)
	for k, v := range headers {
		fmt.Fprintf(conn, "%s: %s\r\n", k, v)
	}
	fmt.Fprint(conn, "\r\n")
	conn.Write(sent)
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.Copy(io.Discard, conn)
}

func TestObjectStorage(t *testing.T) {
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/swift", "/usr/bin/aws", "/usr/bin/s3cmd", "/usr/bin/rclone", "qemu-io", "qemu-img", "stdbuf"} {
		testenv.RequireCommand(t, c)
	}
	// Three nodes with three disk directories each: 4+2 puts two shards
	// on every node, and losing a node leaves six disks to heal onto.
	n1 := newStorageNode(t, "n1", 3)
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	out, err := rackctl(t, creds, n1.rackd, "cluster", "join-token", "create", "--uses", "3", "-o", "json")
	if err != nil {
		t.Fatalf("join-token: %v %s", err, out)
	}
	var jt struct {
		Token string `json:"token"`
	}
	json.Unmarshal([]byte(out), &jt)
	n2 := newStorageNode(t, "n2", 3, "--join", n1.url(), "--join-token", jt.Token)
	n3 := newStorageNode(t, "n3", 3, "--join", n1.url(), "--join-token", jt.Token)
	for _, n := range []*storageNode{n2, n3} {
		n.start()
		n.waitHealthy()
	}
	waitStorage(t, creds, n1.rackd, "nine disks, 4+2", time.Minute, func(s storageStatus) bool {
		return len(s.Disks) == 9 && s.K == 4 && s.M == 2
	})

	// A tenant, alice, with EC2 credentials; another, bob: side by side.
	admin := osEnv(creds, n1.rackd)
	home := t.TempDir()
	aliceOn := func(n *rackd) []string {
		return append(osEnv(creds, n, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo"), "HOME="+home)
	}
	bobEnv := append(osEnv(creds, n1.rackd, "OS_USERNAME=bob", "OS_PASSWORD=bob-pass-1", "OS_PROJECT_NAME=other"), "HOME="+home)
	type ec2 struct {
		Access    string `json:"access"`
		Secret    string `json:"secret"`
		ProjectID string `json:"project_id"`
	}
	var alice, bob ec2
	inParallel(t, "tenants", map[string]func(t *testing.T){
		"alice": func(t *testing.T) {
			openstack(t, admin, "project", "create", "demo")
			openstack(t, admin, "user", "create", "--project", "demo", "--password", "alice-pass-1", "alice")
			openstack(t, admin, "role", "add", "--project", "demo", "--user", "alice", "member")
			json.Unmarshal([]byte(openstack(t, aliceOn(n1.rackd), "ec2", "credentials", "create", "-f", "json")), &alice)
		},
		"bob": func(t *testing.T) {
			openstack(t, admin, "project", "create", "other")
			openstack(t, admin, "user", "create", "--project", "other", "--password", "bob-pass-1", "bob")
			openstack(t, admin, "role", "add", "--project", "other", "--user", "bob", "member")
			json.Unmarshal([]byte(openstack(t, bobEnv, "ec2", "credentials", "create", "-f", "json")), &bob)
		},
	})
	if alice.Access == "" || bob.Access == "" {
		t.Fatal("no EC2 credentials")
	}
	demo := alice.ProjectID
	aliceTok := token(t, n1.rackd, "alice", "alice-pass-1", "demo")
	bobTok := token(t, n1.rackd, "bob", "bob-pass-1", "other")

	// The files: 0 B, 1 B, 1 MiB+1, 64 MiB.
	files := t.TempDir()
	sizes := map[string]int{"f0": 0, "f1": 1, "f1m": 1<<20 + 1, "f64m": 64 << 20}
	sums := map[string]string{}
	for name, size := range sizes {
		b := make([]byte, size)
		rand.Read(b)
		os.WriteFile(filepath.Join(files, name), b, 0o644)
		sums[name] = sha(b)
	}
	want := objectSet{}
	stored := func(container string) {
		for name := range sizes {
			want[container+"/"+name] = sums[name]
		}
	}
	awsEnv := func(c ec2) []string {
		return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "AWS_ACCESS_KEY_ID=" + c.Access, "AWS_SECRET_ACCESS_KEY=" + c.Secret, "AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE=/dev/null"}
	}
	s3url := func(n *rackd) string { return "http://" + n.s3 }

	s3cfg := filepath.Join(home, "s3cfg")
	s3cmdTo := func(n *rackd) {
		os.WriteFile(s3cfg, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nbucket_location = us-east-1\nuse_https = False\n", alice.Access, alice.Secret, n.s3, n.s3)), 0o600)
	}
	s3cmdTo(n3.rackd)
	s3cmdEnv := []string{"PATH=/usr/bin:/bin", "HOME=" + home}
	rcloneEnv := func(n *rackd) []string {
		return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "RCLONE_CONFIG=/dev/null", "RCLONE_CONFIG_RS_TYPE=s3", "RCLONE_CONFIG_RS_PROVIDER=Other",
			"RCLONE_CONFIG_RS_ACCESS_KEY_ID=" + alice.Access, "RCLONE_CONFIG_RS_SECRET_ACCESS_KEY=" + alice.Secret,
			"RCLONE_CONFIG_RS_ENDPOINT=" + s3url(n), "RCLONE_CONFIG_RS_FORCE_PATH_STYLE=true"}
	}
	// The four clients write at once, each into a container of its own.
	inParallel(t, "write", map[string]func(t *testing.T){
		// swift CLI through n2; the 64 MiB file as a static large object.
		"swift": func(t *testing.T) {
			mustTool(t, aliceOn(n2.rackd), files, "/usr/bin/swift", "upload", "swift-c", "f0", "f1", "f1m")
			mustTool(t, aliceOn(n2.rackd), files, "/usr/bin/swift", "upload", "--use-slo", "--segment-size", "16777216", "swift-c", "f64m")
		},
		// aws through n1 (64 MiB goes multipart).
		// Its log must show no request answered out of step: an empty
		// PUT answered without the interim 100 it expects made botocore
		// misread the next response on that connection, wait out its
		// read timeout and send the request again.
		"aws": func(t *testing.T) {
			mustTool(t, awsEnv(alice), files, "/usr/bin/aws", "--endpoint-url", s3url(n1.rackd), "s3", "mb", "s3://aws-b")
			out := mustTool(t, awsEnv(alice), files, "/usr/bin/aws", "--debug", "--endpoint-url", s3url(n1.rackd), "s3", "cp", "--recursive", "--only-show-errors", ".", "s3://aws-b/")
			for _, bad := range []string{"MissingHeaderBodySeparatorDefect", "retryable exception caught"} {
				if i := strings.Index(out, bad); i >= 0 {
					t.Errorf("aws s3 cp: %q in its debug log:\n%s", bad, out[max(0, i-2000):min(len(out), i+500)])
				}
			}
		},
		// s3cmd through n3.
		"s3cmd": func(t *testing.T) {
			mustTool(t, s3cmdEnv, files, "/usr/bin/s3cmd", "-c", s3cfg, "mb", "s3://s3cmd-b")
			mustTool(t, s3cmdEnv, files, "/usr/bin/s3cmd", "-c", s3cfg, "put", "f0", "f1", "f1m", "f64m", "s3://s3cmd-b/")
		},
		// rclone through n2.
		"rclone": func(t *testing.T) {
			mustTool(t, rcloneEnv(n2.rackd), files, "/usr/bin/rclone", "mkdir", "rs:rclone-b")
			mustTool(t, rcloneEnv(n2.rackd), files, "/usr/bin/rclone", "copy", ".", "rs:rclone-b")
		},
	})
	for _, c := range []string{"swift-c", "aws-b", "s3cmd-b", "rclone-b"} {
		stored(c)
	}
	// S3 authenticated with alice's credential above; its secret is
	// sealed at rest: no Raft log or snapshot on any node holds it.
	for _, n := range []*storageNode{n1, n2, n3} {
		checkNoSecretAtRest(t, n.dataDir, alice.Secret)
	}

	// Every client reads back what it wrote, through another node; the
	// four at once.
	down := t.TempDir()
	os.Mkdir(filepath.Join(down, "s3cmd"), 0o755)
	inParallel(t, "read back", map[string]func(t *testing.T){
		"swift": func(t *testing.T) {
			mustTool(t, aliceOn(n3.rackd), down, "/usr/bin/swift", "download", "swift-c", "-D", "swift")
		},
		"aws": func(t *testing.T) {
			mustTool(t, awsEnv(alice), down, "/usr/bin/aws", "--endpoint-url", s3url(n2.rackd), "s3", "cp", "--recursive", "--only-show-errors", "s3://aws-b/", "aws")
		},
		"s3cmd": func(t *testing.T) {
			mustTool(t, s3cmdEnv, down, "/usr/bin/s3cmd", "-c", s3cfg, "get", "--recursive", "s3://s3cmd-b/", "s3cmd/")
		},
		"rclone": func(t *testing.T) {
			mustTool(t, rcloneEnv(n1.rackd), down, "/usr/bin/rclone", "copy", "rs:rclone-b", "rclone")
		},
	})
	for _, dir := range []string{"swift", "aws", "s3cmd", "rclone"} {
		for name := range sizes {
			b, err := os.ReadFile(filepath.Join(down, dir, name))
			if err != nil || sha(b) != sums[name] {
				t.Fatalf("%s read back %s wrong (err %v)", dir, name, err)
			}
		}
	}
	// A GET that starts while others hold half the node's buffers reads
	// its local shards with direct I/O, past the page cache: n1's counter
	// grows, and the bytes are right.
	adminTok := token(t, n1.rackd, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	checkDirectReads(t, n1.rackd, adminTok, n1.url()+"/object/v1/AUTH_"+demo+"/aws-b/f64m", aliceTok, sums["f64m"])
	// Strong consistency: a listing through any node right after a write.
	mustTool(t, aliceOn(n1.rackd), files, "/usr/bin/swift", "upload", "swift-c", "f1", "--object-name", "fresh")
	if out := mustTool(t, aliceOn(n3.rackd), files, "/usr/bin/swift", "list", "swift-c"); !strings.Contains(out, "fresh") {
		t.Fatalf("listing through n3 right after a PUT through n1 misses it:\n%s", out)
	}
	want["swift-c/fresh"] = sums["f1"]
	// One frozen follower (SIGSTOP: its connections stay open, nothing
	// answers) must not hold up writes: a PUT through another node returns
	// at write quorum, and once the node wakes the shards it missed are
	// healed.
	st0, err := status(t, creds, n1.rackd)
	if err != nil {
		t.Fatal(err)
	}
	var frozen, via *storageNode
	for _, n := range []*storageNode{n3, n2, n1} {
		switch {
		case frozen == nil && n.name != st0.Leader:
			frozen = n
		case via == nil:
			via = n
		}
	}
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed && frozen.cmd != nil {
			thawed = true
			frozen.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)
	frozenBody := make([]byte, 300_000)
	rand.Read(frozenBody)
	if code, msg := putObject(via.url()+"/object/v1/AUTH_"+demo+"/swift-c/while-frozen", aliceTok, frozenBody); code != 201 {
		t.Fatalf("PUT through %s with %s frozen: HTTP %d %s", via.name, frozen.name, code, msg)
	}
	if code, digest := fetch(via.url()+"/object/v1/AUTH_"+demo+"/swift-c/while-frozen", aliceTok); code != 200 || digest != sha(frozenBody) {
		t.Fatalf("GET through %s with %s frozen: HTTP %d", via.name, frozen.name, code)
	}
	thaw()
	want["swift-c/while-frozen"] = sha(frozenBody)
	waitStorage(t, creds, n1.rackd, "shards missed while "+frozen.name+" was frozen healed", 2*time.Minute, func(s storageStatus) bool { return s.HealQueue == 0 })
	inParallel(t, "more clients", map[string]func(t *testing.T){
		// Server-side copy (the swift CLI sends COPY with a Destination).
		"swift copy": func(t *testing.T) {
			mustTool(t, aliceOn(n2.rackd), files, "/usr/bin/swift", "copy", "swift-c", "f1m", "--destination", "/swift-c/f1m-copy")
		},
		// A dynamic large object: the swift CLI's default for segmented
		// uploads (X-Object-Manifest over dlo-c_segments), read back like
		// any object by every check below.
		"swift dlo": func(t *testing.T) {
			mustTool(t, aliceOn(n3.rackd), files, "/usr/bin/swift", "upload", "--segment-size", "300000", "dlo-c", "f1m")
		},
		// A presigned URL from the aws CLI, fetched with no credentials.
		"aws presign": func(t *testing.T) {
			url := strings.TrimSpace(mustTool(t, awsEnv(alice), files, "/usr/bin/aws", "--endpoint-url", s3url(n2.rackd), "s3", "presign", "s3://aws-b/f1m", "--expires-in", "300"))
			if code, digest := fetch(url, ""); code != 200 || digest != sums["f1m"] {
				t.Fatalf("GET of a presigned URL: HTTP %d, sha256 %s", code, digest)
			}
		},
		// A volume written over NBD on n2 and snapshotted through
		// n1's Cinder API: the snapshot holds every write n2
		// acknowledged before it was asked for.
		"volume snapshot across nodes": func(t *testing.T) {
			crossNodeSnapshot(t, creds, aliceOn(n1.rackd), aliceTok, demo, n2.rackd, n1.rackd)
		},
		// The openstack CLI sees the same objects.
		"openstack": func(t *testing.T) {
			if out := openstack(t, aliceOn(n2.rackd), "object", "list", "aws-b", "-f", "value"); !strings.Contains(out, "f64m") {
				t.Fatalf("openstack object list aws-b:\n%s", out)
			}
		},
	})
	want["swift-c/f1m-copy"] = sums["f1m"]
	want["dlo-c/f1m"] = sums["f1m"]

	// Tenants are isolated: bob sees none of alice's data.
	if code, _ := call("GET", n1.url()+"/object/v1/AUTH_"+demo+"/swift-c", bobTok, nil, nil); code != 403 {
		t.Fatalf("bob listing alice's container: HTTP %d, want 403", code)
	}
	if out, err := tool(awsEnv(bob), files, "/usr/bin/aws", "--endpoint-url", s3url(n1.rackd), "s3", "ls", "s3://aws-b"); err == nil || !strings.Contains(out, "NoSuchBucket") {
		t.Fatalf("bob listing alice's bucket: %v\n%s", err, out)
	}
	if out := mustTool(t, awsEnv(bob), files, "/usr/bin/aws", "--endpoint-url", s3url(n1.rackd), "s3", "ls"); strings.Contains(out, "aws-b") {
		t.Fatalf("bob's bucket list shows alice's buckets:\n%s", out)
	}
	// ...unless alice grants bob read access by name...
	mustTool(t, aliceOn(n1.rackd), files, "/usr/bin/swift", "post", "-r", "other:bob", "rclone-b")
	if code, digest := fetch(n2.url()+"/object/v1/AUTH_"+demo+"/rclone-b/f1m", bobTok); code != 200 || digest != sums["f1m"] {
		t.Fatalf("bob reading with a read grant: HTTP %d", code)
	}
	if code, _ := call("PUT", n2.url()+"/object/v1/AUTH_"+demo+"/rclone-b/bobs", bobTok, nil, nil); code != 403 {
		t.Fatalf("bob writing with only a read grant: HTTP %d, want 403", code)
	}
	mustTool(t, aliceOn(n1.rackd), files, "/usr/bin/swift", "post", "-r", "", "rclone-b")
	if code, _ := fetch(n2.url()+"/object/v1/AUTH_"+demo+"/rclone-b/f1m", bobTok); code != 403 {
		t.Fatalf("bob reading after the grant was withdrawn: HTTP %d, want 403", code)
	}
	// ...or makes a container public for reading.
	mustTool(t, aliceOn(n1.rackd), files, "/usr/bin/swift", "post", "-r", ".r:*", "swift-c")
	resp, err := http.Get(n2.url() + "/object/v1/AUTH_" + demo + "/swift-c/f1m")
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || sha(pub) != sums["f1m"] {
		t.Fatalf("anonymous read of a public object: HTTP %d", resp.StatusCode)
	}
	if resp, err := http.Get(n2.url() + "/object/v1/AUTH_" + demo + "/swift-c"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("anonymous listing without .rlistings: %v %v", resp.StatusCode, err)
	}

	// Bad input gets the service's own error and leaves nothing behind.
	badCases := []struct {
		name string
		env  []string
		args []string
		code string
	}{
		{"wrong secret", awsEnv(ec2{Access: alice.Access, Secret: "not-the-secret"}), []string{"s3", "ls"}, "SignatureDoesNotMatch"},
		{"unknown key", awsEnv(ec2{Access: "AKIDUNKNOWN", Secret: "x"}), []string{"s3", "ls"}, "InvalidAccessKeyId"},
		{"bad bucket name", awsEnv(alice), []string{"s3api", "create-bucket", "--bucket", "Bad_Name"}, "InvalidBucketName"},
		{"bad digest", awsEnv(alice), []string{"s3api", "put-object", "--bucket", "aws-b", "--key", "bad-md5", "--body", "f1m", "--content-md5", "AAAAAAAAAAAAAAAAAAAAAA=="}, "BadDigest"},
		{"huge metadata", awsEnv(alice), []string{"s3api", "put-object", "--bucket", "aws-b", "--key", "bad-meta", "--body", "f1", "--metadata", "big=" + strings.Repeat("x", 3000)}, "MetadataTooLarge"},
		{"missing key", awsEnv(alice), []string{"s3api", "get-object", "--bucket", "aws-b", "--key", "nope", filepath.Join(down, "nope")}, "NoSuchKey"},
		{"non-empty bucket", awsEnv(alice), []string{"s3api", "delete-bucket", "--bucket", "aws-b"}, "BucketNotEmpty"},
	}
	// Each refused on its own, all at once.
	refusals := map[string]func(t *testing.T){
		"swift metadata name": func(t *testing.T) {
			if out, err := tool(aliceOn(n1.rackd), files, "/usr/bin/swift", "post", "-m", strings.Repeat("k", 200)+":v", "swift-c"); err == nil {
				t.Errorf("swift accepted a 200-byte metadata name:\n%s", out)
			}
		},
	}
	for _, c := range badCases {
		refusals[c.name] = func(t *testing.T) {
			out, err := tool(c.env, files, "/usr/bin/aws", append([]string{"--endpoint-url", s3url(n1.rackd)}, c.args...)...)
			if err == nil || !strings.Contains(out, c.code) {
				t.Errorf("%s: want error %s, got err=%v\n%s", c.name, c.code, err, out)
			}
		}
	}
	inParallel(t, "bad input", refusals)
	// Bodies cut short, through Swift and through S3 (a signed request
	// that declares more bytes than it sends).
	rawPut(t, n1.listen, "/object/v1/AUTH_"+demo+"/swift-c/truncated", map[string]string{"X-Auth-Token": aliceTok}, 1<<20, []byte("only a little"))
	sreq, _ := http.NewRequest("PUT", s3url(n1.rackd)+"/aws-b/truncated", nil)
	sigv4.Sign(sreq, alice.Access, alice.Secret, "us-east-1", sigv4.UnsignedPayload, time.Now())
	hdrs := map[string]string{}
	for k := range sreq.Header {
		hdrs[k] = sreq.Header.Get(k)
	}
	rawPut(t, n1.s3, "/aws-b/truncated", hdrs, 1<<20, []byte("only a little"))
	for _, name := range []string{"swift-c/truncated", "aws-b/truncated", "aws-b/bad-md5", "aws-b/bad-meta"} {
		if code, _ := call("HEAD", n2.url()+"/object/v1/AUTH_"+demo+"/"+name, aliceTok, nil, nil); code != 404 {
			t.Errorf("%s exists after a failed upload (HTTP %d)", name, code)
		}
	}
	if err := want.check(n3.rackd, demo, aliceTok); err != nil {
		t.Fatal(err)
	}

	// Bitrot: flip a byte in shard 0 of every blob on every disk. Reads
	// detect it, answer correct bytes, and queue heals.
	all := append(append(append([]string{}, n1.disks...), n2.disks...), n3.disks...)
	if n := flipBytes(t, shardFiles(all, 0)); n == 0 {
		t.Fatal("no shard files found to corrupt")
	}
	if err := want.check(n2.rackd, demo, aliceTok); err != nil {
		t.Fatalf("after flipping bytes: %v", err)
	}
	waitStorage(t, creds, n1.rackd, "heal queue drained", 2*time.Minute, func(s storageStatus) bool { return s.HealQueue == 0 })
	// Proof that shard 0 was rewritten: now corrupt shards 1 and 2 as well.
	// With m = 2 that is only survivable if shard 0 is whole again.
	flipBytes(t, shardFiles(all, 1))
	flipBytes(t, shardFiles(all, 2))
	if err := want.check(n1.rackd, demo, aliceTok); err != nil {
		t.Fatalf("after healing shard 0 and corrupting shards 1 and 2: %v", err)
	}
	waitStorage(t, creds, n1.rackd, "heal queue drained again", 2*time.Minute, func(s storageStatus) bool { return s.HealQueue == 0 })

	// Lose m = 2 disks: wipe one disk directory on n2 and one on n3.
	os.RemoveAll(n2.disks[0])
	os.RemoveAll(n3.disks[1])
	if err := want.check(n1.rackd, demo, aliceTok); err != nil {
		t.Fatalf("with two disks wiped: %v", err)
	}
	// Each node notices its emptied disk and the healer refills it: the
	// shard files on disk match what the metadata places there.
	waitStorage(t, creds, n1.rackd, "wiped disks refilled", 2*time.Minute, func(s storageStatus) bool {
		for _, d := range s.Disks {
			if (d.Path == n2.disks[0] || d.Path == n3.disks[1]) && d.Shards != len(shardFiles([]string{d.Path}, -1)) {
				return false
			}
		}
		return s.HealQueue == 0
	})

	// Lose a whole node (two shards of every blob). Reads go on at once;
	// after --heal-after its shards are rebuilt on the six disks left.
	leaderName := func() string {
		st, _ := status(t, creds, n1.rackd)
		return st.Leader
	}
	victim := n3
	if leaderName() == "n3" {
		victim = n2
	}
	survivor := n1
	victim.kill()
	if err := want.check(survivor.rackd, demo, aliceTok); err != nil {
		t.Fatalf("with %s down: %v", victim.name, err)
	}
	waitStorage(t, creds, survivor.rackd, "redundancy restored without "+victim.name, 3*time.Minute, func(s storageStatus) bool {
		return s.Degraded == 0 && s.Misplaced == 0
	})

	// Grow: a new node joins; the rebalancer moves shards onto it while
	// readers keep reading.
	out, _ = rackctl(t, creds, n1.rackd, "cluster", "join-token", "create", "-o", "json")
	json.Unmarshal([]byte(out), &jt)
	n4 := newStorageNode(t, "n4", 3, "--join", n1.url(), "--join-token", jt.Token)
	n4.start()
	n4.waitHealthy()
	stop := make(chan struct{})
	var readErr error
	var reads int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 1000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := want.check(n1.rackd, demo, aliceTok); err != nil {
				readErr = err
				return
			}
			reads++
		}
	}()
	st := waitStorage(t, creds, n1.rackd, "rebalanced onto n4", 3*time.Minute, func(s storageStatus) bool {
		if s.Misplaced != 0 || s.Degraded != 0 {
			return false
		}
		for _, d := range s.Disks {
			if d.Node == "n4" && d.Shards > 0 {
				return true
			}
		}
		return false
	})
	close(stop)
	wg.Wait()
	if readErr != nil {
		t.Fatalf("a read failed during rebalance: %v", readErr)
	}
	if err := want.check(n4.rackd, demo, aliceTok); err != nil {
		t.Fatalf("after rebalance: %v", err)
	}
	out, _ = rackctl(t, creds, n1.rackd, "storage", "status")
	t.Logf("after rebalance (%d full read passes during it, %d blobs moved):\n%s", reads, st.Moved, out)
	if !strings.Contains(out, "4+2") || !strings.Contains(out, "n4") {
		t.Fatalf("rackctl storage status:\n%s", out)
	}

	// (s3cmd talked to n3, which may be the node that was killed.)
	s3cmdTo(n4.rackd)
	inParallel(t, "temp URL and deletes", map[string]func(t *testing.T){
		// A temporary URL made by the swift CLI serves the object without
		// a token (signed over /v1/..., fetched under rackd's /object
		// mount).
		"swift tempurl": func(t *testing.T) {
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "post", "-m", "Temp-URL-Key:tmp-k3y")
			tempPath := strings.TrimSpace(mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "tempurl", "GET", "600", "/v1/AUTH_"+demo+"/swift-c/f1", "tmp-k3y"))
			res, err := http.Get(n4.url() + "/object" + tempPath)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || sha(got) != sums["f1"] {
				t.Fatalf("GET %s without a token: HTTP %d, %d bytes", tempPath, res.StatusCode, len(got))
			}
			// An expired temp URL is refused even beside a token that
			// could read the object: the URL's parameters decide.
			expired := strings.TrimSpace(mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "tempurl", "--absolute", "GET", "1000000000", "/v1/AUTH_"+demo+"/swift-c/f1", "tmp-k3y"))
			if code, _ := fetch(n4.url()+"/object"+expired, aliceTok); code != http.StatusUnauthorized {
				t.Fatalf("GET of an expired temp URL with a token: HTTP %d, want 401", code)
			}
		},
		// Form uploads (formpost): a form signed with the account's temp
		// URL key (the one the swift CLI signs temp URLs with), POSTed by
		// curl without a token, stores its file under the form's prefix,
		// streamed, as the swift CLI then reads back; a form signed with
		// another key stores nothing.
		"swift formpost": func(t *testing.T) {
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "post", "-m", "Temp-URL-Key:tmp-k3y")
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "post", "form-c")
			path := "/v1/AUTH_" + demo + "/form-c/up/"
			expires := strconv.FormatInt(time.Now().Add(10*time.Minute).Unix(), 10)
			post := func(key string) string {
				mac := hmac.New(sha1.New, []byte(key))
				fmt.Fprintf(mac, "%s\n%s\n%d\n%d\n%s", path, "https://example.com/done", 2<<20, 1, expires)
				return mustTool(t, nil, files, "/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}",
					"-F", "redirect=https://example.com/done", "-F", "max_file_size=2097152", "-F", "max_file_count=1",
					"-F", "expires="+expires, "-F", "signature="+hex.EncodeToString(mac.Sum(nil)), "-F", "file=@f1m",
					n4.url()+"/object"+path)
			}
			if out := post("wrong-key"); !strings.HasPrefix(out, "401 ") {
				t.Fatalf("form signed with another key: %s", out)
			}
			if out := post("tmp-k3y"); out != "303 https://example.com/done?status=201&message=" {
				t.Fatalf("form upload: %s", out)
			}
			dst := filepath.Join(t.TempDir(), "f1m")
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "download", "form-c", "up/f1m", "-o", dst)
			if b, err := os.ReadFile(dst); err != nil || sha(b) != sums["f1m"] {
				t.Fatalf("form-c/up/f1m read back: %v, %d bytes", err, len(b))
			}
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "delete", "form-c")
		},
		// Static web: a public container the swift CLI makes a web site
		// serves its index page and HTML listings to an anonymous browser
		// (curl); a private one serves nothing.
		"swift staticweb": func(t *testing.T) {
			swift := func(args ...string) { mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", args...) }
			swift("upload", "web-c", "f1", "--object-name", "index.html")
			swift("upload", "web-c", "f0", "--object-name", "docs/f0")
			swift("post", "-r", ".r:*,.rlistings", "-m", "web-index:index.html", "-m", "web-listings:true", "-m", "web-listings-css:site.css", "web-c")
			get := func(p string) (string, string) {
				out := mustTool(t, nil, files, "/usr/bin/curl", "-sS", "-w", "\n%{http_code}", n4.url()+"/object/v1/AUTH_"+demo+p)
				i := strings.LastIndex(out, "\n")
				return out[i+1:], out[:i]
			}
			if code, body := get("/web-c/"); code != "200" || sha([]byte(body)) != sums["f1"] {
				t.Fatalf("anonymous GET of the site: %s, %d bytes", code, len(body))
			}
			if code, body := get("/web-c/docs/"); code != "200" || !strings.Contains(body, `href="f0"`) || !strings.Contains(body, `href="../site.css"`) {
				t.Fatalf("anonymous GET of docs/: %s\n%s", code, body)
			}
			swift("post", "-r", "", "web-c")
			if code, body := get("/web-c/docs/"); code != "401" || strings.Contains(body, "f0") {
				t.Fatalf("anonymous GET of a private site's docs/: %s\n%s", code, body)
			}
			swift("delete", "web-c")
		},
		// Container quotas: the swift CLI's upload past the count is
		// refused (413) and stores nothing; the healthcheck answers
		// without a token.
		"swift quota": func(t *testing.T) {
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "post", "-m", "Quota-Count:1", "-m", "Quota-Bytes:2000000", "quota-c")
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "upload", "quota-c", "f1m")
			if out, err := tool(aliceOn(n4.rackd), files, "/usr/bin/swift", "upload", "quota-c", "f1"); err == nil || !strings.Contains(out, "413") {
				t.Fatalf("swift upload past the container's count quota: %v\n%s", err, out)
			}
			if out := mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "list", "quota-c"); strings.TrimSpace(out) != "f1m" {
				t.Fatalf("quota-c holds:\n%s", out)
			}
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "delete", "quota-c")
			res, err := http.Get(n4.url() + "/object/healthcheck")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || string(body) != "OK" {
				t.Fatalf("GET /object/healthcheck: HTTP %d %q", res.StatusCode, body)
			}
		},
		// Object expiry: an upload with X-Delete-After shows X-Delete-At
		// in swift stat; a POST with a shorter X-Delete-After brings it
		// forward; once it passes the objects are not found at once, and
		// the leader's expirer takes them out of the listing. The upload's
		// hour leaves the stats all the time a loaded machine may take.
		"swift expiry": func(t *testing.T) {
			swift := func(args ...string) (string, error) {
				return tool(aliceOn(n4.rackd), files, "/usr/bin/swift", args...)
			}
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "upload", "--header", "X-Delete-After: 3600", "expiry-c", "f0", "f1")
			deleteAt := map[string]string{}
			for _, o := range []string{"f0", "f1"} {
				out := mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "stat", "expiry-c", o)
				if !strings.Contains(out, "X-Delete-At:") {
					t.Fatalf("swift stat expiry-c %s shows no X-Delete-At:\n%s", o, out)
				}
				deleteAt[o] = out[strings.Index(out, "X-Delete-At:"):]
				deleteAt[o] = strings.TrimSpace(deleteAt[o][:strings.IndexByte(deleteAt[o]+"\n", '\n')])
			}
			for _, o := range []string{"f0", "f1"} {
				mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "post", "-H", "X-Delete-After: 2", "expiry-c", o)
			}
			if out, err := swift("stat", "expiry-c", "f1"); err == nil && strings.Contains(out, deleteAt["f1"]) {
				t.Fatalf("the POST's X-Delete-After left f1's %s:\n%s", deleteAt["f1"], out)
			}
			if !eventually(time.Minute, func() bool {
				_, err1 := swift("stat", "expiry-c", "f0")
				_, err2 := swift("download", "-o", "-", "expiry-c", "f1")
				return err1 != nil && err2 != nil
			}) {
				t.Fatal("expired objects still readable after a minute")
			}
			if out, err := swift("stat", "expiry-c", "f0"); !strings.Contains(out, "404") {
				t.Fatalf("swift stat of an expired object: %v\n%s", err, out)
			}
			if !eventually(time.Minute, func() bool {
				out, err := swift("list", "expiry-c")
				return err == nil && strings.TrimSpace(out) == ""
			}) {
				out, _ := swift("list", "expiry-c")
				t.Fatalf("expired objects still listed after a minute:\n%s", out)
			}
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "delete", "expiry-c")
		},
		// Archive extraction (Swift's bulk middleware): a tar.gz made by
		// tar, PUT to the account, becomes a container of its files,
		// which the swift CLI lists and reads back.
		"swift extract archive": func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "arch-c")
			os.MkdirAll(dir, 0o755)
			for _, f := range []string{"f0", "f1m"} {
				b, err := os.ReadFile(filepath.Join(files, f))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
			archive := filepath.Join(t.TempDir(), "arch.tar.gz")
			mustTool(t, nil, filepath.Dir(dir), "/usr/bin/tar", "-czf", archive, "arch-c")
			b, err := os.ReadFile(archive)
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("PUT", n4.url()+"/object/v1/AUTH_"+demo+"?extract-archive=tar.gz", bytes.NewReader(b))
			req.Header.Set("X-Auth-Token", aliceTok)
			req.Header.Set("Accept", "application/json")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			report, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || !strings.Contains(string(report), `"Number Files Created":2`) || !strings.Contains(string(report), "201 Created") {
				t.Fatalf("extract-archive: HTTP %d %s", res.StatusCode, report)
			}
			if out := mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "list", "arch-c"); out != "f0\nf1m\n" {
				t.Fatalf("arch-c lists:\n%s", out)
			}
			back := filepath.Join(t.TempDir(), "f1m")
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "download", "-o", back, "arch-c", "f1m")
			got, _ := os.ReadFile(back)
			if sha(got) != sums["f1m"] {
				t.Fatalf("arch-c/f1m read back %d bytes that differ", len(got))
			}
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "delete", "arch-c")
		},
		// The swift CLI deletes through bulk delete (offered in /info)
		// when a container holds more objects than twice its threads.
		"swift bulk delete": func(t *testing.T) {
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "upload", "bulk-c", "f0", "f1", "f1m")
			mustTool(t, aliceOn(n4.rackd), files, "/usr/bin/swift", "delete", "--object-threads", "1", "bulk-c")
			if code, _ := call("HEAD", n1.url()+"/object/v1/AUTH_"+demo+"/bulk-c", aliceTok, nil, nil); code != 404 {
				t.Fatalf("container bulk-c still there after swift delete: HTTP %d", code)
			}
		},
		// Deleting with the clients' bulk paths (DeleteObjects from aws
		// and s3cmd) empties the buckets, and the collector reclaims the
		// shards.
		"aws": func(t *testing.T) {
			mustTool(t, awsEnv(alice), files, "/usr/bin/aws", "--endpoint-url", s3url(n4.rackd), "s3", "rm", "--recursive", "--only-show-errors", "s3://aws-b/")
			mustTool(t, awsEnv(alice), files, "/usr/bin/aws", "--endpoint-url", s3url(n4.rackd), "s3", "rb", "s3://aws-b")
		},
		"s3cmd": func(t *testing.T) {
			mustTool(t, s3cmdEnv, files, "/usr/bin/s3cmd", "-c", s3cfg, "del", "--recursive", "--force", "s3://s3cmd-b/")
			mustTool(t, s3cmdEnv, files, "/usr/bin/s3cmd", "-c", s3cfg, "rb", "s3://s3cmd-b")
		},
	})
	for _, b := range []string{"aws-b", "s3cmd-b"} {
		if code, _ := call("HEAD", n1.url()+"/object/v1/AUTH_"+demo+"/"+b, aliceTok, nil, nil); code != 404 {
			t.Fatalf("bucket %s still there after delete: HTTP %d", b, code)
		}
	}
	waitStorage(t, creds, n1.rackd, "deleted objects' shards reclaimed", time.Minute, func(s storageStatus) bool { return s.Garbage == 0 })
}

// checkDirectReads reads url (a 64 MiB object) once beside one GET of it
// held open, its body unread, and once beside ten: each held GET's
// read-ahead holds n's buffers (two stripes of 1 MiB blocks), and only
// with half of n's budget held by others does a GET read its local shards
// with direct I/O, which rackstack_storage_direct_read_bytes_total on n
// must show; beside one it reads through the page cache.
func checkDirectReads(t *testing.T, n *rackd, adminTok, url, tok, digest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var held []io.Closer
	defer func() {
		for _, b := range held {
			b.Close()
		}
	}()
	hold := func(count int) {
		for len(held) < count {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("X-Auth-Token", tok)
			resp, err := http.DefaultClient.Do(req.WithContext(ctx))
			if err != nil {
				t.Fatalf("held GET: %v", err)
			}
			held = append(held, resp.Body)
			if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
				t.Fatalf("held GET's first MiB: %v", err)
			}
		}
	}
	read := func() float64 {
		before := metricValue(t, n, adminTok, "rackstack_storage_direct_read_bytes_total")
		if code, got := fetch(url, tok); code != 200 || got != digest {
			t.Fatalf("GET beside %d held ones: HTTP %d, sha256 %s", len(held), code, got)
		}
		return metricValue(t, n, adminTok, "rackstack_storage_direct_read_bytes_total") - before
	}
	hold(1)
	if d := read(); d != 0 {
		t.Errorf("a GET beside one held one read %.0f shard bytes direct on %s, want the page cache", d, n.name)
	}
	hold(10)
	d := read()
	if d <= 0 {
		t.Errorf("a GET beside ten held ones read no shard bytes direct on %s", n.name)
	}
	t.Logf("a GET beside ten held ones: %s read %.0f shard bytes direct", n.name, d)
}

// metricValue reads one unlabelled series from n's /metrics.
func metricValue(t *testing.T, n *rackd, adminTok, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", n.url()+"/metrics", nil)
	req.Header.Set("X-Auth-Token", adminTok)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(raw)
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("/metrics on %s: HTTP %d, no %s", n.name, resp.StatusCode, name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// putObject PUTs body to a Swift object URL; a minute bounds it.
func putObject(url, tok string, body []byte) (int, string) {
	req, err := http.NewRequest("PUT", url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("X-Auth-Token", tok)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(msg)
}

// fetch GETs url (with a token when tok is set) and returns the status and
// the body's sha256.
func fetch(url, tok string) (int, string) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, ""
	}
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	h := sha256.New()
	io.Copy(h, resp.Body)
	return resp.StatusCode, hex.EncodeToString(h.Sum(nil))
}

// checkNoSecretAtRest fails when any file of a node's Raft state (log,
// snapshots) holds secret, and checks the cluster key is private.
func checkNoSecretAtRest(t *testing.T, dataDir, secret string) {
	t.Helper()
	err := filepath.WalkDir(filepath.Join(dataDir, "raft"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("%s holds an EC2 secret in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dataDir, "secrets", "cluster.key"))
	if err != nil {
		t.Fatalf("cluster key in %s: %v", dataDir, err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("cluster key in %s has mode %v, want 0600", dataDir, st.Mode().Perm())
	}
}
