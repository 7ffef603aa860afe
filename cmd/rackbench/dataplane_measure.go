package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// startIperfServer starts a persistent iperf3 server in namespace ns,
// bound to the server port's address, and waits until it listens.
func (b *dpBench) startIperfServer(ctx context.Context, ns string) error {
	cmd := exec.Command("ip", "netns", "exec", ns, "iperf3", "--server", "--bind", serverIP.String(), "--port", strconv.Itoa(iperfPort))
	// Its own process group keeps Ctrl-C for rackbench, which stops it in
	// teardown; Pdeathsig stops it should rackbench be killed outright.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start iperf3 server: %w", err)
	}
	s := &dpServer{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	b.servers = append(b.servers, s)
	// ip netns exec execs iperf3 in place: the pid is iperf3's, and its
	// /proc/PID/net/tcp is the namespace's socket table.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("iperf3 server in %s exited: %v", ns, cmd.ProcessState)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", cmd.Process.Pid)); err == nil {
			ok := listening(f, iperfPort)
			f.Close()
			if ok {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("iperf3 server in %s not listening after 10s", ns)
}

// listening says whether a /proc/net/tcp table has a socket listening on
// port.
func listening(table io.Reader, port int) bool {
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(table)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st ...; st 0A is TCP_LISTEN.
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// throughput runs one iperf3 client in the path's client namespace and
// returns what the server received, in Gbit/s. A failed run is retried
// once: an iperf3 server may still be closing the previous test.
func (b *dpBench) throughput(ctx context.Context, p *dpPath, streams int, d time.Duration) (float64, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second)) // iperf3 --time takes whole seconds
	var err error
	for try := 0; try < 2; try++ {
		if try > 0 {
			fmt.Fprintf(b.log, "dataplane %s rules=%d streams=%d: %v; retrying\n", p.cas, p.rules, streams, err)
			time.Sleep(time.Second)
		}
		var gbps float64
		if gbps, err = iperfClient(ctx, p.client, p.target(), secs, streams); err == nil || ctx.Err() != nil {
			return gbps, err
		}
	}
	return 0, err
}

func iperfClient(ctx context.Context, ns string, dst netip.Addr, secs, streams int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "iperf3", "--client", dst.String(), "--port", strconv.Itoa(iperfPort),
		"--time", strconv.Itoa(secs), "--parallel", strconv.Itoa(streams), "--json", "--connect-timeout", "3000")
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	gbps, perr := parseIperf3(out)
	if perr != nil {
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && len(ee.Stderr) > 0 {
				return 0, fmt.Errorf("iperf3: %w: %s: %s", perr, err, strings.TrimSpace(string(ee.Stderr)))
			}
			return 0, fmt.Errorf("iperf3: %w: %s", perr, err)
		}
		return 0, fmt.Errorf("iperf3: %w", perr)
	}
	return gbps, nil
}

// parseIperf3 reads an iperf3 --json report and returns the receiver's
// rate summed over all streams, in Gbit/s.
func parseIperf3(raw []byte) (float64, error) {
	var rep struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		return 0, fmt.Errorf("parse report: %w", err)
	}
	if rep.Error != "" {
		return 0, errors.New(rep.Error)
	}
	if rep.End.SumReceived.BitsPerSecond <= 0 {
		return 0, errors.New("report has no received rate")
	}
	return rep.End.SumReceived.BitsPerSecond / 1e9, nil
}

// rrIOTimeout bounds every blocking socket call of the request/response
// test, so a path that stops forwarding fails the run instead of hanging.
const rrIOTimeout = 5 * time.Second

