package api

import "testing"

func TestUUIDLike(t *testing.T) {
	for s, want := range map[string]bool{
		"2b832cfd1109e8a31b733a7c3ff46253":              true,
		"af4d3e80-f531-432d-862c-79cc780adbce":          true,
		"{AF4D3E80-F531-432D-862C-79CC780ADBCE}":        true,
		"urn:uuid:af4d3e80-f531-432d-862c-79cc780adbce": true,
		"BAD_PROJECT_ID":                                false,
		"":                                              false,
		"af4d3e80-f531-432d-862c-79cc780adbc":           false,
		"gf4d3e80f531432d862c79cc780adbce":              false,
	} {
		if got := UUIDLike(s); got != want {
			t.Errorf("UUIDLike(%q) = %v, want %v", s, got, want)
		}
	}
}
