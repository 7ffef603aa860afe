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
