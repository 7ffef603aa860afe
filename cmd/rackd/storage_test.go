package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/storage/object"
)

type fixedCounters object.Counters

func (f fixedCounters) Counters() object.Counters { return object.Counters(f) }

// Every other node is asked for its counters over the peer port; one that
// is down or fails is reported, not silently left out.
func TestPeerCountersGatherEveryOtherNode(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET "+countersPath, countersHandler(fixedCounters{Scrubbed: 5, HealBackoff: []object.HealRetry{{Blob: "b1", Node: "n2"}}}))
	n2 := httptest.NewServer(mux)
	defer n2.Close()
	broken := httptest.NewServer(http.NotFoundHandler())
	defer broken.Close()
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	p := &peerCounters{client: n2.Client(), scheme: "http", self: "n1", nodes: func() ([]cluster.NodeInfo, error) {
		return []cluster.NodeInfo{
			{Name: "n1", Status: "up", RaftAddress: "self-is-not-called:1"},
			{Name: "n2", Status: "up", RaftAddress: addr(n2)},
			{Name: "n3", Status: "down", RaftAddress: addr(n2)},
			{Name: "n4", Status: "up", RaftAddress: addr(broken)},
		}, nil
	}}
	got := map[string]object.NodeCounters{}
	for _, n := range p.gather(context.Background()) {
		got[n.Node] = n
	}
	if len(got) != 3 {
		t.Fatalf("gathered %v, want n2, n3 and n4", got)
	}
	if n := got["n2"]; n.Err != "" || n.Scrubbed != 5 || len(n.HealBackoff) != 1 {
		t.Errorf("n2: %+v", n)
	}
	if n := got["n3"]; n.Err != "node is down" {
		t.Errorf("n3 (down): %+v", n)
	}
	if n := got["n4"]; !strings.Contains(n.Err, "404") {
		t.Errorf("n4 (no counters): %+v", n)
	}
}
