package network

import (
	"context"
	"sort"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// zonedFixture is a fixture whose state has Nova's aggregates beside the
// network's, with node n1 in no aggregate (the default zone) and n2, n3
// in an aggregate of zone az2; n3 is down.
func zonedFixture(t *testing.T) *fixture {
	t.Helper()
	const put = "test.aggregate.put"
	aggs := computestate.Schema()
	aggs.Handlers = map[string]store.Handler{put: store.Typed(func(tx *memdb.Txn, a computestate.Aggregate) (any, error) {
		return nil, tx.Insert(computestate.TableAggregates, &a)
	})}
	local, err := store.NewLocal(Schema(), eventstate.Schema(), aggs)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.local = local
	f.svc.cfg.Repl = local
	f.svc.cfg.Agents = agentHosts{{Name: "n1", Up: true}, {Name: "n2", Up: true}, {Name: "n3"}}
	if _, err := local.Propose(context.Background(), put, computestate.Aggregate{ID: "agg", Seq: 1, Name: "agg", Hosts: []string{"n2", "n3"},
		Metadata: map[string]string{computestate.AZKey: "az2"}, Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return f
}

func zoneRows(t *testing.T, body map[string]any) []string {
	t.Helper()
	var out []string
	for _, x := range body["availability_zones"].([]any) {
		z := x.(map[string]any)
		out = append(out, z["name"].(string)+"/"+z["resource"].(string)+"/"+z["state"].(string))
	}
	sort.Strings(out)
	return out
}

// TestAvailabilityZones: Neutron's zones are Nova's (a node's aggregate's
// zone, else "nova"), each for networks and routers, filtered by name,
// resource and state.
func TestAvailabilityZones(t *testing.T) {
	f := zonedFixture(t)
	got := zoneRows(t, f.expect("GET", "/v2.0/availability_zones", alice, nil, 200, ""))
	want := []string{"az2/network/available", "az2/router/available", "nova/network/available", "nova/router/available"}
	if len(got) != len(want) {
		t.Fatalf("zones %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("zones %v, want %v", got, want)
		}
	}
	if got := zoneRows(t, f.expect("GET", "/v2.0/availability_zones?resource=router&name=az2", alice, nil, 200, "")); len(got) != 1 || got[0] != "az2/router/available" {
		t.Fatalf("filtered: %v", got)
	}
	if got := zoneRows(t, f.expect("GET", "/v2.0/availability_zones?state=unavailable", alice, nil, 200, "")); len(got) != 0 {
		t.Fatalf("unavailable zones: %v", got)
	}
	// The agents say the zone of their node, as Nova's services do.
	for _, x := range f.expect("GET", "/v2.0/agents?agent_type=DHCP%20agent", admin, nil, 200, "")["agents"].([]any) {
		a := x.(map[string]any)
		if want := map[string]string{"n1": "nova", "n2": "az2", "n3": "az2"}[a["host"].(string)]; a["availability_zone"] != want {
			t.Fatalf("agent on %v in zone %v, want %s", a["host"], a["availability_zone"], want)
		}
	}
	// The extensions are listed.
	for _, alias := range []string{"availability_zone", "network_availability_zone", "router_availability_zone", "auto-allocated-topology"} {
		f.expect("GET", "/v2.0/extensions/"+alias, alice, nil, 200, "")
	}
}

// TestAvailabilityZoneHints: networks and routers take hints of zones
// there are (404 naming one there is not), keep them, cannot change
// them, and are in every zone (every node serves them).
func TestAvailabilityZoneHints(t *testing.T) {
	f := zonedFixture(t)
	n := f.network(alice, "zoned", "availability_zone_hints", []string{"az2"})
	if h := n["availability_zone_hints"].([]any); len(h) != 1 || h[0] != "az2" {
		t.Fatalf("network hints: %v", n)
	}
	if z := n["availability_zones"].([]any); len(z) != 2 || z[0] != "az2" || z[1] != "nova" {
		t.Fatalf("network zones: %v", z)
	}
	f.expect("POST", "/v2.0/networks", alice, map[string]any{"network": map[string]any{"name": "x", "availability_zone_hints": []string{"nova", "mars"}}}, 404, "AvailabilityZoneNotFound", "mars")
	f.expect("PUT", "/v2.0/networks/"+n["id"].(string), alice, map[string]any{"network": map[string]any{"availability_zone_hints": []string{"nova"}}}, 400, "")
	r := f.mk(alice, "routers", "router", map[string]any{"name": "r", "availability_zone_hints": []string{"nova"}})
	if h := r["availability_zone_hints"].([]any); len(h) != 1 || h[0] != "nova" {
		t.Fatalf("router hints: %v", r)
	}
	if got := f.expect("GET", "/v2.0/routers/"+r["id"].(string), alice, nil, 200, "")["router"].(map[string]any); len(got["availability_zones"].([]any)) != 2 {
		t.Fatalf("router zones: %v", got)
	}
	f.expect("POST", "/v2.0/routers", alice, map[string]any{"router": map[string]any{"name": "x", "availability_zone_hints": []string{"mars"}}}, 404, "AvailabilityZoneNotFound", "mars")
	f.expect("POST", "/v2.0/routers", alice, map[string]any{"router": map[string]any{"name": "x", "availability_zone_hints": "nova"}}, 400, "", "availability_zone_hints")
}
