package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

func TestSchemaValidate(t *testing.T) {
	s := BodyOf("thing", &Schema{Types: []string{"object"}, Closed: true, Required: []string{"name"},
		Properties: map[string]*Schema{
			"name":  {Types: []string{"string"}, MinLen: 1, MaxLen: 4},
			"size":  {Types: []string{"integer", "string"}, Min: Bound(1)},
			"on":    {Types: []string{"boolean", "string"}, Bool: true},
			"id":    {Types: []string{"string", "null"}, UUID: true},
			"tags":  {Types: []string{"array"}, Items: &Schema{Types: []string{"string"}}, Unique: true, MinItems: 1},
			"mode":  {Enum: []any{"rw", "ro"}},
			"specs": {Types: []string{"object"}, Closed: true, Values: &Schema{Types: []string{"string"}}},
		}, AnyOf: [][]string{{"name"}}})
	cases := map[string]string{ // body → field named, "" fits
		`{"thing":{"name":"ab"}}`: "",
		`{"thing":{"name":"ab","size":2,"on":"yes","id":null,"mode":"ro"}}`: "",
		`{"thing":{"name":"ab","id":"0f5c4b9a2d6e4f1aa3b1c2d3e4f5a6b7"}}`:   "",
		`{"thing":{"name":"ab","specs":{"k":"v"}}}`:                         "",
		`{"thing":{"name":"ab","extra":1}}`:                                 "extra",
		`{"thing":{"size":1}}`:                                              "name",
		`{"thing":{"name":""}}`:                                             "name",
		`{"thing":{"name":"abcde"}}`:                                        "name",
		`{"thing":{"name":"a\u0001"}}`:                                      "name",
		`{"thing":{"name":"ab","size":0}}`:                                  "size",
		`{"thing":{"name":"ab","size":1.5}}`:                                "size",
		`{"thing":{"name":"ab","on":"perhaps"}}`:                            "on",
		`{"thing":{"name":"ab","id":"nope"}}`:                               "id",
		`{"thing":{"name":"ab","tags":[]}}`:                                 "tags",
		`{"thing":{"name":"ab","tags":["a","a"]}}`:                          "tags",
		`{"thing":{"name":"ab","tags":[1]}}`:                                "tags",
		`{"thing":{"name":"ab","mode":"wo"}}`:                               "mode",
		`{"thing":{"name":"ab","specs":{"k":1}}}`:                           "k",
		`{"thing":"x"}`:                                                     "thing",
		`{"thing":{"name":"ab"},"other":{}}`:                                "other",
	}
	for body, field := range cases {
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		err := s.Validate("body", v, schemaWording{})
		switch {
		case field == "" && err != nil:
			t.Errorf("%s: %v", body, err)
		case field != "" && (err == nil || StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "field/attribute "+field+".")):
			t.Errorf("%s: %v, want a 400 naming %s", body, err, field)
		}
	}
}

// A Route's Body is checked before its handler, which reads the same
// bytes; a nil schema (the request's version has none) checks nothing.
func TestRouteBody(t *testing.T) {
	schema := BodyOf("x", &Schema{Types: []string{"object"}, Closed: true, Properties: map[string]*Schema{"n": {Types: []string{"integer"}}}})
	var got string
	rs := Routes{Errors: func(w http.ResponseWriter, _ *http.Request, p Problem) { http.Error(w, p.Msg, p.Status) }}
	r := chi.NewRouter()
	rs.Mount(r, []Route{{Method: http.MethodPost, Path: "/x", Access: Public,
		Body: func(r *http.Request) *Schema {
			if r.Header.Get("Check") == "" {
				return nil
			}
			return schema
		},
		Handle: func(w http.ResponseWriter, r *http.Request) error {
			b, _ := io.ReadAll(r.Body)
			got = string(b)
			w.WriteHeader(http.StatusNoContent)
			return nil
		}}})
	post := func(body string, check bool) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/x", strings.NewReader(body))
		if check {
			req.Header.Set("Check", "1")
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w
	}
	if w := post(`{"x":{"n":1}}`, true); w.Code != http.StatusNoContent || got != `{"x":{"n":1}}` {
		t.Fatalf("fitting body: %d %q", w.Code, got)
	}
	got = ""
	if w := post(`{"x":{"m":1}}`, true); w.Code != http.StatusBadRequest || got != "" || !strings.Contains(w.Body.String(), "field/attribute m.") {
		t.Fatalf("unknown key: %d %s (handler read %q)", w.Code, w.Body, got)
	}
	if w := post(`{"x":{"m":1}}`, false); w.Code != http.StatusNoContent {
		t.Fatalf("no schema for the request: %d", w.Code)
	}
	if w := post(`{"x":`, true); w.Code != http.StatusBadRequest || got != `{"x":{"m":1}}` {
		t.Fatalf("malformed JSON: %d", w.Code)
	}
}
