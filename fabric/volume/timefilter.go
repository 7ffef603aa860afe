package volume

import (
	"net/http"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
)

// timeFilter is the created_at or updated_at filter of a volume list.
// From 3.60 its value is comma-separated comparisons, all of which must
// hold: "gt:2024-01-01T00:00:00,lte:2024-02-01T00:00:00" (gt, gte, eq,
// neq, lt, lte; ISO 8601, UTC unless an offset is given), as Cinder's
// _handle_time_comparison_filters reads it. Before, the value is matched
// as it is shown.
func timeFilter(r *http.Request, field string) api.Filter {
	return func(v api.View, want []string) (bool, error) {
		if !atLeast(r, 60) {
			return api.MatchValue(v[field], want), nil
		}
		shown, _ := v[field].(string)
		at, err := time.Parse("2006-01-02T15:04:05.000000", shown)
		if err != nil {
			return false, nil
		}
		for _, w := range want {
			for _, unit := range strings.Split(w, ",") {
				op, text, ok := strings.Cut(strings.TrimSpace(unit), ":")
				if !ok {
					return false, cinderWording{}.BadField(field, w, "Invalid "+field+" value: expected <operator>:<time>, e.g. gt:2024-01-01T00:00:00")
				}
				t, err := parseISOTime(text)
				if err != nil {
					return false, cinderWording{}.BadField(field, w, "Invalid "+field+" value: "+text+" is not an ISO 8601 time")
				}
				var hold bool
				switch op {
				case "gt":
					hold = at.After(t)
				case "gte":
					hold = !at.Before(t)
				case "eq":
					hold = at.Equal(t)
				case "neq":
					hold = !at.Equal(t)
				case "lt":
					hold = at.Before(t)
				case "lte":
					hold = !at.After(t)
				default:
					return false, cinderWording{}.BadField(field, w, "Invalid "+op+" operator: the operators are gt, gte, eq, neq, lt and lte")
				}
				if !hold {
					return false, nil
				}
			}
		}
		return true, nil
	}
}

// parseISOTime reads the ISO 8601 times oslo's parse_isotime takes:
// a date, a date and time with or without fractions, in UTC or with an
// offset.
func parseISOTime(s string) (time.Time, error) {
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, err
}

// consumesQuotaFilter is the consumes_quota filter of volume and
// snapshot lists (3.65): every volume and snapshot here consumes quota,
// so true keeps all and false none. Before 3.65 Cinder drops the
// parameter: it filters nothing.
func consumesQuotaFilter(r *http.Request) api.Filter {
	return func(_ api.View, want []string) (bool, error) {
		if !atLeast(r, 65) {
			return true, nil
		}
		for _, w := range want {
			b, ok := api.ToBool(w)
			if !ok {
				return false, cinderWording{}.BadField("consumes_quota", w, "Value '"+w+"' is not a valid boolean value")
			}
			if !b {
				return false, nil
			}
		}
		return true, nil
	}
}
