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

func (t *HTTPTransport) Create(ctx context.Context, d placement.Disk, name string, body io.Reader) error {
	resp, err := t.do(ctx, http.MethodPut, d, name, "", body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (t *HTTPTransport) Open(ctx context.Context, d placement.Disk, name string, offset int64) (io.ReadCloser, error) {
	resp, err := t.do(ctx, http.MethodGet, d, name, "?offset="+strconv.FormatInt(offset, 10), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

func (t *HTTPTransport) Remove(ctx context.Context, d placement.Disk, name string) error {
	resp, err := t.do(ctx, http.MethodDelete, d, name, "", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
