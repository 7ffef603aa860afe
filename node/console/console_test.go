package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rackstack/rackstack/node/hypervisor"
)

// fakeSerial is a guest's serial socket: the test plays the guest on each
// connection the proxy makes.
type fakeSerial struct {
	path  string
	conns chan net.Conn
}

func newFakeSerial(t *testing.T) *fakeSerial {
	t.Helper()
	// Unix socket paths are short; t.TempDir's can be too long.
	dir, err := os.MkdirTemp("", "con")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeSerial{path: filepath.Join(dir, "serial.sock"), conns: make(chan net.Conn, 4)}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			f.conns <- c
		}
	}()
	return f
}

// guest waits for the proxy to connect.
func (f *fakeSerial) guest(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the proxy did not connect to the serial socket")
		return nil
	}
}

// fakeGuests maps guest ids to sockets; err, when set, is every answer.
type fakeGuests struct {
	sockets map[string]string
	err     error
}

// Socket finds a serial socket under the guest's id, a VNC one under
// "vnc/" and the id.
func (g fakeGuests) Socket(_ context.Context, id string, kind Kind) (string, error) {
	if g.err != nil {
		return "", g.err
	}
	key := id
	if kind != Serial {
		key = string(kind) + "/" + id
	}
	p, ok := g.sockets[key]
	if !ok {
		return "", fmt.Errorf("adopt %s: %w", id, hypervisor.ErrNotFound)
	}
	return p, nil
}

// fakePeers reaches test servers by node name.
type fakePeers struct {
	addrs  map[string]string
	client *http.Client
}

func (p fakePeers) PeerAddress(node string) (string, error) {
	a, ok := p.addrs[node]
	if !ok {
		return "", errors.New("no such node")
	}
	return a, nil
}

func (p fakePeers) PeerClient() *http.Client { return p.client }

// serveProxy serves p.Serve for guest "vm1" on host at /serial.
func serveProxy(t *testing.T, p *Proxy, host string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.Serve(w, r, r.URL.Query().Get("id"), host)
	}))
	t.Cleanup(srv.Close)
	return "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/serial?id="
}

func dial(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	if ws.Subprotocol() != Subprotocol {
		t.Fatalf("subprotocol %q, want %q", ws.Subprotocol(), Subprotocol)
	}
	return ws
}

// dialStatus dials expecting a refusal, and returns its status.
func dialStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, nil)
	if err == nil {
		ws.CloseNow()
		t.Fatalf("dial %s: accepted", url)
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// receive reads binary messages until want has arrived.
func receive(t *testing.T, ws *websocket.Conn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got string
	for !strings.Contains(got, want) {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("read %q so far, want %q: %v", got, want, err)
		}
		if typ != websocket.MessageBinary {
			t.Fatalf("message type %v, want binary", typ)
		}
		got += string(b)
	}
}

// guestReads reads from the guest's side until want has arrived.
func guestReads(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 1024)
	for !strings.Contains(string(got), want) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("guest read %q, want %q: %v", got, want, err)
		}
	}
}

// guestSeesEOF waits for the proxy to hang up on the guest.
func guestSeesEOF(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("guest side was not closed: %v", err)
	}
}

// closedWith waits for the proxy to close the websocket, with status.
func closedWith(t *testing.T, ws *websocket.Conn, status websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := ws.Read(ctx)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != status {
			t.Fatalf("websocket ended with %v (%v), want close status %v", got, err, status)
		}
		return
	}
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("timed out waiting: %s", what)
}

// newProxy is New with a quiet log.
func newProxy(cfg Config) *Proxy {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return New(cfg)
}

func (p *Proxy) open1(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy["serial/"+id]
}

func TestBridgeBothWays(t *testing.T) {
	fs := newFakeSerial(t)
	p := newProxy(Config{Node: "n1", Guests: fakeGuests{sockets: map[string]string{"vm1": fs.path}}})
	url := serveProxy(t, p, "n1")
	ctx := context.Background()

	ws := dial(t, url+"vm1")
	g := fs.guest(t)
	if _, err := g.Write([]byte("\r\nvm1 login: ")); err != nil {
		t.Fatal(err)
	}
	receive(t, ws, "vm1 login: ")
	// Clients send text (websocat's default) or binary: both are bytes.
	if err := ws.Write(ctx, websocket.MessageText, []byte("root\r")); err != nil {
		t.Fatal(err)
	}
	guestReads(t, g, "root\r")
	if err := ws.Write(ctx, websocket.MessageBinary, []byte{0x03, 0xff, 0x00}); err != nil {
		t.Fatal(err)
	}
	guestReads(t, g, "\x03\xff\x00")
	big := strings.Repeat("x", 200<<10) // larger than a read buffer and the default read limit
	go g.Write([]byte(big + "END"))
	receive(t, ws, big+"END")
	if err := ws.Write(ctx, websocket.MessageBinary, []byte(big)); err != nil {
		t.Fatal(err)
	}
	guestReads(t, g, big)
}

