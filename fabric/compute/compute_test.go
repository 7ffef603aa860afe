package compute

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

const (
	admin = "admin-token"
	alice = "alice-token" // member of project A
	dave  = "dave-token"  // another member of project A
	bob   = "bob-token"   // member of project B
	carol = "carol-token" // reader of project A
	projA = "project-a"
	projB = "project-b"

	img1      = "11111111-1111-4111-8111-111111111111"
	imgQueued = "22222222-2222-4222-8222-222222222222"
	imgBig    = "33333333-3333-4333-8333-333333333333"
	netA      = "aaaaaaaa-0000-4000-8000-000000000001"
	netA2     = "aaaaaaaa-0000-4000-8000-000000000002"
	netB      = "bbbbbbbb-0000-4000-8000-000000000001"
)

type fixture struct {
	t     *testing.T
	svc   *Service
	local *store.Local
	srv   *httptest.Server
	ports *fakePorts
	hosts *fakeHosts
	now   time.Time
	// async leaves the builds a request starts (bdmbuild.go) running
	// when it returns; by default each request waits for them.
	async bool
}

// withVolumeTables adds the volume service's tables (without its
// commands, which a test that does not attach volumes does not exercise)
// unless schemas has them: server views and removals read them, as every
// rackd has them.
func withVolumeTables(schemas []store.Schema) []store.Schema {
	for _, s := range schemas {
		for _, t := range s.Tables {
			if t.Schema.Name == volstate.VolumeTable {
				return schemas
			}
		}
	}
	return append(schemas, store.Schema{Tables: volstate.Schema().Tables})
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t)
}

