package swift

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/object"
)

func TestDeleteHeadersRejectBadValues(t *testing.T) {
	future := strconv.FormatInt(time.Now().Unix()+3600, 10)
	tests := []struct {
		hdr  []string
		want string
	}{
		{[]string{"X-Delete-After", "soon"}, "Non-integer X-Delete-After"},
		{[]string{"X-Delete-After", "1.5"}, "Non-integer X-Delete-After"},
		{[]string{"X-Delete-After", "0"}, "X-Delete-After in past"},
		{[]string{"X-Delete-After", "-5"}, "X-Delete-After in past"},
		{[]string{"X-Delete-At", "tomorrow"}, "Non-integer X-Delete-At"},
		{[]string{"X-Delete-At", "1000"}, "X-Delete-At in past"},
		// X-Delete-After decides when both are given, as in Swift.
		{[]string{"X-Delete-At", future, "X-Delete-After", "x"}, "Non-integer X-Delete-After"},
	}
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/kept", alice, "x")
	for _, tc := range tests {
		r := e.must(http.StatusBadRequest, "PUT", "/v1/AUTH_p1/c/bad", alice, "x", tc.hdr...)
		if strings.TrimSpace(r.body) != tc.want {
			t.Errorf("PUT %v: %q, want %q", tc.hdr, r.body, tc.want)
		}
		r = e.must(http.StatusBadRequest, "POST", "/v1/AUTH_p1/c/kept", alice, "", tc.hdr...)
		if strings.TrimSpace(r.body) != tc.want {
			t.Errorf("POST %v: %q, want %q", tc.hdr, r.body, tc.want)
		}
	}
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/bad", alice, "")
	if got := e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/kept", alice, "").header.Get("X-Delete-At"); got != "" {
		t.Errorf("a refused POST set X-Delete-At %q", got)
	}
}

// deleteAtOf is the X-Delete-At a HEAD shows, as a number.
func (e *env) deleteAtOf(path string) int64 {
	e.T.Helper()
	v := e.must(http.StatusOK, "HEAD", path, alice, "").header.Get("X-Delete-At")
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		e.T.Fatalf("X-Delete-At %q: %v", v, err)
	}
	return n
}

func TestDeleteAtIsSetShownAndFollowsSwift(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	before := time.Now().Unix()
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "x", "X-Delete-After", "100", "Content-Disposition", "inline")
	after := time.Now().Unix()
	if at := e.deleteAtOf("/v1/AUTH_p1/c/o"); at < before+100 || at > after+100 {
		t.Fatalf("X-Delete-After 100 gave X-Delete-At %d, want %d..%d", at, before+100, after+100)
	}
	if got := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/o", alice, "").header.Get("X-Delete-At"); got == "" {
		t.Error("GET does not show X-Delete-At")
	}

	// A copy does not carry the delete time unless the request sets one.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/copy", alice, "", "X-Copy-From", "c/o")
	if at := e.deleteAtOf("/v1/AUTH_p1/c/copy"); at != 0 {
		t.Errorf("copy carried X-Delete-At %d", at)
	}
	r := e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/copy", alice, "")
	if got := r.header.Get("Content-Disposition"); got != "inline" {
		t.Errorf("copy lost Content-Disposition: %q", got)
	}
	e.must(http.StatusCreated, "COPY", "/v1/AUTH_p1/c/o", alice, "", "Destination", "c/copy2", "X-Delete-After", "50")
	if at := e.deleteAtOf("/v1/AUTH_p1/c/copy2"); at < before+50 || at > time.Now().Unix()+50 {
		t.Errorf("COPY with X-Delete-After 50: X-Delete-At %d", at)
	}

	// POST sets it, and a POST without it clears it (POST replaces the
	// object's metadata), as it clears the other stored headers.
	future := time.Now().Unix() + 3600
	e.must(http.StatusAccepted, "POST", "/v1/AUTH_p1/c/copy", alice, "", "X-Delete-At", strconv.FormatInt(future, 10))
	if at := e.deleteAtOf("/v1/AUTH_p1/c/copy"); at != future {
		t.Errorf("POST X-Delete-At %d: HEAD shows %d", future, at)
	}
	e.must(http.StatusAccepted, "POST", "/v1/AUTH_p1/c/copy", alice, "", "X-Object-Meta-A", "1")
	r = e.must(http.StatusOK, "HEAD", "/v1/AUTH_p1/c/copy", alice, "")
	if got := r.header.Get("X-Delete-At"); got != "" {
		t.Errorf("POST without X-Delete-At kept %q", got)
	}
	if got := r.header.Get("Content-Disposition"); got != "" {
		t.Errorf("POST without Content-Disposition kept %q (Swift's POST replaces it)", got)
	}
}

func TestExpiredObjectAnswersNotFound(t *testing.T) {
	e := newEnv(t)
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "x", "X-Delete-After", "3600")
	// Its time passes: write a past delete time straight into the store
	// (the API refuses one).
	ctx := context.Background()
	o, err := e.Svc.Head(ctx, "p1", "c", "o")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Svc.SetMeta(ctx, o, object.Attrs{Headers: map[string]string{object.DeleteAtHeader: object.FormatDeleteAt(time.Now().Unix() - 1)}}); err != nil {
		t.Fatal(err)
	}
	e.must(http.StatusNotFound, "GET", "/v1/AUTH_p1/c/o", alice, "")
	e.must(http.StatusNotFound, "HEAD", "/v1/AUTH_p1/c/o", alice, "")
	e.must(http.StatusNotFound, "POST", "/v1/AUTH_p1/c/o", alice, "", "X-Object-Meta-A", "1")
	e.must(http.StatusNotFound, "COPY", "/v1/AUTH_p1/c/o", alice, "", "Destination", "c/o2")
	e.must(http.StatusNotFound, "PUT", "/v1/AUTH_p1/c/o2", alice, "", "X-Copy-From", "c/o")
	// A new PUT of the name is a new object.
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c/o", alice, "y")
	if got := e.must(http.StatusOK, "GET", "/v1/AUTH_p1/c/o", alice, "").body; got != "y" {
		t.Errorf("new object = %q", got)
	}
}
