package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"
	"strings"
	"testing"
)

// TestStorageGoals checks the goal lines read the right medians: the
// 64 MiB PUT against 0.8 × raw × 4/6, the ceiling beside it, and the
// ratios to MinIO.
func TestStorageGoals(t *testing.T) {
	sdk := func(cas, obj, metric string, conc int, v float64) Result {
		return newResult("storage", cas, map[string]any{"object": obj, "concurrency": conc, "client": "minio-go"}, metric, "MiB/s", []float64{v})
	}
	rs := []Result{
		newResult("storage", "raw-disk", map[string]any{"streams": 6}, "write", "MiB/s", []float64{750}),
		sdk("rackstack", "64MiB", "put_throughput", 1, 240),
		sdk("rackstack", "64MiB", "put_throughput", 8, 420),
		sdk("minio", "64MiB", "put_throughput", 1, 200),
		sdk("rackstack", "64MiB", "get_throughput", 8, 1300),
		sdk("minio", "64MiB", "get_throughput", 8, 1000),
		sdk(ceilingName, "64MiB", "put_throughput", 1, 610),
		sdk(ceilingName, "64MiB", "put_server_cpu", 1, 2.5),
		sdk(ceilingName, "64MiB", "get_throughput", 8, 1500),
		sdk(ceilingName, "64MiB", "put_client_cpu", 1, 1.5),
		newResult("storage", "rackstack", map[string]any{"object": "64MiB", "concurrency": 8, "client": plainClient}, "get_plain_throughput", "MiB/s", []float64{1400}),
		newResult("storage", "rackstack", map[string]any{"object": "64MiB", "concurrency": 8, "client": plainClient}, "get_plain_server_cpu", "CPU-ms/MiB", []float64{0.7}),
		newResult("storage", "rackstack", map[string]any{"object": "64MiB", "concurrency": 8, "client": plainClient}, "get_plain_client_cpu", "CPU-ms/MiB", []float64{0.3}),
		// The degraded case's figures are not the SDK cases'.
		newResult("storage", "rackstack", map[string]any{"object": "64MiB", "concurrency": 1, "client": "minio-go", "read": "each object once"}, "get_throughput", "MiB/s", []float64{1}),
	}
	got := strings.Join(storageGoals(rs, 2), "\n")
	for _, want := range []string{
		"64MiB PUT c=1 vs minio: 240 / 200 MiB/s = 1.20×, target ≥1.2×: met",
		"64MiB GET c=8 vs minio: 1300 / 1000 MiB/s = 1.30×, target ≥1.2×: met",
		"64MiB PUT c=1: 240 MiB/s, target ≥400 MiB/s (0.8 × raw write 750 × 4/6): not met",
		"64MiB PUT c=8: 420 MiB/s, target ≥400 MiB/s (0.8 × raw write 750 × 4/6): met",
		"64MiB GET c=8 ceiling (from memory): 1500 MiB/s (for information: the most any S3 server could reach for this client against target ≥1200 MiB/s (1.2× minio))",
		"64MiB GET c=8 rackstack, plain client (net/http, presigned GET): 1400 MiB/s against 1300 through minio-go; CPU per MiB: server 0.70 ms + client 0.30 ms, at most 2000 MiB/s on 2 cores (for information)",
		"64MiB PUT c=1 ceiling (verify + MD5, no storage): 610 MiB/s; CPU per MiB: server 2.50 ms + client 1.50 ms, at most 500 MiB/s on 2 cores (for information: the most any S3 server could reach for this client against target ≥400 MiB/s",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no line %q in\n%s", want, got)
		}
	}
	if strings.Contains(got, "GET c=1") || strings.Contains(got, "PUT c=8 ceiling") {
		t.Errorf("a line for a figure not measured:\n%s", got)
	}
}

// TestCeilingVerifies drives the PUT ceiling with minio-go: a 20 MiB
// object (a multipart upload of streaming-signed parts) goes through, and
// a client with the wrong secret is refused, so the ceiling pays for the
// signature checks it claims to.
func TestCeilingVerifies(t *testing.T) {
	ctx := context.Background()
	c, err := startCeiling()
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()
	body := make([]byte, 20<<20)
	res, err := sdkCeiling(ctx, c, 500*time.Millisecond, 1, body)
	if err != nil || res["put_throughput"] <= 0 || res["get_throughput"] <= 0 {
		t.Fatalf("ceiling PUT and GET: %v, %v", res, err)
	}
	// The ceiling process verified and hashed every byte: it used CPU.
	if res["put_server_cpu"] <= 0 {
		t.Errorf("ceiling PUT's server CPU per MiB: %v, want it measured", res)
	}
	// ETags are the bodies' MD5s, whichever hasher each PUT got (six at
	// once: some may share the md5simd server).
	small := body[:1<<20]
	for i := range small {
		small[i] = byte(i * 7)
	}
	want := md5.Sum(small)
	errs := make(chan error, 6)
	for i := range 6 {
		go func() {
			info, err := c.client.PutObject(ctx, "etags", fmt.Sprint("o", i), bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{})
			if err == nil && info.ETag != hex.EncodeToString(want[:]) {
				err = fmt.Errorf("ETag %s, want %x", info.ETag, want)
			}
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	bad, err := sdkClient(c.client.EndpointURL().String(), "ceiling", "not-the-secret")
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.PutObject(ctx, "bkt", "k", bytes.NewReader(body[:1<<20]), 1<<20, minio.PutObjectOptions{})
	if resp := minio.ToErrorResponse(err); resp.Code != "SignatureDoesNotMatch" {
		t.Fatalf("PUT with a wrong secret: %v, want SignatureDoesNotMatch", err)
	}
}
