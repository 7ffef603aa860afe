// Package swift serves the OpenStack Object Storage (Swift) v1 API on the
// object store: /v1/AUTH_{project}[/{container}[/{object}]], plus /info.
// Errors are Swift's: a status code and a short text body.
package swift

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object"
)

// Limits, as Swift's defaults (reported by /info).
const (
	maxFileSize        = 5 << 30
	maxMetaNameLength  = 128
	maxMetaValueLength = 256
	maxMetaCount       = 90
	maxMetaOverall     = 4096
	maxContainerName   = 256
	maxObjectName      = 1024
	containerListLimit = 10000
	maxManifestSegs    = 1000
)

// Handler serves Swift under the prefix the caller strips (so paths start
// with /v1/ or /info).
type Handler struct {
	Store *object.Service
	Auth  api.Authenticator
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/info" || r.URL.Path == "/info/" {
		h.info(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		fail(w, r, http.StatusNotFound, "Not Found")
		return
	}
	account, rest, _ := strings.Cut(rest, "/")
	project, ok := strings.CutPrefix(account, "AUTH_")
	if !ok || project == "" {
		fail(w, r, http.StatusNotFound, "Not Found: accounts are AUTH_{project_id}")
		return
	}
	container, name, _ := strings.Cut(rest, "/")
	if container == "" && name != "" {
		fail(w, r, http.StatusBadRequest, "Bad Request: the container name must not be empty")
		return
	}
	req := &request{h: h, w: w, r: r, project: project, container: container, name: name}
	if !req.authorize() {
		return
	}
	switch {
	case container == "":
		req.account()
	case name == "":
		req.containerOp()
	default:
		req.objectOp()
	}
}

// request is one Swift call being served.
type request struct {
	h         *Handler
	w         http.ResponseWriter
	r         *http.Request
	project   string
	container string
	name      string
	who       *api.Principal // nil for anonymous access to a public container
}

func fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintln(w, msg)
	}
}

// failErr maps a service error to Swift's status and text.
func (q *request) failErr(err error) {
	switch {
	case errors.Is(err, object.ErrIncomplete):
		fail(q.w, q.r, 499, "Client Disconnect: the body was shorter than Content-Length")
		return
	case errors.Is(err, object.ErrBadDigest):
		fail(q.w, q.r, http.StatusUnprocessableEntity, "Unprocessable Entity: the ETag does not match the body")
		return
	case errors.Is(err, blob.ErrSource):
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: reading the body failed")
		return
	case errors.Is(err, object.ErrNoDisks):
		fail(q.w, q.r, http.StatusServiceUnavailable, "Service Unavailable: no storage disks are registered")
		return
	case errors.Is(err, blob.ErrQuorum):
		fail(q.w, q.r, http.StatusServiceUnavailable, "Service Unavailable: too few disks answered to store the object safely")
		return
	}
	status := api.StatusOf(err)
	msg := http.StatusText(status)
	if status < 500 {
		msg += ": " + err.Error()
	}
	fail(q.w, q.r, status, msg)
}

// authorize checks the token against the account, letting anonymous reads
// through to containers whose read ACL is public.
func (q *request) authorize() bool {
	if tok := q.r.Header.Get("X-Auth-Token"); tok != "" {
		p, err := q.h.Auth.Validate(q.r.Context(), tok)
		if err != nil {
			fail(q.w, q.r, http.StatusUnauthorized, "Unauthorized: the token is not valid")
			return false
		}
		q.who = p
	}
	write := q.r.Method != http.MethodGet && q.r.Method != http.MethodHead
	if q.who != nil {
		if write && q.who.CanWrite(q.project) || !write && q.who.CanRead(q.project) {
			return true
		}
	}
	if !write && q.container != "" {
		if c, err := q.h.Store.Container(q.r.Context(), q.project, q.container); err == nil && publicRead(c.ReadACL, q.name == "") {
			return true
		}
	}
	if q.who == nil {
		q.w.Header().Set("Www-Authenticate", `Swift realm="AUTH_`+q.project+`"`)
		fail(q.w, q.r, http.StatusUnauthorized, "Unauthorized: this server could not verify that you are authorized to access the document you requested")
		return false
	}
	fail(q.w, q.r, http.StatusForbidden, "Forbidden: access was denied to this resource")
	return false
}

// publicRead reports whether a container read ACL lets anyone read objects
// (".r:*") or, for listings, also list (".rlistings").
func publicRead(acl string, listing bool) bool {
	var referrer, listings bool
	for _, e := range strings.Split(acl, ",") {
		switch strings.TrimSpace(e) {
		case ".r:*":
			referrer = true
		case ".rlistings":
			listings = true
		}
	}
	return referrer && (!listing || listings)
}

func (h *Handler) info(w http.ResponseWriter, r *http.Request) {
	api.JSON(w, http.StatusOK, map[string]any{
		"swift": map[string]any{
			"version": "rackstack", "max_file_size": maxFileSize, "max_meta_name_length": maxMetaNameLength,
			"max_meta_value_length": maxMetaValueLength, "max_meta_count": maxMetaCount,
			"max_meta_overall_size": maxMetaOverall, "max_container_name_length": maxContainerName,
			"max_object_name_length": maxObjectName, "container_listing_limit": containerListLimit,
			"account_listing_limit": containerListLimit, "strict_cors_mode": true, "policies": []any{map[string]any{"name": "erasure-coded", "default": true}},
		},
		"slo": map[string]any{"max_manifest_segments": maxManifestSegs, "max_manifest_size": 8 << 20, "min_segment_size": 1},
	})
}

