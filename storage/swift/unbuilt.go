package swift

import (
	"net/http"
	"strings"
)

// unbuiltHeaders are the headers of Swift features this cloud does not
// offer (they are not in /info either), by the kind of path they are sent
// to, with what each asks for. A request setting one is refused with 501
// rather than stored and ignored: a client asking for versions, sync or a
// symlink must not be told it has them. (X-Versions-Location and
// X-History-Location, the legacy versioned writes, are built: versions.go;
// X-Versions-Enabled, object versioning, too: objversions.go; container
// sync too: csync.go.)
var unbuiltHeaders = map[string][]struct{ header, feature string }{
	"object": {
		{"X-Symlink-Target", "symlinks"},
		{"X-Symlink-Target-Account", "symlinks"},
	},
}

// refuseUnbuilt answers 501 to a write that sets a header of a feature
// not built (an empty value, which clears it, is let through) and
// reports whether it did.
func (q *request) refuseUnbuilt() bool {
	if q.r.Method != http.MethodPut && q.r.Method != http.MethodPost && q.r.Method != "COPY" {
		return false
	}
	kind := "object"
	if q.name == "" {
		kind = "container"
	}
	for _, h := range unbuiltHeaders[kind] {
		if strings.TrimSpace(q.r.Header.Get(h.header)) != "" {
			fail(q.w, q.r, http.StatusNotImplemented, "Not Implemented: "+h.header+" asks for "+h.feature+", which this cloud does not offer")
			return true
		}
	}
	return false
}
