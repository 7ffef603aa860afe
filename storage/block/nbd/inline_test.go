package nbd

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawClient is a minimal NBD client for tests that need to control what
// is on the wire: the export-name handshake and simple replies.
type rawClient struct {
	t  *testing.T
	nc net.Conn
}

func dialRaw(t *testing.T, uri string) *rawClient {
	t.Helper()
	sock := uri[strings.Index(uri, "socket=")+len("socket="):]
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc}
	var greet [18]byte
	c.readFull(greet[:])
	if binary.BigEndian.Uint64(greet[:]) != magicInit || binary.BigEndian.Uint64(greet[8:]) != magicOpt {
		t.Fatalf("greeting %x", greet)
	}
	name := "vol"
	b := binary.BigEndian.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes)
	b = binary.BigEndian.AppendUint64(b, magicOpt)
	b = binary.BigEndian.AppendUint32(b, optExportName)
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	c.write(append(b, name...))
	var info [10]byte // size and transmission flags
	c.readFull(info[:])
	return c
}

func (c *rawClient) readFull(b []byte) {
	c.t.Helper()
	if _, err := io.ReadFull(c.nc, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

// request encodes a request header.
func encodeRequest(typ uint16, handle, off uint64, n uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, magicRequest)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, handle)
	b = binary.BigEndian.AppendUint64(b, off)
	return binary.BigEndian.AppendUint32(b, n)
}

// reply reads a simple reply carrying n bytes of data and returns its
// handle and data.
func (c *rawClient) reply(n int) (uint64, []byte) {
	c.t.Helper()
	var hdr [16]byte
	c.readFull(hdr[:])
	if binary.BigEndian.Uint32(hdr[:]) != magicSimple || binary.BigEndian.Uint32(hdr[4:]) != 0 {
		c.t.Fatalf("reply %x", hdr)
	}
	data := make([]byte, n)
	c.readFull(data)
	return binary.BigEndian.Uint64(hdr[8:]), data
}

// TestLoneReadsServedInline: a read alone on its connection (queue depth
// 1) is served by the connection's reader, without a worker; reads sent
// together still go to workers. Both return the data written.
func TestLoneReadsServedInline(t *testing.T) {
	_, _, srv, uri := serve(t, 1<<20)
	c := dialRaw(t, uri)
	const pages = 16
	want := make([]byte, pages*4096)
	for i := range want {
		want[i] = byte(i/4096 + 1)
	}
	c.write(append(encodeRequest(cmdWrite, 1, 0, uint32(len(want))), want...))
	if h, _ := c.reply(0); h != 1 {
		t.Fatalf("write answered as %d", h)
	}
	before := srv.workers.Load()
	for i := range uint64(pages) {
		c.write(encodeRequest(cmdRead, 100+i, i*4096, 4096))
		h, got := c.reply(4096)
		if h != 100+i || !bytes.Equal(got, want[i*4096:(i+1)*4096]) {
			t.Fatalf("read %d: handle %d, data %x...", i, h, got[:8])
		}
	}
	if n := srv.workers.Load(); n != before {
		t.Fatalf("lone reads started %d workers", n-before)
	}
	// Reads sent together, in one write: all but the last wait behind
	// another in the reader's buffer and go to workers.
	var batch []byte
	for i := range uint64(pages) {
		batch = append(batch, encodeRequest(cmdRead, 200+i, i*4096, 4096)...)
	}
	c.write(batch)
	seen := map[uint64]bool{}
	for range pages {
		h, got := c.reply(4096)
		i := h - 200
		if i >= pages || seen[h] || !bytes.Equal(got, want[i*4096:(i+1)*4096]) {
			t.Fatalf("batched read: handle %d, data %x...", h, got[:8])
		}
		seen[h] = true
	}
	if srv.workers.Load() == before {
		t.Fatal("batched reads started no worker")
	}
}

// TestRepliesQueueBehindAWrite: a reply made while another is being
// written does not wait for it: it is queued and the writer sends it
// next, whole and after the reply it was writing.
func TestRepliesQueueBehindAWrite(t *testing.T) {
	server, client := net.Pipe() // a write waits until it is read
	defer server.Close()
	defer client.Close()
	c := &conn{nc: server}
	c.wdone = sync.NewCond(&c.wmu)
	c.busy.Add(2)
	first := make(chan error, 1)
	go func() { first <- c.reply([]byte("head-1:"), []byte("data-1;")) }()
	for i := 0; ; i++ { // until the first reply is being written
		c.wmu.Lock()
		w := c.writing
		c.wmu.Unlock()
		if w {
			break
		}
		if i == 1000 {
			t.Fatal("the first reply is not being written")
		}
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() { second <- c.reply([]byte("head-2:"), []byte("data-2;")) }()
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second reply waited for the first one's write")
	}
	got := make([]byte, 28)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "head-1:data-1;head-2:data-2;" {
		t.Fatalf("wire: %q", got)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := c.busy.Load(); n != 0 {
		t.Fatalf("busy %d after both replies", n)
	}
}
