package swift

import (
	"net/http"
	"strconv"
)

// Container quotas (Swift's container_quotas middleware): a container's
// X-Container-Meta-Quota-Bytes and X-Container-Meta-Quota-Count bound the
// bytes and the number of objects a write may bring it to. A write past
// either is refused with 413 before any byte is stored. As in Swift, the
// check reads the container's counts when the request arrives, so writes
// racing each other may pass it together; a chunked upload, whose size is
// not known in advance, is held to the count only.

// quotaKeys are the quota metadata names (as stored) and Swift's message
// for a value that is not a whole number.
var quotaKeys = map[string]string{"quota-bytes": "Invalid bytes quota.", "quota-count": "Invalid count quota."}

// checkQuotaMeta refuses quota metadata being set that is not a
// non-negative whole number, with Swift's message.
func checkQuotaMeta(set map[string]string) (string, bool) {
	for k, msg := range quotaKeys {
		if v, ok := set[k]; ok {
			if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
				return msg, false
			}
		}
	}
	return "", true
}

// withinQuota reports whether one more object of size bytes (-1: not
// known) fits container's quotas; when it does not, it has answered 413.
// A container that cannot be read is left to the write to report.
func (q *request) withinQuota(container string, size int64) bool {
	if q.overQuota(container, size) {
		fail(q.w, q.r, http.StatusRequestEntityTooLarge, "Upload exceeds quota.")
		return false
	}
	return true
}

// overQuota reports whether one more object of size bytes would exceed
// container's quotas, without answering.
func (q *request) overQuota(container string, size int64) bool {
	c, err := q.h.Store.Container(q.r.Context(), q.project, container)
	if err != nil {
		return false
	}
	limit := func(k string) (int64, bool) {
		v, ok := c.Meta[k]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	over := false
	if n, ok := limit("quota-bytes"); ok && size >= 0 && c.Bytes+size > n {
		over = true
	}
	if n, ok := limit("quota-count"); ok && c.Objects+1 > n {
		over = true
	}
	return over
}
