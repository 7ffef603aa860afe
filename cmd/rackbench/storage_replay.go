package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"time"
)

// storageReplay times what a restart costs once the Raft log holds many
// small objects (--replay N): N 4 KiB PUTs (inline objects, one log entry
// each, at concurrency 8), then rackd is killed and started again, and
// the time until /healthz answers 200 is the restart: a leader reports
// healthy once it has applied its log (the snapshot and every entry after
// it), which every read waits for; rackd's CPU time until then is
// reported beside it, as the wall time on a shared machine is mostly
// waiting for a core. Each run starts from an empty rackd,
// so the log holds the same entries each time.
func storageReplay(ctx context.Context, o options, dir string, objects int) ([]Result, error) {
	body := make([]byte, 4<<10)
	var ready, cpuSecs, perEntry []float64
	for run := 0; run < o.Runs; run++ {
		p, c, err := startStorageNode(o, filepath.Join(dir, fmt.Sprintf("replay-%d", run)))
		if err != nil {
			return nil, err
		}
		var mu sync.Mutex
		next := 0
		_, err = parallelMiBps(8, func(int) (int64, error) {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= objects || ctx.Err() != nil {
					return 0, ctx.Err()
				}
				resp, err := c.do(ctx, "PUT", fmt.Sprintf("/bench/replay-%d", i), body, 0, nil)
				if err != nil {
					return 0, fmt.Errorf("PUT %d: %w", i, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					return 0, fmt.Errorf("PUT %d: HTTP %d", i, resp.StatusCode)
				}
			}
		})
		if err != nil {
			p.kill()
			return nil, err
		}
		p.kill()
		start := time.Now()
		if err := p.start(o.BinDir); err != nil {
			return nil, err
		}
		err = waitHealthy(p.url(), 5*time.Minute)
		took := time.Since(start).Seconds()
		// rackd's own CPU until then: on a shared machine the wall time
		// is mostly how long it waited for a core.
		ticks, cerr := cpuTicks(p.cmd.Process.Pid)
		if err == nil {
			err = cerr
		}
		if err == nil {
			// The last object must be there: healthy means caught up.
			var resp *http.Response
			if resp, err = c.do(ctx, "GET", fmt.Sprintf("/bench/replay-%d", objects-1), nil, 0, nil); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("GET after the restart: HTTP %d", resp.StatusCode)
				}
			}
		}
		p.kill()
		if err != nil {
			return nil, err
		}
		ready = append(ready, took)
		cpu := ticks / float64(clockTicks())
		cpuSecs = append(cpuSecs, cpu)
		perEntry = append(perEntry, cpu*1e3/float64(objects))
	}
	params := map[string]any{"objects": objects, "object": "4KiB", "api": "s3", "after": "SIGKILL", "until": "/healthz 200"}
	return []Result{
		newResult("storage", "rackstack", params, "restart", "s", ready),
		newResult("storage", "rackstack", params, "restart_cpu", "s", cpuSecs),
		newResult("storage", "rackstack", params, "restart_cpu_per_object", "ms", perEntry),
	}, nil
}