// metaFrom collects the user metadata headers with prefix (e.g.
// "X-Object-Meta-") and checks Swift's limits. A header with an empty
// value (or X-Remove-...-Meta-) asks to delete the key; those come back in
// remove.
func metaFrom(h http.Header, prefix string) (set map[string]string, remove []string, err error) {
	removePrefix := "X-Remove-" + strings.TrimPrefix(prefix, "X-")
	set = map[string]string{}
	total := 0
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		if key, ok := strings.CutPrefix(ck, removePrefix); ok && key != "" {
			remove = append(remove, strings.ToLower(key))
			continue
		}
		key, ok := strings.CutPrefix(ck, prefix)
		if !ok || key == "" {
			continue
		}
		v := strings.Join(vs, ",")
		key = strings.ToLower(key)
		if v == "" {
			remove = append(remove, key)
			continue
		}
		if len(key) > maxMetaNameLength {
			return nil, nil, fmt.Errorf("metadata name too long; max %d: %s", maxMetaNameLength, key)
		}
		if len(v) > maxMetaValueLength {
			return nil, nil, fmt.Errorf("metadata value longer than %d: %s", maxMetaValueLength, key)
		}
		set[key] = v
		total += len(key) + len(v)
	}
	if len(set) > maxMetaCount {
		return nil, nil, fmt.Errorf("too many metadata items; max %d", maxMetaCount)
	}
	if total > maxMetaOverall {
		return nil, nil, fmt.Errorf("total metadata too large; max %d", maxMetaOverall)
	}
	return set, remove, nil
}

// mergeMeta applies set and remove to old.
func mergeMeta(old, set map[string]string, remove []string) map[string]string {
	out := map[string]string{}
	for k, v := range old {
		out[k] = v
	}
	for k, v := range set {
		out[k] = v
	}
	for _, k := range remove {
		delete(out, k)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func writeMeta(w http.ResponseWriter, prefix string, meta map[string]string) {
	for k, v := range meta {
		w.Header().Set(prefix+k, v)
	}
}

func timestamp(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', 5, 64)
}

// wantJSON reports whether a listing should be JSON (format=json or an
// Accept header asking for it); text/plain otherwise.
func wantJSON(r *http.Request) (json bool, err error) {
	switch f := r.URL.Query().Get("format"); f {
	case "json":
		return true, nil
	case "", "plain":
		return f == "" && strings.Contains(r.Header.Get("Accept"), "application/json"), nil
	default:
		return false, fmt.Errorf("format %q is not supported (json, plain)", f)
	}
}

func limitParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return containerListLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("limit must be a non-negative integer")
	}
	if n > containerListLimit {
		return 0, fmt.Errorf("maximum limit is %d", containerListLimit)
	}
	return n, nil
}

// writeListing answers a GET with the listing; like Swift, an empty text
// listing and any HEAD are 204 and an empty JSON listing is "[]".
func writeListing(w http.ResponseWriter, r *http.Request, asJSON bool, rows []map[string]any, names []string) {
	if r.Method == http.MethodHead || len(rows) == 0 && !asJSON {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if asJSON {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if rows == nil {
			rows = []map[string]any{}
		}
		b, _ := json.Marshal(rows)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		return
	}
	body := strings.Join(names, "\n") + "\n"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(body))
}

func (q *request) account() {
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		fail(q.w, q.r, http.StatusMethodNotAllowed, "Method Not Allowed: account metadata is not supported")
		return
	}
	cs, err := q.h.Store.Containers(q.r.Context(), q.project)
	if err != nil {
		q.failErr(err)
		return
	}
	var objects, bytes int64
	for _, c := range cs {
		objects += c.Objects
		bytes += c.Bytes
	}
	h := q.w.Header()
	h.Set("X-Account-Container-Count", strconv.Itoa(len(cs)))
	h.Set("X-Account-Object-Count", strconv.FormatInt(objects, 10))
	h.Set("X-Account-Bytes-Used", strconv.FormatInt(bytes, 10))
	h.Set("X-Timestamp", timestamp(time.Unix(0, 0)))
	asJSON, err := wantJSON(q.r)
	if err != nil {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: "+err.Error())
		return
	}
	limit, err := limitParam(q.r)
	if err != nil {
		fail(q.w, q.r, http.StatusPreconditionFailed, "Precondition Failed: "+err.Error())
		return
	}
	qv := q.r.URL.Query()
	prefix, marker, end := qv.Get("prefix"), qv.Get("marker"), qv.Get("end_marker")
	var rows []map[string]any
	var names []string
	for _, c := range cs {
		if !strings.HasPrefix(c.Name, prefix) || c.Name <= marker || (end != "" && c.Name >= end) {
			continue
		}
		if len(rows) == limit {
			break
		}
		rows = append(rows, map[string]any{"name": c.Name, "count": c.Objects, "bytes": c.Bytes, "last_modified": c.Created.UTC().Format("2006-01-02T15:04:05.000000")})
		names = append(names, c.Name)
	}
	writeListing(q.w, q.r, asJSON, rows, names)
}
