// Package qmp is a small client for the QEMU Machine Protocol over a unix
// socket: it reads the greeting, negotiates capabilities, runs commands
// (matched to their replies by id, so replies and events may interleave in
// any order) and hands out asynchronous events.
//
// It is written here rather than taken from github.com/digitalocean/go-qemu
// because that package's SocketMonitor cannot bound a call: Connect reads
// the greeting with no deadline, Run waits for its reply with no context or
// timeout, and its reader blocks on an unbuffered events channel, so an
// events listener that stops reading stalls every later command. Here every
// call takes a context, and events never hold up replies (they are dropped,
// and counted, when the buffer is full).
//
// The package speaks the protocol only; it knows nothing of VMs and must not
// start or signal processes.
package qmp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by calls on a client whose connection has ended.
var ErrClosed = errors.New("qmp: connection closed")

const (
	// maxMessage bounds one message, so a confused peer cannot make us
	// buffer without end (libvirt uses 10 MB for the same reason;
	// query-qmp-schema is the largest reply QEMU sends, well under this).
	maxMessage = 16 << 20
	// eventBuffer is how many unread events are kept before new ones are
	// dropped.
	eventBuffer = 128
)

// Greeting is what QEMU says when a client connects.
type Greeting struct {
	Version      Version
	Capabilities []string
}

// Version is QEMU's version.
type Version struct {
	Major, Minor, Micro int
	// Package is the distribution's build, like "Debian 1:7.2+dfsg-7".
	Package string
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro) }

// Event is an asynchronous event, like SHUTDOWN, STOP or RESET.
type Event struct {
	Name string
	// Data is the event's "data" member, raw; nil when there is none.
	Data json.RawMessage
	// Time is when QEMU emitted it.
	Time time.Time
}

// Error is a command's error reply.
type Error struct {
	Command string
	// Class is QEMU's error class: "GenericError", "CommandNotFound",
	// "DeviceNotActive", "DeviceNotFound", "KVMMissingCap".
	Class string
	Desc  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Client is one QMP connection. It is safe for concurrent use.
type Client struct {
	conn     net.Conn
	greeting Greeting
	nextID   atomic.Uint64
	dropped  atomic.Uint64
	events   chan Event
	done     chan struct{} // closed when the reader has stopped

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	pending map[string]chan message
	err     error // why the connection ended; set once, before done closes
}

// Dial connects to the QMP socket at path and negotiates capabilities. ctx
// bounds the connection and the handshake, not the client's life.
func Dial(ctx context.Context, path string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: dial: %w", err)
	}
	return NewClient(ctx, conn)
}

// NewClient runs the handshake over conn and returns a client owning it.
// ctx bounds the handshake. On error conn is closed.
func NewClient(ctx context.Context, conn net.Conn) (*Client, error) {
	r := bufio.NewScanner(conn)
	r.Buffer(make([]byte, 0, 64<<10), maxMessage)

	// The greeting comes before the reader goroutine starts, so it is read
	// here, under a deadline the context can pull in.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	g, err := readGreeting(r)
	if !stop() {
		conn.Close()
		return nil, fmt.Errorf("qmp: read greeting: %w", ctx.Err())
	}
	if err != nil {
		conn.Close()
		return nil, err
	}

	c := &Client{
		conn:     conn,
		greeting: g,
		events:   make(chan Event, eventBuffer),
		done:     make(chan struct{}),
		pending:  map[string]chan message{},
	}
	go c.read(r)
	if err := c.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("qmp: negotiate capabilities: %w", err)
	}
	return c, nil
}

func readGreeting(r *bufio.Scanner) (Greeting, error) {
	for r.Scan() {
		line := bytes.TrimSpace(r.Bytes())
		if len(line) == 0 {
			continue
		}
		var m message
		if err := json.Unmarshal(line, &m); err != nil || m.QMP == nil {
			return Greeting{}, fmt.Errorf("qmp: read greeting: not a QMP greeting: %.80q", line)
		}
		v := m.QMP.Version
		return Greeting{
			Version:      Version{Major: v.QEMU.Major, Minor: v.QEMU.Minor, Micro: v.QEMU.Micro, Package: v.Package},
			Capabilities: m.QMP.Capabilities,
		}, nil
	}
	if err := r.Err(); err != nil {
		return Greeting{}, fmt.Errorf("qmp: read greeting: %w", err)
	}
	return Greeting{}, fmt.Errorf("qmp: read greeting: %w", ErrClosed)
}

