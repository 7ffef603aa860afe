package baremetal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/api/apitest"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/provision/agentapi"
)

const (
	admin  = "admin-token"
	member = "member-token"
)

// recorder is the store the service proposes to, keeping each proposed
// command as it would enter the Raft log.
type recorder struct {
	*store.Local
	mu      sync.Mutex
	entries [][]byte
}

func (r *recorder) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return store.Result{}, err
	}
	r.mu.Lock()
	r.entries = append(r.entries, raw)
	r.mu.Unlock()
	return r.Local.Propose(ctx, typ, body)
}

func (r *recorder) log() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.entries)
}

type fixture struct {
	t     *testing.T
	local *store.Local
	repl  *recorder
	ring  *secrets.Keyring
	srv   *httptest.Server
	logs  *syncBuffer
	now   time.Time
}

// syncBuffer is a log sink the handlers may write to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newFixture(t *testing.T, tweak ...func(*Config)) *fixture {
	t.Helper()
	local, err := store.NewLocal(Schema())
	if err != nil {
		t.Fatal(err)
	}
	key, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, local: local, repl: &recorder{Local: local}, ring: ring, logs: &syncBuffer{}, now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}
	cfg := Config{
		Repl: f.repl, Secrets: ring, DefaultResourceClass: "baremetal",
		Auth: apitest.Tokens{
			admin:  {UserID: "u-admin", ProjectID: "p-admin", Roles: []string{"admin", "member", "reader"}},
			member: {UserID: "u-member", ProjectID: "p1", Roles: []string{"member", "reader"}},
		},
		Log: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time { return f.now },
	}
	for _, tw := range tweak {
		tw(&cfg)
	}
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = apitest.Serve(t, "/baremetal", svc.Handler())
	return f
}

type response struct {
	apitest.Response
	fault string
}

// call makes a request at microversion 1.81 unless header names another.
func (f *fixture) call(method, path, tok string, body any, header ...string) response {
	f.t.Helper()
	res := apitest.Call(f.t, method, f.srv.URL+"/baremetal"+path, tok, body, append([]string{headerVersion, "1.81"}, header...)...)
	out := response{Response: res}
	if msg, ok := res.Body["error_message"].(string); ok {
		var inner map[string]any
		if err := json.Unmarshal([]byte(msg), &inner); err != nil {
			f.t.Fatalf("%s %s: error_message is not a JSON document: %q", method, path, msg)
		}
		out.fault, _ = inner["faultstring"].(string)
	}
	return out
}

// expect checks the status, and for an error that Ironic's body carries a
// faultstring holding each of inMsg.
func (f *fixture) expect(status int, method, path, tok string, body any, inMsg ...string) response {
	f.t.Helper()
	res := f.call(method, path, tok, body)
	if res.Code != status {
		f.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.Code, status, res.Raw)
	}
	if status >= 400 && res.fault == "" {
		f.t.Fatalf("%s %s: no Ironic fault in %s", method, path, res.Raw)
	}
	for _, s := range inMsg {
		if !strings.Contains(res.fault, s) {
			f.t.Fatalf("%s %s: fault %q lacks %q", method, path, res.fault, s)
		}
	}
	return res
}

func (f *fixture) createNode(fields map[string]any) map[string]any {
	f.t.Helper()
	if _, ok := fields["driver"]; !ok {
		fields["driver"] = "ipmi"
	}
	return f.expect(http.StatusCreated, "POST", "/v1/nodes", admin, fields).Body
}

func (f *fixture) node(id string) *bmstate.Node {
	f.t.Helper()
	n, err := bmstate.LoadNode(f.local.Local(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// conductor changes a node as the conductor agent would.
func (f *fixture) conductor(id string, change func(n *bmstate.Node)) {
	f.t.Helper()
	n := f.node(id)
	rev := n.Revision
	change(n)
	if _, err := f.local.Propose(context.Background(), bmstate.CmdPutNode, bmstate.PutNodeCmd{Row: *n, Revision: rev}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) addConductor(name string, drivers ...string) {
	f.t.Helper()
	c := bmstate.Conductor{ID: name, Drivers: drivers, Updated: f.now}
	if _, err := f.local.Propose(context.Background(), bmstate.CmdPutConductor, bmstate.PutConductorCmd{Row: c}); err != nil {
		f.t.Fatal(err)
	}
}

func TestVersionDiscovery(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/", "/v1", "/v1/"} {
		res := apitest.Call(t, "GET", f.srv.URL+"/baremetal"+path, "", nil)
		if res.Code != 200 || res.Header.Get(headerMin) != "1.1" || res.Header.Get(headerMax) != "1.81" {
			t.Fatalf("GET %s: %d %v %s", path, res.Code, res.Header, res.Raw)
		}
	}
	root := f.call("GET", "/", "", nil).Body
	if dv, _ := root["default_version"].(map[string]any); dv["version"] != "1.81" || dv["min_version"] != "1.1" {
		t.Fatalf("root: %v", root)
	}
	v1 := f.call("GET", "/v1", "", nil).Body
	for _, res := range []string{"nodes", "ports", "portgroups", "drivers", "conductors", "volume", "allocations", "deploy_templates"} {
		if v1[res] == nil {
			t.Errorf("/v1 lacks the %s link: %v", res, v1)
		}
	}
	for _, absent := range []string{"runbooks"} {
		if v1[absent] != nil {
			t.Errorf("/v1 links %s, which is not served", absent)
		}
		f.expect(http.StatusNotFound, "GET", "/v1/"+absent, admin, nil)
	}
	// Conductors appeared in 1.49.
	old := f.call("GET", "/v1", "", nil, headerVersion, "1.48")
	if old.Body["conductors"] != nil || old.Header.Get(headerVersion) != "1.48" {
		t.Fatalf("/v1 at 1.48: %v", old.Body)
	}
	if res := f.call("GET", "/v1/conductors", admin, nil, headerVersion, "1.48"); res.Code != 404 {
		t.Fatalf("conductors at 1.48: %d", res.Code)
	}
	if res := f.call("GET", "/v1/nodes", admin, nil, headerVersion, "latest"); res.Header.Get(headerVersion) != "1.81" {
		t.Fatalf("latest: %v", res.Header)
	}
	// Unversioned paths (the bookmark links) and trailing slashes are
	// v1's, as in Ironic.
	for _, path := range []string{"/drivers/ipmi/properties", "/v1/drivers/", "/nodes/"} {
		f.expect(200, "GET", path, admin, nil)
	}
}

func TestUnsupportedVersionIs406(t *testing.T) {
	f := newFixture(t)
	tests := map[string]struct {
		version string
		status  int
		inMsg   string
	}{
		"newer minor": {"1.82", http.StatusNotAcceptable, "[1.1, 1.81]"},
		"minor zero":  {"1.0", http.StatusNotAcceptable, "[1.1, 1.81]"},
		"major 2":     {"2.0", http.StatusNotAcceptable, "Mutually exclusive versions"},
		"garbage":     {"one", http.StatusBadRequest, headerVersion},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res := f.call("GET", "/v1/nodes", admin, nil, headerVersion, tc.version)
			if res.Code != tc.status || !strings.Contains(res.fault, tc.inMsg) {
				t.Fatalf("%d %q", res.Code, res.fault)
			}
			if res.Header.Get(headerMin) != "1.1" || res.Header.Get(headerMax) != "1.81" {
				t.Fatalf("headers: %v", res.Header)
			}
		})
	}
}

func TestAdminOnly(t *testing.T) {
	f := newFixture(t)
	n := f.createNode(map[string]any{"name": "n1"})
	id := n["uuid"].(string)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/v1/nodes"}, {"GET", "/v1/nodes/detail"}, {"POST", "/v1/nodes"}, {"GET", "/v1/nodes/" + id},
		{"PATCH", "/v1/nodes/" + id}, {"DELETE", "/v1/nodes/" + id}, {"PUT", "/v1/nodes/" + id + "/states/provision"},
		{"PUT", "/v1/nodes/" + id + "/states/power"}, {"GET", "/v1/ports"}, {"POST", "/v1/ports"},
		{"GET", "/v1/drivers"}, {"GET", "/v1/conductors"}, {"GET", "/v1/nodes/" + id + "/history"},
	} {
		res := f.call(rt.method, rt.path, member, map[string]any{})
		if res.Code != http.StatusForbidden || !strings.Contains(res.fault, "Access was denied to the following resource: baremetal:") {
			t.Errorf("member %s %s: %d %q", rt.method, rt.path, res.Code, res.fault)
		}
		if res := f.call(rt.method, rt.path, "", nil); res.Code != http.StatusUnauthorized {
			t.Errorf("anonymous %s %s: %d", rt.method, rt.path, res.Code)
		}
	}
}

