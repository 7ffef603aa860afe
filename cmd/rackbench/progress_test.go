package main

import (
	"bytes"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &progress{total: 4, begin: clock, now: func() time.Time { return clock }}
	p.start("s3 4KiB c=1")
	if got, want := p.line("s3 4KiB c=1"), "case 1 of 4 (s3 4KiB c=1), elapsed 0s, ETA ?"; got != want {
		t.Fatalf("first case: %q, want %q", got, want)
	}
	clock = clock.Add(10 * time.Second)
	p.start("swift 4KiB c=1")
	if got, want := p.line("swift 4KiB c=1"), "case 2 of 4 (swift 4KiB c=1), elapsed 10s, ETA 30s"; got != want {
		t.Fatalf("second case: %q, want %q", got, want)
	}
}

func TestProgressQuietUnlessTerminal(t *testing.T) {
	var buf bytes.Buffer
	for name, o := range map[string]options{
		"json": {Output: "json", Log: &buf},
		"pipe": {Output: "table", Log: &buf},
	} {
		p := newProgress(o, 3)
		p.start("x")
		p.done()
		if buf.Len() != 0 {
			t.Fatalf("%s: progress wrote %q to a non-terminal", name, buf.String())
		}
	}
}
