package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"unicode/utf8"
)

// RequireUTF8 refuses a request body that is not UTF-8, as JSON text must
// be (RFC 8259): encoding/json would silently replace each bad byte with
// U+FFFD, and a name would be stored as something else than was sent.
// It reads the body (at most MaxBodyBytes) and leaves it to be read again.
func RequireUTF8(r *http.Request) error {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", MaxBodyBytes)
		}
		return Errorf(http.StatusBadRequest, "malformed request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if at := invalidUTF8(raw); at >= 0 {
		return Errorf(http.StatusBadRequest, "malformed request body: invalid UTF-8 at byte %d", at)
	}
	return nil
}

// invalidUTF8 is the offset of the first byte of b that is not part of a
// valid UTF-8 sequence, or -1.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		c, n := utf8.DecodeRune(b[i:])
		if c == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}
