package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// connConcurrency is how many clients open connections at once.
const connConcurrency = 8

// connRun measures new TCP connections per second: connConcurrency
// clients in clientNS each connect to dst (the server's address, or one
// NAT takes to it) and a server in serverNS, send 1 byte,
// read the server's 1 byte, and close, over and over for d. Every
// connection is a new flow to the firewall: its first packet pays for the
// rules, where rr's pay only once.
func connRun(ctx context.Context, clientNS, serverNS string, dst netip.Addr, d time.Duration) (float64, error) {
	addr := &unix.SockaddrInet4{Port: connPort, Addr: serverIP.As4()}
	to := &unix.SockaddrInet4{Port: connPort, Addr: dst.As4()}
	lfd, err := socketIn(serverNS)
	if err != nil {
		return 0, fmt.Errorf("conn server: %w", err)
	}
	unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(lfd, addr); err != nil {
		unix.Close(lfd)
		return 0, fmt.Errorf("conn server: bind %s:%d: %w", serverIP, connPort, err)
	}
	if err := unix.Listen(lfd, 1024); err != nil {
		unix.Close(lfd)
		return 0, fmt.Errorf("conn server: listen: %w", err)
	}
	var servers sync.WaitGroup
	for i := 0; i < connConcurrency; i++ {
		servers.Add(1)
		go func() {
			defer servers.Done()
			connServe(lfd)
		}()
	}
	defer func() {
		// Wake the accepts, then wait for them before the fd goes.
		unix.Shutdown(lfd, unix.SHUT_RDWR)
		servers.Wait()
		unix.Close(lfd)
	}()

	var (
		total    atomic.Int64
		clients  sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < connConcurrency; i++ {
		clients.Add(1)
		go func() {
			defer clients.Done()
			n, err := connClient(ctx, clientNS, to, deadline)
			total.Add(int64(n))
			if err != nil {
				errMu.Lock()
				firstErr = errors.Join(firstErr, err)
				errMu.Unlock()
			}
		}()
	}
	clients.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return 0, fmt.Errorf("conn client: %w", firstErr)
	}
	return float64(total.Load()) / elapsed.Seconds(), nil
}

// connServe answers connections on lfd until it is shut down: read 1 byte,
// write 1 byte, close.
func connServe(lfd int) {
	buf := make([]byte, 1)
	for {
		cfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return
		}
		setTimeouts(cfd, rrIOTimeout)
		if n, err := readRetry(cfd, buf); err == nil && n == 1 {
			writeRetry(cfd, buf)
		}
		unix.Close(cfd)
	}
}

// connClient opens connections from a thread kept in the client's
// namespace (entering it per connection would cost more than the
// connection) until deadline, and returns how many completed.
func connClient(ctx context.Context, ns string, addr *unix.SockaddrInet4, deadline time.Time) (n int, err error) {
	err = inNetns(ns, func() error {
		var cerr error
		n, cerr = connLoop(ctx, addr, deadline)
		return cerr
	})
	return n, err
}

// connLoop is connClient's loop, on a thread in the client's namespace.
// The thread goes back afterwards rather than end with its goroutine: an
// iperf3 server started from it would get its Pdeathsig.
func connLoop(ctx context.Context, addr *unix.SockaddrInet4, deadline time.Time) (int, error) {
	buf := []byte{'x'}
	n := 0
	for ; time.Now().Before(deadline); n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return n, ctx.Err()
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return n, fmt.Errorf("socket: %w", err)
		}
		err = connOnce(fd, addr, buf)
		unix.Close(fd)
		if err != nil {
			return n, fmt.Errorf("connection %d: %w", n, err)
		}
	}
	return n, nil
}

func connOnce(fd int, addr *unix.SockaddrInet4, buf []byte) error {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := setTimeouts(fd, rrIOTimeout); err != nil {
		return err
	}
	if err := connectRetry(fd, addr); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if _, err := writeRetry(fd, buf); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	r, err := readRetry(fd, buf)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if r != 1 {
		return errors.New("server closed without answering")
	}
	return nil
}
