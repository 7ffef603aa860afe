package buildinfo

import "testing"

func TestStringShowsEveryPart(t *testing.T) {
	tests := map[string]struct {
		in   Info
		want string
	}{
		"bare":     {Info{Version: "devel"}, "devel"},
		"full":     {Info{Version: "v1.2.3", Revision: "0123456789abcdef", Time: "2026-12-05T07:00:00Z", Modified: true, GoVersion: "go1.26"}, "v1.2.3 0123456789ab (2026-12-05T07:00:00Z, modified) go1.26"},
		"no times": {Info{Version: "devel", Revision: "abc"}, "devel abc"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.in.String(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if Read().Version == "" {
		t.Fatal("Read gave no version")
	}
}
