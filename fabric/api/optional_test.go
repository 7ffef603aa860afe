package api

import (
	"net/http/httptest"
	"testing"
)

func TestOptionalStringsLeaveOutUnsetAttributes(t *testing.T) {
	views := []View{
		{"id": "a", "email": "Ann@example.com"},
		{"id": "b"}, // no email
		{"id": "c", "email": "carl@example.org"},
	}
	tests := map[string][]string{
		"email=carl@example.org":  {"c"},
		"email__contains=example": {"a", "c"},
		"email__icontains=ANN":    {"a"},
		"email__endswith=.org":    {"c"},
		"email__startswith=ann":   nil,
		"email__istartswith=ann":  {"a"},
		"unknown=x":               {"a", "b", "c"},
		"email=":                  {"b"},
	}
	l := Listing{Key: "users", Filters: OptionalStrings("email")}
	for query, want := range tests {
		t.Run(query, func(t *testing.T) {
			body, err := l.Page(httptest.NewRequest("GET", "/users?"+query, nil), views)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range body["users"].([]View) {
				got = append(got, v["id"].(string))
			}
			if len(got) != len(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
		})
	}
}
