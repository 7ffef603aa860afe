// Package swift serves the OpenStack Object Storage (Swift) v1 API on the
// object store: /v1/AUTH_{project}[/{container}[/{object}]], plus /info.
// Errors are Swift's: a status code and a short text body.
package swift

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
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

// policyName is the one storage policy: the cluster's erasure coding.
const policyName = "erasure-coded"

// Handler serves Swift under the prefix the caller strips (so paths start
// with /v1/ or /info).
type Handler struct {
	Store *object.Service
	Auth  api.Authenticator
	// Realms are the container sync realms (realms.go); nil or empty:
	// container sync is off, and /info does not list it.
	Realms *Realms
	Log    *slog.Logger     // nil: slog.Default()
	Now    func() time.Time // nil: time.Now (temp URL expiry)
	// SendStall is how long a GET waits for the client to take each
	// write of the body before it gives up on it (default one minute): a
	// client that stops reading must not hold the blocks the object is
	// read into.
	SendStall time.Duration
}

func (h *Handler) sendStall() time.Duration {
	if h.SendStall > 0 {
		return h.SendStall
	}
	return time.Minute
}

func (h *Handler) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Every Swift response names its transaction and has a content type,
	// even when it has no body.
	w.Header().Set("X-Trans-Id", transID(api.RequestID(r.Context()), time.Now()))
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	if r.URL.Path == "/info" || r.URL.Path == "/info/" {
		h.info(w, r)
		return
	}
	if r.URL.Path == "/crossdomain.xml" && r.Method == http.MethodGet {
		crossDomain(w)
		return
	}
	if r.URL.Path == "/healthcheck" {
		healthcheck(w, r)
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
	// A form upload is judged by its signature alone, token or not, as
	// Swift's formpost middleware (ahead of auth) judges it.
	if isFormPost(r) {
		req.formPost()
		return
	}
	// A container sync request is judged by its signature alone, as
	// Swift's container_sync middleware (ahead of auth) judges it.
	if auth := r.Header.Get(syncAuthHeader); auth != "" {
		if !req.authorizeSync(auth) {
			return
		}
	} else if t, ok, err := tempURLOf(r); ok {
		// A request with temp URL parameters is judged by them alone,
		// token or not, as Swift's tempurl middleware (ahead of auth in
		// its pipeline) judges it: an expired or wrong one is a 401 even
		// for a caller whose token could read the object.
		if !req.authorizeTempURL(t, err) {
			return
		}
	} else if req.webMode() && req.staticWeb() {
		return
	} else if !req.authorize() {
		return
	}
	if container != "" && req.refuseUnbuilt() {
		return
	}
	switch {
	case container == "" && r.URL.Query().Has("bulk-delete") && (r.Method == http.MethodPost || r.Method == http.MethodDelete):
		req.bulkDelete()
	case r.Method == http.MethodPut && r.URL.Query().Has("extract-archive"):
		req.extractArchive()
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
	// synced: a container sync request with a valid signature
	// (csync.go); syncedAt its X-Timestamp, the source's time of what
	// it writes (zero if it sent none).
	synced   bool
	syncedAt time.Time
}

// transID formats a request id as Swift does its transaction ids:
// "tx" + 21 hex digits + "-" + the time as 10 hex digits.
func transID(requestID string, now time.Time) string {
	hexID := strings.ReplaceAll(strings.TrimPrefix(requestID, "req-"), "-", "")
	for len(hexID) < 21 {
		hexID += "0"
	}
	return fmt.Sprintf("tx%s-%010x", hexID[:21], now.Unix())
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
	case errors.Is(err, object.ErrContainerQuota):
		fail(q.w, q.r, http.StatusRequestEntityTooLarge, "Upload exceeds quota.")
		return
	case errors.Is(err, blob.ErrSource) && errors.Is(err, os.ErrDeadlineExceeded):
		fail(q.w, q.r, http.StatusRequestTimeout, "Request Timeout: the body came too slowly")
		return
	case errors.Is(err, blob.ErrSource):
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: reading the body failed")
		return
	case errors.Is(err, object.ErrNoDisks):
		fail(q.w, q.r, http.StatusServiceUnavailable, "Service Unavailable: no storage disks are registered")
		return
	case errors.Is(err, object.ErrUnreadable):
		fail(q.w, q.r, http.StatusServiceUnavailable, "Service Unavailable: the object's data cannot be read now")
		return
	case errors.Is(err, blob.ErrQuorum):
		fail(q.w, q.r, http.StatusServiceUnavailable, "Service Unavailable: too few disks answered to store the object safely")
		return
	}
	status := api.StatusOf(err)
	msg := http.StatusText(status)
	switch {
	case status == http.StatusConflict:
		msg += ": There was a conflict when trying to complete your request. (" + err.Error() + ")"
	case status < 500:
		msg += ": " + err.Error()
	}
	fail(q.w, q.r, status, msg)
}

