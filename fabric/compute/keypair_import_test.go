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
