package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// Nova's deprecated volume proxy: os-volumes and os-snapshots, up to
// microversion 2.35 (from 2.36 they are 404, as in Nova). Like Nova's,
// it keeps nothing: each request is passed on to the volume service's
// Cinder v3 API (Config.VolumeAPI, in process) with the caller's own
// token, and the answer is shown in the proxy's older words. Who may see
// or change a volume, quotas, volume types and the work on the blocks
// are the volume service's; a tenant sees only what Cinder shows it.

// maxProxyMinor is the last microversion with the proxy APIs (Nova's
// MAX_PROXY_API_SUPPORT_VERSION).
const maxProxyMinor = 35

// proxyRule is the policy rule of the proxy (Nova's os-volumes base
// rule); creating and deleting need the member role, as Nova's default.
const proxyRule = "os_compute_api:os-volumes"

// proxyResponse is the volume service's answer to one proxied request.
type proxyResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (p *proxyResponse) Header() http.Header { return p.header }

func (p *proxyResponse) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

func (p *proxyResponse) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.body.Write(b)
}

// proxyAllowed refuses a request past 2.35 (404, as Nova), one without a
// volume service (501) and, for changes, a caller without the member
// role on its project.
func (s *Service) proxyAllowed(r *http.Request, change bool) error {
	if atLeast(r, maxProxyMinor+1) {
		return unknownResource()
	}
	if s.cfg.VolumeAPI == nil {
		return notImplemented("The volume proxy (os-volumes, os-snapshots) needs the volume service, which this cloud does not run.")
	}
	p := principal(r)
	if p.ProjectID == "" || p.System {
		// Cinder's volumes are a project's: a token without one has
		// none to show or make.
		return policyDenied(proxyRule)
	}
	if change && !p.IsAdmin() && !p.HasRole("member") {
		return policyDenied(proxyRule)
	}
	return nil
}

// cinder passes one request on to the volume service, as the caller, and
// decodes its JSON answer; an error answer comes back as the error Nova
// turns it into (Cinder's message, Nova's fault body).
func (s *Service) cinder(r *http.Request, method, path string, body any) (map[string]any, error) {
	target := "/v3/" + url.PathEscape(principal(r).ProjectID) + path
	// Cinder's base version, whose views the proxy translates.
	status, out, err := inProcess(r, s.cfg.VolumeAPI, "volume", method, target, body,
		map[string]string{"Content-Type": "application/json", "OpenStack-API-Version": "volume 3.0"})
	if err != nil {
		return nil, err
	}
	if status >= 400 {
		return nil, proxyError(status, out)
	}
	return out, nil
}

// inProcess passes one request on to another service's handler h as the
// caller (its token, host and address) and decodes its JSON answer,
// returned with its status. hdr is set on the request; Content-Type only
// when there is a body. The request gets a fresh routing context: the
// other service's router must route the path it is given, not the
// compute router's.
func inProcess(r *http.Request, h http.Handler, service, method, target string, body any, hdr map[string]string) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx := api.AsServiceCall(context.WithValue(r.Context(), chi.RouteCtxKey, nil))
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Host, req.RemoteAddr = r.Host, r.RemoteAddr
	req.Header.Set("X-Auth-Token", r.Header.Get("X-Auth-Token"))
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		if k != "Content-Type" || body != nil {
			req.Header.Set(k, v)
		}
	}
	res := &proxyResponse{header: http.Header{}}
	h.ServeHTTP(res, req)
	if res.status == 0 {
		res.status = http.StatusOK
	}
	var out map[string]any
	if res.body.Len() > 0 {
		if err := json.Unmarshal(res.body.Bytes(), &out); err != nil && res.status < 400 {
			return 0, nil, fmt.Errorf("%s service: %s %s: undecodable answer: %w", service, method, target, err)
		}
	}
	return res.status, out, nil
}

// proxyError is Nova's error for the volume service's: the same status
// and message, except that Cinder's over-quota 413 is Nova's 403.
func proxyError(status int, body map[string]any) error {
	msg := http.StatusText(status)
	for _, v := range body {
		if m, ok := v.(map[string]any); ok {
			if s, ok := m["message"].(string); ok && s != "" {
				msg = s
			}
		}
	}
	switch status {
	case http.StatusNotFound:
		return notFound("%s", msg)
	case http.StatusBadRequest:
		return badRequest("%s", msg)
	case http.StatusRequestEntityTooLarge:
		return &api.Error{Status: http.StatusForbidden, Msg: msg}
	}
	return &api.Error{Status: status, Msg: msg}
}

