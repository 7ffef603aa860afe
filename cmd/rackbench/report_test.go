package main

import (
	"bytes"
	"html"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChartsPutThePreviousRunBesideThisOne(t *testing.T) {
	p := map[string]any{"object": "1MiB", "concurrency": 8}
	cur := []Result{
		newResult("storage", "rackstack-cloud", p, "put_throughput", "MiB/s", []float64{40}),
		newResult("storage", "minio", p, "put_throughput", "MiB/s", []float64{80}),
	}
	prev := []Result{
		newResult("storage", "rackstack-cloud", p, "put_throughput", "MiB/s", []float64{20}),
		newResult("storage", "rackstack-cloud", p, "gone_metric", "x", []float64{1}),
	}
	cs := charts(cur, prev)
	if len(cs) != 1 {
		t.Fatalf("%d charts, want 1 (a metric only the previous run has gets none)", len(cs))
	}
	c := cs[0]
	if len(c.Series) != 3 || c.Series[2].Name != "rackstack-cloud (previous)" {
		t.Fatalf("series %+v", c.Series)
	}
	if len(c.Bars) != 3 {
		t.Fatalf("%d bars, want 3", len(c.Bars))
	}
	// Bars scale to the largest value: minio's is the longest, the
	// previous run's (20) a quarter of it.
	if c.Bars[1].W <= c.Bars[0].W || c.Bars[2].W*4 > c.Bars[1].W+4 {
		t.Fatalf("bar widths %d %d %d", c.Bars[0].W, c.Bars[1].W, c.Bars[2].W)
	}
}

func TestReportIsSelfContained(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.html")
	rep := report{Command: "rackbench storage --cloud -o html r.html", Shape: clusterShape{Nodes: []nodeShape{{Name: "n1", Kernel: "6.18"}}, Coding: "4+2"},
		Results: []Result{newResult("storage", "rackstack-cloud", map[string]any{"object": "<4KiB>"}, "put_ops", "objects/s", []float64{3})}}
	if err := writeReport(path, rep); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	page := string(raw)
	for _, want := range []string{"<svg", "<rect", "n1", "erasure coding 4+2", "rackbench storage --cloud", "object=<4KiB>"} {
		if !strings.Contains(html.UnescapeString(page), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(page, "<4KiB>") {
		t.Error("a parameter reached the page unescaped")
	}
	for _, external := range []string{"<script", "<link", "src=", "@import", "url("} {
		if strings.Contains(page, external) {
			t.Errorf("report refers to something outside it: %q", external)
		}
	}
}

func TestOutputFlags(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"html without a file":     {[]string{"storage", "--cloud", "-o", "html"}, "needs one file name"},
		"compare without html":    {[]string{"storage", "--cloud", "--compare", "x.json"}, "--compare goes with -o html"},
		"unknown output":          {[]string{"storage", "-o", "yaml"}, "-o must be table, json or html"},
		"clean without --cloud":   {[]string{"clean"}, "clean needs --cloud"},
		"a suite without --cloud": {[]string{"launch", "--cloud"}, "has no --cloud mode"},
		"stray argument":          {[]string{"storage", "--cloud", "extra"}, `unexpected argument "extra"`},
		"unreadable compare file": {[]string{"storage", "--cloud", "-o", "html", "r.html", "--compare", "/nonexistent.json"}, "--compare"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(tc.args, &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr.String(), tc.want)
			}
		})
	}
}
