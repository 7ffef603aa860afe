package compute

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// fipPorts is fakePorts with floating IPs, as the network service keeps
// them: each a project's, seen by its project and an admin, on an
// external network (pools: "public" the default, "other"), associated
// with a port whose subnet is routed there unless unrouted says not.
type fipPorts struct {
	*fakePorts
	mu       sync.Mutex
	fips     map[string]*FloatingIPInfo
	next     int
	unrouted map[string]bool // ports with no router to an external network
	full     bool            // no address left
	quota    int             // floating IPs a project may have (0: any)
}

func newFIPPorts(f *fakePorts) *fipPorts {
	return &fipPorts{fakePorts: f, fips: map[string]*FloatingIPInfo{}, unrouted: map[string]bool{}}
}

func (g *fipPorts) add(project, pool string) FloatingIPInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next++
	f := &FloatingIPInfo{ID: fmt.Sprintf("f%d", g.next), IP: fmt.Sprintf("172.24.4.%d", 10+g.next), Project: project, Pool: pool, Revision: 1}
	g.fips[f.ID] = f
	return *f
}

func (g *fipPorts) get(id string) FloatingIPInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	return *g.fips[id]
}

func sees(p *api.Principal, f *FloatingIPInfo) bool { return p.IsAdmin() || f.Project == p.ProjectID }

