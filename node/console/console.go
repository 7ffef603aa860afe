// Package console serves guests' interactive consoles over websockets:
// the serial console (the guest's first serial port) and the graphical
// one (its display's VNC server, which noVNC speaks RFB to). A Proxy
// bridges a websocket client to the unix socket where the guest's QEMU
// exposes the console when the guest runs on this node, and otherwise
// relays to the Proxy of the node that hosts it, over the cluster's peer
// port. Either way it moves the bytes as they are.
//
// It moves bytes only. Who may connect is decided before Serve is called
// (the compute API checks the console token; the peer port admits only
// the cluster's nodes). It must not start, stop or otherwise change VMs.
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/rackstack/rackstack/node/hypervisor"
)

const (
	// Subprotocol is the websocket subprotocol of Nova's serial proxy
	// (raw bytes in binary messages), chosen when the client offers it.
	Subprotocol = "binary"
	// PeerPath is where PeerHandler is mounted on the peer port; the
	// guest's id follows it.
	PeerPath = "/peer/compute/v1/serial/"
)

// Kind is a kind of console.
type Kind string

const (
	Serial Kind = "serial" // the first serial port: bytes
	VNC    Kind = "vnc"    // the display's VNC server: RFB
)

// PeerPathOf is where PeerHandlerOf(kind) is mounted on the peer port.
func PeerPathOf(kind Kind) string {
	if kind == Serial {
		return PeerPath
	}
	return "/peer/compute/v1/" + string(kind) + "/"
}

// Errors a console request ends with before the websocket is up; Serve
// answers each with its own status (see failures).
var (
	// ErrNotFound: the guest is not on the node it should be on.
	ErrNotFound = errors.New("guest not found on its node")
	// ErrBusy: someone else holds the console; QEMU serves one client at
	// a time and would leave a second one hanging.
	ErrBusy = errors.New("console in use")
	// ErrNotRunning: the guest has no process, so no console.
	ErrNotRunning = errors.New("guest not running")
	// ErrUnreachable: the guest's node cannot be reached.
	ErrUnreachable = errors.New("node unreachable")
	// ErrStopped: the proxy is shutting down.
	ErrStopped = errors.New("console proxy stopped")
)

// failures maps errors to HTTP statuses, and to the code a peer sends in
// the errorHeader so that the relaying node can map it back.
var failures = []struct {
	err    error
	status int
	code   string
}{
	{ErrNotFound, http.StatusNotFound, "not-found"},
	{hypervisor.ErrNotFound, http.StatusNotFound, "not-found"},
	{ErrBusy, http.StatusConflict, "busy"},
	{ErrNotRunning, http.StatusConflict, "not-running"},
	{ErrUnreachable, http.StatusBadGateway, "unreachable"},
	{ErrStopped, http.StatusServiceUnavailable, "stopped"},
}

const errorHeader = "X-Rackstack-Console-Error"

// Guests finds the console sockets of this node's guests.
type Guests interface {
	// Socket returns the path of a guest's console socket of kind; an
	// error wrapping ErrNotFound or hypervisor.ErrNotFound when the guest
	// is not on this node (or has no such console).
	Socket(ctx context.Context, id string, kind Kind) (string, error)
}

// Peers reaches the other nodes' peer ports (a *cluster.Node).
type Peers interface {
	PeerAddress(node string) (string, error)
	PeerClient() *http.Client
}

// Config configures a Proxy.
type Config struct {
	// Node is this node's name: its guests are bridged here, the others'
	// consoles relayed to their node.
	Node string
	// Guests are this node's; nil when it runs none.
	Guests Guests
	// Peers relays to other nodes; nil serves this node's guests only.
	Peers Peers
	// OriginPatterns lets browser pages from other origins connect (see
	// websocket.AcceptOptions); the request's own host is always allowed.
	OriginPatterns []string
	Log            *slog.Logger
	// DialTimeout bounds reaching the socket or the peer (default 10s).
	DialTimeout time.Duration
}

// Proxy serves serial consoles.
type Proxy struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	stopped  bool
	busy     map[string]bool // consoles of this node's guests that are open, by kind/id
	sessions map[*session]struct{}
	wg       sync.WaitGroup
}

