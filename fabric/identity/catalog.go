package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// The service catalog's rows: regions, services and endpoints.

func (s *Service) regions(r *http.Request) api.Collection[Region] {
	return api.Collection[Region]{
		Table: tRegions, One: "region", NotFound: notFoundOf("region"), Listing: s.listing("regions"),
		Visible: func(*api.Principal, *Region) bool { return true },
		View:    func(_ *memdb.Txn, _ *api.Principal, g *Region) api.View { return s.regionView(r, g) },
	}
}

func (s *Service) regionView(r *http.Request, g *Region) api.View {
	var parent any
	if g.ParentRegionID != "" {
		parent = g.ParentRegionID
	}
	return api.View{"id": g.ID, "description": g.Description, "parent_region_id": parent, "links": s.self(r, "regions", g.ID)}
}

// readRegion reads a region; a new one takes its id from the URL (PUT),
// the body, or a fresh one.
func readRegion(r *http.Request, in *api.Input, old *Region) (*Region, error) {
	var g Region
	if old != nil {
		g = *old
	} else {
		g.ID = str(in, "id", "")
		if id := chi.URLParam(r, "id"); id != "" {
			g.ID = id
		}
		if g.ID == "" {
			g.ID = api.NewHexID()
		}
	}
	g.Description = str(in, "description", g.Description)
	g.ParentRegionID = str(in, "parent_region_id", g.ParentRegionID)
	return &g, in.Err
}

func (s *Service) services(r *http.Request) api.Collection[ServiceRow] {
	return api.Collection[ServiceRow]{
		Table: tServices, One: "service", NotFound: notFoundOf("service"), Listing: s.listing("services"),
		Visible: func(*api.Principal, *ServiceRow) bool { return true },
		View:    func(_ *memdb.Txn, _ *api.Principal, v *ServiceRow) api.View { return s.serviceView(r, v) },
	}
}

func (s *Service) serviceView(r *http.Request, v *ServiceRow) api.View {
	return api.View{"id": v.ID, "type": v.Type, "name": v.Name, "description": v.Description, "enabled": v.Enabled, "links": s.self(r, "services", v.ID)}
}

func readService(_ *http.Request, in *api.Input, old *ServiceRow) (*ServiceRow, error) {
	v := ServiceRow{ID: api.NewHexID(), Enabled: true}
	if old != nil {
		v = *old
		v.Type = str(in, "type", v.Type)
	} else {
		v.Type = required(in, "type")
	}
	v.Name = str(in, "name", v.Name)
	v.Description = str(in, "description", v.Description)
	v.Enabled = boolean(in, "enabled", v.Enabled)
	return &v, in.Err
}

func (s *Service) endpoints(r *http.Request) api.Collection[Endpoint] {
	return api.Collection[Endpoint]{
		Table: tEndpoints, One: "endpoint", NotFound: notFoundOf("endpoint"), Listing: s.listing("endpoints"),
		Visible: func(*api.Principal, *Endpoint) bool { return true },
		View:    func(_ *memdb.Txn, _ *api.Principal, e *Endpoint) api.View { return s.endpointView(r, e) },
	}
}

func (s *Service) endpointView(r *http.Request, e *Endpoint) api.View {
	var region any
	if e.RegionID != "" {
		region = e.RegionID
	}
	return withExtras(e.Extra, api.View{"id": e.ID, "service_id": e.ServiceID, "interface": e.Interface, "url": s.endpointURL(r, e.URL, ""), "region_id": region, "region": region, "enabled": e.Enabled, "links": s.self(r, "endpoints", e.ID)})
}

var endpointFields = []string{"service_id", "interface", "url", "region_id", "region", "enabled"}

func readEndpoint(_ *http.Request, in *api.Input, old *Endpoint) (*Endpoint, error) {
	e := Endpoint{ID: api.NewHexID(), Enabled: true}
	if old != nil {
		e = *old
		e.ServiceID = str(in, "service_id", e.ServiceID)
		e.Interface = str(in, "interface", e.Interface)
		e.URL = str(in, "url", e.URL)
	} else {
		e.ServiceID = required(in, "service_id")
		e.Interface = required(in, "interface")
		e.URL = required(in, "url")
	}
	// "region" is the attribute's name before Keystone v3.2.
	if in.Has("region_id") {
		e.RegionID = str(in, "region_id", e.RegionID)
	} else {
		e.RegionID = str(in, "region", e.RegionID)
	}
	e.Enabled = boolean(in, "enabled", e.Enabled)
	// Keystone keeps other attributes (a "description") with the row.
	e.Extra = mergeExtras(e.Extra, in, endpointFields...)
	if in.Err == nil && e.Interface != "public" && e.Interface != "internal" && e.Interface != "admin" {
		return nil, api.BadField("interface", "must be public, internal or admin, got %q", e.Interface)
	}
	return &e, in.Err
}

