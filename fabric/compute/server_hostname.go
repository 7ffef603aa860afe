package compute

import (
	"net/http"
	"regexp"

	"github.com/rackstack/rackstack/fabric/api"
)

// A server's hostname (2.90): create, update and rebuild may set it, in
// place of the one derived from the display name; the guest gets it from
// its config drive (built at each boot of a create or rebuild) and the
// metadata service (at once). From 2.94 it may be a fully qualified
// domain name. Server views show it (OS-EXT-SRV-ATTR:hostname) to every
// reader from 2.90, to admins only before.

var (
	hostnamePattern = `^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$`
	fqdnPattern     = `^[a-zA-Z0-9]+[a-zA-Z0-9-.]*[a-zA-Z0-9]+$`
	hostnameRE      = regexp.MustCompile(hostnamePattern)
	fqdnRE          = regexp.MustCompile(fqdnPattern)
)

// readHostname reads the hostname attribute of a create, update or
// rebuild body from 2.90: nil when absent (or before 2.90, where the
// body's schema refuses it).
func readHostname(r *http.Request, in *api.Input) *string {
	if !atLeast(r, 90) || !in.Has("hostname") || in.Err != nil {
		return nil
	}
	max, re, pattern := 63, hostnameRE, hostnamePattern
	if atLeast(r, 94) {
		max, re, pattern = 255, fqdnRE, fqdnPattern
	}
	h := str(in, "hostname", true, 2, max)
	if in.Err == nil && !re.MatchString(h) {
		in.Fail(badField("hostname", h, "'%s' does not match '%s'", h, pattern))
	}
	if in.Err != nil {
		return nil
	}
	return &h
}
