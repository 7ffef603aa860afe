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
	// extract: an archive extraction's report (files created) rather
	// than a bulk delete's.
	extract           bool
	created           int
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
		err = q.versionedDelete(container, obj)
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

// writeBulkResult answers 200 with the report, as Swift's bulk
// middleware words it (get_response_body): in JSON the fields by name; in
// XML and text the fields in name order, then the errors.
func writeBulkResult(w http.ResponseWriter, r *http.Request, res bulkResult) {
	status := fmt.Sprintf("%d %s", res.status, http.StatusText(res.status))
	errs := res.errors
	if errs == nil {
		errs = [][2]string{}
	}
	fields := map[string]any{"Response Status": status, "Response Body": res.body}
	root := "delete"
	if res.extract {
		root = "extract"
		fields["Number Files Created"] = res.created
	} else {
		fields["Number Deleted"], fields["Number Not Found"] = res.deleted, res.notFound
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	format, _ := listingFormat(r)
	var b strings.Builder
	switch format {
	case formatJSON:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fields["Errors"] = errs
		j, _ := json.Marshal(fields)
		b.Write(j)
	case formatXML:
		w.Header().Set("Content-Type", "application/xml; charset=utf-8")
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<" + root + ">\n")
		for _, k := range keys {
			tag := strings.ToLower(strings.ReplaceAll(k, " ", "_"))
			fmt.Fprintf(&b, "<%s>%s</%s>\n", tag, xmlEscape(fmt.Sprint(fields[k])), tag)
		}
		b.WriteString("<errors>\n")
		for _, e := range errs {
			fmt.Fprintf(&b, "<object><name>%s</name><status>%s</status></object>\n", xmlEscape(e[0]), e[1])
		}
		b.WriteString("</errors>\n</" + root + ">\n")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %v\n", k, fields[k])
		}
		b.WriteString("Errors:\n")
		for _, e := range errs {
			fmt.Fprintf(&b, "%s, %s\n", e[0], e[1])
		}
	}
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, b.String())
}
