package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplaneapi"
	"github.com/rackstack/rackstack/fabric/client"
	"github.com/rackstack/rackstack/fabric/cluster/clusterapi"
	"github.com/rackstack/rackstack/storage/block/blockapi"
	"github.com/rackstack/rackstack/storage/object/objectapi"
)

// fakeCloud answers Keystone password auth and the cluster API.
func fakeCloud(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /identity/v3/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Auth struct {
				Identity struct {
					Password struct {
						User struct {
							Password string `json:"password"`
						} `json:"user"`
					} `json:"password"`
				} `json:"identity"`
			} `json:"auth"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		if body.Auth.Identity.Password.User.Password != "pw" {
			w.WriteHeader(401)
			w.Write([]byte(`{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`))
			return
		}
		w.Header().Set("X-Subject-Token", "tok123")
		w.WriteHeader(201)
		w.Write([]byte(`{"token": {}}`))
	})
	authed := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("X-Auth-Token") != "tok123" {
				w.WriteHeader(401)
				return
			}
			h(w, r)
		}
	}
	now := time.Now()
	mux.HandleFunc("GET /rackstack/v1/cluster/status", authed(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(clusterapi.Status{Node: "n1", Leader: "n1", Term: 3, AppliedIndex: 42, CommitIndex: 42, Healthy: true,
			Members: []clusterapi.Member{{Name: "n2", Address: "10.0.0.2:8771", Suffrage: "voter", Up: true, LastContact: now}, {Name: "n1", Address: "10.0.0.1:8771", Suffrage: "voter", Leader: true, Up: true, LastContact: now}}})
	}))
	mux.HandleFunc("POST /rackstack/v1/cluster/join-tokens", authed(func(w http.ResponseWriter, r *http.Request) {
		var req clusterapi.JoinTokenRequest
		json.NewDecoder(r.Body).Decode(&req)
		if req.TTL != "2h0m0s" || req.Uses == nil || *req.Uses != 3 {
			w.WriteHeader(400)
			w.Write([]byte(`{"error": {"code": 400, "message": "unexpected request"}}`))
			return
		}
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(clusterapi.JoinTokenResponse{Token: "rsj_x.y", ID: "x", ExpiresAt: now.Add(2 * time.Hour), Uses: 3})
	}))
	mux.HandleFunc("GET /rackstack/v1/cluster/join-tokens", authed(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"join_tokens": []clusterapi.JoinToken{
			{ID: "aa11", CreatedAt: now, ExpiresAt: now.Add(time.Hour), UsesLeft: 2},
			{ID: "bb22", CreatedAt: now, ExpiresAt: now.Add(-time.Hour), UsesLeft: 1, Expired: true},
		}})
	}))
	mux.HandleFunc("DELETE /rackstack/v1/cluster/join-tokens/{id}", authed(func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "aa11" {
			w.WriteHeader(404)
			w.Write([]byte(`{"error": {"code": 404, "title": "Not Found", "message": "join token ` + r.PathValue("id") + ` does not exist"}}`))
			return
		}
		w.WriteHeader(204)
	}))
	mux.HandleFunc("GET /rackstack/v1/nodes", authed(func(w http.ResponseWriter, r *http.Request) {
		n := clusterapi.NodeInfo{Name: "n1", Status: "up", APIURL: "http://10.0.0.1:8770", LastHeartbeat: now}
		n.Inventory.CPUs, n.Inventory.MemoryBytes = 8, 16<<30
		json.NewEncoder(w).Encode(map[string]any{"nodes": []clusterapi.NodeInfo{n}})
	}))
	mux.HandleFunc("GET /rackstack/v1/nodes/{name}", authed(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		w.Write([]byte(`{"error": {"code": 404, "title": "Not Found", "message": "node \"` + r.PathValue("name") + `\": not found"}}`))
	}))
	mux.HandleFunc("GET /rackstack/v1/storage/status", authed(func(w http.ResponseWriter, r *http.Request) {
		st := objectapi.Status{K: 4, M: 2, Capacity: objectapi.Capacity{Total: 30 << 30, Free: 10 << 30, Filesystems: 1}}
		st.Scrubbed, st.HealFailures = 7, 12
		st.HealBackoff = []objectapi.HealRetry{{Blob: "b0ba", Object: "p/c/lost", Node: "n1", Failures: 12, NextTry: now, Reason: "too few shards"}}
		st.Nodes = []objectapi.NodeCounters{{Node: "n1"}, {Node: "n2"}, {Node: "n3", Err: "node is down"}}
		json.NewEncoder(w).Encode(client.StorageStatus{Status: st, Volumes: &blockapi.Usage{
			Volumes: 3, Snapshots: 1, Provisioned: 30 << 30, Allocated: 3 << 29, Stored: 9 << 28,
		}})
	}))
	mux.HandleFunc("GET /baremetal/v1/nodes/detail", authed(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-OpenStack-Ironic-API-Version") == "" {
			w.WriteHeader(406) // the conductor field needs a microversion
			return
		}
		w.Write([]byte(`{"nodes": [{"uuid": "9a1e", "name": "rack1-u7", "provision_state": "cleaning", "target_provision_state": "available",
			"power_state": "power on", "maintenance": false, "conductor": "n1", "last_error": null},
			{"uuid": "77b0", "provision_state": "deploy failed", "power_state": "power off", "last_error": "timed out waiting for the agent"}]}`))
	}))
	mux.HandleFunc("GET /baremetal/v1/nodes/{node}", authed(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		w.Write([]byte(`{"error_message": "{\"faultstring\": \"Node ` + r.PathValue("node") + ` could not be found.\", \"faultcode\": \"Client\", \"debuginfo\": null}"}`))
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestRackctl(t *testing.T) {
	srv := fakeCloud(t)
	env := map[string]string{"OS_AUTH_URL": srv.URL + "/identity/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "pw", "OS_PROJECT_NAME": "admin"}
	tests := map[string]struct {
		args     []string
		env      map[string]string
		code     int
		stdout   []string
		stderr   string
		noStdout string
	}{
		"status table":     {args: []string{"cluster", "status"}, stdout: []string{"leader:   n1", "NAME", "n1", "10.0.0.2:8771", "voter"}},
		"status json":      {args: []string{"cluster", "status", "-o", "json"}, stdout: []string{`"applied_index": 42`, `"suffrage": "voter"`}},
		"join token":       {args: []string{"cluster", "join-token", "create", "--ttl", "2h", "--uses", "3"}, stdout: []string{"token:   rsj_x.y", "uses:    3"}},
		"node list":        {args: []string{"node", "list"}, stdout: []string{"n1", "up", "16.0"}},
		"node show 404":    {args: []string{"node", "show", "zz"}, code: 1, stderr: `node "zz": not found (HTTP 404)`},
		"bad password":     {args: []string{"node", "list"}, env: map[string]string{"OS_PASSWORD": "nope"}, code: 1, stderr: "HTTP 401", noStdout: "pw"},
		"missing password": {args: []string{"node", "list"}, env: map[string]string{"OS_PASSWORD": ""}, code: 2, stderr: "OS_PASSWORD is not set"},
		"bad output":       {args: []string{"node", "list", "-o", "yaml"}, code: 2, stderr: "-o must be table or json"},
		"unknown command":  {args: []string{"frob"}, code: 2, stderr: "unknown command"},
		"typo in a group":  {args: []string{"cluster", "stauts"}, code: 2, stderr: `unknown command "stauts" for "rackctl cluster"; did you mean status?`},
		"typo deeper":      {args: []string{"cluster", "join-token", "lst"}, code: 2, stderr: "did you mean list?"},
		"group alone":      {args: []string{"cluster"}, stdout: []string{"status", "join-token"}},
		"zero uses":        {args: []string{"cluster", "join-token", "create", "--uses", "0"}, code: 2, stderr: "--uses must be at least 1"},
		"token list":       {args: []string{"cluster", "join-token", "list"}, stdout: []string{"aa11", "bb22", "(expired)", "USES LEFT"}},
		"token revoke":     {args: []string{"cluster", "join-token", "revoke", "aa11"}, stdout: []string{"revoked join token aa11"}},
		"revoke unknown":   {args: []string{"cluster", "join-token", "revoke", "zz"}, code: 1, stderr: "join token zz does not exist"},
		"storage status": {args: []string{"storage", "status"}, stdout: []string{
			"capacity:   30.0 GiB, 10.0 GiB free (1 filesystems)", "7 blobs scrubbed", "12 failed heals",
			"not counted: node n3 (node is down)", "totals over nodes n1, n2", "b0ba", "p/c/lost", "too few shards",
			"volumes:    3 (1 snapshots), 30.0 GiB provisioned, 1.5 GiB written, 2.2 GiB on disks",
		}},
		"show needs name": {args: []string{"node", "show"}, code: 2, stderr: "accepts 1 arg"},
		"baremetal list": {args: []string{"baremetal", "list"}, stdout: []string{
			"PROVISION", "rack1-u7", "cleaning → available", "power on", "deploy failed", "timed out waiting for the agent",
		}},
		"baremetal show 404": {args: []string{"baremetal", "show", "nope"}, code: 1, stderr: "Node nope could not be found. (HTTP 404)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tc.env {
				e[k] = v
			}
			var out, errb strings.Builder
			code := run(tc.args, &out, &errb, func(k string) string { return e[k] })
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %s", code, tc.code, errb.String())
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, out.String())
				}
			}
			if tc.stderr != "" && !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.stderr)
			}
			if tc.noStdout != "" && strings.Contains(out.String()+errb.String(), tc.noStdout) {
				t.Errorf("output shows %q", tc.noStdout)
			}
		})
	}
}

// A node that stopped applying the log says so at the top of its status;
// a healthy one prints no such line.
func TestStatusShowsHalt(t *testing.T) {
	now := time.Now()
	for name, tc := range map[string]struct {
		halted string
		want   bool
	}{
		"halted":  {halted: `state halted at log index 9: unknown command type "x.y"`, want: true},
		"applies": {},
	} {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			printStatus(&out, clusterapi.Status{Node: "n1", Leader: "n2", Halted: tc.halted}, now)
			if got := strings.Contains(out.String(), "HALTED:   "+tc.halted); got != tc.want || strings.Contains(out.String(), "HALTED") != tc.want {
				t.Errorf("output:\n%s\nwant a HALTED line: %v", out.String(), tc.want)
			}
		})
	}
}

// A cluster with a voter down is not called healthy, and says why.
func TestStatusSaysWhatIsWrong(t *testing.T) {
	tests := map[string]struct {
		st   clusterapi.Status
		want []string
	}{
		"healthy":   {clusterapi.Status{Leader: "n1", Healthy: true, Quorum: true}, []string{"healthy:  yes\n"}},
		"degraded":  {clusterapi.Status{Leader: "n1", Quorum: true, Problems: []string{"voter n3 is down (last heartbeat 40s ago)"}}, []string{"healthy:  no (degraded: quorum holds, writes work)", "problem:  voter n3 is down"}},
		"no quorum": {clusterapi.Status{Problems: []string{"no leader"}}, []string{"healthy:  no (no quorum: writes stall)", "problem:  no leader"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out strings.Builder
			printStatus(&out, tc.st, time.Now())
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestPrintDataplaneDrift checks `dataplane show` says whether the node's
// kernel maps were found changed behind its back.
func TestPrintDataplaneDrift(t *testing.T) {
	at := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	cases := map[string]struct {
		drift dataplaneapi.DriftStatus
		want  string
	}{
		"never checked": {dataplaneapi.DriftStatus{}, "drift:    not checked yet"},
		"clean":         {dataplaneapi.DriftStatus{VerifiedAt: at}, "drift:    none (checked 2026-12-05T08:00:00Z)"},
		"repaired": {dataplaneapi.DriftStatus{Repaired: 3, Last: dataplaneapi.Drift{"fdb": 1, "ports": 2}, LastAt: at, VerifiedAt: at},
			"drift:    3 repaired; last fdb=1 ports=2 at 2026-12-05T08:00:00Z"},
		"check failed": {dataplaneapi.DriftStatus{VerifiedAt: at, Error: "dataplane: read maps: boom"}, "last check failed: dataplane: read maps: boom"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			printDataplane(&b, "n1", dataplaneapi.Status{Attach: "tcx", PinDir: "/sys/fs/bpf/rackstack/n1-x", Drift: c.drift})
			if !strings.Contains(b.String(), c.want) {
				t.Errorf("output lacks %q:\n%s", c.want, b.String())
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{"4096": 4096, "1K": 1 << 10, "64M": 64 << 20, "10G": 10 << 30, "2t": 2 << 40}
	for in, want := range good {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1", "0", "1.5G", "10X", "99999999999T"} {
		if n, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, n)
		}
	}
}
