// Package tftp serves the iPXE binaries to PXE firmware on the
// provisioning network: read-only, the regular files of one directory by
// their bare names, on the provisioning address only.
//
// It is the first hop of a network boot and nothing more: the firmware
// fetches iPXE here, and iPXE fetches everything else over HTTP. It never
// accepts a write and never resolves a name a client sends into a path
// outside its directory.
package tftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pin/tftp/v3"
)

// Port is the TFTP port firmware uses.
const Port = 69

// Defaults bound a stalled transfer to about Timeout × Retries.
const (
	DefaultTimeout = 3 * time.Second
	DefaultRetries = 5
)

// Config is what a Server needs; Addr and Dir are required.
type Config struct {
	// Addr is the provisioning address and port (Port) to listen on;
	// port 0 picks a free one (see Server.Addr).
	Addr netip.AddrPort
	// Dir holds the files served, by base name (Debian's /usr/lib/ipxe).
	// Symbolic links in it are the operator's and are followed: Debian
	// links ipxe.efi to /boot/ipxe.efi.
	Dir string
	// Timeout is how long one packet waits for its acknowledgement,
	// Retries how often it is sent before the transfer is abandoned.
	Timeout time.Duration
	Retries int
	// Log gets one line per transfer; slog.Default() when nil.
	Log *slog.Logger
}

// Errors a client is told (as TFTP error packets) and the log shows.
var (
	ErrBadName  = errors.New("file name must be a bare name")
	ErrNotFound = errors.New("file not found")
)

// Server serves Dir over TFTP. New binds; Serve answers until its context
// ends.
type Server struct {
	cfg  Config
	log  *slog.Logger
	srv  *tftp.Server
	conn *net.UDPConn

	closeOnce sync.Once
}

// New checks cfg and binds the server's socket.
func New(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Retries <= 0 {
		cfg.Retries = DefaultRetries
	}
	if !cfg.Addr.Addr().IsValid() || cfg.Addr.Addr().IsUnspecified() {
		// Bound to every address, it would serve tenants too.
		return nil, fmt.Errorf("tftp: listen address %q: want the provisioning address", cfg.Addr)
	}
	st, err := os.Stat(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("tftp: directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("tftp: %s is not a directory", cfg.Dir)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(cfg.Addr))
	if err != nil {
		return nil, fmt.Errorf("listen tftp on %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, log: cfg.Log.With("tftp", conn.LocalAddr().String()), conn: conn}
	s.srv = tftp.NewServer(s.read, nil) // nil: every write request is refused
	s.srv.SetTimeout(cfg.Timeout)
	s.srv.SetRetries(cfg.Retries)
	s.srv.SetHook(hook{s.log})
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Serve answers until ctx ends, then stops taking requests, waits for the
// transfers in flight (each bounded by Timeout × Retries) and returns.
//
// pin/tftp opens each transfer's socket on the goroutine that runs Serve:
// a caller serving an interface in another network namespace than its
// own (a test) runs Serve on a goroutine locked to a thread in that
// namespace. rackd, in its own namespace, need not care.
func (s *Server) Serve(ctx context.Context) error {
	s.log.Info("tftp: serving", "dir", s.cfg.Dir)
	stop := context.AfterFunc(ctx, s.Close)
	defer stop()
	err := s.srv.Serve(s.conn)
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("serve tftp: %w", err)
	}
	return nil
}

// Close stops the server, waiting for the transfers in flight; Serve
// returns.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.conn.Close() // Shutdown closes it only once Serve has started
		s.srv.Shutdown()
	})
}

// read sends the file a client asked for.
func (s *Server) read(name string, rf io.ReaderFrom) error {
	log := s.log.With("file", name)
	if t, ok := rf.(tftp.OutgoingTransfer); ok {
		addr := t.RemoteAddr()
		log = log.With("peer", addr.String())
	}
	f, size, err := s.open(name)
	if err != nil {
		return err // the client is told; the hook logs it
	}
	defer f.Close()
	if t, ok := rf.(tftp.OutgoingTransfer); ok {
		t.SetSize(size) // the tsize option: iPXE shows progress with it
	}
	log.Debug("tftp: sending", "bytes", size)
	_, err = rf.ReadFrom(f)
	return err
}

// open opens name in Dir, refusing anything but the bare name of a regular
// file: no separators, no "..", nothing hidden behind a directory.
func (s *Server) open(name string) (*os.File, int64, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return nil, 0, ErrBadName
	}
	f, err := os.Open(filepath.Join(s.cfg.Dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("open %s: %w", name, errors.Unwrap(err))
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, ErrNotFound
	}
	return f, st.Size(), nil
}

// hook logs each transfer's end.
type hook struct{ log *slog.Logger }

func (h hook) OnSuccess(st tftp.TransferStats) {
	h.log.Info("tftp: sent", "file", st.Filename, "peer", st.RemoteAddr, "duration", st.Duration, "datagrams", st.DatagramsSent)
}

func (h hook) OnFailure(st tftp.TransferStats, err error) {
	if st.Filename == "" {
		h.log.Debug("tftp: bad request", "peer", st.RemoteAddr, "err", err)
		return
	}
	if strings.Contains(err.Error(), "code=8") {
		// Error code 8 (RFC 2347) is the client ending the transfer after
		// the option exchange: UEFI firmware asks for tsize that way, then
		// fetches the file. Routine, not a failure.
		h.log.Debug("tftp: client ended the transfer after the option exchange", "file", st.Filename, "peer", st.RemoteAddr)
		return
	}
	h.log.Warn("tftp: transfer failed", "file", st.Filename, "peer", st.RemoteAddr, "err", err)
}
