package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A guest's console stand-in: it greets, then echoes what it gets
// upper-cased, and records it.
func echoConsole(t *testing.T, got chan<- string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ws.Write(r.Context(), websocket.MessageBinary, []byte("login: "))
		var all bytes.Buffer
		defer func() { got <- all.String() }()
		for {
			_, b, err := ws.Read(r.Context())
			if err != nil {
				return
			}
			all.Write(b)
			ws.Write(r.Context(), websocket.MessageBinary, bytes.ToUpper(b))
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestAttachStopsAtTheEscapeByte(t *testing.T) {
	got := make(chan string, 1)
	u := echoConsole(t, got)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	inR, inW := io.Pipe()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- attach(ctx, ws, inR, &out) }()
	inW.Write([]byte("root\r"))
	// Wait for the echo before quitting, so the order is the guest's.
	for !strings.Contains(out.String(), "ROOT") {
		select {
		case <-ctx.Done():
			t.Fatalf("no echo; output %q", out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	inW.Write([]byte("ls\x1dnot sent"))
	if err := <-done; err != nil {
		t.Fatalf("attach: %v", err)
	}
	if sent := <-got; sent != "root\rls" {
		t.Fatalf("the guest got %q, want what came before Ctrl-] only", sent)
	}
	if !strings.HasPrefix(out.String(), "login: ROOT") {
		t.Fatalf("output %q", out.String())
	}
}

// syncBuffer is a bytes.Buffer safe for the reader goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestEventsList(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /identity/v3/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Subject-Token", "tok")
		w.WriteHeader(201)
		w.Write([]byte(`{"token": {}}`))
	})
	var asked []string
	mux.HandleFunc("GET /rackstack/v1/events", func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.RawQuery)
		w.Write([]byte(`{"events": [
			{"id": "1", "time": "2026-12-05T10:00:00Z", "resource_type": "server", "resource_id": "s1", "project_id": "p1",
			 "user_id": "u1", "request_id": "req-1", "action": "create", "to": "BUILD"},
			{"id": "2", "time": "2026-12-05T10:05:00Z", "resource_type": "server", "resource_id": "s1", "project_id": "p1",
			 "action": "state", "from": "ACTIVE", "to": "SHUTOFF", "reason": "the guest crashed"}]}`))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	env := map[string]string{"OS_AUTH_URL": srv.URL + "/identity/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "pw", "OS_PROJECT_NAME": "admin"}
	var out, errb strings.Builder
	if code := run([]string{"events", "--resource", "s1"}, &out, &errb, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"RESOURCE", "create", "BUILD", "u1", "req-1", "ACTIVE → SHUTOFF", "(system)", "the guest crashed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if len(asked) != 1 || asked[0] != "resource=s1" {
		t.Errorf("asked %q, want resource=s1", asked)
	}
}