func TestCloseFromClient(t *testing.T) {
	fs := newFakeSerial(t)
	p := newProxy(Config{Node: "n1", Guests: fakeGuests{sockets: map[string]string{"vm1": fs.path}}})
	url := serveProxy(t, p, "n1")

	ws := dial(t, url+"vm1")
	g := fs.guest(t)
	// One client at a time: QEMU would leave a second one hanging.
	if code, body := dialStatus(t, url+"vm1"); code != http.StatusConflict || !strings.Contains(body, ErrBusy.Error()) {
		t.Fatalf("second console: %d %s", code, body)
	}
	if err := ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("close: %v", err)
	}
	guestSeesEOF(t, g)
	eventually(t, "console released", func() bool { return !p.open1("vm1") })
	dial(t, url+"vm1")
	fs.guest(t)
}

func TestCloseFromGuest(t *testing.T) {
	fs := newFakeSerial(t)
	p := newProxy(Config{Node: "n1", Guests: fakeGuests{sockets: map[string]string{"vm1": fs.path}}})
	url := serveProxy(t, p, "n1")

	ws := dial(t, url+"vm1")
	g := fs.guest(t)
	g.Write([]byte("bye\n"))
	g.Close() // QEMU exited
	receive(t, ws, "bye\n")
	closedWith(t, ws, websocket.StatusNormalClosure)
	eventually(t, "console released", func() bool { return !p.open1("vm1") })
}

func TestRunClosesConsoles(t *testing.T) {
	fs := newFakeSerial(t)
	p := newProxy(Config{Node: "n1", Guests: fakeGuests{sockets: map[string]string{"vm1": fs.path}}})
	url := serveProxy(t, p, "n1")
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- p.Run(ctx) }()

	ws := dial(t, url+"vm1")
	g := fs.guest(t)
	cancel()
	closedWith(t, ws, websocket.StatusGoingAway)
	guestSeesEOF(t, g)
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if code, _ := dialStatus(t, url+"vm1"); code != http.StatusServiceUnavailable {
		t.Fatalf("console after Run: %d", code)
	}
}

func TestRefusals(t *testing.T) {
	stopped := filepath.Join(t.TempDir(), "gone.sock") // no QEMU listens
	tests := map[string]struct {
		cfg    Config
		id     string
		host   string
		status int
	}{
		"unknown guest":       {Config{Node: "n1", Guests: fakeGuests{}}, "vm9", "n1", http.StatusNotFound},
		"no compute here":     {Config{Node: "n1"}, "vm1", "n1", http.StatusNotFound},
		"path in id":          {Config{Node: "n1", Guests: fakeGuests{sockets: map[string]string{"..": stopped}}}, "..", "n1", http.StatusNotFound},
		"unplaced":            {Config{Node: "n1", Guests: fakeGuests{}}, "vm1", "", http.StatusNotFound},
		"guest stopped":       {Config{Node: "n1", Guests: fakeGuests{sockets: map[string]string{"vm1": stopped}}}, "vm1", "n1", http.StatusConflict},
		"other node, no peer": {Config{Node: "n1", Guests: fakeGuests{}}, "vm1", "n2", http.StatusBadGateway},
		"unknown node":        {Config{Node: "n1", Peers: fakePeers{client: http.DefaultClient}}, "vm1", "n2", http.StatusBadGateway},
		"driver error":        {Config{Node: "n1", Guests: fakeGuests{err: errors.New("qmp: boom")}}, "vm1", "n1", http.StatusInternalServerError},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url := serveProxy(t, newProxy(tc.cfg), tc.host)
			code, body := dialStatus(t, url+tc.id)
			if code != tc.status {
				t.Fatalf("status %d (%s), want %d", code, body, tc.status)
			}
			if strings.Contains(body, "boom") {
				t.Fatalf("internal error shown to the client: %s", body)
			}
		})
	}
}

