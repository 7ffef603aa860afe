package compute

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// aggregate makes an aggregate (az "" for none) and returns its id.
func (f *fixture) aggregate(name, az string) string {
	f.t.Helper()
	body := map[string]any{"name": name}
	if az != "" {
		body["availability_zone"] = az
	}
	a := f.expect("POST", "/v2.1/os-aggregates", admin, "", map[string]any{"aggregate": body}, 200, "")["aggregate"].(map[string]any)
	return fmt.Sprint(a["id"])
}

func (f *fixture) aggAction(id string, body map[string]any, status int, fault string, inMsg ...string) map[string]any {
	f.t.Helper()
	return f.expect("POST", "/v2.1/os-aggregates/"+id+"/action", admin, "", body, status, fault, inMsg...)
}

func TestAggregatesCRUD(t *testing.T) {
	f := newFixture(t)
	if l := f.expect("GET", "/v2.1/os-aggregates", admin, "", nil, 200, "")["aggregates"].([]any); len(l) != 0 {
		t.Fatalf("aggregates before any: %v", l)
	}
	created := f.expect("POST", "/v2.1/os-aggregates", admin, "", map[string]any{"aggregate": map[string]any{"name": "a1", "availability_zone": "z1"}}, 200, "")["aggregate"].(map[string]any)
	keys := make([]string, 0, len(created))
	for k := range created {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Create answers without hosts and metadata, and without uuid before 2.41.
	if want := []string{"availability_zone", "created_at", "deleted", "deleted_at", "id", "name", "updated_at"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("create keys %v, want %v", keys, want)
	}
	if created["availability_zone"] != "z1" || created["deleted"] != false || created["updated_at"] != nil || created["created_at"] != "2026-11-24T12:00:00.000000" {
		t.Fatalf("create body %v", created)
	}
	id := fmt.Sprint(created["id"])
	got := f.expect("GET", "/v2.1/os-aggregates/"+id, admin, "2.41", nil, 200, "")["aggregate"].(map[string]any)
	if got["uuid"] == nil || got["name"] != "a1" || !reflect.DeepEqual(got["hosts"], []any{}) || !reflect.DeepEqual(got["metadata"], map[string]any{"availability_zone": "z1"}) {
		t.Fatalf("show %v", got)
	}
	if _, ok := f.expect("GET", "/v2.1/os-aggregates/"+id, admin, "2.40", nil, 200, "")["aggregate"].(map[string]any)["uuid"]; ok {
		t.Fatal("uuid shown before 2.41")
	}

	// Names are unique; bad input names its field.
	f.expect("POST", "/v2.1/os-aggregates", admin, "", map[string]any{"aggregate": map[string]any{"name": "a1"}}, 409, "conflictingRequest", "Aggregate a1 already exists.")
	f.expect("POST", "/v2.1/os-aggregates", admin, "", map[string]any{"aggregate": map[string]any{"name": ""}}, 400, "badRequest", "name")
	f.expect("POST", "/v2.1/os-aggregates", admin, "", map[string]any{"aggregate": map[string]any{"name": string(make([]byte, 256))}}, 400, "badRequest", "name")
	f.expect("POST", "/v2.1/os-aggregates", admin, "", map[string]any{"aggregate": map[string]any{"name": "x", "availability_zone": "a:b"}}, 400, "badRequest", "availability_zone")
	f.expect("POST", "/v2.1/os-aggregates", admin, "", map[string]any{"aggregate": map[string]any{"name": "x", "hosts": []any{}}}, 400, "badRequest", "hosts")
	f.expect("POST", "/v2.1/os-aggregates", admin, "", map[string]any{"aggregate": map[string]any{}}, 400, "badRequest", "name")

	// Update: name and zone; a zone without a name is refused.
	up := f.expect("PUT", "/v2.1/os-aggregates/"+id, admin, "", map[string]any{"aggregate": map[string]any{"name": "a2", "availability_zone": "z2"}}, 200, "")["aggregate"].(map[string]any)
	if up["name"] != "a2" || up["availability_zone"] != "z2" || up["updated_at"] == nil {
		t.Fatalf("update %v", up)
	}
	f.expect("PUT", "/v2.1/os-aggregates/"+id, admin, "", map[string]any{"aggregate": map[string]any{"availability_zone": nil}}, 400, "badRequest", "empty named availability zone")
	f.expect("PUT", "/v2.1/os-aggregates/"+id, admin, "", map[string]any{"aggregate": map[string]any{}}, 400, "badRequest", "aggregate")
	other := f.aggregate("other", "")
	f.expect("PUT", "/v2.1/os-aggregates/"+other, admin, "", map[string]any{"aggregate": map[string]any{"name": "a2"}}, 409, "conflictingRequest", "Aggregate a2 already exists.")

	// Metadata: set, then a null deletes its key.
	f.aggAction(id, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"k1": "v1", "k2": "v2"}}}, 200, "")
	m := f.aggAction(id, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"k1": nil}}}, 200, "")["aggregate"].(map[string]any)["metadata"]
	if !reflect.DeepEqual(m, map[string]any{"k2": "v2", "availability_zone": "z2"}) {
		t.Fatalf("metadata after delete %v", m)
	}
	f.aggAction(id, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"bad/key": "v"}}}, 400, "badRequest", "metadata")
	f.aggAction(id, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"k": 1}}}, 400, "badRequest", "metadata")
	f.aggAction(id, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"availability_zone": nil}}}, 400, "badRequest", "empty named availability zone")
	f.aggAction(id, map[string]any{"frobnicate": map[string]any{}}, 400, "badRequest", "frobnicate")

	// Hosts: only real nodes; twice is 409; removing a non-member 404.
	f.aggAction(id, map[string]any{"add_host": map[string]any{"host": "nope"}}, 404, "itemNotFound", "Compute host nope could not be found.")
	f.aggAction(id, map[string]any{"add_host": map[string]any{}}, 400, "badRequest", "host")
	withHost := f.aggAction(id, map[string]any{"add_host": map[string]any{"host": "n1"}}, 200, "")["aggregate"].(map[string]any)
	if !reflect.DeepEqual(withHost["hosts"], []any{"n1"}) {
		t.Fatalf("hosts after add %v", withHost["hosts"])
	}
	f.aggAction(id, map[string]any{"add_host": map[string]any{"host": "n1"}}, 409, "conflictingRequest", "already has host n1")
	f.aggAction(id, map[string]any{"remove_host": map[string]any{"host": "n2"}}, 404, "itemNotFound", "Cannot remove host n2")
	f.aggAction(id, map[string]any{"remove_host": map[string]any{"host": "nope"}}, 404, "itemNotFound", "Cannot remove host nope")

	// Delete is refused while hosts remain.
	f.expect("DELETE", "/v2.1/os-aggregates/"+id, admin, "", nil, 400, "badRequest", "not empty")
	f.aggAction(id, map[string]any{"remove_host": map[string]any{"host": "n1"}}, 200, "")
	f.expect("DELETE", "/v2.1/os-aggregates/"+id, admin, "", nil, 200, "")
	f.expect("GET", "/v2.1/os-aggregates/"+id, admin, "", nil, 404, "itemNotFound", "Aggregate "+id+" could not be found.")
	f.expect("DELETE", "/v2.1/os-aggregates/-1", admin, "", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-aggregates/abc", admin, "", nil, 400, "badRequest", "id must be an integer")
	if l := f.expect("GET", "/v2.1/os-aggregates", admin, "", nil, 200, "")["aggregates"].([]any); len(l) != 1 || l[0].(map[string]any)["name"] != "other" {
		t.Fatalf("list after delete: %v", l)
	}
}