// limited is Nova's common.limited: offset and limit (at most 1000; 0 or
// none means 1000) over a list it has whole.
func limited(r *http.Request, items []any) ([]any, error) {
	q := r.URL.Query()
	read := func(name string) (int, error) {
		raw := q.Get(name)
		if raw == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 {
			return 0, badRequest("Invalid input for query parameters %s. Value: %s. '%s' does not match '^[0-9]*$'", name, raw, raw)
		}
		return n, nil
	}
	offset, err := read("offset")
	if err != nil {
		return nil, err
	}
	limit, err := read("limit")
	if err != nil {
		return nil, err
	}
	if limit == 0 || limit > 1000 {
		limit = 1000
	}
	offset = min(offset, len(items))
	return items[offset:min(offset+limit, len(items))], nil
}

// Volumes.

// proxyVolumeView is a Cinder volume as Nova's proxy shows it: one
// attachment, or [{}] when there is none.
func proxyVolumeView(v map[string]any) map[string]any {
	att := map[string]any{}
	if l, _ := v["attachments"].([]any); len(l) > 0 {
		a, _ := l[0].(map[string]any)
		att = map[string]any{"id": v["id"], "volumeId": v["id"], "serverId": a["server_id"]}
		if d, _ := a["device"].(string); d != "" {
			att["device"] = d
		}
	}
	md, _ := v["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
	}
	return map[string]any{
		"id": v["id"], "status": v["status"], "size": v["size"], "availabilityZone": v["availability_zone"],
		"createdAt": v["created_at"], "displayName": v["name"], "displayDescription": v["description"],
		"volumeType": v["volume_type"], "snapshotId": v["snapshot_id"], "metadata": md,
		"attachments": []any{att},
	}
}

func volumeIDParam(r *http.Request) string {
	return "/volumes/" + url.PathEscape(chi.URLParam(r, "volume_id"))
}

func (s *Service) listProxyVolumes(w http.ResponseWriter, r *http.Request) error {
	return s.proxyList(w, r, "/volumes/detail", "volumes", proxyVolumeView)
}

func (s *Service) showProxyVolume(w http.ResponseWriter, r *http.Request) error {
	return s.proxyShow(w, r, volumeIDParam(r), "volume", proxyVolumeView)
}

func (s *Service) createProxyVolume(w http.ResponseWriter, r *http.Request) error {
	if err := s.proxyAllowed(r, true); err != nil {
		return err
	}
	o, _, err := readBody(r, "volume")
	if err != nil {
		return err
	}
	if err := allowOnly(o, "size", "display_name", "display_description", "volume_type", "metadata", "availability_zone", "snapshot_id"); err != nil {
		return err
	}
	in := newInput(o)
	if v, ok := o["size"].(string); ok && !digits(v) {
		in.Fail(badField("size", v, "'%s' does not match '^[0-9]+$'", v))
	}
	vol := map[string]any{"size": integer(in, "size", true, 0, 1, math.MaxInt32)}
	// Nova's names, and Cinder's (null is no string in Nova's schema).
	for _, f := range [][2]string{{"display_name", "name"}, {"display_description", "description"}, {"volume_type", "volume_type"},
		{"availability_zone", "availability_zone"}, {"snapshot_id", "snapshot_id"}} {
		if _, ok := o[f[0]]; ok {
			vol[f[1]] = str(in, f[0], false, 0, 0)
		}
	}
	if m, ok := o["metadata"]; ok {
		if _, isObj := m.(map[string]any); !isObj {
			in.Fail(badField("metadata", m, "%s is not of type 'object'", api.Text(m)))
		}
		vol["metadata"] = m
	}
	if in.Err != nil {
		return in.Err
	}
	body, err := s.cinder(r, http.MethodPost, "/volumes", map[string]any{"volume": vol})
	if err != nil {
		return err
	}
	v, _ := body["volume"].(map[string]any)
	view := proxyVolumeView(v)
	if id, ok := view["id"].(string); ok {
		w.Header().Set("Location", s.apiURL(r)+"/os-volumes/"+id)
	}
	api.JSON(w, http.StatusOK, map[string]any{"volume": view})
	return nil
}

