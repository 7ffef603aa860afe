package swift

import (
	"archive/tar"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object"
)

// Archive extraction limits, as Swift's bulk middleware defaults (the
// failures) and bounds of our own: one request stores at most
// maxExtractFiles objects, so its Raft commands and its run time stay
// bounded; memory is bounded anyway, as each file streams into the store.
const (
	maxExtractFiles      = 10000
	maxExtractContainers = 10000
	maxFailedExtractions = 1000
)

// extractArchive serves PUT /v1/AUTH_{project}[/container[/prefix]]?extract-archive=tar|tar.gz|tar.bz2
// (Swift's bulk middleware): every regular file of the archive becomes an
// object at the upload path joined with its name, the first part of which
// names the container (made if missing). Files at the archive's top level
// without an upload container are skipped, as Swift skips them. As in
// Swift, the answer is 200 with a report (the bulk delete's format) whose
// "Response Status" says how it went: 201 when every file was stored.
func (q *request) extractArchive() {
	res := bulkResult{extract: true, status: http.StatusCreated}
	defer func() { writeBulkResult(q.w, q.r, res) }()
	if q.who == nil || !q.who.CanWrite(q.project) {
		// Container write grants cover one container's objects; an
		// archive may name any container.
		res.status, res.body = http.StatusForbidden, "Forbidden"
		return
	}
	var body io.Reader = q.r.Body
	switch format := q.r.URL.Query().Get("extract-archive"); format {
	case "tar":
	case "tar.gz", "tgz":
		z, err := gzip.NewReader(q.r.Body)
		if err != nil {
			res.status, res.body = http.StatusBadRequest, "Invalid Tar File: "+err.Error()
			return
		}
		defer z.Close()
		body = z
	case "tar.bz2", "tbz2":
		body = bzip2.NewReader(q.r.Body)
	default:
		res.status, res.body = http.StatusBadRequest, "Unsupported archive format"
		return
	}
	base := strings.TrimRight(q.container+"/"+q.name, "/")
	a, ok := q.extractAttrs()
	if !ok {
		res.status, res.body = http.StatusBadRequest, "Invalid metadata"
		return
	}
	made := map[string]bool{}
	tr := tar.NewReader(body)
	files := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			res.status, res.body = http.StatusBadRequest, "Invalid Tar File: "+err.Error()
			return
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		name := strings.TrimLeft(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "" {
			continue
		}
		if base != "" {
			name = base + "/" + name
		}
		container, obj, ok := strings.Cut(name, "/")
		if !ok || obj == "" {
			continue // a file at the top level names no container
		}
		if files == maxExtractFiles {
			res.status, res.body = http.StatusBadRequest, fmt.Sprintf("More than %d files in the archive", maxExtractFiles)
			return
		}
		files++
		if st := q.extractOne(tr, h, container, obj, a, made); st != 0 {
			if st == -1 {
				res.status, res.body = http.StatusBadRequest, "Invalid Tar File: the archive was cut short or could not be read"
				return
			}
			res.errors = append(res.errors, [2]string{url.PathEscape(container) + "/" + escapePath(obj), statusLine(st)})
			if len(res.errors) > maxFailedExtractions {
				break
			}
			continue
		}
		res.created++
		if len(made) > maxExtractContainers {
			res.status, res.body = http.StatusBadRequest, fmt.Sprintf("More than %d containers to create from tar.", maxExtractContainers)
			return
		}
	}
	switch {
	case len(res.errors) > 0:
		res.status = http.StatusBadGateway
	case res.created == 0:
		res.status, res.body = http.StatusBadRequest, "Invalid Tar File: No Valid Files"
	}
}

// extractAttrs are the attributes every extracted object gets from the
// request: its X-Object-Meta-* and delete time, as Swift passes the
// request's headers to each object it stores. It reports false on bad
// metadata without answering (the report does).
func (q *request) extractAttrs() (object.Attrs, bool) {
	set, _, err := metaFrom(q.r.Header, "X-Object-Meta-", false)
	if err != nil {
		return object.Attrs{}, false
	}
	return object.Attrs{Meta: set}, true
}

// extractOne stores one archive file; it returns 0, the HTTP status of
// the file's failure, or -1 when the archive itself could not be read on.
func (q *request) extractOne(tr *tar.Reader, h *tar.Header, container, obj string, a object.Attrs, made map[string]bool) int {
	ctx := q.r.Context()
	switch {
	case len(container) > maxContainerName || object.CheckName("container", container, maxContainerName) != nil:
		return http.StatusBadRequest
	case object.CheckName("object", obj, maxObjectName) != nil:
		return http.StatusBadRequest
	case h.Size > maxFileSize:
		return http.StatusRequestEntityTooLarge
	}
	if !made[container] {
		// Only a missing container is made: an upsert would reset an
		// existing one's metadata, ACLs and versioning to none.
		if _, err := q.h.Store.PutContainer(ctx, object.Container{Project: q.project, Name: container}, true); err != nil && !errors.Is(err, store.ErrConflict) {
			return fileStatus(err)
		}
		made[container] = true
	}
	if err := q.archiveBeforeWrite(container, obj); err != nil {
		return fileStatus(err)
	}
	_, err := q.h.Store.Put(ctx, q.project, container, obj, tr, object.PutOptions{Attrs: a, Size: h.Size})
	if errors.Is(err, object.ErrIncomplete) || errors.Is(err, blob.ErrSource) {
		return -1
	}
	if err != nil {
		return fileStatus(err)
	}
	return 0
}

// fileStatus is the status one file's failure reports.
func fileStatus(err error) int {
	switch {
	case errors.Is(err, object.ErrNoDisks), errors.Is(err, blob.ErrQuorum):
		return http.StatusServiceUnavailable
	case errors.Is(err, object.ErrContainerQuota):
		return http.StatusRequestEntityTooLarge
	}
	return api.StatusOf(err)
}

func statusLine(st int) string { return fmt.Sprintf("%d %s", st, http.StatusText(st)) }

// escapePath URL-encodes each segment of a name, keeping its slashes.
func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
