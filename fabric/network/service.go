// Package network is Rackstack's Neutron v2.0: networks (each one VLAN of
// the physical network), subnets, ports with their MACs and addresses,
// security groups and their rules, and quotas.
//
// It is the control plane only: it validates requests and proposes typed
// commands to the replicated store, whose handlers allocate VLAN ids,
// MACs and addresses deterministically. It never touches a packet; the
// dataplane reads its tables (Load) and reports port status back
// (SetPortStatus).
package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// The one physical network tenant VLANs ride on.
const physicalNetwork = "physnet1"

// Config configures the network service.
type Config struct {
	Repl store.Replicated
	Auth api.Authenticator
	Log  *slog.Logger
	// VLANMin and VLANMax bound the VLAN ids given to networks (default
	// 100-3999).
	VLANMin, VLANMax int
	Now              func() time.Time
	// PublicURL is the base of links (default: the URL the client used);
	// Prefix is where the handler is mounted (default /network).
	PublicURL string
	Prefix    string
}

// Service serves Neutron v2.0.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	if cfg.Repl == nil {
		return nil, errors.New("network: Config.Repl is required")
	}
	if cfg.Auth == nil {
		return nil, errors.New("network: Config.Auth is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.VLANMin == 0 && cfg.VLANMax == 0 {
		cfg.VLANMin, cfg.VLANMax = 100, 3999
	}
	if cfg.VLANMin < 1 || cfg.VLANMax > 4094 || cfg.VLANMin > cfg.VLANMax {
		return nil, fmt.Errorf("network: VLAN range %d-%d is not within 1-4094", cfg.VLANMin, cfg.VLANMax)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "/network"
	}
	return &Service{cfg: cfg, log: cfg.Log}, nil
}

// SetPortStatus records the status a node observed for a port (ACTIVE,
// DOWN, BUILD or ERROR).
func (s *Service) SetPortStatus(ctx context.Context, portID, status string) error {
	switch status {
	case "ACTIVE", "DOWN", "BUILD", "ERROR":
	default:
		return fmt.Errorf("set port status: %q: %w", status, store.ErrInvalid)
	}
	_, err := s.cfg.Repl.Propose(ctx, cmdPortStatus, portStatusCmd{ID: portID, Status: status, Now: s.now()})
	if err != nil {
		return fmt.Errorf("set port status: %w", err)
	}
	return nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

// Handler serves Neutron under the prefix the caller strips (/network):
// "/" is version discovery, "/v2.0/..." the API.
func (s *Service) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(stripJSONSuffix)
	r.Get("/", s.versions)
	r.Group(func(r chi.Router) {
		r.Use(api.RequireAuth(s.cfg.Auth, writeError))
		r.Get("/v2.0", s.resources)
		r.Get("/v2.0/", s.resources)
		r.Get("/v2.0/extensions", s.listExtensions)
		r.Get("/v2.0/extensions/{alias}", s.showExtension)

		r.Get("/v2.0/networks", s.listNetworks)
		r.Post("/v2.0/networks", s.createNetworks)
		r.Get("/v2.0/networks/{id}", s.showNetwork)
		r.Put("/v2.0/networks/{id}", s.updateNetwork)
		r.Delete("/v2.0/networks/{id}", s.deleteNetwork)

		r.Get("/v2.0/subnets", s.listSubnets)
		r.Post("/v2.0/subnets", s.createSubnets)
		r.Get("/v2.0/subnets/{id}", s.showSubnet)
		r.Put("/v2.0/subnets/{id}", s.updateSubnet)
		r.Delete("/v2.0/subnets/{id}", s.deleteSubnet)

		r.Get("/v2.0/ports", s.listPorts)
		r.Post("/v2.0/ports", s.createPorts)
		r.Get("/v2.0/ports/{id}", s.showPort)
		r.Put("/v2.0/ports/{id}", s.updatePort)
		r.Delete("/v2.0/ports/{id}", s.deletePort)

		r.Get("/v2.0/security-groups", s.listGroups)
		r.Post("/v2.0/security-groups", s.createGroup)
		r.Get("/v2.0/security-groups/{id}", s.showGroup)
		r.Put("/v2.0/security-groups/{id}", s.updateGroup)
		r.Delete("/v2.0/security-groups/{id}", s.deleteGroup)

		r.Get("/v2.0/security-group-rules", s.listRules)
		r.Post("/v2.0/security-group-rules", s.createRules)
		r.Get("/v2.0/security-group-rules/{id}", s.showRule)
		r.Delete("/v2.0/security-group-rules/{id}", s.deleteRule)

		r.Get("/v2.0/quotas", s.listQuotas)
		r.Get("/v2.0/quotas/{project}", s.showQuota)
		r.Put("/v2.0/quotas/{project}", s.updateQuota)
		r.Delete("/v2.0/quotas/{project}", s.deleteQuota)
		r.Get("/v2.0/quotas/{project}/default", s.showDefaultQuota)
		r.Get("/v2.0/quotas/{project}/details", s.showQuotaDetails)
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "The resource could not be found."})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, api.Problem{Status: http.StatusMethodNotAllowed, Msg: "The method is not allowed for the requested URL."})
	})
	return r
}

