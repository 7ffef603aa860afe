package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The timeline reads back what rackd's slog text handler wrote: quoted
// values with escapes, and the millisecond time.
func TestReadNodeEventsFromSlogText(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("ipxe: boot script", "mac", "52:54:00:00:00:01")
	log.Info("conductor: node event", "node", "n-1", "state", "wait call-back", "type", "provisioning",
		"event", `deploying → wait call-back: powered into PXE, "quoted" and a = sign`)
	log.Warn("conductor: node event", "node", "n-2", "event", "deploying failed: x")
	path := filepath.Join(t.TempDir(), "rackd.log")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	evs := readNodeEvents(path)
	if len(evs) != 2 {
		t.Fatalf("events %+v, want the two node events", evs)
	}
	if evs[0].node != "n-1" || evs[0].event != `deploying → wait call-back: powered into PXE, "quoted" and a = sign` {
		t.Errorf("first event %+v", evs[0])
	}
	if evs[1].node != "n-2" || evs[1].event != "deploying failed: x" {
		t.Errorf("second event %+v", evs[1])
	}
	if d := time.Since(evs[0].at); d < 0 || d > time.Minute {
		t.Errorf("first event at %v: not the time it was logged", evs[0].at)
	}
}

// A node's timeline merges its conductor events with its console's
// marks in time order; each boot's marks count from its own first line,
// and other nodes' events stay out.
func TestNodeTimelineMerges(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	events := []rackdEvent{
		{at: at(-1), node: "n-1", event: "before the start"},
		{at: at(0.2), node: "n-1", event: "deploying: booting the agent ramdisk to deploy"},
		{at: at(0.3), node: "n-2", event: "another node's"},
		{at: at(30), node: "n-1", event: "wait call-back → active: deployed"},
	}
	lines := []stampedLine{
		{at: at(0.4), boot: 1, text: "SeaBIOS"},
		{at: at(5), boot: 1, cpu: 4 * time.Second, text: "[    4.04] Run /init as init process"},
		{at: at(6), boot: 1, cpu: 5 * time.Second, text: "rack-agent: level=INFO msg=running command=c op=deploy"},
		{at: at(7), boot: 1, cpu: 5 * time.Second, text: "rack-agent: level=INFO msg=running command=c op=deploy"},
		{at: at(30.1), boot: 2, text: "SeaBIOS"},
	}
	rows := nodeTimeline(events, "n-1", lines, t0)
	var got []string
	for _, r := range rows {
		got = append(got, r.what)
	}
	want := []string{
		"deploying: booting the agent ramdisk to deploy",
		"QEMU started: first console line",
		"kernel: /init starts",
		"agent: command starts",
		"wait call-back → active: deployed",
		"QEMU started: first console line",
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("timeline\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var out bytes.Buffer
	printTimeline(&out, "title", rows, t0)
	if !strings.Contains(out.String(), "+5.00 s") || !strings.Contains(out.String(), "cpu   4.0 (+ 4.0)") {
		t.Errorf("printed:\n%s", out.String())
	}
}
