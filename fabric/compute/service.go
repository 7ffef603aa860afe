// Package compute is Rackstack's Nova v2.1: flavors, keypairs, servers and
// their actions, server groups, quotas and limits, hypervisors and
// availability zones.
//
// It is the control plane only. It validates requests, creates the
// servers' Neutron ports (through Ports), and proposes typed commands to
// the replicated store, whose handlers enforce quotas and place each new
// server with the scheduler in the same transaction. It never starts a
// VM: the node agent of the chosen host reads the servers (Load),
// converges QEMU to each one's Want, and reports what it sees (Report).
package compute

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/bgwork"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
)

// Microversions served: 2.1 to MaxMicroversion. Every change of the
// resources this service has is honoured up to there (the volume and
// image proxies, os-volumes, os-snapshots and /images, to 2.35 as Nova's,
// image metadata to 2.38); Nova's documented APIs it does not have answer
// 501 (unbuilt_apis.go, unbuilt_actions.go). Past 2.79, versions whose
// only change is to an API not served here change nothing: 2.82 (an
// os-server-external-events name; that API is the other services' and
// not routed here). 2.95: evacuate leaves the server stopped; 2.96:
// servers show pinned_availability_zone.
const (
	MinMicroversion = "2.1"
	MaxMicroversion = "2.96"
	maxMinor        = 96
)

// Images is the image service, as server create needs it.
type Images interface {
	// Get returns an image the principal may see; an unknown or
	// invisible one is an error that errors.Is matches to
	// store.ErrNotFound or api.ErrNotFound.
	Get(ctx context.Context, p *api.Principal, id string) (ImageInfo, error)
}

// ImageInfo is what server create checks of an image.
type ImageInfo struct {
	ID, Name, Status string // Status "active" to boot from
	MinDisk          int    // GB
	MinRAM           int    // MB
	Size             int64  // bytes
	// DiskFormat is Glance's disk_format (qcow2, raw, ...): a bare-metal
	// deploy's instance_info carries it.
	DiskFormat string
	// Properties are the image's own (block_device_mapping, bdm_v2 ...).
	Properties map[string]string
}

// Ports is the network service, as servers need it. Every call is from a
// trusted in-process caller; p is the requester where visibility matters.
type Ports interface {
	// Network returns a network p may attach servers to.
	Network(ctx context.Context, p *api.Principal, id string) (NetworkInfo, error)
	// Networks lists the networks p may attach servers to: its
	// project's and the shared ones.
	Networks(ctx context.Context, p *api.Principal) ([]NetworkInfo, error)
	// Port returns a port; with p non-nil, one p may see.
	Port(ctx context.Context, p *api.Principal, id string) (PortInfo, error)
	// Create makes a port on a network for a server.
	Create(ctx context.Context, p *api.Principal, req PortRequest) (PortInfo, error)
	// Bind sets a port's device and host; "" and "" release it.
	Bind(ctx context.Context, portID, deviceID, host string) error
	Delete(ctx context.Context, portID string) error
}

// NetworkInfo is a network as servers see it.
type NetworkInfo struct {
	ID, Name, Project string
	Shared            bool
}

// PortInfo is a port as servers see it.
type PortInfo struct {
	ID, NetworkID, NetworkName, Project, MAC, DeviceID, DeviceOwner, Host, Status string
	IPs                                                                           []string
	// Subnets are the subnet of each of IPs.
	Subnets []string
	// SecurityGroups are the ids of the port's security groups.
	SecurityGroups []string
}

// PortRequest asks for a server's port.
type PortRequest struct {
	NetworkID string
	FixedIP   string // "" = any
	Project   string
	DeviceID  string // the server
	// DeviceOwner is "compute:<availability zone>".
	DeviceOwner string
	// SecurityGroups are names or ids; none means the project's default.
	SecurityGroups []string
}

// Hosts lists the cluster's nodes as hypervisors.
type Hosts interface {
	Hosts(ctx context.Context) ([]Host, error)
}

// Host is a node that runs servers.
type Host struct {
	Name string
	Up   bool // heartbeating now
	// NoCompute: the node says it runs no compute service (rackd
	// --compute off, or auto without QEMU): servers are not placed there.
	NoCompute bool
	AZ        string
	VCPUs     int
	MemoryMB  int
	DiskGB    int
	HostIP    string
	CPUModel  string
	LastSeen  time.Time
	// Booted is when the node booted (zero: it did not say), and
	// LoadAverage and Users its load and logged-in users as it last
	// reported them: the hypervisor's uptime.
	Booted      time.Time
	LoadAverage []float64
	Users       int
}

