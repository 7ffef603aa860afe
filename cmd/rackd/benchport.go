package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/node/benchport"
)

// Bench ports (node/benchport) are made on the node that hosts them: the
// admin API at /rackstack/v1/nodes/{name}/bench-ports[/{id}[/run]] serves
// this node's own, and forwards another node's over the peer port, as the
// dataplane status is.
const benchPeerPrefix = "/peer/benchport/v1"

// benchRequestLimit bounds a request body; benchForwardTimeout a forwarded
// call (a run lasts at most benchport.MaxDuration).
const (
	benchRequestLimit   = 64 << 10
	benchForwardTimeout = benchport.MaxDuration + 30*time.Second
)

// benchLocal serves this node's bench ports at /ports...
func benchLocal(m *benchport.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ports", func(w http.ResponseWriter, r *http.Request) {
		api.JSON(w, http.StatusOK, map[string]any{"bench_ports": m.List()})
	})
	mux.HandleFunc("POST /ports", func(w http.ResponseWriter, r *http.Request) {
		var s benchport.Spec
		if err := decodeBench(r, &s); err != nil {
			api.Fail(w, r, api.JSONError, err)
			return
		}
		p, err := m.Create(s)
		if err != nil {
			api.Fail(w, r, api.JSONError, benchError(err))
			return
		}
		api.JSON(w, http.StatusCreated, map[string]any{"bench_port": p})
	})
	mux.HandleFunc("DELETE /ports/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Remove(r.PathValue("id")); err != nil {
			api.Fail(w, r, api.JSONError, benchError(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /ports/{id}/run", func(w http.ResponseWriter, r *http.Request) {
		var t benchport.Test
		if err := decodeBench(r, &t); err != nil {
			api.Fail(w, r, api.JSONError, err)
			return
		}
		res, err := m.Run(r.Context(), r.PathValue("id"), t)
		if err != nil {
			api.Fail(w, r, api.JSONError, benchError(err))
			return
		}
		api.JSON(w, http.StatusOK, map[string]any{"result": res})
	})
	return mux
}

func decodeBench(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, benchRequestLimit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return api.Errorf(http.StatusBadRequest, "bench port request: %v", err)
	}
	return nil
}

// benchError maps benchport's errors to HTTP once.
func benchError(err error) error {
	switch {
	case errors.Is(err, benchport.ErrInvalid):
		return api.Errorf(http.StatusBadRequest, "%v", err)
	case errors.Is(err, benchport.ErrNotFound):
		return api.Errorf(http.StatusNotFound, "%v", err)
	case errors.Is(err, benchport.ErrExists), errors.Is(err, benchport.ErrTooMany):
		return api.Errorf(http.StatusConflict, "%v", err)
	}
	return err
}

// benchPorts answers /rackstack/v1/nodes/{name}/bench-ports...: this
// node's (m nil: it runs no dataplane), or another's over the peer port.
func benchPorts(o *options, node *cluster.Node, m *benchport.Manager) http.HandlerFunc {
	var local http.Handler
	if m != nil {
		local = benchLocal(m)
	}
	return func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "name")
		_, rest, _ := strings.Cut(r.URL.Path, "/bench-ports")
		path := "/ports" + rest
		if name == o.Name {
			if local == nil {
				api.Fail(w, r, api.JSONError, api.Errorf(http.StatusNotFound, "node %s runs no dataplane (see its log: --dataplane)", name))
				return
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path, r2.URL.RawPath = path, ""
			local.ServeHTTP(w, r2)
			return
		}
		addr, err := node.PeerAddress(name)
		if err != nil {
			api.Fail(w, r, api.JSONError, api.Errorf(http.StatusNotFound, "no node named %s", name))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), benchForwardTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, r.Method, "https://"+addr+benchPeerPrefix+path, http.MaxBytesReader(w, r.Body, benchRequestLimit))
		if err != nil {
			api.Fail(w, r, api.JSONError, err)
			return
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := node.PeerClient().Do(req)
		if err != nil {
			api.Fail(w, r, api.JSONError, api.Errorf(http.StatusBadGateway, "node %s: %v", name, err))
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			// A node whose peer port has no bench-port handler: no dataplane.
			api.Fail(w, r, api.JSONError, api.Errorf(http.StatusNotFound, "node %s runs no dataplane (see its log: --dataplane)", name))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, io.LimitReader(resp.Body, 1<<20))
	}
}
