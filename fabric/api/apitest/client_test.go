package apitest

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

func TestServeAndCall(t *testing.T) {
	srv := Serve(t, "/svc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Path", r.URL.Path)
		if r.URL.Path == "/text" {
			w.Write([]byte("not json"))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"type": r.Header.Get("Content-Type"), "token": r.Header.Get("X-Auth-Token"), "body": string(body), "extra": r.Header.Get("X-Extra")})
	}))
	res := Call(t, "POST", srv.URL+"/svc/x", "tok", map[string]any{"a": 1}, "X-Extra", "yes")
	if res.Code != 200 || res.Header.Get("X-Path") != "/x" || res.Body["type"] != "application/json" || res.Body["token"] != "tok" || res.Body["body"] != `{"a":1}` || res.Body["extra"] != "yes" {
		t.Errorf("json call: %d %v %v", res.Code, res.Header, res.Body)
	}
	if res = Call(t, "PUT", srv.URL+"/svc/x", "", []byte("raw")); res.Body["type"] != "application/octet-stream" || res.Body["body"] != "raw" || res.Body["token"] != "" {
		t.Errorf("bytes call: %v", res.Body)
	}
	if res = Call(t, "GET", srv.URL+"/svc/text", "", nil); res.Body != nil || string(res.Raw) != "not json" {
		t.Errorf("text answer: %v %q", res.Body, res.Raw)
	}
}
