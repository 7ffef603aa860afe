package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The peer port carries two protocols over one mutual-TLS listener; the
// first byte after the handshake says which.
const (
	protoRaft byte = 'R'
	protoRPC  byte = 'H'
)

// peerListener accepts mTLS connections and hands them to the Raft stream
// layer or to the internal RPC server.
type peerListener struct {
	ln     net.Listener
	tls    *tls.Config
	raft   *chanListener
	rpc    *chanListener
	closed chan struct{}
	once   sync.Once
}

func listenPeers(addr string, server *tls.Config) (*peerListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for peers on %s: %w", addr, err)
	}
	p := &peerListener{ln: ln, tls: server, closed: make(chan struct{})}
	p.raft = &chanListener{addr: ln.Addr(), ch: make(chan net.Conn), closed: p.closed}
	p.rpc = &chanListener{addr: ln.Addr(), ch: make(chan net.Conn), closed: p.closed}
	go p.serve()
	return p, nil
}

func (p *peerListener) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.closed:
				return
			default:
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go p.route(c)
	}
}

func (p *peerListener) route(c net.Conn) {
	tc := tls.Server(c, p.tls)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if err := tc.Handshake(); err != nil {
		c.Close()
		return
	}
	if _, err := tc.Read(b[:]); err != nil {
		c.Close()
		return
	}
	_ = tc.SetDeadline(time.Time{})
	var dst *chanListener
	switch b[0] {
	case protoRaft:
		dst = p.raft
	case protoRPC:
		dst = p.rpc
	default:
		c.Close()
		return
	}
	select {
	case dst.ch <- tc:
	case <-p.closed:
		c.Close()
	}
}

func (p *peerListener) Close() error {
	p.once.Do(func() { close(p.closed) })
	return p.ln.Close()
}

// chanListener is a net.Listener fed by peerListener.
type chanListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}
func (l *chanListener) Close() error   { return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// dialPeer opens an mTLS connection to a peer and announces the protocol.
func dialPeer(ctx context.Context, client *tls.Config, addr string, proto byte) (net.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: client}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// streamLayer is raft's view of the peer port.
type streamLayer struct {
	*chanListener
	advertise net.Addr
	client    *tls.Config
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dialPeer(ctx, s.client, string(addr), protoRaft)
}

var errAdvertise = errors.New("advertise address must be host:port with a routable host")
