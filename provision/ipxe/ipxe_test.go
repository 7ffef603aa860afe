package ipxe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/provision/agentapi"
)

// backend is a fake conductor: one MAC per boot kind, one good token.
type backend struct {
	boots     map[string]Boot
	good      string
	image     []byte
	got       []any
	resultErr error
}

func (b *backend) Boot(_ context.Context, mac string) (Boot, error) {
	if bt, ok := b.boots[mac]; ok {
		return bt, nil
	}
	return Boot{Kind: BootAgent, Token: "discover-" + strings.ReplaceAll(mac, ":", ""), Reason: "unknown machine: discovery"}, nil
}

func (b *backend) check(token string) error {
	if token != b.good {
		return ErrBadToken
	}
	return nil
}

func (b *backend) Inventory(_ context.Context, token string, inv agentapi.Inventory) (agentapi.InventoryReply, error) {
	if err := b.check(token); err != nil {
		return agentapi.InventoryReply{}, err
	}
	b.got = append(b.got, inv)
	return agentapi.InventoryReply{Node: "node-1"}, nil
}

func (b *backend) Heartbeat(_ context.Context, token string, hb agentapi.Heartbeat) (agentapi.HeartbeatReply, error) {
	if err := b.check(token); err != nil {
		return agentapi.HeartbeatReply{}, err
	}
	b.got = append(b.got, hb)
	return agentapi.HeartbeatReply{Command: agentapi.Command{ID: "c1", Op: agentapi.OpClean, Clean: &agentapi.CleanArgs{}}}, nil
}

func (b *backend) Result(_ context.Context, token string, r agentapi.Result) error {
	if err := b.check(token); err != nil {
		return err
	}
	b.got = append(b.got, r)
	return b.resultErr
}

type nopSeeker struct{ *bytes.Reader }

func (nopSeeker) Close() error { return nil }

func (b *backend) Image(_ context.Context, token string) (Content, error) {
	if err := b.check(token); err != nil {
		return Content{}, err
	}
	return Content{Body: nopSeeker{bytes.NewReader(b.image)}, Name: "image.raw", ETag: "abc123"}, nil
}

func (b *backend) ConfigDrive(_ context.Context, token string) (Content, error) {
	if err := b.check(token); err != nil {
		return Content{}, err
	}
	return Content{}, fmt.Errorf("%w: no config drive for this deploy", ErrNotFound)
}