func TestAggregatesAdminOnly(t *testing.T) {
	f := newFixture(t)
	id := f.aggregate("a1", "")
	agg := map[string]any{"aggregate": map[string]any{"name": "x"}}
	f.expect("GET", "/v2.1/os-aggregates", alice, "", nil, 403, "forbidden", aggregatesRule+":index")
	f.expect("POST", "/v2.1/os-aggregates", alice, "", agg, 403, "forbidden", aggregatesRule+":create")
	f.expect("GET", "/v2.1/os-aggregates/"+id, alice, "", nil, 403, "forbidden", aggregatesRule+":show")
	f.expect("PUT", "/v2.1/os-aggregates/"+id, alice, "", agg, 403, "forbidden", aggregatesRule+":update")
	f.expect("DELETE", "/v2.1/os-aggregates/"+id, alice, "", nil, 403, "forbidden", aggregatesRule+":delete")
	for _, action := range []string{"add_host", "remove_host", "set_metadata"} {
		f.expect("POST", "/v2.1/os-aggregates/"+id+"/action", alice, "", map[string]any{action: map[string]any{"host": "n1"}}, 403, "forbidden", aggregatesRule+":"+action)
	}
	f.expect("POST", "/v2.1/os-aggregates/"+id+"/action", alice, "", nil, 403, "forbidden")
	if a := computestate.AggregateBySeq(f.local.State.Txn(), 0); a != nil {
		t.Fatalf("aggregate with id 0: %+v", a)
	}
	if n := len(store.All[Aggregate](f.local.State.Txn(), tAggregates, "id")); n != 1 {
		t.Fatalf("%d aggregates after refused requests", n)
	}
}

