package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/object/objecttest"
)

// Names and other text a client sets must print and log as what they are:
// NUL, CR/LF and invalid UTF-8 are refused with a 400 naming the field.
func TestTextWithControlCharactersIsRefused(t *testing.T) {
	f := newFixture(t)
	id := f.create(alice, map[string]any{"name": "fine"})["id"].(string)
	bad := map[string]string{"NUL": "a\x00b", "CRLF": "a\r\nSet-Cookie: x", "invalid UTF-8": "a\xff\xfeb"}
	for name, text := range bad {
		t.Run(name, func(t *testing.T) {
			f.t = t
			// As raw JSON: encoding/json would turn invalid UTF-8 into
			// U+FFFD on the client's side already.
			js := jsonString(text)
			field := "name"
			if !utf8.ValidString(text) {
				field = "UTF-8" // the body, not yet a field, is at fault
			}
			f.expect(http.StatusBadRequest, "POST", "/v2/images", alice, `{"name": `+js+`}`, field)
			f.expect(http.StatusBadRequest, "POST", "/v2/images", alice, `{"name": "x", "tags": [`+js+`]}`)
			f.expect(http.StatusBadRequest, "POST", "/v2/images", alice, `{"name": "x", "os_distro": `+js+`}`)
			f.expect(http.StatusBadRequest, "POST", "/v2/images", alice, `{"name": "x", `+jsonString("prop"+text)+`: "v"}`)
			res := f.do("PATCH", "/v2/images/"+id, alice, `[{"op": "replace", "path": "/name", "value": `+js+`}]`, "Content-Type", patchV21)
			if msg, _ := res.body["message"].(string); res.code != http.StatusBadRequest || !strings.Contains(msg, field) {
				t.Fatalf("patch: %d %q, want 400 naming %s", res.code, msg, field)
			}
			f.expect(http.StatusBadRequest, "POST", "/v2/images/"+id+"/members", alice, `{"member": `+js+`}`)
			f.expect(http.StatusBadRequest, "PUT", "/v2/images/"+id+"/tags/"+url.PathEscape(text), alice, nil, "tag")
		})
	}
	f.t = t
	if got := f.show(alice, id); got["name"] != "fine" || len(got["tags"].([]any)) != 0 {
		t.Fatalf("refused changes changed the image: %v", got)
	}
	// Tabs and newlines in text are fine, as are other scripts.
	f.create(alice, map[string]any{"name": "Ubuntu\t24.04 — ☁", "description": "line one\nline two"})
}

// jsonString quotes s for JSON, escaping control characters but keeping
// invalid UTF-8 bytes as they are.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// An upload when the cloud has no disk to store data on is the cloud's
// condition, not a bug: 503, and the image stays queued for a retry.
func TestUploadWithoutDisksIsUnavailable(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Objects = objecttest.New(t, 0, 4096) })
	id := f.create(alice, map[string]any{})["id"].(string)
	f.expect(http.StatusServiceUnavailable, "PUT", "/v2/images/"+id+"/file", alice, []byte("data"), "no storage disks")
	if got := f.show(alice, id); got["status"] != StatusQueued {
		t.Fatalf("status %v, want queued", got["status"])
	}
}

// unknownOutcome is a Replicated whose proposals commit but, when lose
// says so, answer as a timed-out proposal does: the caller cannot know
// that they committed.
type unknownOutcome struct {
	store.Replicated
	lose func(typ string, body any) bool
}

func (u unknownOutcome) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	res, err := u.Replicated.Propose(ctx, typ, body)
	if err == nil && u.lose(typ, body) {
		return store.Result{}, context.DeadlineExceeded
	}
	return res, err
}

// An upload whose final proposal (image active, data attached) timed out
// may have committed: its data must not be deleted as if it had failed.
func TestUploadWithUnknownOutcomeKeepsTheData(t *testing.T) {
	lose := func(typ string, body any) bool {
		put, ok := body.(imagestate.PutCmd)
		return typ == imagestate.CmdPut && ok && put.Row.Status == StatusActive
	}
	f := newFixture(t, func(c *Config) { c.Repl = unknownOutcome{Replicated: c.Repl, lose: lose} })
	id := f.create(alice, map[string]any{})["id"].(string)
	data := randomBytes(t, 10_000)
	res := f.do("PUT", "/v2/images/"+id+"/file", alice, data)
	if res.code < 500 {
		t.Fatalf("upload with an unknown outcome: %d, want a 5xx", res.code)
	}
	// It did commit: the image is active and its data is there.
	if got := f.show(alice, id); got["status"] != StatusActive {
		t.Fatalf("status %v, want active", got["status"])
	}
	dl := f.do("GET", "/v2/images/"+id+"/file", alice, nil)
	if dl.code != http.StatusOK || string(dl.raw) != string(data) {
		t.Fatalf("download: %d, %d bytes of %d", dl.code, len(dl.raw), len(data))
	}
}

// An upload whose start (image saving) committed after the request was
// told its outcome was unknown leaves the image saving, marked as this
// live process's upload, with no request streaming it: the maintenance
// gives it back to queued, and it can be uploaded again. An upload in
// progress is left alone.
func TestUploadOfUnknownStartGivenBack(t *testing.T) {
	var lost atomic.Bool // the first start only
	lose := func(typ string, body any) bool {
		put, ok := body.(imagestate.PutCmd)
		return typ == imagestate.CmdPut && ok && put.Row.Status == StatusSaving && put.Row.Name == "lost" && lost.CompareAndSwap(false, true)
	}
	f := newFixture(t, func(c *Config) { c.Repl = unknownOutcome{Replicated: c.Repl, lose: lose} })
	id := f.create(alice, map[string]any{"name": "lost"})["id"].(string)
	if res := f.do("PUT", "/v2/images/"+id+"/file", alice, []byte("data")); res.code < 500 {
		t.Fatalf("upload with an unknown outcome: %d, want a 5xx", res.code)
	}
	if got := f.show(alice, id); got["status"] != StatusSaving {
		t.Fatalf("status %v, want saving (the start committed)", got["status"])
	}
	// Another upload, in progress: its body has not all come.
	busy := f.create(alice, map[string]any{"name": "busy"})["id"].(string)
	pw, done := f.streamUpload(alice, busy)
	t.Cleanup(func() { pw.CloseWithError(io.ErrUnexpectedEOF) }) // before the server's close waits for the request
	pw.Write([]byte("first half "))
	for f.show(alice, busy)["status"] != StatusSaving {
		time.Sleep(10 * time.Millisecond)
	}

	f.svc.resetUploads(context.Background(), f.svc.unreceivedUpload)
	if got := f.show(alice, id); got["status"] != StatusQueued {
		t.Fatalf("status %v after the maintenance, want queued", got["status"])
	}
	if got := f.show(alice, busy); got["status"] != StatusSaving {
		t.Fatalf("an upload in progress was given back: %v", got["status"])
	}
	pw.Write([]byte("second half"))
	pw.Close()
	if code := <-done; code != http.StatusNoContent {
		t.Fatalf("the upload in progress: %d", code)
	}
	data := []byte("data again")
	if res := f.do("PUT", "/v2/images/"+id+"/file", alice, data); res.code != http.StatusNoContent {
		t.Fatalf("upload after the give-back: %d %s", res.code, res.raw)
	}
	if dl := f.do("GET", "/v2/images/"+id+"/file", alice, nil); dl.code != http.StatusOK || string(dl.raw) != string(data) {
		t.Fatalf("download: %d %q", dl.code, dl.raw)
	}
}