// stripJSONSuffix serves /v2.0/networks.json as /v2.0/networks, as Neutron
// does.
func stripJSONSuffix(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".json") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimSuffix(r.URL.Path, ".json")
			r2.URL.RawPath = ""
			r = r2
			// Mounted under a chi router, routing follows the route
			// context's path rather than the URL.
			if rctx := chi.RouteContext(r.Context()); rctx != nil {
				rctx.RoutePath = strings.TrimSuffix(rctx.RoutePath, ".json")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// baseURL is where this API is reached: the configured public URL, or the
// scheme and host the client used, plus the mount prefix.
func (s *Service) baseURL(r *http.Request) string {
	base := strings.TrimRight(s.cfg.PublicURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
			scheme = p
		}
		base = scheme + "://" + r.Host
	}
	return base + s.cfg.Prefix
}

func (s *Service) versions(w http.ResponseWriter, r *http.Request) {
	api.JSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []any{map[string]any{"rel": "self", "href": s.baseURL(r) + "/v2.0/"}},
	}}})
}

func (s *Service) resources(w http.ResponseWriter, r *http.Request) {
	var out []any
	for _, c := range [][2]string{{"network", "networks"}, {"subnet", "subnets"}, {"port", "ports"},
		{"security_group", "security-groups"}, {"security_group_rule", "security-group-rules"}, {"quota", "quotas"}} {
		out = append(out, map[string]any{"name": c[0], "collection": c[1],
			"links": []any{map[string]any{"rel": "self", "href": s.baseURL(r) + "/v2.0/" + c[1]}}})
	}
	api.JSON(w, http.StatusOK, map[string]any{"resources": out})
}

// extensions are the API extensions this service really implements.
var extensions = []struct{ alias, name, desc string }{
	{"security-group", "security-group", "The security groups extension."},
	{"port-security", "Port Security", "Provides port security"},
	{"provider", "Provider Network", "Expose mapping of virtual networks to physical networks"},
	{"quotas", "Quota management support", "Expose functions for quotas management per tenant"},
	{"quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"},
	{"allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"},
	{"binding", "Port Binding", "Expose port bindings of a virtual port to external application"},
	{"standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"},
	{"project-id", "project-id field enabled", "Extension that indicates that project_id field is enabled."},
	{"standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."},
	{"standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."},
	{"net-mtu", "Network MTU", "Provides MTU attribute for a network resource."},
	{"sorting", "Sorting support", "Enables sorting support."},
	{"pagination", "Pagination support", "Enables pagination support."},
	{"ip-substring-filtering", "IP address substring filtering", "Provides IP address substring filtering when listing ports"},
	{"port-security-groups-filtering", "Port filtering on security groups", "Provides security groups filtering when listing ports"},
}

func extensionView(alias, name, desc string) map[string]any {
	return map[string]any{"alias": alias, "name": name, "description": desc, "links": []any{}, "updated": "2013-01-01T00:00:00-00:00"}
}

func (s *Service) listExtensions(w http.ResponseWriter, r *http.Request) {
	out := make([]any, 0, len(extensions))
	for _, e := range extensions {
		out = append(out, extensionView(e.alias, e.name, e.desc))
	}
	api.JSON(w, http.StatusOK, map[string]any{"extensions": out})
}

func (s *Service) showExtension(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "alias")
	for _, e := range extensions {
		if e.alias == alias {
			api.JSON(w, http.StatusOK, map[string]any{"extension": extensionView(e.alias, e.name, e.desc)})
			return
		}
	}
	writeError(w, r, api.Problem{Status: http.StatusNotFound, Msg: "Extension with alias " + alias + " does not exist"})
}

// Shared plumbing of the handlers.

func (s *Service) read(w http.ResponseWriter, r *http.Request) (*memdb.Txn, bool) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		api.Fail(w, r, writeError, err)
		return nil, false
	}
	return tx, true
}

// afterWrite reads the state a proposal just produced: Propose returns once
// this node applied it, so the local state has it.
func (s *Service) afterWrite(ctx context.Context) (*memdb.Txn, error) {
	return store.AfterWrite(ctx, s.cfg.Repl)
}

// propose proposes a command and decodes its result into out (if not nil).
func (s *Service) propose(w http.ResponseWriter, r *http.Request, typ string, body, out any) bool {
	res, err := s.cfg.Repl.Propose(r.Context(), typ, body)
	if err == nil && out != nil {
		err = res.Decode(out)
	}
	if err != nil {
		api.Fail(w, r, writeError, err)
		return false
	}
	return true
}

func principal(r *http.Request) *api.Principal { return api.PrincipalFrom(r.Context()) }

// defaultsFor is the command part that makes project's default security
// group if it has none, with ids chosen now.
func (s *Service) defaultsFor(tx *memdb.Txn, projects ...string) []defaultGroupCmd {
	var out []defaultGroupCmd
	seen := map[string]bool{}
	for _, p := range projects {
		if p == "" || seen[p] || (tx != nil && defaultGroupOf(tx, p) != nil) {
			continue
		}
		seen[p] = true
		d := defaultGroupCmd{Project: p, GroupID: api.NewUUID(), Now: s.now()}
		for i := range d.RuleIDs {
			d.RuleIDs[i] = api.NewUUID()
		}
		out = append(out, d)
	}
	return out
}

// ensureDefaultGroup makes the caller's project's default group if it
// has none, as Neutron does on the first touch of the API.
func (s *Service) ensureDefaultGroup(ctx context.Context, tx *memdb.Txn, project string) error {
	ds := s.defaultsFor(tx, project)
	if len(ds) == 0 {
		return nil
	}
	_, err := s.cfg.Repl.Propose(ctx, cmdGroupDefault, ds[0])
	return err
}

func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