// TestRelay: the API node (n2) relays to the node hosting the guest (n1)
// through n1's PeerHandler, over TLS as on the peer port.
func TestRelay(t *testing.T) {
	fs := newFakeSerial(t)
	host := newProxy(Config{Node: "n1", Guests: fakeGuests{sockets: map[string]string{"vm1": fs.path}}})
	mux := http.NewServeMux()
	mux.Handle(PeerPath, host.PeerHandler())
	peer := httptest.NewTLSServer(mux)
	t.Cleanup(peer.Close)
	api := newProxy(Config{Node: "n2", Peers: fakePeers{addrs: map[string]string{"n1": peer.Listener.Addr().String()}, client: peer.Client()}})
	url := serveProxy(t, api, "n1")
	ctx := context.Background()

	ws := dial(t, url+"vm1")
	g := fs.guest(t)
	g.Write([]byte("login: "))
	receive(t, ws, "login: ")
	ws.Write(ctx, websocket.MessageText, []byte("root\r"))
	guestReads(t, g, "root\r")

	// The host's refusals come back as they were.
	if code, body := dialStatus(t, url+"vm1"); code != http.StatusConflict || !strings.Contains(body, ErrBusy.Error()) {
		t.Fatalf("second console through the relay: %d %s", code, body)
	}
	if code, _ := dialStatus(t, url+"vm9"); code != http.StatusNotFound {
		t.Fatalf("unknown guest through the relay: %d", code)
	}

	// Client closes: the host hangs up on the guest.
	ws.Close(websocket.StatusNormalClosure, "")
	guestSeesEOF(t, g)
	eventually(t, "console released on the host", func() bool { return !host.open1("vm1") })

	// Guest goes away: the client sees a normal close through the relay.
	ws = dial(t, url+"vm1")
	g = fs.guest(t)
	g.Write([]byte("bye"))
	g.Close()
	receive(t, ws, "bye")
	closedWith(t, ws, websocket.StatusNormalClosure)
}

// TestRelayVNC: a VNC console is relayed like a serial one, to the
// guest's VNC socket, through the host's PeerHandlerOf(VNC); it is
// claimed apart from the serial console, and a guest without one is 404.
func TestRelayVNC(t *testing.T) {
	serial, vnc := newFakeSerial(t), newFakeSerial(t)
	host := newProxy(Config{Node: "n1", Guests: fakeGuests{sockets: map[string]string{"vm1": serial.path, "vnc/vm1": vnc.path}}})
	mux := http.NewServeMux()
	mux.Handle(PeerPathOf(VNC), host.PeerHandlerOf(VNC))
	mux.Handle(PeerPath, host.PeerHandler())
	peer := httptest.NewTLSServer(mux)
	t.Cleanup(peer.Close)
	api := newProxy(Config{Node: "n2", Peers: fakePeers{addrs: map[string]string{"n1": peer.Listener.Addr().String()}, client: peer.Client()}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeKind(w, r, r.URL.Query().Get("id"), "n1", Kind(r.URL.Query().Get("kind")))
	}))
	t.Cleanup(srv.Close)
	url := "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/?kind=vnc&id="

	ws := dial(t, url+"vm1")
	g := vnc.guest(t)
	g.Write([]byte("RFB 003.008\n"))
	receive(t, ws, "RFB 003.008\n")
	ws.Write(context.Background(), websocket.MessageBinary, []byte("RFB 003.008\n"))
	guestReads(t, g, "RFB 003.008\n")
	// The serial console is a console of its own, free beside it.
	sws := dial(t, "ws://"+strings.TrimPrefix(srv.URL, "http://")+"/?kind=serial&id=vm1")
	serial.guest(t)
	sws.Close(websocket.StatusNormalClosure, "")
	if code, _ := dialStatus(t, url+"vm1"); code != http.StatusConflict {
		t.Fatalf("second VNC console: %d", code)
	}
	if code, _ := dialStatus(t, url+"vm9"); code != http.StatusNotFound {
		t.Fatalf("VNC console of an unknown guest: %d", code)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	guestSeesEOF(t, g)
}

// lockedBuffer collects a proxy's log.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRelayStop: the relaying node stops; its client is told so, and the
// host sees the relay close cleanly and hangs up on the guest.
func TestRelayStop(t *testing.T) {
	fs := newFakeSerial(t)
	var hostLog lockedBuffer
	host := newProxy(Config{Node: "n1", Guests: fakeGuests{sockets: map[string]string{"vm1": fs.path}}, Log: slog.New(slog.NewTextHandler(&hostLog, nil))})
	mux := http.NewServeMux()
	mux.Handle(PeerPath, host.PeerHandler())
	peer := httptest.NewTLSServer(mux)
	t.Cleanup(peer.Close)
	api := newProxy(Config{Node: "n2", Peers: fakePeers{addrs: map[string]string{"n1": peer.Listener.Addr().String()}, client: peer.Client()}})
	url := serveProxy(t, api, "n1")
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- api.Run(ctx) }()

	ws := dial(t, url+"vm1")
	g := fs.guest(t)
	cancel()
	closedWith(t, ws, websocket.StatusGoingAway)
	guestSeesEOF(t, g)
	<-ran
	eventually(t, "host logs the relay's end", func() bool { return strings.Contains(hostLog.String(), `msg="serial console closed"`) })
	if !strings.Contains(hostLog.String(), "err=<nil>") {
		t.Fatalf("the relay did not close cleanly:\n%s", hostLog.String())
	}
}
