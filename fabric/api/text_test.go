package api

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecodeRefusesABodyThatIsNotUTF8(t *testing.T) {
	tests := map[string]struct {
		body string
		ok   bool
	}{
		"ascii":                      {`{"name":"abc"}`, true},
		"multibyte":                  {`{"name":"ünïcødé ☃ 𝄞"}`, true},
		"invalid byte":               {"{\"name\":\"a\xffb\"}", false},
		"truncated character":        {"{\"name\":\"a\xe2\x98\"}", false},
		"surrogate half":             {"{\"name\":\"\xed\xa0\x80\"}", false},
		"overlong encoding of slash": {"{\"name\":\"\xc0\xaf\"}", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			// One byte per read: characters are split across reads.
			r := httptest.NewRequest("POST", "/", iotest.OneByteReader(strings.NewReader(tc.body)))
			var v map[string]any
			err := DecodeLoose(r, &v)
			if tc.ok {
				if err != nil {
					t.Fatalf("valid UTF-8 refused: %v", err)
				}
				if v["name"] != strings.TrimSuffix(strings.TrimPrefix(tc.body, `{"name":"`), `"}`) {
					t.Fatalf("decoded %q", v["name"])
				}
				return
			}
			if StatusOf(err) != 400 || !strings.Contains(err.Error(), "UTF-8") {
				t.Fatalf("err %v (status %d), want a 400 about UTF-8", err, StatusOf(err))
			}
		})
	}
}

func TestUTF8ReaderPassesTheBodyThrough(t *testing.T) {
	const text = "naïve ☃ text, 𝄞 and more"
	got, err := io.ReadAll(&utf8Reader{r: iotest.HalfReader(strings.NewReader(text))})
	if err != nil || string(got) != text {
		t.Fatalf("read %q, %v", got, err)
	}
	_, err = io.ReadAll(&utf8Reader{r: strings.NewReader("ok \xe2\x98")})
	if !errors.Is(err, errNotUTF8) {
		t.Fatalf("a body ending mid-character: err %v", err)
	}
}
