package history

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/api"
)

func TestRingKeepsTheNewestPointsOldestFirst(t *testing.T) {
	r := newRing(3)
	if _, ok := r.last(); ok {
		t.Fatal("an empty ring has a last point")
	}
	for i := 1; i <= 5; i++ {
		r.add(Point{float64(i), float64(i * 10)})
	}
	want := []Point{{3, 30}, {4, 40}, {5, 50}}
	if got := r.points(); !slices.Equal(got, want) {
		t.Fatalf("points = %v, want %v", got, want)
	}
	if p, _ := r.last(); p != (Point{5, 50}) {
		t.Fatalf("last = %v", p)
	}
	r2 := newRing(3)
	r2.add(Point{1, 1})
	if got := r2.points(); !slices.Equal(got, []Point{{1, 1}}) {
		t.Fatalf("a part-filled ring: %v", got)
	}
}

// clock is a test's time, moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// fixture: a registry with two projects' instance CPU counters, a node
// gauge, and a histogram (never kept).
func fixture(t *testing.T, points int) (*Sampler, *prometheus.CounterVec, *clock) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cpu := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rackstack_instance_cpu_seconds_total"}, []string{"server_id", "project_id"})
	vcpus := prometheus.NewGauge(prometheus.GaugeOpts{Name: "rackstack_node_vcpus"})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rackstack_api_request_duration_seconds"})
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "rackstack_not_sampled"})
	reg.MustRegister(cpu, vcpus, lat, other)
	cpu.WithLabelValues("s1", "p1").Add(1)
	cpu.WithLabelValues("s2", "p2").Add(2)
	vcpus.Set(8)
	lat.Observe(1)
	c := &clock{t: time.Unix(1000, 0)}
	s := New(Config{Gatherer: reg, Families: []string{"rackstack_instance_cpu_seconds_total", "rackstack_node_vcpus", "rackstack_api_request_duration_seconds"},
		Step: 5 * time.Second, Points: points, Now: c.now})
	return s, cpu, c
}

func TestSamplerKeepsCountersRawAndDropsGoneSeriesAfterTheWindow(t *testing.T) {
	s, cpu, c := fixture(t, 4)
	for i := 0; i < 3; i++ {
		if err := s.Sample(); err != nil {
			t.Fatal(err)
		}
		cpu.WithLabelValues("s1", "p1").Add(1)
		c.t = c.t.Add(5 * time.Second)
	}
	got := s.Query("rackstack_instance_cpu_seconds_total", map[string]string{"server_id": "s1"})
	if len(got) != 1 {
		t.Fatalf("series = %+v", got)
	}
	want := []Point{{1000, 1}, {1005, 2}, {1010, 3}}
	if !slices.Equal(got[0].Points, want) {
		t.Fatalf("points = %v, want the raw cumulative values %v", got[0].Points, want)
	}
	if h := s.Query("rackstack_api_request_duration_seconds", nil); len(h) != 0 {
		t.Fatalf("a histogram was kept: %+v", h)
	}
	// s1 goes (its server was deleted): its points stay for the window
	// (4 points x 5 s), then the series goes.
	cpu.DeleteLabelValues("s1", "p1")
	c.t = c.t.Add(15 * time.Second)
	s.Sample()
	if len(s.Query("rackstack_instance_cpu_seconds_total", map[string]string{"server_id": "s1"})) != 1 {
		t.Fatal("a series went before its window ended")
	}
	c.t = c.t.Add(10 * time.Second)
	s.Sample()
	if got := s.Query("rackstack_instance_cpu_seconds_total", map[string]string{"server_id": "s1"}); len(got) != 0 {
		t.Fatalf("a series outlived its window: %+v", got)
	}
	if got := s.Query("rackstack_instance_cpu_seconds_total", nil); len(got) != 1 || got[0].Labels["server_id"] != "s2" {
		t.Fatalf("the live series went too: %+v", got)
	}
}

func TestSamplerBoundsTheNumberOfSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "rackstack_instance_memory_bytes"}, []string{"server_id"})
	reg.MustRegister(g)
	for _, id := range []string{"a", "b", "c"} {
		g.WithLabelValues(id).Set(1)
	}
	s := New(Config{Gatherer: reg, Families: []string{"rackstack_instance_memory_bytes"}, MaxSeries: 2})
	s.Sample()
	if got := s.Query("rackstack_instance_memory_bytes", nil); len(got) != 2 {
		t.Fatalf("%d series kept, want the cap of 2", len(got))
	}
}

func get(t *testing.T, h http.Handler, p *api.Principal, query string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/rackstack/v1/history?"+query, nil)
	if p != nil {
		req = req.WithContext(api.WithPrincipal(req.Context(), p))
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: body %q: %v", query, rec.Body, err)
	}
	return rec.Code, body
}

func seriesLabels(body map[string]any, label string) []string {
	var out []string
	ss, _ := body["series"].([]any)
	for _, s := range ss {
		out = append(out, s.(map[string]any)["labels"].(map[string]any)[label].(string))
	}
	return out
}

var (
	admin   = &api.Principal{ProjectID: "adm", Roles: []string{"admin"}}
	tenant1 = &api.Principal{ProjectID: "p1", Roles: []string{"member", "reader"}}
)

