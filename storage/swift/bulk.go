package swift

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/rackstack/rackstack/fabric/store"
)

// Bulk delete limits, as Swift's defaults (reported by /info).
const (
	maxBulkDeletes   = 10000
	maxFailedDeletes = 1000
	// maxBulkLine bounds one line: a container, a slash and an object
	// name, URL-encoded (each byte at most three).
	maxBulkLine = 3 * (maxContainerName + 1 + maxObjectName)
)

// bulkResult is what a bulk delete reports, with Swift's keys.
type bulkResult struct {
	deleted, notFound int
	errors            [][2]string // name, status
	status            int         // the request's overall status
	body              string      // why the request as a whole failed
}

// bulkDelete serves POST or DELETE /v1/AUTH_{project}?bulk-delete (Swift's
// bulk middleware): the body lists, one per line, URL-encoded
// "container/object" or "container" paths to delete. Containers must be
// empty by then, so a list names a container after its objects. As in
// Swift, the answer is 200 with a report in the format Accept asks for;
// its "Response Status" says how the deletes went.
func (q *request) bulkDelete() {
	res := bulkResult{status: http.StatusOK}
	names, err := readBulkList(q.r)
	switch {
	case err != nil:
		res.status, res.body = http.StatusBadRequest, err.Error()
	case len(names) == 0:
		res.status, res.body = http.StatusBadRequest, "Invalid bulk delete."
	}
	for _, name := range names {
		q.deleteOne(name, &res)
		if len(res.errors) >= maxFailedDeletes {
			res.status, res.body = http.StatusBadRequest, "Max delete failures exceeded"
			break
		}
	}
	writeBulkResult(q.w, q.r, res)
}

// readBulkList reads the names of a bulk delete, decoded and without the
// leading slash.
func readBulkList(r *http.Request) ([]string, error) {
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 0, 4096), maxBulkLine+2)
	var names []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if len(names) == maxBulkDeletes {
			return nil, fmt.Errorf("Maximum Bulk Deletes: %d per request", maxBulkDeletes)
		}
		name, err := url.PathUnescape(line)
		if err != nil {
			return nil, fmt.Errorf("Invalid File Name: %q is not URL-encoded", line)
		}
		names = append(names, strings.TrimPrefix(name, "/"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("Invalid File Name: a line is longer than %d bytes or the body was cut: %v", maxBulkLine, err)
	}
	return names, nil
}

// deleteOne deletes one listed object or container, counting the outcome.
func (q *request) deleteOne(name string, res *bulkResult) {
	container, obj, _ := strings.Cut(name, "/")
	var err error
	switch {
	case container == "" || len(container) > maxContainerName || len(obj) > maxObjectName:
		res.errors = append(res.errors, [2]string{"/" + name, "400 Bad Request"})
		res.status = http.StatusBadRequest
		return
	case obj == "":
		err = q.h.Store.DeleteContainer(q.r.Context(), q.project, container)
	default:
		err = q.h.Store.Delete(q.r.Context(), q.project, container, obj)
	}
	switch {
	case err == nil:
		res.deleted++
	case errors.Is(err, store.ErrNotFound):
		res.notFound++
	case errors.Is(err, store.ErrConflict):
		res.errors = append(res.errors, [2]string{"/" + name, "409 Conflict"})
		res.status = http.StatusBadRequest
	default:
		// Not a client error: say so, and give the cause to the log.
		q.h.log().Error("bulk delete", "project", q.project, "name", name, "err", err)
		res.errors = append(res.errors, [2]string{"/" + name, "503 Service Unavailable"})
		if res.status == http.StatusOK {
			res.status = http.StatusBadGateway
		}
	}
}

func writeBulkResult(w http.ResponseWriter, r *http.Request, res bulkResult) {
	status := fmt.Sprintf("%d %s", res.status, http.StatusText(res.status))
	errs := res.errors
	if errs == nil {
		errs = [][2]string{}
	}
	fields := map[string]any{
		"Number Deleted": res.deleted, "Number Not Found": res.notFound,
		"Response Status": status, "Response Body": res.body, "Errors": errs,
	}
	format, _ := listingFormat(r)
	var body string
	switch format {
	case formatJSON:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		b, _ := json.Marshal(fields)
		body = string(b)
	case formatXML:
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		var b strings.Builder
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<delete>\n")
		fmt.Fprintf(&b, "<number_deleted>%d</number_deleted>\n<number_not_found>%d</number_not_found>\n", res.deleted, res.notFound)
		fmt.Fprintf(&b, "<response_status>%s</response_status>\n<response_body>%s</response_body>\n<errors>\n", status, xmlEscape(res.body))
		for _, e := range errs {
			fmt.Fprintf(&b, "<object><name>%s</name><status>%s</status></object>\n", xmlEscape(e[0]), e[1])
		}
		b.WriteString("</errors>\n</delete>\n")
		body = b.String()
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		var b strings.Builder
		keys := []string{"Number Deleted", "Number Not Found", "Response Body", "Response Status"}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %v\n", k, fields[k])
		}
		b.WriteString("Errors:\n")
		for _, e := range errs {
			fmt.Fprintf(&b, "%s, %s\n", e[0], e[1])
		}
		body = b.String()
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, body)
}