func TestNodeLifecycle(t *testing.T) {
	f := newFixture(t)
	n := f.createNode(map[string]any{
		"name": "rack1-u3", "driver_info": map[string]any{"ipmi_address": "10.0.0.5", "ipmi_port": 6230},
		"properties": map[string]any{"cpus": 4}, "extra": map[string]any{"rack": "r1"}, "description": "first",
	})
	id := n["uuid"].(string)
	if n["provision_state"] != "enroll" || n["resource_class"] != "baremetal" || n["power_interface"] != "ipmitool" ||
		n["boot_interface"] != "ipxe" || n["deploy_interface"] != "direct" || n["conductor"] != nil {
		t.Fatalf("new node: %v", n)
	}
	if di := n["driver_info"].(map[string]any); di["ipmi_port"] != "6230" {
		t.Fatalf("driver_info: %v", di)
	}
	// Shown by uuid and by name.
	if got := f.expect(200, "GET", "/v1/nodes/rack1-u3", admin, nil).Body; got["uuid"] != id {
		t.Fatalf("by name: %v", got)
	}
	f.expect(404, "GET", "/v1/nodes/nope", admin, nil, "Node nope could not be found.")
	// Name conflict.
	f.expect(409, "POST", "/v1/nodes", admin, map[string]any{"driver": "redfish", "name": "rack1-u3"}, "rack1-u3")
	// PATCH add, replace, remove.
	got := f.expect(200, "PATCH", "/v1/nodes/"+id, admin, []any{
		map[string]any{"op": "add", "path": "/properties/memory_mb", "value": 2048},
		map[string]any{"op": "replace", "path": "/driver_info/ipmi_address", "value": "10.0.0.6"},
		map[string]any{"op": "remove", "path": "/extra/rack"},
		map[string]any{"op": "add", "path": "/instance_info/image_source", "value": "img"},
		map[string]any{"op": "replace", "path": "/resource_class", "value": "bm-large"},
		map[string]any{"op": "remove", "path": "/description"},
		map[string]any{"op": "add", "path": "/name", "value": "rack1-u4"},
	}).Body
	props := got["properties"].(map[string]any)
	if props["cpus"] != float64(4) || props["memory_mb"] != float64(2048) || got["driver_info"].(map[string]any)["ipmi_address"] != "10.0.0.6" ||
		len(got["extra"].(map[string]any)) != 0 || got["instance_info"].(map[string]any)["image_source"] != "img" ||
		got["resource_class"] != "bm-large" || got["description"] != nil || got["name"] != "rack1-u4" {
		t.Fatalf("patched: %v", got)
	}
	// A new driver needs interfaces it supports: Ironic resets them to
	// its defaults only when asked to.
	toRedfish := []any{map[string]any{"op": "replace", "path": "/driver", "value": "redfish"}}
	f.expect(400, "PATCH", "/v1/nodes/"+id, admin, toRedfish, "_interface", "ipmitool")
	f.expect(400, "PATCH", "/v1/nodes/"+id+"?reset_interfaces=true", admin, []any{map[string]any{"op": "add", "path": "/extra/x", "value": 1}}, "reset_interfaces")
	got = f.expect(200, "PATCH", "/v1/nodes/"+id+"?reset_interfaces=true", admin, toRedfish).Body
	if got["power_interface"] != "redfish" || got["management_interface"] != "redfish" {
		t.Fatalf("after the driver changed: %v", got)
	}
	f.expect(204, "DELETE", "/v1/nodes/rack1-u4", admin, nil)
	f.expect(404, "GET", "/v1/nodes/"+id, admin, nil)
}

func TestCreateNodeErrorsNameTheField(t *testing.T) {
	f := newFixture(t)
	tests := map[string]struct {
		body   map[string]any
		status int
		inMsg  string
	}{
		"unknown driver":    {map[string]any{"driver": "idrac"}, 400, "driver"},
		"no driver":         {map[string]any{"name": "x"}, 400, "driver"},
		"unknown field":     {map[string]any{"driver": "ipmi", "color": "red"}, 400, "color"},
		"bad name":          {map[string]any{"driver": "ipmi", "name": "a b"}, 400, "name"},
		"long class":        {map[string]any{"driver": "ipmi", "resource_class": strings.Repeat("x", 81)}, 400, "resource_class"},
		"bad interface":     {map[string]any{"driver": "ipmi", "power_interface": "redfish"}, 400, "power_interface"},
		"bad uuid":          {map[string]any{"driver": "ipmi", "uuid": "zzz"}, 400, "uuid"},
		"properties list":   {map[string]any{"driver": "ipmi", "properties": []any{1}}, 400, "properties"},
		"chassis":           {map[string]any{"driver": "ipmi", "chassis_uuid": "c0a8a2b8-5b62-4d0c-8f2b-6f7c5a1d6a00"}, 400, "Chassis c0a8a2b8-5b62-4d0c-8f2b-6f7c5a1d6a00 could not be found"},
		"driver_info array": {map[string]any{"driver": "ipmi", "driver_info": "x"}, 400, "driver_info"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f.t = t
			f.expect(tc.status, "POST", "/v1/nodes", admin, tc.body, tc.inMsg)
		})
	}
	// A field newer than the request's microversion is refused.
	if res := f.call("POST", "/v1/nodes", admin, map[string]any{"driver": "ipmi", "resource_class": "x"}, headerVersion, "1.20"); res.Code != http.StatusNotAcceptable {
		t.Fatalf("resource_class at 1.20: %d %s", res.Code, res.Raw)
	}
}

func TestStatesFollowTheMicroversion(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	st := f.call("GET", "/v1/nodes/"+id+"/states", admin, nil, headerVersion, "1.11").Body
	if _, ok := st["boot_mode"]; ok {
		t.Fatalf("states at 1.11 show boot_mode: %v", st)
	}
	if _, ok := st["raid_config"]; ok {
		t.Fatalf("states at 1.11 show raid_config: %v", st)
	}
	if st := f.expect(200, "GET", "/v1/nodes/"+id+"/states", admin, nil).Body; st["boot_mode"] != nil || st["provision_state"] != "enroll" {
		t.Fatalf("states: %v", st)
	} else if _, ok := st["boot_mode"]; !ok {
		t.Fatalf("states at the latest lack boot_mode: %v", st)
	}
	// Before 1.2, available was "no state".
	old := f.call("POST", "/v1/nodes", admin, map[string]any{"driver": "fake-hardware"}, headerVersion, "1.1").Body
	if v, ok := old["provision_state"]; !ok || v != nil {
		t.Fatalf("an available node at 1.1: provision_state %v", old["provision_state"])
	}
	if st := f.call("GET", "/v1/nodes/"+old["uuid"].(string)+"/states", admin, nil, headerVersion, "1.1").Body; st["provision_state"] != nil {
		t.Fatalf("states at 1.1: %v", st)
	}
}

// A fake-hardware node deploys with no image: Ironic's fake deploy
// interface writes none.
func TestFakeDeployNeedsNoImage(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1", "driver": "fake-hardware"})["uuid"].(string)
	f.conductor(id, func(n *bmstate.Node) { n.ProvisionState = bmstate.StateAvailable })
	f.expect(202, "PUT", "/v1/nodes/"+id+"/states/provision", admin, map[string]any{"target": "active"})
}

func TestOldMicroversionEnrolsAvailable(t *testing.T) {
	f := newFixture(t)
	res := f.call("POST", "/v1/nodes", admin, map[string]any{"driver": "fake-hardware"}, headerVersion, "1.10")
	if res.Code != 201 || res.Body["provision_state"] != "available" {
		t.Fatalf("1.10 create: %d %v", res.Code, res.Body)
	}
	if _, ok := res.Body["name"]; !ok {
		t.Fatal("name hidden at 1.10")
	}
	if _, ok := res.Body["resource_class"]; ok {
		t.Fatal("resource_class (1.21) shown at 1.10")
	}
	res = f.call("GET", "/v1/nodes/"+res.Body["uuid"].(string), admin, nil, headerVersion, "1.4")
	if _, ok := res.Body["name"]; ok {
		t.Fatalf("name shown at 1.4: %v", res.Body)
	}
}