// zonesOf reads os-availability-zone/detail as zone → its hosts.
func (f *fixture) zonesOf() map[string][]string {
	f.t.Helper()
	out := map[string][]string{}
	for _, z := range f.expect("GET", "/v2.1/os-availability-zone/detail", admin, "", nil, 200, "")["availabilityZoneInfo"].([]any) {
		zm := z.(map[string]any)
		name := zm["zoneName"].(string)
		if name == internalZone {
			continue
		}
		for h := range zm["hosts"].(map[string]any) {
			out[name] = append(out[name], h)
		}
		sort.Strings(out[name])
	}
	return out
}

func TestAggregateZones(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.flavor("tiny", "m1.tiny", 1, 64, 1)
	if z := f.zonesOf(); !reflect.DeepEqual(z, map[string][]string{"nova": {"n1", "n2"}}) {
		t.Fatalf("zones before aggregates: %v", z)
	}
	// A zone without hosts is no zone a server may ask for.
	az1 := f.aggregate("agg1", "az1")
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "x", "imageRef": img1, "flavorRef": "small",
		"networks": []any{map[string]any{"uuid": netA}}, "availability_zone": "az1"}}, 400, "badRequest", "availability zone is not available")

	f.aggAction(az1, map[string]any{"add_host": map[string]any{"host": "n2"}}, 200, "")
	if z := f.zonesOf(); !reflect.DeepEqual(z, map[string][]string{"nova": {"n1"}, "az1": {"n2"}}) {
		t.Fatalf("zones with n2 in az1: %v", z)
	}
	for _, sv := range f.expect("GET", "/v2.1/os-services?binary=nova-compute", admin, "", nil, 200, "")["services"].([]any) {
		s := sv.(map[string]any)
		if want := map[string]string{"n1": "nova", "n2": "az1"}[s["host"].(string)]; s["zone"] != want {
			t.Fatalf("service %v in zone %v, want %s", s["host"], s["zone"], want)
		}
	}

	// A server asking for az1 lands on n2, and says so; one asking for
	// nothing takes its host's zone.
	for i := range 3 {
		id := f.server(alice, fmt.Sprintf("in-az1-%d", i), "availability_zone", "az1", "flavorRef", "tiny")
		if row := f.row(id); row.Host != "n2" || row.AZ != "az1" {
			t.Fatalf("server asking for az1 on %q in %q", row.Host, row.AZ)
		}
		if az := f.show(alice, id, "")["OS-EXT-AZ:availability_zone"]; az != "az1" {
			t.Fatalf("server shows zone %v", az)
		}
	}
	anyID := f.server(alice, "anywhere", "flavorRef", "tiny")
	if row := f.row(anyID); row.AZ != computestate.NodeAZ(f.local.State.Txn(), row.Host, "nova") || row.AZ == "" {
		t.Fatalf("server without a zone on %q in %q", row.Host, row.AZ)
	}

	// A host in two aggregates of different zones: refused on add (409)
	// and on a zone change (400); the same zone is fine.
	az2 := f.aggregate("agg2", "az2")
	f.aggAction(az2, map[string]any{"add_host": map[string]any{"host": "n2"}}, 409, "conflictingRequest", "One or more hosts already in availability zone(s) ['az1']")
	plain := f.aggregate("plain", "")
	f.aggAction(plain, map[string]any{"add_host": map[string]any{"host": "n2"}}, 200, "")
	f.expect("PUT", "/v2.1/os-aggregates/"+plain, admin, "", map[string]any{"aggregate": map[string]any{"availability_zone": "az2"}}, 400, "badRequest", "already in availability zone(s) ['az1']")
	f.aggAction(plain, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"availability_zone": "az2"}}}, 400, "badRequest", "already in availability zone(s)")
	f.expect("PUT", "/v2.1/os-aggregates/"+plain, admin, "", map[string]any{"aggregate": map[string]any{"availability_zone": "az1"}}, 200, "")

	// The zone of servers is not renamed under them.
	f.aggAction(plain, map[string]any{"remove_host": map[string]any{"host": "n2"}}, 200, "")
	f.expect("PUT", "/v2.1/os-aggregates/"+az1, admin, "", map[string]any{"aggregate": map[string]any{"availability_zone": "az9"}}, 400, "badRequest", "contain instances in this zone")
	if z := f.zonesOf(); !reflect.DeepEqual(z, map[string][]string{"nova": {"n1"}, "az1": {"n2"}}) {
		t.Fatalf("zones after refused changes: %v", z)
	}

	// Removing the host puts it back in its own zone; its servers keep
	// the zone they were booted in.
	f.aggAction(az1, map[string]any{"remove_host": map[string]any{"host": "n2"}}, 200, "")
	if z := f.zonesOf(); !reflect.DeepEqual(z, map[string][]string{"nova": {"n1", "n2"}}) {
		t.Fatalf("zones after remove: %v", z)
	}
	for _, sv := range store.All[Server](f.local.State.Txn(), tServers, "host", "n2") {
		if sv.Name != "anywhere" && sv.AZ != "az1" {
			t.Fatalf("server %s moved to zone %q", sv.Name, sv.AZ)
		}
	}
	f.expect("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{"name": "x", "imageRef": img1, "flavorRef": "tiny",
		"networks": []any{map[string]any{"uuid": netA}}, "availability_zone": "az1"}}, 400, "badRequest", "availability zone is not available")
}

