package swift

import (
	"strconv"
)

// Container quotas (Swift's container_quotas middleware): a container's
// X-Container-Meta-Quota-Bytes and X-Container-Meta-Quota-Count bound the
// bytes and the number of objects a write may bring it to. The object
// service enforces them on every write (object.ErrContainerQuota, 413
// "Upload exceeds quota." here); Swift's API checks the values set.

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
