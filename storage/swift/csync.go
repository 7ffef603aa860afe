package swift

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object"
)

// Container sync, the receiving side and the container headers (Swift's
// container_sync middleware and container server); the sending side is
// syncer.go, the state storage/object/sync.go.

// syncAuthHeader carries "REALM NONCE SIGNATURE" on a sync request.
const syncAuthHeader = "X-Container-Sync-Auth"

// authorizeSync judges a request carrying X-Container-Sync-Auth as Swift's
// container_sync middleware does, token or not: the signature must be the
// realm's key (or key2) over the method, the path, the X-Timestamp, the
// nonce and the sync key of the container the path names. A valid one is
// authorized for that path, and its X-Timestamp becomes the time of what
// it writes (the source's); anything else is 401, and no X-Timestamp of a
// request without it is ever honoured.
func (q *request) authorizeSync(auth string) bool {
	valid := false
	if f := strings.Fields(auth); len(f) == 3 && q.container != "" {
		realmName, nonce, sig := f[0], f[1], f[2]
		if key, key2 := q.h.Realms.keys(realmName); key != "" {
			c, err := q.h.Store.Container(q.r.Context(), q.project, q.container)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				q.failErr(err) // this node cannot read the state now: not the sender's fault
				return false
			}
			if err == nil && c.SyncKey != "" {
				ts := q.r.Header.Get("X-Timestamp")
				if ts == "" {
					ts = "0"
				}
				path := requestPath(q.r)
				for _, k := range []string{key, key2} {
					if k != "" && subtle.ConstantTimeCompare([]byte(sig), []byte(syncSig(q.r.Method, path, ts, nonce, k, c.SyncKey))) == 1 {
						valid = true
					}
				}
			}
		}
	}
	if !valid {
		q.w.Header().Set("Www-Authenticate", `SwiftContainerSync realm="AUTH_`+q.project+`"`)
		fail(q.w, q.r, http.StatusUnauthorized, "X-Container-Sync-Auth header not valid; contact cluster operator for support.")
		return false
	}
	if v := q.r.Header.Get("X-Timestamp"); v != "" {
		t, err := parseTimestamp(v)
		if err != nil {
			fail(q.w, q.r, http.StatusBadRequest, "Bad Request: X-Timestamp should be a UNIX timestamp float value; was "+pyRepr(v))
			return false
		}
		q.syncedAt = t
	}
	q.synced = true
	return true
}

// requestPath is the path of r as Swift's swob gives it (and a sync
// request signs it): as the client sent it, before any mount prefix was
// stripped, decoded and quoted again with Python's quote.
func requestPath(r *http.Request) string {
	p, _, _ := strings.Cut(r.RequestURI, "?")
	if u, err := url.Parse(p); err == nil && u.Path != "" {
		return pyQuote(u.Path)
	}
	return pyQuote(r.URL.Path)
}

// parseTimestamp reads Swift's X-Timestamp ("1700000000.12345", maybe
// with an "_offset" suffix) to its precision of 10 µs.
func parseTimestamp(v string) (time.Time, error) {
	v, _, _ = strings.Cut(strings.TrimSpace(v), "_")
	secs, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || s < 0 || len(frac) > 9 {
		return time.Time{}, fmt.Errorf("bad timestamp %q", v)
	}
	ns := int64(0)
	if frac != "" {
		n, err := strconv.ParseUint((frac + "000000000")[:9], 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad timestamp %q", v)
		}
		ns = int64(n)
	}
	return time.Unix(s, ns).Round(10 * time.Microsecond).UTC(), nil
}

// syncAttrs reads X-Container-Sync-To and X-Container-Sync-Key over c
// (an empty value clears one), refusing a target the realms do not
// know, with Swift's messages, and sync together with object
// versioning (Swift's object_versioning refuses it: its syncer skips
// versioned containers).
func (q *request) syncAttrs(c *object.Container) bool {
	if v, ok := q.r.Header["X-Container-Sync-To"]; ok {
		to := strings.TrimSpace(strings.Join(v, ","))
		t, err := q.h.Realms.syncTo(to)
		if err != nil {
			fail(q.w, q.r, http.StatusBadRequest, "Bad Request: "+err.Error())
			return false
		}
		c.SyncTo = ""
		if t.URL != "" {
			c.SyncTo = to
		}
		if c.SyncTo != "" && c.Versioning != "" {
			fail(q.w, q.r, http.StatusBadRequest, "Bad Request: Cannot configure container sync on a container with object versioning configured.")
			return false
		}
	}
	if v, ok := q.r.Header["X-Container-Sync-Key"]; ok {
		c.SyncKey = strings.TrimSpace(strings.Join(v, ","))
	}
	if c.SyncTo != "" && c.Versioning != "" {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: Cannot enable object versioning on a container configured as source of container syncing.")
		return false
	}
	return true
}

// syncHeaders shows a container's sync target and key to those who may
// set them (Swift's swift_owner_headers), and to no one else.
func (q *request) syncHeaders(h http.Header, c *object.Container) {
	if q.who == nil || !q.who.CanWrite(q.project) {
		return
	}
	if c.SyncTo != "" {
		h.Set("X-Container-Sync-To", c.SyncTo)
	}
	if c.SyncKey != "" {
		h.Set("X-Container-Sync-Key", c.SyncKey)
	}
}

// deleteSynced is a sync request's DELETE: the object goes only if what
// is here is older than the source's delete (409 otherwise, as Swift's
// object server answers). A container with versions of any kind takes
// it as a plain delete.
func (q *request) deleteSynced() {
	ctx := q.r.Context()
	c, err := q.h.Store.Container(ctx, q.project, q.container)
	if err != nil {
		q.failErr(err)
		return
	}
	if c.Versioning != "" || c.Versions != "" {
		if err := q.versionedDelete(q.container, q.name); err != nil {
			q.failErr(err)
			return
		}
		q.w.WriteHeader(http.StatusNoContent)
		return
	}
	if err := q.h.Store.DeleteSynced(ctx, q.project, q.container, q.name, q.syncedAt); err != nil {
		q.failErr(err)
		return
	}
	q.w.WriteHeader(http.StatusNoContent)
}
