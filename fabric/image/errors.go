package image

import (
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Errors are store errors (so they cross the Raft log with their kind) or
// api errors for the statuses the store has no kind for (413, 415, 410).
// Their text is Glance's message.

func badRequest(format string, args ...any) error { return store.Invalidf(format, args...) }

func forbidden(format string, args ...any) error { return store.Forbiddenf(format, args...) }

func conflict(format string, args ...any) error { return store.Conflictf(format, args...) }

func notFound(id string) error { return store.NotFoundf("No image found with ID %s", id) }

func tooLarge(format string, args ...any) error {
	return api.Errorf(http.StatusRequestEntityTooLarge, format, args...)
}

// badField is a 400 naming the attribute at fault, as Glance's schema
// validation words it.
func badField(field, format string, args ...any) error {
	return store.Invalidf("Provided object does not match schema 'image': %s (attribute %s)", fmt.Sprintf(format, args...), field)
}

// policyDenied is the 403 of a route whose role the caller lacks.
func policyDenied(rule string) error {
	return forbidden("You are not authorized to complete %s action.", rule)
}

// wording words the kit's input errors as Glance's schema validation
// does.
type wording struct{}

func (wording) BadField(field string, _ any, reason string) error {
	return badField(field, "%s", reason)
}

func (wording) Missing(field string) error {
	return badField(field, "'%s' is a required property", field)
}

func readOnly(field string) error { return forbidden("Attribute '%s' is read-only.", field) }

func reserved(field string) error { return forbidden("Attribute '%s' is reserved.", field) }

// writeError writes Glance's error body, which webob shapes by the Accept
// header: JSON for clients that ask for it (openstacksdk, tempest), HTML
// for browsers and clients that accept anything (glanceclient, whose
// error parser wants either HTML or nested JSON objects), else text.
func writeError(w http.ResponseWriter, r *http.Request, p api.Problem) {
	status, msg := p.Status, p.Msg
	code := strconv.Itoa(status) + " " + http.StatusText(status)
	switch errorType(r.Header.Get("Accept")) {
	case "application/json":
		api.JSON(w, status, map[string]any{"code": code, "title": http.StatusText(status), "message": msg})
	case "text/html":
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html>\n <head>\n  <title>%s</title>\n </head>\n <body>\n  <h1>%s</h1>\n  %s<br /><br />\n\n\n\n </body>\n</html>", code, code, html.EscapeString(msg))
	default:
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s\n\n%s\n\n   ", code, msg)
	}
}

// errorType picks text/html or application/json by the client's Accept
// (their q values; text/html on a tie, as webob offers it first), or
// text/plain when it accepts neither.
func errorType(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return "text/html"
	}
	best, bestQ := "text/plain", 0.0
	for _, offer := range []string{"text/html", "application/json"} {
		typ, _, _ := strings.Cut(offer, "/")
		q := 0.0
		for _, part := range strings.Split(accept, ",") {
			mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
			if mt != offer && mt != typ+"/*" && mt != "*/*" {
				continue
			}
			pq := 1.0
			for _, p := range strings.Split(params, ";") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
					if f, err := strconv.ParseFloat(v, 64); err == nil {
						pq = f
					}
				}
			}
			q = max(q, pq)
		}
		if q > bestQ {
			best, bestQ = offer, q
		}
	}
	return best
}
