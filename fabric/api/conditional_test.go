package api

import "testing"

func TestParseRange(t *testing.T) {
	tests := map[string]struct {
		h            string
		off, n       int64
		partial, bad bool
	}{
		"none":         {"", 0, 100, false, false},
		"first ten":    {"bytes=0-9", 0, 10, true, false},
		"open end":     {"bytes=90-", 90, 10, true, false},
		"past the end": {"bytes=90-500", 90, 10, true, false},
		"suffix":       {"bytes=-5", 95, 5, true, false},
		"long suffix":  {"bytes=-500", 0, 100, true, false},
		"empty suffix": {"bytes=-0", 0, 0, false, true},
		"beyond":       {"bytes=100-", 0, 0, false, true},
		"several":      {"bytes=0-1,5-6", 0, 100, false, false},
		"other unit":   {"items=0-1", 0, 100, false, false},
		"reversed":     {"bytes=9-0", 0, 100, false, false},
		"not a number": {"bytes=a-b", 0, 100, false, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			off, n, partial, err := ParseRange(tc.h, 100)
			if (err != nil) != tc.bad || off != tc.off || n != tc.n || partial != tc.partial {
				t.Fatalf("parseRange(%q) = %d, %d, %v, %v", tc.h, off, n, partial, err)
			}
		})
	}
	if got := ContentRange(90, 10, 100); got != "bytes 90-99/100" {
		t.Fatalf("contentRange = %q", got)
	}
}