// newFixtureWith is newFixture with other services' parts of the state
// beside compute's (bmstate's, for bare-metal servers).
func newFixtureWith(t *testing.T, schemas ...store.Schema) *fixture {
	t.Helper()
	local, err := store.NewLocal(append([]store.Schema{Schema()}, withVolumeTables(schemas)...)...)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, local: local, now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC), ports: newFakePorts()}
	f.ports.addNetwork(netA, "net-a", projA, false)
	f.ports.addNetwork(netB, "net-b", projB, false)
	// n1 has 1024 MB for servers (1536 less 512 reserved), n2 788 MB.
	f.hosts = &fakeHosts{hosts: []Host{
		{Name: "n1", Up: true, VCPUs: 2, MemoryMB: 1536, DiskGB: 20, HostIP: "192.0.2.1", CPUModel: "Test CPU"},
		{Name: "n2", Up: true, VCPUs: 2, MemoryMB: 1300, DiskGB: 20, HostIP: "192.0.2.2", CPUModel: "Test CPU"},
	}}
	auth := apitest.Tokens{
		admin: {UserID: "u-admin", ProjectID: "project-admin", Roles: []string{"admin", "member", "reader"}},
		alice: {UserID: "u-alice", ProjectID: projA, Roles: []string{"member", "reader"}},
		dave:  {UserID: "u-dave", ProjectID: projA, Roles: []string{"member", "reader"}},
		bob:   {UserID: "u-bob", ProjectID: projB, Roles: []string{"member", "reader"}},
		carol: {UserID: "u-carol", ProjectID: projA, Roles: []string{"reader"}},
	}
	images := fakeImages{
		img1:      {ID: img1, Status: "active", Size: 50 << 20, DiskFormat: "qcow2"},
		imgQueued: {ID: imgQueued, Status: "queued"},
		imgBig:    {ID: imgBig, Status: "active", MinDisk: 10, MinRAM: 4096},
	}
	f.svc, err = New(Config{Repl: local, Auth: auth, Images: images, Ports: f.ports, Hosts: f.hosts,
		ConsoleLogs: fakeConsoles{}, SerialConsole: fakeConsoles{}, Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = apitest.Serve(t, "/compute", f.svc.Handler())
	return f
}

type resp struct {
	code   int
	body   map[string]any
	header http.Header
}

// do makes a request; version is the microversion ("" for none).
func (f *fixture) do(method, path, tok, version string, body any) resp {
	f.t.Helper()
	var header []string
	if version != "" {
		header = []string{"X-OpenStack-Nova-API-Version", version}
	}
	res := apitest.Call(f.t, method, f.srv.URL+"/compute"+path, tok, body, header...)
	if !f.async {
		f.svc.bg.Wait()
	}
	if res.Body == nil {
		res.Body = map[string]any{}
	}
	return resp{code: res.Code, body: res.Body, header: res.Header}
}

// expect checks a request's status and, for errors, Nova's error body:
// the fault key (when given) and words of the message.
func (f *fixture) expect(method, path, tok, version string, body any, status int, fault string, inMsg ...string) map[string]any {
	f.t.Helper()
	r := f.do(method, path, tok, version, body)
	if r.code != status {
		f.t.Fatalf("%s %s: status %d, want %d: %v", method, path, r.code, status, r.body)
	}
	if status >= 400 && status != 401 {
		if len(r.body) != 1 {
			f.t.Fatalf("%s %s: error body %v", method, path, r.body)
		}
		for k, v := range r.body {
			m := v.(map[string]any)
			if fault != "" && k != fault {
				f.t.Fatalf("%s %s: fault %s, want %s (%v)", method, path, k, fault, m["message"])
			}
			if int(m["code"].(float64)) != status {
				f.t.Fatalf("%s %s: code %v in body", method, path, m["code"])
			}
			for _, s := range inMsg {
				if !strings.Contains(m["message"].(string), s) {
					f.t.Fatalf("%s %s: message %q lacks %q", method, path, m["message"], s)
				}
			}
		}
	}
	return r.body
}

func (f *fixture) flavor(id, name string, vcpus, ram, disk int, extra ...any) map[string]any {
	f.t.Helper()
	fl := map[string]any{"id": id, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk}
	for i := 0; i+1 < len(extra); i += 2 {
		fl[extra[i].(string)] = extra[i+1]
	}
	return f.expect("POST", "/v2.1/flavors", admin, "", map[string]any{"flavor": fl}, 200, "")["flavor"].(map[string]any)
}

// server creates a server and returns its id.
func (f *fixture) server(tok, name string, extra ...any) string {
	f.t.Helper()
	sv := map[string]any{"name": name, "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}}}
	for i := 0; i+1 < len(extra); i += 2 {
		sv[extra[i].(string)] = extra[i+1]
	}
	version := ""
	if n, ok := sv["networks"].(string); ok && (n == "none" || n == "auto") {
		version = "2.37"
	}
	body := f.expect("POST", "/v2.1/servers", tok, version, map[string]any{"server": sv}, 202, "")
	return body["server"].(map[string]any)["id"].(string)
}

func (f *fixture) show(tok, id, version string) map[string]any {
	f.t.Helper()
	return f.expect("GET", "/v2.1/servers/"+id, tok, version, nil, 200, "")["server"].(map[string]any)
}

func (f *fixture) row(id string) *Server {
	return store.Get[Server](f.local.State.Txn(), tServers, id)
}

func (f *fixture) report(id string, o Observed) {
	f.t.Helper()
	if err := f.svc.Report(context.Background(), id, o); err != nil {
		f.t.Fatalf("report %s: %v", id, err)
	}
}

func (f *fixture) action(tok, id string, body any, status int, inMsg ...string) {
	f.t.Helper()
	fault := ""
	if status == 409 {
		fault = "conflictingRequest"
	}
	f.expect("POST", "/v2.1/servers/"+id+"/action", tok, "", body, status, fault, inMsg...)
}

func (f *fixture) stdFlavors() {
	f.flavor("small", "m1.small", 1, 512, 1)
	f.flavor("big", "m1.big", 1, 768, 1)
}

func TestVersionsAndMicroversions(t *testing.T) {
	f := newFixture(t)
	body := f.expect("GET", "/", "", "", nil, 200, "")
	v := body["versions"].([]any)[1].(map[string]any)
	if v["id"] != "v2.1" || v["version"] != MaxMicroversion || v["min_version"] != "2.1" || body["versions"].([]any)[0].(map[string]any)["id"] != "v2.0" {
		t.Fatalf("versions: %v", body)
	}
	// v2.0 is v2.1 at 2.1, whatever microversion is asked.
	if v := f.expect("GET", "/v2", "", "", nil, 200, "")["version"].(map[string]any); v["id"] != "v2.0" {
		t.Fatalf("v2.0: %v", v)
	}
	f.flavor("legacy", "legacy", 1, 64, 1)
	r := f.do("GET", "/v2/flavors/legacy", alice, "2.75", nil)
	if r.code != 200 || r.body["flavor"].(map[string]any)["swap"] != "" || r.header.Get("X-OpenStack-Nova-API-Version") != "2.1" {
		t.Fatalf("v2.0 flavor: %d %v %v", r.code, r.body, r.header)
	}
	body = f.expect("GET", "/v2.1", "", "", nil, 200, "")
	v = body["version"].(map[string]any)
	if v["version"] != MaxMicroversion || !strings.HasSuffix(v["links"].([]any)[0].(map[string]any)["href"].(string), "/compute/v2.1/") {
		t.Fatalf("version: %v", body)
	}
	f.expect("GET", "/v2.1/flavors", "", "", nil, 401, "")
	for _, c := range []struct {
		header, value string
		status        int
		echo          string
	}{
		{"", "", 200, "2.1"},
		{"X-OpenStack-Nova-API-Version", "2.47", 200, "2.47"},
		{"X-OpenStack-Nova-API-Version", "latest", 200, MaxMicroversion},
		{"OpenStack-API-Version", "compute 2.60", 200, "2.60"},
		{"X-OpenStack-Nova-API-Version", "2." + strconv.Itoa(maxMinor+1), 406, ""},
		{"X-OpenStack-Nova-API-Version", "3.0", 406, ""},
		{"X-OpenStack-Nova-API-Version", "two", 400, ""},
	} {
		req, _ := http.NewRequest("GET", f.srv.URL+"/compute/v2.1/flavors", nil)
		req.Header.Set("X-Auth-Token", alice)
		if c.header != "" {
			req.Header.Set(c.header, c.value)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.status {
			t.Fatalf("%s %s: %d, want %d", c.header, c.value, res.StatusCode, c.status)
		}
		if c.echo != "" && (res.Header.Get("X-OpenStack-Nova-API-Version") != c.echo || res.Header.Get("OpenStack-API-Version") != "compute "+c.echo) {
			t.Fatalf("%s %s: headers %v", c.header, c.value, res.Header)
		}
	}
	body = f.expect("GET", "/v2.1/extensions", alice, "", nil, 200, "")
	if len(body["extensions"].([]any)) == 0 {
		t.Fatal("no extensions")
	}
	f.expect("GET", "/v2.1/extensions/os-keypairs", alice, "", nil, 200, "")
	f.expect("GET", "/v2.1/extensions/nope", alice, "", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-no-such-api", admin, "", nil, 404, "itemNotFound") // an unknown path
}

func TestFlavors(t *testing.T) {
	f := newFixture(t)
	fl := f.flavor("1", "m1.tiny", 1, 256, 1)
	if fl["swap"] != "" || fl["os-flavor-access:is_public"] != true || fl["rxtx_factor"] != 1.0 || fl["OS-FLV-EXT-DATA:ephemeral"] != 0.0 {
		t.Fatalf("flavor view: %v", fl)
	}
	if _, ok := fl["description"]; ok {
		t.Fatal("description before 2.55")
	}
	gen := f.flavor("", "m1.gen", 2, 1024, 10, "id", nil, "swap", 512, "OS-FLV-EXT-DATA:ephemeral", 5)
	if len(gen["id"].(string)) != 36 || gen["swap"] != 512.0 {
		t.Fatalf("generated id: %v", gen)
	}
	f.expect("POST", "/v2.1/flavors", alice, "", map[string]any{"flavor": map[string]any{"name": "x", "vcpus": 1, "ram": 1, "disk": 1}}, 403, "forbidden")
	f.expect("POST", "/v2.1/flavors", admin, "", map[string]any{"flavor": map[string]any{"name": "m1.tiny", "vcpus": 1, "ram": 1, "disk": 1}}, 409, "conflictingRequest", "name m1.tiny already exists")
	f.expect("POST", "/v2.1/flavors", admin, "", map[string]any{"flavor": map[string]any{"id": "1", "name": "other", "vcpus": 1, "ram": 1, "disk": 1}}, 409, "conflictingRequest", "ID 1 already exists")
	for name, c := range map[string]struct {
		body  map[string]any
		field string
	}{
		"no vcpus":     {map[string]any{"name": "a", "ram": 1, "disk": 1}, "vcpus"},
		"zero ram":     {map[string]any{"name": "a", "vcpus": 1, "ram": 0, "disk": 1}, "ram"},
		"disk string":  {map[string]any{"name": "a", "vcpus": 1, "ram": 1, "disk": "x"}, "disk"},
		"bad public":   {map[string]any{"name": "a", "vcpus": 1, "ram": 1, "disk": 1, "os-flavor-access:is_public": "maybe"}, "os-flavor-access:is_public"},
		"unknown attr": {map[string]any{"name": "a", "vcpus": 1, "ram": 1, "disk": 1, "color": "red"}, "'color'"},
		"blank name":   {map[string]any{"name": " a", "vcpus": 1, "ram": 1, "disk": 1}, "name"},
		"description":  {map[string]any{"name": "a", "vcpus": 1, "ram": 1, "disk": 1, "description": "d"}, "'description'"},
	} {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.1/flavors", admin, "", map[string]any{"flavor": c.body}, 400, "badRequest", c.field)
		})
	}
	// 2.55: descriptions; 2.61: extra specs in the view; 2.75: swap 0.
	d := f.expect("POST", "/v2.1/flavors", admin, "2.75", map[string]any{"flavor": map[string]any{"id": "d1", "name": "described", "vcpus": 1, "ram": 64, "disk": 0, "description": "tiny"}}, 200, "")["flavor"].(map[string]any)
	if d["description"] != "tiny" || d["swap"] != 0.0 || d["extra_specs"] == nil {
		t.Fatalf("2.75 view: %v", d)
	}
	d = f.expect("PUT", "/v2.1/flavors/d1", admin, "2.55", map[string]any{"flavor": map[string]any{"description": "smaller"}}, 200, "")["flavor"].(map[string]any)
	if d["description"] != "smaller" {
		t.Fatalf("update: %v", d)
	}
	f.expect("PUT", "/v2.1/flavors/d1", admin, "", map[string]any{"flavor": map[string]any{"description": "x"}}, 405, "")
	// Lists, filters and pages.
	list := f.expect("GET", "/v2.1/flavors", alice, "", nil, 200, "")["flavors"].([]any)
	if len(list) != 3 || len(list[0].(map[string]any)) != 3 {
		t.Fatalf("list: %v", list)
	}
	detail := f.expect("GET", "/v2.1/flavors/detail?minRam=512", alice, "", nil, 200, "")["flavors"].([]any)
	if len(detail) != 1 || detail[0].(map[string]any)["name"] != "m1.gen" {
		t.Fatalf("minRam: %v", detail)
	}
	detail = f.expect("GET", "/v2.1/flavors/detail?minDisk=1", alice, "", nil, 200, "")["flavors"].([]any)
	if len(detail) != 2 {
		t.Fatalf("minDisk: %v", detail)
	}
	f.expect("GET", "/v2.1/flavors?minRam=x", alice, "", nil, 400, "badRequest", "minRam")
	page := f.expect("GET", "/v2.1/flavors?limit=1", alice, "", nil, 200, "")
	if len(page["flavors"].([]any)) != 1 || page["flavors_links"] == nil {
		t.Fatalf("limit: %v", page)
	}
	first := page["flavors"].([]any)[0].(map[string]any)["id"].(string)
	rest := f.expect("GET", "/v2.1/flavors?marker="+first, alice, "", nil, 200, "")["flavors"].([]any)
	if len(rest) != 2 {
		t.Fatalf("marker: %v", rest)
	}
	f.expect("GET", "/v2.1/flavors?marker=nope", alice, "", nil, 400, "badRequest", "marker")
	f.expect("GET", "/v2.1/flavors/1", alice, "", nil, 200, "")
	f.expect("GET", "/v2.1/flavors/nope", alice, "", nil, 404, "itemNotFound", "Flavor nope could not be found")
	// Extra specs.
	specs := f.expect("POST", "/v2.1/flavors/1/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{"hw:cpu_policy": "shared", "n": 3}}, 200, "")
	if specs["extra_specs"].(map[string]any)["n"] != "3" {
		t.Fatalf("specs: %v", specs)
	}
	f.expect("POST", "/v2.1/flavors/1/os-extra_specs", alice, "", map[string]any{"extra_specs": map[string]any{"a": "b"}}, 403, "forbidden")
	f.expect("POST", "/v2.1/flavors/1/os-extra_specs", admin, "", map[string]any{"extra_specs": map[string]any{"bad/key": "b"}}, 400, "badRequest", "extra_specs")
	if got := f.expect("GET", "/v2.1/flavors/1/os-extra_specs/hw:cpu_policy", alice, "", nil, 200, ""); got["hw:cpu_policy"] != "shared" {
		t.Fatalf("spec: %v", got)
	}
	f.expect("PUT", "/v2.1/flavors/1/os-extra_specs/hw:cpu_policy", admin, "", map[string]any{"hw:cpu_policy": "dedicated"}, 200, "")
	f.expect("PUT", "/v2.1/flavors/1/os-extra_specs/hw:cpu_policy", admin, "", map[string]any{"other": "x"}, 400, "badRequest", "mismatch")
	f.expect("DELETE", "/v2.1/flavors/1/os-extra_specs/n", admin, "", nil, 200, "")
	f.expect("DELETE", "/v2.1/flavors/1/os-extra_specs/n", admin, "", nil, 404, "itemNotFound")
	all := f.expect("GET", "/v2.1/flavors/1/os-extra_specs", alice, "", nil, 200, "")["extra_specs"].(map[string]any)
	if len(all) != 1 || all["hw:cpu_policy"] != "dedicated" {
		t.Fatalf("specs: %v", all)
	}
	if v := f.expect("GET", "/v2.1/flavors/1", alice, "2.61", nil, 200, "")["flavor"].(map[string]any); v["extra_specs"].(map[string]any)["hw:cpu_policy"] != "dedicated" {
		t.Fatalf("2.61 view: %v", v)
	}
	// Private flavors and access.
	f.flavor("p1", "private", 1, 128, 1, "os-flavor-access:is_public", false)
	f.expect("GET", "/v2.1/flavors/p1", alice, "", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/flavors/1/os-flavor-access", admin, "", nil, 404, "itemNotFound", "public flavors")
	acc := f.expect("POST", "/v2.1/flavors/p1/action", admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": projA}}, 200, "")
	if len(acc["flavor_access"].([]any)) != 1 {
		t.Fatalf("access: %v", acc)
	}
	f.expect("POST", "/v2.1/flavors/p1/action", admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": projA}}, 409, "conflictingRequest")
	f.expect("POST", "/v2.1/flavors/1/action", admin, "2.7", map[string]any{"addTenantAccess": map[string]any{"tenant": projA}}, 409, "conflictingRequest", "public flavor")
	f.expect("POST", "/v2.1/flavors/p1/action", alice, "", map[string]any{"addTenantAccess": map[string]any{"tenant": projA}}, 403, "forbidden")
	f.expect("GET", "/v2.1/flavors/p1", alice, "", nil, 200, "")
	f.expect("GET", "/v2.1/flavors/p1", bob, "", nil, 404, "itemNotFound")
	if n := len(f.expect("GET", "/v2.1/flavors", alice, "", nil, 200, "")["flavors"].([]any)); n != 4 {
		t.Fatalf("alice sees %d flavors", n)
	}
	if n := len(f.expect("GET", "/v2.1/flavors", bob, "", nil, 200, "")["flavors"].([]any)); n != 3 {
		t.Fatalf("bob sees %d flavors", n)
	}
	if n := len(f.expect("GET", "/v2.1/flavors", admin, "", nil, 200, "")["flavors"].([]any)); n != 3 {
		t.Fatalf("admin default list: %d", n)
	}
	if n := len(f.expect("GET", "/v2.1/flavors?is_public=f", admin, "", nil, 200, "")["flavors"].([]any)); n != 1 {
		t.Fatalf("admin private list: %d", n)
	}
	if n := len(f.expect("GET", "/v2.1/flavors?is_public=none", admin, "", nil, 200, "")["flavors"].([]any)); n != 4 {
		t.Fatalf("admin all list: %d", n)
	}
	f.expect("GET", "/v2.1/flavors/p1/os-flavor-access", admin, "", nil, 200, "")
	f.expect("POST", "/v2.1/flavors/p1/action", admin, "", map[string]any{"removeTenantAccess": map[string]any{"tenant": projA}}, 200, "")
	f.expect("POST", "/v2.1/flavors/p1/action", admin, "", map[string]any{"removeTenantAccess": map[string]any{"tenant": projA}}, 404, "itemNotFound")
	f.expect("POST", "/v2.1/flavors/p1/action", admin, "", map[string]any{"explode": nil}, 400, "badRequest", "no such action")
	f.expect("DELETE", "/v2.1/flavors/p1", alice, "", nil, 403, "forbidden")
	f.expect("DELETE", "/v2.1/flavors/p1", admin, "", nil, 202, "")
	f.expect("DELETE", "/v2.1/flavors/p1", admin, "", nil, 404, "itemNotFound")
}

const testPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk2hx3PxvJUqDxjVZ4A4oW5DFUZqfwYDNWz3t4kmFWS test@host"

func TestKeypairs(t *testing.T) {
	f := newFixture(t)
	k := f.expect("POST", "/v2.1/os-keypairs", alice, "", map[string]any{"keypair": map[string]any{"name": "k1"}}, 200, "")["keypair"].(map[string]any)
	priv, _ := k["private_key"].(string)
	if !strings.HasPrefix(priv, "-----BEGIN RSA PRIVATE KEY-----") || !strings.HasPrefix(k["public_key"].(string), "ssh-rsa ") || k["user_id"] != "u-alice" {
		t.Fatalf("generated: %v", k)
	}
	if len(strings.Split(k["fingerprint"].(string), ":")) != 16 {
		t.Fatalf("fingerprint %v", k["fingerprint"])
	}
	// Nova's key: RSA 2048, the private key the public one's.
	if raw, err := ssh.ParseRawPrivateKey([]byte(priv)); err != nil {
		t.Fatalf("private key: %v", err)
	} else if rk, ok := raw.(*rsa.PrivateKey); !ok || rk.N.BitLen() != 2048 {
		t.Fatalf("private key %T", raw)
	} else if sp, _ := ssh.NewPublicKey(&rk.PublicKey); !strings.HasPrefix(k["public_key"].(string), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp)))+" ") {
		t.Fatal("the public key is not the private key's")
	}
	if _, ok := k["type"]; ok {
		t.Fatal("type before 2.2")
	}
	imp := f.expect("POST", "/v2.1/os-keypairs", alice, "2.2", map[string]any{"keypair": map[string]any{"name": "k2", "public_key": testPublicKey, "type": "ssh"}}, 201, "")["keypair"].(map[string]any)
	if _, ok := imp["private_key"]; ok || imp["type"] != "ssh" || imp["public_key"] != testPublicKey {
		t.Fatalf("imported: %v", imp)
	}
	x := f.expect("POST", "/v2.1/os-keypairs", alice, "2.2", map[string]any{"keypair": map[string]any{"name": "x509", "type": "x509"}}, 201, "")["keypair"].(map[string]any)
	if !strings.Contains(x["public_key"].(string), "BEGIN CERTIFICATE") || !strings.Contains(x["private_key"].(string), "PRIVATE KEY") || x["type"] != "x509" ||
		len(strings.Split(x["fingerprint"].(string), ":")) != 20 {
		t.Fatalf("x509: %v", x)
	}
	f.expect("POST", "/v2.1/os-keypairs", alice, "2.2", map[string]any{"keypair": map[string]any{"name": "x509b", "type": "x509", "public_key": x["public_key"]}}, 201, "")
	f.expect("DELETE", "/v2.1/os-keypairs/x509", alice, "2.2", nil, 204, "")
	f.expect("DELETE", "/v2.1/os-keypairs/x509b", alice, "2.2", nil, 204, "")
	for name, c := range map[string]struct {
		body   map[string]any
		status int
		inMsg  string
	}{
		"junk key":      {map[string]any{"name": "j", "public_key": "ssh-rsa JUNK nova@ubuntu"}, 400, "Keypair data is invalid"},
		"blank key":     {map[string]any{"name": "j", "public_key": " "}, 400, "Keypair data is invalid"},
		"long key":      {map[string]any{"name": "j", "public_key": "ssh-rsa " + strings.Repeat("A", 2048) + " x@y"}, 400, "invalid"},
		"empty name":    {map[string]any{"name": ""}, 400, "name"},
		"long name":     {map[string]any{"name": strings.Repeat("k", 256)}, 400, "name"},
		"unsafe name":   {map[string]any{"name": `key_/.\@:`}, 400, "unsafe characters"},
		"no name":       {map[string]any{"public_key": testPublicKey}, 400, "'name' is a required property"},
		"duplicate":     {map[string]any{"name": "k1"}, 409, "already exists"},
		"type too soon": {map[string]any{"name": "t", "type": "ssh"}, 400, "'type'"},
	} {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.1/os-keypairs", alice, "", map[string]any{"keypair": c.body}, c.status, "", c.inMsg)
		})
	}
	list := f.expect("GET", "/v2.1/os-keypairs", alice, "", nil, 200, "")["keypairs"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["keypair"].(map[string]any)["name"] != "k1" {
		t.Fatalf("list: %v", list)
	}
	// Keypairs are per user: dave (same project) and bob see none.
	for _, tok := range []string{dave, bob} {
		if n := len(f.expect("GET", "/v2.1/os-keypairs", tok, "", nil, 200, "")["keypairs"].([]any)); n != 0 {
			t.Fatalf("another user sees %d keypairs", n)
		}
		f.expect("GET", "/v2.1/os-keypairs/k1", tok, "", nil, 404, "itemNotFound")
	}
	f.expect("POST", "/v2.1/os-keypairs", dave, "", map[string]any{"keypair": map[string]any{"name": "k1", "public_key": testPublicKey}}, 200, "")
	shown := f.expect("GET", "/v2.1/os-keypairs/k2", alice, "", nil, 200, "")["keypair"].(map[string]any)
	if shown["user_id"] != "u-alice" || shown["deleted"] != false || shown["id"].(float64) < 1 {
		t.Fatalf("show: %v", shown)
	}
	// 2.10: admins act for other users; others may not.
	if n := len(f.expect("GET", "/v2.1/os-keypairs?user_id=u-alice", admin, "2.10", nil, 200, "")["keypairs"].([]any)); n != 2 {
		t.Fatalf("admin list for alice: %d", n)
	}
	f.expect("GET", "/v2.1/os-keypairs?user_id=u-alice", bob, "2.10", nil, 403, "forbidden")
	f.expect("POST", "/v2.1/os-keypairs", admin, "2.10", map[string]any{"keypair": map[string]any{"name": "forbob", "user_id": "u-bob", "public_key": testPublicKey}}, 201, "")
	f.expect("GET", "/v2.1/os-keypairs/forbob", bob, "", nil, 200, "")
	// 2.35: pages.
	pg := f.expect("GET", "/v2.1/os-keypairs?limit=1", alice, "2.35", nil, 200, "")
	if len(pg["keypairs"].([]any)) != 1 || pg["keypairs_links"] == nil {
		t.Fatalf("page: %v", pg)
	}
	f.expect("DELETE", "/v2.1/os-keypairs/k1", alice, "", nil, 202, "")
	f.expect("DELETE", "/v2.1/os-keypairs/k1", alice, "", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-keypairs/k2", alice, "2.2", nil, 204, "")
	f.expect("GET", "/v2.1/os-keypairs/k1", dave, "", nil, 200, "")
	// Quota: key_pairs counts per user.
	f.expect("PUT", "/v2.1/os-quota-sets/"+projB, admin, "", map[string]any{"quota_set": map[string]any{"key_pairs": 1}}, 200, "")
	f.expect("POST", "/v2.1/os-keypairs", bob, "", map[string]any{"keypair": map[string]any{"name": "two", "public_key": testPublicKey}}, 403, "overLimit", "too many key pairs")
	// The private key is never stored.
	snap, _, err := store.SnapshotRoundTrip(f.local.State, Schema())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(snap), "PRIVATE KEY") {
		t.Fatal("a private key is in the state")
	}
}

func TestServerCreateShowAndReport(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.expect("POST", "/v2.1/os-keypairs", alice, "", map[string]any{"keypair": map[string]any{"name": "k", "public_key": testPublicKey}}, 200, "")
	ud := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n"))
	r := f.do("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{
		"name": "vm1", "imageRef": "http://glance/images/" + img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}},
		"key_name": "k", "user_data": ud, "metadata": map[string]any{"role": "web"}, "availability_zone": "nova",
		"min_count": 1, "max_count": 1, "config_drive": true,
	}})
	if r.code != 202 {
		t.Fatalf("create: %d %v", r.code, r.body)
	}
	created := r.body["server"].(map[string]any)
	id := created["id"].(string)
	if created["adminPass"] == "" || created["OS-DCF:diskConfig"] != "MANUAL" || !strings.HasSuffix(r.header.Get("Location"), "/servers/"+id) {
		t.Fatalf("create answer: %v %v", r.body, r.header)
	}
	row := f.row(id)
	if row.Host != "n1" || row.Status != "BUILD" || row.TaskState != "spawning" || row.PublicKey != testPublicKey || row.UserData != ud ||
		row.Want != "active" || len(row.Ports) != 1 || len(row.CreatedPorts) != 1 || row.RootGB != 1 {
		t.Fatalf("row: %+v", row)
	}
	pt, ok := f.ports.get(row.Ports[0])
	if !ok || pt.DeviceID != id || pt.Host != "n1" || pt.DeviceOwner != "compute:nova" {
		t.Fatalf("port: %+v", pt)
	}
	v := f.show(alice, id, "")
	if v["status"] != "BUILD" || v["OS-EXT-STS:task_state"] != "spawning" || v["OS-EXT-STS:vm_state"] != "building" || v["key_name"] != "k" ||
		v["config_drive"] != "True" || v["OS-EXT-AZ:availability_zone"] != "nova" || v["metadata"].(map[string]any)["role"] != "web" {
		t.Fatalf("show: %v", v)
	}
	if _, ok := v["OS-EXT-SRV-ATTR:host"]; ok {
		t.Fatal("a member sees the host")
	}
	addrs := v["addresses"].(map[string]any)["net-a"].([]any)[0].(map[string]any)
	if addrs["addr"] != pt.IPs[0] || addrs["OS-EXT-IPS-MAC:mac_addr"] != pt.MAC || addrs["version"] != 4.0 {
		t.Fatalf("addresses: %v", v["addresses"])
	}
	if fl := v["flavor"].(map[string]any); fl["id"] != "small" {
		t.Fatalf("2.1 flavor: %v", fl)
	}
	for _, k := range []string{"locked", "description", "tags", "server_groups", "host_status"} {
		if _, ok := v[k]; ok {
			t.Fatalf("%s shown at 2.1", k)
		}
	}
	v = f.show(admin, id, "2.79")
	if v["OS-EXT-SRV-ATTR:host"] != "n1" || v["OS-EXT-SRV-ATTR:hypervisor_hostname"] != "n1" || v["host_status"] != "UP" ||
		v["OS-EXT-SRV-ATTR:hostname"] != "vm1" || v["OS-EXT-SRV-ATTR:user_data"] != ud || v["locked"] != false {
		t.Fatalf("admin 2.79 show: %v", v)
	}
	if fl := v["flavor"].(map[string]any); fl["original_name"] != "m1.small" || fl["ram"] != 512.0 {
		t.Fatalf("2.47 flavor: %v", fl)
	}
	// The node reports the guest running.
	f.now = f.now.Add(time.Minute)
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	v = f.show(alice, id, "")
	if v["status"] != "ACTIVE" || v["OS-EXT-STS:task_state"] != nil || v["OS-EXT-STS:power_state"] != 1.0 || v["OS-SRV-USG:launched_at"] == nil {
		t.Fatalf("after report: %v", v)
	}
	// The same report again changes nothing.
	before := *f.row(id)
	f.now = f.now.Add(time.Minute)
	f.report(id, Observed{Status: "ACTIVE", PowerState: PowerRunning})
	if f.row(id).Updated != before.Updated {
		t.Fatal("a repeated report touched the row")
	}
	// IPs API.
	ipsBody := f.expect("GET", "/v2.1/servers/"+id+"/ips", alice, "", nil, 200, "")
	if len(ipsBody["addresses"].(map[string]any)["net-a"].([]any)) != 1 {
		t.Fatalf("ips: %v", ipsBody)
	}
	f.expect("GET", "/v2.1/servers/"+id+"/ips/net-a", alice, "", nil, 200, "")
	f.expect("GET", "/v2.1/servers/"+id+"/ips/other", alice, "", nil, 404, "itemNotFound")
	// Update.
	u := f.expect("PUT", "/v2.1/servers/"+id, alice, "", map[string]any{"server": map[string]any{"name": "vm1b", "accessIPv4": "192.0.2.9"}}, 200, "")["server"].(map[string]any)
	if u["name"] != "vm1b" || u["accessIPv4"] != "192.0.2.9" {
		t.Fatalf("update: %v", u)
	}
	if _, ok := u["OS-EXT-STS:vm_state"]; ok {
		t.Fatal("update answer has show-only attributes before 2.75")
	}
	plainAddrs(t, u, true)
	f.expect("PUT", "/v2.1/servers/"+id, alice, "", map[string]any{"server": map[string]any{"accessIPv4": "nope"}}, 400, "badRequest", "accessIPv4")
	f.expect("PUT", "/v2.1/servers/"+id, alice, "2.19", map[string]any{"server": map[string]any{"description": "web server"}}, 200, "")
	if d := f.show(alice, id, "2.19")["description"]; d != "web server" {
		t.Fatalf("description %v", d)
	}
	// Lists.
	list := f.expect("GET", "/v2.1/servers", alice, "", nil, 200, "")["servers"].([]any)
	if len(list) != 1 || len(list[0].(map[string]any)) != 3 {
		t.Fatalf("list: %v", list)
	}
	detail := f.expect("GET", "/v2.1/servers/detail", alice, "", nil, 200, "")["servers"].([]any)
	if detail[0].(map[string]any)["status"] != "ACTIVE" {
		t.Fatalf("detail: %v", detail)
	}
}

