package api

import (
	"errors"
	"fmt"
	"testing"
)

// plainWording reports the reason as the error text.
type plainWording struct{}

func (plainWording) BadField(field string, _ any, reason string) error {
	return errors.New(field + ": " + reason)
}
func (plainWording) Missing(field string) error { return errors.New(field + ": missing") }

// ownWording words Input's own checks itself, as Neutron does.
type ownWording struct{ plainWording }

func (ownWording) NotString(v any) string { return "'" + Text(v) + "' is not a valid string" }
func (ownWording) TooLong(s string, max int) string {
	return fmt.Sprintf("'%s' exceeds maximum length of %d", s, max)
}
func (ownWording) NotBool(v any) string { return "'" + Text(v) + "' cannot be converted to boolean" }

func TestInputReasonsAreTheServicesWhenItWordsThem(t *testing.T) {
	read := map[string]func(*Input){
		"str":  func(in *Input) { in.Str("f", "", 3) },
		"bool": func(in *Input) { in.Bool("f", false) },
		"strs": func(in *Input) { in.Strs("f") },
	}
	tests := map[string]struct {
		read  string
		value any
		word  Wording
		want  string
	}{
		"schema not string": {"str", 5.0, plainWording{}, "f: 5 is not of type 'string'"},
		"own not string":    {"str", 5.0, ownWording{}, "f: '5' is not a valid string"},
		"schema too long":   {"str", "abcd", plainWording{}, "f: 'abcd' is too long (at most 3 characters)"},
		"own too long":      {"str", "abcd", ownWording{}, "f: 'abcd' exceeds maximum length of 3"},
		"schema not bool":   {"bool", "maybe", plainWording{}, "f: 'maybe' is not a boolean"},
		"own not bool":      {"bool", "maybe", ownWording{}, "f: 'maybe' cannot be converted to boolean"},
		"schema list item":  {"strs", []any{1.0}, plainWording{}, "f: '1' is not a string"},
		"own list item":     {"strs", []any{1.0}, ownWording{}, "f: '1' is not a valid string"},
		"control character": {"str", "a\x00", ownWording{}, "f: contains a control character"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := NewInput(Object{"f": tc.value}, tc.word)
			read[tc.read](in)
			if in.Err == nil || in.Err.Error() != tc.want {
				t.Fatalf("err %v, want %q", in.Err, tc.want)
			}
		})
	}
}
