package network

import (
	"net/http"
	"strings"
	"testing"
)

// Names and descriptions are text: NUL, CR/LF and other control
// characters, and bytes that are not UTF-8, are refused on every
// resource, on create and on update.
func TestNamesAndDescriptionsMustBeText(t *testing.T) {
	f := newFixture(t)
	nid := f.network(alice, "n")["id"].(string)
	sid := f.subnet(alice, nid, "10.0.0.0/24")["id"].(string)
	pid := f.port(alice, nid)["id"].(string)
	gid := f.mk(alice, "security-groups", "security_group", map[string]any{"name": "g"})["id"].(string)
	resources := map[string]struct {
		coll, key, id string
		create        map[string]any
	}{
		"network":        {"networks", "network", nid, map[string]any{}},
		"subnet":         {"subnets", "subnet", sid, map[string]any{"network_id": nid, "cidr": "10.1.0.0/24", "ip_version": 4}},
		"port":           {"ports", "port", pid, map[string]any{"network_id": nid}},
		"security group": {"security-groups", "security_group", gid, map[string]any{}},
	}
	bad := map[string]string{"NUL": "a\x00b", "CRLF": "a\r\nb", "escape": "a\x1bb", "DEL": "a\x7fb"}
	for rname, rs := range resources {
		for _, field := range []string{"name", "description"} {
			for bname, text := range bad {
				f.run(t, rname+" "+field+" "+bname, func(t *testing.T) {
					obj := map[string]any{field: text}
					for k, v := range rs.create {
						obj[k] = v
					}
					f.expect("POST", "/v2.0/"+rs.coll, alice, map[string]any{rs.key: obj}, 400, "HTTPBadRequest", field)
					f.expect("PUT", "/v2.0/"+rs.coll+"/"+rs.id, alice, map[string]any{rs.key: map[string]any{field: text}}, 400, "HTTPBadRequest", field)
				})
			}
		}
		f.run(t, rname+" name not UTF-8", func(t *testing.T) {
			body := `{"` + rs.key + `": {"name": "a` + "\xff" + `b"}}`
			req, _ := http.NewRequest("PUT", f.srv.URL+"/network/v2.0/"+rs.coll+"/"+rs.id, strings.NewReader(body))
			req.Header.Set("X-Auth-Token", alice)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
		})
	}
	// Unicode text, tabs and newlines are names like any other.
	f.expect("PUT", "/v2.0/networks/"+nid, alice, map[string]any{"network": map[string]any{"name": "réseau ☃\tà\nmoi"}}, 200, "")
	_, got := f.call("GET", "/v2.0/networks/"+nid, alice, nil)
	if got["network"].(map[string]any)["name"] != "réseau ☃\tà\nmoi" {
		t.Fatalf("name %q", got["network"].(map[string]any)["name"])
	}
}

// run runs a subtest whose fixture calls report to it.
func (f *fixture) run(t *testing.T, name string, fn func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		outer := f.t
		f.t = t
		defer func() { f.t = outer }()
		fn(t)
	})
}