// ConsoleLogs reads a server's serial console log from its node.
type ConsoleLogs interface {
	// ConsoleOutput returns the last length lines, counted as
	// ConsoleTail counts them (all when length < 0).
	ConsoleOutput(ctx context.Context, host, serverID string, length int) (string, error)
}

// SerialConsole serves interactive consoles: the serial console, a
// websocket at /compute/v2.1/servers/{id}/serial?token=…, the URL that
// remote-consoles hands out, and the graphical one, a websocket of RFB
// at .../servers/{id}/vnc?token=… (vnc_console.go). The token has been
// checked when ServeSerial or ServeVNC is called.
type SerialConsole interface {
	ServeSerial(w http.ResponseWriter, r *http.Request, s Server)
	ServeVNC(w http.ResponseWriter, r *http.Request, s Server)
}

// Config configures the compute service.
type Config struct {
	Repl store.Replicated
	Auth api.Authenticator
	Log  *slog.Logger
	Now  func() time.Time
	// Images, Ports and Hosts are required to create servers; without
	// them server create answers 400 (no image, no network) or puts the
	// server in ERROR (no host).
	Images Images
	Ports  Ports
	Hosts  Hosts
	// Volumes makes the volumes servers boot from when made from images
	// (optional: without it such a create answers 400).
	Volumes BootVolumes
	// VolumeAPI is the volume service's handler (Cinder v3, routes
	// /v3/{project_id}/...), which the deprecated os-volumes and
	// os-snapshots pass requests on to (optional: without it they
	// answer 501).
	VolumeAPI http.Handler
	// ImageAPI is the image service's handler (Glance v2, routes
	// /v2/images/...), which the deprecated /images proxy passes
	// requests on to (optional: without it the proxy answers 501).
	ImageAPI http.Handler
	// Snapshots makes the images of createImage (optional: without it
	// createImage answers 501).
	Snapshots SnapshotImages
	// ConsoleLogs and SerialConsole are optional: without them
	// os-getConsoleOutput answers 501 and serial consoles 400.
	ConsoleLogs ConsoleLogs
	// Diagnostics reads guests' counters for server diagnostics
	// (optional: without it they answer 501).
	Diagnostics   GuestDiagnostics
	SerialConsole SerialConsole
	// NoVNCDir holds noVNC's web client (vnc_lite.html and its scripts),
	// served at /compute/v2.1/novnc/ for the URLs of novnc consoles;
	// "" or a directory without it: novnc consoles answer 400, as Nova
	// does when VNC is off.
	NoVNCDir  string
	Scheduler scheduler.Config
	// Node names this node: the builds it starts (servers whose volumes
	// are made after the 202) are resumed by its next process. IsLeader
	// says whether it also resumes those of lost nodes (NodeLost, default
	// never) (default: always leader).
	Node     string
	IsLeader func() bool
	NodeLost func(node string) bool
	// AZ is the one availability zone (default "nova").
	AZ string
	// ConsoleTTL bounds a serial console token's life (default 10m).
	ConsoleTTL time.Duration
	// PublicURL is the base of links (default: the URL the client used);
	// Prefix is where the handler is mounted (default /compute).
	PublicURL string
	Prefix    string
}

// Service serves Nova v2.1.
type Service struct {
	cfg Config
	log *slog.Logger
	// run names this process: builds it marks with it are resumed by
	// the next process on this node.
	run string
	// bg runs background builds until Run ends.
	bg *bgwork.Runner
	mu sync.Mutex
	// builds are the servers whose builds run in this process.
	builds map[string]bool
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	base, err := cfg.base().Check("compute")
	if err != nil {
		return nil, err
	}
	cfg.Log, cfg.Now, cfg.Prefix = base.Log, base.Now, base.Prefix
	if cfg.AZ == "" {
		cfg.AZ = "nova"
	}
	if cfg.ConsoleTTL == 0 {
		cfg.ConsoleTTL = 10 * time.Minute
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return true }
	}
	if cfg.NodeLost == nil {
		cfg.NodeLost = func(string) bool { return false }
	}
	return &Service{cfg: cfg, log: cfg.Log, run: api.NewHexID(), bg: bgwork.New(), builds: map[string]bool{}}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

