package object

import (
	"errors"
	"strconv"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// ErrContainerQuota is a write that would take its container past the
// quota its metadata sets.
var ErrContainerQuota = errors.New("upload exceeds quota")

// Container quotas (Swift's container_quotas, which also holds for S3
// writes through Swift's s3api): a container's "quota-bytes" and
// "quota-count" metadata bound the bytes and the number of objects a
// write may bring it to. Every object write checks them on the state it
// reads anyway to place the object, before any byte is stored, so a
// front end costs no extra read for them. As in Swift the counts are
// those the write reads: writes racing each other may pass together; a
// write whose size is not known in advance (size < 0: a chunked body
// larger than an inline object) is held to the count only.
// Noncurrent versions of a versioned container count too (versions.go):
// their bytes are stored, and overwrites must not escape the quota.
func checkQuota(tx *memdb.Txn, project, container string, size int64) error {
	c := store.Get[Container](tx, tContainers, containerID(project, container))
	if c == nil {
		return nil // the write reports a missing container itself
	}
	limit := func(k string) (int64, bool) {
		v, ok := c.Meta[k]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	if n, ok := limit("quota-bytes"); ok && size >= 0 && c.Bytes+c.VersionBytes+size > n {
		return ErrContainerQuota
	}
	if n, ok := limit("quota-count"); ok && c.Objects+c.VersionObjects+1 > n {
		return ErrContainerQuota
	}
	return nil
}
