package compute

import (
	"net/http"
	"slices"
	"sort"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// A server's addresses, metadata and instance-action log.

// readServer is the {id} server the caller may see, or with a rule,
// change (rule names the policy a reader of its project fails).
func (s *Service) readServer(r *http.Request, rule string) (*Server, error) {
	_, sv, err := s.readServerTx(r, rule)
	return sv, err
}

// readServerTx is readServer with the read it was found in.
func (s *Service) readServerTx(r *http.Request, rule string) (*memdb.Txn, *Server, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, nil, err
	}
	var sv *Server
	if rule != "" {
		sv, err = writableServer(tx, principal(r), chi.URLParam(r, "id"), rule)
	} else {
		sv, err = visibleServer(tx, principal(r), chi.URLParam(r, "id"))
	}
	return tx, sv, err
}

const metadataRule = "os_compute_api:server-metadata:update"

// Addresses.

func (s *Service) listIPs(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "")
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"addresses": plainAddresses(s.addresses(r.Context(), sv))})
	return nil
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

func (s *Service) showIPs(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "")
	if err != nil {
		return err
	}
	net := chi.URLParam(r, "network")
	list, ok := plainAddresses(s.addresses(r.Context(), sv))[net]
	if !ok {
		return notFound("Instance is not a member of specified network")
	}
	api.JSON(w, http.StatusOK, map[string]any{net: list})
	return nil
}

// Metadata.

func (s *Service) listMetadata(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "")
	if err != nil {
		return err
	}
	md := sv.Metadata
	if md == nil {
		md = map[string]string{}
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": md})
	return nil
}

func (s *Service) writeMetadata(w http.ResponseWriter, r *http.Request, replace bool) error {
	sv, err := s.readServer(r, metadataRule)
	if err != nil {
		return err
	}
	if err := refuseLocked(r, sv); err != nil {
		return err
	}
	o, _, err := readBody(r, "metadata")
	if err != nil {
		return err
	}
	md, err := stringMap("metadata", o, 255)
	if err != nil {
		return err
	}
	c := serverUpdateCmd{ID: sv.ID, Now: s.now()}
	if replace {
		c.Metadata = &md
	} else {
		c.MetadataSet = md
	}
	var row Server
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerUpdate, c, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": row.Metadata})
	return nil
}

func (s *Service) replaceMetadata(w http.ResponseWriter, r *http.Request) error {
	return s.writeMetadata(w, r, true)
}

func (s *Service) mergeMetadata(w http.ResponseWriter, r *http.Request) error {
	return s.writeMetadata(w, r, false)
}

func (s *Service) showMetadataItem(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "")
	if err != nil {
		return err
	}
	key := chi.URLParam(r, "key")
	v, ok := sv.Metadata[key]
	if !ok {
		return notFound("Metadata item was not found")
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
	return nil
}

func (s *Service) setMetadataItem(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, metadataRule)
	if err != nil {
		return err
	}
	if err := refuseLocked(r, sv); err != nil {
		return err
	}
	key := chi.URLParam(r, "key")
	o, _, err := readBody(r, "meta")
	if err != nil {
		return err
	}
	md, err := stringMap("meta", o, 255)
	if err != nil {
		return err
	}
	if len(md) != 1 {
		return badRequest("Request body contains too many items")
	}
	if _, ok := md[key]; !ok {
		return badRequest("Request body and URI mismatch")
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerUpdate, serverUpdateCmd{ID: sv.ID, MetadataSet: md, Now: s.now()}, nil); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": md})
	return nil
}

func (s *Service) deleteMetadataItem(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, metadataRule)
	if err != nil {
		return err
	}
	if err := refuseLocked(r, sv); err != nil {
		return err
	}
	c := serverUpdateCmd{ID: sv.ID, MetadataDelete: chi.URLParam(r, "key"), Now: s.now()}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerUpdate, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Instance actions.