func (g *fipPorts) FloatingIPs(_ context.Context, project string) ([]FloatingIPInfo, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []FloatingIPInfo
	for _, f := range g.fips {
		if f.Project == project {
			out = append(out, *f)
		}
	}
	slices.SortFunc(out, func(a, b FloatingIPInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (g *fipPorts) FloatingIP(_ context.Context, p *api.Principal, id string) (FloatingIPInfo, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.fips[id]
	if !ok || !sees(p, f) {
		return FloatingIPInfo{}, store.NotFoundf("Floating IP %s could not be found", id)
	}
	return *f, nil
}

func (g *fipPorts) FloatingIPByAddress(_ context.Context, p *api.Principal, address string) (FloatingIPInfo, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, f := range g.fips {
		if f.IP == address && sees(p, f) {
			return *f, nil
		}
	}
	return FloatingIPInfo{}, store.Fault(store.KindNotFound, "FloatingIpNotFoundForAddress", "Floating IP not found for address %s.", address)
}

func (g *fipPorts) FloatingIPPools(context.Context, *api.Principal) ([]NetworkInfo, error) {
	return []NetworkInfo{{ID: "ext-1", Name: "public"}, {ID: "ext-2"}}, nil
}

func (g *fipPorts) AllocateFloatingIP(_ context.Context, p *api.Principal, pool string) (FloatingIPInfo, error) {
	switch pool {
	case "", "public", "ext-1":
		pool = "public"
	default:
		return FloatingIPInfo{}, store.Fault(store.KindNotFound, "FloatingIpPoolNotFound", "Floating IP pool not found.")
	}
	if g.full {
		return FloatingIPInfo{}, store.Fault(store.KindConflict, "IpAddressGenerationFailure", "No more IP addresses available on network ext-1.")
	}
	if mine, _ := g.FloatingIPs(context.Background(), p.ProjectID); g.quota != 0 && len(mine) >= g.quota {
		return FloatingIPInfo{}, store.Fault(store.KindConflict, "OverQuota", "Quota exceeded for resources: ['floatingip'].")
	}
	return g.add(p.ProjectID, pool), nil
}

func (g *fipPorts) ReleaseFloatingIP(_ context.Context, p *api.Principal, id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.fips[id]
	if !ok || !sees(p, f) {
		return store.NotFoundf("Floating IP %s could not be found", id)
	}
	delete(g.fips, id)
	return nil
}

func (g *fipPorts) SetFloatingIPPort(_ context.Context, p *api.Principal, id, portID, fixedIP string, revision *int) error {
	pt, havePort := g.fakePorts.get(portID)
	g.mu.Lock()
	defer g.mu.Unlock()
	f, ok := g.fips[id]
	switch {
	case !ok || !sees(p, f):
		return store.NotFoundf("Floating IP %s could not be found", id)
	case revision != nil && *revision != f.Revision:
		return store.Fault(store.KindPrecondition, "RevisionNumberConstraintFailed", "Constrained to %d, but current revision is %d", *revision, f.Revision)
	case portID == "":
		f.PortID, f.FixedIP, f.DeviceID = "", "", ""
	case !havePort || !p.IsAdmin() && pt.Project != p.ProjectID:
		return store.NotFoundf("Port %s could not be found.", portID)
	case !slices.Contains(pt.IPs, fixedIP):
		return store.Fault(store.KindInvalid, "", "Port %s does not have fixed ip %s", portID, fixedIP)
	case g.unrouted[portID]:
		return store.Fault(store.KindNotFound, "ExternalGatewayForFloatingIPNotFound", "External network ext-1 is not reachable from subnet s1.")
	default:
		f.PortID, f.FixedIP, f.DeviceID = portID, fixedIP, pt.DeviceID
	}
	f.Revision++
	return nil
}

// Nova's os-floating-ips and os-floating-ip-pools show the network
// service's floating IPs of the caller's project in Nova's view, to
// 2.35; past it they are 404, without the network service's floating
// IPs 501. One project never sees or releases another's.
func TestFloatingIPProxy(t *testing.T) {
	f := newFixture(t)
	fp := newFIPPorts(f.ports)
	f.svc.cfg.Ports = fp
	theirs := fp.add(projB, "public")

	made := f.expect("POST", "/v2.1/os-floating-ips", alice, "2.35", map[string]any{"pool": "public"}, 200, "")["floating_ip"].(map[string]any)
	id := made["id"].(string)
	if made["ip"] != fp.get(id).IP || made["pool"] != "public" || made["fixed_ip"] != nil || made["instance_id"] != nil || fp.get(id).Project != projA {
		t.Fatalf("allocated: %v (%+v)", made, fp.get(id))
	}
	// No body, or no pool: the default pool.
	if v := f.expect("POST", "/v2.1/os-floating-ips", alice, "", nil, 200, "")["floating_ip"].(map[string]any); v["pool"] != "public" {
		t.Fatalf("default pool: %v", v)
	}
	f.expect("POST", "/v2.1/os-floating-ips", alice, "", map[string]any{"pool": "nowhere"}, 404, "itemNotFound", "Floating IP pool not found")
	f.expect("POST", "/v2.1/os-floating-ips", alice, "", map[string]any{"pool": 7}, 400, "badRequest", "pool")
	f.expect("POST", "/v2.1/os-floating-ips", carol, "", nil, 403, "forbidden", "os_compute_api:os-floating-ips:create")
	fp.full = true
	f.expect("POST", "/v2.1/os-floating-ips", alice, "", map[string]any{"pool": "public"}, 404, "itemNotFound", "No more floating IPs in pool public.")
	fp.full, fp.quota = false, 2
	f.expect("POST", "/v2.1/os-floating-ips", alice, "", nil, 403, "forbidden", "IP allocation over quota.")
	fp.quota = 0

	list := f.expect("GET", "/v2.1/os-floating-ips", alice, "2.35", nil, 200, "")["floating_ips"].([]any)
	if len(list) != 2 {
		t.Fatalf("alice's list: %v", list)
	}
	for _, v := range list {
		if v.(map[string]any)["id"] == theirs.ID {
			t.Fatalf("alice lists project B's floating IP: %v", list)
		}
	}
	if v := f.expect("GET", "/v2.1/os-floating-ips/"+id, carol, "", nil, 200, "")["floating_ip"].(map[string]any); v["id"] != id || v["ip"] != made["ip"] {
		t.Fatalf("show: %v", v)
	}
	f.expect("GET", "/v2.1/os-floating-ips/"+theirs.ID, alice, "", nil, 404, "itemNotFound", "Floating IP not found for ID "+theirs.ID)
	f.expect("DELETE", "/v2.1/os-floating-ips/"+theirs.ID, alice, "", nil, 404, "itemNotFound")
	f.expect("GET", "/v2.1/os-floating-ips/"+theirs.ID, admin, "", nil, 200, "")

	pools := f.expect("GET", "/v2.1/os-floating-ip-pools", alice, "2.35", nil, 200, "")["floating_ip_pools"].([]any)
	if fmt.Sprint(pools) != "[map[name:public] map[name:ext-2]]" {
		t.Fatalf("pools: %v", pools)
	}

	f.expect("DELETE", "/v2.1/os-floating-ips/"+id, carol, "", nil, 403, "forbidden")
	f.expect("DELETE", "/v2.1/os-floating-ips/"+id, alice, "2.35", nil, 202, "")
	f.expect("GET", "/v2.1/os-floating-ips/"+id, alice, "", nil, 404, "itemNotFound")
	f.expect("DELETE", "/v2.1/os-floating-ips/"+id, alice, "", nil, 404, "itemNotFound")
	if _, ok := fp.fips[theirs.ID]; !ok {
		t.Fatal("project B's floating IP is gone")
	}

	// Gone from 2.36, as in Nova; 501 without the network's floating IPs.
	for _, c := range []struct{ method, path string }{
		{"GET", "/os-floating-ips"}, {"POST", "/os-floating-ips"}, {"GET", "/os-floating-ips/" + theirs.ID},
		{"DELETE", "/os-floating-ips/" + theirs.ID}, {"GET", "/os-floating-ip-pools"},
	} {
		f.expect(c.method, "/v2.1"+c.path, admin, "2.36", map[string]any{"pool": "public"}, 404, "itemNotFound")
		f.svc.cfg.Ports = f.ports
		f.expect(c.method, "/v2.1"+c.path, admin, "2.35", map[string]any{"pool": "public"}, 501, "notImplemented", "floating IP proxy")
		f.svc.cfg.Ports = fp
	}
	if _, ok := fp.fips[theirs.ID]; !ok {
		t.Fatal("a 404 or 501 DELETE released the floating IP")
	}
	for _, alias := range []string{"os-floating-ips", "os-floating-ip-pools"} {
		f.expect("GET", "/v2.1/extensions/"+alias, alice, "", nil, 200, "")
	}
}

// addFloatingIp associates a floating IP of the caller's with the
// server's port (its first IPv4 address, or fixed_address), through the
// network service; removeFloatingIp disassociates one associated with
// this server. Both are gone from 2.44. Nova's refusals: a bad body
// 400 naming the field, an address not found 404, a fixed address not
// the server's 400, the network's refusal (no router) 400, removing
// one not associated with this server 409.
func TestFloatingIPActions(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	fp := newFIPPorts(f.ports)
	f.svc.cfg.Ports = fp
	f.ports.addNetwork(netA2, "net-a2", projA, false)
	id := f.server(alice, "web", "networks", []any{map[string]any{"uuid": netA}, map[string]any{"uuid": netA2}})
	other := f.server(alice, "db")
	ports := f.row(id).Ports
	p0, _ := f.ports.get(ports[0])
	p1, _ := f.ports.get(ports[1])
	fip := fp.add(projA, "public")
	theirs := fp.add(projB, "public")
	path := "/v2.1/servers/" + id + "/action"
	add := func(body map[string]any) map[string]any { return map[string]any{"addFloatingIp": body} }
	remove := func(address string) map[string]any {
		return map[string]any{"removeFloatingIp": map[string]any{"address": address}}
	}
	unchanged := func() {
		t.Helper()
		if g := fp.get(fip.ID); g.PortID != "" {
			t.Fatalf("a refused action associated the floating IP: %+v", g)
		}
	}

	// Bad bodies name the field.
	f.expect("POST", path, alice, "2.43", add(map[string]any{}), 400, "badRequest", "address", "required")
	f.expect("POST", path, alice, "", add(map[string]any{"address": ""}), 400, "badRequest", "address")
	f.expect("POST", path, alice, "", add(map[string]any{"address": fip.IP, "fixed_address": "x"}), 400, "badRequest", "fixed_address")
	f.expect("POST", path, alice, "", add(map[string]any{"address": fip.IP, "port": "p"}), 400, "badRequest", "'port'")
	f.expect("POST", path, alice, "", map[string]any{"addFloatingIp": "x"}, 400, "badRequest", "addFloatingIp")
	f.expect("POST", path, alice, "", remove("nope"), 400, "badRequest", "address")
	// Not found: the address, another project's floating IP, the server.
	f.expect("POST", path, alice, "", add(map[string]any{"address": "0.0.0.77"}), 404, "itemNotFound", "floating IP not found")
	f.expect("POST", path, alice, "", add(map[string]any{"address": theirs.IP}), 404, "itemNotFound", "floating IP not found")
	f.expect("POST", path, bob, "", add(map[string]any{"address": theirs.IP}), 404, "itemNotFound")
	f.expect("POST", path, carol, "", add(map[string]any{"address": fip.IP}), 403, "forbidden", "os_compute_api:os-floating-ips:add")
	// A fixed address not the server's; a port whose subnet has no router
	// to the floating IP's network.
	f.expect("POST", path, alice, "", add(map[string]any{"address": fip.IP, "fixed_address": "10.9.9.9"}), 400, "badRequest", "Specified fixed address not assigned to instance")
	fp.unrouted[p0.ID] = true
	f.expect("POST", path, alice, "", add(map[string]any{"address": fip.IP}), 400, "badRequest", "Unable to associate floating IP "+fip.IP, "not reachable")
	unchanged()
	fp.unrouted[p0.ID] = false
	// Gone from 2.44.
	f.expect("POST", path, alice, "2.44", add(map[string]any{"address": fip.IP}), 404, "itemNotFound")
	f.expect("POST", path, alice, "2.44", remove(fip.IP), 404, "itemNotFound")
	unchanged()

	// The first IPv4 address, or the one asked for.
	f.expect("POST", path, alice, "2.43", add(map[string]any{"address": fip.IP}), 202, "")
	if g := fp.get(fip.ID); g.PortID != p0.ID || g.FixedIP != p0.IPs[0] || g.DeviceID != id {
		t.Fatalf("associated: %+v, want port %s at %s", g, p0.ID, p0.IPs[0])
	}
	v := f.expect("GET", "/v2.1/os-floating-ips/"+fip.ID, alice, "", nil, 200, "")["floating_ip"].(map[string]any)
	if v["instance_id"] != id || v["fixed_ip"] != p0.IPs[0] {
		t.Fatalf("view of the associated floating IP: %v", v)
	}
	f.expect("POST", path, alice, "", add(map[string]any{"address": fip.IP, "fixed_address": p1.IPs[0]}), 202, "")
	if g := fp.get(fip.ID); g.PortID != p1.ID || g.FixedIP != p1.IPs[0] {
		t.Fatalf("associated at %s: %+v", p1.IPs[0], g)
	}

	// Removing it from another server, or one not associated, is 409.
	f.expect("POST", "/v2.1/servers/"+other+"/action", alice, "", remove(fip.IP), 409, "conflictingRequest", "is not associated with instance "+other)
	spare := fp.add(projA, "public")
	f.expect("POST", path, alice, "", remove(spare.IP), 409, "conflictingRequest", "Floating IP "+spare.IP+" is not associated with instance "+id)
	f.expect("POST", path, alice, "", remove(theirs.IP), 404, "itemNotFound")
	f.expect("POST", path, carol, "", remove(fip.IP), 403, "forbidden", "os_compute_api:os-floating-ips:remove")
	if g := fp.get(fip.ID); g.PortID != p1.ID {
		t.Fatalf("a refused remove disassociated it: %+v", g)
	}
	// Associated with another server, it moves there (Neutron lets Nova
	// move it); the first server no longer has it.
	f.expect("POST", "/v2.1/servers/"+other+"/action", alice, "", add(map[string]any{"address": fip.IP}), 202, "")
	if g := fp.get(fip.ID); g.DeviceID != other {
		t.Fatalf("moved: %+v", g)
	}
	f.expect("POST", path, alice, "", remove(fip.IP), 409, "conflictingRequest")
	f.expect("POST", "/v2.1/servers/"+other+"/action", alice, "2.43", remove(fip.IP), 202, "")
	if g := fp.get(fip.ID); g.PortID != "" || g.FixedIP != "" {
		t.Fatalf("removed: %+v", g)
	}
	f.expect("POST", "/v2.1/servers/"+other+"/action", alice, "", remove(fip.IP), 409, "conflictingRequest")

	// Without the network service's floating IPs: 501, once the server
	// is found.
	f.svc.cfg.Ports = f.ports
	f.expect("POST", path, alice, "", add(map[string]any{"address": fip.IP}), 501, "notImplemented", "addFloatingIp")
	f.expect("POST", path, bob, "", add(map[string]any{"address": fip.IP}), 404, "itemNotFound")
}

// A floating IP moved between removeFloatingIp's reading and its
// disassociation stays where it went: the disassociation is made at the
// revision read, and a reread finds it no longer the server's.
func TestRemoveFloatingIPAfterAMove(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	fp := &movingFIPs{fipPorts: newFIPPorts(f.ports)}
	f.svc.cfg.Ports = fp
	id := f.server(alice, "web")
	other := f.server(alice, "db")
	fip := fp.add(projA, "public")
	path := "/v2.1/servers/" + id + "/action"
	f.expect("POST", path, alice, "", map[string]any{"addFloatingIp": map[string]any{"address": fip.IP}}, 202, "")
	otherPort := f.row(other).Ports[0]
	op, _ := f.ports.get(otherPort)
	fp.moveTo, fp.moveIP = otherPort, op.IPs[0]
	f.expect("POST", path, alice, "", map[string]any{"removeFloatingIp": map[string]any{"address": fip.IP}}, 409, "conflictingRequest")
	if g := fp.get(fip.ID); g.DeviceID != other {
		t.Fatalf("the moved floating IP: %+v, want it on %s", g, other)
	}
}

// movingFIPs moves a floating IP to moveTo just before the first
// disassociation asked at a revision, as a concurrent request would.
type movingFIPs struct {
	*fipPorts
	moveTo, moveIP string
}

func (m *movingFIPs) SetFloatingIPPort(ctx context.Context, p *api.Principal, id, portID, fixedIP string, revision *int) error {
	if m.moveTo != "" && portID == "" {
		to := m.moveTo
		m.moveTo = ""
		if err := m.fipPorts.SetFloatingIPPort(ctx, p, id, to, m.moveIP, nil); err != nil {
			return err
		}
	}
	return m.fipPorts.SetFloatingIPPort(ctx, p, id, portID, fixedIP, revision)
}