// Greeting returns what QEMU said on connecting.
func (c *Client) Greeting() Greeting { return c.greeting }

// Execute runs command with args (marshalled to JSON as the "arguments"
// member; nil for none) and unmarshals the reply's "return" member into
// result (nil to discard it). An error reply is an *Error. If ctx ends
// first, Execute returns its error; the command may still run.
func (c *Client) Execute(ctx context.Context, command string, args, result any) error {
	id := "rs-" + strconv.FormatUint(c.nextID.Add(1), 10)
	req, err := json.Marshal(request{Execute: command, Arguments: args, ID: id})
	if err != nil {
		return fmt.Errorf("qmp %s: marshal arguments: %w", command, err)
	}
	reply := make(chan message, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	c.pending[id] = reply
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()

	if err := c.write(ctx, append(req, '\n')); err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}

	var m message
	select {
	case m = <-reply:
	case <-ctx.Done():
		return fmt.Errorf("qmp %s: %w", command, ctx.Err())
	case <-c.done:
		// The reply may have arrived just before the connection ended.
		select {
		case m = <-reply:
		default:
			return fmt.Errorf("qmp %s: %w", command, c.closeErr())
		}
	}
	if m.Error != nil {
		return &Error{Command: command, Class: m.Error.Class, Desc: m.Error.Desc}
	}
	if result != nil && len(m.Return) > 0 {
		if err := json.Unmarshal(m.Return, result); err != nil {
			return fmt.Errorf("qmp %s: decode reply: %w", command, err)
		}
	}
	return nil
}

func (c *Client) write(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.conn.SetWriteDeadline(time.Unix(1, 0)) })
	_, err := c.conn.Write(b)
	if !stop() {
		c.conn.SetWriteDeadline(time.Time{})
		return ctx.Err()
	}
	return err
}

// Events returns the channel of asynchronous events. It is closed when the
// connection ends. Events that arrive while the buffer is full are dropped
// (see Dropped): a slow reader never delays command replies.
func (c *Client) Events() <-chan Event { return c.events }

// Dropped counts the events dropped because nobody read them in time.
func (c *Client) Dropped() uint64 { return c.dropped.Load() }

// Done is closed when the connection has ended (Close, or QEMU went away).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the connection ended; nil while it is open.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.closeErr()
	default:
		return nil
	}
}

// Close ends the connection and waits for the reader to stop.
func (c *Client) Close() error {
	err := c.fail(ErrClosed)
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (c *Client) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// read owns the receive side, and the events and done channels, until the
// connection ends.
func (c *Client) read(r *bufio.Scanner) {
	defer close(c.done)
	defer close(c.events)
	for r.Scan() {
		line := bytes.TrimSpace(r.Bytes())
		if len(line) == 0 {
			continue
		}
		var m message
		if err := json.Unmarshal(line, &m); err != nil {
			c.fail(fmt.Errorf("qmp: bad message %.80q: %w", line, err))
			return
		}
		switch {
		case m.Event != "":
			ev := Event{Name: m.Event, Data: m.Data}
			if m.Timestamp != nil {
				ev.Time = time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000)
			}
			select {
			case c.events <- ev:
			default:
				c.dropped.Add(1)
			}
		case len(m.ID) > 0:
			var id string
			if json.Unmarshal(m.ID, &id) != nil {
				continue // not one of ours: we only send string ids
			}
			c.mu.Lock()
			reply := c.pending[id]
			c.mu.Unlock()
			if reply != nil {
				reply <- m // buffered, and one reply per id
			}
		}
	}
	err := r.Err()
	if err == nil {
		err = ErrClosed
	}
	c.fail(err)
}

// fail records why the connection ends (the first reason wins) and closes
// it, which stops the reader.
func (c *Client) fail(err error) error {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	return c.conn.Close()
}

type request struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
	ID        string `json:"id"`
}

// message is any message QEMU sends: greeting, reply or event.
type message struct {
	QMP *struct {
		Version struct {
			QEMU struct {
				Major int `json:"major"`
				Minor int `json:"minor"`
				Micro int `json:"micro"`
			} `json:"qemu"`
			Package string `json:"package"`
		} `json:"version"`
		Capabilities []string `json:"capabilities"`
	} `json:"QMP"`

	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`

	ID     json.RawMessage `json:"id"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}
