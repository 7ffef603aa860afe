package compute

import (
	"encoding/base64"
	"strings"
	"testing"
)

// Server attributes Nova validates, keeps and shows, from the conformance
// findings of issue 10 (item 18).

func serverBody(extra ...any) map[string]any {
	sv := map[string]any{"name": "vm", "imageRef": img1, "flavorRef": "small", "networks": []any{map[string]any{"uuid": netA}}}
	for i := 0; i+1 < len(extra); i += 2 {
		sv[extra[i].(string)] = extra[i+1]
	}
	return map[string]any{"server": sv}
}

func TestAccessIPsAreValidatedAndCanonical(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	for name, tc := range map[string]struct {
		field, value string
	}{
		"six octets":      {"accessIPv4", "1.1.1.1.1.1"},
		"v6 as v4":        {"accessIPv4", "2001:db8::1"},
		"v4 as v6":        {"accessIPv6", "192.0.2.1"},
		"not an address":  {"accessIPv6", "nope"},
		"zoned v6":        {"accessIPv6", "fe80::1%eth0"},
		"leading zero v4": {"accessIPv4", "192.0.2.01"},
	} {
		t.Run(name, func(t *testing.T) {
			f.expect("POST", "/v2.1/servers", alice, "", serverBody(tc.field, tc.value), 400, "badRequest", tc.field, tc.value)
		})
	}
	id := f.server(alice, "vm", "accessIPv4", "192.0.2.7", "accessIPv6", "2001:0DB8:0000::0001")
	sv := f.show(alice, id, "")
	if sv["accessIPv4"] != "192.0.2.7" || sv["accessIPv6"] != "2001:db8::1" {
		t.Fatalf("access IPs: %v %v", sv["accessIPv4"], sv["accessIPv6"])
	}
	// The detail list, which a bad value broke, shows them too.
	list := f.expect("GET", "/v2.1/servers/detail", alice, "", nil, 200, "")["servers"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["accessIPv6"] != "2001:db8::1" {
		t.Fatalf("detail: %v", list)
	}
	u := f.expect("PUT", "/v2.1/servers/"+id, alice, "", map[string]any{"server": map[string]any{"accessIPv6": "2001:DB8::A"}}, 200, "")["server"].(map[string]any)
	if u["accessIPv6"] != "2001:db8::a" {
		t.Fatalf("updated accessIPv6: %v", u["accessIPv6"])
	}
	f.expect("PUT", "/v2.1/servers/"+id, alice, "", map[string]any{"server": map[string]any{"accessIPv4": "1.1.1.1.1.1"}}, 400, "badRequest", "accessIPv4")
}

func TestDiskConfigIsKept(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	r := f.expect("POST", "/v2.1/servers", alice, "", serverBody("OS-DCF:diskConfig", "AUTO"), 202, "")
	id := r["server"].(map[string]any)["id"].(string)
	if r["server"].(map[string]any)["OS-DCF:diskConfig"] != "AUTO" {
		t.Fatalf("create answer: %v", r["server"])
	}
	if dc := f.show(alice, id, "")["OS-DCF:diskConfig"]; dc != "AUTO" {
		t.Fatalf("show after create: %v", dc)
	}
	u := f.expect("PUT", "/v2.1/servers/"+id, alice, "", map[string]any{"server": map[string]any{"OS-DCF:diskConfig": "MANUAL"}}, 200, "")["server"].(map[string]any)
	if u["OS-DCF:diskConfig"] != "MANUAL" || f.show(alice, id, "")["OS-DCF:diskConfig"] != "MANUAL" {
		t.Fatalf("update: %v", u["OS-DCF:diskConfig"])
	}
	f.expect("PUT", "/v2.1/servers/"+id, alice, "", map[string]any{"server": map[string]any{"OS-DCF:diskConfig": "SIDEWAYS"}}, 400, "badRequest", "OS-DCF:diskConfig")
	// Without one, a server is MANUAL, as Nova makes it for an image
	// that does not ask for AUTO.
	if dc := f.show(alice, f.server(alice, "plain"), "")["OS-DCF:diskConfig"]; dc != "MANUAL" {
		t.Fatalf("default: %v", dc)
	}
}

// TestPersonalityBelow257: Nova accepts injected files until 2.57 (some
// SDKs always send the attribute), holds them to the injected_files
// quotas, and the server keeps them for its config drive.
func TestPersonalityBelow257(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	motd := map[string]any{"path": "/etc/motd", "contents": base64.StdEncoding.EncodeToString([]byte("hello\n"))}
	r := f.expect("POST", "/v2.1/servers", alice, "2.56", serverBody("personality", []any{motd}), 202, "")
	row := f.row(r["server"].(map[string]any)["id"].(string))
	if len(row.Personality) != 1 || row.Personality[0].Path != "/etc/motd" || row.Personality[0].Contents != motd["contents"] {
		t.Fatalf("personality kept: %+v", row.Personality)
	}
	f.expect("POST", "/v2.1/servers", alice, "", serverBody("personality", []any{}), 202, "")
	f.expect("POST", "/v2.1/servers", alice, "2.57", serverBody("personality", []any{motd}), 400, "badRequest", "personality")
	f.expect("POST", "/v2.1/servers", alice, "", serverBody("personality", []any{map[string]any{"path": "/x", "contents": "%%%"}}), 400, "badRequest", "cannot be decoded")
	f.expect("POST", "/v2.1/servers", alice, "", serverBody("personality", []any{map[string]any{"path": "/x"}}), 400, "badRequest", "contents")
	f.expect("POST", "/v2.1/servers", alice, "", serverBody("personality", []any{map[string]any{"path": "/x", "contents": "", "mode": "0600"}}), 400, "badRequest", "mode")
	six := make([]any, 6)
	for i := range six {
		six[i] = motd
	}
	f.expect("POST", "/v2.1/servers", alice, "", serverBody("personality", six), 403, "forbidden", "Personality file limit exceeded")
	long := map[string]any{"path": "/" + strings.Repeat("p", 255), "contents": ""}
	f.expect("POST", "/v2.1/servers", alice, "", serverBody("personality", []any{long}), 403, "forbidden", "path exceeds maximum 255")
	big := map[string]any{"path": "/big", "contents": base64.StdEncoding.EncodeToString(make([]byte, 10241))}
	f.expect("POST", "/v2.1/servers", alice, "", serverBody("personality", []any{big}), 403, "forbidden", "content exceeds maximum 10240")
}
