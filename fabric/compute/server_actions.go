package compute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// serverActions maps the body key of POST /servers/{id}/action to the
// state-changing action it asks for.
var serverActions = map[string]string{
	"os-start": "start", "os-stop": "stop", "reboot": "reboot", "pause": "pause", "unpause": "unpause",
	"suspend": "suspend", "resume": "resume",
}

// vmOnlyActions are Nova's actions that make no sense for a whole
// machine (there is no hypervisor to move, resize, shelve or rescue it
// on): a client asking for one on a bare-metal server is told why it
// will never work there, whether or not this cloud has it for a VM.
var vmOnlyActions = map[string]bool{
	"resize": true, "confirmResize": true, "revertResize": true, "migrate": true, "os-migrateLive": true,
	"shelve": true, "shelveOffload": true, "unshelve": true, "rescue": true, "unrescue": true,
	"interfaceAttach": true, "addFixedIp": true, "removeFixedIp": true,
}

func (s *Service) serverAction(w http.ResponseWriter, r *http.Request) error {
	o, err := readRaw(r)
	if err != nil {
		return err
	}
	if len(o) != 1 {
		return badRequest("Malformed request body")
	}
	var key string
	for k := range o {
		key = k
	}
	switch key {
	case "os-getConsoleOutput":
		return s.consoleOutput(w, r, o[key])
	case "os-getSerialConsole":
		return s.serialConsole(w, r, o[key])
	case "os-getVNCConsole":
		return s.vncConsoleAction(w, r, o[key])
	case "lock":
		return s.lockServer(w, r, o[key])
	case "unlock":
		return s.unlockServer(w, r)
	case "os-resetState":
		return s.resetState(w, r, o[key])
	case "addSecurityGroup", "removeSecurityGroup":
		return s.serverSecurityGroup(w, r, key, o[key])
	case "addFloatingIp", "removeFloatingIp":
		return s.floatingAction(w, r, key, o[key])
	case "forceDelete":
		return s.forceDelete(w, r, o[key])
	case "restore":
		return s.restore(r, o[key])
	case "createImage":
		return s.createImage(w, r, o[key])
	case "createBackup":
		return s.createBackup(w, r, o[key])
	case "shelve":
		return s.shelve(w, r, o[key])
	case "shelveOffload":
		return s.shelveOffload(r, o[key])
	case "unshelve":
		return s.unshelve(w, r, o[key])
	case "resize":
		return s.resize(w, r, o[key])
	case "confirmResize", "revertResize":
		return s.endResize(w, r, key, o[key])
	case "migrate":
		return s.migrate(w, r, o[key])
	case "evacuate":
		return s.evacuate(w, r, o[key])
	case "os-migrateLive":
		return s.liveMigrate(w, r, o[key])
	case "rescue":
		return s.rescue(w, r, o[key])
	case "unrescue":
		return s.unrescue(w, r, o[key])
	}
	action, ok := serverActions[key]
	if !ok {
		if key == "rebuild" {
			if err := s.lockedFor(r, "os_compute_api:servers:rebuild"); err != nil {
				return err
			}
			return s.rebuild(w, r, o[key])
		}
		return s.otherAction(r, key)
	}
	sv, err := s.readServer(r, "os_compute_api:servers:"+action)
	if err != nil {
		return err
	}
	hard, err := readActionArg(key, o[key])
	if err != nil {
		return err
	}
	if _, err := s.act(r, sv, action, hard); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// readActionArg checks an action's argument: a reboot's type (hard
// reports HARD). The others take none, and any value is read as none:
// Nova's schemas for them accept anything (os-start, pause, forceDelete,
// shelve, confirmResize... are {} with "restrict the value to null in a
// future API version"), and clients send "" (Terraform's forceDelete)
// or {}.
func readActionArg(key string, arg any) (hard bool, err error) {
	if key != "reboot" {
		return false, nil
	}
	m, ok := arg.(map[string]any)
	typ, _ := m["type"].(string)
	switch strings.ToUpper(typ) {
	case "HARD":
		return true, nil
	case "SOFT":
		return false, nil
	}
	if !ok {
		return false, badField("reboot", arg, "%s is not of type 'object'", api.Text(arg))
	}
	return false, badField("type", m["type"], "%s is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']", api.Text(m["type"]))
}

// act proposes a state-changing action on a server; a delete that
// removed the server at once releases its ports.
func (s *Service) act(r *http.Request, sv *Server, action string, hard bool) (*Server, error) {
	ctx := r.Context()
	p := principal(r)
	c := serverActionCmd{ID: sv.ID, Action: action, Hard: hard, UserID: p.UserID, RequestID: requestID(ctx), Now: s.now(),
		Admin: p.IsAdmin(), Owner: p.ProjectID == sv.Project}
	if action == "delete" && sv.Host != "" && !s.hostUp(ctx, sv.Host) {
		c.HostDown = true
	}
	var res actionResult
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdServerAction, c, &res); err != nil {
		return nil, err
	}
	if res.Removed {
		s.releasePorts(context.WithoutCancel(ctx), &res.Server)
		// A server whose build failed takes the volumes made for it
		// with delete_on_termination.
		s.deleteBuiltVolumes(context.WithoutCancel(ctx), &res.Server, p, false)
		if img := res.Server.ShelvedImage; img != "" && s.cfg.Snapshots != nil {
			// A shelved server's image goes with it, as in Nova.
			if err := s.cfg.Snapshots.Discard(context.WithoutCancel(ctx), img); err != nil && api.StatusOf(err) != http.StatusNotFound {
				s.log.Warn("compute: delete the shelved image of a deleted server", "server", sv.ID, "image", img, "err", err)
			}
		}
	}
	return &res.Server, nil
}

