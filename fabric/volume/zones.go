package volume

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// zone is the one availability zone (os-availability-zone lists it).
const zone = "nova"

// Extra specs with a meaning to the API, not only to a back end.
const (
	// multiattachSpec "<is> True" makes a type's volumes attachable to
	// several servers (3.50). Not served: a volume attaches to one
	// server at a time, so such a type's volumes are refused.
	multiattachSpec = "multiattach"
	// zonesSpec lists the zones a type's volumes may be created in,
	// comma-separated (reserved from 3.52).
	zonesSpec = "RESKEY:availability_zones"
)

// userVisibleSpecs are the extra specs a non-admin may filter types by
// (3.52), as in Cinder.
var userVisibleSpecs = []string{zonesSpec, multiattachSpec, "replication_enabled"}

// checkTypeFits refuses a volume of type t in availability zone az ("" is
// the default zone) when t is a multiattach type or does not allow az.
func checkTypeFits(t *volstate.Type, az string) error {
	if isTrue(t.ExtraSpecs[multiattachSpec]) {
		return cinderWording{}.BadField("volume_type", t.Name, "the type's multiattach spec asks for volumes attached to several servers at once, which are not supported: a volume attaches to one server at a time")
	}
	if az == "" {
		az = zone
	}
	if zones, ok := t.ExtraSpecs[zonesSpec]; ok {
		for _, z := range strings.Split(zones, ",") {
			if strings.TrimSpace(z) == az {
				return nil
			}
		}
		return badRequest("Invalid input received: The availability zone %s is not allowed by volume type %s (its %s is %q).", az, t.Name, zonesSpec, zones)
	}
	return nil
}

// isTrue reads a capability spec as Cinder's scheduler does: "<is> True"
// or plain "True".
func isTrue(spec string) bool {
	s := strings.TrimSpace(spec)
	s = strings.TrimSpace(strings.TrimPrefix(s, "<is>"))
	return strings.EqualFold(s, "true")
}

// typeSpecFilter reads the extra_specs filter of a type list (3.52): a
// JSON (or Python-literal) object of spec values a type must all have.
// A non-admin may filter only by the user-visible specs.
func typeSpecFilter(r *http.Request) (map[string]string, error) {
	raw := r.URL.Query().Get("extra_specs")
	if raw == "" || !atLeast(r, 52) {
		return nil, nil
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(raw, "'", `"`)), &want); err != nil {
		return nil, cinderWording{}.BadField("extra_specs", raw, "is not an object of spec names and values")
	}
	out := map[string]string{}
	for k, v := range want {
		if !principal(r).IsAdmin() && !contains(userVisibleSpecs, k) {
			return nil, cinderWording{}.BadField("extra_specs", k, "only "+strings.Join(userVisibleSpecs, ", ")+" may be filtered on by a non-admin")
		}
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		out[k] = s
	}
	return out, nil
}

// hasSpecs reports whether t has every spec of want.
func hasSpecs(t *volstate.Type, want map[string]string) bool {
	for k, v := range want {
		if have, ok := t.ExtraSpecs[k]; !ok || have != v {
			return false
		}
	}
	return true
}

// backupZone reads a backup's availability_zone (3.51: where the backup
// service runs, which may differ from the volume's in Cinder). Before
// 3.51 Cinder's schema refuses the field; here the one zone is the only
// answer.
func backupZone(r *http.Request, in *api.Input) {
	if !in.Has("availability_zone") || in.Err != nil {
		return
	}
	if !atLeast(r, 51) {
		in.Fail(in.Word.BadField("availability_zone", in.Str("availability_zone", "", 255), "is accepted from microversion 3.51"))
		return
	}
	if az := in.Str("availability_zone", "", 255); in.Err == nil && az != "" && az != zone {
		in.Fail(in.Word.BadField("availability_zone", az, "the only availability zone is "+zone))
	}
}