func TestServerListFilters(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.flavor("tiny", "m1.tiny", 1, 64, 1)
	a := f.server(alice, "web-1")
	f.now = f.now.Add(time.Minute)
	b := f.server(alice, "web-2", "flavorRef", "tiny")
	f.now = f.now.Add(time.Minute)
	c := f.server(alice, "db-1", "networks", "none")
	f.now = f.now.Add(time.Minute)
	f.report(a, Observed{Status: "ACTIVE", PowerState: 1})
	bobs := f.server(bob, "bob-1", "networks", []any{map[string]any{"uuid": netB}})
	ids := func(tok, q, version string) []string {
		var out []string
		for _, s := range f.expect("GET", "/v2.1/servers"+q, tok, version, nil, 200, "")["servers"].([]any) {
			out = append(out, s.(map[string]any)["id"].(string))
		}
		return out
	}
	eq := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	eq(ids(alice, "", ""), c, b, a) // newest first
	eq(ids(alice, "?name=^web", ""), b, a)
	eq(ids(alice, "?status=ACTIVE", ""), a)
	eq(ids(alice, "?status=BUILD", ""), c, b)
	eq(ids(alice, "?flavor=tiny", ""), b)
	eq(ids(alice, "?image="+img1, ""), c, b, a)
	eq(ids(alice, "?changes-since=2026-11-24T12:02:30Z", ""), a)
	eq(ids(alice, "?sort_key=display_name&sort_dir=asc", ""), c, a, b)
	eq(ids(alice, "?limit=2", ""), c, b)
	eq(ids(alice, "?marker="+b, ""), a)
	eq(ids(alice, "?status=BOGUS", ""))
	f.expect("GET", "/v2.1/servers?status=BOGUS", alice, "2.38", nil, 400, "badRequest", "Invalid status")
	f.expect("GET", "/v2.1/servers?bogus=1", alice, "2.75", nil, 400, "badRequest", "bogus")
	eq(ids(alice, "?bogus=1", ""), c, b, a)
	f.expect("GET", "/v2.1/servers?all_tenants=1", alice, "", nil, 403, "forbidden")
	eq(ids(admin, "?all_tenants=1&project_id="+projB, ""), bobs)
	if n := len(ids(admin, "?all_tenants=1", "")); n != 4 {
		t.Fatalf("all tenants: %d", n)
	}
	onN2 := 0
	for _, x := range []string{a, b, c, bobs} {
		if f.row(x).Host == "n2" {
			onN2++
		}
	}
	got := ids(admin, "?all_tenants=1&host=n2", "")
	for _, x := range got {
		if f.row(x).Host != "n2" {
			t.Fatalf("host filter returned %s on %s", x, f.row(x).Host)
		}
	}
	if len(got) != onN2 || onN2 == 0 {
		t.Fatalf("host filter: %d of %d", len(got), onN2)
	}
	eq(ids(admin, "", "")) // the admin's own project has none
	pg := f.expect("GET", "/v2.1/servers/detail?limit=1", alice, "", nil, 200, "")
	if pg["servers_links"] == nil {
		t.Fatalf("page: %v", pg)
	}
	f.expect("GET", "/v2.1/servers?marker=nope", alice, "", nil, 400, "badRequest", "marker")
}