// The scheduler reads a node's zone from the aggregates in the apply that
// records the placement, not from what the API sent: a zone given to a
// node after the request was read still holds.
func TestPlacementReadsZoneInApply(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	a := f.aggregate("agg", "far")
	f.aggAction(a, map[string]any{"add_host": map[string]any{"host": "n1"}}, 200, "")
	f.aggAction(a, map[string]any{"add_host": map[string]any{"host": "n2"}}, 200, "")
	// The API sends each node's own zone ("nova"); the server asks for
	// "nova", which no node is in any more.
	hosts, err := f.svc.schedulerHosts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.AZ != "nova" {
			t.Fatalf("API sent zone %q for %s", h.AZ, h.Name)
		}
	}
	sv := Server{ID: "s-1", Name: "s", Project: projA, AZ: "nova", Flavor: Flavor{ID: "small", VCPUs: 1, RAM: 64, Disk: 1}, RootGB: 1,
		Ports: []string{}, Metadata: map[string]string{}, Want: "active"}
	if _, err := f.local.Propose(t.Context(), cmdServerCreate, serverCreateCmd{Servers: []Server{sv}, Hosts: hosts, RequestID: "req-1", Now: f.now}); err != nil {
		t.Fatal(err)
	}
	if row := f.row("s-1"); row.Host != "" || row.Status != "ERROR" {
		t.Fatalf("server asking for a zone no node is in: host %q status %s", row.Host, row.Status)
	}
}

// A snapshot of a cluster from before aggregates (no such table in it)
// restores into today's state: the table is there, empty, and every
// other row is kept.
func TestSnapshotWithoutAggregatesRestores(t *testing.T) {
	old := Schema()
	old.Tables = slices.DeleteFunc(slices.Clone(old.Tables), func(tb store.Table) bool { return tb.Schema.Name == tAggregates })
	local, err := store.NewLocal(append([]store.Schema{old}, withVolumeTables(nil)...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := local.Propose(t.Context(), cmdFlavorCreate, flavorCreateCmd{Flavor: Flavor{ID: "f1", Name: "m1", VCPUs: 1, RAM: 64, Disk: 1}}); err != nil {
		t.Fatal(err)
	}
	first, second, err := store.SnapshotRoundTrip(local.State, append([]store.Schema{Schema()}, withVolumeTables(nil)...)...)
	if err != nil {
		t.Fatalf("restore of a snapshot without aggregates: %v", err)
	}
	if !bytes.Equal(first, second) || !bytes.Contains(second, []byte(`"name":"m1"`)) {
		t.Fatalf("restored state differs:\n%s\n---\n%s", first, second)
	}
}
