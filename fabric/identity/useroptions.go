package identity

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/rackstack/rackstack/fabric/api"
)

// Keystone's user options (the user's "options" object). Each is kept and
// shown; what each does here:
//   - lock_password: the user may not change its own password (403).
//   - multi_factor_auth_enabled with multi_factor_auth_rules: a password
//     login must satisfy a rule (see checkMFA).
//   - the ignore_* options exempt a user from password expiry, the
//     change-on-first-use rule, lockout after failures and inactivity
//     disabling. This cloud has none of those (passwords do not expire,
//     guessing is slowed, never locked out: README), as Keystone with
//     those settings off, where the options are kept and change nothing.
const (
	optLockPassword = "lock_password"
	optMFAEnabled   = "multi_factor_auth_enabled"
	optMFARules     = "multi_factor_auth_rules"
)

var boolUserOptions = []string{
	"ignore_change_password_upon_first_use", "ignore_password_expiry",
	"ignore_lockout_failure_attempts", "ignore_user_inactivity",
	optLockPassword, optMFAEnabled,
}

// authMethods are the auth methods this cloud offers: an MFA rule naming
// another can never be met here, so, as Keystone does with a rule naming
// a method not enabled, it is left out when rules are checked.
var authMethods = []string{"password", "token", "application_credential", "oauth1"}

// readUserOptions reads "options" over old: each option named replaces
// the old one, null removes it (Keystone's merge). An unknown option or a
// value of the wrong type is a 400 naming it.
func readUserOptions(in *api.Input, old map[string]any) map[string]any {
	raw, ok := in.Obj["options"]
	if !ok || in.Err != nil {
		return old
	}
	set, isObj := raw.(map[string]any)
	if !isObj {
		in.Fail(api.BadField("options", "%s is not of type 'object'", jsonText(raw)))
		return old
	}
	out := map[string]any{}
	for k, v := range old {
		out[k] = v
	}
	for k, v := range set {
		field := "options." + k
		switch {
		case v == nil:
			delete(out, k)
		case slices.Contains(boolUserOptions, k):
			b, isBool := v.(bool)
			if !isBool {
				in.Fail(api.BadField(field, "%s is not of type 'boolean'", jsonText(v)))
				return old
			}
			out[k] = b
		case k == optMFARules:
			rules, err := mfaRules(v)
			if err != nil {
				in.Fail(api.BadField(field, "%s", err.Error()))
				return old
			}
			out[k] = rules
		default:
			in.Fail(api.BadField(field, "%q is not a user option", k))
			return old
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// mfaRules reads a list of rules, each a list of distinct method names,
// no two rules the same (Keystone's schema).
func mfaRules(v any) ([][]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s is not of type 'array'", jsonText(v))
	}
	var rules [][]string
	for _, r := range list {
		methods, ok := r.([]any)
		if !ok || len(methods) == 0 {
			return nil, fmt.Errorf("each rule is a non-empty array of method names, not %s", jsonText(r))
		}
		var rule []string
		for _, m := range methods {
			s, ok := m.(string)
			if !ok || s == "" || slices.Contains(rule, s) {
				return nil, fmt.Errorf("each rule is an array of distinct method names, not %s", jsonText(r))
			}
			rule = append(rule, s)
		}
		for _, seen := range rules {
			if slices.Equal(seen, rule) {
				return nil, fmt.Errorf("rule %s is given twice", jsonText(r))
			}
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

// optionSet reports whether the boolean option name is true for u.
func (u *User) optionSet(name string) bool {
	b, _ := u.Options[name].(bool)
	return b
}

// userMFARules are u's MFA rules as stored: [][]string when set by this
// process, []any of []any when read back from a snapshot or the log.
func (u *User) userMFARules() [][]string {
	var out [][]string
	switch rs := u.Options[optMFARules].(type) {
	case [][]string:
		return rs
	case []any:
		for _, r := range rs {
			var rule []string
			if ms, ok := r.([]any); ok {
				for _, m := range ms {
					if s, ok := m.(string); ok {
						rule = append(rule, s)
					}
				}
			}
			out = append(out, rule)
		}
	}
	return out
}

var errMFA = &api.Error{Status: http.StatusUnauthorized, Msg: "Insufficient auth methods received: this user's multi-factor auth rules need more than the methods given."}

// checkMFA lets a login by methods through unless u has MFA enabled and
// rules, of which (leaving out those naming a method this cloud does not
// offer) at least one remains and none is covered by methods. Keystone
// answers that case 401 with an auth receipt to continue from; there are
// no receipts here, so every method of a rule is given in one request.
func checkMFA(u *User, methods []string) error {
	if !u.optionSet(optMFAEnabled) {
		return nil
	}
	usable := 0
	for _, rule := range u.userMFARules() {
		offered := true
		for _, m := range rule {
			offered = offered && slices.Contains(authMethods, m)
		}
		if !offered {
			continue
		}
		usable++
		covered := true
		for _, m := range rule {
			covered = covered && slices.Contains(methods, m)
		}
		if covered {
			return nil
		}
	}
	if usable == 0 {
		return nil
	}
	return errMFA
}
