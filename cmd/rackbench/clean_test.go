package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeCloud is the part of a cloud clean talks to: Keystone projects,
// credentials and catalog, and Swift accounts, in memory. It records
// every DELETE.
type fakeCloud struct {
	mu         sync.Mutex
	projects   map[string]string   // id → name, all tagged rackbench
	containers map[string][]string // "project/container" → objects
	creds      map[string]string   // credential id → project
	network    map[string][]map[string]any
	deleted    []string
	srv        *httptest.Server
}

func (f *fakeCloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := r.URL.Path
	js := func(v any) { w.Header().Set("Content-Type", "application/json"); json.NewEncoder(w).Encode(v) }
	switch {
	case r.Method == "POST" && p == "/identity/v3/auth/tokens":
		w.Header().Set("X-Subject-Token", "tok")
		w.WriteHeader(201)
	case r.Method == "GET" && p == "/identity/v3/auth/tokens":
		js(map[string]any{"token": map[string]any{"user": map[string]any{"id": "u"}, "project": map[string]any{"id": "adm"}, "roles": []any{map[string]any{"name": "admin"}}}})
	case p == "/identity/v3/auth/catalog":
		js(map[string]any{"catalog": []any{map[string]any{"type": "object-store", "endpoints": []any{map[string]any{"interface": "public", "url": f.srv.URL + "/object/v1/AUTH_adm"}}}}})
	case r.Method == "GET" && p == "/identity/v3/projects":
		var ps []any
		for id, name := range f.projects {
			ps = append(ps, map[string]any{"id": id, "name": name, "tags": []string{"rackbench"}})
		}
		js(map[string]any{"projects": ps})
	case r.Method == "GET" && p == "/rackstack/v1/nodes":
		// n2 is down: clean does not wait on it.
		js(map[string]any{"nodes": []any{
			map[string]any{"name": "n1", "status": "up", "api_url": f.srv.URL + "/n1"},
			map[string]any{"name": "n2", "status": "down", "api_url": f.srv.URL + "/n2"},
		}})
	case r.Method == "GET" && p == "/identity/v3/credentials":
		var cs []any
		for id, proj := range f.creds {
			cs = append(cs, map[string]any{"id": id, "project_id": proj, "type": "ec2"})
		}
		js(map[string]any{"credentials": cs})
	case r.Method == "GET" && strings.HasPrefix(p, "/network/v2.0/"):
		kind := strings.ReplaceAll(strings.TrimPrefix(p, "/network/v2.0/"), "-", "_")
		// Like Neutron for an admin, the filter is honoured: and clean
		// must not rely on it, so p2's rows come back too.
		var rows []any
		for _, row := range f.network[kind] {
			rows = append(rows, row)
		}
		js(map[string]any{kind: rows})
	case r.Method == "DELETE":
		f.deleted = append(f.deleted, p)
		if rest, ok := strings.CutPrefix(p, "/object/v1/AUTH_"); ok {
			acct, obj, _ := strings.Cut(rest, "/")
			cont, name, _ := strings.Cut(obj, "/")
			k := acct + "/" + cont
			if name == "" {
				delete(f.containers, k)
			} else {
				f.containers[k] = slices.DeleteFunc(f.containers[k], func(s string) bool { return s == name })
			}
		}
		w.WriteHeader(204)
	case r.Method == "GET" && strings.HasPrefix(p, "/object/v1/AUTH_"):
		rest := strings.TrimPrefix(p, "/object/v1/AUTH_")
		acct, cont, _ := strings.Cut(rest, "/")
		var out []any
		for k, objs := range f.containers {
			a, c, _ := strings.Cut(k, "/")
			if cont == "" && a == acct {
				out = append(out, map[string]any{"name": c})
			}
			if cont != "" && k == acct+"/"+cont {
				for _, o := range objs {
					out = append(out, map[string]any{"name": o})
				}
			}
		}
		js(out)
	default:
		http.Error(w, "unexpected "+r.Method+" "+p, 400)
	}
}

func TestCleanRemovesOnlyRackbenchProjects(t *testing.T) {
	f := &fakeCloud{
		projects: map[string]string{"p1": "rackbench-20260101t000000-abcdef", "p2": "tagged-by-someone-else"},
		containers: map[string][]string{
			"p1/rackbench-20260101t000000-abcdef": {"s3-1/w0-o0", "s3-1/w1-o0"},
			"p2/theirs":                           {"keep"},
			"adm/mine":                            {"keep"},
		},
		creds: map[string]string{"c1": "p1", "c2": "p2", "c3": "adm"},
		network: map[string][]map[string]any{
			"ports": {
				{"id": "port1", "project_id": "p1", "device_owner": "rackbench:port", "binding:host_id": "n1"},
				{"id": "port2", "project_id": "p2", "device_owner": "rackbench:port", "binding:host_id": "n1"},
			},
			"security_groups": {{"id": "sg1", "project_id": "p1"}, {"id": "sg2", "project_id": "p2"}},
			"subnets":         {{"id": "sub1", "project_id": "p1"}},
			"networks":        {{"id": "net1", "project_id": "p1"}, {"id": "net2", "project_id": "adm"}},
		},
	}
	f.srv = httptest.NewServer(f)
	defer f.srv.Close()
	t.Setenv("OS_AUTH_URL", f.srv.URL+"/identity/v3")
	t.Setenv("OS_USERNAME", "admin")
	t.Setenv("OS_PASSWORD", "pw")
	t.Setenv("OS_PROJECT_NAME", "admin")
	var out bytes.Buffer
	if err := cleanCloud(context.Background(), options{Log: os.Stderr}, &out); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/object/v1/AUTH_p1/rackbench-20260101t000000-abcdef/s3-1/w0-o0",
		"/object/v1/AUTH_p1/rackbench-20260101t000000-abcdef/s3-1/w1-o0",
		"/object/v1/AUTH_p1/rackbench-20260101t000000-abcdef",
		"/identity/v3/credentials/c1",
		"/identity/v3/projects/p1",
		"/network/v2.0/quotas/p1",
		"/rackstack/v1/nodes/n1/bench-ports/port1",
		"/network/v2.0/ports/port1",
		"/network/v2.0/security-groups/sg1",
		"/network/v2.0/subnets/sub1",
		"/network/v2.0/networks/net1",
		"/n1/rackstack/v1/volumes/rackbench-20260101t000000-abcdef/export",
		"/rackstack/v1/volumes/rackbench-20260101t000000-abcdef",
	}
	got := append([]string(nil), f.deleted...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("deleted %q\nwant %q", got, want)
	}
	if !strings.Contains(out.String(), "removed rackbench-20260101t000000-abcdef") {
		t.Fatalf("output %q", out.String())
	}
}