// base is the part of the configuration every service on the kit has.
func (c Config) base() api.Base {
	return api.Base{Repl: c.Repl, Auth: c.Auth, Log: c.Log, Now: c.Now, PublicURL: c.PublicURL, Prefix: c.Prefix}
}

// Handler serves Nova under the prefix the caller strips (/compute): "/"
// is version discovery, "/v2.1/..." the API.
func (s *Service) Handler() http.Handler {
	r := api.Routes{Auth: s.cfg.Auth, Errors: writeError, Denied: policyDenied, Service: "compute"}.Router(s.routes(), microversions)
	return legacyV2(r, s)
}

func route(method, path string, access api.Access, rule string, h api.HandlerFunc) api.Route {
	return api.Route{Method: method, Path: "/v2.1" + path, Access: access, Rule: rule, Handle: h}
}

// routes are the API and its policy. Routes open to any token check who
// may see or change the resource in the handler (another project's server
// does not exist for the caller); a few check roles there because Nova
// answers something else first (a microversion's 404 or 405, or a rule
// named by the body).
func (s *Service) routes() []api.Route {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
		authed              = api.Authenticated
		member              = api.Member
		admin               = api.Admin
	)
	return withVolumesBoot([]api.Route{
		{Method: get, Path: "/", Access: api.Public, Handle: s.versions},
		{Method: get, Path: "/v2.1", Access: api.Public, Handle: s.version},
		{Method: get, Path: "/v2.1/", Access: api.Public, Handle: s.version},
		// The consoles authenticate with their console token; noVNC's
		// pages are static files.
		route(get, "/servers/{id}/serial", api.Public, "", s.serveSerial),
		route(get, "/servers/{id}/vnc", api.Public, "", s.serveVNC),
		route(get, "/novnc/*", api.Public, "", s.serveNoVNC),

		route(get, "/extensions", authed, "", extensionList().ListAll),
		route(get, "/extensions/{alias}", authed, "", extensionList().Show),

		route(get, "/flavors", authed, "", s.listFlavors(false)),
		route(get, "/flavors/detail", authed, "", s.listFlavors(true)),
		route(post, "/flavors", admin, "os_compute_api:os-flavor-manage:create", s.createFlavor),
		route(get, "/flavors/{id}", authed, "", s.showFlavor),
		route(put, "/flavors/{id}", authed, "", s.updateFlavor),
		route(del, "/flavors/{id}", admin, "os_compute_api:os-flavor-manage:delete", s.deleteFlavor),
		route(post, "/flavors/{id}/action", authed, "", s.flavorAction),
		route(get, "/flavors/{id}/os-flavor-access", admin, "os_compute_api:os-flavor-access", s.listFlavorAccess),
		route(get, "/flavors/{id}/os-extra_specs", authed, "", s.listExtraSpecs),
		route(post, "/flavors/{id}/os-extra_specs", admin, "os_compute_api:os-flavor-extra-specs:create", s.setExtraSpecs),
		route(get, "/flavors/{id}/os-extra_specs/{key}", authed, "", s.showExtraSpec),
		route(put, "/flavors/{id}/os-extra_specs/{key}", admin, "os_compute_api:os-flavor-extra-specs:update", s.updateExtraSpec),
		route(del, "/flavors/{id}/os-extra_specs/{key}", admin, "os_compute_api:os-flavor-extra-specs:delete", s.deleteExtraSpec),

		route(get, "/os-keypairs", authed, "", s.listKeypairs),
		route(post, "/os-keypairs", authed, "", s.createKeypair),
		route(get, "/os-keypairs/{name}", authed, "", s.showKeypair),
		route(del, "/os-keypairs/{name}", authed, "", s.deleteKeypair),

		route(get, "/servers", authed, "", s.listServers(false)),
		route(get, "/servers/detail", authed, "", s.listServers(true)),
		route(post, "/servers", member, "os_compute_api:servers:create", s.createServer),
		route(get, "/servers/{id}", authed, "", s.showServer),
		route(put, "/servers/{id}", authed, "", s.updateServer),
		route(del, "/servers/{id}", authed, "", s.deleteServer),
		route(post, "/servers/{id}/action", authed, "", s.serverAction),
		route(get, "/servers/{id}/os-volume_attachments", authed, "", s.listVolumeAttachments),
		route(post, "/servers/{id}/os-volume_attachments", authed, "", s.attachVolume),
		route(get, "/servers/{id}/os-volume_attachments/{volume_id}", authed, "", s.showVolumeAttachment),
		route(put, "/servers/{id}/os-volume_attachments/{volume_id}", authed, "", s.updateVolumeAttachment),
		route(del, "/servers/{id}/os-volume_attachments/{volume_id}", authed, "", s.detachVolume),
		route(post, "/servers/{id}/remote-consoles", authed, "", s.remoteConsole),
		route(get, "/servers/{id}/ips", authed, "", s.listIPs),
		route(get, "/servers/{id}/ips/{network}", authed, "", s.showIPs),
		route(get, "/servers/{id}/metadata", authed, "", s.listMetadata),
		route(put, "/servers/{id}/metadata", authed, "", s.replaceMetadata),
		route(post, "/servers/{id}/metadata", authed, "", s.mergeMetadata),
		route(get, "/servers/{id}/metadata/{key}", authed, "", s.showMetadataItem),
		route(put, "/servers/{id}/metadata/{key}", authed, "", s.setMetadataItem),
		route(del, "/servers/{id}/metadata/{key}", authed, "", s.deleteMetadataItem),
		route(get, "/servers/{id}/tags", authed, "", s.listServerTags),
		route(put, "/servers/{id}/tags", authed, "", s.replaceServerTags),
		route(del, "/servers/{id}/tags", authed, "", s.deleteServerTags),
		route(get, "/servers/{id}/tags/{tag}", authed, "", s.showServerTag),
		route(put, "/servers/{id}/tags/{tag}", authed, "", s.addServerTag),
		route(del, "/servers/{id}/tags/{tag}", authed, "", s.deleteServerTag),
		route(get, "/servers/{id}/os-instance-actions", authed, "", s.listActions),
		route(get, "/servers/{id}/diagnostics", authed, "", s.serverDiagnostics),
		route(get, "/servers/{id}/os-server-password", authed, "", s.showServerPassword),
		route(del, "/servers/{id}/os-server-password", authed, "", s.clearServerPassword),
		route(get, "/servers/{id}/os-instance-actions/{req}", authed, "", s.showAction),
		route(get, "/servers/{id}/os-interface", authed, "", s.listInterfaces),
		route(post, "/servers/{id}/os-interface", authed, "", s.attachInterface),
		route(get, "/servers/{id}/os-interface/{port_id}", authed, "", s.showInterface),
		route(del, "/servers/{id}/os-interface/{port_id}", authed, "", s.detachInterface),

		// Nova's deprecated image proxy, to microversion 2.35 (image
		// metadata to 2.38).
		route(get, "/images", authed, "", s.listImages(false)),
		route(get, "/images/detail", authed, "", s.listImages(true)),
		route(get, "/images/{id}", authed, "", s.showImage),
		route(del, "/images/{id}", authed, "", s.deleteImage),
		route(get, "/images/{id}/metadata", authed, "", s.listImageMetadata),
		route(post, "/images/{id}/metadata", authed, "", s.mergeImageMetadata),
		route(put, "/images/{id}/metadata", authed, "", s.replaceImageMetadata),
		route(get, "/images/{id}/metadata/{key}", authed, "", s.showImageMetadataItem),
		route(put, "/images/{id}/metadata/{key}", authed, "", s.setImageMetadataItem),
		route(del, "/images/{id}/metadata/{key}", authed, "", s.deleteImageMetadataItem),

		route(get, "/os-networks", authed, "", s.listNetworks(osNetworkView)),
		route(post, "/os-networks", authed, "", s.osNetworkGone),
		route(post, "/os-networks/add", authed, "", s.osNetworkGone),
		route(get, "/os-networks/{id}", authed, "", s.showNetwork(osNetworkView)),
		route(del, "/os-networks/{id}", authed, "", s.osNetworkGone),
		route(post, "/os-networks/{id}/action", authed, "", s.osNetworkGone),
		route(get, "/os-tenant-networks", authed, "", s.listNetworks(tenantNetworkView)),
		route(post, "/os-tenant-networks", authed, "", s.tenantNetworkGone),
		route(get, "/os-tenant-networks/{id}", authed, "", s.showNetwork(tenantNetworkView)),
		route(del, "/os-tenant-networks/{id}", authed, "", s.tenantNetworkGone),
		route(get, "/os-floating-ips", authed, "", s.listFloatingIPs),
		route(post, "/os-floating-ips", authed, "", s.createFloatingIP),
		route(get, "/os-floating-ips/{id}", authed, "", s.showFloatingIP),
		route(del, "/os-floating-ips/{id}", authed, "", s.deleteFloatingIP),
		route(get, "/os-floating-ip-pools", authed, "", s.listFloatingIPPools),

		// Nova's deprecated volume proxy, to microversion 2.35.
		route(get, "/os-volumes", authed, "", s.listProxyVolumes),
		route(get, "/os-volumes/detail", authed, "", s.listProxyVolumes),
		route(post, "/os-volumes", authed, "", s.createProxyVolume),
		route(get, "/os-volumes/{volume_id}", authed, "", s.showProxyVolume),
		route(del, "/os-volumes/{volume_id}", authed, "", s.deleteProxyVolume),
		route(get, "/os-snapshots", authed, "", s.listProxySnapshots),
		route(get, "/os-snapshots/detail", authed, "", s.listProxySnapshots),
		route(post, "/os-snapshots", authed, "", s.createProxySnapshot),
		route(get, "/os-snapshots/{id}", authed, "", s.showProxySnapshot),
		route(del, "/os-snapshots/{id}", authed, "", s.deleteProxySnapshot),

		// Nova's security group proxy, to microversion 2.35.
		route(get, "/os-security-groups", authed, "", s.listSecurityGroups),
		route(post, "/os-security-groups", authed, "", s.createSecurityGroup),
		route(get, "/os-security-groups/{id}", authed, "", s.showSecurityGroup),
		route(put, "/os-security-groups/{id}", authed, "", s.updateSecurityGroup),
		route(del, "/os-security-groups/{id}", authed, "", s.deleteSecurityGroup),
		route(get, "/servers/{id}/os-security-groups", authed, "", s.listServerSecurityGroups),
		route(post, "/os-security-group-rules", authed, "", s.createSecurityGroupRule),
		route(del, "/os-security-group-rules/{id}", authed, "", s.deleteSecurityGroupRule),

		route(get, "/os-server-groups", authed, "", s.listGroups),
		route(post, "/os-server-groups", member, "os_compute_api:os-server-groups:create", s.createGroup),
		route(get, "/os-server-groups/{id}", authed, "", s.showGroup),
		route(del, "/os-server-groups/{id}", authed, "", s.deleteGroup),

		route(get, "/limits", authed, "", s.limits),
		route(get, "/os-quota-sets/{project}", authed, "", s.showQuota),
		route(put, "/os-quota-sets/{project}", admin, "os_compute_api:os-quota-sets:update", s.updateQuota),
		route(del, "/os-quota-sets/{project}", admin, "os_compute_api:os-quota-sets:delete", s.deleteQuota),
		route(get, "/os-quota-sets/{project}/defaults", authed, "", s.showDefaultQuota),
		route(get, "/os-quota-sets/{project}/detail", authed, "", s.showQuotaDetail),
		route(get, "/os-quota-class-sets/{class}", admin, "os_compute_api:os-quota-class-sets:show", s.showQuotaClass),
		route(put, "/os-quota-class-sets/{class}", admin, "os_compute_api:os-quota-class-sets:update", s.updateQuotaClass),

		route(get, "/os-hypervisors", admin, "os_compute_api:os-hypervisors:list", s.listHypervisors(false)),
		route(get, "/os-hypervisors/detail", admin, "os_compute_api:os-hypervisors:list", s.listHypervisors(true)),
		route(get, "/os-hypervisors/statistics", authed, "", s.hypervisorStats),
		route(get, "/os-hypervisors/{id}", admin, "os_compute_api:os-hypervisors:show", s.showHypervisor),
		route(get, "/os-hypervisors/{id}/uptime", authed, "", s.hypervisorUptime),
		route(get, "/os-hypervisors/{pattern}/search", authed, "", s.searchHypervisors(false)),
		route(get, "/os-hypervisors/{pattern}/servers", authed, "", s.searchHypervisors(true)),
		route(get, "/os-aggregates", admin, aggregatesRule+":index", s.listAggregates),
		route(post, "/os-aggregates", admin, aggregatesRule+":create", s.createAggregate),
		route(get, "/os-aggregates/{id}", admin, aggregatesRule+":show", s.showAggregate),
		route(put, "/os-aggregates/{id}", admin, aggregatesRule+":update", s.updateAggregate),
		route(del, "/os-aggregates/{id}", admin, aggregatesRule+":delete", s.deleteAggregate),
		route(post, "/os-aggregates/{id}/action", authed, "", s.aggregateAction),
		route(post, "/os-aggregates/{id}/images", authed, "", s.cacheAggregateImages),
		route(get, "/os-availability-zone", authed, "", s.listZones(false)),
		route(get, "/os-availability-zone/detail", admin, "os_compute_api:os-availability-zone:detail", s.listZones(true)),
		route(get, "/os-services", admin, "os_compute_api:os-services:list", s.listServices),
		route(put, "/os-services/{id}", authed, "", s.updateService),

		route(get, "/os-instance_usage_audit_log", admin, auditLogRule+":list", s.listAuditLog),
		route(get, "/os-instance_usage_audit_log/{before}", admin, auditLogRule+":show", s.showAuditLog),
		route(get, "/os-simple-tenant-usage", admin, "os_compute_api:os-simple-tenant-usage:list", s.listUsage),
		route(get, "/os-simple-tenant-usage/{tenant_id}", authed, "", s.showUsage),
		route(get, "/os-migrations", admin, "os_compute_api:os-migrations:index", s.listMigrations),
		route(get, "/servers/{id}/migrations", authed, "", s.listServerMigrations),
		route(get, "/servers/{id}/migrations/{mid}", authed, "", s.showServerMigration),
		route(del, "/servers/{id}/migrations/{mid}", authed, "", s.abortServerMigration),
		route(post, "/servers/{id}/migrations/{mid}/action", authed, "", s.forceCompleteMigration),
	})
}

