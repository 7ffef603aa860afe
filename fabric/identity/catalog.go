package identity

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

func jsonRaw(v any) (json.RawMessage, error) { return json.Marshal(v) }

// Regions.

func (s *Service) regionView(r *http.Request, g *Region) map[string]any {
	var parent any
	if g.ParentRegionID != "" {
		parent = g.ParentRegionID
	}
	return map[string]any{"id": g.ID, "description": g.Description, "parent_region_id": parent, "links": s.self(r, "regions", g.ID)}
}

func (s *Service) listRegions(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	var out []*Region
	for _, g := range store.All[Region](tx, tRegions, "id") {
		if match(r, "parent_region_id", g.ParentRegionID) {
			out = append(out, g)
		}
	}
	listOut(w, r, s, "regions", out, func(g *Region) string { return g.ID }, func(g *Region) map[string]any { return s.regionView(r, g) })
}

func (s *Service) showRegion(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	g := store.Get[Region](tx, tRegions, id)
	if g == nil {
		api.Fail(w, r, writeError, notFoundErr("region", id))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"region": s.regionView(r, g)})
}

func (s *Service) createRegion(w http.ResponseWriter, r *http.Request) {
	o, err := body(r, "region")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{o: o}
	g := Region{ID: rd.str("id", false, ""), Description: rd.str("description", false, ""), ParentRegionID: rd.str("parent_region_id", false, "")}
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if id := chi.URLParam(r, "id"); id != "" {
		g.ID = id
	}
	if g.ID == "" {
		g.ID = api.NewHexID()
	}
	if s.put(w, r, tRegions, true, &g) {
		api.JSON(w, http.StatusCreated, map[string]any{"region": s.regionView(r, &g)})
	}
}

func (s *Service) updateRegion(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	old := store.Get[Region](tx, tRegions, id)
	if old == nil {
		api.Fail(w, r, writeError, notFoundErr("region", id))
		return
	}
	o, err := body(r, "region")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	g := *old
	rd := reader{o: o}
	g.Description = rd.str("description", false, g.Description)
	g.ParentRegionID = rd.str("parent_region_id", false, g.ParentRegionID)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if s.put(w, r, tRegions, false, &g) {
		api.JSON(w, http.StatusOK, map[string]any{"region": s.regionView(r, &g)})
	}
}

// Services.

func (s *Service) serviceView(r *http.Request, v *ServiceRow) map[string]any {
	return map[string]any{"id": v.ID, "type": v.Type, "name": v.Name, "description": v.Description, "enabled": v.Enabled, "links": s.self(r, "services", v.ID)}
}

func (s *Service) listServices(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	var out []*ServiceRow
	for _, v := range store.All[ServiceRow](tx, tServices, "id") {
		if match(r, "type", v.Type) && match(r, "name", v.Name) {
			out = append(out, v)
		}
	}
	listOut(w, r, s, "services", out, func(v *ServiceRow) string { return v.ID }, func(v *ServiceRow) map[string]any { return s.serviceView(r, v) })
}

func (s *Service) showService(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	v := store.Get[ServiceRow](tx, tServices, id)
	if v == nil {
		api.Fail(w, r, writeError, notFoundErr("service", id))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"service": s.serviceView(r, v)})
}

func (s *Service) createService(w http.ResponseWriter, r *http.Request) {
	o, err := body(r, "service")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{o: o}
	v := ServiceRow{ID: api.NewHexID(), Type: rd.str("type", true, ""), Name: rd.str("name", false, ""), Description: rd.str("description", false, ""), Enabled: rd.boolean("enabled", true)}
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if s.put(w, r, tServices, true, &v) {
		api.JSON(w, http.StatusCreated, map[string]any{"service": s.serviceView(r, &v)})
	}
}

func (s *Service) updateService(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	old := store.Get[ServiceRow](tx, tServices, id)
	if old == nil {
		api.Fail(w, r, writeError, notFoundErr("service", id))
		return
	}
	o, err := body(r, "service")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	v := *old
	rd := reader{o: o}
	v.Type = rd.str("type", false, v.Type)
	v.Name = rd.str("name", false, v.Name)
	v.Description = rd.str("description", false, v.Description)
	v.Enabled = rd.boolean("enabled", v.Enabled)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if s.put(w, r, tServices, false, &v) {
		api.JSON(w, http.StatusOK, map[string]any{"service": s.serviceView(r, &v)})
	}
}

// Endpoints.

func (s *Service) endpointView(r *http.Request, e *Endpoint) map[string]any {
	var region any
	if e.RegionID != "" {
		region = e.RegionID
	}
	return map[string]any{"id": e.ID, "service_id": e.ServiceID, "interface": e.Interface, "url": e.URL, "region_id": region, "region": region, "enabled": e.Enabled, "links": s.self(r, "endpoints", e.ID)}
}

func (s *Service) listEndpoints(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	var out []*Endpoint
	for _, e := range store.All[Endpoint](tx, tEndpoints, "id") {
		if match(r, "service_id", e.ServiceID) && match(r, "interface", e.Interface) && match(r, "region_id", e.RegionID) {
			out = append(out, e)
		}
	}
	listOut(w, r, s, "endpoints", out, func(e *Endpoint) string { return e.ID }, func(e *Endpoint) map[string]any { return s.endpointView(r, e) })
}

