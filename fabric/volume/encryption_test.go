package volume

import (
	"net/http"
	"strings"
	"testing"
)

// Volumes are not encrypted, so no type may claim they are: creating an
// encryption spec is refused with the reason, and reading one says none.
func TestTypeEncryptionIsRefusedNotIgnored(t *testing.T) {
	f := newFixture(t)
	typ := f.expect(http.StatusOK, "POST", "types", admin, map[string]any{"volume_type": map[string]any{"name": "secret"}}).Body["volume_type"].(map[string]any)["id"].(string)
	spec := map[string]any{"encryption": map[string]any{"provider": "luks", "control_location": "front-end", "cipher": "aes-xts-plain64", "key_size": 256}}
	f.expect(http.StatusForbidden, "POST", "types/"+typ+"/encryption", alice, spec)
	f.expect(http.StatusNotFound, "POST", "types/no-such-type/encryption", admin, spec)
	r := f.expect(http.StatusNotImplemented, "POST", "types/"+typ+"/encryption", admin, spec)
	if _, msg := fault(t, r); !strings.Contains(msg, "encryption is not supported") {
		t.Fatalf("refusal %q", msg)
	}
	if got := f.expect(http.StatusOK, "GET", "types/"+typ+"/encryption", admin, nil); len(got.Body) != 0 {
		t.Fatalf("encryption of a type %s", got.Raw)
	}
	f.expect(http.StatusNotFound, "GET", "types/"+typ+"/encryption/provider", admin, nil)
	f.expect(http.StatusNotFound, "DELETE", "types/"+typ+"/encryption/provider", admin, nil)
	if v := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "secret"}); v["encrypted"] != false {
		t.Fatalf("volume of the type: encrypted %v", v["encrypted"])
	}
}
