package compute

import (
	"strings"
	"testing"
)

// TestConsoleTailCountsAsNova: tempest asks for 10 lines and checks the
// output splits into 10 at its newlines, as Nova's _tail_log gives.
func TestConsoleTailCountsAsNova(t *testing.T) {
	log := "l1\nl2\nl3\nl4\n"
	for name, tc := range map[string]struct {
		length int
		want   string
	}{
		"all":                 {-1, log},
		"none":                {0, ""},
		"the empty last line": {1, ""},
		"two pieces":          {2, "l4\n"},
		"three pieces":        {3, "l3\nl4\n"},
		"more than there are": {9, log},
	} {
		t.Run(name, func(t *testing.T) {
			got := ConsoleTail(log, tc.length)
			if got != tc.want {
				t.Fatalf("ConsoleTail(%d) = %q, want %q", tc.length, got, tc.want)
			}
			if tc.length > 0 && tc.length <= 5 && len(strings.Split(got, "\n")) != tc.length {
				t.Fatalf("%q splits into %d, asked for %d", got, len(strings.Split(got, "\n")), tc.length)
			}
		})
	}
	if got := ConsoleTail("no newline at the end", 1); got != "no newline at the end" {
		t.Fatalf("a last line without newline: %q", got)
	}
}
