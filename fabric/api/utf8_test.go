package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequireUTF8(t *testing.T) {
	tests := map[string]struct {
		body   string
		status int
		want   string
	}{
		"ascii":         {`{"name":"x"}`, 0, ""},
		"other scripts": {`{"name":"Ubuntu — ☁ 日本"}`, 0, ""},
		"escaped":       {`{"name":"\u00e9"}`, 0, ""},
		"bad byte":      {"{\"name\":\"a\xffb\"}", 400, "invalid UTF-8 at byte 10"},
		"cut sequence":  {"{\"name\":\"\xe2\x98\"}", 400, "invalid UTF-8 at byte 9"},
		"too big":       {`{"name":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413, "exceeds"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
			err := RequireUTF8(r)
			if tc.status != 0 {
				if StatusOf(err) != tc.status || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v (status %d), want %d mentioning %q", err, StatusOf(err), tc.status, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The body can still be read, whole.
			var v map[string]string
			if err := json.NewDecoder(r.Body).Decode(&v); err != nil || v["name"] == "" {
				t.Fatalf("body after the check: %v, %v", v, err)
			}
		})
	}
}
