package volume

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// backendCaps are the back end's capabilities as Cinder's scheduler
// matches a type's extra specs against them (the values the pool list
// shows, as strings).
var backendCaps = map[string]string{
	"volume_backend_name": backendName, "vendor_name": vendorName, "storage_protocol": "nbd", "driver_version": "1.0",
	"pool_name": "block", "thin_provisioning_support": "True", "thick_provisioning_support": "False",
	"QoS_support": "False", "multiattach": "False",
}

// unschedulable says why no back end takes a volume of type t, as
// Cinder's CapabilitiesFilter decides: every unscoped (or
// "capabilities:"-scoped) spec naming a capability the back end reports
// must match it. Other scopes are another component's. Unlike Cinder, a
// spec naming a capability the back end does not report is let pass, so
// an operator's own spec keys do not make a type unusable; multiattach
// is refused before this, with its own reason.
func unschedulable(t *volstate.Type) string {
	for key, req := range t.ExtraSpecs {
		name := strings.TrimPrefix(key, "capabilities:")
		if strings.Contains(name, ":") || name == multiattachSpec {
			continue
		}
		have, ok := backendCaps[name]
		if !ok {
			continue
		}
		if !specMatches(have, req) {
			return fmt.Sprintf("No valid backend was found: the back end's %s is %q, the type asks for %q.", name, have, req)
		}
	}
	return ""
}

// specMatches is Cinder's extra_specs_ops: "<is> True", "<in> sub",
// "<or> a <or> b", "s==" and the other string comparisons, "==", ">=",
// "<=" numerically ("=" is at least, as in Cinder), and plain equality.
func specMatches(have, req string) bool {
	words := strings.Fields(req)
	if len(words) == 0 {
		return have == req
	}
	op, arg := words[0], strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(req), words[0]))
	switch op {
	case "<is>":
		return strings.EqualFold(have, arg)
	case "<in>":
		return strings.Contains(have, arg)
	case "<or>":
		for _, alt := range strings.Split(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(req), "<or>")), "<or>") {
			if strings.TrimSpace(alt) == have {
				return true
			}
		}
		return false
	case "s==":
		return have == arg
	case "s!=":
		return have != arg
	case "s<":
		return have < arg
	case "s<=":
		return have <= arg
	case "s>":
		return have > arg
	case "s>=":
		return have >= arg
	case "==", "=", ">=", "<=":
		h, err1 := strconv.ParseFloat(have, 64)
		w, err2 := strconv.ParseFloat(arg, 64)
		if err1 != nil || err2 != nil {
			return false
		}
		switch op {
		case ">=":
			return h >= w
		case "<=":
			return h <= w
		case "=":
			return h >= w
		}
		return h == w
	}
	return have == req
}