func TestServerCreateValidation(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.flavor("p1", "private", 1, 128, 1, "os-flavor-access:is_public", false)
	f.ports.addNetwork(netA2, "net-a2", projA, false)
	used := f.ports.userPort(netA, projA)
	if err := f.ports.Bind(context.Background(), used, "someone-else", ""); err != nil {
		t.Fatal(err)
	}
	bobsPort := f.ports.userPort(netB, projB)
	base := func(extra ...any) map[string]any {
		sv := map[string]any{"name": "vm", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}}}
		for i := 0; i+1 < len(extra); i += 2 {
			if extra[i+1] == nil {
				delete(sv, extra[i].(string))
				continue
			}
			sv[extra[i].(string)] = extra[i+1]
		}
		return map[string]any{"server": sv}
	}
	portsBefore := f.ports.count()
	for name, c := range map[string]struct {
		body    map[string]any
		version string
		status  int
		inMsg   string
	}{
		"no name":           {base("name", nil), "", 400, "'name' is a required property"},
		"no flavor":         {base("flavorRef", nil), "", 400, "flavorRef"},
		"unknown flavor":    {base("flavorRef", "nope"), "", 400, "Flavor nope could not be found"},
		"private flavor":    {base("flavorRef", "p1"), "", 400, "Flavor p1 could not be found"},
		"no image":          {base("imageRef", nil), "", 400, "Missing imageRef"},
		"bad image ref":     {base("imageRef", "not-a-uuid"), "", 400, "Invalid imageRef"},
		"unknown image":     {base("imageRef", "44444444-4444-4444-8444-444444444444"), "", 400, "could not be found"},
		"inactive image":    {base("imageRef", imgQueued), "", 400, "is not active"},
		"image needs ram":   {base("imageRef", imgBig), "", 400, "memory is too small"},
		"unknown network":   {base("networks", []any{map[string]any{"uuid": "99999999-9999-4999-8999-999999999999"}}), "", 400, "Network 99999999-9999-4999-8999-999999999999 could not be found"},
		"other's network":   {base("networks", []any{map[string]any{"uuid": netB}}), "", 400, "could not be found"},
		"bad network id":    {base("networks", []any{map[string]any{"uuid": "x"}}), "", 400, "Bad networks format"},
		"unknown port":      {base("networks", []any{map[string]any{"port": "99999999-9999-4999-8999-999999999999"}}), "", 400, "Port id"},
		"other's port":      {base("networks", []any{map[string]any{"port": bobsPort}}), "", 400, "Port id"},
		"port in use":       {base("networks", []any{map[string]any{"port": used}}), "", 409, "still in use"},
		"port and ip":       {base("networks", []any{map[string]any{"port": used, "fixed_ip": "10.0.0.9"}}), "", 400, "cannot be specified together"},
		"bad fixed ip":      {base("networks", []any{map[string]any{"uuid": netA, "fixed_ip": "10.0.0"}}), "", 400, "Invalid fixed IP"},
		"ambiguous network": {base("networks", nil), "", 409, "Multiple possible networks"},
		"networks needed":   {base("networks", nil), "2.37", 400, "'networks' is a required property"},
		"networks auto old": {base("networks", "auto"), "", 400, "networks"},
		"bad user data":     {base("user_data", "%%%"), "", 400, "valid base 64"},
		"long user data":    {base("user_data", strings.Repeat("A", maxUserData+1)), "", 400, "user_data"},
		"unknown key":       {base("key_name", "nope"), "", 400, "Invalid key_name"},
		"unknown zone":      {base("availability_zone", "mars"), "", 400, "availability zone"},
		"forced host":       {base("availability_zone", "nova:n2"), "", 403, "forced_host"},
		"unknown attribute": {base("colour", "red"), "", 400, "'colour' was unexpected"},
		"description old":   {base("description", "d"), "", 400, "'description' was unexpected"},
		"bad metadata":      {base("metadata", map[string]any{"k": 1}), "", 400, "metadata"},
		"min over max":      {base("min_count", 3, "max_count", 2), "", 400, "min_count"},
		"bad group hint":    {map[string]any{"server": base()["server"], "os:scheduler_hints": map[string]any{"group": "nope"}}, "", 400, "group"},
		"unknown group":     {map[string]any{"server": base()["server"], "os:scheduler_hints": map[string]any{"group": "99999999-9999-4999-8999-999999999999"}}, "", 400, "could not be found"},
		"volume, no source": {base("block_device_mapping_v2", []any{map[string]any{"boot_index": 0}}), "", 400, "source_type"},
		"disk config":       {base("OS-DCF:diskConfig", "SIDEWAYS"), "", 400, "OS-DCF:diskConfig"},
	} {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.1/servers", alice, c.version, c.body, c.status, "", c.inMsg)
		})
	}
	f.expect("POST", "/v2.1/servers", carol, "", base(), 403, "forbidden")
	if n := len(store.All[Server](f.local.State.Txn(), tServers, "id")); n != 0 {
		t.Fatalf("%d servers after failed creates", n)
	}
	if f.ports.count() != portsBefore {
		t.Fatalf("ports: %d, had %d", f.ports.count(), portsBefore)
	}
	// A port that cannot be made undoes those made before it.
	f.ports.failCreate = f.ports.creates + 2
	f.expect("POST", "/v2.1/servers", alice, "", base("networks", []any{map[string]any{"uuid": netA}, map[string]any{"uuid": netA2}}), 400, "badRequest", "No more IP addresses")
	if f.ports.count() != portsBefore || len(store.All[Server](f.local.State.Txn(), tServers, "id")) != 0 {
		t.Fatal("a failed port creation left something behind")
	}
	f.ports.failCreate = 0
	// Valid variants: a user port (bound, not created), "none", "auto".
	free := f.ports.userPort(netA, projA)
	id := f.server(alice, "with-port", "networks", []any{map[string]any{"port": free}})
	if pt, _ := f.ports.get(free); pt.DeviceID != id || pt.Host == "" {
		t.Fatalf("user port not bound: %+v", pt)
	}
	f.expect("POST", "/v2.1/servers", alice, "2.37", base("networks", "none"), 202, "")
	f.expect("POST", "/v2.1/servers", bob, "2.37", base("networks", "auto"), 202, "")
	// Several at once: names numbered, one reservation.
	r := f.expect("POST", "/v2.1/servers", bob, "", base("networks", []any{map[string]any{"uuid": netB}}, "name", "many", "min_count", 2, "max_count", 2, "return_reservation_id", true), 202, "")
	resID := r["reservation_id"].(string)
	got := f.expect("GET", "/v2.1/servers?reservation_id="+resID+"&sort_key=display_name&sort_dir=asc", bob, "", nil, 200, "")["servers"].([]any)
	if len(got) != 2 || got[0].(map[string]any)["name"] != "many-1" || got[1].(map[string]any)["name"] != "many-2" {
		t.Fatalf("multiple create: %v", got)
	}
}

