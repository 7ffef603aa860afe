package swift

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object"
)

// Form uploads (Swift's formpost middleware): a browser POSTs an HTML
// form (multipart/form-data) to /v1/AUTH_{project}/{container}[/{prefix}]
// without a token. The form's fields redirect, max_file_size,
// max_file_count and expires are signed with one of the account's or
// container's Temp-URL keys: signature is an HMAC of
// "PATH\nREDIRECT\nMAX_FILE_SIZE\nMAX_FILE_COUNT\nEXPIRES", in the
// encodings temp URLs accept. Each file field then becomes the object
// prefix+filename. As in Swift, the fields are judged as they stand when
// the first file arrives, and files are stored one by one as they stream
// in (memory is bounded by one form value and the store's stripe), so a
// form that fails part way keeps the files stored before the failure.

// maxFormValue bounds a non-file field, as Swift's MAX_VALUE_LENGTH: the
// rest of a longer value is read and dropped.
const maxFormValue = 4096

// isFormPost reports whether a request is a form upload: a POST of
// multipart/form-data with a boundary.
func isFormPost(r *http.Request) bool {
	if r.Method != http.MethodPost {
		return false
	}
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && ct == "multipart/form-data" && params["boundary"] != ""
}

// formError is a form's failure: the status and the text after
// "FormPost: ", which Swift title-cases.
type formError struct {
	status int
	msg    string
}

// formResult is what a form did: the status of the last file's store
// (or of the failure that stopped it) and a message.
type formResult struct {
	status int
	msg    string
}

// formDrainBytes bounds what is read of a refused form's body before the
// answer; a larger one gets its answer on a connection closed after it.
const formDrainBytes = 16 << 20

// formPost serves a form upload and answers as Swift does: 401 for an
// expired form or a bad signature, 400 for a malformed form or a file
// past max_file_size, else the outcome (201 when every file was stored),
// as a 303 to the form's redirect with ?status=&message= when it has one.
func (q *request) formPost() {
	fields := map[string]string{}
	res, ferr := q.formFiles(fields)
	if ferr != nil {
		// A form refused midway (a bad signature is found only as its
		// first file begins) is still being sent: read the rest, up to
		// formDrainBytes, before answering, so that the client reads the
		// answer instead of a connection reset by a server that closed
		// with its upload unread (curl: "Send failure").
		io.Copy(io.Discard, io.LimitReader(q.r.Body, formDrainBytes))
		if ferr.status == http.StatusUnauthorized {
			q.w.Header().Set("Www-Authenticate", `Swift realm="AUTH_`+q.project+`"`)
		}
		q.formText(ferr.status, "FormPost: "+ferr.msg)
		return
	}
	redirect := fields["redirect"]
	if redirect == "" {
		body := statusLine(res.status)
		if res.msg != "" {
			body += "\r\nFormPost: " + titleCase(res.msg)
		}
		q.formText(res.status, body)
		return
	}
	sep := "?"
	if strings.Contains(redirect, "?") {
		sep = "&"
	}
	loc := redirect + sep + "status=" + strconv.Itoa(res.status) + "&message=" + url.PathEscape(res.msg)
	body := `<html><body><p><a href="` + htmlAttr(loc) + `">Click to continue...</a></p></body></html>`
	q.w.Header().Set("Location", loc)
	q.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(http.StatusSeeOther)
	io.WriteString(q.w, body)
}

func (q *request) formText(status int, body string) {
	q.w.Header().Set("Content-Type", "text/plain")
	q.w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(status)
	io.WriteString(q.w, body)
}

// formFiles reads the form, storing each file; fields collects the
// non-file fields (lower-case names).
func (q *request) formFiles(fields map[string]string) (formResult, *formError) {
	_, params, _ := mime.ParseMediaType(q.r.Header.Get("Content-Type"))
	mr := multipart.NewReader(q.r.Body, params["boundary"])
	var res formResult
	files := 0
	for {
		// NextRawPart: a file's bytes are stored as sent, whatever
		// Content-Transfer-Encoding the part claims.
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if files == 0 && len(fields) == 0 {
				return res, &formError{http.StatusBadRequest, "invalid starting boundary"}
			}
			return res, &formError{http.StatusBadRequest, "the form could not be read: " + err.Error()}
		}
		disp, attrs, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if disp != "form-data" || attrs["filename"] == "" {
			v, err := io.ReadAll(io.LimitReader(part, maxFormValue))
			if err == nil {
				_, err = io.Copy(io.Discard, part)
			}
			if err != nil {
				return res, &formError{http.StatusBadRequest, "the form could not be read: " + err.Error()}
			}
			if name := attrs["name"]; name != "" {
				fields[strings.ToLower(name)] = strings.TrimRight(string(v), "\r\n-")
			}
			continue
		}
		files++
		maxCount, ferr := formInt(fields, "max_file_count")
		if ferr != nil {
			return res, ferr
		}
		if int64(files) > maxCount {
			return formResult{http.StatusBadRequest, "max file count exceeded"}, nil
		}
		res, ferr = q.formFile(fields, part, attrs["filename"])
		if ferr != nil {
			return res, ferr
		}
		if res.status/100 != 2 {
			return res, nil
		}
	}
	if files == 0 {
		return formResult{http.StatusBadRequest, "no files to process"}, nil
	}
	return res, nil
}

