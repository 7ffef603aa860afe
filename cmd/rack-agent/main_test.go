package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The kernel command line gives the agent its server and token; a token the
// server refuses ends it with exit code 3 and a message saying why.
func TestRefusedTokenExits(t *testing.T) {
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	defer srv.Close()
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmdline, []byte("console=ttyS0 rackstack.url="+srv.URL+" rackstack.token=old-boot rackstack.mac=52:54:00:00:00:09\n"), 0o644)
	var stderr bytes.Buffer
	code := run([]string{"-cmdline", cmdline, "-root", "../../node/inventory/testdata/machine"}, &stderr)
	if code != exitUnauthorized {
		t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUnauthorized, &stderr)
	}
	if auth != "Bearer old-boot" {
		t.Errorf("Authorization %q, want the kernel command line's token", auth)
	}
	if !strings.Contains(stderr.String(), "rack-agent: ") || !strings.Contains(stderr.String(), "not valid any more") {
		t.Errorf("stderr does not explain the refusal:\n%s", &stderr)
	}
}

func TestNoServerOnCommandLine(t *testing.T) {
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmdline, []byte("console=ttyS0 quiet\n"), 0o644)
	var stderr bytes.Buffer
	if code := run([]string{"-cmdline", cmdline}, &stderr); code != exitFailed || !strings.Contains(stderr.String(), "rackstack.url") {
		t.Errorf("exit %d, stderr %q; want %d naming rackstack.url", code, &stderr, exitFailed)
	}
}

// Flags override the kernel command line (how tests run the agent).
func TestFlagsOverrideKernelArgs(t *testing.T) {
	var got []string
	refuse := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = append(got, name+" "+r.Header.Get("Authorization"))
			http.Error(w, "no", http.StatusUnauthorized)
		}))
	}
	kernel, flag := refuse("kernel"), refuse("flag")
	defer kernel.Close()
	defer flag.Close()
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmdline, []byte("rackstack.url="+kernel.URL+" rackstack.token=kernel\n"), 0o644)
	var stderr bytes.Buffer
	run([]string{"-cmdline", cmdline, "-url", flag.URL, "-token", "flag", "-root", "../../node/inventory/testdata/machine"}, &stderr)
	if len(got) != 1 || got[0] != "flag Bearer flag" {
		t.Errorf("calls %q, want one to the flag's server with the flag's token; stderr:\n%s", got, &stderr)
	}
}