func (s *Service) actionView(r *http.Request, a *Action) map[string]any {
	v := map[string]any{"action": a.Action, "instance_uuid": a.ServerID, "request_id": a.RequestID, "user_id": nil,
		"project_id": a.Project, "start_time": a.Start.UTC().Format("2006-01-02T15:04:05.000000"), "message": nil}
	// An action the system took on its own has no user, as in Nova.
	if a.UserID != "" {
		v["user_id"] = a.UserID
	}
	if a.Message != "" {
		v["message"] = a.Message
	}
	if atLeast(r, 58) {
		// Nova's action is updated when an event of it finishes.
		updated := a.Start
		for _, e := range a.Events {
			if e.Finish.After(updated) {
				updated = e.Finish
			}
		}
		v["updated_at"] = updated.UTC().Format("2006-01-02T15:04:05.000000")
	}
	return v
}

// eventViews shows an action's events as Nova does: the traceback and
// the host only to admins, from 2.84 the details to everyone.
func (s *Service) eventViews(r *http.Request, sv *Server, a *Action) []any {
	admin := principal(r).IsAdmin()
	out := make([]any, 0, len(a.Events))
	for _, e := range a.Events {
		v := map[string]any{"event": e.Event, "start_time": e.Start.UTC().Format("2006-01-02T15:04:05.000000"),
			"finish_time": nil, "result": nil}
		// An event still running has neither, as in Nova.
		if !e.Finish.IsZero() {
			v["finish_time"], v["result"] = e.Finish.UTC().Format("2006-01-02T15:04:05.000000"), e.Result
		}
		if admin {
			v["traceback"] = nil
			if e.Details != "" {
				v["traceback"] = e.Details
			}
		}
		if atLeast(r, 84) {
			// Nova's details: the failure's message, for every reader
			// of the action (as a server's fault message is), null
			// for an event that did not fail with one.
			v["details"] = orNil(e.Details)
		}
		if atLeast(r, 62) {
			v["hostId"] = hostID(&Server{Host: e.Host, Project: sv.Project})
			if admin {
				v["host"] = e.Host
			}
		}
		out = append(out, v)
	}
	return out
}

// actionServer is the server whose actions are asked for: from 2.21, as
// Nova reads deleted instances there, also one deleted (or being deleted)
// whose action log is kept (removeServer), for its project's readers and
// admins. A deleted server is known here by its id and project only.
func (s *Service) actionServer(r *http.Request) (*memdb.Txn, *Server, error) {
	tx, sv, err := s.readServerTx(r, "")
	if err == nil || tx == nil || !atLeast(r, 21) {
		return tx, sv, err
	}
	id := chi.URLParam(r, "id")
	if row := store.Get[Server](tx, tServers, id); row != nil && !row.Hidden {
		return nil, nil, err // there, but not the caller's
	}
	acts := store.All[Action](tx, tActions, "server", id)
	if len(acts) == 0 || !principal(r).CanRead(acts[0].Project) {
		return nil, nil, err
	}
	return tx, &Server{ID: id, Project: acts[0].Project}, nil
}

func (s *Service) listActions(w http.ResponseWriter, r *http.Request) error {
	tx, sv, err := s.actionServer(r)
	if err != nil {
		return err
	}
	// changes-since (2.58) and changes-before (2.66) bound an action's
	// updated_at, which is its start here: actions have no events.
	since, before, err := changeWindow(r, 58)
	if err != nil {
		return err
	}
	rows := store.All[Action](tx, tActions, "server", sv.ID)
	rows = slices.DeleteFunc(rows, func(a *Action) bool { return !inWindow(a.Start, since, before) })
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
	return nil
}

func (s *Service) showAction(w http.ResponseWriter, r *http.Request) error {
	tx, sv, err := s.actionServer(r)
	if err != nil {
		return err
	}
	req := chi.URLParam(r, "req")
	a := store.Get[Action](tx, tActions, sv.ID+"/"+req)
	if a == nil {
		return notFound("Action %s could not be found.", req)
	}
	v := s.actionView(r, a)
	v["events"] = s.eventViews(r, sv, a)
	api.JSON(w, http.StatusOK, map[string]any{"instanceAction": v})
	return nil
}
