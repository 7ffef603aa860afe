package identity

import (
	"net/http"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
)

// domains is the domain collection: admins see every domain, others the
// domain of their user or of their token's project.
func (s *Service) domains(r *http.Request) api.Collection[Domain] {
	return api.Collection[Domain]{
		Table: tDomains, One: "domain", NotFound: notFoundOf("domain"), Listing: s.listing("domains"),
		Visible: func(p *api.Principal, d *Domain) bool {
			return p.IsAdmin() || p.UserDomainID == d.ID || p.DomainID == d.ID
		},
		View: func(_ *memdb.Txn, _ *api.Principal, d *Domain) api.View { return s.domainView(r, d) },
	}
}

func (s *Service) domainView(r *http.Request, d *Domain) api.View {
	return api.View{"id": d.ID, "name": d.Name, "description": d.Description, "enabled": d.Enabled, "tags": []string{}, "options": map[string]any{}, "links": s.self(r, "domains", d.ID)}
}

func readDomain(_ *http.Request, in *api.Input, old *Domain) (*Domain, error) {
	d := Domain{ID: api.NewHexID(), Enabled: true}
	if old != nil {
		d = *old
	}
	d.Name = name(in, d.Name, old == nil, 64)
	d.Description = str(in, "description", d.Description)
	d.Enabled = boolean(in, "enabled", d.Enabled)
	return &d, in.Err
}
