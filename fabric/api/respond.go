package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// MaxBodyBytes bounds every JSON request body.
const MaxBodyBytes = 1 << 20

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// Decode reads a JSON body into v strictly: unknown fields, trailing data,
// wrong types and oversize bodies are 400s that name the problem.
func Decode(r *http.Request, v any) error {
	return decode(r, v, true)
}

// DecodeLoose is Decode but ignores unknown fields (for APIs whose clients
// send extra attributes that the service accepts and ignores).
func DecodeLoose(r *http.Request, v any) error {
	return decode(r, v, false)
}

func decode(r *http.Request, v any, strict bool) error {
	body := http.MaxBytesReader(nil, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return Errorf(http.StatusBadRequest, "request body is empty; a JSON object is required")
		case errors.As(err, &syn):
			return Errorf(http.StatusBadRequest, "malformed JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			return &Error{Status: http.StatusBadRequest, Field: typ.Field, Msg: fmt.Sprintf("Invalid input for field/attribute %s: expected %s, got JSON %s", typ.Field, typ.Type, typ.Value)}
		case errors.As(err, &mbe):
			return Errorf(http.StatusRequestEntityTooLarge, "request body exceeds %d bytes", MaxBodyBytes)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &Error{Status: http.StatusBadRequest, Field: f, Msg: fmt.Sprintf("Additional properties are not allowed (%q was unexpected)", f)}
		}
		return Errorf(http.StatusBadRequest, "malformed request body: %v", err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "malformed request body: trailing data after the JSON object")
	}
	return nil
}

// Page applies OpenStack's limit/marker pagination to items sorted by id.
// It returns the page and whether more items follow.
func Page[T any](r *http.Request, items []T, id func(T) string) ([]T, bool, error) {
	sort.SliceStable(items, func(i, j int) bool { return id(items[i]) < id(items[j]) })
	q := r.URL.Query()
	if m := q.Get("marker"); m != "" {
		i := sort.Search(len(items), func(i int) bool { return id(items[i]) > m })
		found := false
		for _, it := range items {
			if id(it) == m {
				found = true
				break
			}
		}
		if !found {
			return nil, false, &Error{Status: http.StatusBadRequest, Field: "marker", Msg: fmt.Sprintf("marker %s not found", m)}
		}
		items = items[i:]
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return nil, false, BadField("limit", "must be a non-negative integer, got %q", l)
		}
		if n < len(items) {
			return items[:n], true, nil
		}
	}
	return items, false, nil
}

// JSONError is the ErrorWriter for OpenStack-style JSON errors
// ({"error": {"code", "title", "message"}}), as Keystone and Rackstack's own
// API answer.
func JSONError(w http.ResponseWriter, _ *http.Request, p Problem) {
	JSON(w, p.Status, map[string]any{"error": map[string]any{"code": p.Status, "title": http.StatusText(p.Status), "message": p.Msg}})
}

// RequireAdmin lets only cloud administrators through (after RequireAuth);
// others get 403 written with ew.
func RequireAdmin(ew ErrorWriter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := PrincipalFrom(r.Context()); p == nil || !p.IsAdmin() {
				ew(w, r, Problem{Status: http.StatusForbidden, Msg: "this needs the admin role"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
