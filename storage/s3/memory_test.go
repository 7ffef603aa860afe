package s3

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/rackstack/rackstack/fabric/testenv"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/object/objecttest"
	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// newBudgetEnv serves S3 over six disks with 1 MiB shards (4+2, as a
// node with six disks codes large objects) whose blob store works in bufs.
func newBudgetEnv(t *testing.T, bufs *blob.Buffers, h func(*Handler)) *env {
	t.Helper()
	return &env{objecttest.ServeWithBuffers(t, 6, 1<<20, bufs, func(svc *object.Service) http.Handler {
		hd := &Handler{Store: svc, Creds: creds}
		if h != nil {
			h(hd)
		}
		return hd
	})}
}

// streamed sends body with UNSIGNED-PAYLOAD, as SDKs do over TLS; it
// returns the response with its body unread.
func (e *env) streamed(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.Srv.URL+path, rd)
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(body))
	sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sigv4.UnsignedPayload, time.Now())
	res, err := e.Srv.Client().Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return nil, fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, msg)
	}
	return res, nil
}

// peakHeap samples the heap in use until stop is closed and returns the
// highest figure seen.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// Sixteen clients putting and then getting 24 MiB objects at once must
// keep the node's heap within its blob buffer budget plus the rest of a
// request's small change, with the garbage collector at its default
// pace. Each transfer used to allocate its own stripe buffers (some 30
// MiB per PUT, 10 MiB per GET of a part) for every request, so the heap
// grew with the number of concurrent requests: here to well over half a
// GiB, and with rackd's GOGC=400 to gigabytes.
func TestConcurrentLargeTransfersStayWithinTheBufferBudget(t *testing.T) {
	testenv.Require(t, !testing.Short(), "-short: moves 768 MiB through the disks")
	const (
		budget  = 32 << 20
		clients = 16
		size    = 24 << 20
		// Everything a request holds besides the stripe blocks (HTTP
		// buffers, a chunk, the MD5, the state) and the garbage the
		// collector lets pile up beside the live heap at GOGC=100.
		slack = 96 << 20
	)
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	bufs := blob.NewBuffers(budget)
	e := newBudgetEnv(t, bufs, nil)
	e.must(200, "", "PUT", "/big", alice, nil)
	body := payload(size)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse

	stop := make(chan struct{})
	peak := peakHeap(stop)
	run := func(what string, op func(i int) error) {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := 0; i < clients; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := op(i); err != nil {
					errs <- fmt.Errorf("%s %d: %w", what, i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
	run("PUT", func(i int) error {
		res, err := e.streamed(context.Background(), "PUT", fmt.Sprintf("/big/o%d", i), body)
		if err == nil {
			res.Body.Close()
		}
		return err
	})
	run("GET", func(i int) error {
		res, err := e.streamed(context.Background(), "GET", fmt.Sprintf("/big/o%d", i), nil)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		// Compared as it streams: the client's copies would count too.
		var buf [64 << 10]byte
		off := 0
		for {
			n, err := res.Body.Read(buf[:])
			if off+n > len(body) || !bytes.Equal(buf[:n], body[off:off+n]) {
				return fmt.Errorf("read back differs from what was written at byte %d", off)
			}
			off += n
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if off != len(body) {
			return fmt.Errorf("read back %d bytes of %d", off, len(body))
		}
		return nil
	})
	close(stop)
	grew := int64(<-peak) - int64(base)
	t.Logf("heap in use grew by at most %d MiB (budget %d MiB + slack %d MiB); blocks held %d MiB", grew>>20, budget>>20, slack>>20, bufs.Held()>>20)
	if grew > budget+slack {
		t.Errorf("heap in use grew by %d MiB under %d concurrent transfers, over the %d MiB buffer budget + %d MiB", grew>>20, clients, budget>>20, slack>>20)
	}
	// A client has its last byte before the handler that sent it has
	// returned and given its blocks back: wait for every handler.
	e.Srv.Close()
	if out := bufs.Out(); out != 0 {
		t.Errorf("%d bytes of blocks still handed out after every transfer ended", out)
	}
}

// A client that starts a GET and then stops reading, keeping its
// connection open, must not hold the blocks its object is read into
// (nor the handler) beyond the send stall: otherwise a few such clients
// would take the whole budget and every other transfer would wait.
func TestAbandonedReadGivesBackItsBlocks(t *testing.T) {
	bufs := blob.NewBuffers(blob.DefaultBufferBudget)
	e := newBudgetEnv(t, bufs, func(h *Handler) { h.SendStall = 300 * time.Millisecond })
	e.must(200, "", "PUT", "/big", alice, nil)
	// Larger than what the loopback socket buffers take in.
	body := payload(48 << 20)
	res, err := e.streamed(context.Background(), "PUT", "/big/o", body)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if out := bufs.Out(); out != 0 {
		t.Fatalf("%d bytes of blocks handed out with no transfer running", out)
	}
	before := runtime.NumGoroutine()

	// A raw connection, so nothing reads on the client's behalf.
	conn, err := net.Dial("tcp", e.Srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := http.NewRequest("GET", e.Srv.URL+"/big/o", nil)
	sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sigv4.UnsignedPayload, time.Now())
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	var first [1 << 20]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil {
		t.Fatal(err)
	}
	// Now the client reads no more. Waiting is bounded by the send stall;
	// the deadline here only keeps a broken build from hanging.
	deadline := time.Now().Add(30 * time.Second)
	for bufs.Out() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if out := bufs.Out(); out != 0 {
		t.Fatalf("a GET whose client stopped reading still holds %d bytes of blocks", out)
	}
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Errorf("%d goroutines after the abandoned read gave up, %d before it", n, before)
	}
}

// payload is n bytes that differ from stripe to stripe.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>20)
	}
	return b
}

// A client that sends the start of a PUT's body and then trickles the
// rest (here: stops, keeping its connection open) must not hold the
// stripe its body is read into beyond the fill timeout: a few such
// clients would otherwise take the whole budget, and every other transfer
// would wait for them. It is told RequestTimeout.
func TestTricklingPutGivesBackItsBlocks(t *testing.T) {
	bufs := blob.NewBuffers(blob.DefaultBufferBudget)
	e := &env{objecttest.ServeWithBlobs(t, 6, 1<<20, &blob.Store{Buffers: bufs, FillTimeout: 300 * time.Millisecond},
		func(svc *object.Service) http.Handler { return &Handler{Store: svc, Creds: creds} })}
	e.must(200, "", "PUT", "/big", alice, nil)

	conn, err := net.Dial("tcp", e.Srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const size = 8 << 20
	req, _ := http.NewRequest("PUT", e.Srv.URL+"/big/slow", nil)
	req.ContentLength = size
	sigv4.Sign(req, alice, creds[alice].secret, "us-east-1", sigv4.UnsignedPayload, time.Now())
	req.Body = io.NopCloser(bytes.NewReader(nil))
	var head bytes.Buffer
	req.Write(&head) // the header, then an error for the missing body, which follows by hand
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(payload(1 << 20)); err != nil {
		t.Fatal(err)
	}
	// The stripe is taken as the first bytes arrive.
	deadline := time.Now().Add(30 * time.Second)
	for bufs.Out() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if bufs.Out() == 0 {
		t.Fatal("the PUT never took its stripe")
	}
	// Now the client sends no more. Waiting is bounded by the fill
	// timeout; the deadline here only keeps a broken build from hanging.
	for bufs.Out() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if out := bufs.Out(); out != 0 {
		t.Fatalf("a PUT whose client stopped sending still holds %d bytes of blocks", out)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusBadRequest || !bytes.Contains(msg, []byte("<Code>RequestTimeout</Code>")) {
		t.Fatalf("trickled PUT: %d %s", res.StatusCode, msg)
	}
	if _, err := e.Svc.Head(context.Background(), "", "big", "slow"); err == nil {
		t.Fatal("the trickled object was stored")
	}
}
