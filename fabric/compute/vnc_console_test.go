package compute

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noVNC consoles: remote-consoles (vnc, novnc) and os-getVNCConsole hand
// out noVNC's page with the websocket's path and a token in it; the page
// is served from NoVNCDir; the token opens that server's VNC console
// only, and a serial token does not open it. Without noVNC installed the
// console type is unavailable, as in Nova with VNC off.
func TestNoVNCConsole(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "web")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, noVNCPage), []byte("<html>noVNC</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.svc.cfg.NoVNCDir = dir
	c := f.expect("POST", "/v2.1/servers/"+id+"/remote-consoles", alice, "2.6", map[string]any{"remote_console": map[string]any{"protocol": "vnc", "type": "novnc"}}, 200, "")["remote_console"].(map[string]any)
	page, err := url.Parse(c["url"].(string))
	if err != nil || c["protocol"] != "vnc" || c["type"] != "novnc" || !strings.HasSuffix(page.Path, "/compute/v2.1/novnc/"+noVNCPage) {
		t.Fatalf("console: %v (%v)", c, err)
	}
	ws := page.Query().Get("path")
	if !strings.HasPrefix(ws, "compute/v2.1/servers/"+id+"/vnc?token=") {
		t.Fatalf("websocket path %q", ws)
	}
	get := func(u string) (int, string) {
		t.Helper()
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get(page.String()); code != 200 || body != "<html>noVNC</html>" {
		t.Fatalf("noVNC page: %d %s", code, body)
	}
	if code, _ := get(page.Scheme + "://" + page.Host + "/compute/v2.1/novnc/../../etc/passwd"); code == 200 {
		t.Fatal("a path outside the noVNC directory was served")
	}
	wsURL := page.Scheme + "://" + page.Host + "/" + ws
	if code, body := get(wsURL); code != 200 || body != "vnc "+id+" on n1" {
		t.Fatalf("vnc endpoint: %d %s", code, body)
	}
	token := ws[strings.Index(ws, "token=")+6:]
	other := f.server(alice, "other")
	f.expect("GET", "/v2.1/servers/"+other+"/vnc?token="+token, "", "", nil, 401, "")
	f.expect("GET", "/v2.1/servers/"+id+"/serial?token="+token, "", "", nil, 401, "")
	serial := f.expect("POST", "/v2.1/servers/"+id+"/remote-consoles", alice, "2.6", map[string]any{"remote_console": map[string]any{"protocol": "serial", "type": "serial"}}, 200, "")["remote_console"].(map[string]any)["url"].(string)
	f.expect("GET", "/v2.1/servers/"+id+"/vnc?token="+serial[strings.Index(serial, "token=")+6:], "", "", nil, 401, "")
	f.expect("POST", "/v2.1/servers/"+id+"/remote-consoles", bob, "2.6", map[string]any{"remote_console": map[string]any{"protocol": "vnc", "type": "novnc"}}, 404, "itemNotFound")

	old := f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getVNCConsole": map[string]any{"type": "novnc"}}, 200, "")["console"].(map[string]any)
	if old["type"] != "novnc" || !strings.Contains(old["url"].(string), "/novnc/"+noVNCPage+"?path=") {
		t.Fatalf("os-getVNCConsole: %v", old)
	}
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getVNCConsole": map[string]any{"type": "xvpvnc"}}, 400, "badRequest", "xvpvnc")
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"os-getVNCConsole": map[string]any{"type": "spice"}}, 400, "badRequest", "type")

	f.svc.cfg.NoVNCDir = filepath.Join(dir, "missing")
	f.expect("POST", "/v2.1/servers/"+id+"/remote-consoles", alice, "2.6", map[string]any{"remote_console": map[string]any{"protocol": "vnc", "type": "novnc"}}, 400, "badRequest", "Unavailable console type novnc")
	f.expect("GET", "/v2.1/novnc/"+noVNCPage, "", "", nil, 404, "")
}