func TestServerQuota(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.flavor("wide", "m1.wide", 2, 64, 1)
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"instances": 2, "cores": 2}}, 200, "")
	f.server(alice, "one")
	ports := f.ports.count()
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "two", "imageRef": img1, "flavorRef": "wide", "networks": []any{map[string]any{"uuid": netA}}}},
		403, "overLimit", "Quota exceeded for cores: Requested 2, but already used 1 of 2 cores")
	if f.ports.count() != ports {
		t.Fatal("the refused server's port is left")
	}
	f.server(alice, "two")
	f.expect("POST", "/v2.1/servers", alice, "2.37", map[string]any{"server": map[string]any{"name": "three", "imageRef": img1, "flavorRef": "small", "networks": "none"}},
		403, "overLimit", "Quota exceeded for instances")
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"instances": 1}}, 400, "badRequest", "already used")
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"instances": 1, "force": true}}, 200, "")
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, alice, "", map[string]any{"quota_set": map[string]any{"instances": 9}}, 403, "forbidden")
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"bogus": 9}}, 400, "badRequest", "bogus")
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "2.36", map[string]any{"quota_set": map[string]any{"floating_ips": 9}}, 400, "badRequest", "floating_ips")
	// Metadata items.
	f.expect("PUT", "/v2.1/os-quota-sets/"+projB, admin, "", map[string]any{"quota_set": map[string]any{"metadata_items": 1}}, 200, "")
	f.expect("POST", "/v2.1/servers", bob, "2.37", map[string]any{"server": map[string]any{"name": "md", "imageRef": img1, "flavorRef": "small", "networks": "none",
		"metadata": map[string]any{"a": "1", "b": "2"}}}, 403, "overLimit", "metadata_items")
}

