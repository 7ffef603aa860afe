package baremetal

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// Microversions 1.1 to 1.maxMinor are served. 1.81 is the node inventory
// API. Before the microversion a resource appeared in, it is absent
// from discovery and answers 404, as in Ironic.
const (
	minMinor = 1
	maxMinor = 81

	headerVersion = "X-OpenStack-Ironic-API-Version"
	headerMin     = "X-OpenStack-Ironic-API-Minimum-Version"
	headerMax     = "X-OpenStack-Ironic-API-Maximum-Version"
)

type versionKey struct{}

// versionOf is the minor microversion a request asked for (1.1 when it
// named none, as Ironic assumes).
func versionOf(ctx context.Context) int {
	if v, ok := ctx.Value(versionKey{}).(int); ok {
		return v
	}
	return minMinor
}

func versionText(minor int) string { return "1." + strconv.Itoa(minor) }

// microversions reads X-OpenStack-Ironic-API-Version, answers 406 (with
// the supported range) for one outside it, and puts the range on every
// answer.
func microversions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set(headerMin, versionText(minMinor))
		h.Set(headerMax, versionText(maxMinor))
		minor, err := parseVersion(r.Header.Get(headerVersion))
		if err != nil {
			api.Fail(w, r, writeError, err)
			return
		}
		h.Set(headerVersion, versionText(minor))
		// Ironic (pecan) serves a collection at "/v1/ports/" as at
		// "/v1/ports", and python-ironicclient asks for the former.
		// An unversioned path is v1's (the bookmark links are such
		// paths, and tempest's client asks for some).
		if p := routePath(r.URL.Path); p != r.URL.Path {
			r = r.Clone(r.Context())
			r.URL.Path, r.URL.RawPath = p, ""
		}
		// Mounted on a chi router, routing goes by the mount's route
		// path rather than the URL.
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePath != "" {
			rc.RoutePath = routePath(rc.RoutePath)
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, minor)))
	})
}

func parseVersion(v string) (int, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "":
		return minMinor, nil
	case "latest":
		return maxMinor, nil
	}
	major, minorText, ok := strings.Cut(v, ".")
	minor, err := strconv.Atoi(minorText)
	if !ok || err != nil || minor < 0 {
		return 0, badRequestf("Invalid value for %s header: %q; expected \"1.<minor>\" or \"latest\".", headerVersion, v)
	}
	if major != "1" {
		return 0, api.Errorf(http.StatusNotAcceptable, "Mutually exclusive versions requested. Version %s requested but not supported by this service. The supported version range is: [%s, %s].",
			v, versionText(minMinor), versionText(maxMinor))
	}
	if minor < minMinor || minor > maxMinor {
		return 0, api.Errorf(http.StatusNotAcceptable, "Version %s was requested but the minor version is not supported by this service. The supported version range is: [%s, %s].",
			v, versionText(minMinor), versionText(maxMinor))
	}
	return minor, nil
}

// version is the one API version, as discovery shows it.
func (s *Service) version(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v1", "status": "CURRENT", "min_version": versionText(minMinor), "version": versionText(maxMinor),
		"links": []any{map[string]any{"href": s.baseURL(r) + "/v1/", "rel": "self"}},
	}
}

func (s *Service) root(w http.ResponseWriter, r *http.Request) error {
	v := s.version(r)
	api.JSON(w, http.StatusOK, map[string]any{
		"name":            "OpenStack Ironic API",
		"description":     "Ironic is an OpenStack project which enables the provision and management of baremetal machines.",
		"default_version": v,
		"versions":        []any{v},
	})
	return nil
}

// resources are the collections this API serves, with the microversion
// each appeared in: only they are linked from /v1.
var resources = []struct {
	name  string
	since int
}{{"chassis", 1}, {"nodes", 1}, {"ports", 1}, {"drivers", 1}, {"portgroups", 23}, {"volume", 32}, {"conductors", 49}, {"allocations", 52}, {"deploy_templates", 55}}

func (s *Service) v1(w http.ResponseWriter, r *http.Request) error {
	base := s.baseURL(r)
	body := map[string]any{
		"id": "v1",
		"links": []any{
			map[string]any{"href": base + "/v1/", "rel": "self"},
			map[string]any{"href": "https://docs.openstack.org/ironic/latest/contributor/webapi.html", "rel": "describedby", "type": "text/html"},
		},
		"media_types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}},
		"version":     s.version(r),
	}
	for _, res := range resources {
		if versionOf(r.Context()) >= res.since {
			body[res.name] = []any{
				map[string]any{"href": base + "/v1/" + res.name + "/", "rel": "self"},
				map[string]any{"href": base + "/" + res.name + "/", "rel": "bookmark"},
			}
		}
	}
	api.JSON(w, http.StatusOK, body)
	return nil
}

// versionError words a field that needs a newer microversion than asked.
func versionError(field string, minor int) error {
	return api.Errorf(http.StatusNotAcceptable, "Request not acceptable: %s needs API version %s or later.", field, fmt.Sprint(versionText(minor)))
}

// routePath is where Ironic routes a request path: without a trailing
// slash (pecan serves "/v1/ports/" as "/v1/ports", and
// python-ironicclient asks for the former) and under /v1 when it names
// no version (pecan's default version).
func routePath(p string) string {
	if len(p) > 1 {
		p = strings.TrimRight(p, "/")
	}
	if p != "/" && p != "" && p != "/v1" && !strings.HasPrefix(p, "/v1/") {
		p = "/v1" + p
	}
	return p
}
