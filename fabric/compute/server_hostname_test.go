package compute

import (
	"strings"
	"testing"
)

// 2.90: hostname on create, update and rebuild, Nova's schema checks, one
// hostname for one server only; the guest's hostname (Hostname, what
// the config drive and the metadata service give) follows; from 2.90
// every reader sees OS-EXT-SRV-ATTR:hostname. 2.94 takes an FQDN.
func TestServerHostname(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	body := func(extra map[string]any) map[string]any {
		sv := map[string]any{"name": "web one", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}}}
		for k, v := range extra {
			sv[k] = v
		}
		return map[string]any{"server": sv}
	}
	f.expect("POST", "/v2.1/servers", alice, "2.89", body(map[string]any{"hostname": "db1"}), 400, "badRequest", "'hostname' was unexpected")
	for _, bad := range []any{"x", "-db", "db_1", "db.example.com", strings.Repeat("a", 64), 7} {
		f.expect("POST", "/v2.1/servers", alice, "2.90", body(map[string]any{"hostname": bad}), 400, "badRequest", "hostname")
	}
	f.expect("POST", "/v2.1/servers", alice, "2.90", body(map[string]any{"hostname": "db1", "max_count": 2}), 400, "badRequest",
		"Unable to allocate a single hostname to multiple instances")
	out := f.expect("POST", "/v2.1/servers", alice, "2.90", body(map[string]any{"hostname": "db1"}), 202, "")
	id := out["server"].(map[string]any)["id"].(string)
	if h := Hostname(f.row(id)); h != "db1" {
		t.Fatalf("guest hostname %q, want db1", h)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	show := func(version string) map[string]any {
		return f.expect("GET", "/v2.1/servers/"+id, alice, version, nil, 200, "")["server"].(map[string]any)
	}
	if v := show("2.90"); v["OS-EXT-SRV-ATTR:hostname"] != "db1" {
		t.Fatalf("2.90 owner's view: %v", v["OS-EXT-SRV-ATTR:hostname"])
	}
	if _, ok := show("2.89")["OS-EXT-SRV-ATTR:hostname"]; ok {
		t.Fatal("a non-admin sees the hostname before 2.90")
	}
	// Update: the hostname only, or with the name; the name alone leaves it.
	f.expect("PUT", "/v2.1/servers/"+id, alice, "2.89", map[string]any{"server": map[string]any{"hostname": "db2"}}, 400, "badRequest", "'hostname' was unexpected")
	f.expect("PUT", "/v2.1/servers/"+id, alice, "2.90", map[string]any{"server": map[string]any{"hostname": "db_2"}}, 400, "badRequest", "hostname")
	up := f.expect("PUT", "/v2.1/servers/"+id, alice, "2.90", map[string]any{"server": map[string]any{"hostname": "db2"}}, 200, "")["server"].(map[string]any)
	if up["OS-EXT-SRV-ATTR:hostname"] != "db2" || Hostname(f.row(id)) != "db2" {
		t.Fatalf("after the update: %v / %q", up["OS-EXT-SRV-ATTR:hostname"], Hostname(f.row(id)))
	}
	f.expect("PUT", "/v2.1/servers/"+id, alice, "2.90", map[string]any{"server": map[string]any{"name": "renamed"}}, 200, "")
	if h := Hostname(f.row(id)); h != "db2" {
		t.Fatalf("a rename changed the hostname asked for: %q", h)
	}
	// Rebuild.
	path := "/v2.1/servers/" + id + "/action"
	f.expect("POST", path, alice, "2.89", map[string]any{"rebuild": map[string]any{"imageRef": img1, "hostname": "db3"}}, 400, "badRequest", "hostname")
	f.expect("POST", path, alice, "2.90", map[string]any{"rebuild": map[string]any{"imageRef": img1, "hostname": "d"}}, 400, "badRequest", "hostname")
	rb := f.expect("POST", path, alice, "2.90", map[string]any{"rebuild": map[string]any{"imageRef": img1, "hostname": "db3"}}, 202, "")["server"].(map[string]any)
	if rb["OS-EXT-SRV-ATTR:hostname"] != "db3" || Hostname(f.row(id)) != "db3" {
		t.Fatalf("after the rebuild: %v / %q", rb["OS-EXT-SRV-ATTR:hostname"], Hostname(f.row(id)))
	}
	// A server made without one keeps the name's.
	other := f.expect("POST", "/v2.1/servers", alice, "2.90", body(nil), 202, "")["server"].(map[string]any)["id"].(string)
	if h := Hostname(f.row(other)); h != "web-one" {
		t.Fatalf("derived hostname %q", h)
	}
	if f.maxMinorAtLeast(94) {
		fq := f.expect("POST", "/v2.1/servers", alice, "2.94", body(map[string]any{"hostname": "db4.example.com"}), 202, "")["server"].(map[string]any)["id"].(string)
		if h := Hostname(f.row(fq)); h != "db4.example.com" {
			t.Fatalf("2.94 FQDN hostname %q", h)
		}
		f.expect("POST", "/v2.1/servers", alice, "2.94", body(map[string]any{"hostname": strings.Repeat("a", 256)}), 400, "badRequest", "hostname")
		f.expect("POST", "/v2.1/servers", alice, "2.93", body(map[string]any{"hostname": "db4.example.com"}), 400, "badRequest", "hostname")
	}
}

// maxMinorAtLeast says whether the API serves 2.minor.
func (f *fixture) maxMinorAtLeast(minor int) bool { return maxMinor >= minor }
