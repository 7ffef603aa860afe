package compute

import (
	"testing"
)

func TestImportedKeyIsKeptAsGiven(t *testing.T) {
	f := newFixture(t)
	for name, key := range map[string]string{"with-newline": testPublicKey + "\n", "without": testPublicKey} {
		k := f.expect("POST", "/v2.1/os-keypairs", alice, "2.2", map[string]any{"keypair": map[string]any{"name": name, "public_key": key}}, 201, "")["keypair"].(map[string]any)
		if k["public_key"] != key {
			t.Fatalf("create answered %q, imported %q", k["public_key"], key)
		}
		shown := f.expect("GET", "/v2.1/os-keypairs/"+name, alice, "2.2", nil, 200, "")["keypair"].(map[string]any)
		if shown["public_key"] != key || shown["fingerprint"] != k["fingerprint"] {
			t.Fatalf("show: %q (%v), imported %q", shown["public_key"], shown["fingerprint"], key)
		}
	}
}

// 2.92: keypairs are imported only (public_key required), and their
// names may have '@' and '.'; before it those are unsafe, and a keypair
// without a public key is generated.
func TestKeypair292(t *testing.T) {
	f := newFixture(t)
	create := func(version string, kp map[string]any, status int, inMsg ...string) map[string]any {
		t.Helper()
		fault := ""
		if status == 400 {
			fault = "badRequest"
		}
		return f.expect("POST", "/v2.1/os-keypairs", alice, version, map[string]any{"keypair": kp}, status, fault, inMsg...)
	}
	create("2.92", map[string]any{"name": "gen"}, 400, "'public_key' is a required property")
	create("2.92", map[string]any{"name": "a/b", "public_key": testPublicKey}, 400, "name", "does not match")
	create("2.91", map[string]any{"name": "me@host.example", "public_key": testPublicKey}, 400, "unsafe characters")
	got := create("2.92", map[string]any{"name": "me@host.example", "public_key": testPublicKey}, 201)["keypair"].(map[string]any)
	if got["name"] != "me@host.example" || got["private_key"] != nil {
		t.Fatalf("2.92 import: %v", got)
	}
	f.expect("GET", "/v2.1/os-keypairs/me@host.example", alice, "2.92", nil, 200, "")
	f.expect("DELETE", "/v2.1/os-keypairs/me@host.example", alice, "2.92", nil, 204, "")
	if gen := create("2.91", map[string]any{"name": "gen"}, 201)["keypair"].(map[string]any); gen["private_key"] == nil {
		t.Fatalf("2.91 generation: %v", gen)
	}
}