// requestID is the request's id as instance actions record it.
func requestID(ctx context.Context) string {
	if id := api.RequestID(ctx); id != "" {
		return id
	}
	return "req-" + api.NewUUID()
}

// consoleLength reads os-getConsoleOutput's argument: the number of
// lines wanted, -1 for all.
func consoleLength(arg any) (int, error) {
	if arg == nil {
		return -1, nil
	}
	m, ok := arg.(map[string]any)
	if !ok {
		return 0, badField("os-getConsoleOutput", arg, "%s is not of type 'object'", api.Text(arg))
	}
	if err := allowOnly(m, "length"); err != nil {
		return 0, err
	}
	in := newInput(m)
	length := integer(in, "length", false, -1, -1, 1<<31-1)
	return length, in.Err
}

func (s *Service) consoleOutput(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, "os_compute_api:os-console-output")
	if err != nil {
		return err
	}
	length, err := consoleLength(arg)
	if err != nil {
		return err
	}
	if sv.Host == "" {
		return conflict("Instance %s is not ready", sv.ID)
	}
	if s.cfg.ConsoleLogs == nil {
		return notImplemented("Unable to get console log, functionality not implemented")
	}
	out, err := s.cfg.ConsoleLogs.ConsoleOutput(r.Context(), sv.Host, sv.ID, length)
	if err != nil {
		if api.StatusOf(err) == http.StatusNotFound {
			return conflict("Instance %s is not ready", sv.ID)
		}
		return fmt.Errorf("console output of %s: %w", sv.ID, err)
	}
	api.JSON(w, http.StatusOK, map[string]any{"output": out})
	return nil
}

// ConsoleTail is the last length lines of a console log counted as Nova
// counts them (its _tail_log): the log split at every newline, so that
// a final newline ends an empty last line, and the last length pieces
// joined again. A client that asks for 10 lines gets text that splits
// into 10. A negative length is the whole log.
func ConsoleTail(log string, length int) string {
	if length < 0 {
		return log
	}
	if length == 0 {
		return ""
	}
	lines := strings.Split(log, "\n")
	if len(lines) > length {
		lines = lines[len(lines)-length:]
	}
	return strings.Join(lines, "\n")
}

// Serial consoles.

func (s *Service) serialConsole(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, "os_compute_api:os-remote-consoles")
	if err != nil {
		return err
	}
	m, _ := arg.(map[string]any)
	if typ, _ := m["type"].(string); typ != "serial" {
		return badField("type", m["type"], "'%s' is not one of ['serial']", api.Text(m["type"]))
	}
	url, err := s.serialURL(r, sv)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"console": map[string]any{"type": "serial", "url": url}})
	return nil
}

// serialURL hands out a console token for sv and the websocket URL that
// uses it.
func (s *Service) serialURL(r *http.Request, sv *Server) (string, error) {
	if s.cfg.SerialConsole == nil {
		return "", badRequest("Unavailable console type serial.")
	}
	token, err := s.consoleToken(r, sv, "")
	if err != nil {
		return "", err
	}
	base := s.apiURL(r)
	base = "ws" + strings.TrimPrefix(base, "http")
	return base + "/servers/" + sv.ID + "/serial?token=" + token, nil
}

