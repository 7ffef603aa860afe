// Package nbd serves devices (open block volumes) over the Network Block
// Device protocol, to QEMU's own NBD client and to nbdinfo, nbdcopy,
// qemu-img: the fixed newstyle handshake with OPT_GO/INFO/LIST, structured
// replies, the base:allocation meta context (block status, for sparse
// reads), FLUSH, FUA, TRIM and WRITE_ZEROES. Listeners are loopback TCP or
// unix sockets only: exports carry no authentication.
package nbd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/rackstack/rackstack/storage/block"
)

// Device is what an export serves: the *block.Volume method set.
type Device interface {
	Size() int64
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	WriteZeroes(off, n int64) error
	Trim(off, n int64) error
	Flush(ctx context.Context) error
	Extents(off, n int64) ([]block.Range, error)
}

// readOnly is implemented by devices that may refuse writes (snapshots).
type readOnly interface{ ReadOnly() bool }

// Errors of the export table.
var (
	ErrExported    = errors.New("name is already exported")
	ErrNotExported = errors.New("name is not exported")
	ErrNotLoopback = errors.New("nbd listens on loopback addresses only")
)

// Protocol constants (the NBD protocol's doc/proto.md).
const (
	magicInit      = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt       = 0x49484156454f5054 // "IHAVEOPT"
	magicOptReply  = 0x3e889045565a9
	magicRequest   = 0x25609513
	magicSimple    = 0x67446698
	magicStructRep = 0x668e33ef

	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	optExportName   = 1
	optAbort        = 2
	optList         = 3
	optStartTLS     = 5
	optInfo         = 6
	optGo           = 7
	optStructured   = 8
	optListMetaCtx  = 9
	optSetMetaCtx   = 10
	repAck          = 1
	repServer       = 2
	repInfo         = 3
	repMetaContext  = 4
	repErrUnsup     = 1<<31 + 1
	repErrPolicy    = 1<<31 + 2
	repErrInvalid   = 1<<31 + 3
	repErrUnknown   = 1<<31 + 6
	infoExport      = 0
	infoBlockSize   = 3
	tflagHasFlags   = 1 << 0
	tflagReadOnly   = 1 << 1
	tflagFlush      = 1 << 2
	tflagFUA        = 1 << 3
	tflagTrim       = 1 << 5
	tflagWriteZero  = 1 << 6
	tflagMultiConn  = 1 << 8
	cmdRead         = 0
	cmdWrite        = 1
	cmdDisc         = 2
	cmdFlush        = 3
	cmdTrim         = 4
	cmdWriteZeroes  = 6
	cmdBlockStatus  = 7
	cmdFlagFUA      = 1 << 0
	cmdFlagReqOne   = 1 << 3
	replyFlagDone   = 1 << 0
	replyNone       = 0
	replyOffsetData = 1
	replyBlockStat  = 5
	replyError      = 1<<15 + 1
	stateHole       = 1 << 0
	stateZero       = 1 << 1

	errPerm     = 1
	errIO       = 5
	errInval    = 22
	errNoSpc    = 28
	errNotSup   = 95
	errShutdown = 108

	// maxRequest bounds a read or write: larger requests are refused, so a
	// client cannot make the server allocate without bound.
	maxRequest = 32 << 20
	// inFlight bounds the requests of one connection served at once.
	inFlight = 32
	// metaAllocation is the id of the base:allocation context.
	metaAllocation = 1
)

// Server serves named exports.
type Server struct {
	log *slog.Logger
	mu  sync.Mutex
	// exports by name, and the connections attached to each, so Unexport
	// can cut them.
	exports map[string]Device
	conns   map[string]map[*conn]struct{}
	// reads are the buffers of reads: of smallRead and largeRead bytes.
	reads [2]sync.Pool
	// payloads are the 1 MiB write payloads devices gave back.
	payloads sync.Pool
	// workers counts the workers connections started (tests read it).
	workers atomic.Int64
}

// NewServer returns a Server with no exports.
func NewServer(log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	return &Server{log: log, exports: map[string]Device{}, conns: map[string]map[*conn]struct{}{}}
}

