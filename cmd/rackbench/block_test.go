package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseFio(t *testing.T) {
	out := []byte("fio: file hash not empty on exit\n" +
		`{"fio version": "fio-3.33", "jobs": [{"jobname": "bench", "read": {"bw": 2048, "iops": 512.5}, "write": {"bw": 4096, "iops": 3.25}}]}`)
	cases := map[string]struct {
		job  fioJob
		want float64
	}{
		"seq read MiB/s":   {fioJob{rw: "read", bs: "1M"}, 2},
		"seq write MiB/s":  {fioJob{rw: "write", bs: "1M"}, 4},
		"random read IOPS": {fioJob{rw: "randread", bs: "4k"}, 512.5},
		"random write":     {fioJob{rw: "randwrite", bs: "4k"}, 3.25},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got, err := parseFio(out, c.job); err != nil || got != c.want {
				t.Fatalf("parseFio = %v, %v, want %v", got, err, c.want)
			}
		})
	}
	if _, err := parseFio([]byte("fio: nbd_connect_uri failed\n"), fioJob{rw: "read", bs: "1M"}); err == nil {
		t.Fatal("output without a JSON document parsed")
	}
}

func TestBlockSize(t *testing.T) {
	cases := map[string]struct {
		spec string
		want int64 // 0: refused
	}{
		"default":         {"512MiB", 512 << 20},
		"smallest":        {"1MiB", 1 << 20},
		"largest":         {"64GiB", 64 << 30},
		"too large":       {"65GiB", 0},
		"under a MiB":     {"4KiB", 0},
		"not whole MiB":   {"1537KiB", 0},
		"a list":          {"1MiB,2MiB", 0},
		"no number":       {"MiB", 0},
		"empty":           {"", 0},
		"negative":        {"-1MiB", 0},
		"bytes, no units": {"1048576", 1 << 20},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := blockSize(c.spec)
			if c.want == 0 {
				if err == nil || !strings.Contains(err.Error(), "--size") {
					t.Fatalf("blockSize(%q) = %d, %v; want an error naming --size", c.spec, got, err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("blockSize(%q) = %d, %v; want %d", c.spec, got, err, c.want)
			}
		})
	}
}

func TestVolumeFits(t *testing.T) {
	// 1 GiB at 4+2 takes 1.5 GiB: it fits in 3 GiB free, not in less.
	if err := volumeFits(1<<30, 4, 2, 3<<30); err != nil {
		t.Fatalf("1.5 GiB in 3 GiB free: %v", err)
	}
	if err := volumeFits(1<<30, 4, 2, 3<<30-1); !errors.Is(err, errNoCapacity) {
		t.Fatalf("1.5 GiB in just under 3 GiB free: %v, want errNoCapacity", err)
	}
}

func TestOnThisMachine(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8770", "http://127.0.0.3:9000/", "http://[::1]:8770"} {
		if err := onThisMachine(context.Background(), u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	// TEST-NET-1 (RFC 5737) is no machine's address.
	for _, u := range []string{"http://192.0.2.1:8770", "not a url", ""} {
		if err := onThisMachine(context.Background(), u); err == nil {
			t.Errorf("%s: taken for this machine", u)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	line := "4242 (rack d) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 75 0 0 20 0 12 0 100 0 0\n"
	if got, err := parseStatCPU([]byte(line)); err != nil || got != 2250*time.Millisecond {
		t.Fatalf("parseStatCPU = %v, %v, want 2.25s", got, err)
	}
	if _, err := parseStatCPU([]byte("4242 (rackd) S 1 2")); err == nil {
		t.Fatal("a short line parsed")
	}
}

// TestBlockGoalLines: the seq_write goal is judged on rackstack's ratio
// to the raw disk, its ceilings (the bare write pattern's ratio, and the
// durable raw rate shared by k+m shards) are shown for information only,
// and a goal whose cases were not measured says so.
func TestBlockGoalLines(t *testing.T) {
	rs := []Result{
		newResult("block", "rackstack", map[string]any{"qd": 8, "bs": "1M"}, "seq_write", "MiB/s", []float64{400}),
		newResult("block", "raw-disk", map[string]any{"qd": 8, "bs": "1M"}, "seq_write", "MiB/s", []float64{2000}),
		newResult("block", "write-pattern", map[string]any{"qd": 8, "bs": "1M"}, "seq_write", "MiB/s", []float64{800}),
		newResult("block", "raw-disk-durable", map[string]any{"qd": 8, "bs": "1M"}, "seq_write", "MiB/s", []float64{900}),
		newResult("block", "rackstack", map[string]any{"qd": 1, "bs": "4k"}, "randread_iops", "IOPS", []float64{900}),
		newResult("block", "nbdkit-file", map[string]any{"qd": 1, "bs": "4k"}, "randread_iops", "IOPS", []float64{1000}),
	}
	want := []string{
		"seq_write qd=8, rackstack vs raw-disk (0.7×k/(k+m), 4+2): 0.20×, target ≥0.47×: not met",
		"seq_write qd=8, ceiling: write-pattern (EC-coded shard files, no NBD, no metadata) vs raw-disk: 0.40× (for information: the most such a write path could reach against target ≥0.47×)",
		"seq_write qd=8, ceiling: raw-disk-durable × k/(k+m) (any format, durable as it goes) vs raw-disk: 0.30× (for information: the most such a write path could reach against target ≥0.47×)",
		"randread_iops qd=1, rackstack vs nbdkit-file: 0.90×, target ≥0.80×: met",
		"randread_iops qd=32, rackstack vs nbdkit-file: target ≥0.80×: not measured",
		"randwrite_iops qd=32, rackstack vs nbdkit-file: target ≥0.50×: not measured",
	}
	got := blockGoalLines(rs)
	if len(got) != len(want) {
		t.Fatalf("got %d lines %q, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

// TestSelectBlockCases: --cases keeps the named targets and, of their
// jobs, the named metrics; the write-pattern case runs when named or when
// no target is; empty keeps everything.
func TestSelectBlockCases(t *testing.T) {
	targets := []fioTarget{{name: "rackstack"}, {name: "raw-disk"}, {name: "raw-disk-durable", jobs: blockJobs[:1]}}
	names := func(tgs []fioTarget) (out []string) {
		for _, tg := range tgs {
			out = append(out, fmt.Sprintf("%s:%d", tg.name, len(tg.jobList())))
		}
		return out
	}
	for _, c := range []struct {
		cases   string
		want    string
		pattern bool
	}{
		{"", "[rackstack:6 raw-disk:6 raw-disk-durable:1]", true},
		{"rackstack,raw-disk,write-pattern,seq_write", "[rackstack:1 raw-disk:1]", true},
		{"rackstack,seq_write", "[rackstack:1]", false},
		{"seq_read", "[rackstack:1 raw-disk:1]", true},
		{"randread_iops", "[rackstack:2 raw-disk:2]", true},
		{"write-pattern", "[]", true},
	} {
		got, pattern := selectBlockCases(targets, c.cases)
		if fmt.Sprint(names(got)) != c.want || pattern != c.pattern {
			t.Errorf("--cases %q: %v, write-pattern %v; want %s, %v", c.cases, names(got), pattern, c.want, c.pattern)
		}
	}
}