// volumesBootPaths are the servers API's paths Nova's router also serves
// under os-volumes_boot, its deprecated alias with no microversion
// cut-off.
var volumesBootPaths = []string{"/v2.1/servers", "/v2.1/servers/detail", "/v2.1/servers/{id}", "/v2.1/servers/{id}/action"}

// withVolumesBoot adds the os-volumes_boot alias of those routes.
func withVolumesBoot(rs []api.Route) []api.Route {
	for _, rt := range rs {
		if slices.Contains(volumesBootPaths, rt.Path) {
			rt.Path = "/v2.1/os-volumes_boot" + strings.TrimPrefix(rt.Path, "/v2.1/servers")
			rs = append(rs, rt)
		}
	}
	return rs
}

// legacyV2 serves Nova's v2.0 compatibility endpoint (/v2/...) as the
// v2.1 API at microversion 2.1, as Nova's v2.0 "compatible mode" does.
func legacyV2(next http.Handler, s *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p != "/v2" && !strings.HasPrefix(p, "/v2/") {
			next.ServeHTTP(w, r)
			return
		}
		if p == "/v2" || p == "/v2/" {
			v := s.versionDoc(r)
			v["id"], v["status"], v["version"], v["min_version"], v["updated"] = "v2.0", "SUPPORTED", "", "", "2011-01-21T11:33:21Z"
			v["links"] = []any{link("self", s.baseURL(r)+"/v2/")}
			api.JSON(w, http.StatusOK, map[string]any{"version": v})
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path, r2.URL.RawPath = "/v2.1"+strings.TrimPrefix(p, "/v2"), ""
		r2.Header.Del("X-OpenStack-Nova-API-Version")
		r2.Header.Del("OpenStack-API-Version")
		// Mounted under a chi router, routing follows the route
		// context's path rather than the URL.
		if rctx := chi.RouteContext(r2.Context()); rctx != nil {
			rctx.RoutePath = r2.URL.Path
		}
		next.ServeHTTP(w, r2)
	})
}

