//go:build integration

package integration

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestSwiftVersionedWrites drives Swift's legacy versioned writes and the
// crossdomain policy on a real rackd with the real swift CLI: a container
// with X-Versions-Location archives each overwritten version and a DELETE
// puts the previous one back; X-History-Location keeps every version and
// a delete marker; an archive of another project is never written.
func TestSwiftVersionedWrites(t *testing.T) {
	testenv.RequireCommand(t, "/usr/bin/swift")
	testenv.RequireCommand(t, "/usr/bin/openstack")
	n := newStorageNode(t, "n1", 3)
	n.start("--bootstrap")
	n.waitHealthy()
	creds := openrc(t, n.dataDir)
	home := t.TempDir()
	aliceT, bobT := twoTenants(t, n.rackd, creds, home)
	alice, bob := aliceT.OS, bobT.OS
	dir := t.TempDir()
	swift := func(env []string, args ...string) string {
		t.Helper()
		return mustTool(t, env, dir, "/usr/bin/swift", args...)
	}
	// upload stores body as container/name through the CLI.
	upload := func(env []string, container, name, body string) (string, error) {
		os.WriteFile(filepath.Join(dir, "f"), []byte(body), 0o644)
		return tool(env, dir, "/usr/bin/swift", "upload", container, "f", "--object-name", name)
	}
	mustUpload := func(container, name, body string) {
		t.Helper()
		if out, err := upload(alice, container, name, body); err != nil {
			t.Fatalf("upload %s/%s: %v\n%s", container, name, err, out)
		}
	}
	// content downloads container/name ("" if the CLI cannot).
	content := func(env []string, container, name string) string {
		t.Helper()
		out := filepath.Join(dir, "got")
		os.Remove(out)
		if _, err := tool(env, dir, "/usr/bin/swift", "download", container, name, "-o", out); err != nil {
			return ""
		}
		b, _ := os.ReadFile(out)
		return string(b)
	}
	lines := func(s string) []string { return strings.Fields(s) }

	// Stack mode: upload twice, the first version is archived; each
	// delete brings the previous one back.
	swift(alice, "post", "arch")
	swift(alice, "post", "-H", "X-Versions-Location: arch", "base")
	if out := swift(alice, "stat", "base"); !strings.Contains(out, "Versions-Location: arch") {
		t.Fatalf("swift stat base does not show the versions location:\n%s", out)
	}
	mustUpload("base", "doc", "first version")
	mustUpload("base", "doc", "second version")
	mustUpload("base", "doc", "third version")
	archived := lines(swift(alice, "list", "arch"))
	if len(archived) != 2 || !strings.HasPrefix(archived[0], "003doc/") || !strings.HasPrefix(archived[1], "003doc/") {
		t.Fatalf("archive after three uploads: %v", archived)
	}
	if got := content(alice, "arch", archived[0]); got != "first version" {
		t.Fatalf("oldest archived version: %q", got)
	}
	if got := content(alice, "base", "doc"); got != "third version" {
		t.Fatalf("current: %q", got)
	}
	swift(alice, "delete", "base", "doc")
	if got := content(alice, "base", "doc"); got != "second version" {
		t.Fatalf("after one delete: %q", got)
	}
	if got := lines(swift(alice, "list", "arch")); len(got) != 1 || got[0] != archived[0] {
		t.Fatalf("archive after one delete: %v", got)
	}
	swift(alice, "delete", "base", "doc")
	if got := content(alice, "base", "doc"); got != "first version" {
		t.Fatalf("after two deletes: %q", got)
	}
	swift(alice, "delete", "base", "doc")
	if got := content(alice, "base", "doc"); got != "" {
		t.Fatalf("after three deletes the object is still there: %q", got)
	}
	if got := swift(alice, "list", "arch"); strings.TrimSpace(got) != "" {
		t.Fatalf("archive after the last delete: %q", got)
	}

	// History mode: a delete archives the object and leaves a marker.
	swift(alice, "post", "-H", "X-History-Location: arch", "hist")
	mustUpload("hist", "log", "v1")
	mustUpload("hist", "log", "v2")
	swift(alice, "delete", "hist", "log")
	if got := content(alice, "hist", "log"); got != "" {
		t.Fatalf("history mode: the deleted object still reads %q", got)
	}
	kept := lines(swift(alice, "list", "arch", "--prefix", "003log/"))
	if len(kept) != 3 || content(alice, "arch", kept[0]) != "v1" || content(alice, "arch", kept[1]) != "v2" {
		t.Fatalf("history archive: %v", kept)
	}
	if out := swift(alice, "stat", "arch", kept[2]); !strings.Contains(out, "application/x-deleted;swift_versions_deleted=1") {
		t.Fatalf("the last entry is not a delete marker:\n%s", out)
	}
	if out, err := tool(alice, dir, "/usr/bin/swift", "post", "-H", "X-Versions-Location: arch", "-H", "X-History-Location: arch", "hist"); err == nil {
		t.Fatalf("both locations at once were accepted:\n%s", out)
	}
	// Turning it off: the next overwrite archives nothing.
	swift(alice, "post", "-H", "X-Remove-History-Location: x", "hist")
	mustUpload("hist", "log", "v3")
	mustUpload("hist", "log", "v4")
	if got := lines(swift(alice, "list", "arch", "--prefix", "003log/")); len(got) != 3 {
		t.Fatalf("an unversioned container archived: %v", got)
	}

	// Project isolation: bob's container of the name alice's versioning
	// names is not her archive; her overwrite is refused and her object
	// kept.
	swift(bob, "post", "nowhere")
	swift(alice, "post", "-H", "X-Versions-Location: nowhere", "iso")
	mustUpload("iso", "o", "kept")
	if out, err := upload(alice, "iso", "o", "lost"); err == nil {
		t.Fatalf("an overwrite with no archive in the project succeeded:\n%s", out)
	}
	if got := content(alice, "iso", "o"); got != "kept" {
		t.Fatalf("after the refused overwrite: %q", got)
	}
	if got := swift(bob, "list", "nowhere"); strings.TrimSpace(got) != "" {
		t.Fatalf("alice's version went into bob's container: %q", got)
	}

	// /info and the crossdomain policy, without a token.
	caps := swift(alice, "capabilities")
	for _, want := range []string{"versioned_writes", "allowed_flags", "crossdomain", "cross_domain_policy"} {
		if !strings.Contains(caps, want) {
			t.Errorf("swift capabilities lacks %s:\n%s", want, caps)
		}
	}
	resp, err := http.Get(n.url() + "/object/crossdomain.xml")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") ||
		!strings.Contains(string(body), "<cross-domain-policy>") || !strings.HasSuffix(string(body), "</cross-domain-policy>") {
		t.Fatalf("crossdomain.xml: %d %v %q", resp.StatusCode, resp.Header, body)
	}
}
