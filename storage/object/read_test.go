package object

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/storage/blob"
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