// Microversions.

type ctxKey int

const versionKey ctxKey = 0

// microversions reads the requested microversion (OpenStack-API-Version:
// compute X.Y, or X-OpenStack-Nova-API-Version: X.Y; none means 2.1),
// refuses one out of range with 406, and echoes the one used.
func microversions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw := ""
		for _, h := range r.Header.Values("OpenStack-API-Version") {
			for _, part := range strings.Split(h, ",") {
				if svc, v, ok := strings.Cut(strings.TrimSpace(part), " "); ok && strings.EqualFold(svc, "compute") {
					raw = strings.TrimSpace(v)
				}
			}
		}
		if raw == "" {
			raw = strings.TrimSpace(r.Header.Get("X-OpenStack-Nova-API-Version"))
		}
		minor := 1
		if raw != "" {
			if strings.EqualFold(raw, "latest") {
				minor = maxMinor
			} else {
				maj, mn, ok := strings.Cut(raw, ".")
				a, err1 := strconv.Atoi(maj)
				b, err2 := strconv.Atoi(mn)
				if !ok || err1 != nil || err2 != nil || a < 0 || b < 0 {
					writeError(w, r, api.Problem{Status: http.StatusBadRequest, Msg: fmt.Sprintf("API Version String %s is of invalid format. Must be of format MajorNum.MinorNum.", raw)})
					return
				}
				if a != 2 || b < 1 || b > maxMinor {
					w.Header().Set("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
					writeError(w, r, api.Problem{Status: http.StatusNotAcceptable, Msg: fmt.Sprintf("Version %s is not supported by the API. Minimum is %s and maximum is %s.", raw, MinMicroversion, MaxMicroversion)})
					return
				}
				minor = b
			}
		}
		v := "2." + strconv.Itoa(minor)
		w.Header().Set("OpenStack-API-Version", "compute "+v)
		w.Header().Set("X-OpenStack-Nova-API-Version", v)
		w.Header().Set("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey, minor)))
	})
}