func TestTenantIsolation(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "mine")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	for _, c := range []struct{ method, path string }{
		{"GET", "/v2.1/servers/" + id}, {"PUT", "/v2.1/servers/" + id}, {"DELETE", "/v2.1/servers/" + id},
		{"POST", "/v2.1/servers/" + id + "/action"}, {"GET", "/v2.1/servers/" + id + "/ips"},
		{"GET", "/v2.1/servers/" + id + "/metadata"}, {"GET", "/v2.1/servers/" + id + "/os-instance-actions"},
	} {
		var body any
		switch c.method {
		case "PUT":
			body = map[string]any{"server": map[string]any{"name": "x"}}
		case "POST":
			body = map[string]any{"os-stop": nil}
		}
		f.expect(c.method, c.path, bob, "", body, 404, "itemNotFound", "could not be found")
	}
	if n := len(f.expect("GET", "/v2.1/servers", bob, "", nil, 200, "")["servers"].([]any)); n != 0 {
		t.Fatalf("bob lists %d servers", n)
	}
	// A reader of the project sees but may not act.
	f.show(carol, id, "")
	f.action(carol, id, map[string]any{"os-stop": nil}, 403)
	f.expect("DELETE", "/v2.1/servers/"+id, carol, "", nil, 403, "forbidden")
	if f.row(id).TaskState != "" {
		t.Fatal("a refused action changed the server")
	}
}