func TestPasswordsAreSealedAndNeverShown(t *testing.T) {
	f := newFixture(t)
	const pw = "hunter2-ipmi-secret"
	n := f.createNode(map[string]any{"name": "n1", "driver_info": map[string]any{"ipmi_address": "10.0.0.5", "ipmi_password": pw}})
	id := n["uuid"].(string)
	row := f.node(id)
	if _, clear := row.DriverInfo["ipmi_password"]; clear || !secrets.Sealed(row.Secrets["ipmi_password"]) {
		t.Fatalf("row: driver_info %v secrets %v", row.DriverInfo, row.Secrets)
	}
	plain, err := f.ring.Open(row.Secrets["ipmi_password"], bmstate.SecretAAD(id))
	if err != nil || string(plain) != pw {
		t.Fatalf("the conductor's unseal: %q %v", plain, err)
	}
	var bodies [][]byte
	bodies = append(bodies, f.expect(200, "GET", "/v1/nodes/"+id, admin, nil).Raw)
	bodies = append(bodies, f.expect(200, "GET", "/v1/nodes/detail", admin, nil).Raw)
	// A patch that keeps "******" keeps the password; one that sets a new
	// one seals it.
	res := f.expect(200, "PATCH", "/v1/nodes/"+id, admin, []any{map[string]any{"op": "add", "path": "/driver_info/ipmi_username", "value": "root"}})
	bodies = append(bodies, res.Raw)
	if res.Body["driver_info"].(map[string]any)["ipmi_password"] != masked {
		t.Fatalf("after patch: %v", res.Body["driver_info"])
	}
	if got := f.node(id).Secrets["ipmi_password"]; got != row.Secrets["ipmi_password"] {
		t.Fatal("an unrelated patch resealed the password")
	}
	const pw2 = "second-redfish-secret"
	bodies = append(bodies, f.expect(200, "PATCH", "/v1/nodes/"+id+"?reset_interfaces=1", admin, []any{
		map[string]any{"op": "replace", "path": "/driver", "value": "redfish"},
		map[string]any{"op": "replace", "path": "/driver_info", "value": map[string]any{"redfish_address": "https://bmc", "redfish_system_id": "/redfish/v1/Systems/1", "redfish_password": pw2}},
	}).Raw)
	row = f.node(id)
	if plain, err := f.ring.Open(row.Secrets["redfish_password"], bmstate.SecretAAD(id)); err != nil || string(plain) != pw2 || row.Secrets["ipmi_password"] != "" {
		t.Fatalf("redfish password: %q %v %v", plain, err, row.Secrets)
	}
	// A sealed password copied to another node does not open there.
	if _, err := f.ring.Open(row.Secrets["redfish_password"], bmstate.SecretAAD("other")); err == nil {
		t.Fatal("the password opens for another node")
	}
	f.expect(202, "PUT", "/v1/nodes/"+id+"/states/provision", admin, map[string]any{"target": "manage"})
	bodies = append(bodies, f.expect(200, "GET", "/v1/nodes/"+id+"/history?detail=True", admin, nil).Raw)
	bodies = append(bodies, []byte(f.logs.String()))
	snap, _, err := store.SnapshotRoundTrip(f.local.State, Schema())
	if err != nil {
		t.Fatal(err)
	}
	bodies = append(bodies, snap)
	for i, b := range bodies {
		if bytes.Contains(b, []byte(pw)) || bytes.Contains(b, []byte(pw2)) {
			t.Fatalf("answer %d shows a password: %s", i, b)
		}
	}
	// And the password never crossed the log in clear: every proposed
	// command body is in the local log.
	for _, entry := range f.repl.log() {
		if bytes.Contains(entry, []byte(pw)) || bytes.Contains(entry, []byte(pw2)) {
			t.Fatalf("a proposed command holds a password: %s", entry)
		}
	}
}

func TestListFiltersFieldsAndPaging(t *testing.T) {
	f := newFixture(t)
	var ids []string
	for i, spec := range []map[string]any{
		{"name": "a", "driver": "ipmi", "resource_class": "small"},
		{"name": "b", "driver": "redfish", "resource_class": "large", "owner": "p1"},
		{"name": "c", "driver": "fake-hardware", "resource_class": "small"},
	} {
		f.now = f.now.Add(time.Duration(i) * time.Second)
		ids = append(ids, f.createNode(spec)["uuid"].(string))
	}
	f.conductor(ids[2], func(n *bmstate.Node) { n.InstanceUUID = "0d1b5e63-1c51-4a45-9b54-6a0de0a4a0b1"; n.Maintenance = true })
	names := func(path string) []string {
		t.Helper()
		res := f.expect(200, "GET", path, admin, nil)
		var out []string
		for _, x := range res.Body["nodes"].([]any) {
			out = append(out, x.(map[string]any)["name"].(string))
		}
		return out
	}
	tests := map[string]struct {
		query string
		want  string
	}{
		"all":            {"", "a,b,c"},
		"driver":         {"?driver=redfish", "b"},
		"resource_class": {"?resource_class=small", "a,c"},
		"maintenance":    {"?maintenance=true", "c"},
		"associated":     {"?associated=true", "c"},
		"not associated": {"?associated=False", "a,b"},
		"instance":       {"?instance_uuid=0d1b5e63-1c51-4a45-9b54-6a0de0a4a0b1", "c"},
		"owner":          {"?owner=p1", "b"},
		"state":          {"?provision_state=enroll", "a,b,c"},
		"sorted":         {"?sort_key=name&sort_dir=desc", "c,b,a"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := names("/v1/nodes" + tc.query)
			if len(tc.query) == 0 || !strings.Contains(tc.query, "sort") {
				sortStrings(got)
			}
			if strings.Join(got, ",") != tc.want {
				t.Fatalf("%s: %v, want %s", tc.query, got, tc.want)
			}
		})
	}
	short := f.expect(200, "GET", "/v1/nodes", admin, nil).Body["nodes"].([]any)[0].(map[string]any)
	for _, k := range []string{"uuid", "name", "provision_state", "power_state", "maintenance", "instance_uuid", "links"} {
		if _, ok := short[k]; !ok {
			t.Errorf("short list lacks %s: %v", k, short)
		}
	}
	if _, ok := short["driver"]; ok {
		t.Errorf("short list shows driver: %v", short)
	}
	if d := f.expect(200, "GET", "/v1/nodes/detail", admin, nil).Body["nodes"].([]any)[0].(map[string]any); d["driver_info"] == nil {
		t.Errorf("detail: %v", d)
	}
	got := f.expect(200, "GET", "/v1/nodes?fields=uuid,driver", admin, nil).Body["nodes"].([]any)[0].(map[string]any)
	if len(got) != 2 || got["driver"] == nil {
		t.Errorf("fields: %v", got)
	}
	f.expect(400, "GET", "/v1/nodes?fields=uuid,colour", admin, nil, "colour")
	f.expect(400, "GET", "/v1/nodes?fault=overheated", admin, nil, "overheated")
	f.conductor(ids[0], func(n *bmstate.Node) { n.Maintenance, n.Fault = true, "power failure" })
	if got := names("/v1/nodes?fault=power%20failure"); len(got) != 1 || got[0] != "a" {
		t.Fatalf("fault filter: %v", got)
	}
	f.expect(400, "GET", "/v1/nodes?sort_key=properties", admin, nil, "properties")
	f.expect(400, "GET", "/v1/nodes?limit=-1", admin, nil, "Limit")
	// Paging: limit 2 and a next link that gives the rest.
	page := f.expect(200, "GET", "/v1/nodes?limit=2", admin, nil).Body
	next, _ := page["next"].(string)
	if len(page["nodes"].([]any)) != 2 || !strings.Contains(next, "/baremetal/v1/nodes?") || !strings.Contains(next, "marker=") {
		t.Fatalf("page 1: %v", page)
	}
	rest := apitest.Call(t, "GET", next, admin, nil, headerVersion, "1.81").Body
	if len(rest["nodes"].([]any)) != 1 || rest["next"] != nil {
		t.Fatalf("page 2: %v", rest)
	}
	// Filters newer than the microversion are refused.
	if res := f.call("GET", "/v1/nodes?owner=p1", admin, nil, headerVersion, "1.49"); res.Code != http.StatusNotAcceptable {
		t.Fatalf("owner at 1.49: %d", res.Code)
	}
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

