package volume

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
)

// Microversions 3.0 to 3.maxMinor are served: 3.42 extends attached
// volumes, 3.43 shows backups' metadata, 3.44 completes attachments,
// 3.45 counts lists (with_count), 3.46 makes volumes from Nova's
// snapshot images, 3.47 from backups, 3.48 shows shared_targets and
// service_uuid, 3.49 the back end's state. 3.50 is multiattach through
// a type's "multiattach" spec: served as a clear refusal (a volume
// attaches to one server at a time), as the multiattach flag always
// was. 3.51 takes a backup's availability_zone, 3.52 filters types by
// extra_specs and reserves RESKEY:availability_zones. From 3.53 every
// request body is checked against Cinder's schema of it (bodies.go).
// 3.54 takes an attachment's mode, 3.55 transfers without snapshots
// (no_snapshots), 3.56 shows a backup's user_id, 3.57 a transfer's
// history (source_project_id, destination_project_id, accepted), 3.58 a
// group's and a group snapshot's project_id to admins, 3.59 sorts and
// pages transfer lists. 3.60 filters volume lists by created_at and
// updated_at comparisons, 3.61 shows admins a volume's cluster_name
// (none), 3.62 sets default volume types per project (/default-types),
// 3.63 shows a volume's volume_type_id, 3.64 an encrypted volume's and
// backup's encryption_key_id, 3.65 consumes_quota (always true: there
// are no temporary volumes) with its list filter, 3.66 snapshots in-use
// volumes without force. 3.67 serves the API without the project in the
// URL too (at every version, as Cinder's router does). 3.68 re-images a
// volume (os-reimage). 3.69 lets shared_targets be null: here it is
// known (false: no target is shared), so nothing changes. 3.70
// transfers encrypted volumes (with their snapshots); before, they are
// refused, as Cinder refuses them. 3.71 has os-extend_volume_completion:
// no volume here waits for it (an extend is complete when the blocks
// have grown), so it is refused saying so, as Cinder refuses it for a
// volume that is not waiting.
// User messages (3.3), generic volume groups (3.13, 3.14 from a
// source, 3.20 reset_status) and group snapshots (3.14, 3.19
// reset_status) are built; group replication (3.38) and the other
// resources the range adds that are not (clusters, workers, manageable
// volumes) answer 501, as backups do without an object store.
const (
	minMinor = 0
	maxMinor = 71

	headerVersion = "OpenStack-API-Version"
	service       = "volume"
)

type versionKey struct{}

// atLeast reports whether the request asked for 3.minor or later.
func atLeast(r *http.Request, minor int) bool {
	v, _ := r.Context().Value(versionKey{}).(int)
	return v >= minor
}

func versionText(minor int) string { return "3." + strconv.Itoa(minor) }

// microversions reads "OpenStack-API-Version: volume 3.x", answers 406 for
// a version outside the range, and names the version on every answer.
func microversions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v3") {
			// Version discovery at the root ignores the header, as
			// Cinder's does outside /v3: cinderclient asks it with its
			// own highest version to learn the server's range.
			w.Header().Set(headerVersion, service+" "+versionText(minMinor))
			next.ServeHTTP(w, r)
			return
		}
		minor, err := parseVersion(r.Header.Values(headerVersion))
		if err != nil {
			api.Fail(w, r, writeError, err)
			return
		}
		w.Header().Set(headerVersion, service+" "+versionText(minor))
		w.Header().Add("Vary", headerVersion)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, minor)))
	})
}

// parseVersion reads the volume service's entry of the header (which may
// name other services' versions too).
func parseVersion(values []string) (int, error) {
	want := ""
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			svc, ver, ok := strings.Cut(strings.TrimSpace(part), " ")
			if ok && strings.EqualFold(svc, service) {
				want = strings.TrimSpace(ver)
			}
		}
	}
	switch strings.ToLower(want) {
	case "":
		return minMinor, nil
	case "latest":
		return maxMinor, nil
	}
	major, minorText, ok := strings.Cut(want, ".")
	minor, err := strconv.Atoi(minorText)
	if !ok || err != nil || minor < 0 || major == "" {
		return 0, badRequest("Invalid API version %q in the %s header: expected \"volume 3.<minor>\" or \"volume latest\".", want, headerVersion)
	}
	if major != "3" || minor < minMinor || minor > maxMinor {
		return 0, api.Errorf(http.StatusNotAcceptable, "Version %s is not supported by the API. Minimum is %s and maximum is %s.",
			want, versionText(minMinor), versionText(maxMinor))
	}
	return minor, nil
}

// rootVersions is discovery at the root, 300 Multiple Choices as Cinder
// answers it.
func (s *Service) rootVersions(w http.ResponseWriter, r *http.Request) error {
	api.JSON(w, http.StatusMultipleChoices, s.versionList(r))
	return nil
}

// versions answers discovery under /v3: the one API version, with its
// range.
func (s *Service) versions(w http.ResponseWriter, r *http.Request) error {
	api.JSON(w, http.StatusOK, s.versionList(r))
	return nil
}

func (s *Service) versionList(r *http.Request) map[string]any {
	v := map[string]any{
		"id": "v3.0", "status": "CURRENT", "version": versionText(maxMinor), "min_version": versionText(minMinor),
		"updated": "2023-08-31T00:00:00Z",
		"links": []any{
			map[string]any{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
			map[string]any{"rel": "self", "href": s.baseURL(r) + "/v3/"},
		},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}},
	}
	return map[string]any{"versions": []any{v}}
}