// Export serves dev under name.
func (s *Server) Export(name string, dev Device) error {
	if name == "" || len(name) > 4096 {
		return fmt.Errorf("export %q: name must be 1 to 4096 bytes", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.exports[name]; ok {
		return fmt.Errorf("export %s: %w", name, ErrExported)
	}
	s.exports[name] = dev
	return nil
}

// Unexport stops serving name and closes the connections attached to it.
// Requests in flight finish first; it does not close the device.
func (s *Server) Unexport(name string) error {
	s.mu.Lock()
	if _, ok := s.exports[name]; !ok {
		s.mu.Unlock()
		return fmt.Errorf("unexport %s: %w", name, ErrNotExported)
	}
	delete(s.exports, name)
	conns := s.conns[name]
	delete(s.conns, name)
	s.mu.Unlock()
	for c := range conns {
		c.close()
	}
	for c := range conns {
		c.wg.Wait()
	}
	return nil
}

// Exports lists the exported names.
func (s *Server) Exports() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.exports))
	for n := range s.exports {
		out = append(out, n)
	}
	return out
}

// ServeUnix listens on a unix socket at path until ctx ends.
func (s *Server) ServeUnix(ctx context.Context, path string) error {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	defer os.Remove(path)
	return s.Serve(ctx, l)
}

// ServeTCP listens on addr, which must be a loopback address, until ctx
// ends.
func (s *Server) ServeTCP(ctx context.Context, addr string) error {
	l, err := ListenTCP(addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, l)
}

// ListenTCP listens on a loopback addr ("127.0.0.1:0" picks a port).
func ListenTCP(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("listen on %s: %w", addr, ErrNotLoopback)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return l, nil
}

// Serve accepts connections on l until ctx ends, then closes l and every
// connection it accepted.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	for {
		nc, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept nbd connection: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			stop := context.AfterFunc(ctx, func() { nc.Close() })
			defer stop()
			s.handle(nc)
		}()
	}
}

// conn is one client connection.
type conn struct {
	s          *Server
	nc         net.Conn
	structured bool
	meta       bool // base:allocation selected
	name       string
	dev        Device
	wmu        sync.Mutex
	// writing is set (on wmu) while a reply is written; replies made
	// meanwhile are queued (queued, up to maxQueued bytes) for its
	// writer to send, or wait for wdone. spare is the queue's other
	// buffer; werr the error that ended writing.
	writing       bool
	queued, spare []byte
	werr          error
	wdone         *sync.Cond
	wg            sync.WaitGroup
	// busy counts the requests read and not yet being answered: every
	// request has one reply, which takes it off as it starts, so the
	// client, once answered, finds it 0 with its next request.
	busy      atomic.Int32
	closeOnce sync.Once
}

func (c *conn) close() { c.closeOnce.Do(func() { c.nc.Close() }) }

func (s *Server) handle(nc net.Conn) {
	c := &conn{s: s, nc: nc}
	c.wdone = sync.NewCond(&c.wmu)
	defer c.close()
	if err := c.handshake(); err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errAbort) {
			s.log.Debug("nbd handshake", "remote", nc.RemoteAddr(), "err", err)
		}
		return
	}
	s.mu.Lock()
	if s.exports[c.name] != c.dev {
		s.mu.Unlock()
		return // unexported meanwhile
	}
	if s.conns[c.name] == nil {
		s.conns[c.name] = map[*conn]struct{}{}
	}
	s.conns[c.name][c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns[c.name], c)
		s.mu.Unlock()
	}()
	if err := c.transmit(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.log.Debug("nbd connection", "export", c.name, "err", err)
	}
}

var errAbort = errors.New("client aborted the handshake")