func TestPatchErrors(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1", "driver_info": map[string]any{"ipmi_address": "a"}})["uuid"].(string)
	op := func(o, path string, v any) []any {
		m := map[string]any{"op": o, "path": path}
		if o != "remove" {
			m["value"] = v
		}
		return []any{m}
	}
	tests := map[string]struct {
		patch  any
		status int
		inMsg  string
	}{
		"read-only state":   {op("replace", "/provision_state", "active"), 400, "/provision_state"},
		"read-only power":   {op("add", "/power_state", "power on"), 400, "/power_state"},
		"read-only uuid":    {op("replace", "/uuid", "x"), 400, "/uuid"},
		"read-only conduct": {op("replace", "/conductor", "x"), 400, "/conductor"},
		"remove driver":     {op("remove", "/driver", nil), 400, "/driver"},
		"new root attr":     {op("add", "/colour", "red"), 400, "/colour"},
		"remove missing":    {op("remove", "/properties/nope", nil), 400, "nope"},
		"replace missing":   {op("replace", "/extra/nope", 1), 400, "nope"},
		"bad op":            {[]any{map[string]any{"op": "move", "path": "/name", "from": "/x"}}, 400, "move"},
		"no value":          {[]any{map[string]any{"op": "add", "path": "/name"}}, 400, "value"},
		"not a list":        {map[string]any{"op": "add"}, 400, "list"},
		"bad driver":        {op("replace", "/driver", "idrac"), 400, "driver"},
		"bad maintenance":   {op("replace", "/maintenance", "perhaps"), 400, "maintenance"},
		"bad instance":      {op("add", "/instance_uuid", "nope"), 400, "instance_uuid"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f.t = t
			f.expect(tc.status, "PATCH", "/v1/nodes/"+id, admin, tc.patch, tc.inMsg)
		})
	}
	f.t = t
	// Nothing of a failed patch is applied.
	if n := f.node(id); n.Revision != 1 {
		t.Fatalf("a refused patch changed the node: revision %d", n.Revision)
	}
	// A node the conductor works on keeps its BMC settings.
	f.expect(202, "PUT", "/v1/nodes/"+id+"/states/provision", admin, map[string]any{"target": "manage"})
	f.expect(409, "PATCH", "/v1/nodes/"+id, admin, op("replace", "/driver_info/ipmi_address", "b"), "locked", "verifying")
	f.expect(409, "PATCH", "/v1/nodes/"+id, admin, op("add", "/driver_info/ipmi_password", "p"), "locked")
	f.expect(200, "PATCH", "/v1/nodes/"+id, admin, op("add", "/extra/note", "fine while verifying"))
}

func TestProvisionStateMachine(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	provision := func(verb string, status int, inMsg ...string) {
		t.Helper()
		f.expect(status, "PUT", "/v1/nodes/"+id+"/states/provision", admin, map[string]any{"target": verb}, inMsg...)
	}
	state := func(want, target string) {
		t.Helper()
		st := f.expect(200, "GET", "/v1/nodes/"+id+"/states", admin, nil).Body
		if st["provision_state"] != want || api.Text(st["target_provision_state"]) != target {
			t.Fatalf("states: %v, want %s → %s", st, want, target)
		}
	}
	provision("provide", 400, `The requested action "provide" can not be performed on node "`+id+`" while it is in state "enroll".`)
	provision("manage", 202)
	state("verifying", "manageable")
	// The conductor owns a working node.
	provision("provide", 409, "locked")
	f.expect(409, "DELETE", "/v1/nodes/"+id, admin, nil, "locked")
	f.conductor(id, func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateManageable, ""
		n.PowerState = bmstate.PowerOff
	})
	provision("inspect", 202)
	state("inspecting", "manageable")
	f.conductor(id, func(n *bmstate.Node) { n.ProvisionState, n.TargetProvisionState = bmstate.StateManageable, "" })
	provision("clean", 400, "clean_steps")
	provision("provide", 202)
	state("cleaning", "available")
	f.conductor(id, func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateAvailable, ""
	})
	provision("deploy", 400, "image_source")
	f.expect(200, "PATCH", "/v1/nodes/"+id, admin, []any{map[string]any{"op": "add", "path": "/instance_info/image_source", "value": "img-1"}})
	// A deploy template the instance traits select whose step cannot run
	// here refuses the deploy, naming the step.
	f.expect(201, "POST", "/v1/deploy_templates", admin, map[string]any{"name": "CUSTOM_RAID", "steps": []any{
		map[string]any{"interface": "raid", "step": "create_configuration", "args": map[string]any{}, "priority": 10}}})
	f.expect(200, "PATCH", "/v1/nodes/"+id, admin, []any{map[string]any{"op": "add", "path": "/instance_info/traits", "value": []any{"CUSTOM_RAID"}}})
	provision("deploy", 400, "raid.create_configuration cannot run here")
	f.expect(200, "PATCH", "/v1/nodes/"+id, admin, []any{map[string]any{"op": "remove", "path": "/instance_info/traits"}})
	for _, bad := range []any{42, map[string]any{"meta_data": "x"}, map[string]any{"other": map[string]any{}}, map[string]any{"user_data": 7}} {
		f.expect(400, "PUT", "/v1/nodes/"+id+"/states/provision", admin, map[string]any{"target": "active", "configdrive": bad}, "Invalid configdrive format")
	}
	if n := f.node(id); n.ProvisionState != bmstate.StateAvailable {
		t.Fatalf("a refused config drive moved the node to %s", n.ProvisionState)
	}
	f.expect(202, "PUT", "/v1/nodes/"+id+"/states/provision", admin, map[string]any{"target": "active", "configdrive": "H4sI..."})
	state("deploying", "active")
	// The config drive is kept for the conductor and masked.
	if n := f.node(id); n.InstanceInfo["configdrive"] != "H4sI..." {
		t.Fatalf("config drive: %v", n.InstanceInfo)
	}
	if got := f.expect(200, "GET", "/v1/nodes/"+id, admin, nil).Body["instance_info"].(map[string]any); got["configdrive"] != masked {
		t.Fatalf("instance_info: %v", got)
	}
	f.conductor(id, func(n *bmstate.Node) { n.ProvisionState, n.TargetProvisionState = bmstate.StateActive, "" })
	f.expect(409, "DELETE", "/v1/nodes/"+id, admin, nil, "active")
	provision("rescue", 400, "not supported")
	provision("undeploy", 202)
	state("deleting", "available")
	// History names the verbs and the user.
	h := f.expect(200, "GET", "/v1/nodes/"+id+"/history?detail=true", admin, nil).Body["history"].([]any)
	if len(h) != 5 {
		t.Fatalf("history: %v", h)
	}
	first := h[0].(map[string]any)
	if first["user"] != "u-admin" || first["event_type"] != "provisioning" || !strings.Contains(first["event"].(string), "manage requested: enroll -> verifying") {
		t.Fatalf("first event: %v", first)
	}
	one := f.expect(200, "GET", "/v1/nodes/"+id+"/history/"+first["uuid"].(string), admin, nil).Body
	if one["event"] != first["event"] || one["severity"] != "INFO" {
		t.Fatalf("event: %v", one)
	}
	f.expect(404, "GET", "/v1/nodes/"+id+"/history/nope", admin, nil)
	if res := f.call("GET", "/v1/nodes/"+id+"/history", admin, nil, headerVersion, "1.77"); res.Code != 404 {
		t.Fatalf("history at 1.77: %d", res.Code)
	}
}

func TestMaintenanceRefusesHardwareVerbs(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	f.conductor(id, func(n *bmstate.Node) { n.ProvisionState = bmstate.StateManageable; n.Fault = "power failure" })
	f.expect(202, "PUT", "/v1/nodes/n1/maintenance", admin, map[string]any{"reason": "fan broken"})
	n := f.expect(200, "GET", "/v1/nodes/n1", admin, nil).Body
	if n["maintenance"] != true || n["maintenance_reason"] != "fan broken" {
		t.Fatalf("maintenance: %v", n)
	}
	f.expect(400, "PUT", "/v1/nodes/n1/states/provision", admin, map[string]any{"target": "provide"}, "maintenance")
	f.expect(202, "DELETE", "/v1/nodes/n1/maintenance", admin, nil)
	n = f.expect(200, "GET", "/v1/nodes/n1", admin, nil).Body
	if n["maintenance"] != false || n["maintenance_reason"] != nil || n["fault"] != nil {
		t.Fatalf("after clearing: %v", n)
	}
	f.expect(202, "PUT", "/v1/nodes/n1/states/provision", admin, map[string]any{"target": "provide"})
}

func TestPowerRequests(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	f.expect(202, "PUT", "/v1/nodes/n1/states/power", admin, map[string]any{"target": "power on"})
	f.expect(202, "PUT", "/v1/nodes/n1/states/power", admin, map[string]any{"target": "power on"})
	n := f.node(id)
	if n.TargetPowerState != bmstate.PowerOn || n.PowerSeq != 2 {
		t.Fatalf("power request: %q seq %d", n.TargetPowerState, n.PowerSeq)
	}
	if ev := n.History[len(n.History)-1]; ev.EventType != "power" || ev.User != "u-admin" {
		t.Fatalf("event: %+v", ev)
	}
	f.expect(400, "PUT", "/v1/nodes/n1/states/power", admin, map[string]any{"target": "power up"}, "target")
	f.expect(400, "PUT", "/v1/nodes/n1/states/power", admin, map[string]any{"target": "power off", "timeout": 10}, "timeout")
	f.expect(202, "PUT", "/v1/nodes/n1/states/power", admin, map[string]any{"target": "soft power off", "timeout": 10})
	f.expect(202, "PUT", "/v1/nodes/n1/states/provision", admin, map[string]any{"target": "manage"})
	f.expect(409, "PUT", "/v1/nodes/n1/states/power", admin, map[string]any{"target": "power off"}, "locked")
}

