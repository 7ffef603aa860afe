package qmp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/node/hypervisor/qmp"
)

const greeting72 = `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}`

// request is a command as the fake server receives it.
type request struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
	ID        string          `json:"id"`
}

// handler answers one request; send writes one line to the client.
type handler func(req request, send func(line string))

// fakeQEMU serves QMP on a unix socket: it sends greeting (unless empty),
// answers qmp_capabilities, and passes every other request to h. It
// records the commands it received.
type fakeQEMU struct {
	path string

	mu       sync.Mutex
	commands []string
}

func (f *fakeQEMU) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.commands...)
}

func startFake(t *testing.T, greeting string, h handler) *fakeQEMU {
	t.Helper()
	f := &fakeQEMU{path: filepath.Join(t.TempDir(), "qmp.sock")}
	l, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		l.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conns.Store(conn, true)
			wg.Go(func() { f.serve(conn, greeting, h) })
		}
	})
	return f
}

func (f *fakeQEMU) serve(conn net.Conn, greeting string, h handler) {
	defer conn.Close()
	var wmu sync.Mutex
	send := func(line string) {
		wmu.Lock()
		defer wmu.Unlock()
		if line == hangUp {
			conn.Close()
			return
		}
		fmt.Fprintf(conn, "%s\r\n", line)
	}
	if greeting != "" {
		send(greeting)
	}
	r := bufio.NewScanner(conn)
	for r.Scan() {
		var req request
		if err := json.Unmarshal(r.Bytes(), &req); err != nil {
			send(`{"error": {"class": "GenericError", "desc": "JSON parse error"}}`)
			continue
		}
		f.mu.Lock()
		f.commands = append(f.commands, req.Execute)
		f.mu.Unlock()
		if req.Execute == "qmp_capabilities" && h == nil {
			send(reply(req.ID, `{}`))
			continue
		}
		if h == nil {
			send(fmt.Sprintf(`{"error": {"class": "CommandNotFound", "desc": "The command %s has not been found"}, "id": %q}`, req.Execute, req.ID))
			continue
		}
		h(req, send)
	}
}

// hangUp, sent by a handler, makes the fake drop the connection.
const hangUp = "\x00hang up"

func reply(id, ret string) string { return fmt.Sprintf(`{"return": %s, "id": %q}`, ret, id) }

func event(name, data string) string {
	if data == "" {
		return fmt.Sprintf(`{"timestamp": {"seconds": 1700000000, "microseconds": 250}, "event": %q}`, name)
	}
	return fmt.Sprintf(`{"timestamp": {"seconds": 1700000000, "microseconds": 250}, "event": %q, "data": %s}`, name, data)
}

// withCaps answers qmp_capabilities and passes the rest to h.
func withCaps(h handler) handler {
	return func(req request, send func(string)) {
		if req.Execute == "qmp_capabilities" {
			send(reply(req.ID, `{}`))
			return
		}
		h(req, send)
	}
}

func dial(t *testing.T, path string) *qmp.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := qmp.Dial(ctx, path)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDialAndExecute(t *testing.T) {
	f := startFake(t, greeting72, withCaps(func(req request, send func(string)) {
		switch req.Execute {
		case "query-status":
			send(reply(req.ID, `{"status": "running", "singlestep": false, "running": true}`))
		case "echo":
			send(reply(req.ID, string(req.Arguments)))
		}
	}))
	c := dial(t, f.path)

	g := c.Greeting()
	if g.Version.String() != "7.2.22" || !strings.HasPrefix(g.Version.Package, "Debian") {
		t.Errorf("greeting version = %v %q, want 7.2.22 Debian...", g.Version, g.Version.Package)
	}
	if len(g.Capabilities) != 1 || g.Capabilities[0] != "oob" {
		t.Errorf("capabilities = %v, want [oob]", g.Capabilities)
	}

	ctx := context.Background()
	var st struct {
		Status  string `json:"status"`
		Running bool   `json:"running"`
	}
	if err := c.Execute(ctx, "query-status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Status != "running" || !st.Running {
		t.Errorf("query-status = %+v", st)
	}

	var echoed map[string]string
	if err := c.Execute(ctx, "echo", map[string]string{"shutdown": "pause"}, &echoed); err != nil {
		t.Fatal(err)
	}
	if echoed["shutdown"] != "pause" {
		t.Errorf("arguments arrived as %v", echoed)
	}
	if got := f.received(); len(got) != 3 || got[0] != "qmp_capabilities" {
		t.Errorf("server received %v, want qmp_capabilities first", got)
	}
}