func newServer(t *testing.T) (*httptest.Server, *backend, string) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, Kernel), []byte("KERNEL-BYTES-0123456789"), 0o644)
	os.WriteFile(filepath.Join(dir, Initrd), []byte("INITRD"), 0o644)
	b := &backend{
		good:  "good-token",
		image: bytes.Repeat([]byte("0123456789abcdef"), 1024),
		boots: map[string]Boot{
			"52:54:00:00:00:02": {Kind: BootAgent, Token: "boot-token", Reason: "cleaning"},
			"52:54:00:00:00:03": {Kind: BootExit, Reason: "active: booting from disk"},
		},
	}
	srv := httptest.NewServer(New(Config{URL: "http://192.0.2.1:8069", RamdiskDir: dir, Backend: b}))
	t.Cleanup(srv.Close)
	return srv, b, dir
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestBootScriptPerState(t *testing.T) {
	srv, _, _ := newServer(t)
	for name, tc := range map[string]struct {
		mac        string
		status     int
		want, not  []string
		wantPrefix string
	}{
		"unknown machine boots discovery": {
			mac: "52:54:00:00:00:01", status: 200, wantPrefix: "#!ipxe\n",
			want: []string{
				"kernel http://192.0.2.1:8069/ramdisk/vmlinuz initrd=initramfs.zst console=ttyS0 rackstack.url=http://192.0.2.1:8069 rackstack.token=discover-525400000001 rackstack.mac=52:54:00:00:00:01\n",
				"initrd http://192.0.2.1:8069/ramdisk/initramfs.zst\n", "boot\n",
			},
			not: []string{"exit"},
		},
		"operation in progress boots the agent with its token": {
			mac: "52-54-00-00-00-02", status: 200,
			want: []string{"rackstack.token=boot-token rackstack.mac=52:54:00:00:00:02", "echo Rackstack: cleaning"},
		},
		"active node leaves iPXE for the disk": {
			mac: "52:54:00:00:00:03", status: 200, wantPrefix: "#!ipxe\n",
			want: []string{"\nexit\n"}, not: []string{"kernel", "token"},
		},
		"bad MAC is a 400 naming it": {mac: "nope", status: 400, want: []string{"mac:", "nope"}},
		"missing MAC is a 400":       {mac: "", status: 400, want: []string{"mac:"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := get(t, srv.URL+"/boot.ipxe?mac="+tc.mac, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if !strings.HasPrefix(body, tc.wantPrefix) {
				t.Errorf("script does not start with %q:\n%s", tc.wantPrefix, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("script lacks %q:\n%s", w, body)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(body, n) {
					t.Errorf("script has %q:\n%s", n, body)
				}
			}
		})
	}
}

func TestRamdiskServedWithRangeAndETag(t *testing.T) {
	srv, _, _ := newServer(t)
	resp, body := get(t, srv.URL+"/ramdisk/vmlinuz", nil)
	if resp.StatusCode != 200 || body != "KERNEL-BYTES-0123456789" {
		t.Fatalf("kernel: %d %q", resp.StatusCode, body)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Content-Length") != "23" {
		t.Fatalf("kernel headers: %v", resp.Header)
	}
	resp, body = get(t, srv.URL+"/ramdisk/vmlinuz", map[string]string{"Range": "bytes=7-11"})
	if resp.StatusCode != http.StatusPartialContent || body != "BYTES" {
		t.Fatalf("range: %d %q", resp.StatusCode, body)
	}
	resp, _ = get(t, srv.URL+"/ramdisk/vmlinuz", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d", resp.StatusCode)
	}
	if resp, _ = get(t, srv.URL+"/ramdisk/..%2fsecret", nil); resp.StatusCode != 404 {
		t.Fatalf("other file: %d", resp.StatusCode)
	}
}

func post(t *testing.T, url, token, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

func TestAgentCallsNeedTheBootToken(t *testing.T) {
	srv, b, _ := newServer(t)
	inv := `{"interfaces":[{"name":"eth0","mac_address":"52:54:00:00:00:01"}],"cpu":{"count":2,"architecture":"x86_64"}}`
	for name, token := range map[string]string{"no token": "", "wrong token": "boot-token-of-another"} {
		t.Run(name, func(t *testing.T) {
			for path, body := range map[string]string{
				agentapi.PathInventory: inv, agentapi.PathHeartbeat: `{}`,
				agentapi.PathResult: `{"command_id":"c1","op":"clean","ok":true}`,
			} {
				resp, out := post(t, srv.URL+path, token, body)
				if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: %d %s, want 401", path, resp.StatusCode, out)
				}
			}
			for _, path := range []string{agentapi.PathImage, agentapi.PathConfigDrive} {
				resp, _ := get(t, srv.URL+path, map[string]string{"Authorization": "Bearer " + token})
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s: %d, want 401", path, resp.StatusCode)
				}
			}
		})
	}
	if len(b.got) != 0 {
		t.Fatalf("the backend saw calls with bad tokens: %v", b.got)
	}
	resp, out := post(t, srv.URL+agentapi.PathInventory, "good-token", inv)
	var reply agentapi.InventoryReply
	if resp.StatusCode != 200 || json.Unmarshal([]byte(out), &reply) != nil || reply.Node != "node-1" {
		t.Fatalf("inventory with the good token: %d %s", resp.StatusCode, out)
	}
	resp, out = post(t, srv.URL+agentapi.PathHeartbeat, "good-token", `{"progress":"idle"}`)
	var hb agentapi.HeartbeatReply
	if resp.StatusCode != 200 || json.Unmarshal([]byte(out), &hb) != nil || hb.Command.Op != agentapi.OpClean {
		t.Fatalf("heartbeat: %d %s", resp.StatusCode, out)
	}
	for _, op := range []string{"clean", "deploy", "poweroff"} {
		resp, out = post(t, srv.URL+agentapi.PathResult, "good-token", `{"command_id":"c1","op":"`+op+`","ok":true}`)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("result of %s: %d %s", op, resp.StatusCode, out)
		}
	}
}

