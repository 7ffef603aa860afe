package compute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
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

func (s *Service) serverAction(w http.ResponseWriter, r *http.Request) {
	o, err := rawBody(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(o) != 1 {
		s.fail(w, r, badRequest("Malformed request body"))
		return
	}
	var key string
	for k := range o {
		key = k
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	p := principal(r)
	id := chi.URLParam(r, "id")
	switch key {
	case "os-getConsoleOutput":
		sv, err := writableServer(tx, p, id, "os_compute_api:os-console-output")
		if err == nil {
			err = s.consoleOutput(w, r, sv, o[key])
		}
		if err != nil {
			s.fail(w, r, err)
		}
		return
	case "os-getSerialConsole":
		sv, err := writableServer(tx, p, id, "os_compute_api:os-remote-consoles")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		m, _ := o[key].(map[string]any)
		typ, _ := m["type"].(string)
		if typ != "serial" {
			s.fail(w, r, badField("type", m["type"], "'%s' is not one of ['serial']", valueText(m["type"])))
			return
		}
		url, err := s.serialURL(r, sv)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		api.JSON(w, http.StatusOK, map[string]any{"console": map[string]any{"type": "serial", "url": url}})
		return
	}
	action, ok := serverActions[key]
	if !ok {
		s.fail(w, r, badRequest("There is no such action: %s", key))
		return
	}
	sv, err := writableServer(tx, p, id, "os_compute_api:servers:"+action)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hard := false
	if action == "reboot" {
		m, ok := o[key].(map[string]any)
		typ, _ := m["type"].(string)
		switch strings.ToUpper(typ) {
		case "HARD":
			hard = true
		case "SOFT":
		default:
			if !ok {
				s.fail(w, r, badField("reboot", o[key], "%s is not of type 'object'", valueText(o[key])))
			} else {
				s.fail(w, r, badField("type", m["type"], "%s is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']", valueText(m["type"])))
			}
			return
		}
	} else if o[key] != nil {
		if m, ok := o[key].(map[string]any); !ok || len(m) > 0 {
			s.fail(w, r, badField(key, o[key], "%s is not of type 'null'", valueText(o[key])))
			return
		}
	}
	if _, err := s.act(r, sv, action, hard); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Service) consoleOutput(w http.ResponseWriter, r *http.Request, sv *Server, arg any) error {
	length := -1
	if m, ok := arg.(map[string]any); ok {
		if err := allowOnly(m, "length"); err != nil {
			return err
		}
		rd := &reader{o: m}
		if m["length"] != nil {
			length = rd.integer("length", false, -1, -1, 1<<31-1)
		}
		if rd.err != nil {
			return rd.err
		}
	} else if arg != nil {
		return badField("os-getConsoleOutput", arg, "%s is not of type 'object'", valueText(arg))
	}
	if sv.Host == "" || sv.VMState == vmBuilding && sv.TaskState != "" && sv.Host == "" {
		return conflict("Instance %s is not ready", sv.ID)
	}
	if s.cfg.ConsoleLogs == nil {
		return apiError(http.StatusNotImplemented, "", "Unable to get console log, functionality not implemented")
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

// Serial consoles.

// serialURL hands out a console token for sv and the websocket URL that
// uses it.
func (s *Service) serialURL(r *http.Request, sv *Server) (string, error) {
	if s.cfg.SerialConsole == nil {
		return "", badRequest("Unavailable console type serial.")
	}
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
	c := consoleTokenCmd{Token: ConsoleToken{ID: hex.EncodeToString(sum[:]), ServerID: sv.ID, Expires: now.Add(s.cfg.ConsoleTTL)}, Now: now}
	if err := s.propose(r.Context(), cmdConsoleToken, c, nil); err != nil {
		return "", err
	}
	base := s.apiURL(r)
	base = "ws" + strings.TrimPrefix(base, "http")
	return base + "/servers/" + sv.ID + "/serial?token=" + token, nil
}

func (s *Service) remoteConsole(w http.ResponseWriter, r *http.Request) {
	if !atLeast(r, 6) {
		writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "The resource could not be found."})
		return
	}
	o, _, err := body(r, "remote_console")
	if err == nil {
		err = allowOnly(o, "protocol", "type")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rd := &reader{o: o}
	protocol := rd.str("protocol", true, 1, 0)
	typ := rd.str("type", true, 1, 0)
	if rd.err == nil && !strings.Contains(" vnc spice rdp serial mks ", " "+protocol+" ") {
		rd.fail(badField("protocol", protocol, "'%s' is not one of ['vnc', 'spice', 'rdp', 'serial', 'mks']", protocol))
	}
	if rd.err != nil {
		s.fail(w, r, rd.err)
		return
	}
	if protocol != "serial" || typ != "serial" {
		s.fail(w, r, badRequest("Unavailable console type %s.", typ))
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	sv, err := writableServer(tx, principal(r), chi.URLParam(r, "id"), "os_compute_api:os-remote-consoles")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	url, err := s.serialURL(r, sv)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"remote_console": map[string]any{"protocol": "serial", "type": "serial", "url": url}})
}

// ConsoleTarget returns the server a serial console token grants, while
// the token lives.
func (s *Service) ConsoleTarget(ctx context.Context, token string) (Server, error) {
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return Server{}, err
	}
	sum := sha256.Sum256([]byte(token))
	t := store.Get[ConsoleToken](tx, tConsoles, hex.EncodeToString(sum[:]))
	if t == nil || !s.cfg.Now().Before(t.Expires) {
		return Server{}, fmt.Errorf("console token: %w", api.ErrUnauthorized)
	}
	sv := store.Get[Server](tx, tServers, t.ServerID)
	if sv == nil || sv.Hidden {
		return Server{}, serverNotFound(t.ServerID)
	}
	return *sv, nil
}

func (s *Service) serveSerial(w http.ResponseWriter, r *http.Request) {
	sv, err := s.ConsoleTarget(r.Context(), r.URL.Query().Get("token"))
	if err == nil && sv.ID != chi.URLParam(r, "id") {
		err = fmt.Errorf("console token: %w", api.ErrUnauthorized)
	}
	if err != nil {
		if errors.Is(err, api.ErrUnauthorized) {
			writeError(w, r, api.Problem{Status: http.StatusUnauthorized, Msg: "The console token is invalid or expired."})
			return
		}
		s.fail(w, r, err)
		return
	}
	if s.cfg.SerialConsole == nil {
		writeError(w, r, api.Problem{Status: http.StatusNotImplemented, Msg: "The serial console proxy is not available on this node."})
		return
	}
	s.cfg.SerialConsole.ServeSerial(w, r, sv)
}

// Addresses.

func (s *Service) listIPs(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	sv, err := visibleServer(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"addresses": plainAddresses(s.addresses(r.Context(), sv))})
}