// formInt reads an integer field ("" or missing is 0).
func formInt(fields map[string]string, name string) (int64, *formError) {
	v := fields[name]
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, &formError{http.StatusBadRequest, name + " not an integer"}
	}
	return n, nil
}

// formFile checks the form's expiry and signature and stores one file.
func (q *request) formFile(fields map[string]string, part *multipart.Part, filename string) (formResult, *formError) {
	maxSize, ferr := formInt(fields, "max_file_size")
	if ferr != nil {
		return formResult{}, ferr
	}
	expires, err := strconv.ParseInt(fields["expires"], 10, 64)
	if fields["expires"] == "" {
		expires, err = 0, nil
	}
	if err != nil {
		return formResult{}, &formError{http.StatusBadRequest, "expired not an integer"}
	}
	if !q.h.now().Before(time.Unix(expires, 0)) {
		return formResult{}, &formError{http.StatusUnauthorized, "Form Expired"}
	}
	if !q.formSigned(fields) {
		return formResult{}, &formError{http.StatusUnauthorized, "Invalid Signature"}
	}
	// The object is the form's path joined with the file name: a form
	// posted to the container stores "filename", one posted to
	// container/prefix stores "prefixfilename", as Swift does.
	name := q.name + filename
	if err := object.CheckName("object", name, maxObjectName); err != nil {
		return formResult{http.StatusBadRequest, err.Error()}, nil
	}
	// The form's x_delete_at / x_delete_after become the object's
	// X-Delete-At / X-Delete-After, checked as on a PUT.
	var headers map[string]string
	for _, f := range []struct{ field, need string }{{"x_delete_at", "Unix timestamp"}, {"x_delete_after", "Number of seconds"}} {
		if v, ok := fields[f.field]; ok {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return formResult{}, &formError{http.StatusBadRequest, f.field + " not an integer: " + f.need + " required."}
			}
		}
	}
	if at, msg := parseDeleteAt(q.h.now(), fields["x_delete_at"], fields["x_delete_after"]); msg != "" {
		return formResult{http.StatusBadRequest, msg}, nil
	} else if at != "" {
		headers = map[string]string{object.DeleteAtHeader: at}
	}
	ct := part.Header.Get("Content-Type")
	if v := fields["content-type"]; v != "" {
		ct = v
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	if err := q.archiveBeforeWrite(q.container, name); err != nil {
		return formResult{fileStatus(err), ""}, nil
	}
	capped := &cappedReader{r: part, left: min(maxSize, maxFileSize)}
	ctx := blob.WithBodyDeadline(q.r.Context(), http.NewResponseController(q.w).SetReadDeadline)
	_, err = q.h.Store.Put(ctx, q.project, q.container, name, capped, object.PutOptions{
		Attrs: object.Attrs{ContentType: ct, Headers: headers}, Size: -1,
	})
	switch {
	case capped.over:
		return formResult{}, &formError{http.StatusBadRequest, "max_file_size exceeded"}
	case errors.Is(err, object.ErrIncomplete) || errors.Is(err, blob.ErrSource):
		return formResult{}, &formError{http.StatusBadRequest, "the form could not be read"}
	case errors.Is(err, object.ErrContainerQuota):
		return formResult{http.StatusRequestEntityTooLarge, "Upload exceeds quota."}, nil
	case err != nil:
		return formResult{fileStatus(err), ""}, nil
	}
	return formResult{http.StatusCreated, ""}, nil
}

// formSigned reports whether the form's signature is an HMAC, with one
// of the account's or container's temp URL keys, of its signed fields
// and the path (as Swift serves it or as the client requested it).
func (q *request) formSigned(fields map[string]string) bool {
	newHash, sig, ok := tempURL{sig: fields["signature"]}.digest()
	if !ok || q.container == "" {
		return false
	}
	or0 := func(k string) string {
		if v := fields[k]; v != "" {
			return v
		}
		return "0"
	}
	for _, p := range q.signedPaths(tempURL{}) {
		body := fmt.Sprintf("%s\n%s\n%s\n%s\n%s", p, fields["redirect"], or0("max_file_size"), or0("max_file_count"), or0("expires"))
		for _, key := range q.tempURLKeys() {
			mac := hmac.New(newHash, []byte(key))
			mac.Write([]byte(body))
			if hmac.Equal(mac.Sum(nil), sig) {
				return true
			}
		}
	}
	return false
}

// errFileTooLarge is what a cappedReader returns past its limit.
var errFileTooLarge = errors.New("max_file_size exceeded")

// cappedReader reads at most left bytes and fails (setting over) when the
// source has more, so a file past max_file_size is not stored.
type cappedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a file of exactly the limit from a
		// longer one.
		var b [1]byte
		n, err := c.r.Read(b[:])
		if n > 0 {
			c.over = true
			return 0, errFileTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// titleCase capitalises each word, as Python's str.title() does Swift's
// messages.
func titleCase(s string) string {
	words := strings.Split(s, " ")
	for i, w := range words {
		if w != "" {
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

func htmlAttr(s string) string {
	return strings.NewReplacer("&", "&amp;", `"`, "&quot;", "<", "&lt;", ">", "&gt;").Replace(s)
}