// consoleToken records a console token of kind ("" serial, "vnc") for
// sv, good for ConsoleTTL, and returns it; only its hash is kept.
func (s *Service) consoleToken(r *http.Request, sv *Server, kind string) (string, error) {
	if sv.Host == "" {
		return "", conflict("Instance %s is not ready", sv.ID)
	}
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	token := hex.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	now := s.now()
	c := consoleTokenCmd{Token: ConsoleToken{ID: hex.EncodeToString(sum[:]), ServerID: sv.ID, Expires: now.Add(s.cfg.ConsoleTTL), Kind: kind}, Now: now}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdConsoleToken, c, nil); err != nil {
		return "", err
	}
	return token, nil
}

func (s *Service) remoteConsole(w http.ResponseWriter, r *http.Request) error {
	if !atLeast(r, 6) {
		return unknownResource()
	}
	o, _, err := readBody(r, "remote_console")
	if err != nil {
		return err
	}
	if err := allowOnly(o, "protocol", "type"); err != nil {
		return err
	}
	in := newInput(o)
	protocol := str(in, "protocol", true, 1, 0)
	typ := str(in, "type", true, 1, 0)
	if in.Err == nil && !strings.Contains(" vnc spice rdp serial mks ", " "+protocol+" ") {
		in.Fail(badField("protocol", protocol, "'%s' is not one of ['vnc', 'spice', 'rdp', 'serial', 'mks']", protocol))
	}
	if in.Err != nil {
		return in.Err
	}
	if protocol == "vnc" && typ == "novnc" {
		sv, err := s.readServer(r, "os_compute_api:os-remote-consoles")
		if err != nil {
			return err
		}
		url, err := s.noVNCURL(r, sv)
		if err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"remote_console": map[string]any{"protocol": "vnc", "type": "novnc", "url": url}})
		return nil
	}
	if protocol != "serial" || typ != "serial" {
		return badRequest("Unavailable console type %s.", typ)
	}
	sv, err := s.readServer(r, "os_compute_api:os-remote-consoles")
	if err != nil {
		return err
	}
	url, err := s.serialURL(r, sv)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"remote_console": map[string]any{"protocol": "serial", "type": "serial", "url": url}})
	return nil
}

// ConsoleTarget returns the server a serial console token grants, while
// the token lives.
func (s *Service) ConsoleTarget(ctx context.Context, token string) (Server, error) {
	return s.consoleTarget(ctx, token, "")
}

// consoleTarget returns the server a console token of kind grants.
func (s *Service) consoleTarget(ctx context.Context, token, kind string) (Server, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return Server{}, err
	}
	sum := sha256.Sum256([]byte(token))
	t := store.Get[ConsoleToken](tx, tConsoles, hex.EncodeToString(sum[:]))
	if t == nil || !s.cfg.Now().Before(t.Expires) || t.Kind != kind {
		return Server{}, fmt.Errorf("console token: %w", api.ErrUnauthorized)
	}
	sv := store.Get[Server](tx, tServers, t.ServerID)
	if sv == nil || sv.Hidden {
		return Server{}, serverNotFound(t.ServerID)
	}
	return *sv, nil
}

func (s *Service) serveSerial(w http.ResponseWriter, r *http.Request) error {
	return s.serveConsole(w, r, "")
}

// serveConsole serves the console of kind ("" serial, "vnc") a request's
// console token opens: the token, not a Keystone token, authenticates it.
func (s *Service) serveConsole(w http.ResponseWriter, r *http.Request, kind string) error {
	sv, err := s.consoleTarget(r.Context(), r.URL.Query().Get("token"), kind)
	if err == nil && sv.ID != chi.URLParam(r, "id") {
		err = fmt.Errorf("console token: %w", api.ErrUnauthorized)
	}
	if errors.Is(err, api.ErrUnauthorized) {
		return &api.Error{Status: http.StatusUnauthorized, Msg: "The console token is invalid or expired."}
	}
	if err != nil {
		return err
	}
	if s.cfg.SerialConsole == nil {
		return &api.Error{Status: http.StatusNotImplemented, Msg: "The console proxy is not available on this node."}
	}
	if kind == "vnc" {
		s.cfg.SerialConsole.ServeVNC(w, r, sv)
	} else {
		s.cfg.SerialConsole.ServeSerial(w, r, sv)
	}
	return nil
}