func TestPlacementInTheApply(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	// 768 MB fits n1 (1024 free) and n2 (788 free), but two do not fit
	// either one: the second lands on the other host, the third nowhere.
	a := f.server(alice, "a", "flavorRef", "big")
	b := f.server(alice, "b", "flavorRef", "big")
	if f.row(a).Host != "n1" || f.row(b).Host != "n2" {
		t.Fatalf("placed on %s and %s", f.row(a).Host, f.row(b).Host)
	}
	ports := f.ports.count()
	var logged lockedBuffer
	f.svc.log = slog.New(slog.NewTextHandler(&logged, nil))
	c := f.server(alice, "c", "flavorRef", "big")
	v := f.show(alice, c, "")
	fault, _ := v["fault"].(map[string]any)
	if v["status"] != "ERROR" || fault == nil || !strings.Contains(fault["message"].(string), "No valid host was found") ||
		!strings.Contains(fault["message"].(string), "MB RAM free") || fault["code"] != 500.0 {
		t.Fatalf("unplaceable server: %v", v)
	}
	// The operator learns of it once, with each host's reason.
	if lines := logged.lines("no valid host"); len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") ||
		!strings.Contains(lines[0], "server="+c) || !strings.Contains(lines[0], "n1: ") || !strings.Contains(lines[0], "n2: ") {
		t.Fatalf("scheduling failure logged as %q", lines)
	}
	if f.row(c).Host != "" || len(f.row(c).Ports) != 0 || f.ports.count() != ports {
		t.Fatalf("unplaceable server keeps host or ports: %+v", f.row(c))
	}
	// It holds nothing: deleting it removes it at once.
	f.expect("DELETE", "/v2.1/servers/"+c, alice, "", nil, 204, "")
	if f.row(c) != nil {
		t.Fatal("unplaced server still there")
	}
	// A down node takes nothing; a deleted server keeps its capacity
	// until its node reports it gone.
	f.hosts.setUp("n1", false)
	d := f.server(alice, "d", "flavorRef", "small")
	if f.row(d).Status != "ERROR" || !strings.Contains(f.row(d).Fault.Message, "node is down") {
		t.Fatalf("placed with n1 down: %+v", f.row(d))
	}
	f.hosts.setUp("n1", true)
	// The scheduler sees the same usage the apply does.
	var sh []scheduler.Host
	for _, h := range f.hosts.hosts {
		sh = append(sh, scheduler.Host{Name: h.Name, Up: true, VCPUs: h.VCPUs, MemoryMB: h.MemoryMB, DiskGB: h.DiskGB})
	}
	used := hostsWithUsage(f.local.State.Txn(), sh)
	if used[0].UsedMemoryMB != 768 || used[1].UsedMemoryMB != 768 || used[0].UsedDiskGB != 1 {
		t.Fatalf("usage: %+v", used)
	}
	// A forced host, for admins.
	e := f.server(admin, "e", "availability_zone", "nova:n2", "networks", "none")
	if f.row(e).Status != "ERROR" {
		t.Fatalf("forced onto a full host: %+v", f.row(e))
	}
	g := f.expect("POST", "/v2.1/servers", admin, "2.74", map[string]any{"server": map[string]any{"name": "g", "imageRef": img1, "flavorRef": "small", "networks": "none", "host": "n1"}}, 202, "")
	if gid := g["server"].(map[string]any)["id"].(string); f.row(gid).Host != "n1" && f.row(gid).Status != "ERROR" {
		t.Fatalf("host request: %+v", f.row(gid))
	}
}