func TestAgentBodiesAreValidated(t *testing.T) {
	srv, b, _ := newServer(t)
	for name, tc := range map[string]struct{ path, body, field string }{
		"not JSON":            {agentapi.PathHeartbeat, `{`, "body"},
		"empty":               {agentapi.PathHeartbeat, ``, "empty body"},
		"unknown field":       {agentapi.PathHeartbeat, `{"colour":"red"}`, "colour"},
		"wrong type":          {agentapi.PathInventory, `{"cpu":{"count":"two"}}`, "cpu.count"},
		"no NIC":              {agentapi.PathInventory, `{"interfaces":[]}`, "interfaces"},
		"bad MAC":             {agentapi.PathInventory, `{"interfaces":[{"name":"eth0","mac_address":"zz"}]}`, "interfaces[0].mac_address"},
		"disk without a name": {agentapi.PathInventory, `{"interfaces":[{"name":"eth0","mac_address":"52:54:00:00:00:01"}],"disks":[{"size":1}]}`, "disks[0].name"},
		"trailing data":       {agentapi.PathHeartbeat, `{} {}`, "after the JSON"},
		"result without id":   {agentapi.PathResult, `{"op":"clean","ok":true}`, "command_id"},
		"result of wait":      {agentapi.PathResult, `{"command_id":"c","op":"wait","ok":true}`, "op"},
		"failure without why": {agentapi.PathResult, `{"command_id":"c","op":"deploy","ok":false}`, "error"},
		"too big":             {agentapi.PathHeartbeat, `{"progress":"` + strings.Repeat("x", 2<<20) + `"}`, "larger than"},
	} {
		t.Run(name, func(t *testing.T) {
			resp, out := post(t, srv.URL+tc.path, "good-token", tc.body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, tc.field) {
				t.Fatalf("%d %s, want 400 naming %q", resp.StatusCode, out, tc.field)
			}
		})
	}
	if len(b.got) != 0 {
		t.Fatalf("the backend saw invalid bodies: %v", b.got)
	}
}

func TestImageStreamsWithLengthAndRange(t *testing.T) {
	srv, b, _ := newServer(t)
	auth := map[string]string{"Authorization": "Bearer good-token"}
	resp, body := get(t, srv.URL+agentapi.PathImage, auth)
	if resp.StatusCode != 200 || body != string(b.image) || resp.Header.Get("Content-Length") != fmt.Sprint(len(b.image)) {
		t.Fatalf("image: %d, %d bytes, length %q", resp.StatusCode, len(body), resp.Header.Get("Content-Length"))
	}
	if resp.Header.Get("ETag") != `"abc123"` {
		t.Errorf("ETag %q", resp.Header.Get("ETag"))
	}
	auth["Range"] = "bytes=16-31"
	resp, body = get(t, srv.URL+agentapi.PathImage, auth)
	if resp.StatusCode != http.StatusPartialContent || body != "0123456789abcdef" {
		t.Fatalf("range: %d %q", resp.StatusCode, body)
	}
	resp, body = get(t, srv.URL+agentapi.PathConfigDrive, map[string]string{"Authorization": "Bearer good-token"})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no config drive") {
		t.Fatalf("config drive: %d %s", resp.StatusCode, body)
	}
}

func TestCheckRamdiskSaysHowToBuildIt(t *testing.T) {
	_, _, dir := newServer(t)
	if err := CheckRamdisk(dir); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	err := CheckRamdisk(empty)
	if err == nil || !strings.Contains(err.Error(), "make ramdisk") {
		t.Fatalf("CheckRamdisk(empty) = %v", err)
	}
}