func TestErrorReply(t *testing.T) {
	f := startFake(t, greeting72, nil) // answers every command but qmp_capabilities with CommandNotFound
	c := dial(t, f.path)
	err := c.Execute(context.Background(), "no-such-command", nil, nil)
	var qerr *qmp.Error
	if !errors.As(err, &qerr) {
		t.Fatalf("err = %v, want *qmp.Error", err)
	}
	if qerr.Class != "CommandNotFound" || qerr.Command != "no-such-command" || !strings.Contains(qerr.Desc, "not been found") {
		t.Errorf("error = %+v", qerr)
	}
}

// Replies are matched by id, not by order.
func TestRepliesMatchedByID(t *testing.T) {
	var mu sync.Mutex
	var slowID string
	slowArrived := make(chan struct{})
	f := startFake(t, greeting72, withCaps(func(req request, send func(string)) {
		switch req.Execute {
		case "slow":
			mu.Lock()
			slowID = req.ID
			mu.Unlock()
			close(slowArrived)
		case "fast":
			// Answer fast, then the older slow request.
			send(reply(req.ID, `"fast"`))
			mu.Lock()
			send(reply(slowID, `"slow"`))
			mu.Unlock()
		}
	}))
	c := dial(t, f.path)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	slowDone := make(chan error, 1)
	var slowGot string
	go func() { slowDone <- c.Execute(ctx, "slow", nil, &slowGot) }()
	<-slowArrived
	var fastGot string
	if err := c.Execute(ctx, "fast", nil, &fastGot); err != nil {
		t.Fatal(err)
	}
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	if fastGot != "fast" || slowGot != "slow" {
		t.Errorf("fast got %q, slow got %q", fastGot, slowGot)
	}
}