// digits is Nova's size pattern ^[0-9]+$ for a size given as a string.
func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (s *Service) deleteProxyVolume(w http.ResponseWriter, r *http.Request) error {
	return s.proxyDelete(w, r, volumeIDParam(r))
}

// proxyList answers a proxied list: Cinder's detail list at path, its
// items under key, limited as Nova limits them, each shown by view.
func (s *Service) proxyList(w http.ResponseWriter, r *http.Request, path, key string, view func(map[string]any) map[string]any) error {
	if err := s.proxyAllowed(r, false); err != nil {
		return err
	}
	body, err := s.cinder(r, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	all, _ := body[key].([]any)
	page, err := limited(r, all)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(page))
	for _, v := range page {
		if m, ok := v.(map[string]any); ok {
			out = append(out, view(m))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{key: out})
	return nil
}

// proxyShow answers a proxied show: Cinder's item at path, under key,
// shown by view.
func (s *Service) proxyShow(w http.ResponseWriter, r *http.Request, path, key string, view func(map[string]any) map[string]any) error {
	if err := s.proxyAllowed(r, false); err != nil {
		return err
	}
	body, err := s.cinder(r, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	v, _ := body[key].(map[string]any)
	api.JSON(w, http.StatusOK, map[string]any{key: view(v)})
	return nil
}

// proxyDelete answers a proxied delete of Cinder's item at path.
func (s *Service) proxyDelete(w http.ResponseWriter, r *http.Request, path string) error {
	if err := s.proxyAllowed(r, true); err != nil {
		return err
	}
	if _, err := s.cinder(r, http.MethodDelete, path, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// Snapshots.

// proxySnapshotView is a Cinder snapshot as Nova's proxy shows it.
func proxySnapshotView(sn map[string]any) map[string]any {
	return map[string]any{
		"id": sn["id"], "volumeId": sn["volume_id"], "status": sn["status"], "size": sn["size"],
		"createdAt": sn["created_at"], "displayName": sn["name"], "displayDescription": sn["description"],
	}
}

func snapshotIDParam(r *http.Request) string {
	return "/snapshots/" + url.PathEscape(chi.URLParam(r, "id"))
}

func (s *Service) listProxySnapshots(w http.ResponseWriter, r *http.Request) error {
	return s.proxyList(w, r, "/snapshots/detail", "snapshots", proxySnapshotView)
}

func (s *Service) showProxySnapshot(w http.ResponseWriter, r *http.Request) error {
	return s.proxyShow(w, r, snapshotIDParam(r), "snapshot", proxySnapshotView)
}

func (s *Service) createProxySnapshot(w http.ResponseWriter, r *http.Request) error {
	if err := s.proxyAllowed(r, true); err != nil {
		return err
	}
	o, _, err := readBody(r, "snapshot")
	if err != nil {
		return err
	}
	if err := allowOnly(o, "volume_id", "force", "display_name", "display_description"); err != nil {
		return err
	}
	in := newInput(o)
	sn := map[string]any{"volume_id": str(in, "volume_id", true, 0, 0)}
	if _, ok := o["force"]; ok {
		sn["force"] = boolean(in, "force", false)
	}
	for _, f := range [][2]string{{"display_name", "name"}, {"display_description", "description"}} {
		if _, ok := o[f[0]]; ok {
			sn[f[1]] = str(in, f[0], false, 0, 0)
		}
	}
	if in.Err != nil {
		return in.Err
	}
	body, err := s.cinder(r, http.MethodPost, "/snapshots", map[string]any{"snapshot": sn})
	if err != nil {
		return err
	}
	view, _ := body["snapshot"].(map[string]any)
	api.JSON(w, http.StatusOK, map[string]any{"snapshot": proxySnapshotView(view)})
	return nil
}

func (s *Service) deleteProxySnapshot(w http.ResponseWriter, r *http.Request) error {
	return s.proxyDelete(w, r, snapshotIDParam(r))
}