// rrRun measures TCP request/response: a server in serverNS answers each
// 1-byte request with 1 byte, a client in clientNS, connected to dst (the
// server's address, or one NAT takes to it), sends the next request
// when the answer arrives, on one connection, for d. It returns
// transactions per second. Both ends are blocking sockets on their own
// threads, as netperf's TCP_RR is: the kernel wakes each read directly.
func rrRun(ctx context.Context, clientNS, serverNS string, dst netip.Addr, d time.Duration) (float64, error) {
	addr := &unix.SockaddrInet4{Port: rrPort, Addr: serverIP.As4()}
	lfd, err := socketIn(serverNS)
	if err != nil {
		return 0, fmt.Errorf("rr server: %w", err)
	}
	defer unix.Close(lfd)
	unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := setTimeouts(lfd, rrIOTimeout); err != nil {
		return 0, err
	}
	if err := unix.Bind(lfd, addr); err != nil {
		return 0, fmt.Errorf("rr server: bind %s:%d: %w", serverIP, rrPort, err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		return 0, fmt.Errorf("rr server: listen: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- rrServe(lfd) }()
	n, elapsed, cerr := rrClient(ctx, clientNS, &unix.SockaddrInet4{Port: rrPort, Addr: dst.As4()}, d)
	if cerr != nil {
		// Wake an accept that will never see the client.
		unix.Shutdown(lfd, unix.SHUT_RDWR)
	}
	serr := <-served
	if cerr != nil {
		return 0, fmt.Errorf("rr client: %w", cerr)
	}
	if serr != nil {
		return 0, fmt.Errorf("rr server: %w", serr)
	}
	return float64(n) / elapsed.Seconds(), nil
}

func rrServe(lfd int) error {
	var (
		cfd int
		err error
	)
	for {
		cfd, _, err = unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	defer unix.Close(cfd)
	unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := setTimeouts(cfd, rrIOTimeout); err != nil {
		return err
	}
	buf := make([]byte, 1)
	for {
		n, err := readRetry(cfd, buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if n == 0 {
			return nil // the client is done
		}
		if _, err := writeRetry(cfd, buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
}

func rrClient(ctx context.Context, ns string, addr *unix.SockaddrInet4, d time.Duration) (int, time.Duration, error) {
	fd, err := socketIn(ns)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(fd)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if err := setTimeouts(fd, rrIOTimeout); err != nil {
		return 0, 0, err
	}
	if err := connectRetry(fd, addr); err != nil {
		return 0, 0, fmt.Errorf("connect: %w", err)
	}
	buf := []byte{'x'}
	start := time.Now()
	deadline := start.Add(d)
	n := 0
	for ; time.Now().Before(deadline); n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		if _, err := writeRetry(fd, buf); err != nil {
			return 0, 0, fmt.Errorf("write: %w", err)
		}
		r, err := readRetry(fd, buf)
		if err != nil {
			return 0, 0, fmt.Errorf("read after %d transactions: %w", n, err)
		}
		if r == 0 {
			return 0, 0, fmt.Errorf("server closed after %d transactions", n)
		}
	}
	return n, time.Since(start), nil
}

// A socket call with a timeout is not restarted after a signal
// (signal(7)), and Go's runtime sends signals to its threads: retry.
func readRetry(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func writeRetry(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Write(fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// connectRetry connects a blocking socket; a connect interrupted by a
// signal goes on in the background, so it waits for that one to finish.
func connectRetry(fd int, addr unix.Sockaddr) error {
	deadline := time.Now().Add(rrIOTimeout)
	err := unix.Connect(fd, addr)
	for (err == unix.EINTR || err == unix.EALREADY) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		err = unix.Connect(fd, addr)
	}
	if err == unix.EISCONN {
		return nil
	}
	return err
}

// probeDropped tries a TCP connection to port on dst from namespace ns:
// true when the SYN vanished (a filter dropped it), false when a RST came
// back (nothing listens, nothing filtered).
func probeDropped(ns string, dst netip.Addr, port int) (bool, error) {
	fd, err := socketIn(ns)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	if err := setTimeouts(fd, 300*time.Millisecond); err != nil {
		return false, err
	}
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: dst.As4()})
	switch err {
	case unix.ECONNREFUSED:
		return false, nil
	case unix.EINPROGRESS, unix.EAGAIN, unix.ETIMEDOUT, unix.EINTR:
		// A blocking connect that outlives SO_SNDTIMEO returns EINPROGRESS.
		return true, nil
	case nil:
		return false, fmt.Errorf("something listens on %s:%d", dst, port)
	default:
		return false, fmt.Errorf("probe %s:%d: %w", dst, port, err)
	}
}

func setTimeouts(fd int, d time.Duration) error {
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return fmt.Errorf("SO_SNDTIMEO: %w", err)
	}
	return nil
}

// socketIn opens a blocking TCP socket in the network namespace at path.
// A socket belongs to the namespace it was made in, wherever the thread
// that uses it later is, so only socket(2) runs inside.
func socketIn(path string) (int, error) {
	fd := -1
	err := inNetns(path, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("socket in %s: %w", path, err)
	}
	return fd, nil
}

// inNetns runs fn on a thread moved into the namespace at path. If the
// thread cannot move back, it stays locked and dies with the goroutine.
func inNetns(path string, fn func() error) error {
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer unix.Close(target)
	runtime.LockOSThread()
	orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open own netns: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}