// authorize checks the token against the account, letting anonymous reads
// through to containers whose read ACL is public.
func (q *request) authorize() bool {
	if tok := q.r.Header.Get("X-Auth-Token"); tok != "" {
		p, err := q.h.Auth.Validate(q.r.Context(), tok)
		if errors.Is(err, store.ErrNoLeader) {
			// This node could not confirm its state is current enough
			// to check tokens (a leader election, a node catching up):
			// not the client's fault, and its token may well be good.
			fail(q.w, q.r, http.StatusServiceUnavailable, "Service Unavailable: this node cannot check tokens until it reaches the cluster leader; retry shortly")
			return false
		}
		if err != nil {
			fail(q.w, q.r, http.StatusUnauthorized, "Unauthorized: the token is not valid")
			return false
		}
		// An application credential's access rules name paths under the
		// object-store endpoint (/v1/AUTH_...).
		if !p.Permits("object-store", q.r.Method, q.r.URL.Path) {
			fail(q.w, q.r, http.StatusUnauthorized, "Unauthorized: the application credential's access rules do not allow this request")
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
	if q.container != "" {
		c, err := q.h.Store.Container(q.r.Context(), q.project, q.container)
		switch {
		case err != nil:
		case !write && publicRead(c.ReadACL, q.name == ""):
			return true
		case !write && q.who != nil && granted(c.ReadACL, q.who):
			return true
		case write && q.name != "" && q.r.Method != "COPY" && q.who != nil && granted(c.WriteACL, q.who):
			// Write grants cover objects, not the container itself.
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

// granted reports whether a container ACL names the caller: entries are
// "project:user" with ids or names, and either side may be "*".
func granted(acl string, p *api.Principal) bool {
	for _, e := range strings.Split(acl, ",") {
		proj, user, ok := strings.Cut(strings.TrimSpace(e), ":")
		if !ok || strings.HasPrefix(proj, ".") {
			continue
		}
		projOK := proj == "*" || (p.ProjectID != "" && (proj == p.ProjectID || proj == p.ProjectName))
		userOK := user == "*" || user == p.UserID || user == p.UserName
		if projOK && userOK {
			return true
		}
	}
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

// healthcheck answers Swift's healthcheck middleware's probe, which load
// balancers poll without a token: "OK" while this node serves requests.
func healthcheck(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		fail(w, r, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		io.WriteString(w, "OK")
	}
}

func (h *Handler) info(w http.ResponseWriter, r *http.Request) {
	info := map[string]any{
		"swift": map[string]any{
			"version": "rackstack", "max_file_size": maxFileSize, "max_meta_name_length": maxMetaNameLength,
			"max_meta_value_length": maxMetaValueLength, "max_meta_count": maxMetaCount,
			"max_meta_overall_size": maxMetaOverall, "max_container_name_length": maxContainerName,
			"max_object_name_length": maxObjectName, "container_listing_limit": containerListLimit,
			"account_listing_limit": containerListLimit, "strict_cors_mode": true, "policies": []any{map[string]any{"name": policyName, "default": true}},
		},
		"slo":               map[string]any{"max_manifest_segments": maxManifestSegs, "max_manifest_size": 8 << 20, "min_segment_size": 1},
		"bulk_delete":       map[string]any{"max_deletes_per_request": maxBulkDeletes, "max_failed_deletes": maxFailedDeletes},
		"container_quotas":  map[string]any{},
		"formpost":          map[string]any{},
		"staticweb":         map[string]any{},
		"versioned_writes":  map[string]any{"allowed_flags": []string{"x-versions-location", "x-history-location"}},
		"object_versioning": map[string]any{},
		"crossdomain":       map[string]any{"cross_domain_policy": crossDomainPolicy},
		"bulk_upload":       map[string]any{"max_containers_per_extraction": maxExtractContainers, "max_failed_extractions": maxFailedExtractions},
		"tempurl": map[string]any{
			"methods": tempURLMethods, "allowed_digests": []string{"sha1", "sha256", "sha512"},
			"incoming_remove_headers": []string{}, "incoming_allow_headers": []string{},
			"outgoing_remove_headers": []string{"x-object-meta-*"}, "outgoing_allow_headers": []string{"x-object-meta-public-*"},
		},
	}
	if !h.Realms.Empty() {
		info["container_sync"] = h.Realms.info()
	}
	api.JSON(w, http.StatusOK, info)
}

// metaFrom collects the user metadata headers with prefix (e.g.
// "X-Object-Meta-") and checks Swift's limits, with Swift's messages. Names
// are lower-cased and '_' becomes '-', as Swift's WSGI layer does. For
// containers and accounts (emptyRemoves) a header with an empty value, or
// X-Remove-...-Meta-, asks to delete the key; those come back in remove.
// Objects keep empty values.
func metaFrom(h http.Header, prefix string, emptyRemoves bool) (set map[string]string, remove []string, err error) {
	removePrefix := "X-Remove-" + strings.TrimPrefix(prefix, "X-")
	set = map[string]string{}
	total := 0
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(strings.ReplaceAll(k, "_", "-"))
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
		if v == "" && emptyRemoves {
			remove = append(remove, key)
			continue
		}
		if len(key) > maxMetaNameLength {
			return nil, nil, fmt.Errorf("Metadata name too long; max %d", maxMetaNameLength)
		}
		if len(v) > maxMetaValueLength {
			return nil, nil, fmt.Errorf("Metadata value longer than %d", maxMetaValueLength)
		}
		set[key] = v
		total += len(key) + len(v)
	}
	if len(set) > maxMetaCount {
		return nil, nil, fmt.Errorf("Too many metadata items; max %d", maxMetaCount)
	}
	if total > maxMetaOverall {
		return nil, nil, fmt.Errorf("Total metadata too large; max %d", maxMetaOverall)
	}
	return set, remove, nil
}

// mergeMeta applies set and remove to old.
func mergeMeta(old, set map[string]string, remove []string) map[string]string {
	out := map[string]string{}
	for k, v := range old {
		out[k] = v
	}
	// Removals first, then what is set: a request that both removes and
	// sets a key keeps the value set, as Swift's proxy turns removals
	// into empty values that the set headers then overwrite.
	for _, k := range remove {
		delete(out, k)
	}
	for k, v := range set {
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// visibleMeta is the account or container metadata the caller may see:
// the temp URL keys only for those who may write (a key signs writes).
func (q *request) visibleMeta(meta map[string]string) map[string]string {
	if q.who != nil && q.who.CanWrite(q.project) {
		return meta
	}
	out := map[string]string{}
	for k, v := range meta {
		if !isTempURLKey(k) {
			out[k] = v
		}
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

// listFormat is how a listing is written.
type listFormat int

const (
	formatPlain listFormat = iota
	formatJSON
	formatXML
)

// listingFormat reads ?format= or the Accept header. As Swift's
// get_listing_content_type, a format it does not know (tempest asks for
// "txt") means plain text.
func listingFormat(r *http.Request) (listFormat, error) {
	switch f := strings.ToLower(r.URL.Query().Get("format")); f {
	case "json":
		return formatJSON, nil
	case "xml":
		return formatXML, nil
	default:
		accept := r.Header.Get("Accept")
		switch {
		case f != "":
		case strings.Contains(accept, "application/json"):
			return formatJSON, nil
		case strings.Contains(accept, "application/xml"), strings.Contains(accept, "text/xml"):
			return formatXML, nil
		}
		return formatPlain, nil
	}
}

func reverseParam(r *http.Request) bool {
	switch strings.ToLower(r.URL.Query().Get("reverse")) {
	case "true", "1", "yes", "on", "t", "y":
		return true
	}
	return false
}

// listing is what an account or container listing shows: rows with the
// keys of each entry in the order XML writes them.
type listing struct {
	root, name string // XML root element and its name attribute
	rows       []map[string]any
	keys       [][]string
	names      []string
}

func (l *listing) add(name string, keys []string, row map[string]any) {
	l.rows, l.keys, l.names = append(l.rows, row), append(l.keys, keys), append(l.names, name)
}

// writeListing answers a GET with the listing; like Swift, an empty text
// listing and any HEAD are 204, an empty JSON listing is "[]".
func writeListing(w http.ResponseWriter, r *http.Request, f listFormat, l *listing) {
	if r.Method == http.MethodHead || len(l.rows) == 0 && f == formatPlain {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var body []byte
	switch f {
	case formatJSON:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		rows := l.rows
		if rows == nil {
			rows = []map[string]any{}
		}
		body, _ = json.Marshal(rows)
	case formatXML:
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		var b strings.Builder
		b.WriteString(xml.Header)
		fmt.Fprintf(&b, "<%s name=\"%s\">", l.root, xmlEscape(l.name))
		for i, row := range l.rows {
			if sd, ok := row["subdir"]; ok {
				fmt.Fprintf(&b, "<subdir name=\"%s\"><name>%s</name></subdir>", xmlEscape(fmt.Sprint(sd)), xmlEscape(fmt.Sprint(sd)))
				continue
			}
			elem := "object"
			if l.root == "account" {
				elem = "container"
			}
			b.WriteString("<" + elem + ">")
			for _, k := range l.keys[i] {
				fmt.Fprintf(&b, "<%s>%s</%s>", k, xmlEscape(fmt.Sprint(row[k])), k)
			}
			b.WriteString("</" + elem + ">")
		}
		fmt.Fprintf(&b, "</%s>", l.root)
		body = []byte(b.String())
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		body = []byte(strings.Join(l.names, "\n") + "\n")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func xmlEscape(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (q *request) account() {
	acct, err := q.h.Store.Account(q.r.Context(), q.project)
	if err != nil {
		q.failErr(err)
		return
	}
	switch q.r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost:
		set, remove, err := metaFrom(q.r.Header, "X-Account-Meta-", true)
		if err != nil {
			fail(q.w, q.r, http.StatusBadRequest, "Bad Request: "+err.Error())
			return
		}
		if err := q.h.Store.SetAccountMeta(q.r.Context(), q.project, mergeMeta(acct.Meta, set, remove)); err != nil {
			q.failErr(err)
			return
		}
		q.w.WriteHeader(http.StatusNoContent)
		return
	default:
		fail(q.w, q.r, http.StatusMethodNotAllowed, "Method Not Allowed")
		return
	}
	writeMeta(q.w, "X-Account-Meta-", q.visibleMeta(acct.Meta))
	cs, err := q.h.Store.Containers(q.r.Context(), q.project)
	if err != nil {
		q.failErr(err)
		return
	}
	var objects, bytes int64
	for _, c := range cs {
		// Noncurrent versions too: Swift keeps them in a hidden
		// container of the account, which its usage counts.
		objects += c.Objects + c.VersionObjects
		bytes += c.Bytes + c.VersionBytes
	}
	h := q.w.Header()
	h.Set("X-Account-Container-Count", strconv.Itoa(len(cs)))
	h.Set("X-Account-Object-Count", strconv.FormatInt(objects, 10))
	h.Set("X-Account-Bytes-Used", strconv.FormatInt(bytes, 10))
	if len(cs) > 0 {
		h.Set("X-Account-Storage-Policy-"+policyName+"-Container-Count", strconv.Itoa(len(cs)))
		h.Set("X-Account-Storage-Policy-"+policyName+"-Object-Count", strconv.FormatInt(objects, 10))
		h.Set("X-Account-Storage-Policy-"+policyName+"-Bytes-Used", strconv.FormatInt(bytes, 10))
	}
	h.Set("X-Timestamp", timestamp(time.Unix(0, 0)))
	format, limit, ok := q.listParams()
	if !ok {
		return
	}
	qv := q.r.URL.Query()
	prefix, marker, end := qv.Get("prefix"), qv.Get("marker"), qv.Get("end_marker")
	after := func(name string) bool { return name > marker && (end == "" || name < end) }
	if reverseParam(q.r) {
		for i, j := 0, len(cs)-1; i < j; i, j = i+1, j-1 {
			cs[i], cs[j] = cs[j], cs[i]
		}
		after = func(name string) bool { return (marker == "" || name < marker) && name > end }
	}
	l := &listing{root: "account", name: "AUTH_" + q.project}
	for _, c := range cs {
		if !strings.HasPrefix(c.Name, prefix) || !after(c.Name) {
			continue
		}
		if len(l.rows) == limit {
			break
		}
		l.add(c.Name, []string{"name", "count", "bytes", "last_modified"}, map[string]any{
			"name": c.Name, "count": c.Objects, "bytes": c.Bytes, "last_modified": c.Created.UTC().Format("2006-01-02T15:04:05.000000"),
		})
	}
	writeListing(q.w, q.r, format, l)
}

// listParams reads a listing's format and limit, answering bad ones.
func (q *request) listParams() (listFormat, int, bool) {
	format, err := listingFormat(q.r)
	if err != nil {
		fail(q.w, q.r, http.StatusBadRequest, "Bad Request: "+err.Error())
		return 0, 0, false
	}
	limit, err := limitParam(q.r)
	if err != nil {
		fail(q.w, q.r, http.StatusPreconditionFailed, "Precondition Failed: "+err.Error())
		return 0, 0, false
	}
	return format, limit, true
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