func TestBootDevice(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.BootDeviceWait = 2 * time.Second })
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	if got := f.expect(200, "GET", "/v1/nodes/n1/management/boot_device/supported", admin, nil).Body; len(got["supported_boot_devices"].([]any)) != 5 {
		t.Fatalf("supported: %v", got)
	}
	f.expect(400, "PUT", "/v1/nodes/n1/management/boot_device", admin, map[string]any{"boot_device": "pxe"}, "No conductor")
	f.addConductor("c1")
	f.expect(400, "PUT", "/v1/nodes/n1/management/boot_device", admin, map[string]any{"boot_device": "floppy"}, "floppy")

	// A conductor that applies the device, then one that fails it.
	apply := func(fail string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				n, _ := bmstate.LoadNode(f.local.Local(), id)
				if n != nil && n.BootDeviceSeq > n.BootDeviceDone {
					rev := n.Revision
					n.BootDeviceDone, n.LastError = n.BootDeviceSeq, fail
					_, _ = f.local.Propose(ctx, bmstate.CmdPutNode, bmstate.PutNodeCmd{Row: *n, Revision: rev})
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		return func() { cancel(); <-done }
	}
	stop := apply("")
	f.expect(204, "PUT", "/v1/nodes/n1/management/boot_device", admin, map[string]any{"boot_device": "pxe", "persistent": true})
	stop()
	if got := f.expect(200, "GET", "/v1/nodes/n1/management/boot_device", admin, nil).Body; got["boot_device"] != "pxe" || got["persistent"] != true {
		t.Fatalf("boot device: %v", got)
	}
	stop = apply("ipmi 10.0.0.5:623: authentication failed")
	f.expect(500, "PUT", "/v1/nodes/n1/management/boot_device", admin, map[string]any{"boot_device": "disk"}, "authentication failed")
	stop()
	// No conductor at work: the request stays recorded, the answer says
	// so.
	f.expect(504, "PUT", "/v1/nodes/n1/management/boot_device", admin, map[string]any{"boot_device": "disk"}, "did not set it")
	if n := f.node(id); n.BootDevice != "disk" || n.BootDeviceSeq != n.BootDeviceDone+1 {
		t.Fatalf("recorded: %q seq %d done %d", n.BootDevice, n.BootDeviceSeq, n.BootDeviceDone)
	}
}

func TestPorts(t *testing.T) {
	f := newFixture(t)
	n1 := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	f.createNode(map[string]any{"name": "n2"})
	p := f.expect(201, "POST", "/v1/ports", admin, map[string]any{"address": "52:54:00:AA:00:01", "node_uuid": n1,
		"local_link_connection": map[string]any{"switch_id": "aa:bb:cc:dd:ee:ff", "port_id": "Eth1/1"}, "physical_network": "prov"}).Body
	pid := p["uuid"].(string)
	if p["address"] != "52:54:00:aa:00:01" || p["pxe_enabled"] != true || p["node_uuid"] != n1 || p["physical_network"] != "prov" {
		t.Fatalf("port: %v", p)
	}
	f.expect(409, "POST", "/v1/ports", admin, map[string]any{"address": "52:54:00:aa:00:01", "node_uuid": n1}, "52:54:00:aa:00:01")
	f.expect(400, "POST", "/v1/ports", admin, map[string]any{"address": "not-a-mac", "node_uuid": n1}, "address")
	f.expect(400, "POST", "/v1/ports", admin, map[string]any{"address": "52:54:00:aa:00:02"}, "node_uuid")
	f.expect(400, "POST", "/v1/ports", admin, map[string]any{"address": "52:54:00:aa:00:02", "node_uuid": "6a1f8e7c-1111-4222-8333-944455556666"}, "could not be found")
	f.expect(201, "POST", "/v1/ports", admin, map[string]any{"address": "52:54:00:aa:00:02", "node_uuid": "n2", "pxe_enabled": false})
	count := func(path string) int {
		t.Helper()
		return len(f.expect(200, "GET", path, admin, nil).Body["ports"].([]any))
	}
	if count("/v1/ports") != 2 || count("/v1/ports?node=n1") != 1 || count("/v1/nodes/n1/ports") != 1 ||
		count("/v1/ports?address=52-54-00-AA-00-02") != 1 || count("/v1/ports/detail?node_uuid="+n1) != 1 {
		t.Fatal("port listing filters")
	}
	f.expect(404, "GET", "/v1/nodes/nope/ports", admin, nil)
	got := f.expect(200, "PATCH", "/v1/ports/"+pid, admin, []any{
		map[string]any{"op": "replace", "path": "/pxe_enabled", "value": false},
		map[string]any{"op": "add", "path": "/extra/slot", "value": "1"},
		map[string]any{"op": "remove", "path": "/local_link_connection/port_id"},
	}).Body
	if got["pxe_enabled"] != false || got["extra"].(map[string]any)["slot"] != "1" || len(got["local_link_connection"].(map[string]any)) != 1 {
		t.Fatalf("patched port: %v", got)
	}
	f.expect(409, "PATCH", "/v1/ports/"+pid, admin, []any{map[string]any{"op": "replace", "path": "/address", "value": "52:54:00:aa:00:02"}}, "already exists")
	f.expect(400, "PATCH", "/v1/ports/"+pid, admin, []any{map[string]any{"op": "replace", "path": "/uuid", "value": "x"}}, "/uuid")
	if res := f.call("PATCH", "/v1/ports/"+pid, admin, []any{map[string]any{"op": "replace", "path": "/physical_network", "value": "x"}}, headerVersion, "1.33"); res.Code != http.StatusNotAcceptable {
		t.Fatalf("physical_network patch at 1.33: %d %s", res.Code, res.Raw)
	}
	f.expect(204, "DELETE", "/v1/ports/"+pid, admin, nil)
	f.expect(404, "GET", "/v1/ports/"+pid, admin, nil)
	// Ports are named by uuid only, as in Ironic.
	f.expect(400, "GET", "/v1/ports/52:54:00:aa:00:02", admin, nil, "Expected a UUID")
	// Deleting a node deletes its ports.
	f.expect(204, "DELETE", "/v1/nodes/n2", admin, nil)
	if count("/v1/ports") != 0 {
		t.Fatal("the deleted node's port is left")
	}
}

func TestDriversAndConductors(t *testing.T) {
	f := newFixture(t)
	drv := f.expect(200, "GET", "/v1/drivers", admin, nil).Body["drivers"].([]any)
	if len(drv) != 3 {
		t.Fatalf("drivers: %v", drv)
	}
	f.addConductor("c2")
	f.addConductor("c1", "ipmi")
	// Fewest nodes first, ties by name: c1, c2, then c1 or c2 by count.
	var got []string
	for i := 0; i < 3; i++ {
		got = append(got, f.createNode(map[string]any{})["conductor"].(string))
	}
	if strings.Join(got, ",") != "c1,c2,c1" {
		t.Fatalf("conductors picked: %v", got)
	}
	// A conductor that does not drive redfish gets no redfish node.
	if c := f.createNode(map[string]any{"driver": "redfish"})["conductor"]; c != "c2" {
		t.Fatalf("redfish node went to %v", c)
	}
	d := f.expect(200, "GET", "/v1/drivers/ipmi", admin, nil).Body
	if hosts := d["hosts"].([]any); len(hosts) != 2 || d["default_power_interface"] != "ipmitool" {
		t.Fatalf("ipmi: %v", d)
	}
	if d := f.expect(200, "GET", "/v1/drivers/redfish", admin, nil).Body; len(d["hosts"].([]any)) != 1 {
		t.Fatalf("redfish: %v", d)
	}
	props := f.expect(200, "GET", "/v1/drivers/redfish/properties", admin, nil).Body
	if props["redfish_address"] == nil || props["redfish_system_id"] == nil {
		t.Fatalf("properties: %v", props)
	}
	f.expect(404, "GET", "/v1/drivers/idrac", admin, nil, "idrac")
	cs := f.expect(200, "GET", "/v1/conductors", admin, nil).Body["conductors"].([]any)
	if len(cs) != 2 || cs[0].(map[string]any)["hostname"] != "c1" || cs[0].(map[string]any)["alive"] != true {
		t.Fatalf("conductors: %v", cs)
	}
	c := f.expect(200, "GET", "/v1/conductors/c1", admin, nil).Body
	if ds := c["drivers"].([]any); len(ds) != 1 || ds[0] != "ipmi" {
		t.Fatalf("conductor: %v", c)
	}
	f.expect(404, "GET", "/v1/conductors/c9", admin, nil)
	// A conductor that stopped refreshing its row is not alive and gets
	// no new node.
	f.now = f.now.Add(10 * time.Minute)
	if c := f.createNode(map[string]any{})["conductor"]; c != nil {
		t.Fatalf("a dead conductor got a node: %v", c)
	}
}