func (c *conn) write(parts ...any) error {
	for _, p := range parts {
		if b, ok := p.([]byte); ok {
			if _, err := c.nc.Write(b); err != nil {
				return err
			}
			continue
		}
		if err := binary.Write(c.nc, binary.BigEndian, p); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) optReply(opt, typ uint32, data []byte) error {
	hdr := make([]byte, 20)
	binary.BigEndian.PutUint64(hdr, magicOptReply)
	binary.BigEndian.PutUint32(hdr[8:], opt)
	binary.BigEndian.PutUint32(hdr[12:], typ)
	binary.BigEndian.PutUint32(hdr[16:], uint32(len(data)))
	_, err := c.nc.Write(append(hdr, data...))
	return err
}

func (c *conn) lookup(name string) Device {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.exports[name]
}

func (c *conn) flags(dev Device) uint16 {
	f := uint16(tflagHasFlags | tflagFlush | tflagFUA | tflagTrim | tflagWriteZero)
	// Several connections to one device share its cache: a flush on any
	// of them makes every completed write durable, so multi-conn is safe.
	f |= tflagMultiConn
	if ro, ok := dev.(readOnly); ok && ro.ReadOnly() {
		f |= tflagReadOnly
	}
	return f
}

// handshake runs the fixed newstyle negotiation until the client picks an
// export.
func (c *conn) handshake() error {
	if err := c.write(uint64(magicInit), uint64(magicOpt), uint16(flagFixedNewstyle|flagNoZeroes)); err != nil {
		return err
	}
	var cflags uint32
	if err := binary.Read(c.nc, binary.BigEndian, &cflags); err != nil {
		return err
	}
	if cflags&flagFixedNewstyle == 0 {
		return errors.New("client does not speak fixed newstyle")
	}
	noZeroes := cflags&flagNoZeroes != 0
	for {
		var hdr struct {
			Magic  uint64
			Opt    uint32
			Length uint32
		}
		if err := binary.Read(c.nc, binary.BigEndian, &hdr); err != nil {
			return err
		}
		if hdr.Magic != magicOpt {
			return fmt.Errorf("bad option magic %#x", hdr.Magic)
		}
		if hdr.Length > 64<<10 {
			return fmt.Errorf("option %d of %d bytes is too long", hdr.Opt, hdr.Length)
		}
		data := make([]byte, hdr.Length)
		if _, err := io.ReadFull(c.nc, data); err != nil {
			return err
		}
		switch hdr.Opt {
		case optExportName:
			dev := c.lookup(string(data))
			if dev == nil {
				return fmt.Errorf("no export %q", data)
			}
			c.name, c.dev = string(data), dev
			if err := c.write(uint64(dev.Size()), c.flags(dev)); err != nil {
				return err
			}
			if !noZeroes {
				return c.write(make([]byte, 124))
			}
			return nil
		case optAbort:
			c.optReply(hdr.Opt, repAck, nil)
			return errAbort
		case optList:
			if len(data) != 0 {
				if err := c.optReply(hdr.Opt, repErrInvalid, nil); err != nil {
					return err
				}
				continue
			}
			for _, n := range c.s.Exports() {
				b := binary.BigEndian.AppendUint32(nil, uint32(len(n)))
				if err := c.optReply(hdr.Opt, repServer, append(b, n...)); err != nil {
					return err
				}
			}
			if err := c.optReply(hdr.Opt, repAck, nil); err != nil {
				return err
			}
		case optStructured:
			if len(data) != 0 {
				if err := c.optReply(hdr.Opt, repErrInvalid, nil); err != nil {
					return err
				}
				continue
			}
			c.structured = true
			if err := c.optReply(hdr.Opt, repAck, nil); err != nil {
				return err
			}
		case optListMetaCtx, optSetMetaCtx:
			if err := c.metaContext(hdr.Opt, data); err != nil {
				return err
			}
		case optInfo, optGo:
			done, err := c.infoGo(hdr.Opt, data)
			if err != nil || done {
				return err
			}
		case optStartTLS:
			if err := c.optReply(hdr.Opt, repErrPolicy, nil); err != nil {
				return err
			}
		default:
			if err := c.optReply(hdr.Opt, repErrUnsup, nil); err != nil {
				return err
			}
		}
	}
}

// parseName reads a 32-bit length and that many bytes.
func parseName(data []byte) (string, []byte, bool) {
	if len(data) < 4 {
		return "", nil, false
	}
	n := binary.BigEndian.Uint32(data)
	if uint64(n) > uint64(len(data)-4) {
		return "", nil, false
	}
	return string(data[4 : 4+n]), data[4+n:], true
}

func (c *conn) infoGo(opt uint32, data []byte) (bool, error) {
	name, rest, ok := parseName(data)
	if !ok || len(rest) < 2 || len(rest) != 2+2*int(binary.BigEndian.Uint16(rest)) {
		return false, c.optReply(opt, repErrInvalid, nil)
	}
	dev := c.lookup(name)
	if dev == nil {
		return false, c.optReply(opt, repErrUnknown, []byte("no such export"))
	}
	info := binary.BigEndian.AppendUint16(nil, infoExport)
	info = binary.BigEndian.AppendUint64(info, uint64(dev.Size()))
	info = binary.BigEndian.AppendUint16(info, c.flags(dev))
	if err := c.optReply(opt, repInfo, info); err != nil {
		return false, err
	}
	// Block sizes: any byte-aligned request works, 4 KiB ones best.
	bs := binary.BigEndian.AppendUint16(nil, infoBlockSize)
	bs = binary.BigEndian.AppendUint32(bs, 1)
	bs = binary.BigEndian.AppendUint32(bs, block.PageSize)
	bs = binary.BigEndian.AppendUint32(bs, maxRequest)
	if err := c.optReply(opt, repInfo, bs); err != nil {
		return false, err
	}
	if err := c.optReply(opt, repAck, nil); err != nil {
		return false, err
	}
	if opt == optGo {
		c.name, c.dev = name, dev
		return true, nil
	}
	return false, nil
}

func (c *conn) metaContext(opt uint32, data []byte) error {
	if opt == optSetMetaCtx && !c.structured {
		return c.optReply(opt, repErrInvalid, []byte("structured replies first"))
	}
	name, rest, ok := parseName(data)
	if !ok || len(rest) < 4 {
		return c.optReply(opt, repErrInvalid, nil)
	}
	if c.lookup(name) == nil {
		return c.optReply(opt, repErrUnknown, []byte("no such export"))
	}
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	match := opt == optListMetaCtx && n == 0
	for range n {
		q, r, ok := parseName(rest)
		if !ok {
			return c.optReply(opt, repErrInvalid, nil)
		}
		rest = r
		if q == "base:allocation" || (opt == optListMetaCtx && q == "base:") {
			match = true
		}
	}
	if opt == optSetMetaCtx {
		c.meta = match
	}
	if match {
		b := binary.BigEndian.AppendUint32(nil, metaAllocation)
		if err := c.optReply(opt, repMetaContext, append(b, "base:allocation"...)); err != nil {
			return err
		}
	}
	return c.optReply(opt, repAck, nil)
}

// request is one transmission-phase request.
type request struct {
	Magic  uint32
	Flags  uint16
	Type   uint16
	Handle uint64
	Offset uint64
	Length uint32
}

// requestSize is a request header's size on the wire.
const requestSize = 28

// readRequest decodes one request header from rd.
func readRequest(rd io.Reader, hdr *[requestSize]byte) (request, error) {
	if _, err := io.ReadFull(rd, hdr[:]); err != nil {
		return request{}, err
	}
	b := hdr[:]
	return request{
		Magic:  binary.BigEndian.Uint32(b),
		Flags:  binary.BigEndian.Uint16(b[4:]),
		Type:   binary.BigEndian.Uint16(b[6:]),
		Handle: binary.BigEndian.Uint64(b[8:]),
		Offset: binary.BigEndian.Uint64(b[16:]),
		Length: binary.BigEndian.Uint32(b[24:]),
	}, nil
}

// job is a request handed to a worker.
type job struct {
	r       request
	payload []byte
}

// transmit serves requests on up to inFlight workers at once, but for a
// read that is alone (no other request buffered or in flight), which it
// serves itself; replies are written whole under wmu. The workers stay
// for the connection's life, so a request costs no goroutine start (nor
// the growth of a new stack through the read path), and requests are
// read through a buffer, so a queue of them costs few reads of the
// socket.
func (c *conn) transmit() error {
	rd := bufio.NewReaderSize(c.nc, 64<<10)
	jobs := make(chan job)
	var workers sync.WaitGroup
	started := 0
	defer func() {
		close(jobs)
		workers.Wait()
	}()
	worker := func(j job) {
		defer workers.Done()
		for {
			if err := c.serve(j.r, j.payload); err != nil {
				c.close()
			}
			c.wg.Done()
			var ok bool
			if j, ok = <-jobs; !ok {
				return
			}
		}
	}
	var hdr [requestSize]byte
	for {
		r, err := readRequest(rd, &hdr)
		if err != nil {
			return err
		}
		if r.Magic != magicRequest {
			return fmt.Errorf("bad request magic %#x", r.Magic)
		}
		var payload []byte
		if r.Type == cmdWrite {
			if r.Length > maxRequest {
				return fmt.Errorf("write of %d bytes is larger than %d", r.Length, maxRequest)
			}
			payload = c.s.payloadBuf(int(r.Length))
			if _, err := io.ReadFull(rd, payload); err != nil {
				return err
			}
		}
		if r.Type == cmdDisc {
			c.wg.Wait()
			return c.dev.Flush(context.Background())
		}
		c.wg.Add(1) // c.wg counts the requests in flight
		lone := r.Type == cmdRead && rd.Buffered() == 0 && c.busy.Load() == 0
		c.busy.Add(1)
		if lone {
			// No other request waits, nor is served: the client
			// waits for this read alone (queue depth 1). Serving it
			// here saves handing it to a worker and back, a wake-up
			// and a sleep of two goroutines: 2.5 of a read's 9.8
			// system calls. A request sent meanwhile waits for this
			// read, as it would for a busy worker.
			if err := c.serve(r, nil); err != nil {
				c.close()
			}
			c.wg.Done()
			continue
		}
		j := job{r: r, payload: payload}
		select {
		case jobs <- j:
			continue
		default:
		}
		if started < inFlight {
			started++
			c.s.workers.Add(1)
			workers.Add(1)
			go worker(j)
			continue
		}
		jobs <- j // every worker is busy: wait for one
	}
}

// errno maps a device error to an NBD error number.
func errno(err error) uint32 {
	switch {
	case errors.Is(err, block.ErrInvalid):
		return errInval
	case errors.Is(err, block.ErrReadOnly):
		return errPerm
	case errors.Is(err, block.ErrNoDisks):
		return errNoSpc
	case errors.Is(err, block.ErrFenced), errors.Is(err, block.ErrClosed), errors.Is(err, block.ErrNotFound):
		return errShutdown
	}
	return errIO
}

func (c *conn) serve(r request, payload []byte) error {
	off, n := int64(r.Offset), int64(r.Length)
	if r.Type != cmdFlush && (off < 0 || off+n > c.dev.Size()) {
		return c.fail(r, errInval, "request outside the export")
	}
	var err error
	switch r.Type {
	case cmdRead:
		if n > maxRequest {
			return c.fail(r, errInval, "read too large")
		}
		bp := c.s.readBuf(int(n))
		defer c.s.putReadBuf(bp)
		buf := (*bp)[:n]
		if _, err := c.dev.ReadAt(buf, off); err != nil {
			c.s.log.Warn("nbd read", "export", c.name, "offset", off, "length", n, "err", err)
			return c.fail(r, errno(err), err.Error())
		}
		if c.structured {
			var head [8]byte
			binary.BigEndian.PutUint64(head[:], r.Offset)
			return c.chunk(replyFlagDone, replyOffsetData, r.Handle, head[:], buf)
		}
		return c.simple(r.Handle, 0, buf)
	case cmdWrite:
		// The payload was read for this request alone: a device that can
		// keep it saves copying it, and gives it back when done with it.
		if ow, ok := c.dev.(interface {
			WriteOwned(p []byte, off int64, release func()) (int, error)
		}); ok {
			_, err = ow.WriteOwned(payload, off, func() { c.s.putPayloadBuf(payload) })
		} else {
			_, err = c.dev.WriteAt(payload, off)
			c.s.putPayloadBuf(payload)
		}
	case cmdWriteZeroes:
		err = c.dev.WriteZeroes(off, n)
	case cmdTrim:
		err = c.dev.Trim(off, n)
	case cmdFlush:
		err = c.dev.Flush(context.Background())
	case cmdBlockStatus:
		if !c.meta {
			return c.fail(r, errInval, "no meta context selected")
		}
		return c.blockStatus(r)
	default:
		return c.fail(r, errInval, "unsupported command")
	}
	if err == nil && r.Flags&cmdFlagFUA != 0 && r.Type != cmdFlush {
		err = c.dev.Flush(context.Background())
	}
	if err != nil {
		c.s.log.Warn("nbd request", "export", c.name, "type", r.Type, "offset", off, "length", n, "err", err)
		return c.fail(r, errno(err), err.Error())
	}
	return c.simple(r.Handle, 0, nil)
}

func (c *conn) blockStatus(r request) error {
	ext, err := c.dev.Extents(int64(r.Offset), int64(r.Length))
	if err != nil {
		return c.fail(r, errno(err), err.Error())
	}
	b := binary.BigEndian.AppendUint32(nil, metaAllocation)
	for _, e := range ext {
		flags := uint32(0)
		if e.Zero {
			flags = stateHole | stateZero
		}
		for l := e.Len; l > 0; {
			// A descriptor's length is 32 bits.
			d := min(l, 1<<31)
			b = binary.BigEndian.AppendUint32(b, uint32(d))
			b = binary.BigEndian.AppendUint32(b, flags)
			l -= d
			if r.Flags&cmdFlagReqOne != 0 {
				break
			}
		}
		if r.Flags&cmdFlagReqOne != 0 {
			break
		}
	}
	return c.chunk(replyFlagDone, replyBlockStat, r.Handle, b, nil)
}

// fail answers r with an error: a structured error chunk when structured
// replies are on (required for reads), else a simple reply.
func (c *conn) fail(r request, code uint32, msg string) error {
	if !c.structured {
		return c.simple(r.Handle, code, nil)
	}
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	b := binary.BigEndian.AppendUint32(nil, code)
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return c.chunk(replyFlagDone, replyError, r.Handle, append(b, msg...), nil)
}

func (c *conn) simple(handle uint64, code uint32, data []byte) error {
	var hdr [16]byte
	binary.BigEndian.PutUint32(hdr[:], magicSimple)
	binary.BigEndian.PutUint32(hdr[4:], code)
	binary.BigEndian.PutUint64(hdr[8:], handle)
	return c.reply(hdr[:], data)
}

func (c *conn) chunk(flags, typ uint16, handle uint64, head, data []byte) error {
	var arr [20 + 8]byte // the header and an offset, the head of most chunks
	hdr := arr[:20]
	binary.BigEndian.PutUint32(hdr, magicStructRep)
	binary.BigEndian.PutUint16(hdr[4:], flags)
	binary.BigEndian.PutUint16(hdr[6:], typ)
	binary.BigEndian.PutUint64(hdr[8:], handle)
	binary.BigEndian.PutUint32(hdr[16:], uint32(len(head)+len(data)))
	return c.reply(append(hdr, head...), data)
}

// maxQueued bounds the replies queued behind a reply being written; a
// reply carrying more than maxQueuedData waits for the writer instead,
// as copying it would cost more than the system call it saves.
const (
	maxQueued     = 256 << 10
	maxQueuedData = 64 << 10
)

// reply writes a reply's header and data with one system call (writev).
// While another reply is being written, a small one is queued behind it
// instead, and its writer sends the queue with one more write: replies
// finishing together (queue depth 32) cost fewer system calls than
// replies. A queued reply's error is the writer's, which closes the
// connection.
func (c *conn) reply(hdr, data []byte) error {
	c.busy.Add(-1)
	c.wmu.Lock()
	if c.writing && len(data) <= maxQueuedData && len(c.queued)+len(hdr)+len(data) <= maxQueued {
		c.queued = append(append(c.queued, hdr...), data...)
		err := c.werr
		c.wmu.Unlock()
		return err
	}
	for c.writing {
		c.wdone.Wait()
	}
	if c.werr != nil {
		c.wmu.Unlock()
		return c.werr
	}
	c.writing = true
	c.wmu.Unlock()
	var err error
	if len(data) == 0 {
		_, err = c.nc.Write(hdr)
	} else {
		bufs := net.Buffers{hdr, data}
		_, err = bufs.WriteTo(c.nc)
	}
	c.wmu.Lock()
	for err == nil && len(c.queued) > 0 {
		b := c.queued
		c.queued = c.spare[:0]
		c.wmu.Unlock()
		_, err = c.nc.Write(b)
		c.wmu.Lock()
		c.spare = b
	}
	if err != nil {
		c.werr = err
		c.queued = c.queued[:0]
	}
	c.writing = false
	c.wdone.Broadcast()
	c.wmu.Unlock()
	return err
}

// smallRead and largeRead are the sizes of pooled read buffers: reads up
// to largeRead (4 KiB random I/O, 1 MiB sequential) allocate nothing,
// larger ones allocate theirs.
const (
	smallRead = 64 << 10
	largeRead = 1 << 20
)

// readBuf returns a buffer for a read of n bytes.
func (s *Server) readBuf(n int) *[]byte {
	for i, size := range [2]int{smallRead, largeRead} {
		if n <= size {
			if bp, ok := s.reads[i].Get().(*[]byte); ok {
				return bp
			}
			b := make([]byte, size)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

// payloadBuf returns a buffer for a write's payload of n bytes, which the
// payload fills whole. A sequential writer's 1 MiB payloads are reused
// (putPayloadBuf) rather than allocated: zeroing each fresh one cost a
// seventh of rackd's CPU under it. Other sizes are allocated exactly, as
// the device may keep them until a flush: a 4 KiB write must not hold a
// larger buffer.
func (s *Server) payloadBuf(n int) []byte {
	if n == largeRead {
		if bp, ok := s.payloads.Get().(*[]byte); ok {
			return *bp
		}
	}
	return make([]byte, n)
}

// putPayloadBuf gives back a payload nothing uses any more.
func (s *Server) putPayloadBuf(b []byte) {
	if len(b) == largeRead {
		s.payloads.Put(&b)
	}
}

func (s *Server) putReadBuf(bp *[]byte) {
	for i, size := range [2]int{smallRead, largeRead} {
		if cap(*bp) == size {
			s.reads[i].Put(bp)
			return
		}
	}
}
