package main

import (
	"io"
	"testing"
)

func TestPublicFlag(t *testing.T) {
	for name, c := range map[string]struct {
		mode, arg, want string
		bad             bool
	}{
		"dev default":   {mode: "dev", want: "172.24.4.0/24"},
		"dev off":       {mode: "dev", arg: "off", want: "off"},
		"serve default": {mode: "serve", want: "off"},
		"serve given":   {mode: "serve", arg: "192.168.77.0/24", want: "192.168.77.0/24"},
		"host bits":     {mode: "dev", arg: "172.24.4.1/24", bad: true},
		"too small":     {mode: "dev", arg: "172.24.4.0/30", bad: true},
		"not IPv4":      {mode: "dev", arg: "2001:db8::/64", bad: true},
		"not a subnet":  {mode: "dev", arg: "public", bad: true},
	} {
		t.Run(name, func(t *testing.T) {
			args := []string{"--data-dir", t.TempDir()}
			if c.arg != "" {
				args = append(args, "--public", c.arg)
			}
			if c.mode == "serve" {
				args = append(args, "--bootstrap")
			}
			o, err := parseFlags(c.mode, args, func(string) string { return "" }, io.Discard)
			if c.bad {
				if err == nil {
					t.Fatalf("--public %s accepted", c.arg)
				}
				return
			}
			if err != nil || o.Public != c.want {
				t.Fatalf("--public: %q %v, want %q", o.Public, err, c.want)
			}
		})
	}
}