// atLeast reports whether the request's microversion is 2.minor or later.
func atLeast(r *http.Request, minor int) bool {
	v, _ := r.Context().Value(versionKey).(int)
	if v == 0 {
		v = 1
	}
	return v >= minor
}

// Version discovery.

// baseURL is where this API is reached, mount prefix included.
func (s *Service) baseURL(r *http.Request) string { return s.cfg.base().URL(r) }

func (s *Service) apiURL(r *http.Request) string { return s.baseURL(r) + "/v2.1" }

func (s *Service) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": MaxMicroversion, "min_version": MinMicroversion,
		"updated": "2013-07-23T11:33:21Z",
		"links": []any{map[string]any{"rel": "self", "href": s.apiURL(r) + "/"},
			map[string]any{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}},
		"media-types": []any{map[string]any{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}
}

func (s *Service) versions(w http.ResponseWriter, r *http.Request) error {
	v := s.versionDoc(r)
	delete(v, "media-types")
	v["links"] = []any{link("self", s.apiURL(r)+"/")}
	v2 := map[string]any{"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z",
		"links": []any{link("self", s.baseURL(r)+"/v2/")}}
	api.JSON(w, http.StatusOK, map[string]any{"versions": []any{v2, v}})
	return nil
}

func (s *Service) version(w http.ResponseWriter, r *http.Request) error {
	api.JSON(w, http.StatusOK, map[string]any{"version": s.versionDoc(r)})
	return nil
}