func TestInventoryValidateAndVIFs(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1", "driver_info": map[string]any{"ipmi_address": "10.0.0.5"}})["uuid"].(string)
	f.expect(404, "GET", "/v1/nodes/n1/inventory", admin, nil, "Inventory")
	f.conductor(id, func(n *bmstate.Node) {
		n.Inventory = &agentapi.Inventory{CPU: agentapi.CPU{Count: 2}}
	})
	inv := f.expect(200, "GET", "/v1/nodes/n1/inventory", admin, nil).Body
	if inv["inventory"] == nil || inv["plugin_data"] == nil {
		t.Fatalf("inventory: %v", inv)
	}
	if res := f.call("GET", "/v1/nodes/n1/inventory", admin, nil, headerVersion, "1.80"); res.Code != 404 {
		t.Fatalf("inventory at 1.80: %d", res.Code)
	}
	v := f.expect(200, "GET", "/v1/nodes/n1/validate", admin, nil).Body
	if v["power"].(map[string]any)["result"] != true || v["deploy"].(map[string]any)["result"] != false || v["boot"].(map[string]any)["result"] != false {
		t.Fatalf("validate: %v", v)
	}
	if c := f.expect(200, "GET", "/v1/nodes/n1/states/console", admin, nil).Body; c["console_enabled"] != false {
		t.Fatalf("console: %v", c)
	}
	f.expect(400, "PUT", "/v1/nodes/n1/states/console", admin, map[string]any{"enabled": true}, "console")
	if vifs := f.expect(200, "GET", "/v1/nodes/n1/vifs", admin, nil).Body["vifs"].([]any); len(vifs) != 0 {
		t.Fatalf("vifs: %v", vifs)
	}
	f.expect(400, "POST", "/v1/nodes/n1/vifs", admin, map[string]any{"id": "x"}, "tenant networks on bare metal")
}

func TestSnapshotRestoreEveryCommand(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.addConductor("c1")
	id := f.createNode(map[string]any{"name": "n1", "driver_info": map[string]any{"ipmi_password": "x"}})["uuid"].(string)
	f.expect(200, "PATCH", "/v1/nodes/"+id, admin, []any{map[string]any{"op": "add", "path": "/extra/a", "value": 1}})
	pid := f.expect(201, "POST", "/v1/ports", admin, map[string]any{"address": "52:54:00:00:00:01", "node_uuid": id}).Body["uuid"].(string)
	f.expect(200, "PATCH", "/v1/ports/"+pid, admin, []any{map[string]any{"op": "add", "path": "/extra/a", "value": 1}})
	if res := f.call("PATCH", "/v1/ports/"+pid, admin, []any{map[string]any{"op": "replace", "path": "/physical_network", "value": "x"}}, headerVersion, "1.33"); res.Code != http.StatusNotAcceptable {
		t.Fatalf("physical_network patch at 1.33: %d %s", res.Code, res.Raw)
	}
	f.expect(204, "DELETE", "/v1/ports/"+pid, admin, nil)
	gone := f.createNode(map[string]any{"name": "gone"})["uuid"].(string)
	f.expect(204, "DELETE", "/v1/nodes/"+gone, admin, nil)
	disc := bmstate.DiscoverCmd{
		Node:  bmstate.Node{ID: "6a1f8e7c-1111-4222-8333-944455556666", ProvisionState: bmstate.StateEnroll, AutoDiscovered: true, CreatedAt: f.now},
		Ports: []bmstate.Port{{ID: "7a1f8e7c-1111-4222-8333-944455556666", Address: "52:54:00:00:00:09", PXEEnabled: true, CreatedAt: f.now}},
	}
	if _, err := f.local.Propose(ctx, bmstate.CmdDiscover, disc); err != nil {
		t.Fatal(err)
	}
	pg := f.expect(201, "POST", "/v1/portgroups", admin, map[string]any{"node_uuid": id, "name": "bond0"}).Body["uuid"].(string)
	f.expect(200, "PATCH", "/v1/portgroups/"+pg, admin, []any{map[string]any{"op": "add", "path": "/extra/a", "value": 1}})
	f.expect(204, "DELETE", "/v1/portgroups/bond0", admin, nil)
	ch := f.expect(201, "POST", "/v1/chassis", admin, map[string]any{"description": "rack"}).Body["uuid"].(string)
	f.expect(200, "PATCH", "/v1/chassis/"+ch, admin, []any{map[string]any{"op": "add", "path": "/extra/a", "value": 1}})
	f.expect(204, "DELETE", "/v1/chassis/"+ch, admin, nil)
	rc := f.availableNode(map[string]any{"resource_class": "gold"})
	al := f.expect(201, "POST", "/v1/allocations", admin, map[string]any{"resource_class": "gold"}).Body["uuid"].(string)
	f.process(al)
	f.expect(200, "PATCH", "/v1/allocations/"+al, admin, []any{map[string]any{"op": "add", "path": "/extra/a", "value": 1}})
	f.expect(204, "DELETE", "/v1/allocations/"+al, admin, nil)
	steps := []any{map[string]any{"interface": "bios", "step": "apply_configuration", "args": map[string]any{}, "priority": 10}}
	f.expect(201, "POST", "/v1/deploy_templates", admin, map[string]any{"name": "CUSTOM_A", "steps": steps})
	f.expect(200, "PATCH", "/v1/deploy_templates/CUSTOM_A", admin, []any{map[string]any{"op": "add", "path": "/extra/a", "value": 1}})
	f.expect(201, "POST", "/v1/deploy_templates", admin, map[string]any{"name": "CUSTOM_B", "steps": steps})
	f.expect(204, "DELETE", "/v1/deploy_templates/CUSTOM_B", admin, nil)
	vc := f.expect(201, "POST", "/v1/volume/connectors", admin, map[string]any{"node_uuid": rc, "type": "iqn", "connector_id": "iqn.1"}).Body["uuid"].(string)
	f.expect(200, "PATCH", "/v1/volume/connectors/"+vc, admin, []any{map[string]any{"op": "add", "path": "/extra/a", "value": 1}})
	f.expect(204, "DELETE", "/v1/volume/connectors/"+vc, admin, nil)
	vt := f.expect(201, "POST", "/v1/volume/targets", admin, map[string]any{"node_uuid": rc, "volume_type": "iscsi", "volume_id": "v1", "boot_index": 0}).Body["uuid"].(string)
	f.expect(200, "PATCH", "/v1/volume/targets/"+vt, admin, []any{map[string]any{"op": "add", "path": "/extra/a", "value": 1}})
	f.expect(204, "DELETE", "/v1/volume/targets/"+vt, admin, nil)
	f.expect(201, "POST", "/v1/volume/connectors", admin, map[string]any{"node_uuid": rc, "type": "iqn", "connector_id": "iqn.2"})
	f.expect(201, "POST", "/v1/volume/targets", admin, map[string]any{"node_uuid": rc, "volume_type": "iscsi", "volume_id": "v2", "boot_index": 0})
	f.addConductor("c2")
	if _, err := f.local.Propose(ctx, bmstate.CmdDropConductor, bmstate.DropConductorCmd{ID: "c2"}); err != nil {
		t.Fatal(err)
	}
	first := store.EveryCommandSurvivesSnapshot(t, f.local, Schema())
	if !bytes.Contains(first, []byte(id)) || bytes.Contains(first, []byte(gone)) || !bytes.Contains(first, []byte("52:54:00:00:00:09")) {
		t.Fatalf("snapshot content: %s", first)
	}
}

