package api

import (
	"errors"
	"io"
	"unicode/utf8"
)

// errNotUTF8 is a request body that is not UTF-8, which JSON must be
// (RFC 8259).
var errNotUTF8 = errors.New("the request body is not valid UTF-8")

// utf8Reader passes a body through and fails at the first bytes that are
// not UTF-8. encoding/json would otherwise turn them into U+FFFD without
// a word, and a name would be stored as something the client never sent,
// past every check of its text.
type utf8Reader struct {
	r    io.Reader
	tail []byte // an incomplete character at the end of the last read
}

func (u *utf8Reader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	buf := append(u.tail, p[:n]...)
	end := len(buf)
	if err == nil {
		// Hold back a character the next read completes.
		for i := len(buf) - 1; i >= 0 && i >= len(buf)-utf8.UTFMax; i-- {
			if utf8.RuneStart(buf[i]) {
				if !utf8.FullRune(buf[i:]) {
					end = i
				}
				break
			}
		}
	}
	if !utf8.Valid(buf[:end]) {
		return 0, errNotUTF8
	}
	u.tail = append([]byte(nil), buf[end:]...)
	return n, err
}
