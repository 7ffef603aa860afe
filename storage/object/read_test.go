package object

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/disk"
)

// A read that cannot be served fails before writing a byte (so the HTTP
// layer can still answer an error), says so with ErrUnreadable, and logs
// the real cause once, also through a manifest's segments.
func TestUnreadableReadFailsFirstAndLogsOnce(t *testing.T) {
	f := newFixture(t, 6)
	var logs bytes.Buffer
	f.svc.log = slog.New(slog.NewTextHandler(&logs, nil))
	f.container("p", "c")
	seg := f.put("p", "c", "seg", random(50_000))
	f.put("p", "c", "tail", random(100))
	if _, err := f.svc.PutManifest(f.ctx, "p", "c", "slo", []Segment{{Container: "c", Name: "seg"}, {Container: "c", Name: "tail"}}, Attrs{}); err != nil {
		t.Fatal(err)
	}
	p := seg.Parts[0]
	for i := 0; i <= p.Layout.M; i++ {
		if err := f.disks[p.Layout.Disks[i].ID].Remove(blob.ShardName(p.Blob, i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"seg", "slo"} {
		logs.Reset()
		o, err := f.svc.Head(f.ctx, "p", "c", name)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = f.svc.Read(f.ctx, o, 0, o.Size, &out)
		if !errors.Is(err, ErrUnreadable) {
			t.Fatalf("%s: read with %d shards lost: %v", name, p.Layout.M+1, err)
		}
		if out.Len() != 0 {
			t.Fatalf("%s: %d bytes written before the failure", name, out.Len())
		}
		if n := strings.Count(logs.String(), "read object data"); n != 1 {
			t.Fatalf("%s: the failure was logged %d times:\n%s", name, n, logs.String())
		}
	}
	// A writer's own failure is the writer's, not the store's.
	o, _ := f.svc.Head(f.ctx, "p", "c", "tail")
	broken := errors.New("client went away")
	if err := f.svc.Read(f.ctx, o, 0, o.Size, failWriter{broken}); !errors.Is(err, broken) || errors.Is(err, ErrUnreadable) {
		t.Fatalf("read into a failing writer: %v", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// A multipart object streams as one blob does: while the last stripe of a
// part is being sent, the first stripe of the next part is read already,
// instead of the next part starting cold once the client took this one.
// A degraded part is still queued for healing.
func TestReadReadsTheNextPartAhead(t *testing.T) {
	f := newFixture(t, 6)
	f.container("p", "c")
	u, err := f.svc.CreateUpload(f.ctx, "p", "c", "big", Attrs{})
	if err != nil {
		t.Fatal(err)
	}
	data := [][]byte{random(MinPartSize), random(MinPartSize)}
	var parts []CompletePart
	for i, d := range data {
		up, err := f.svc.PutPart(f.ctx, u, i+1, bytes.NewReader(d), int64(len(d)), "")
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, CompletePart{Number: i + 1, ETag: `"` + up.Part.ETag + `"`})
	}
	o, err := f.svc.CompleteUpload(f.ctx, u, parts)
	if err != nil {
		t.Fatal(err)
	}
	second := o.Parts[1]
	f.removeShards(second, 0) // degraded: its heal must still be queued
	opened := make(chan struct{})
	var once sync.Once
	for id, d := range f.disks {
		f.disks[id] = openSpy{Disk: d, prefix: second.Blob, opened: func() { once.Do(func() { close(opened) }) }}
	}
	w := &gateWriter{at: MinPartSize, gate: opened}
	if err := f.svc.Read(f.ctx, o, 0, o.Size, w); err != nil {
		t.Fatal(err)
	}
	if w.timedOut {
		t.Fatal("the second part was not opened while the first part's last stripe was being sent")
	}
	if !bytes.Equal(w.buf.Bytes(), append(append([]byte(nil), data[0]...), data[1]...)) {
		t.Fatal("read returned other bytes")
	}
	// queueHeal proposes from a goroutine of its own.
	for range 100 {
		if store.Get[HealItem](f.local.Local(), tHeal, second.Blob) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the degraded second part was not queued for healing")
}

// openSpy calls opened when a shard of the blob prefix names is opened.
type openSpy struct {
	disk.Disk
	prefix string
	opened func()
}

func (d openSpy) Open(name string, off int64) (io.ReadCloser, error) {
	if strings.HasPrefix(name, d.prefix) {
		d.opened()
	}
	return d.Disk.Open(name, off)
}

// gateWriter keeps what it is given; the write that reaches byte at waits
// (up to a bound, so a failing test ends) until gate is closed.
type gateWriter struct {
	buf      bytes.Buffer
	at       int64
	gate     <-chan struct{}
	timedOut bool
}

func (g *gateWriter) Write(p []byte) (int, error) {
	n := int64(g.buf.Len())
	if n < g.at && n+int64(len(p)) >= g.at {
		select {
		case <-g.gate:
		case <-time.After(10 * time.Second):
			g.timedOut = true
		}
	}
	return g.buf.Write(p)
}