// plainAddresses drops the OS-EXT-IPS attributes, which the ips API lacks.
func plainAddresses(in map[string]any) map[string]any {
	out := map[string]any{}
	for net, list := range in {
		var l []any
		for _, a := range list.([]any) {
			m := a.(map[string]any)
			l = append(l, map[string]any{"version": m["version"], "addr": m["addr"]})
		}
		if l == nil {
			l = []any{}
		}
		out[net] = l
	}
	return out
}

func (s *Service) showIPs(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	sv, err := visibleServer(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	net := chi.URLParam(r, "network")
	addrs := plainAddresses(s.addresses(r.Context(), sv))
	list, ok := addrs[net]
	if !ok {
		s.fail(w, r, notFound("Instance is not a member of specified network"))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{net: list})
}

// Metadata.

func (s *Service) metaServer(w http.ResponseWriter, r *http.Request, write bool) (*Server, bool) {
	tx, ok := s.read(w, r)
	if !ok {
		return nil, false
	}
	p := principal(r)
	id := chi.URLParam(r, "id")
	var sv *Server
	var err error
	if write {
		sv, err = writableServer(tx, p, id, "os_compute_api:server-metadata:update")
	} else {
		sv, err = visibleServer(tx, p, id)
	}
	if err != nil {
		s.fail(w, r, err)
		return nil, false
	}
	return sv, true
}

func (s *Service) listMetadata(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.metaServer(w, r, false)
	if !ok {
		return
	}
	md := sv.Metadata
	if md == nil {
		md = map[string]string{}
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": md})
}

func (s *Service) writeMetadata(w http.ResponseWriter, r *http.Request, replace bool) {
	sv, ok := s.metaServer(w, r, true)
	if !ok {
		return
	}
	o, _, err := body(r, "metadata")
	var md map[string]string
	if err == nil {
		md, err = stringMap("metadata", o, 255)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c := serverUpdateCmd{ID: sv.ID, Now: s.now()}
	if replace {
		c.Metadata = &md
	} else {
		c.MetadataSet = md
	}
	var row Server
	if err := s.propose(r.Context(), cmdServerUpdate, c, &row); err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": row.Metadata})
}

func (s *Service) replaceMetadata(w http.ResponseWriter, r *http.Request) {
	s.writeMetadata(w, r, true)
}
func (s *Service) mergeMetadata(w http.ResponseWriter, r *http.Request) { s.writeMetadata(w, r, false) }

func (s *Service) showMetadataItem(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.metaServer(w, r, false)
	if !ok {
		return
	}
	key := chi.URLParam(r, "key")
	v, ok := sv.Metadata[key]
	if !ok {
		s.fail(w, r, notFound("Metadata item was not found"))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
}

func (s *Service) setMetadataItem(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.metaServer(w, r, true)
	if !ok {
		return
	}
	key := chi.URLParam(r, "key")
	o, _, err := body(r, "meta")
	var md map[string]string
	if err == nil {
		md, err = stringMap("meta", o, 255)
	}
	if err == nil {
		if _, ok := md[key]; !ok && len(md) == 1 {
			err = badRequest("Request body and URI mismatch")
		} else if len(md) != 1 {
			err = badRequest("Request body contains too many items")
		}
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.propose(r.Context(), cmdServerUpdate, serverUpdateCmd{ID: sv.ID, MetadataSet: md, Now: s.now()}, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": md})
}

func (s *Service) deleteMetadataItem(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.metaServer(w, r, true)
	if !ok {
		return
	}
	c := serverUpdateCmd{ID: sv.ID, MetadataDelete: chi.URLParam(r, "key"), Now: s.now()}
	if err := s.propose(r.Context(), cmdServerUpdate, c, nil); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Instance actions.

func (s *Service) actionView(r *http.Request, a *Action) map[string]any {
	v := map[string]any{"action": a.Action, "instance_uuid": a.ServerID, "request_id": a.RequestID, "user_id": a.UserID,
		"project_id": a.Project, "start_time": a.Start.UTC().Format("2006-01-02T15:04:05.000000"), "message": nil}
	if atLeast(r, 58) {
		v["updated_at"] = v["start_time"]
	}
	return v
}

func (s *Service) listActions(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.metaServer(w, r, false)
	if !ok {
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	rows := store.All[Action](tx, tActions, "server", sv.ID)
	sort.SliceStable(rows, func(i, j int) bool {
		if !rows[i].Start.Equal(rows[j].Start) {
			return rows[i].Start.After(rows[j].Start)
		}
		return rows[i].RequestID > rows[j].RequestID
	})
	out := make([]any, 0, len(rows))
	for _, a := range rows {
		out = append(out, s.actionView(r, a))
	}
	api.JSON(w, http.StatusOK, map[string]any{"instanceActions": out})
}

func (s *Service) showAction(w http.ResponseWriter, r *http.Request) {
	sv, ok := s.metaServer(w, r, false)
	if !ok {
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	req := chi.URLParam(r, "req")
	a := store.Get[Action](tx, tActions, sv.ID+"/"+req)
	if a == nil {
		s.fail(w, r, notFound("Action %s could not be found.", req))
		return
	}
	v := s.actionView(r, a)
	v["events"] = []any{}
	api.JSON(w, http.StatusOK, map[string]any{"instanceAction": v})
}
