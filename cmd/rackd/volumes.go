package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"
	"golang.org/x/sync/errgroup"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/volumes"
	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/block/blockapi"
	"github.com/rackstack/rackstack/storage/block/nbd"
)

// volumeExports serves block volumes over NBD from this node, for
// operators and backup tools (`rackctl volume export`): on a unix socket in
// the data dir and on a loopback TCP port, both private to the node.
type volumeExports struct {
	node   string
	blocks *block.Store
	srv    *nbd.Server
	sock   string
	tcp    net.Listener
	unix   net.Listener
	log    *slog.Logger
	// state reads the replicated state, for the volume service's view of
	// a volume (nil: none; raw block volumes have no Cinder row).
	state func(ctx context.Context) (*memdb.Txn, error)
	// holds can hold the exports still for a group snapshot.
	holds *volumes.Holds
	mu    sync.Mutex
	open  map[string]*block.Volume // exported volumes, by id
	gates map[string]*volumes.Gate
}

// openVolumeExports binds the NBD listeners: a port or socket that cannot
// be bound fails at start, not at the first export.
func openVolumeExports(o *options, blocks *block.Store, state func(context.Context) (*memdb.Txn, error), holds *volumes.Holds, log *slog.Logger) (*volumeExports, error) {
	tcp, err := nbd.ListenTCP("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Beside QEMU's sockets: unix socket paths are short, data dirs may
	// be long. The guests' own NBD socket there is nbd.sock.
	dir := vmRunDir(o)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tcp.Close()
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	sock := filepath.Join(dir, "nbd-export.sock")
	os.Remove(sock) // left by a rackd that was killed
	unix, err := net.Listen("unix", sock)
	if err != nil {
		tcp.Close()
		return nil, fmt.Errorf("listen on %s: %w", sock, err)
	}
	return &volumeExports{
		node: o.Name, blocks: blocks, srv: nbd.NewServer(log), sock: sock, tcp: tcp, unix: unix, log: log, state: state,
		open: map[string]*block.Volume{}, holds: holds, gates: map[string]*volumes.Gate{},
	}, nil
}

// Run serves the exports until ctx ends, then flushes and closes every
// exported volume.
func (e *volumeExports) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return e.srv.Serve(gctx, e.tcp) })
	g.Go(func() error { return e.srv.Serve(gctx, e.unix) })
	err := g.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, v := range e.open {
		e.srv.Unexport(id)
		if cerr := v.Close(); cerr != nil {
			e.log.Warn("close exported volume", "volume", id, "err", cerr)
		}
		delete(e.open, id)
	}
	os.Remove(e.sock)
	return err
}

// attachedTo says which server a volume is attached to, or being
// attached to or detached from ("": none), as the volume service
// records it.
func (e *volumeExports) attachedTo(ctx context.Context, id string) (string, error) {
	if e.state == nil {
		return "", nil
	}
	tx, err := e.state(ctx)
	if err != nil {
		return "", err
	}
	v := store.Get[volstate.Volume](tx, volstate.VolumeTable, id)
	if v == nil {
		return "", nil
	}
	if len(v.Attachments) > 0 {
		return v.Attachments[0].ServerID, nil
	}
	return "", nil
}

