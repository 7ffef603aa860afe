package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// caseProfiler saves rackd's CPU profile of each phase of the SDK cases
// (--profile), fetched from /debug/pprof on its API port as the admin:
// the profile of the very load the figures are measured under.
type caseProfiler struct {
	dir, url, token string
}

func newCaseProfiler(dir string, p *proc) (*caseProfiler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	pw, err := readPassword(p.dataDir)
	if err != nil {
		return nil, err
	}
	tok, err := adminToken(p.url(), pw)
	if err != nil {
		return nil, err
	}
	return &caseProfiler{dir: dir, url: p.url(), token: tok}, nil
}

// start profiles the next d (whole seconds, at least one) into the file
// name in the directory; wait returns once it is saved. A nil profiler
// profiles nothing.
func (cp *caseProfiler) start(ctx context.Context, name string, d time.Duration) (wait func()) {
	if cp == nil {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := int(math.Max(1, math.Ceil(d.Seconds())))
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", cp.url, secs), nil)
		req.Header.Set("X-Auth-Token", cp.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "rackbench: profile", name+":", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(cp.dir, name+".pprof"))
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			f.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "rackbench: profile", name+":", resp.Status, err)
		}
	}()
	return func() { <-done }
}