func (s *Service) showEndpoint(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	e := store.Get[Endpoint](tx, tEndpoints, id)
	if e == nil {
		api.Fail(w, r, writeError, notFoundErr("endpoint", id))
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"endpoint": s.endpointView(r, e)})
}

func validInterface(i string) bool { return i == "public" || i == "internal" || i == "admin" }

func (s *Service) createEndpoint(w http.ResponseWriter, r *http.Request) {
	o, err := body(r, "endpoint")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	rd := reader{o: o}
	e := Endpoint{ID: api.NewHexID(), ServiceID: rd.str("service_id", true, ""), Interface: rd.str("interface", true, ""), URL: rd.str("url", true, ""),
		RegionID: rd.str("region_id", false, ""), Enabled: rd.boolean("enabled", true)}
	if e.RegionID == "" {
		e.RegionID = rd.str("region", false, "")
	}
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if !validInterface(e.Interface) {
		api.Fail(w, r, writeError, api.BadField("interface", "must be public, internal or admin, got %q", e.Interface))
		return
	}
	if s.put(w, r, tEndpoints, true, &e) {
		api.JSON(w, http.StatusCreated, map[string]any{"endpoint": s.endpointView(r, &e)})
	}
}

func (s *Service) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	id := chi.URLParam(r, "id")
	old := store.Get[Endpoint](tx, tEndpoints, id)
	if old == nil {
		api.Fail(w, r, writeError, notFoundErr("endpoint", id))
		return
	}
	o, err := body(r, "endpoint")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	e := *old
	rd := reader{o: o}
	e.ServiceID = rd.str("service_id", false, e.ServiceID)
	e.Interface = rd.str("interface", false, e.Interface)
	e.URL = rd.str("url", false, e.URL)
	e.RegionID = rd.str("region_id", false, e.RegionID)
	if !o.has("region_id") {
		e.RegionID = rd.str("region", false, e.RegionID)
	}
	e.Enabled = rd.boolean("enabled", e.Enabled)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if !validInterface(e.Interface) {
		api.Fail(w, r, writeError, api.BadField("interface", "must be public, internal or admin, got %q", e.Interface))
		return
	}
	if s.put(w, r, tEndpoints, false, &e) {
		api.JSON(w, http.StatusOK, map[string]any{"endpoint": s.endpointView(r, &e)})
	}
}

// Credentials. Users manage their own; admins any. The blob of an EC2
// credential holds its secret: it is returned only to its owner or an admin,
// as Keystone does, and never logged.

func (s *Service) credentialView(r *http.Request, c *Credential) map[string]any {
	var project any
	if c.ProjectID != "" {
		project = c.ProjectID
	}
	return map[string]any{"id": c.ID, "user_id": c.UserID, "project_id": project, "type": c.Type, "blob": c.Blob, "links": s.self(r, "credentials", c.ID)}
}

func canSeeCredential(p *api.Principal, c *Credential) bool {
	return p.IsAdmin() || p.UserID == c.UserID
}

func (s *Service) listCredentials(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	p := api.PrincipalFrom(r.Context())
	var out []*Credential
	for _, c := range store.All[Credential](tx, tCredentials, "id") {
		if canSeeCredential(p, c) && match(r, "user_id", c.UserID) && match(r, "type", c.Type) {
			out = append(out, c)
		}
	}
	listOut(w, r, s, "credentials", out, func(c *Credential) string { return c.ID }, func(c *Credential) map[string]any { return s.credentialView(r, c) })
}

func (s *Service) credential(w http.ResponseWriter, r *http.Request) (*Credential, bool) {
	tx, ok := s.read(w, r)
	if !ok {
		return nil, false
	}
	id := chi.URLParam(r, "id")
	c := store.Get[Credential](tx, tCredentials, id)
	if c == nil || !canSeeCredential(api.PrincipalFrom(r.Context()), c) {
		api.Fail(w, r, writeError, notFoundErr("credential", id))
		return nil, false
	}
	return c, true
}

func (s *Service) showCredential(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.credential(w, r); ok {
		api.JSON(w, http.StatusOK, map[string]any{"credential": s.credentialView(r, c)})
	}
}

func (s *Service) createCredential(w http.ResponseWriter, r *http.Request) {
	o, err := body(r, "credential")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	p := api.PrincipalFrom(r.Context())
	rd := reader{o: o}
	c := Credential{ID: api.NewHexID(), UserID: rd.str("user_id", true, ""), ProjectID: rd.str("project_id", false, ""), Type: rd.str("type", true, ""), Blob: rd.str("blob", true, "")}
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if !p.IsAdmin() && c.UserID != p.UserID {
		forbidden(w, r)
		return
	}
	if c.Type == "ec2" {
		b, err := parseEC2Blob(c.Blob)
		if err != nil {
			api.Fail(w, r, writeError, err)
			return
		}
		if c.ProjectID == "" {
			api.Fail(w, r, writeError, api.BadField("project_id", "an ec2 credential needs a project"))
			return
		}
		c.ID, c.Access = ec2CredentialID(b.Access), b.Access
	}
	if s.put(w, r, tCredentials, true, &c) {
		api.JSON(w, http.StatusCreated, map[string]any{"credential": s.credentialView(r, &c)})
	}
}