type session struct{ cancel context.CancelFunc }

// New builds a Proxy.
func New(cfg Config) *Proxy {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	return &Proxy{cfg: cfg, log: cfg.Log, busy: map[string]bool{}, sessions: map[*session]struct{}{}}
}

// Run returns when ctx ends, after closing every open console: their
// connections are hijacked, so the HTTP server's shutdown does not see
// them. Consoles asked for afterwards are refused with ErrStopped.
func (p *Proxy) Run(ctx context.Context) error {
	<-ctx.Done()
	p.mu.Lock()
	p.stopped = true
	for s := range p.sessions {
		s.cancel()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}

// Serve upgrades r to a websocket and bridges it to the serial console of
// guest id, which runs on node host, until either side closes. Failures
// before the upgrade are answered with a status: 404 (the guest is not
// there), 409 (console in use, guest not running), 502 (its node is
// unreachable), 503 (the proxy is stopping).
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, id, host string) {
	p.ServeKind(w, r, id, host, Serial)
}

// ServeKind is Serve for a console of kind. A VNC console's client is
// noVNC, which offers the same "binary" subprotocol (RFB in binary
// messages).
func (p *Proxy) ServeKind(w http.ResponseWriter, r *http.Request, id, host string, kind Kind) {
	// The request's context must not be used once the connection is
	// hijacked; the session's lives until Run ends it.
	ctx, end, err := p.begin(r.Context())
	if err != nil {
		p.fail(w, id, kind, err)
		return
	}
	defer end()
	stream, err := p.open(ctx, id, host, kind)
	if err != nil {
		p.fail(w, id, kind, err)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}, OriginPatterns: p.cfg.OriginPatterns})
	if err != nil {
		stream.Close() // Accept has answered the client
		p.log.Info(string(kind)+" console refused", "server", id, "remote", r.RemoteAddr, "err", err)
		return
	}
	start := time.Now()
	p.log.Info(string(kind)+" console opened", "server", id, "host", host, "remote", r.RemoteAddr)
	err = Bridge(ctx, ws, stream)
	p.log.Info(string(kind)+" console closed", "server", id, "host", host, "remote", r.RemoteAddr, "duration", time.Since(start).Round(time.Millisecond), "err", err)
}

// PeerHandler serves other nodes' relays to this node's guests' serial
// consoles at PeerPath<id>; the peer port's mutual TLS keeps everyone
// else out.
func (p *Proxy) PeerHandler() http.Handler { return p.PeerHandlerOf(Serial) }

// PeerHandlerOf is PeerHandler for consoles of kind, at PeerPathOf(kind).
func (p *Proxy) PeerHandlerOf(kind Kind) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeKind(w, r, strings.TrimPrefix(r.URL.Path, PeerPathOf(kind)), p.cfg.Node, kind)
	})
}

// begin registers a session, so that Run can end it.
func (p *Proxy) begin(parent context.Context) (context.Context, func(), error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, nil, ErrStopped
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	s := &session{cancel: cancel}
	p.sessions[s] = struct{}{}
	p.wg.Add(1)
	return ctx, func() {
		cancel()
		p.mu.Lock()
		delete(p.sessions, s)
		p.mu.Unlock()
		p.wg.Done()
	}, nil
}

// open reaches the guest's console: its socket here, or a relay through
// its node.
func (p *Proxy) open(ctx context.Context, id, host string, kind Kind) (io.ReadWriteCloser, error) {
	if !validID(id) || host == "" {
		return nil, fmt.Errorf("%s console of %q: %w", kind, id, ErrNotFound)
	}
	if host == p.cfg.Node {
		return p.openLocal(ctx, id, kind)
	}
	return p.openPeer(ctx, id, host, kind)
}

// validID keeps ids that could name another file out of driver paths.
func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\\\x00")
}

