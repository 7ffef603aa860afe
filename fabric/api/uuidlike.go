package api

import (
	"strconv"
	"strings"
)

// UUIDLike is oslo.utils' is_uuid_like, which the OpenStack services use
// to refuse ids that cannot be one (Cinder's type access projects, Nova's
// security group ids): 32 hex digits once dashes, braces and a urn:uuid:
// prefix are dropped, so a Keystone id without dashes passes.
func UUIDLike(s string) bool {
	t := strings.ToLower(s)
	t = strings.TrimPrefix(strings.TrimPrefix(t, "urn:"), "uuid:")
	t = strings.NewReplacer("-", "", "{", "", "}", "").Replace(t)
	if len(t) != 32 {
		return false
	}
	_, err := strconv.ParseUint(t[:16], 16, 64)
	_, err2 := strconv.ParseUint(t[16:], 16, 64)
	return err == nil && err2 == nil
}