// extensions lists the v2 extension names clients still ask about, for
// the parts this service has.
var extensions = [][3]string{
	{"os-aggregates", "Aggregates", "Admin-only aggregate administration."},
	{"os-availability-zone", "AvailabilityZone", "1. Add availability_zone to the Create Server API."},
	{"os-extended-availability-zone", "ExtendedAvailabilityZone", "Extended Availability Zone support."},
	{"OS-EXT-SRV-ATTR", "ExtendedServerAttributes", "Extended Server Attributes support."},
	{"OS-EXT-STS", "ExtendedStatus", "Extended Status support."},
	{"OS-EXT-IPS", "ExtendedIps", "Adds type parameter to the ip list."},
	{"OS-EXT-IPS-MAC", "ExtendedIpsMac", "Adds mac address parameter to the ip list."},
	{"OS-FLV-EXT-DATA", "FlavorExtraData", "Provide additional data for flavors."},
	{"os-flavor-access", "FlavorAccess", "Flavor access support."},
	{"os-flavor-extra-specs", "FlavorExtraSpecs", "Flavors extra specs support."},
	{"os-flavor-manage", "FlavorManage", "Flavor create/delete API support."},
	{"os-flavor-rxtx", "FlavorRxtx", "Support to show the rxtx status of a flavor."},
	{"os-hypervisors", "Hypervisors", "Admin-only hypervisor administration."},
	{"os-instance-actions", "InstanceActions", "View a log of actions and events taken on an instance."},
	{"os-keypairs", "Keypairs", "Keypair Support."},
	{"os-quota-sets", "Quotas", "Quotas management support."},
	{"os-server-groups", "ServerGroups", "Server group support."},
	{"os-services", "Services", "Services support."},
	{"OS-SRV-USG", "ServerUsage", "Adds launched_at and terminated_at on Servers."},
	{"os-user-data", "UserData", "Add user_data to the Create Server API."},
	{"os-config-drive", "ConfigDrive", "Config Drive Extension."},
	{"os-console-output", "ConsoleOutput", "Console log output support, with tailing ability."},
	{"os-remote-consoles", "Consoles", "Interactive Console support."},
	{"os-server-start-stop", "ServerStartStop", "Start/Stop instance compute API support."},
	{"os-suspend-server", "SuspendServer", "Enable suspend/resume server actions."},
	{"os-pause-server", "PauseServer", "Enable pause/unpause server actions."},
	{"os-lock-server", "LockServer", "Enable lock/unlock server actions."},
	{"os-deferred-delete", "DeferredDelete", "Instance deferred delete: forceDelete (restore has nothing to restore: deletes are not deferred here)."},
	{"os-server-password", "ServerPassword", "Server password support: the password a guest posts to the metadata service."},
	{"os-server-diagnostics", "ServerDiagnostics", "Allow Admins to view server diagnostics through server id."},
	{"os-admin-actions", "AdminActions", "Enable admin-only server actions: os-resetState (resetNetwork and injectNetworkInfo are not built)."},
	{"os-attach-interfaces", "AttachInterfaces", "Attach interface support."},
	{"os-floating-ips", "FloatingIps", "Floating IPs support (the network service's, to 2.35; add/removeFloatingIp to 2.43)."},
	{"os-floating-ip-pools", "FloatingIpPools", "Floating IPs support (the external networks, to 2.35)."},
	{"os-security-groups", "SecurityGroups", "Security group support: add/removeSecurityGroup and the groups' proxy."},
	{"os-multiple-create", "MultipleCreate", "Allow multiple create in the Create Server v2.1 API."},
	{"os-scheduler-hints", "SchedulerHints", "Pass arbitrary key/value pairs to the scheduler."},
	{"os-server-group-quotas", "ServerGroupQuotas", "Adds quota support to server groups."},
	{"os-volumes", "Volumes", "Volumes support."},
	{"os-simple-tenant-usage", "SimpleTenantUsage", "Simple tenant usage extension."},
	{"os-networks", "Networks", "Admin-only Network Management Extension (list and show, from the network service)."},
	{"os-tenant-networks", "OSTenantNetworks", "Tenant-based Network Management Extension (list and show, from the network service)."},
	{"os-instance-usage-audit-log", "OSInstanceUsageAuditLog", "Admin-only Task Log Monitoring (no host runs the usage audit: all are reported not run)."},
	{"os-migrations", "Migrations", "Provide data on migrations (resizes, cold migrations)."},
	{"os-migrate-server", "MigrateServer", "Enable migrate server action (os-migrateLive is not built)."},
	{"os-evacuate", "Evacuate", "Enables server evacuation (of a server whose host is down)."},
	{"os-rescue", "Rescue", "Instance rescue mode (not of a volume-backed server)."},
}