func TestChassis(t *testing.T) {
	f := newFixture(t)
	c := f.expect(201, "POST", "/v1/chassis", admin, map[string]any{"description": "rack 1", "extra": map[string]any{"row": "a"}}).Body
	id := c["uuid"].(string)
	if c["description"] != "rack 1" || c["extra"].(map[string]any)["row"] != "a" {
		t.Fatalf("chassis: %v", c)
	}
	f.expect(400, "POST", "/v1/chassis", admin, map[string]any{"colour": "red"}, "colour")
	n := f.createNode(map[string]any{"name": "n1", "chassis_uuid": id})
	if n["chassis_uuid"] != id {
		t.Fatalf("node: %v", n)
	}
	if l := f.expect(200, "GET", "/v1/chassis", admin, nil).Body["chassis"].([]any); len(l) != 1 || l[0].(map[string]any)["extra"] != nil {
		t.Fatalf("list: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/chassis/detail", admin, nil).Body["chassis"].([]any); l[0].(map[string]any)["extra"] == nil {
		t.Fatalf("detail: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/chassis/"+id+"/nodes", admin, nil).Body["nodes"].([]any); len(l) != 1 {
		t.Fatalf("chassis nodes: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/nodes?chassis_uuid="+id, admin, nil).Body["nodes"].([]any); len(l) != 1 {
		t.Fatalf("nodes of chassis: %v", l)
	}
	got := f.expect(200, "PATCH", "/v1/chassis/"+id, admin, []any{map[string]any{"op": "replace", "path": "/description", "value": "rack one"}}).Body
	if got["description"] != "rack one" {
		t.Fatalf("patched: %v", got)
	}
	f.expect(400, "DELETE", "/v1/chassis/"+id, admin, nil, "contains nodes")
	f.expect(200, "PATCH", "/v1/nodes/n1", admin, []any{map[string]any{"op": "remove", "path": "/chassis_uuid"}})
	f.expect(204, "DELETE", "/v1/chassis/"+id, admin, nil)
	f.expect(404, "GET", "/v1/chassis/"+id, admin, nil, "could not be found")
}

func TestFakeHardwareInterfaces(t *testing.T) {
	f := newFixture(t)
	n := f.createNode(map[string]any{"driver": "fake-hardware", "inspect_interface": "no-inspect"})
	if n["power_interface"] != "fake" || n["boot_interface"] != "fake" || n["inspect_interface"] != "no-inspect" || n["network_interface"] != "noop" {
		t.Fatalf("fake-hardware node: %v", n)
	}
	id := n["uuid"].(string)
	f.expect(400, "PATCH", "/v1/nodes/"+id, admin, []any{map[string]any{"op": "add", "path": "/power_interface", "value": "no-power"}}, "power_interface")
	got := f.expect(200, "PATCH", "/v1/nodes/"+id, admin, []any{map[string]any{"op": "remove", "path": "/inspect_interface"}}).Body
	if got["inspect_interface"] != "fake" {
		t.Fatalf("reset interface: %v", got["inspect_interface"])
	}
}

func TestTraits(t *testing.T) {
	f := newFixture(t)
	f.createNode(map[string]any{"name": "n1"})
	traits := func() []any {
		t.Helper()
		return f.expect(200, "GET", "/v1/nodes/n1/traits", admin, nil).Body["traits"].([]any)
	}
	f.expect(204, "PUT", "/v1/nodes/n1/traits", admin, map[string]any{"traits": []any{"CUSTOM_B", "HW_CPU_X86_VMX"}})
	f.expect(204, "PUT", "/v1/nodes/n1/traits/CUSTOM_A", admin, nil)
	if got := traits(); len(got) != 3 || got[0] != "CUSTOM_A" {
		t.Fatalf("traits: %v", got)
	}
	if n := f.expect(200, "GET", "/v1/nodes/n1", admin, nil).Body; len(n["traits"].([]any)) != 3 {
		t.Fatalf("node traits: %v", n["traits"])
	}
	f.expect(400, "PUT", "/v1/nodes/n1/traits/lower_case", admin, nil, "traits")
	many := []any{}
	for i := 0; i <= maxTraits; i++ {
		many = append(many, fmt.Sprintf("CUSTOM_T%d", i))
	}
	f.expect(400, "PUT", "/v1/nodes/n1/traits", admin, map[string]any{"traits": many}, "at most")
	f.expect(204, "DELETE", "/v1/nodes/n1/traits/CUSTOM_A", admin, nil)
	f.expect(404, "DELETE", "/v1/nodes/n1/traits/CUSTOM_A", admin, nil, "CUSTOM_A")
	f.expect(204, "DELETE", "/v1/nodes/n1/traits", admin, nil)
	if got := traits(); len(got) != 0 {
		t.Fatalf("after delete: %v", got)
	}
	// Before 1.37, as Ironic answers: a read 406, a write 405, a removal
	// 404; a node list asking for the traits field 406.
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/v1/nodes/n1/traits", 406}, {"PUT", "/v1/nodes/n1/traits", 405}, {"PUT", "/v1/nodes/n1/traits/CUSTOM_A", 405},
		{"DELETE", "/v1/nodes/n1/traits/CUSTOM_A", 404}, {"DELETE", "/v1/nodes/n1/traits", 404}, {"GET", "/v1/nodes?fields=uuid,traits", 406},
	} {
		if res := f.call(c.method, c.path, admin, map[string]any{"traits": []string{"CUSTOM_A"}}, headerVersion, "1.36"); res.Code != c.want {
			t.Errorf("%s %s at 1.36: %d, want %d", c.method, c.path, res.Code, c.want)
		}
	}
}

func TestPortgroups(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	other := f.createNode(map[string]any{"name": "n2"})["uuid"].(string)
	// Before 1.23 there are none.
	if res := f.call("GET", "/v1/portgroups", admin, nil, headerVersion, "1.22"); res.Code != 404 {
		t.Fatalf("portgroups at 1.22: %d", res.Code)
	}
	g := f.expect(201, "POST", "/v1/portgroups", admin, map[string]any{"node_uuid": id, "name": "bond0", "address": "52:54:00:AA:BB:01", "extra": map[string]any{"k": "v"}}).Body
	gid := g["uuid"].(string)
	if g["address"] != "52:54:00:aa:bb:01" || g["mode"] != "active-backup" || g["standalone_ports_supported"] != true || g["node_uuid"] != id {
		t.Fatalf("created: %v", g)
	}
	f.expect(409, "POST", "/v1/portgroups", admin, map[string]any{"node_uuid": other, "address": "52:54:00:aa:bb:01"}, "already exists")
	f.expect(400, "POST", "/v1/portgroups", admin, map[string]any{"node_uuid": id, "address": "nope"}, "address")
	f.expect(400, "POST", "/v1/portgroups", admin, map[string]any{"node_uuid": id, "bogus": 1}, "bogus")
	f.expect(400, "POST", "/v1/portgroups", admin, map[string]any{}, "node_uuid")
	noAddr := f.expect(201, "POST", "/v1/portgroups", admin, map[string]any{"node_uuid": id}).Body
	if noAddr["address"] != nil || noAddr["name"] != nil {
		t.Fatalf("without address: %v", noAddr)
	}
	if res := f.call("POST", "/v1/portgroups", admin, map[string]any{"node_uuid": id, "mode": "802.3ad"}, headerVersion, "1.25"); res.Code != 406 {
		t.Fatalf("mode at 1.25: %d", res.Code)
	}

	// Shown by UUID or name, listed, and under the node.
	if got := f.expect(200, "GET", "/v1/portgroups/bond0", admin, nil).Body; got["uuid"] != gid {
		t.Fatalf("by name: %v", got)
	}
	if l := f.expect(200, "GET", "/v1/portgroups", admin, nil).Body["portgroups"].([]any); len(l) != 2 {
		t.Fatalf("list: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/nodes/"+other+"/portgroups", admin, nil).Body["portgroups"].([]any); len(l) != 0 {
		t.Fatalf("other node's: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/portgroups/detail?node="+id, admin, nil).Body["portgroups"].([]any); len(l) != 2 || l[0].(map[string]any)["extra"] == nil {
		t.Fatalf("detail by node: %v", l)
	}
	f.expect(404, "GET", "/v1/portgroups/"+"6a1f8e7c-1111-4222-8333-944455550000", admin, nil, "could not be found")

	// Patch.
	got := f.expect(200, "PATCH", "/v1/portgroups/"+gid, admin, []any{
		map[string]any{"op": "replace", "path": "/address", "value": "52:54:00:aa:bb:02"},
		map[string]any{"op": "remove", "path": "/extra/k"},
		map[string]any{"op": "add", "path": "/properties/miimon", "value": "100"},
	}).Body
	if got["address"] != "52:54:00:aa:bb:02" || len(got["extra"].(map[string]any)) != 0 || got["properties"].(map[string]any)["miimon"] != "100" {
		t.Fatalf("patched: %v", got)
	}
	f.expect(400, "PATCH", "/v1/portgroups/"+gid, admin, []any{map[string]any{"op": "replace", "path": "/uuid", "value": "x"}})
	// Before 1.26 the whole mode or properties is refused, a key of them
	// is not (as Ironic checks the path).
	if res := f.call("PATCH", "/v1/portgroups/"+gid, admin, []any{map[string]any{"op": "replace", "path": "/mode", "value": "802.3ad"}}, headerVersion, "1.25"); res.Code != 406 {
		t.Fatalf("mode at 1.25: %d", res.Code)
	}
	if res := f.call("PATCH", "/v1/portgroups/"+gid, admin, []any{map[string]any{"op": "add", "path": "/properties/k", "value": "v"}}, headerVersion, "1.23"); res.Code != 200 {
		t.Fatalf("a properties key at 1.23: %d %s", res.Code, res.Raw)
	}

	// A port joins it (on the same node only); the group lists it and
	// cannot be deleted while it has it.
	f.expect(400, "POST", "/v1/ports", admin, map[string]any{"address": "52:54:00:00:00:21", "node_uuid": other, "portgroup_uuid": gid}, "not on the same node")
	p := f.expect(201, "POST", "/v1/ports", admin, map[string]any{"address": "52:54:00:00:00:21", "node_uuid": id, "portgroup_uuid": gid}).Body
	if p["portgroup_uuid"] != gid {
		t.Fatalf("port: %v", p)
	}
	if l := f.expect(200, "GET", "/v1/portgroups/"+gid+"/ports", admin, nil).Body["ports"].([]any); len(l) != 1 {
		t.Fatalf("group's ports: %v", l)
	}
	if l := f.expect(200, "GET", "/v1/ports?portgroup=bond0", admin, nil).Body["ports"].([]any); len(l) != 1 {
		t.Fatalf("ports?portgroup: %v", l)
	}
	f.expect(409, "DELETE", "/v1/portgroups/"+gid, admin, nil, "contains ports")
	f.expect(200, "PATCH", "/v1/ports/"+p["uuid"].(string), admin, []any{map[string]any{"op": "remove", "path": "/portgroup_uuid"}})
	f.expect(204, "DELETE", "/v1/portgroups/"+gid, admin, nil)
	f.expect(404, "GET", "/v1/portgroups/"+gid, admin, nil)
}

// Ironic's fake console and management (fake-hardware) answer as in
// Ironic; a node with no console refuses to enable one.
func TestFakeConsoleAndBootDevice(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1", "driver": "fake-hardware"})["uuid"].(string)
	if bd := f.expect(200, "GET", "/v1/nodes/"+id+"/management/boot_device", admin, nil).Body; bd["boot_device"] != "pxe" || bd["persistent"] != false {
		t.Fatalf("fake boot device: %v", bd)
	}
	f.expect(400, "PUT", "/v1/nodes/"+id+"/states/console", admin, map[string]any{}, "enabled")
	f.expect(202, "PUT", "/v1/nodes/"+id+"/states/console", admin, map[string]any{"enabled": true})
	if c := f.expect(200, "GET", "/v1/nodes/states/console/"+id, admin, nil).Body; c["console_enabled"] != true || c["console_info"] == nil {
		t.Fatalf("console: %v", c)
	}
	if n := f.expect(200, "GET", "/v1/nodes/"+id, admin, nil).Body; n["console_enabled"] != true {
		t.Fatalf("node console_enabled: %v", n["console_enabled"])
	}
	real := f.createNode(map[string]any{"name": "n2"})["uuid"].(string)
	f.expect(400, "PUT", "/v1/nodes/"+real+"/states/console", admin, map[string]any{"enabled": true}, "does not support a console")
	if bd := f.expect(200, "GET", "/v1/nodes/"+real+"/management/boot_device", admin, nil).Body; bd["boot_device"] != nil {
		t.Fatalf("boot device of a node never set: %v", bd)
	}
}

// Protection as Ironic does it: only an active node (409 otherwise), a
// reason only while protected, and unprotecting drops the reason.
func TestProtected(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1"})["uuid"].(string)
	set := func(status int, ops ...map[string]any) map[string]any {
		t.Helper()
		var body []any
		for _, o := range ops {
			body = append(body, o)
		}
		return f.expect(status, "PATCH", "/v1/nodes/"+id, admin, body).Body
	}
	op := func(path string, v any) map[string]any {
		return map[string]any{"op": "replace", "path": path, "value": v}
	}
	set(409, op("/protected", true))
	f.conductor(id, func(n *bmstate.Node) { n.ProvisionState = bmstate.StateActive })
	set(400, op("/protected_reason", "why"))
	if n := set(200, op("/protected", true), op("/protected_reason", "reason!")); n["protected"] != true || n["protected_reason"] != "reason!" {
		t.Fatalf("protected: %v %v", n["protected"], n["protected_reason"])
	}
	if n := set(200, op("/protected", false)); n["protected"] != false || n["protected_reason"] != nil {
		t.Fatalf("unprotected: %v %v", n["protected"], n["protected_reason"])
	}
	set(400, op("/protected", false), op("/protected_reason", "why"))
}

// A target RAID configuration (1.12) is checked against Ironic's schema
// and recorded for a node whose RAID interface takes one (fake); the
// fake-hardware type describes its logical disk properties.
func TestRAIDConfig(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1", "driver": "fake-hardware"})["uuid"].(string)
	want := map[string]any{"logical_disks": []any{map[string]any{"size_gb": 100.0, "raid_level": "1"}}}
	f.expect(204, "PUT", "/v1/nodes/"+id+"/states/raid", admin, want)
	if got := f.expect(200, "GET", "/v1/nodes/"+id, admin, nil).Body["target_raid_config"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("target_raid_config %v, want %v", got, want)
	}
	for _, bad := range []map[string]any{
		{}, {"logical_disks": []any{map[string]any{"size_gb": 1.0, "raid_level": "7"}}},
		{"logical_disks": []any{map[string]any{"size_gb": "big", "raid_level": "1"}}},
	} {
		f.expect(400, "PUT", "/v1/nodes/"+id+"/states/raid", admin, bad)
	}
	if res := f.call("PUT", "/v1/nodes/"+id+"/states/raid", admin, want, headerVersion, "1.11"); res.Code != 404 {
		t.Fatalf("raid at 1.11: %d", res.Code)
	}
	real := f.createNode(map[string]any{"name": "n2"})["uuid"].(string)
	f.expect(400, "PUT", "/v1/nodes/"+real+"/states/raid", admin, want, "raid interface is no-raid")
	if p := f.expect(200, "GET", "/v1/drivers/fake-hardware/raid/logical_disk_properties", admin, nil).Body; p["raid_level"] == nil {
		t.Fatalf("fake-hardware RAID properties: %v", p)
	}
	f.expect(400, "GET", "/v1/drivers/ipmi/raid/logical_disk_properties", admin, nil, "does not support RAID")
}

// Retirement follows Ironic: not on an available node (it could be
// scheduled the moment it is flagged: 409), provide refused while
// retired, and unretiring drops the reason.
func TestRetirement(t *testing.T) {
	f := newFixture(t)
	id := f.createNode(map[string]any{"name": "n1", "driver": "fake-hardware"})["uuid"].(string)
	retire := func(on bool, reason any) []any {
		ops := []any{map[string]any{"op": "replace", "path": "/retired", "value": on}}
		if reason != nil {
			ops = append(ops, map[string]any{"op": "add", "path": "/retired_reason", "value": reason})
		}
		return ops
	}
	f.conductor(id, func(n *bmstate.Node) { n.ProvisionState = bmstate.StateAvailable })
	f.expect(409, "PATCH", "/v1/nodes/n1", admin, retire(true, nil), "available")
	if f.node(id).Retired {
		t.Fatal("an available node was retired")
	}
	f.conductor(id, func(n *bmstate.Node) { n.ProvisionState = bmstate.StateManageable })
	n := f.expect(200, "PATCH", "/v1/nodes/n1", admin, retire(true, "end of warranty")).Body
	if n["retired"] != true || n["retired_reason"] != "end of warranty" {
		t.Fatalf("retired: %v %v", n["retired"], n["retired_reason"])
	}
	f.expect(400, "PUT", "/v1/nodes/n1/states/provision", admin, map[string]any{"target": "provide"}, "retired")
	n = f.expect(200, "PATCH", "/v1/nodes/n1", admin, retire(false, nil)).Body
	if n["retired"] != false || n["retired_reason"] != nil {
		t.Fatalf("unretired: %v %v", n["retired"], n["retired_reason"])
	}
	f.expect(202, "PUT", "/v1/nodes/n1/states/provision", admin, map[string]any{"target": "provide"})
}

// Ironic's fake boot and deploy interfaces validate without a PXE port
// or an image, as fake-hardware nodes do there.
func TestValidateFakeInterfaces(t *testing.T) {
	f := newFixture(t)
	f.createNode(map[string]any{"name": "n1", "driver": "fake-hardware"})
	v := f.expect(200, "GET", "/v1/nodes/n1/validate", admin, nil).Body
	for _, iface := range []string{"boot", "deploy", "management", "power"} {
		if r := v[iface].(map[string]any); r["result"] != true {
			t.Fatalf("validate %s: %v", iface, r)
		}
	}
}
