package identity

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
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
	return withExtras(e.Extra, api.View{"id": e.ID, "service_id": e.ServiceID, "interface": e.Interface, "url": e.URL, "region_id": region, "region": region, "enabled": e.Enabled, "links": s.self(r, "endpoints", e.ID)})
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