func (e *volumeExports) export(ctx context.Context, id string) (blockapi.Export, error) {
	// Opening the volume would take its writer fence from the guest that
	// has it: its writes would fail from then on. Refused before
	// anything starts.
	server, err := e.attachedTo(ctx, id)
	if err != nil {
		return blockapi.Export{}, err
	}
	if server != "" {
		return blockapi.Export{}, api.Errorf(http.StatusConflict, "volume %s is attached to server %s: detach it before exporting it", id, server)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.open[id]; ok {
		return blockapi.Export{}, api.Errorf(http.StatusConflict, "volume %s is already exported on node %s", id, e.node)
	}
	v, err := e.blocks.Open(ctx, id)
	if err != nil {
		return blockapi.Export{}, err
	}
	g := e.holds.Gate(id, v)
	if err := e.srv.Export(id, g); err != nil {
		e.holds.Forget(id, g)
		v.Close()
		return blockapi.Export{}, err
	}
	e.open[id], e.gates[id] = v, g
	e.log.Info("exported volume over nbd", "volume", id, "tcp", e.tcp.Addr().String(), "socket", e.sock)
	return e.describe(id), nil
}

func (e *volumeExports) describe(id string) blockapi.Export {
	name := url.PathEscape(id)
	return blockapi.Export{
		Volume: id, Node: e.node,
		URI:     "nbd://" + e.tcp.Addr().String() + "/" + name,
		UnixURI: "nbd+unix:///" + name + "?socket=" + e.sock,
	}
}

func (e *volumeExports) unexport(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.open[id]
	if !ok {
		return api.Errorf(http.StatusNotFound, "volume %s is not exported on node %s", id, e.node)
	}
	if err := e.srv.Unexport(id); err != nil {
		return err
	}
	delete(e.open, id)
	e.holds.Forget(id, e.gates[id])
	delete(e.gates, id)
	if err := v.Close(); err != nil {
		return fmt.Errorf("flush volume %s: %w", id, err)
	}
	e.log.Info("unexported volume", "volume", id)
	return nil
}

func (e *volumeExports) exported(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.open[id]
	return ok
}

// volumeError maps the block store's errors to statuses.
func volumeError(err error) error {
	switch {
	case errors.Is(err, block.ErrNotFound):
		return api.Errorf(http.StatusNotFound, "%s", err)
	case errors.Is(err, block.ErrExists), errors.Is(err, nbd.ErrExported):
		return api.Errorf(http.StatusConflict, "%s", err)
	case errors.Is(err, block.ErrInvalid):
		return api.Errorf(http.StatusBadRequest, "%s", err)
	case errors.Is(err, block.ErrNoDisks):
		return api.Errorf(http.StatusServiceUnavailable, "%s", err)
	}
	return err
}

func volumeView(v *block.VolumeRow) blockapi.Volume {
	return blockapi.Volume{ID: v.ID, Kind: v.Kind, Size: v.Size, K: v.K, M: v.M, Parent: v.Parent}
}

// routes mounts the operator endpoints (the caller makes them admin only).
func (e *volumeExports) routes(r chi.Router) {
	fail := func(w http.ResponseWriter, r *http.Request, err error) {
		api.Fail(w, r, api.JSONError, volumeError(err))
	}
	r.Post("/rackstack/v1/volumes", func(w http.ResponseWriter, r *http.Request) {
		var req blockapi.CreateRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			fail(w, r, api.Errorf(http.StatusBadRequest, "decode volume request: %v", err))
			return
		}
		switch {
		case req.ID == "":
			fail(w, r, api.BadField("id", "must not be empty"))
			return
		case req.Size <= 0:
			fail(w, r, api.BadField("size", "must be a positive number of bytes"))
			return
		}
		if err := e.blocks.Create(r.Context(), req.ID, req.Size, block.Options{K: req.K, M: req.M}); err != nil {
			fail(w, r, err)
			return
		}
		v, err := e.blocks.Info(r.Context(), req.ID)
		if err != nil {
			fail(w, r, err)
			return
		}
		api.JSON(w, http.StatusCreated, volumeView(v))
	})
	r.Get("/rackstack/v1/volumes/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := e.blocks.Info(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		api.JSON(w, http.StatusOK, volumeView(v))
	})
	r.Delete("/rackstack/v1/volumes/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := chi.URLParam(r, "id")
		if e.exported(id) {
			fail(w, r, api.Errorf(http.StatusConflict, "volume %s is exported on node %s: unexport it first", id, e.node))
			return
		}
		if err := e.blocks.Delete(r.Context(), id); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	r.Post("/rackstack/v1/volumes/{id}/export", func(w http.ResponseWriter, r *http.Request) {
		ex, err := e.export(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			fail(w, r, err)
			return
		}
		api.JSON(w, http.StatusOK, ex)
	})
	r.Delete("/rackstack/v1/volumes/{id}/export", func(w http.ResponseWriter, r *http.Request) {
		if err := e.unexport(chi.URLParam(r, "id")); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