func TestServerGroups(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.flavor("tiny", "m1.tiny", 1, 64, 1)
	g := f.expect("POST", "/v2.1/os-server-groups", alice, "", map[string]any{"server_group": map[string]any{"name": "spread", "policies": []any{"anti-affinity"}}}, 200, "")["server_group"].(map[string]any)
	if g["policies"].([]any)[0] != "anti-affinity" || len(g["members"].([]any)) != 0 {
		t.Fatalf("group: %v", g)
	}
	if _, ok := g["project_id"]; ok {
		t.Fatal("project_id before 2.13")
	}
	gid := g["id"].(string)
	hint := map[string]any{"group": gid}
	create := func(name string) string {
		body := f.expect("POST", "/v2.1/servers", alice, "2.37", map[string]any{"server": map[string]any{"name": name, "imageRef": img1, "flavorRef": "tiny", "networks": "none"},
			"os:scheduler_hints": hint}, 202, "")
		return body["server"].(map[string]any)["id"].(string)
	}
	a, b, c := create("a"), create("b"), create("c")
	if f.row(a).Host == f.row(b).Host || f.row(c).Status != "ERROR" || !strings.Contains(f.row(c).Fault.Message, "anti-affinity") {
		t.Fatalf("anti-affinity: %s %s %+v", f.row(a).Host, f.row(b).Host, f.row(c))
	}
	shown := f.expect("GET", "/v2.1/os-server-groups/"+gid, alice, "", nil, 200, "")["server_group"].(map[string]any)
	if len(shown["members"].([]any)) != 3 {
		t.Fatalf("members: %v", shown)
	}
	if sg := f.show(alice, a, "2.71")["server_groups"].([]any); len(sg) != 1 || sg[0] != gid {
		t.Fatalf("2.71 server_groups: %v", sg)
	}
	// 2.64: policy and rules.
	g2 := f.expect("POST", "/v2.1/os-server-groups", alice, "2.64", map[string]any{"server_group": map[string]any{"name": "two-per-host", "policy": "anti-affinity",
		"rules": map[string]any{"max_server_per_host": 2}}}, 200, "")["server_group"].(map[string]any)
	if g2["policy"] != "anti-affinity" || g2["rules"].(map[string]any)["max_server_per_host"] != 2.0 || g2["project_id"] != projA {
		t.Fatalf("2.64 group: %v", g2)
	}
	for name, c := range map[string]struct {
		version string
		body    map[string]any
		inMsg   string
	}{
		"soft before 2.15":   {"", map[string]any{"name": "x", "policies": []any{"soft-affinity"}}, "policies"},
		"two policies":       {"", map[string]any{"name": "x", "policies": []any{"affinity", "anti-affinity"}}, "policies"},
		"policy before 2.64": {"2.15", map[string]any{"name": "x", "policy": "affinity"}, "'policy' was unexpected"},
		"unknown policy":     {"2.64", map[string]any{"name": "x", "policy": "nearby"}, "policy"},
		"rules on affinity":  {"2.64", map[string]any{"name": "x", "policy": "affinity", "rules": map[string]any{"max_server_per_host": 2}}, "anti-affinity"},
		"zero per host":      {"2.64", map[string]any{"name": "x", "policy": "anti-affinity", "rules": map[string]any{"max_server_per_host": 0}}, "max_server_per_host"},
		"no name":            {"", map[string]any{"policies": []any{"affinity"}}, "name"},
	} {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.1/os-server-groups", alice, c.version, map[string]any{"server_group": c.body}, 400, "badRequest", c.inMsg)
		})
	}
	f.expect("POST", "/v2.1/os-server-groups", alice, "2.15", map[string]any{"server_group": map[string]any{"name": "soft", "policies": []any{"soft-affinity"}}}, 200, "")
	if n := len(f.expect("GET", "/v2.1/os-server-groups", alice, "", nil, 200, "")["server_groups"].([]any)); n != 3 {
		t.Fatalf("list: %d", n)
	}
	if n := len(f.expect("GET", "/v2.1/os-server-groups", bob, "", nil, 200, "")["server_groups"].([]any)); n != 0 {
		t.Fatalf("bob lists %d", n)
	}
	if n := len(f.expect("GET", "/v2.1/os-server-groups?all_projects=true", admin, "", nil, 200, "")["server_groups"].([]any)); n != 3 {
		t.Fatalf("admin all: %d", n)
	}
	f.expect("GET", "/v2.1/os-server-groups/"+gid, bob, "", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-server-groups/"+gid, bob, "", nil, 404, "itemNotFound")
	// Deleting a member leaves the group.
	f.expect("DELETE", "/v2.1/servers/"+c, alice, "", nil, 204, "")
	if n := len(store.Get[ServerGroup](f.local.State.Txn(), tGroups, gid).Members); n != 2 {
		t.Fatalf("members after delete: %d", n)
	}
	// Quotas on groups and members.
	f.expect("PUT", "/v2.1/os-quota-sets/"+projA, admin, "", map[string]any{"quota_set": map[string]any{"server_groups": 3, "server_group_members": 2}}, 200, "")
	f.expect("POST", "/v2.1/os-server-groups", alice, "", map[string]any{"server_group": map[string]any{"name": "x", "policies": []any{"affinity"}}}, 403, "overLimit", "too many server groups")
	f.expect("POST", "/v2.1/servers", alice, "2.37", map[string]any{"server": map[string]any{"name": "d", "imageRef": img1, "flavorRef": "tiny", "networks": "none"},
		"os:scheduler_hints": hint}, 403, "overLimit", "too many servers in group")
	f.expect("DELETE", "/v2.1/os-server-groups/"+gid, alice, "", nil, 204, "")
	f.expect("GET", "/v2.1/os-server-groups/"+gid, alice, "", nil, 404, "itemNotFound")
}

// lockedBuffer collects log output written from handler goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the lines that contain s.
func (b *lockedBuffer) lines(s string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, l := range strings.Split(b.buf.String(), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}