func (s *Service) updateCredential(w http.ResponseWriter, r *http.Request) {
	old, ok := s.credential(w, r)
	if !ok {
		return
	}
	o, err := body(r, "credential")
	if err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	c := *old
	rd := reader{o: o}
	c.Blob = rd.str("blob", false, c.Blob)
	c.ProjectID = rd.str("project_id", false, c.ProjectID)
	if rd.err != nil {
		api.Fail(w, r, writeError, rd.err)
		return
	}
	if c.Type == "ec2" {
		b, err := parseEC2Blob(c.Blob)
		if err != nil {
			api.Fail(w, r, writeError, err)
			return
		}
		c.Access = b.Access
	}
	if s.put(w, r, tCredentials, false, &c) {
		api.JSON(w, http.StatusOK, map[string]any{"credential": s.credentialView(r, &c)})
	}
}

func (s *Service) deleteCredential(w http.ResponseWriter, r *http.Request) {
	c, ok := s.credential(w, r)
	if !ok {
		return
	}
	if s.propose(w, r, cmdDelete, deleteCmd{Table: tCredentials, ID: c.ID}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// OS-EC2: /v3/users/{id}/credentials/OS-EC2, what `openstack ec2
// credentials create` uses.

func (s *Service) ec2View(r *http.Request, c *Credential) map[string]any {
	b, _ := parseEC2Blob(c.Blob)
	return map[string]any{"user_id": c.UserID, "tenant_id": c.ProjectID, "access": b.Access, "secret": b.Secret, "trust_id": nil,
		"links": map[string]any{"self": s.baseURL(r) + "/identity/v3/users/" + c.UserID + "/credentials/OS-EC2/" + b.Access}}
}

func (s *Service) listEC2(w http.ResponseWriter, r *http.Request) {
	if !selfOrAdmin(r) {
		forbidden(w, r)
		return
	}
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	out := []map[string]any{}
	for _, c := range store.All[Credential](tx, tCredentials, "user", chi.URLParam(r, "id")) {
		if c.Type == "ec2" {
			out = append(out, s.ec2View(r, c))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"credentials": out, "links": s.links(r)})
}

func (s *Service) createEC2(w http.ResponseWriter, r *http.Request) {
	if !selfOrAdmin(r) {
		forbidden(w, r)
		return
	}
	var req struct {
		TenantID string `json:"tenant_id"`
	}
	if err := api.DecodeLoose(r, &req); err != nil {
		api.Fail(w, r, writeError, err)
		return
	}
	if req.TenantID == "" {
		api.Fail(w, r, writeError, api.BadField("tenant_id", "'tenant_id' is a required property"))
		return
	}
	user := chi.URLParam(r, "id")
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	if store.Get[Project](tx, tProjects, req.TenantID) == nil {
		api.Fail(w, r, writeError, notFoundErr("project", req.TenantID))
		return
	}
	if !api.PrincipalFrom(r.Context()).IsAdmin() && len(effectiveRoles(tx, user, "project", req.TenantID)) == 0 {
		forbidden(w, r)
		return
	}
	access, secret := randomHex(16), randomHex(16)
	blob, _ := json.Marshal(ec2Blob{Access: access, Secret: secret})
	c := Credential{ID: ec2CredentialID(access), UserID: user, ProjectID: req.TenantID, Type: "ec2", Blob: string(blob), Access: access}
	if s.put(w, r, tCredentials, true, &c) {
		api.JSON(w, http.StatusCreated, map[string]any{"credential": s.ec2View(r, &c)})
	}
}

func (s *Service) ec2Of(w http.ResponseWriter, r *http.Request) (*Credential, bool) {
	if !selfOrAdmin(r) {
		forbidden(w, r)
		return nil, false
	}
	tx, ok := s.read(w, r)
	if !ok {
		return nil, false
	}
	access := chi.URLParam(r, "access")
	raw, _ := tx.First(tCredentials, "access", access)
	c, _ := raw.(*Credential)
	if c == nil || c.UserID != chi.URLParam(r, "id") || c.Type != "ec2" {
		api.Fail(w, r, writeError, notFoundErr("credential", access))
		return nil, false
	}
	return c, true
}

func (s *Service) showEC2(w http.ResponseWriter, r *http.Request) {
	if c, ok := s.ec2Of(w, r); ok {
		api.JSON(w, http.StatusOK, map[string]any{"credential": s.ec2View(r, c)})
	}
}

func (s *Service) deleteEC2(w http.ResponseWriter, r *http.Request) {
	c, ok := s.ec2Of(w, r)
	if ok && s.propose(w, r, cmdDelete, deleteCmd{Table: tCredentials, ID: c.ID}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}