// QEMU sends events between a command and its reply (POWERDOWN comes before
// system_powerdown's reply); they go to Events, the reply to Execute.
func TestEventsInterleaved(t *testing.T) {
	f := startFake(t, greeting72, withCaps(func(req request, send func(string)) {
		send(event("POWERDOWN", ""))
		send(event("RESET", `{"guest": false, "reason": "host-qmp-system-reset"}`))
		send(reply(req.ID, `{}`))
	}))
	c := dial(t, f.path)
	if err := c.Execute(context.Background(), "system_powerdown", nil, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"POWERDOWN", "RESET"}
	for i, name := range want {
		select {
		case ev := <-c.Events():
			if ev.Name != name {
				t.Errorf("event %d = %s, want %s", i, ev.Name, name)
			}
			if want := time.Unix(1700000000, 250000); !ev.Time.Equal(want) {
				t.Errorf("event %d time = %v, want %v", i, ev.Time, want)
			}
			if name == "RESET" && !strings.Contains(string(ev.Data), "host-qmp-system-reset") {
				t.Errorf("RESET data = %s", ev.Data)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event %s", name)
		}
	}
}

// Nobody reads events: replies still arrive, extra events are dropped and
// counted.
func TestUnreadEventsDoNotBlockReplies(t *testing.T) {
	const flood = 1000
	f := startFake(t, greeting72, withCaps(func(req request, send func(string)) {
		for range flood {
			send(event("RTC_CHANGE", `{"offset": 0}`))
		}
		send(reply(req.ID, `{}`))
	}))
	c := dial(t, f.path)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 3 {
		if err := c.Execute(ctx, "flood", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if c.Dropped() == 0 {
		t.Error("Dropped() = 0 after 3000 unread events")
	}
	if n := len(c.Events()); n == 0 || uint64(n)+c.Dropped() != 3*flood {
		t.Errorf("buffered %d + dropped %d events, want %d in all", n, c.Dropped(), 3*flood)
	}
}

func TestExecuteTimeout(t *testing.T) {
	f := startFake(t, greeting72, withCaps(func(req request, send func(string)) {
		if req.Execute == "hang" {
			return // never answer
		}
		send(reply(req.ID, `{}`))
	}))
	c := dial(t, f.path)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Execute(ctx, "hang", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	// The connection survives a caller giving up.
	if err := c.Execute(context.Background(), "query-status", nil, nil); err != nil {
		t.Fatalf("after timeout: %v", err)
	}
}

func TestConnectionLost(t *testing.T) {
	f := startFake(t, greeting72, withCaps(func(req request, send func(string)) {
		if req.Execute == "quit" {
			send(event("SHUTDOWN", `{"guest": false, "reason": "host-qmp-quit"}`))
			send(hangUp)
			return
		}
		send(reply(req.ID, `{}`))
	}))
	c := dial(t, f.path)
	err := c.Execute(context.Background(), "quit", nil, nil)
	if !errors.Is(err, qmp.ErrClosed) {
		t.Fatalf("quit: err = %v, want ErrClosed", err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the peer hung up")
	}
	var names []string
	for ev := range c.Events() { // closed with the connection
		names = append(names, ev.Name)
	}
	if len(names) != 1 || names[0] != "SHUTDOWN" {
		t.Errorf("events = %v, want [SHUTDOWN]", names)
	}
	if err := c.Execute(context.Background(), "query-status", nil, nil); !errors.Is(err, qmp.ErrClosed) {
		t.Errorf("after hang-up: err = %v, want ErrClosed", err)
	}
	if !errors.Is(c.Err(), qmp.ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", c.Err())
	}
}

func TestClose(t *testing.T) {
	f := startFake(t, greeting72, nil)
	c := dial(t, f.path)
	if c.Err() != nil {
		t.Fatalf("Err() on an open client = %v", c.Err())
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := c.Execute(context.Background(), "query-status", nil, nil); !errors.Is(err, qmp.ErrClosed) {
		t.Errorf("after close: err = %v, want ErrClosed", err)
	}
}

func TestDialFails(t *testing.T) {
	tests := map[string]struct {
		greeting string
		handler  handler
		noServer bool
		wantErr  error  // errors.Is target, if any
		wantText string // substring, if any
	}{
		"no socket": {noServer: true, wantText: "dial"},
		"no greeting": {
			wantErr: context.DeadlineExceeded,
		},
		"not a greeting": {
			greeting: `{"hello": "world"}`,
			wantText: "not a QMP greeting",
		},
		"garbage": {
			greeting: `SSH-2.0-OpenSSH_9.2`,
			wantText: "not a QMP greeting",
		},
		"capabilities refused": {
			greeting: greeting72,
			handler: func(req request, send func(string)) {
				send(fmt.Sprintf(`{"error": {"class": "CommandNotFound", "desc": "Capabilities negotiation is already complete"}, "id": %q}`, req.ID))
			},
			wantText: "negotiate capabilities",
		},
		"capabilities unanswered": {
			greeting: greeting72,
			handler:  func(request, func(string)) {},
			wantErr:  context.DeadlineExceeded,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "none.sock")
			if !tc.noServer {
				h := tc.handler
				if h == nil {
					h = func(request, func(string)) {}
				}
				path = startFake(t, tc.greeting, h).path
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			c, err := qmp.Dial(ctx, path)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.wantText != "" && !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantText)
			}
		})
	}
}