// The token catalog is built from the service and endpoint rows, so that
// "openstack catalog list" shows what "endpoint list" does. The services
// this build runs are seeded as rows (seedCatalog); an endpoint URL that is
// a path ("/compute/v2.1") is resolved against the URL the client used (or
// the configured public URL), so every node of a cluster answers with its
// own address.

// projectTemplates are Keystone's substitutions for the token's project
// in an endpoint URL.
var projectTemplates = []string{"$(project_id)s", "$(tenant_id)s", "%(project_id)s", "%(tenant_id)s"}

func templated(url string) bool {
	for _, t := range projectTemplates {
		if strings.Contains(url, t) {
			return true
		}
	}
	return false
}

// endpointURL is an endpoint row's URL as a client uses it: absolute, and
// for project (when not "") with the project substituted.
func (s *Service) endpointURL(r *http.Request, url, project string) string {
	if project != "" {
		for _, t := range projectTemplates {
			url = strings.ReplaceAll(url, t, project)
		}
	}
	if strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://") {
		return url
	}
	return s.baseURL(r) + url
}

// catalog is the service catalog for a token scoped to project: the
// enabled services with their enabled endpoints; endpoints that need a
// project are left out of a catalog without one.
func (s *Service) catalog(r *http.Request, tx *memdb.Txn, project string) []map[string]any {
	out := []map[string]any{}
	var only map[string]bool // OS-EP-FILTER: the project's endpoints, if it has any
	if project != "" {
		only = projectEndpoints(tx, project)
	}
	for _, svc := range store.All[ServiceRow](tx, tServices, "id") {
		if !svc.Enabled {
			continue
		}
		var eps []map[string]any
		for _, e := range store.All[Endpoint](tx, tEndpoints, "service", svc.ID) {
			if !e.Enabled || (project == "" && templated(e.URL)) || (only != nil && !only[e.ID]) {
				continue
			}
			eps = append(eps, map[string]any{"id": e.ID, "interface": e.Interface, "region": e.RegionID, "region_id": e.RegionID, "url": s.endpointURL(r, e.URL, project)})
		}
		if len(eps) > 0 {
			out = append(out, map[string]any{"id": svc.ID, "type": svc.Type, "name": svc.Name, "endpoints": eps})
		}
	}
	return out
}

// catalogCmd seeds the catalog with the services this build runs.
type catalogCmd struct {
	Region    Region       `json:"region"`
	Services  []ServiceRow `json:"services"`
	Endpoints []Endpoint   `json:"endpoints"`
}

// catalogSeed are the rows of the configured services: ids derived from
// the service type, so every node seeds the same rows; "{project_id}" in a
// path becomes Keystone's "$(project_id)s".
func (s *Service) catalogSeed() catalogCmd {
	c := catalogCmd{Region: Region{ID: s.cfg.Region}}
	for _, svc := range s.cfg.Services {
		row := ServiceRow{ID: shortHash(svc.Type), Type: svc.Type, Name: svc.Name, Enabled: true}
		c.Services = append(c.Services, row)
		url := strings.ReplaceAll(svc.Path, "{project_id}", "$(project_id)s")
		for _, iface := range []string{"public", "internal", "admin"} {
			c.Endpoints = append(c.Endpoints, Endpoint{ID: shortHash(svc.Type + "/" + iface), ServiceID: row.ID, Interface: iface, URL: url, RegionID: s.cfg.Region, Enabled: true})
		}
	}
	return c
}

// SeedCatalog adds the services this build runs, with their endpoints, to
// the catalog where no service of their type is there yet; services an
// operator changed or added are left alone.
func (s *Service) SeedCatalog(ctx context.Context) error {
	_, err := s.cfg.Repl.Propose(ctx, cmdSeedCatalog, s.catalogSeed())
	return err
}

func applySeedCatalog(tx *memdb.Txn, c catalogCmd) (any, error) {
	if c.Region.ID != "" && !exists(tx, tRegions, c.Region.ID) {
		region := c.Region
		if err := tx.Insert(tRegions, &region); err != nil {
			return nil, err
		}
	}
	for _, svc := range c.Services {
		if raw, _ := tx.First(tServices, "type", svc.Type); raw != nil || exists(tx, tServices, svc.ID) {
			continue
		}
		row := svc
		if err := tx.Insert(tServices, &row); err != nil {
			return nil, err
		}
		for _, e := range c.Endpoints {
			if e.ServiceID == svc.ID && !exists(tx, tEndpoints, e.ID) {
				e := e
				if err := tx.Insert(tEndpoints, &e); err != nil {
					return nil, err
				}
			}
		}
	}
	return nil, nil
}

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:16])
}
