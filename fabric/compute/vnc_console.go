package compute

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// Graphical consoles: Nova's noVNC console (`openstack console url show`
// defaults to it). Every guest's QEMU has a VGA whose VNC server listens
// on a unix socket on its node (node/hypervisor/qemu); the console proxy
// bridges a websocket to it, relayed through the guest's node as the
// serial console is (node/console). The URL handed out is noVNC's own
// page, served here from the noVNC package, with the websocket's path
// (token and all) in its path parameter, as Nova's novncproxy URLs are.
// The token opens this server's VNC console only, for ConsoleTTL.

const noVNCPage = "vnc_lite.html"

// noVNCURL hands out a VNC console token for sv and the noVNC page that
// uses it; 400 where this node has no noVNC client to serve.
func (s *Service) noVNCURL(r *http.Request, sv *Server) (string, error) {
	if s.cfg.SerialConsole == nil || !s.haveNoVNC() {
		return "", badRequest("Unavailable console type novnc.")
	}
	token, err := s.consoleToken(r, sv, "vnc")
	if err != nil {
		return "", err
	}
	base := s.apiURL(r)
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("console URL from %q: %w", base, err)
	}
	// noVNC connects to ws(s)://<the page's host>/<path>.
	ws := strings.TrimPrefix(u.Path, "/") + "/servers/" + sv.ID + "/vnc?token=" + token
	return base + "/novnc/" + noVNCPage + "?path=" + url.QueryEscape(ws), nil
}

func (s *Service) haveNoVNC() bool {
	if s.cfg.NoVNCDir == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(s.cfg.NoVNCDir, noVNCPage))
	return err == nil
}

// vncConsoleAction is the os-getVNCConsole server action (before 2.6):
// type novnc only, as Nova's libvirt driver.
func (s *Service) vncConsoleAction(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, "os_compute_api:os-remote-consoles")
	if err != nil {
		return err
	}
	m, _ := arg.(map[string]any)
	typ, _ := m["type"].(string)
	switch typ {
	case "novnc":
	case "xvpvnc":
		return badRequest("Unavailable console type xvpvnc.")
	default:
		return badField("type", m["type"], "'%s' is not one of ['novnc', 'xvpvnc']", api.Text(m["type"]))
	}
	url, err := s.noVNCURL(r, sv)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"console": map[string]any{"type": "novnc", "url": url}})
	return nil
}

// serveVNC is the VNC console's websocket.
func (s *Service) serveVNC(w http.ResponseWriter, r *http.Request) error {
	return s.serveConsole(w, r, "vnc")
}

// serveNoVNC serves noVNC's web client, static files only.
func (s *Service) serveNoVNC(w http.ResponseWriter, r *http.Request) error {
	if !s.haveNoVNC() {
		return notFound("The noVNC client is not installed on this node.")
	}
	name := chi.URLParam(r, "*")
	http.StripPrefix(strings.TrimSuffix(r.URL.Path, name), http.FileServer(http.Dir(s.cfg.NoVNCDir))).ServeHTTP(w, r)
	return nil
}