func extensionView(alias, name, desc string) map[string]any {
	return map[string]any{"alias": alias, "name": name, "description": desc, "links": []any{},
		"namespace": "http://docs.openstack.org/compute/ext/fake_xml", "updated": "2014-12-03T00:00:00Z"}
}

// extensionList serves the extensions.
func extensionList() api.Extensions {
	return api.Extensions{List: extensions, View: extensionView, NotFound: func(alias string) error {
		return &api.Error{Status: http.StatusNotFound, Msg: "Extension " + alias + " could not be found."}
	}}
}

// Shared plumbing of the handlers.

func principal(r *http.Request) *api.Principal { return api.PrincipalFrom(r.Context()) }

// pathParam is a path parameter as the client meant it: the router
// matches the escaped path when the client escaped more than Go would
// (tempest sends ':' as %3A), and Nova's router unescapes what it hands
// on.
func pathParam(r *http.Request, name string) string {
	raw := chi.URLParam(r, name)
	if v, err := url.PathUnescape(raw); err == nil {
		return v
	}
	return raw
}

func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000")
}

func link(rel, href string) map[string]any { return map[string]any{"rel": rel, "href": href} }

// links are a resource's self and bookmark links.
func (s *Service) links(r *http.Request, coll, id string) []any {
	return []any{link("self", s.apiURL(r)+"/"+coll+"/"+id), link("bookmark", s.baseURL(r)+"/"+coll+"/"+id)}
}

// requireAdmin is the 403 for a caller without the admin role, for the
// routes whose policy depends on the request (see routes).
func requireAdmin(r *http.Request, rule string) error {
	if !principal(r).IsAdmin() {
		return policyDenied(rule)
	}
	return nil
}
