package api

import (
	"errors"
	"io"
	"net/http/httptest"
	"testing"
)

func TestSendRange(t *testing.T) {
	data := []byte("0123456789")
	reader := func(off, n int64) func(io.Writer) error {
		return func(w io.Writer) error { _, err := w.Write(data[off : off+n]); return err }
	}

	w := httptest.NewRecorder()
	if err := SendRange(w, httptest.NewRequest("GET", "/", nil), 2, 3, 10, true, nil, reader(2, 3)); err != nil {
		t.Fatal(err)
	}
	if w.Code != 206 || w.Body.String() != "234" || w.Header().Get("Content-Range") != "bytes 2-4/10" || w.Header().Get("Content-Length") != "3" {
		t.Errorf("part: %d %q %v", w.Code, w.Body, w.Header())
	}

	w = httptest.NewRecorder()
	read := false
	if err := SendRange(w, httptest.NewRequest("HEAD", "/", nil), 0, 10, 10, false, nil, func(io.Writer) error { read = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if w.Code != 200 || read || w.Header().Get("Content-Length") != "10" || w.Header().Get("Content-Range") != "" {
		t.Errorf("head: %d read=%v %v", w.Code, read, w.Header())
	}

	// Failing before a byte: the caller answers, without the success's
	// headers.
	w = httptest.NewRecorder()
	w.Header().Set("X-Kept", "1")
	saved := w.Header().Clone()
	w.Header().Set("ETag", "x")
	lost := errors.New("disk gone")
	if err := SendRange(w, httptest.NewRequest("GET", "/", nil), 0, 10, 10, false, saved, func(io.Writer) error { return lost }); !errors.Is(err, lost) {
		t.Fatalf("early failure: %v", err)
	}
	if w.Header().Get("Content-Length") != "" || w.Header().Get("ETag") != "" || w.Header().Get("X-Kept") != "1" {
		t.Errorf("early failure headers: %v", w.Header())
	}

	// Failing mid-body: the status is out, the body ends short.
	w = httptest.NewRecorder()
	mid := func(w io.Writer) error { w.Write(data[:4]); return lost }
	if err := SendRange(w, httptest.NewRequest("GET", "/", nil), 0, 10, 10, false, nil, mid); err != nil {
		t.Fatalf("late failure: %v", err)
	}
	if w.Code != 200 || w.Body.String() != "0123" {
		t.Errorf("late failure: %d %q", w.Code, w.Body)
	}
}