func TestHistoryScopesToTheTokensProject(t *testing.T) {
	s, _, _ := fixture(t, 10)
	s.Sample()
	h := &Handler{Sampler: s, Node: "n1"}
	tests := map[string]struct {
		who     *api.Principal
		query   string
		status  int
		servers []string
		says    string
	}{
		"admin sees every project":          {admin, "family=rackstack_instance_cpu_seconds_total", 200, []string{"s1", "s2"}, ""},
		"admin filters by label":            {admin, "family=rackstack_instance_cpu_seconds_total&project_id=p2", 200, []string{"s2"}, ""},
		"a project sees only its own":       {tenant1, "family=rackstack_instance_cpu_seconds_total", 200, []string{"s1"}, ""},
		"another project's server is empty": {tenant1, "family=rackstack_instance_cpu_seconds_total&server_id=s2", 200, nil, ""},
		"asking for another project":        {tenant1, "family=rackstack_instance_cpu_seconds_total&project_id=p2", 403, nil, "project_id"},
		"a node family is admin only":       {tenant1, "family=rackstack_node_vcpus", 403, nil, "rackstack_node_vcpus"},
		"admin reads a node family":         {admin, "family=rackstack_node_vcpus", 200, nil, ""},
		"unknown family":                    {admin, "family=rackstack_nope", 404, nil, "rackstack_nope"},
		"no family":                         {admin, "server_id=s1", 400, nil, "family"},
		"a label given twice":               {admin, "family=rackstack_node_vcpus&node=a&node=b", 400, nil, "node"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, body := get(t, h, tc.who, tc.query)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %v", code, tc.status, body)
			}
			if tc.says != "" {
				msg, _ := body["error"].(map[string]any)["message"].(string)
				if !strings.Contains(msg, tc.says) {
					t.Fatalf("error %q does not name %s", msg, tc.says)
				}
				return
			}
			if body["step_seconds"] != 5.0 {
				t.Fatalf("step_seconds = %v", body["step_seconds"])
			}
			if strings.HasPrefix(tc.query, "family=rackstack_instance") && !slices.Equal(seriesLabels(body, "server_id"), tc.servers) {
				t.Fatalf("servers %v, want %v", seriesLabels(body, "server_id"), tc.servers)
			}
			for _, n := range seriesLabels(body, NodeLabel) {
				if n != "n1" {
					t.Fatalf("node label %q", n)
				}
			}
		})
	}
}

func TestHistoryListsFamiliesByRole(t *testing.T) {
	s, _, _ := fixture(t, 10)
	h := &Handler{Sampler: s, Node: "n1"}
	_, body := get(t, h, admin, "")
	if fs := body["families"].([]any); len(fs) != 3 {
		t.Fatalf("admin families %v", fs)
	}
	_, body = get(t, h, tenant1, "")
	if fs := body["families"].([]any); len(fs) != 1 || fs[0] != "rackstack_instance_cpu_seconds_total" {
		t.Fatalf("project families %v", fs)
	}
}

// peerStub is a cluster of one other node, n2, served by an httptest
// server standing for its peer port.
type peerStub struct{ srv *httptest.Server }

func (p peerStub) Others() ([]string, error) { return []string{"n2"}, nil }
func (p peerStub) PeerAddress(string) (string, error) {
	u, _ := url.Parse(p.srv.URL)
	return u.Host, nil
}
func (p peerStub) PeerClient() *http.Client { return p.srv.Client() }

func TestHistoryAnswersForTheClusterAndScopesPeersSeries(t *testing.T) {
	remote, remoteCPU, _ := fixture(t, 10)
	remoteCPU.WithLabelValues("s3", "p1").Add(3)
	remote.Sample()
	rh := &Handler{Sampler: remote, Node: "n2"}
	mux := http.NewServeMux()
	mux.Handle(PeerPath, rh.PeerHandler())
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	local, _, _ := fixture(t, 10)
	local.Sample()
	h := &Handler{Sampler: local, Node: "n1", Peers: peerStub{srv}}
	_, body := get(t, h, tenant1, "family=rackstack_instance_cpu_seconds_total")
	got := []string{}
	for _, s := range body["series"].([]any) {
		l := s.(map[string]any)["labels"].(map[string]any)
		got = append(got, l["node"].(string)+"/"+l["server_id"].(string)+"/"+l["project_id"].(string))
	}
	slices.Sort(got)
	want := []string{"n1/s1/p1", "n2/s1/p1", "n2/s3/p1"}
	if !slices.Equal(got, want) {
		t.Fatalf("series %v, want %v (never p2's)", got, want)
	}
	_, body = get(t, h, admin, "family=rackstack_node_vcpus&node=n2")
	if nodes := seriesLabels(body, NodeLabel); !slices.Equal(nodes, []string{"n2"}) {
		t.Fatalf("node=n2 answered %v", nodes)
	}

	srv.Close()
	_, body = get(t, h, admin, "family=rackstack_node_vcpus")
	if u, _ := body["unreachable"].([]any); len(u) != 1 || u[0] != "n2" {
		t.Fatalf("a down peer is not named: %v", body)
	}
	if nodes := seriesLabels(body, NodeLabel); !slices.Equal(nodes, []string{"n1"}) {
		t.Fatalf("this node's series are lost with the peer: %v", nodes)
	}
}
