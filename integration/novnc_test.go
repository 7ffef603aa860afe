//go:build integration

package integration

import (
	"context"
	"encoding/binary"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// checkNoVNC opens server's graphical console the way a browser does:
// `openstack console url show` (novnc, its default) gives noVNC's page,
// which this node serves; the page's path parameter is the websocket,
// and through it the guest's QEMU speaks RFB. The handshake goes as far
// as the server's init message, whose framebuffer is the guest's VGA.
func checkNoVNC(t *testing.T, env []string, server string) {
	t.Helper()
	raw := strings.TrimSpace(openstack(t, env, "console", "url", "show", "-f", "value", "-c", "url", server))
	page, err := url.Parse(raw)
	if err != nil || !strings.HasSuffix(page.Path, "/novnc/vnc_lite.html") {
		t.Fatalf("novnc console URL %q: %v", raw, err)
	}
	res, err := (&http.Client{Timeout: 20 * time.Second}).Get(raw)
	if err != nil {
		t.Fatalf("noVNC page: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "noVNC") {
		t.Fatalf("noVNC page: %d, %d bytes", res.StatusCode, len(body))
	}
	// vnc_lite.html connects to ws://<its host>/<path>.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws://"+page.Host+"/"+page.Query().Get("path"), &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("VNC websocket: %v", err)
	}
	defer ws.CloseNow()
	c := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	read := func(n int, what string) []byte {
		t.Helper()
		b := make([]byte, n)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("VNC %s: %v", what, err)
		}
		return b
	}
	if v := read(12, "version"); string(v) != "RFB 003.008\n" {
		t.Fatalf("VNC greeting %q", v)
	}
	c.Write([]byte("RFB 003.008\n"))
	types := read(int(read(1, "security type count")[0]), "security types")
	if !strings.ContainsRune(string(types), 1) {
		t.Fatalf("VNC security types %v lack None (1)", types)
	}
	c.Write([]byte{1})
	if r := binary.BigEndian.Uint32(read(4, "security result")); r != 0 {
		t.Fatalf("VNC security result %d", r)
	}
	c.Write([]byte{1}) // ClientInit: shared
	init := read(4, "server init")
	w, h := binary.BigEndian.Uint16(init[0:2]), binary.BigEndian.Uint16(init[2:4])
	if w < 320 || h < 200 {
		t.Fatalf("VNC framebuffer %dx%d: no display", w, h)
	}
	t.Logf("%s's VNC console: framebuffer %dx%d", server, w, h)
	ws.Close(websocket.StatusNormalClosure, "")
}
