package swift

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/blob"
	"github.com/rackstack/rackstack/storage/object"
	"github.com/rackstack/rackstack/storage/object/objecttest"
)

// A client that sends the start of a PUT's body and then stops, keeping
// its connection open, must not hold the stripe its body is read into
// beyond the fill timeout. It is told 408.
func TestTricklingPutGivesBackItsBlocks(t *testing.T) {
	bufs := blob.NewBuffers(blob.DefaultBufferBudget)
	e := &env{objecttest.ServeWithBlobs(t, 6, 1<<20, &blob.Store{Buffers: bufs, FillTimeout: 300 * time.Millisecond},
		func(svc *object.Service) http.Handler { return &Handler{Store: svc, Auth: principals} })}
	e.must(http.StatusCreated, "PUT", "/v1/AUTH_p1/c", alice, "")

	conn, err := net.Dial("tcp", e.Srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := http.NewRequest("PUT", e.Srv.URL+"/v1/AUTH_p1/c/slow", io.NopCloser(bytes.NewReader(nil)))
	req.ContentLength = 8 << 20
	req.Header.Set("X-Auth-Token", alice)
	var head bytes.Buffer
	req.Write(&head) // the header, then an error for the missing body, which follows by hand
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for bufs.Out() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if bufs.Out() == 0 {
		t.Fatal("the PUT never took its stripe")
	}
	// Waiting is bounded by the fill timeout; the deadline here only keeps
	// a broken build from hanging.
	for bufs.Out() != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if out := bufs.Out(); out != 0 {
		t.Fatalf("a PUT whose client stopped sending still holds %d bytes of blocks", out)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("trickled PUT: %d, want 408", res.StatusCode)
	}
	if _, err := e.Svc.Head(context.Background(), "p1", "c", "slow"); err == nil {
		t.Fatal("the trickled object was stored")
	}
}
