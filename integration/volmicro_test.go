//go:build integration

package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// volCall makes a Cinder request at microversion 3.minor with a raw JSON
// body, and answers the status and the body.
func volCall(t *testing.T, method, url, tok string, minor, body string) (int, string) {
	t.Helper()
	return versionedCall(t, method, url, tok, "volume 3."+minor, body)
}

// novaCall makes a compute request at microversion 2.minor with a raw
// JSON body, and answers the status and the body.
func novaCall(t *testing.T, method, url, tok, minor, body string) (int, string) {
	t.Helper()
	return versionedCall(t, method, url, tok, "compute 2."+minor, body)
}

// versionedCall makes a request with OpenStack-API-Version version and a
// raw JSON body, and answers the status and the body.
func versionedCall(t *testing.T, method, url, tok, version, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("OpenStack-API-Version", version)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// cinderErr runs the cinder CLI and answers its output and error.
func cinderErr(env []string, args ...string) (string, error) {
	cmd := exec.Command("/usr/bin/cinder", args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// waitCinder polls cinder show until the volume's status is want.
func waitCinder(t *testing.T, env []string, minor, vol, want string) map[string]string {
	t.Helper()
	var p map[string]string
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		p = cinderTable(cinder(t, env, "--os-volume-api-version", "3."+minor, "show", vol))
		if p["status"] == want {
			return p
		}
		if strings.HasPrefix(p["status"], "error") && !strings.HasPrefix(want, "error") {
			break
		}
	}
	t.Fatalf("volume %s: %v, want %s", vol, p, want)
	return nil
}

// TestVolumeMicroversions drives Cinder microversions 3.53 to 3.71 with
// the real cinder CLI (and raw HTTP where the CLI always sends a valid
// body) against a real rackd: bodies checked from 3.53, default types
// per project (3.62), transfers without snapshots (3.55), time filters
// (3.60), snapshots of in-use volumes (3.66), the API without the project
// in the URL (3.67), a reimage through qemu-img and the block store
// (3.68, of an encrypted volume too), and the extend completion a
// volume never waits for (3.71). Nova's deprecated volume proxy
// (os-volumes, os-snapshots to compute 2.35) makes and shows the same
// volumes through the compute API.
func TestVolumeMicroversions(t *testing.T) {
	testenv.RequireRoot(t, "run rackd's block store")
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/cinder", "qemu-img"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	n1 := startDevCloud(t, "vm1", "--disk", t.TempDir(), "--compute", "off", "--s3-listen", "off")
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	for _, u := range []string{"alice", "bob"} {
		openstack(t, admin, "project", "create", u+"-proj")
		openstack(t, admin, "user", "create", "--project", u+"-proj", "--password", u+"-pass-1", u)
		openstack(t, admin, "role", "add", "--project", u+"-proj", "--user", u, "member")
	}
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=alice-proj")
	bob := osEnv(creds, n1, "OS_USERNAME=bob", "OS_PASSWORD=bob-pass-1", "OS_PROJECT_NAME=bob-proj")
	aliceProj := strings.TrimSpace(openstack(t, admin, "project", "show", "-f", "value", "-c", "id", "alice-proj"))
	aliceTok := token(t, n1, "alice", "alice-pass-1", "alice-proj")
	adminTok := token(t, n1, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	base := n1.url() + "/volume/v3/" + aliceProj
	cv := func(minor string, env []string, args ...string) string {
		t.Helper()
		return cinder(t, env, append([]string{"--os-volume-api-version", "3." + minor}, args...)...)
	}

	// Discovery says 3.71.
	if out := cv("70", alice, "api-version"); !strings.Contains(out, "3.71") {
		t.Fatalf("api-version:\n%s", out)
	}

	// 3.53: an unknown key in a body is refused naming it; at 3.52 the
	// same body makes a volume.
	code, body := volCall(t, "POST", base+"/volumes", aliceTok, "53", `{"volume":{"size":1,"colour":"blue"}}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "colour") {
		t.Fatalf("unknown key at 3.53: %d %s", code, body)
	}
	code, body = volCall(t, "PUT", base+"/volumes/00000000-0000-0000-0000-000000000000", aliceTok, "53", `{"volume":{}}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "field/attribute volume") {
		t.Fatalf("empty update at 3.53: %d %s", code, body)
	}
	if code, body = volCall(t, "POST", base+"/volumes", aliceTok, "52", `{"volume":{"size":1,"name":"old-client","colour":"blue"}}`); code != http.StatusAccepted {
		t.Fatalf("unknown key at 3.52: %d %s", code, body)
	}

	// 3.62: alice's project gets a default type; her volumes made
	// without one are of it, bob's are not.
	openstack(t, admin, "volume", "type", "create", "fast")
	cv("62", admin, "default-type-set", "fast", aliceProj)
	// A project reads its own default; the list of all is the admin's.
	if out := cv("62", alice, "default-type-list", "--project-id", aliceProj); !strings.Contains(out, aliceProj) {
		t.Fatalf("alice's default type:\n%s", out)
	}
	if out, err := cinderErr(alice, "--os-volume-api-version", "3.62", "default-type-list"); err == nil {
		t.Fatalf("alice listed every project's default type:\n%s", out)
	}
	if out := cv("62", admin, "default-type-list"); !strings.Contains(out, aliceProj) {
		t.Fatalf("admin's default-type-list:\n%s", out)
	}
	v1 := cinderTable(cv("62", alice, "create", "--name", "v1", "1"))["id"]
	if p := waitCinder(t, alice, "65", v1, "available"); p["volume_type"] != "fast" || p["volume_type_id"] == "" || p["consumes_quota"] != "True" {
		t.Fatalf("alice's volume at 3.65: %v", p)
	}
	vb := cinderTable(cv("62", bob, "create", "--name", "vb", "1"))["id"]
	if p := waitCinder(t, bob, "62", vb, "available"); p["volume_type"] != "__DEFAULT__" {
		t.Fatalf("bob's volume: %v", p)
	}
	cv("62", admin, "default-type-unset", aliceProj)

	// 3.60: created_at comparisons.
	if out := cv("60", alice, "list", "--filters", "created_at=gt:2000-01-01T00:00:00"); !strings.Contains(out, v1) {
		t.Fatalf("created_at gt 2000:\n%s", out)
	}
	if out := cv("60", alice, "list", "--filters", "created_at=lt:2000-01-01T00:00:00"); strings.Contains(out, v1) {
		t.Fatalf("created_at lt 2000:\n%s", out)
	}

	// 3.55: a transfer without snapshots leaves the snapshot with alice.
	snap := cinderTable(cv("55", alice, "snapshot-create", "--name", "s1", v1))["id"]
	for deadline := time.Now().Add(time.Minute); cinderTable(cv("55", alice, "snapshot-show", snap))["status"] != "available"; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatal("snapshot never available")
		}
	}
	tr := cinderTable(cv("57", alice, "transfer-create", "--no-snapshots", v1))
	if tr["no_snapshots"] != "True" || tr["accepted"] != "False" {
		t.Fatalf("transfer at 3.57: %v", tr)
	}
	cv("55", bob, "transfer-accept", tr["id"], tr["auth_key"])
	waitCinder(t, bob, "55", v1, "available")
	if p := cinderTable(cv("55", alice, "snapshot-show", snap)); p["id"] != snap {
		t.Fatalf("alice's snapshot after the transfer: %v", p)
	}

	// 3.66: an in-use volume (attached through the attachments API) is
	// snapshotted without --force; at 3.65 it needs it.
	v2 := cinderTable(cv("62", alice, "create", "--name", "v2", "1"))["id"]
	waitCinder(t, alice, "62", v2, "available")
	// 3.54: the attach mode is taken.
	a := cinderTable(cv("54", alice, "attachment-create", "--mode", "ro", v2, "6f0a0b53-2a6e-4b8e-9d51-2b1ad0f8c7e1"))
	att := a["id"]
	if a["attach_mode"] != "ro" {
		t.Fatalf("attachment at 3.54: %v", a)
	}
	cv("44", alice, "attachment-complete", att)
	waitCinder(t, alice, "44", v2, "in-use")
	if out, err := cinderErr(alice, "--os-volume-api-version", "3.65", "snapshot-create", v2); err == nil {
		t.Fatalf("in-use snapshot at 3.65 without force:\n%s", out)
	}
	if p := cinderTable(cv("66", alice, "snapshot-create", "--name", "s2", v2)); p["id"] == "" {
		t.Fatalf("in-use snapshot at 3.66: %v", p)
	}
	cv("44", alice, "attachment-delete", att)
	waitCinder(t, alice, "44", v2, "available")

	// 3.67: the API without the project in the URL, in the token's.
	code, body = volCall(t, "GET", n1.url()+"/volume/v3/volumes/"+v2, aliceTok, "67", "")
	if code != http.StatusOK || !strings.Contains(body, `"name":"v2"`) {
		t.Fatalf("GET /v3/volumes/%s: %d %s", v2, code, body)
	}

	// 3.68: an image written over v2, through qemu-img and the block
	// store: v2 is available again, bootable, with the image's metadata.
	image := strings.TrimSpace(openstack(t, alice, "image", "create", "--disk-format", "qcow2", "--container-format", "bare",
		"--file", img, "-f", "value", "-c", "id", "guest"))
	cv("68", alice, "reimage", v2, image)
	if p := waitCinder(t, alice, "68", v2, "available"); p["bootable"] != "true" {
		t.Fatalf("reimaged volume: %v", p)
	}
	if out := cv("68", alice, "show", v2); !strings.Contains(out, "image_id : "+image) {
		t.Fatalf("reimaged volume's image metadata:\n%s", out)
	}
	// An encrypted volume is reimaged too, under its own key: its raw
	// blocks are a LUKS header and the image's ciphertext.
	openstack(t, admin, "volume", "type", "create", "--encryption-provider", "luks", "--encryption-cipher", "aes-xts-plain64",
		"--encryption-key-size", "256", "--encryption-control-location", "front-end", "secret")
	encv := strings.TrimSpace(openstack(t, alice, "volume", "create", "--type", "secret", "--size", "1", "-f", "value", "-c", "id", "encv"))
	waitCinder(t, alice, "68", encv, "available")
	cv("68", alice, "reimage", encv, image)
	if p := waitCinder(t, alice, "68", encv, "available"); p["bootable"] != "true" || p["encrypted"] != "True" {
		t.Fatalf("reimaged encrypted volume: %v", p)
	}
	requireCiphertextOf(t, creds, n1, encv, "encv", img)

	// Before 3.68 the action does not exist (the CLI does not offer it:
	// raw HTTP).
	code, body = volCall(t, "POST", base+"/volumes/"+v2+"/action", aliceTok, "67", `{"os-reimage":{"image_id":"`+image+`"}}`)
	if code != http.StatusNotFound {
		t.Fatalf("reimage at 3.67: %d %s", code, body)
	}

	// 3.71: no volume waits for an extend's completion: a clear 400.
	code, body = volCall(t, "POST", n1.url()+"/volume/v3/volumes/"+v2+"/action", adminTok, "71", `{"os-extend_volume_completion":{"error":false}}`)
	if code != http.StatusBadRequest || !strings.Contains(body, "not waiting") {
		t.Fatalf("extend completion: %d %s", code, body)
	}

	// Nova's volume proxy: a volume and a snapshot made through the
	// compute API at 2.35 are the volume service's own, which cinder
	// shows; bob does not see them; from 2.36 the proxy is 404.
	nova := n1.url() + "/compute/v2.1"
	code, body = novaCall(t, "POST", nova+"/os-volumes", aliceTok, "35", `{"volume":{"size":1,"display_name":"proxied","metadata":{"via":"nova"}}}`)
	var pv struct {
		Volume struct {
			ID, DisplayName, Status string
			Attachments             []map[string]any
		}
	}
	if err := json.Unmarshal([]byte(body), &pv); code != http.StatusOK || err != nil || pv.Volume.DisplayName != "proxied" || len(pv.Volume.Attachments) != 1 {
		t.Fatalf("os-volumes create: %d %s", code, body)
	}
	if p := waitCinder(t, alice, "0", pv.Volume.ID, "available"); p["name"] != "proxied" || !strings.Contains(p["metadata"], "via") {
		t.Fatalf("the proxied volume in cinder: %v", p)
	}
	if code, body = novaCall(t, "GET", nova+"/os-volumes/detail?limit=1", aliceTok, "35", ""); code != http.StatusOK || strings.Count(body, `"displayName"`) != 1 {
		t.Fatalf("os-volumes/detail?limit=1: %d %s", code, body)
	}
	code, body = novaCall(t, "POST", nova+"/os-snapshots", aliceTok, "35", `{"snapshot":{"volume_id":"`+pv.Volume.ID+`","display_name":"psnap"}}`)
	var ps struct {
		Snapshot struct{ ID, VolumeID, DisplayName string }
	}
	if err := json.Unmarshal([]byte(body), &ps); code != http.StatusOK || err != nil || ps.Snapshot.VolumeID != pv.Volume.ID {
		t.Fatalf("os-snapshots create: %d %s", code, body)
	}
	if p := cinderTable(cv("0", alice, "snapshot-show", ps.Snapshot.ID)); p["name"] != "psnap" {
		t.Fatalf("the proxied snapshot in cinder: %v", p)
	}
	bobTok := token(t, n1, "bob", "bob-pass-1", "bob-proj")
	if code, body = novaCall(t, "GET", nova+"/os-volumes/"+pv.Volume.ID, bobTok, "35", ""); code != http.StatusNotFound || !strings.Contains(body, "itemNotFound") {
		t.Fatalf("bob's os-volumes show of alice's volume: %d %s", code, body)
	}
	if code, body = novaCall(t, "GET", nova+"/os-snapshots", aliceTok, "36", ""); code != http.StatusNotFound {
		t.Fatalf("os-snapshots at 2.36: %d %s", code, body)
	}
	if code, body = novaCall(t, "DELETE", nova+"/os-snapshots/"+ps.Snapshot.ID, aliceTok, "35", ""); code != http.StatusAccepted {
		t.Fatalf("os-snapshots delete: %d %s", code, body)
	}
	if code, body = novaCall(t, "DELETE", nova+"/os-volumes/"+pv.Volume.ID, aliceTok, "35", ""); code != http.StatusAccepted {
		t.Fatalf("os-volumes delete: %d %s", code, body)
	}
	if out, err := cinderErr(alice, "show", pv.Volume.ID); err == nil {
		t.Fatalf("the proxied volume after its delete:\n%s", out)
	}
}
