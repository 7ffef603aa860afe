package history

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
)

// PeerPath is where a node answers other nodes for its own series.
const PeerPath = "/peer/telemetry/v1/history"

// InstancePrefix starts the families a project may read: their series
// carry a project_id label.
const InstancePrefix = "rackstack_instance_"

// NodeLabel names the node that sampled a series; the API adds it, so the
// same series of two nodes stay apart.
const NodeLabel = "node"

// Peers reaches the other nodes of the cluster (a *cluster.Node behind a
// small adapter).
type Peers interface {
	// Others names the other nodes whose series the API should ask for.
	Others() ([]string, error)
	PeerAddress(node string) (string, error)
	PeerClient() *http.Client
}

// Handler serves GET /rackstack/v1/history behind api.RequireAuth.
type Handler struct {
	Sampler *Sampler
	Node    string
	// Peers, if set, makes every node answer for the whole cluster.
	Peers Peers
	// PeerTimeout bounds the wait for one peer (default 3 s); a peer that
	// does not answer is named in "unreachable", not an error.
	PeerTimeout time.Duration
	Log         *slog.Logger
}

// Answer is the body of a history query.
type Answer struct {
	StepSeconds float64  `json:"step_seconds"`
	Series      []Series `json:"series"`
	// Unreachable names the nodes whose series are missing.
	Unreachable []string `json:"unreachable,omitempty"`
}

// Listing is the body of GET /rackstack/v1/history without parameters.
type Listing struct {
	StepSeconds float64  `json:"step_seconds"`
	Points      int      `json:"points"`
	Families    []string `json:"families"`
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := h.serve(w, r); err != nil {
		api.Fail(w, r, api.JSONError, err)
	}
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) error {
	p := api.PrincipalFrom(r.Context())
	if p == nil {
		return api.ErrUnauthorized
	}
	q := r.URL.Query()
	if len(q) == 0 {
		l := Listing{StepSeconds: h.Sampler.Step().Seconds(), Points: h.Sampler.cfg.Points, Families: []string{}}
		for _, f := range h.Sampler.Families() {
			if p.IsAdmin() || strings.HasPrefix(f, InstancePrefix) {
				l.Families = append(l.Families, f)
			}
		}
		api.JSON(w, http.StatusOK, l)
		return nil
	}
	family, match, err := parseQuery(q)
	if err != nil {
		return err
	}
	if !h.Sampler.Known(family) {
		return api.Errorf(http.StatusNotFound, "no history of metric family %q (GET /rackstack/v1/history lists them)", family)
	}
	if !p.IsAdmin() {
		// A project sees its own instances' series and nothing else:
		// the project_id label is forced to the token's, so neither
		// this node nor a peer returns another tenant's.
		if !strings.HasPrefix(family, InstancePrefix) {
			return api.Errorf(http.StatusForbidden, "metric family %s has no project_id label: its history is for admins only", family)
		}
		if p.ProjectID == "" {
			return api.Errorf(http.StatusForbidden, "a project-scoped token is needed for the history of %s", family)
		}
		if v, ok := match["project_id"]; ok && v != p.ProjectID {
			return &api.Error{Status: http.StatusForbidden, Field: "project_id", Msg: "project_id: a token of project " + p.ProjectID + " may read only that project's series"}
		}
		match["project_id"] = p.ProjectID
	}
	ans := h.gather(r.Context(), family, match)
	if !p.IsAdmin() {
		kept := ans.Series[:0]
		for _, s := range ans.Series {
			if s.Labels["project_id"] == p.ProjectID {
				kept = append(kept, s)
			}
		}
		ans.Series = kept
	}
	api.JSON(w, http.StatusOK, ans)
	return nil
}

// parseQuery splits family from the label matchers, one value each.
func parseQuery(q url.Values) (string, map[string]string, error) {
	match := map[string]string{}
	family := ""
	for name, vs := range q {
		if len(vs) != 1 {
			return "", nil, api.BadField(name, "give it once")
		}
		if name == "family" {
			family = vs[0]
			continue
		}
		match[name] = vs[0]
	}
	if family == "" {
		return "", nil, api.BadField("family", "a metric family name is required (GET /rackstack/v1/history lists them)")
	}
	return family, match, nil
}

// gather answers with this node's series and, through the peer port,
// every other node's.
func (h *Handler) gather(ctx context.Context, family string, match map[string]string) Answer {
	ans := Answer{StepSeconds: h.Sampler.Step().Seconds(), Series: h.local(family, match)}
	if h.Peers == nil {
		return ans
	}
	others, err := h.Peers.Others()
	if err != nil {
		h.log().Warn("telemetry history: list nodes", "err", err)
		return ans
	}
	if want, ok := match[NodeLabel]; ok {
		others = filterNode(others, want)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, node := range others {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ss, err := h.ask(ctx, node, family, match)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				h.log().Warn("telemetry history: ask a peer", "node", node, "err", err)
				ans.Unreachable = append(ans.Unreachable, node)
				return
			}
			ans.Series = append(ans.Series, ss...)
		}()
	}
	wg.Wait()
	sortSeries(ans.Series)
	if ans.Series == nil {
		ans.Series = []Series{}
	}
	return ans
}

func filterNode(nodes []string, want string) []string {
	for _, n := range nodes {
		if n == want {
			return []string{n}
		}
	}
	return nil
}

// local is this node's series, labelled with its name.
func (h *Handler) local(family string, match map[string]string) []Series {
	m := maps(match)
	if want, ok := m[NodeLabel]; ok {
		if want != h.Node {
			return []Series{}
		}
		delete(m, NodeLabel)
	}
	ss := h.Sampler.Query(family, m)
	for i := range ss {
		if _, ok := ss[i].Labels[NodeLabel]; !ok {
			ss[i].Labels[NodeLabel] = h.Node
		}
	}
	if ss == nil {
		ss = []Series{}
	}
	return ss
}

func (h *Handler) ask(ctx context.Context, node, family string, match map[string]string) ([]Series, error) {
	addr, err := h.Peers.PeerAddress(node)
	if err != nil {
		return nil, err
	}
	timeout := h.PeerTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := url.Values{"family": {family}}
	for n, v := range match {
		q.Set(n, v)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+PeerPath+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.Peers.PeerClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask %s for history: %w", node, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ask %s for history: %s", node, resp.Status)
	}
	var ans Answer
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return nil, fmt.Errorf("read history from %s: %w", node, err)
	}
	return ans.Series, nil
}

// PeerHandler answers other nodes with this node's series (the peer port
// is mutual TLS between members: the asking node has scoped the query).
func (h *Handler) PeerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		family, match, err := parseQuery(r.URL.Query())
		if err != nil {
			api.Fail(w, r, api.JSONError, err)
			return
		}
		if !h.Sampler.Known(family) {
			api.Fail(w, r, api.JSONError, api.Errorf(http.StatusNotFound, "no history of metric family %q", family))
			return
		}
		api.JSON(w, http.StatusOK, Answer{StepSeconds: h.Sampler.Step().Seconds(), Series: h.local(family, match)})
	})
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}