func (p *Proxy) openLocal(ctx context.Context, id string, kind Kind) (io.ReadWriteCloser, error) {
	if p.cfg.Guests == nil {
		return nil, fmt.Errorf("%s console of %s: no guests on node %s: %w", kind, id, p.cfg.Node, ErrNotFound)
	}
	path, err := p.cfg.Guests.Socket(ctx, id, kind)
	if err != nil {
		return nil, fmt.Errorf("%s console of %s: %w", kind, id, err)
	}
	key := string(kind) + "/" + id
	if !p.claim(key) {
		return nil, fmt.Errorf("%s console of %s: %w", kind, id, ErrBusy)
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, "unix", path)
	if err != nil {
		p.release(key)
		if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			// No QEMU listening: the guest is stopped.
			return nil, fmt.Errorf("%s console of %s: %w", kind, id, ErrNotRunning)
		}
		return nil, fmt.Errorf("%s console of %s: dial %s: %w", kind, id, path, err)
	}
	return &claimedConn{Conn: c, release: func() { p.release(key) }}, nil
}

func (p *Proxy) claim(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[id] {
		return false
	}
	p.busy[id] = true
	return true
}

func (p *Proxy) release(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.busy, id)
}

// claimedConn frees its guest's console when closed.
type claimedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *claimedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// openPeer opens a websocket to the hosting node's PeerHandler; its
// binary messages are the console's bytes.
func (p *Proxy) openPeer(ctx context.Context, id, host string, kind Kind) (io.ReadWriteCloser, error) {
	if p.cfg.Peers == nil {
		return nil, fmt.Errorf("%s console of %s on %s: no peers: %w", kind, id, host, ErrUnreachable)
	}
	addr, err := p.cfg.Peers.PeerAddress(host)
	if err != nil {
		return nil, fmt.Errorf("%s console of %s on %s: %w (%w)", kind, id, host, ErrUnreachable, err)
	}
	dctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	u := "https://" + addr + PeerPathOf(kind) + url.PathEscape(id)
	ws, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: p.cfg.Peers.PeerClient()})
	if err != nil {
		if resp != nil {
			if e := peerError(resp.Header.Get(errorHeader)); e != nil {
				return nil, fmt.Errorf("%s console of %s on %s: %w", kind, id, host, e)
			}
		}
		return nil, fmt.Errorf("%s console of %s on %s: %w (%w)", kind, id, host, ErrUnreachable, err)
	}
	return &relay{ws: ws}, nil
}

// relay is the console of a guest on another node: a websocket to that
// node's PeerHandler, whose binary messages are the console's bytes.
// Unlike websocket.NetConn it never watches a context (a cancelled one
// drops the connection without a close frame): Close ends it cleanly,
// and the host then hangs up on the guest.
type relay struct {
	ws *websocket.Conn
	r  io.Reader // the message being read
}

func (c *relay) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			_, r, err := c.ws.Reader(context.Background())
			if err != nil {
				switch websocket.CloseStatus(err) {
				case websocket.StatusNormalClosure, websocket.StatusGoingAway:
					return 0, io.EOF
				}
				return 0, err
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue
			}
			return n, nil
		}
		return n, err
	}
}

func (c *relay) Write(p []byte) (int, error) {
	if err := c.ws.Write(context.Background(), websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (c *relay) Close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }

// peerError maps a peer's error code back to its sentinel.
func peerError(code string) error {
	for _, f := range failures {
		if code != "" && f.code == code {
			return f.err
		}
	}
	return nil
}

// fail answers a console request that failed before the upgrade. The
// client is a websocket tool, not an API client: the body is plain text.
func (p *Proxy) fail(w http.ResponseWriter, id string, kind Kind, err error) {
	status, code, msg := http.StatusInternalServerError, "", string(kind)+" console of "+id+" unavailable"
	for _, f := range failures {
		if errors.Is(err, f.err) {
			status, code, msg = f.status, f.code, err.Error()
			break
		}
	}
	if status >= 500 {
		// Peer addresses and dial errors are for the log, not the client.
		p.log.Warn(string(kind)+" console failed", "server", id, "err", err)
		if code != "" {
			msg = string(kind) + " console of " + id + ": " + peerError(code).Error()
		}
	}
	if code != "" {
		w.Header().Set(errorHeader, code)
	}
	http.Error(w, msg, status)
}
