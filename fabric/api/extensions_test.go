package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
)

func TestExtensions(t *testing.T) {
	missing := errors.New("no such extension")
	x := Extensions{
		List: [][3]string{{"a", "A", "first"}, {"b", "B", "second"}},
		View: func(alias, name, desc string) map[string]any {
			return map[string]any{"alias": alias, "name": name, "description": desc}
		},
		NotFound: func(string) error { return missing },
	}
	w := httptest.NewRecorder()
	if err := x.ListAll(w, httptest.NewRequest("GET", "/extensions", nil)); err != nil {
		t.Fatal(err)
	}
	var list struct{ Extensions []map[string]string }
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Extensions) != 2 || list.Extensions[1]["name"] != "B" {
		t.Errorf("list: %v %s", err, w.Body)
	}
	show := func(alias string) (*httptest.ResponseRecorder, error) {
		rctx := chi.NewRouteContext()
		rctx.URLParams.Add("alias", alias)
		r := httptest.NewRequest("GET", "/extensions/"+alias, nil)
		r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx))
		w := httptest.NewRecorder()
		return w, x.Show(w, r)
	}
	if w, err := show("b"); err != nil || w.Body.String() == "" {
		t.Errorf("show b: %v %s", err, w.Body)
	} else {
		var one struct{ Extension map[string]string }
		if err := json.Unmarshal(w.Body.Bytes(), &one); err != nil || one.Extension["description"] != "second" {
			t.Errorf("show b: %v %s", err, w.Body)
		}
	}
	if _, err := show("c"); !errors.Is(err, missing) {
		t.Errorf("show c: %v", err)
	}
}
