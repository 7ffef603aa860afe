package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rackstack/rackstack/storage/disk"
	"github.com/rackstack/rackstack/storage/placement"
)

// PeerPrefix is where shard transfers live on the mutual-TLS peer port.
const PeerPrefix = "/peer/storage/v1/disks/"

// PeerHandler serves this node's disks to other nodes:
//
//	PUT    /peer/storage/v1/disks/{disk}/shards/{name}            write a shard (body)
//	GET    /peer/storage/v1/disks/{disk}/shards/{name}?offset=N   read from offset
//	DELETE /peer/storage/v1/disks/{disk}/shards/{name}
func PeerHandler(local map[string]disk.Disk) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest := strings.TrimPrefix(r.URL.Path, PeerPrefix)
		diskID, name, ok := strings.Cut(rest, "/shards/")
		d := local[diskID]
		if !ok || d == nil {
			http.Error(w, "no such disk here: "+diskID, http.StatusNotFound)
			return
		}
		switch r.Method {
		case http.MethodPut:
			sw, err := d.Create(name)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if _, err := io.Copy(sw, r.Body); err != nil {
				sw.Abort()
				http.Error(w, "receive shard: "+err.Error(), http.StatusBadRequest)
				return
			}
			if err := sw.Commit(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case http.MethodGet:
			off, _ := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
			rc, err := d.Open(name, off)
			if errors.Is(err, disk.ErrNotFound) {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			defer rc.Close()
			w.Header().Set("Content-Type", "application/octet-stream")
			io.Copy(w, rc)
		case http.MethodDelete:
			if err := d.Remove(name); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}

// HTTPTransport reaches other nodes' disks through their peer ports.
type HTTPTransport struct {
	Client *http.Client
	// Addr returns host:port of a node's peer port.
	Addr func(node string) (string, error)
	// Timeout bounds every wait on a peer (default 10s): a delete, the
	// response to a read or a write once its body is sent, and each read
	// of a shard stream. A peer that is frozen (SIGSTOP, a hung disk)
	// keeps its connection open, so a dial timeout alone never fires.
	Timeout time.Duration
}

func (t *HTTPTransport) timeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return 10 * time.Second
}

// deadline cancels a call's context when it is armed for longer than d.
type deadline struct {
	d      time.Duration
	cancel context.CancelCauseFunc
	mu     sync.Mutex
	timer  *time.Timer
}

func newDeadline(ctx context.Context, d time.Duration) (context.Context, *deadline) {
	ctx, cancel := context.WithCancelCause(ctx)
	return ctx, &deadline{d: d, cancel: cancel}
}

func (dl *deadline) arm() {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.timer == nil {
		dl.timer = time.AfterFunc(dl.d, func() {
			dl.cancel(fmt.Errorf("%w: peer did not answer within %s", ErrStalled, dl.d))
		})
	} else {
		dl.timer.Reset(dl.d)
	}
}

func (dl *deadline) disarm() {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	if dl.timer != nil {
		dl.timer.Stop()
	}
}

func (dl *deadline) close() {
	dl.disarm()
	dl.cancel(nil)
}

// cause prefers the deadline's reason over the transport's "context
// canceled".
func cause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && errors.Is(c, ErrStalled) {
		return fmt.Errorf("%w (%v)", c, err)
	}
	return err
}

// armAtEOF arms a deadline once the request body is sent: from then on
// the peer has to answer.
type armAtEOF struct {
	r  io.Reader
	dl *deadline
}

func (a *armAtEOF) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err == io.EOF {
		a.dl.arm()
	}
	return n, err
}

// streamBody bounds each read of a response body.
type streamBody struct {
	ctx context.Context
	rc  io.ReadCloser
	dl  *deadline
}

func (b *streamBody) Read(p []byte) (int, error) {
	b.dl.arm()
	n, err := b.rc.Read(p)
	b.dl.disarm()
	if err != nil && err != io.EOF {
		err = cause(b.ctx, err)
	}
	return n, err
}

func (b *streamBody) Close() error {
	err := b.rc.Close()
	b.dl.close()
	return err
}

func (t *HTTPTransport) url(d placement.Disk, name string) (string, error) {
	addr, err := t.Addr(d.Node)
	if err != nil {
		return "", fmt.Errorf("node %s: %w", d.Node, err)
	}
	return "https://" + addr + PeerPrefix + url.PathEscape(d.ID) + "/shards/" + url.PathEscape(name), nil
}

func (t *HTTPTransport) do(ctx context.Context, method string, d placement.Disk, name, query string, body io.Reader) (*http.Response, error) {
	u, err := t.url(d, name)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, u+query, body)
	if err != nil {
		return nil, err
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s shard on %s: %w", method, d.Node, err)
	}
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %s", disk.ErrNotFound, strings.TrimSpace(string(msg)))
		}
		return nil, fmt.Errorf("%s shard on %s: HTTP %d: %s", method, d.Node, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// Create streams a shard to a peer. How long the body takes is the
// writer's business (blob.Put drops a writer that stalls); once it is sent,
// the peer has Timeout to answer.
func (t *HTTPTransport) Create(ctx context.Context, d placement.Disk, name string, body io.Reader) error {
	ctx, dl := newDeadline(ctx, t.timeout())
	defer dl.close()
	resp, err := t.do(ctx, http.MethodPut, d, name, "", &armAtEOF{r: body, dl: dl})
	if err != nil {
		return cause(ctx, err)
	}
	resp.Body.Close()
	return nil
}

// Open starts reading a shard from a peer: the peer has Timeout to answer,
// and then Timeout for each read of the stream.
func (t *HTTPTransport) Open(ctx context.Context, d placement.Disk, name string, offset int64) (io.ReadCloser, error) {
	ctx, dl := newDeadline(ctx, t.timeout())
	dl.arm()
	resp, err := t.do(ctx, http.MethodGet, d, name, "?offset="+strconv.FormatInt(offset, 10), nil)
	dl.disarm()
	if err != nil {
		dl.close()
		return nil, cause(ctx, err)
	}
	return &streamBody{ctx: ctx, rc: resp.Body, dl: dl}, nil
}

func (t *HTTPTransport) Remove(ctx context.Context, d placement.Disk, name string) error {
	ctx, dl := newDeadline(ctx, t.timeout())
	defer dl.close()
	dl.arm()
	resp, err := t.do(ctx, http.MethodDelete, d, name, "", nil)
	if err != nil {
		return cause(ctx, err)
	}
	resp.Body.Close()
	return nil
}
