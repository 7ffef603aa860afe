package apitest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Serve serves h under prefix, stripped as rackd mounts a service, until
// the test ends.
func Serve(t testing.TB, prefix string, h http.Handler) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(prefix+"/", http.StripPrefix(prefix, h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// Response is what Call got back: Body is the body decoded as a JSON
// object, nil when it is not one.
type Response struct {
	Code   int
	Header http.Header
	Raw    []byte
	Body   map[string]any
}

// Call makes a request as a client of an OpenStack JSON API. body is nil
// (none, and no Content-Type), a string (sent as is, as JSON), []byte
// (sent as is, as application/octet-stream) or a value sent as JSON; token, when not "",
// goes in X-Auth-Token; header is name/value pairs set last, so they
// override.
func Call(t testing.TB, method, url, token string, body any, header ...string) Response {
	t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, ct = bytes.NewReader(b), "application/octet-stream"
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode request body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	out := Response{Code: res.StatusCode, Header: res.Header, Raw: raw}
	_ = json.Unmarshal(raw, &out.Body) // not every answer is a JSON object
	return out
}
