package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
)

// Internal RPC runs as HTTP over the mutual-TLS peer port; only nodes with a
// certificate from the cluster CA reach it.
const (
	rpcApply     = "/internal/v1/apply"
	rpcReadIndex = "/internal/v1/read-index"
	rpcJoin      = "/internal/v1/join"
)

// statusNotLeader tells a forwarding node to look for the leader again.
const statusNotLeader = http.StatusMisdirectedRequest

// statusOutcomeUnknown tells a forwarding node that the command may or may
// not commit (store.ErrOutcomeUnknown): it must not be sent again.
const statusOutcomeUnknown = http.StatusGatewayTimeout

func (n *Node) rpcHandler() http.Handler {
	mux := n.rpcMux
	mux.HandleFunc("POST "+rpcApply, func(w http.ResponseWriter, r *http.Request) {
		var cmd store.Command
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<20)).Decode(&cmd); err != nil {
			http.Error(w, "decode command: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !n.IsLeader() {
			http.Error(w, "not the leader", statusNotLeader)
			return
		}
		res, err := n.raft.ApplyLocal(r.Context(), cmd)
		if err != nil {
			switch {
			case errors.Is(err, store.ErrNotLeader):
				http.Error(w, err.Error(), statusNotLeader)
			case errors.Is(err, store.ErrOutcomeUnknown):
				http.Error(w, err.Error(), statusOutcomeUnknown)
			default:
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			}
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("GET "+rpcReadIndex, func(w http.ResponseWriter, r *http.Request) {
		// A halted leader's applied index lags the log: send the reader
		// on until leadership has moved.
		if !n.IsLeader() || n.State.Halted() != nil {
			http.Error(w, "not the leader", statusNotLeader)
			return
		}
		// Once this leader has caught up with what was committed before
		// its term, every acknowledged write is applied here; VerifyLeader
		// makes sure no newer leader exists.
		if err := n.raft.LeaderReady(5 * time.Second); err != nil {
			http.Error(w, err.Error(), statusNotLeader)
			return
		}
		idx := n.State.AppliedIndex()
		if err := n.raft.VerifyLeader().Error(); err != nil {
			http.Error(w, err.Error(), statusNotLeader)
			return
		}
		writeJSON(w, http.StatusOK, map[string]uint64{"index": idx})
	})
	mux.HandleFunc("GET "+rpcApplied, n.serveApplied)
	mux.HandleFunc("GET "+rpcSecretKey, n.serveSecretKey)
	mux.HandleFunc("POST "+rpcJoin, func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			http.Error(w, "decode join request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !n.IsLeader() {
			http.Error(w, "not the leader", statusNotLeader)
			return
		}
		resp, err := n.admit(r.Context(), req)
		if err != nil {
			writeJSON(w, joinStatus(err), rpcError{Message: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
	return mux
}

type rpcError struct {
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// call makes one internal RPC to the peer at addr.
func (n *Node) call(ctx context.Context, method, addr, path string, in, out any) (int, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(raw)
	}
	// Whether any of the request may have reached the peer decides what a
	// failure means: before the first header is written nothing has left
	// this node (the bytes before it sit in the transport's buffer), so
	// the call can be made again; after it, the peer may have read the
	// request and acted on it (applied a command) even if the connection
	// then dropped, and a retry could act twice.
	var sent atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteHeaderField: func(string, []string) { sent.Store(true) },
		WroteHeaders:     func() { sent.Store(true) },
		WroteRequest:     func(httptrace.WroteRequestInfo) { sent.Store(true) },
	})
	req, err := http.NewRequestWithContext(ctx, method, "https://"+addr+path, body)
	if err != nil {
		return 0, err
	}
	resp, err := n.rpc.Do(req)
	if err != nil {
		if !sent.Load() {
			return 0, fmt.Errorf("%w at %s: %v", errDial, addr, err)
		}
		return 0, fmt.Errorf("call %s at %s: %w: the request was sent, then: %v", path, addr, store.ErrOutcomeUnknown, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("call %s at %s: %w: reading the reply: %v", path, addr, store.ErrOutcomeUnknown, err)
	}
	switch resp.StatusCode {
	case statusNotLeader:
		return resp.StatusCode, store.ErrNotLeader
	case statusOutcomeUnknown:
		return resp.StatusCode, fmt.Errorf("call %s at %s: %w: %s", path, addr, store.ErrOutcomeUnknown, bytes.TrimSpace(raw))
	}
	if resp.StatusCode != http.StatusOK {
		var e rpcError
		if json.Unmarshal(raw, &e) == nil && e.Message != "" {
			return resp.StatusCode, errors.New(e.Message)
		}
		return resp.StatusCode, fmt.Errorf("peer %s: %s", addr, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode reply from %s: %w", addr, err)
		}
	}
	return resp.StatusCode, nil
}

// errLeaderChanged is the cause a forwarded command is abandoned with when
// the node it was sent to stops being the leader this node knows.
var errLeaderChanged = errors.New("the leader changed while the command was forwarded")

// forwardApply sends cmd to the leader at addr. A leader that is frozen
// (SIGSTOP, a stalled disk) keeps the connection open without answering;
// instead of waiting for the caller's deadline, the call is abandoned as
// soon as this node sees another leader (or none). Whether the command was
// appended is then unknown, so the error is store.ErrOutcomeUnknown, which
// is not retried: a retry could apply it twice.
func (n *Node) forwardApply(ctx context.Context, addr string, cmd store.Command) (store.Result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if leader, _ := n.raft.LeaderWithID(); string(leader) != addr {
					cancel(errLeaderChanged)
					return
				}
			}
		}
	}()
	var res store.Result
	_, err := n.call(ctx, http.MethodPost, addr, rpcApply, cmd, &res)
	if err != nil && errors.Is(context.Cause(ctx), errLeaderChanged) {
		return store.Result{}, fmt.Errorf("forward %s to %s: %w: %w", cmd.Type, addr, store.ErrOutcomeUnknown, errLeaderChanged)
	}
	return res, err
}

func (n *Node) readIndex(ctx context.Context, addr string) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var out struct {
		Index uint64 `json:"index"`
	}
	_, err := n.call(ctx, http.MethodGet, addr, rpcReadIndex, nil, &out)
	return out.Index, err
}

// HandlePeer registers a handler on the peer port (mutual TLS: only nodes
// of this cluster reach it). Services use it for node-to-node traffic such
// as shard transfers. Patterns must start with /peer/.
func (n *Node) HandlePeer(pattern string, h http.Handler) {
	n.rpcMux.Handle(pattern, h)
}

// PeerClient is an HTTP client whose connections go to other nodes' peer
// ports over mutual TLS. URLs are https://<raft address>/peer/...
func (n *Node) PeerClient() *http.Client { return n.rpc }

// PeerAddress returns the peer (Raft) address of a registered node.
func (n *Node) PeerAddress(name string) (string, error) {
	row, err := readNode(n.State.Txn(), name)
	if err != nil {
		return "", err
	}
	return row.RaftAddress, nil
}

// DownFor reports how long a node has gone without a heartbeat beyond the
// down threshold: 0 while it is up, and a very long time for a node the
// cluster does not know.
func (n *Node) DownFor(name string) time.Duration {
	row, err := readNode(n.State.Txn(), name)
	if err != nil {
		return 1<<63 - 1
	}
	now := n.now()
	if n.nodeUp(row, now) {
		return 0
	}
	return now.Sub(row.LastHeartbeat) - n.cfg.DownAfter
}

// NodeUp reports whether a node heartbeated recently.
func (n *Node) NodeUp(name string) bool {
	row, err := readNode(n.State.Txn(), name)
	return err == nil && n.nodeUp(row, n.now())
}
