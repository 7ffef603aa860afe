package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrUnauthorized is returned when the provisioning server answers 401: the
// token on the kernel command line names a boot that is over (the node was
// redeployed, deleted, or the discovery token expired). Retrying cannot
// help; only a new boot brings a new token.
var ErrUnauthorized = errors.New("the provisioning server rejected this boot's token (401): it is not valid any more; power-cycle the machine for a new boot")

// maxConfigDrive bounds the config drive the agent buffers in memory (the
// limit Ironic puts on config drives).
const maxConfigDrive = 64 << 20

// client calls the provisioning server with the boot's token, retrying each
// call a bounded number of times with doubling waits.
type client struct {
	base     string
	token    string
	hc       *http.Client
	attempts int
	backoff  time.Duration
	log      *slog.Logger
}

// statusError is an answer the server gave that is not a success.
type statusError struct {
	method, path string
	code         int
	body         string
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.code, http.StatusText(e.code))
	if e.body != "" {
		msg += ": " + e.body
	}
	return msg
}

// retryable says whether another attempt may succeed: network errors and
// the server's own failures, not a request it refused.
func retryable(err error) bool {
	if errors.Is(err, ErrUnauthorized) || errors.Is(err, context.Canceled) {
		return false
	}
	var nr errNoRetry
	if errors.As(err, &nr) {
		return false
	}
	var se *statusError
	if errors.As(err, &se) {
		return se.code >= 500 || se.code == http.StatusTooManyRequests || se.code == http.StatusRequestTimeout
	}
	return true
}

// retry runs call up to c.attempts times while its error is retryable,
// waiting c.backoff, then twice that, and so on between attempts.
func (c *client) retry(ctx context.Context, what string, call func() error) error {
	wait := c.backoff
	var err error
	for i := 1; ; i++ {
		err = call()
		if err == nil || !retryable(err) || i >= c.attempts {
			break
		}
		c.log.Warn("retrying", "call", what, "attempt", i, "of", c.attempts, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
	if err != nil && retryable(err) {
		return fmt.Errorf("%s: gave up after %d attempts: %w", what, c.attempts, err)
	}
	return err
}

func (c *client) request(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// check turns a non-2xx answer into an error (ErrUnauthorized for 401) and
// closes its body.
func check(resp *http.Response, method, path string) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%s %s: %w", method, path, ErrUnauthorized)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	body := strings.Join(strings.Fields(string(b)), " ") // one console line
	if len(body) > 200 {
		body = body[:200] + "…"
	}
	return &statusError{method: method, path: path, code: resp.StatusCode, body: body}
}

// post sends in as JSON to path and decodes the answer into out (nil: the
// answer's body is ignored), with retries.
func (c *client) post(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return c.retry(ctx, "POST "+path, func() error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := c.request(cctx, http.MethodPost, path, body)
		if err != nil {
			return err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		if err := check(resp, "POST", path); err != nil {
			return err
		}
		defer resp.Body.Close()
		if out == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			return nil
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("decode POST %s answer: %w", path, err)
		}
		return nil
	})
}

// getAll fetches path into memory, refusing more than limit bytes.
func (c *client) getAll(ctx context.Context, path string, limit int64) ([]byte, error) {
	var out []byte
	err := c.retry(ctx, "GET "+path, func() error {
		req, err := c.request(ctx, http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		if err := check(resp, "GET", path); err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
		if err != nil {
			return err
		}
		if int64(len(b)) > limit {
			return &statusError{method: "GET", path: path, code: http.StatusRequestEntityTooLarge, body: fmt.Sprintf("more than %d bytes", limit)}
		}
		out = b
		return nil
	})
	return out, err
}

// download streams path into w at offset 0 and returns how many bytes it
// wrote, which is size when it succeeds: a body longer than size is an
// error, a shorter one is retried. A broken transfer resumes where it
// stopped when the server honours a Range request, and starts over when
// it answers the whole body again.
func (c *client) download(ctx context.Context, path string, w io.WriterAt, size int64, progress func(done int64)) (int64, error) {
	buf := alignedBuf(chunk) // whole aligned blocks: w may write them with O_DIRECT
	var done int64
	err := c.retry(ctx, "GET "+path, func() error {
		req, err := c.request(ctx, http.MethodGet, path, nil)
		if err != nil {
			return err
		}
		if done > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(done, 10)+"-")
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return err
		}
		if err := check(resp, "GET", path); err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-", done)) {
			done = 0
		}
		if resp.ContentLength >= 0 && done+resp.ContentLength != size {
			return fmt.Errorf("GET %s: the server sends %d bytes, image_size is %d: %w", path, done+resp.ContentLength, size, errWrongSize)
		}
		for {
			n, rerr := io.ReadFull(resp.Body, buf)
			if n > 0 {
				if done+int64(n) > size {
					return fmt.Errorf("GET %s: the image is longer than image_size %d: %w", path, size, errWrongSize)
				}
				if _, err := w.WriteAt(buf[:n], done); err != nil {
					return fmt.Errorf("write at %d: %w", done, errNoRetry{err})
				}
				done += int64(n)
				progress(done)
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				if done < size {
					return fmt.Errorf("GET %s: the image ended after %d of %d bytes", path, done, size)
				}
				return nil
			}
			if rerr != nil {
				return rerr
			}
		}
	})
	return done, err
}

// errWrongSize is a server that sends another size than it promised:
// asking again gets the same answer.
var errWrongSize = errNoRetry{errors.New("image size mismatch")}

// errNoRetry marks an error that another attempt cannot fix (a disk that
// refuses writes).
type errNoRetry struct{ err error }

func (e errNoRetry) Error() string { return e.err.Error() }
func (e errNoRetry) Unwrap() error { return e.err }
