package api

import "strings"

// OptionalStrings are Listing.Filters for string attributes a view leaves
// out when they are unset (a user's "email"): without them, a filter on
// such an attribute would be taken for an unknown parameter and ignored,
// listing every row without it. With them, an unset attribute reads as
// "", so "email=x" and "email__contains=x" leave such rows out, as a
// database's NULL would.
func OptionalStrings(attrs ...string) map[string]Filter {
	out := map[string]Filter{}
	for _, attr := range attrs {
		out[attr] = optionalString(attr, func(s, w string) bool { return s == w })
		for _, op := range stringOps {
			op := op
			out[attr+op.suffix] = optionalString(attr, func(s, w string) bool {
				if op.fold {
					return op.match(strings.ToLower(s), strings.ToLower(w))
				}
				return op.match(s, w)
			})
		}
	}
	return out
}

func optionalString(attr string, match func(s, want string) bool) Filter {
	return func(v View, values []string) (bool, error) {
		s, _ := v[attr].(string)
		for _, w := range values {
			if match(s, w) {
				return true, nil
			}
		}
		return false, nil
	}
}
