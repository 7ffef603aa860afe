package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rackstack/rackstack/provision/bmc/bmcsim"
)

// Where a deploy's time goes, node by node: the conductor logs each
// event of a node's history as it commits it ("conductor: node event",
// to the millisecond), and each machine's serial console is stamped
// here as its lines appear, with the wall time and the CPU time its QEMU
// has used so far. After a deploy the suite prints both, merged, for
// every node: how long each step took and what the emulated CPU spent
// on it, which tells a step that waits (for the conductor, a BMC, a
// poll) from one that computes (the guest, slower when three share two
// cores).

// stampedLine is one console line as it appeared.
type stampedLine struct {
	at   time.Time
	cpu  time.Duration // the QEMU process's CPU time when the line was read
	boot int           // the machine's QEMU process: each power-on starts one
	text string
}

// consoleWatch stamps a machine's console until stop.
type consoleWatch struct {
	mu    sync.Mutex
	lines []stampedLine
	stop  chan struct{}
	done  chan struct{}
}

// maxStampedLines bounds what one machine's watch keeps (a boot prints
// about 400 lines).
const maxStampedLines = 20000

// watchConsole starts stamping mc's console, reading it every 100 ms.
func watchConsole(mc *provMachine) *consoleWatch {
	w := &consoleWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		var off int64
		var partial []byte
		pid, boot := 0, 0
		var cpu time.Duration
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			now := time.Now()
			p := machinePID(mc.m)
			if p != 0 && p != pid {
				// A new QEMU: it truncates the console file when it opens
				// it (the size check below starts over then).
				pid, boot, cpu = p, boot+1, 0
			}
			if c, err := cpuTime(pid); err == nil {
				cpu = c // a QEMU that exited keeps its last reading
			}
			f, err := os.Open(mc.console)
			if err != nil {
				continue
			}
			if st, err := f.Stat(); err == nil && st.Size() < off {
				off, partial = 0, nil
			}
			raw, _ := io.ReadAll(io.NewSectionReader(f, off, 1<<30))
			f.Close()
			off += int64(len(raw))
			partial = append(partial, raw...)
			for {
				i := bytes.IndexByte(partial, '\n')
				if i < 0 {
					break
				}
				line := strings.TrimRight(string(partial[:i]), "\r")
				partial = partial[i+1:]
				w.mu.Lock()
				if len(w.lines) < maxStampedLines {
					w.lines = append(w.lines, stampedLine{at: now, cpu: cpu, boot: boot, text: line})
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// machinePID is the PID of the machine's running QEMU, 0 when off.
func machinePID(m *bmcsim.Machine) int {
	if m == nil {
		return 0
	}
	raw, err := os.ReadFile(filepath.Join(m.Dir, bmcsim.PIDFile))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

func (w *consoleWatch) close() {
	if w == nil {
		return
	}
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// since returns the lines stamped at or after t.
func (w *consoleWatch) since(t time.Time) []stampedLine {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	i := sort.Search(len(w.lines), func(i int) bool { return !w.lines[i].at.Before(t) })
	return append([]stampedLine(nil), w.lines[i:]...)
}

// consoleMarks are the console lines a timeline shows: where a boot's
// time goes (firmware, kernel, /init, the agent's steps).
var consoleMarks = []struct{ substr, label string }{
	{"iPXE", "firmware: iPXE"},
	{"Run /init", "kernel: /init starts"},
	{"rack-agent: drivers loaded", "/init: drivers loaded"},
	{"rack-agent: starting rack-agent", "/init: DHCP done, agent starts"},
	{"msg=inspected", "agent: inspected"},
	{"inventory posted", "agent: inventory posted"},
	{"msg=running", "agent: command starts"},
	{"verifying image", "agent: image written, verifying"},
	{"writing config drive", "agent: writing the config drive"},
	{"command done", "agent: command done"},
	{"command failed", "agent: command failed"},
	{"result posted", "agent: result posted"},
}

// rackdEvent is a "conductor: node event" line of rackd's log.
type rackdEvent struct {
	at    time.Time
	node  string
	event string
}

// readNodeEvents reads the conductor's node events from rackd's log.
func readNodeEvents(path string) []rackdEvent {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []rackdEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `msg="conductor: node event"`) {
			continue
		}
		kv := logfmt(line)
		at, err := time.Parse(time.RFC3339Nano, kv["time"])
		if err != nil {
			continue
		}
		out = append(out, rackdEvent{at: at, node: kv["node"], event: kv["event"]})
	}
	return out
}

// logfmt splits a slog text line into its keys and (unquoted) values.
func logfmt(line string) map[string]string {
	out := map[string]string{}
	for len(line) > 0 {
		line = strings.TrimLeft(line, " ")
		eq := strings.IndexByte(line, '=')
		if eq < 0 {
			break
		}
		key, rest := line[:eq], line[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			for end < len(rest) && rest[end] != '"' {
				if rest[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(rest) {
				end = len(rest) - 1
			}
			q := rest[:end+1]
			if u, err := strconv.Unquote(q); err == nil {
				val = u
			} else {
				val = strings.Trim(q, `"`)
			}
			rest = rest[end+1:]
		} else {
			sp := strings.IndexByte(rest, ' ')
			if sp < 0 {
				sp = len(rest)
			}
			val, rest = rest[:sp], rest[sp:]
		}
		out[key] = val
		line = rest
	}
	return out
}

// timelineRow is one step of a node's timeline.
type timelineRow struct {
	at    time.Time
	what  string
	cpu   time.Duration // the QEMU's CPU time then; -1 for conductor events
	boot  int
	whose string
}

// nodeTimeline merges a node's conductor events and its machine's
// console marks from start on.
func nodeTimeline(events []rackdEvent, node string, lines []stampedLine, start time.Time) []timelineRow {
	var rows []timelineRow
	for _, ev := range events {
		if ev.node == node && !ev.at.Before(start) {
			rows = append(rows, timelineRow{at: ev.at, what: ev.event, cpu: -1, whose: "conductor"})
		}
	}
	seen := map[string]bool{}
	lastBoot := -1
	for _, l := range lines {
		if l.boot != lastBoot {
			lastBoot = l.boot
			seen = map[string]bool{}
			rows = append(rows, timelineRow{at: l.at, what: "QEMU started: first console line", cpu: l.cpu, boot: l.boot, whose: "console"})
		}
		for _, m := range consoleMarks {
			if strings.Contains(l.text, m.substr) && !seen[m.label] {
				seen[m.label] = true
				rows = append(rows, timelineRow{at: l.at, what: m.label, cpu: l.cpu, boot: l.boot, whose: "console"})
			}
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].at.Before(rows[j].at) })
	return rows
}

// printTimeline writes a node's timeline: seconds from start, the step
// before's length, and the QEMU CPU-seconds the guest spent since the
// console's previous mark (console rows only).
func printTimeline(w io.Writer, title string, rows []timelineRow, start time.Time) {
	fmt.Fprintln(w, title)
	prev := start
	var prevCPU time.Duration
	prevBoot := -1
	for _, r := range rows {
		cpu := ""
		if r.cpu >= 0 {
			if r.boot != prevBoot {
				prevCPU, prevBoot = 0, r.boot
			}
			cpu = fmt.Sprintf("cpu %5.1f (+%4.1f)", r.cpu.Seconds(), (r.cpu - prevCPU).Seconds())
			prevCPU = r.cpu
		}
		fmt.Fprintf(w, "  %+7.2f s (+%5.2f) %-9s %-18s %s\n", r.at.Sub(start).Seconds(), r.at.Sub(prev).Seconds(), r.whose, cpu, r.what)
		prev = r.at
	}
}

// loadAvg is the host's one-minute load average, for the log: the
// machine's other work decides how much CPU the guests get.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}
