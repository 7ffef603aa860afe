package compute

import (
	"slices"
	"testing"
)

// listIDs are the ids of a server list at version.
func (f *fixture) listIDs(tok, version, query string) []string {
	f.t.Helper()
	var ids []string
	for _, s := range f.expect("GET", "/v2.1/servers"+query, tok, version, nil, 200, "")["servers"].([]any) {
		ids = append(ids, s.(map[string]any)["id"].(string))
	}
	slices.Sort(ids)
	return ids
}

// 2.83: the state, time, key and owner filters, admins' only before,
// are every user's; before it a non-admin's are ignored, as Nova drops
// them.
func TestServerListFilters283(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.expect("POST", "/v2.1/os-keypairs", alice, "", map[string]any{"keypair": map[string]any{"name": "k", "public_key": testPublicKey}}, 200, "")
	a := f.server(alice, "a", "key_name", "k")
	d := f.server(dave, "d")
	f.report(a, Observed{Status: "ACTIVE", PowerState: 1})
	f.report(d, Observed{Status: "ACTIVE", PowerState: 1})
	f.action(dave, d, map[string]any{"os-stop": nil}, 202)
	f.report(d, Observed{Status: "SHUTOFF", PowerState: 4})
	both := []string{a, d}
	slices.Sort(both)
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"?user_id=u-dave", []string{d}},
		{"?key_name=k", []string{a}},
		{"?key_name=zz", nil},
		{"?vm_state=stopped", []string{d}},
		{"?power_state=1", []string{a}},
		{"?power_state=4", []string{d}},
		{"?task_state=spawning", nil},
		{"?availability_zone=nova", both},
		{"?availability_zone=other", nil},
		{"?config_drive=True", both},
		{"?created_at=2026-11-24", both},
		{"?created_at=2020-", nil},
		{"?launched_at=2026-11-24", both},
		{"?terminated_at=2026", nil},
		{"?progress=0", both},
		{"?progress=5", nil},
	} {
		if got := f.listIDs(alice, "2.83", c.query); !slices.Equal(got, c.want) {
			t.Errorf("2.83 %s: %v, want %v", c.query, got, c.want)
		}
		if got := f.listIDs(alice, "2.82", c.query); !slices.Equal(got, both) {
			t.Errorf("2.82 %s (ignored for a non-admin): %v, want %v", c.query, got, both)
		}
		if got := f.listIDs(admin, "2.82", c.query+"&all_tenants=1"); !slices.Equal(got, c.want) {
			t.Errorf("admin 2.82 %s: %v, want %v", c.query, got, c.want)
		}
	}
}
