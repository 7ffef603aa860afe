// Package baremetal is Rackstack's Ironic v1 API: bare-metal nodes, their
// ports, drivers and conductors, provision and power state requests, boot
// devices, inventories and node history, at /baremetal/v1.
//
// The API only records what is asked: a provision verb moves a node into
// its working state (verifying, cleaning, deploying, ...), a power or boot
// device request is written on the node's row, and the conductor that owns
// the node (node/conductor, reading the same bmstate rows) does the work
// and records the outcome. BMC passwords are sealed with the cluster key
// before they are proposed and never shown. It must not talk to a BMC or a
// ramdisk agent itself.
package baremetal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Sealer encrypts secrets bound to the id of the row that holds them (the
// cluster key of fabric/secrets; rackd passes cluster.Node.Secrets()).
type Sealer interface {
	Seal(plain, aad []byte) (string, error)
	Open(value string, aad []byte) ([]byte, error)
}

// Config configures the bare-metal API.
type Config struct {
	Repl store.Replicated
	Auth api.Authenticator
	// Secrets seals driver_info passwords; required, so that no password
	// is ever proposed in clear.
	Secrets Sealer
	Log     *slog.Logger
	Now     func() time.Time
	// DefaultResourceClass is a new node's resource_class when the
	// request names none (Ironic's [DEFAULT]default_resource_class).
	DefaultResourceClass string
	// BootDeviceWait bounds how long PUT management/boot_device waits for
	// the conductor to apply the device (default 30 s).
	BootDeviceWait time.Duration
	// ConductorTimeout is how long a conductor's row stays alive without
	// a refresh (default 3 min, Ironic's heartbeat_timeout is 60 s).
	ConductorTimeout time.Duration
	// PublicURL is the base of links (default: the URL the client used);
	// Prefix is where the handler is mounted (default /baremetal).
	PublicURL string
	Prefix    string
}

// Service serves Ironic v1.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	base, err := cfg.base().Check("baremetal")
	if err != nil {
		return nil, err
	}
	cfg.Log, cfg.Now, cfg.Prefix = base.Log, base.Now, base.Prefix
	if cfg.Secrets == nil {
		return nil, errors.New("baremetal: Config.Secrets is required")
	}
	if cfg.BootDeviceWait == 0 {
		cfg.BootDeviceWait = 30 * time.Second
	}
	if cfg.ConductorTimeout == 0 {
		cfg.ConductorTimeout = 3 * time.Minute
	}
	return &Service{cfg: cfg, log: cfg.Log}, nil
}

func (c Config) base() api.Base {
	return api.Base{Repl: c.Repl, Auth: c.Auth, Log: c.Log, Now: c.Now, PublicURL: c.PublicURL, Prefix: c.Prefix}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

// baseURL is where the API is reached, mount prefix included.
func (s *Service) baseURL(r *http.Request) string { return s.cfg.base().URL(r) }

// Handler serves Ironic under the prefix the caller strips (/baremetal):
// "/" is version discovery, "/v1/..." the API. Every answer carries the
// microversion headers; a request for a version outside the range is 406.
func (s *Service) Handler() http.Handler {
	rs := api.Routes{Auth: s.cfg.Auth, Errors: writeError, Denied: policyDenied, Service: "baremetal"}
	return microversions(rs.Router(s.routes()))
}

// routes is the API and its policy: as in Ironic, every baremetal:*
// rule needs the admin role.
func (s *Service) routes() []api.Route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
		admin                      = api.Admin
	)
	return []api.Route{
		{Method: get, Path: "/", Access: api.Public, Handle: s.root},
		{Method: get, Path: "/v1", Access: api.Public, Handle: s.v1},

		{Method: get, Path: "/v1/nodes", Access: admin, Rule: "baremetal:node:list", Handle: s.listNodes(false)},
		{Method: get, Path: "/v1/nodes/detail", Access: admin, Rule: "baremetal:node:list_all", Handle: s.listNodes(true)},
		{Method: post, Path: "/v1/nodes", Access: admin, Rule: "baremetal:node:create", Handle: s.createNode},
		{Method: get, Path: "/v1/nodes/{node}", Access: admin, Rule: "baremetal:node:get", Handle: s.showNode},
		{Method: patch, Path: "/v1/nodes/{node}", Access: admin, Rule: "baremetal:node:update", Handle: s.updateNode},
		{Method: del, Path: "/v1/nodes/{node}", Access: admin, Rule: "baremetal:node:delete", Handle: s.deleteNode},
		{Method: put, Path: "/v1/nodes/{node}/maintenance", Access: admin, Rule: "baremetal:node:set_maintenance", Handle: s.setMaintenance(true)},
		{Method: del, Path: "/v1/nodes/{node}/maintenance", Access: admin, Rule: "baremetal:node:clear_maintenance", Handle: s.setMaintenance(false)},
		{Method: get, Path: "/v1/nodes/{node}/validate", Access: admin, Rule: "baremetal:node:validate", Handle: s.validateNode},
		{Method: get, Path: "/v1/nodes/{node}/states", Access: admin, Rule: "baremetal:node:get_states", Handle: s.showStates},
		{Method: put, Path: "/v1/nodes/{node}/states/provision", Access: admin, Rule: "baremetal:node:set_provision_state", Handle: s.setProvisionState},
		{Method: get, Path: "/v1/nodes/{node}/states/console", Access: admin, Rule: "baremetal:node:get_console", Handle: s.showConsole},
		{Method: put, Path: "/v1/nodes/{node}/states/console", Access: admin, Rule: "baremetal:node:set_console_state", Handle: s.setConsole},
		// Ironic also serves a node's console at /v1/nodes/states/console/{node}
		// (its states controller hangs off the nodes collection too), where
		// tempest's client asks.
		{Method: get, Path: "/v1/nodes/states/console/{node}", Access: admin, Rule: "baremetal:node:get_console", Handle: s.showConsole},
		{Method: put, Path: "/v1/nodes/{node}/states/raid", Access: admin, Rule: "baremetal:node:set_raid_state", Handle: since(12, s.setRAIDConfig)},
		{Method: put, Path: "/v1/nodes/{node}/states/power", Access: admin, Rule: "baremetal:node:set_power_state", Handle: s.setPowerState},
		{Method: get, Path: "/v1/nodes/{node}/management/boot_device", Access: admin, Rule: "baremetal:node:get_boot_device", Handle: s.showBootDevice},
		{Method: put, Path: "/v1/nodes/{node}/management/boot_device", Access: admin, Rule: "baremetal:node:set_boot_device", Handle: s.setBootDevice},
		{Method: get, Path: "/v1/nodes/{node}/management/boot_device/supported", Access: admin, Rule: "baremetal:node:get_boot_device", Handle: s.supportedBootDevices},
		{Method: get, Path: "/v1/nodes/{node}/inventory", Access: admin, Rule: "baremetal:node:inventory:get", Handle: since(81, s.showInventory)},
		{Method: get, Path: "/v1/nodes/{node}/history", Access: admin, Rule: "baremetal:node:history:get", Handle: since(78, s.listHistory)},
		{Method: get, Path: "/v1/nodes/{node}/history/{event}", Access: admin, Rule: "baremetal:node:history:get", Handle: since(78, s.showHistory)},
		{Method: get, Path: "/v1/nodes/{node}/vifs", Access: admin, Rule: "baremetal:node:vif:list", Handle: since(28, s.listVIFs)},
		{Method: post, Path: "/v1/nodes/{node}/vifs", Access: admin, Rule: "baremetal:node:vif:attach", Handle: since(28, s.attachVIF)},
		{Method: del, Path: "/v1/nodes/{node}/vifs/{vif}", Access: admin, Rule: "baremetal:node:vif:detach", Handle: since(28, s.detachVIF)},
		{Method: get, Path: "/v1/nodes/{node}/bios", Access: admin, Rule: "baremetal:node:bios:get", Handle: since(40, s.listBIOS)},
		{Method: get, Path: "/v1/nodes/{node}/bios/{setting}", Access: admin, Rule: "baremetal:node:bios:get", Handle: since(40, s.showBIOS)},
		{Method: put, Path: "/v1/nodes/{node}/management/inject_nmi", Access: admin, Rule: "baremetal:node:inject_nmi", Handle: since(29, s.injectNMI)},
		{Method: get, Path: "/v1/nodes/{node}/management/indicators", Access: admin, Rule: "baremetal:node:get_indicator_state", Handle: since(63, s.listIndicators)},
		{Method: get, Path: "/v1/nodes/{node}/management/indicators/{indicator}", Access: admin, Rule: "baremetal:node:get_indicator_state", Handle: since(63, s.indicatorState)},
		{Method: put, Path: "/v1/nodes/{node}/management/indicators/{indicator}", Access: admin, Rule: "baremetal:node:set_indicator_state", Handle: since(63, s.indicatorState)},
		{Method: put, Path: "/v1/nodes/{node}/states/boot_mode", Access: admin, Rule: "baremetal:node:set_boot_mode", Handle: since(76, s.setBootMode)},
		{Method: put, Path: "/v1/nodes/{node}/states/secure_boot", Access: admin, Rule: "baremetal:node:set_secure_boot", Handle: since(76, s.setSecureBoot)},
		{Method: get, Path: "/v1/nodes/{node}/vendor_passthru/methods", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorMethods},
		{Method: get, Path: "/v1/nodes/{node}/vendor_passthru", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: get, Path: "/v1/nodes/{node}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: post, Path: "/v1/nodes/{node}/vendor_passthru", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: post, Path: "/v1/nodes/{node}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: put, Path: "/v1/nodes/{node}/vendor_passthru", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: put, Path: "/v1/nodes/{node}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: patch, Path: "/v1/nodes/{node}/vendor_passthru", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: patch, Path: "/v1/nodes/{node}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: del, Path: "/v1/nodes/{node}/vendor_passthru", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: del, Path: "/v1/nodes/{node}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:node:vendor_passthru", Handle: s.nodeVendorPassthru},
		{Method: get, Path: "/v1/nodes/{node}/traits", Access: admin, Rule: "baremetal:node:traits:list", Handle: sinceOr(37, http.StatusNotAcceptable, s.listTraits)},
		{Method: put, Path: "/v1/nodes/{node}/traits", Access: admin, Rule: "baremetal:node:traits:set", Handle: sinceOr(37, http.StatusMethodNotAllowed, s.setTraits)},
		{Method: del, Path: "/v1/nodes/{node}/traits", Access: admin, Rule: "baremetal:node:traits:delete", Handle: since(37, s.removeTraits)},
		{Method: put, Path: "/v1/nodes/{node}/traits/{trait}", Access: admin, Rule: "baremetal:node:traits:set", Handle: sinceOr(37, http.StatusMethodNotAllowed, s.addTrait)},
		{Method: del, Path: "/v1/nodes/{node}/traits/{trait}", Access: admin, Rule: "baremetal:node:traits:delete", Handle: since(37, s.removeTrait)},
		{Method: get, Path: "/v1/nodes/{node}/ports", Access: admin, Rule: "baremetal:port:list", Handle: s.listPorts(false, true)},
		{Method: get, Path: "/v1/nodes/{node}/ports/detail", Access: admin, Rule: "baremetal:port:list", Handle: s.listPorts(true, true)},

		{Method: get, Path: "/v1/ports", Access: admin, Rule: "baremetal:port:list", Handle: s.listPorts(false, false)},
		{Method: get, Path: "/v1/ports/detail", Access: admin, Rule: "baremetal:port:list_all", Handle: s.listPorts(true, false)},
		{Method: post, Path: "/v1/ports", Access: admin, Rule: "baremetal:port:create", Handle: s.createPort},
		{Method: get, Path: "/v1/ports/{port}", Access: admin, Rule: "baremetal:port:get", Handle: s.showPort},
		{Method: patch, Path: "/v1/ports/{port}", Access: admin, Rule: "baremetal:port:update", Handle: s.updatePort},
		{Method: del, Path: "/v1/ports/{port}", Access: admin, Rule: "baremetal:port:delete", Handle: s.deletePort},

		{Method: get, Path: "/v1/portgroups", Access: admin, Rule: "baremetal:portgroup:list", Handle: since(23, s.listPortgroups(false, false))},
		{Method: get, Path: "/v1/portgroups/detail", Access: admin, Rule: "baremetal:portgroup:list_all", Handle: since(23, s.listPortgroups(true, false))},
		{Method: post, Path: "/v1/portgroups", Access: admin, Rule: "baremetal:portgroup:create", Handle: since(23, s.createPortgroup)},
		{Method: get, Path: "/v1/portgroups/{portgroup}", Access: admin, Rule: "baremetal:portgroup:get", Handle: since(23, s.showPortgroup)},
		{Method: patch, Path: "/v1/portgroups/{portgroup}", Access: admin, Rule: "baremetal:portgroup:update", Handle: since(23, s.updatePortgroup)},
		{Method: del, Path: "/v1/portgroups/{portgroup}", Access: admin, Rule: "baremetal:portgroup:delete", Handle: since(23, s.deletePortgroup)},
		{Method: get, Path: "/v1/portgroups/{portgroup}/ports", Access: admin, Rule: "baremetal:port:list", Handle: since(24, s.listPorts(false, false))},
		{Method: get, Path: "/v1/portgroups/{portgroup}/ports/detail", Access: admin, Rule: "baremetal:port:list", Handle: since(24, s.listPorts(true, false))},
		{Method: get, Path: "/v1/nodes/{node}/portgroups", Access: admin, Rule: "baremetal:portgroup:list", Handle: since(24, s.listPortgroups(false, true))},
		{Method: get, Path: "/v1/nodes/{node}/portgroups/detail", Access: admin, Rule: "baremetal:portgroup:list", Handle: since(24, s.listPortgroups(true, true))},

		{Method: get, Path: "/v1/chassis", Access: admin, Rule: "baremetal:chassis:get", Handle: s.listChassis(false)},
		{Method: get, Path: "/v1/chassis/detail", Access: admin, Rule: "baremetal:chassis:get", Handle: s.listChassis(true)},
		{Method: post, Path: "/v1/chassis", Access: admin, Rule: "baremetal:chassis:create", Handle: s.createChassis},
		{Method: get, Path: "/v1/chassis/{chassis}", Access: admin, Rule: "baremetal:chassis:get", Handle: s.showChassis},
		{Method: patch, Path: "/v1/chassis/{chassis}", Access: admin, Rule: "baremetal:chassis:update", Handle: s.updateChassis},
		{Method: del, Path: "/v1/chassis/{chassis}", Access: admin, Rule: "baremetal:chassis:delete", Handle: s.deleteChassis},
		{Method: get, Path: "/v1/chassis/{chassis}/nodes", Access: admin, Rule: "baremetal:node:list", Handle: s.chassisNodes(false)},
		{Method: get, Path: "/v1/chassis/{chassis}/nodes/detail", Access: admin, Rule: "baremetal:node:list", Handle: s.chassisNodes(true)},

		{Method: get, Path: "/v1/drivers", Access: admin, Rule: "baremetal:driver:get", Handle: s.listDrivers},
		{Method: get, Path: "/v1/drivers/{driver}", Access: admin, Rule: "baremetal:driver:get", Handle: s.showDriver},
		{Method: get, Path: "/v1/drivers/{driver}/properties", Access: admin, Rule: "baremetal:driver:get_properties", Handle: s.driverProperties},
		{Method: get, Path: "/v1/drivers/{driver}/vendor_passthru/methods", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorMethods},
		{Method: get, Path: "/v1/drivers/{driver}/vendor_passthru", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: get, Path: "/v1/drivers/{driver}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: post, Path: "/v1/drivers/{driver}/vendor_passthru", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: post, Path: "/v1/drivers/{driver}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: put, Path: "/v1/drivers/{driver}/vendor_passthru", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: put, Path: "/v1/drivers/{driver}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: patch, Path: "/v1/drivers/{driver}/vendor_passthru", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: patch, Path: "/v1/drivers/{driver}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: del, Path: "/v1/drivers/{driver}/vendor_passthru", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: del, Path: "/v1/drivers/{driver}/vendor_passthru/{method}", Access: admin, Rule: "baremetal:driver:vendor_passthru", Handle: s.driverVendorPassthru},
		{Method: get, Path: "/v1/drivers/{driver}/raid/logical_disk_properties", Access: admin, Rule: "baremetal:driver:get_raid_logical_disk_properties", Handle: since(12, s.driverRAIDProperties)},

		{Method: get, Path: "/v1/allocations", Access: admin, Rule: "baremetal:allocation:list", Handle: since(52, s.listAllocations)},
		{Method: post, Path: "/v1/allocations", Access: admin, Rule: "baremetal:allocation:create", Handle: since(52, s.createAllocation)},
		{Method: get, Path: "/v1/allocations/{allocation}", Access: admin, Rule: "baremetal:allocation:get", Handle: since(52, s.showAllocation)},
		{Method: patch, Path: "/v1/allocations/{allocation}", Access: admin, Rule: "baremetal:allocation:update", Handle: since(57, s.updateAllocation)},
		{Method: del, Path: "/v1/allocations/{allocation}", Access: admin, Rule: "baremetal:allocation:delete", Handle: since(52, s.deleteAllocation)},
		{Method: get, Path: "/v1/nodes/{node}/allocation", Access: admin, Rule: "baremetal:allocation:get", Handle: since(52, s.showNodeAllocation)},
		{Method: del, Path: "/v1/nodes/{node}/allocation", Access: admin, Rule: "baremetal:allocation:delete", Handle: since(52, s.deleteNodeAllocation)},

		{Method: get, Path: "/v1/deploy_templates", Access: admin, Rule: "baremetal:deploy_template:get", Handle: since(55, s.listDeployTemplates(false))},
		{Method: get, Path: "/v1/deploy_templates/detail", Access: admin, Rule: "baremetal:deploy_template:get", Handle: since(55, s.listDeployTemplates(true))},
		{Method: post, Path: "/v1/deploy_templates", Access: admin, Rule: "baremetal:deploy_template:create", Handle: since(55, s.createDeployTemplate)},
		{Method: get, Path: "/v1/deploy_templates/{template}", Access: admin, Rule: "baremetal:deploy_template:get", Handle: since(55, s.showDeployTemplate)},
		{Method: patch, Path: "/v1/deploy_templates/{template}", Access: admin, Rule: "baremetal:deploy_template:update", Handle: since(55, s.updateDeployTemplate)},
		{Method: del, Path: "/v1/deploy_templates/{template}", Access: admin, Rule: "baremetal:deploy_template:delete", Handle: since(55, s.deleteDeployTemplate)},

		{Method: get, Path: "/v1/volume", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.volumeRoot)},
		{Method: get, Path: "/v1/nodes/{node}/volume", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.volumeRoot)},
		{Method: get, Path: "/v1/volume/connectors", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.listVolumes(connectorKind, false, false))},
		{Method: get, Path: "/v1/volume/connectors/detail", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.listVolumes(connectorKind, true, false))},
		{Method: post, Path: "/v1/volume/connectors", Access: admin, Rule: "baremetal:volume:create", Handle: since(32, s.createVolume(connectorKind))},
		{Method: get, Path: "/v1/volume/connectors/{connector}", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.showVolume(connectorKind))},
		{Method: patch, Path: "/v1/volume/connectors/{connector}", Access: admin, Rule: "baremetal:volume:update", Handle: since(32, s.updateVolume(connectorKind))},
		{Method: del, Path: "/v1/volume/connectors/{connector}", Access: admin, Rule: "baremetal:volume:delete", Handle: since(32, s.deleteVolume(connectorKind))},
		{Method: get, Path: "/v1/nodes/{node}/volume/connectors", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.listVolumes(connectorKind, false, true))},
		{Method: get, Path: "/v1/volume/targets", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.listVolumes(targetKind, false, false))},
		{Method: get, Path: "/v1/volume/targets/detail", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.listVolumes(targetKind, true, false))},
		{Method: post, Path: "/v1/volume/targets", Access: admin, Rule: "baremetal:volume:create", Handle: since(32, s.createVolume(targetKind))},
		{Method: get, Path: "/v1/volume/targets/{target}", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.showVolume(targetKind))},
		{Method: patch, Path: "/v1/volume/targets/{target}", Access: admin, Rule: "baremetal:volume:update", Handle: since(32, s.updateVolume(targetKind))},
		{Method: del, Path: "/v1/volume/targets/{target}", Access: admin, Rule: "baremetal:volume:delete", Handle: since(32, s.deleteVolume(targetKind))},
		{Method: get, Path: "/v1/nodes/{node}/volume/targets", Access: admin, Rule: "baremetal:volume:get", Handle: since(32, s.listVolumes(targetKind, false, true))},

		{Method: get, Path: "/v1/conductors", Access: admin, Rule: "baremetal:conductor:get", Handle: since(49, s.listConductors)},
		{Method: get, Path: "/v1/conductors/{conductor}", Access: admin, Rule: "baremetal:conductor:get", Handle: since(49, s.showConductor)},
	}
}

// since serves h from microversion 1.minor on; before it the resource
// does not exist, as in Ironic.
func since(minor int, h api.HandlerFunc) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if versionOf(r.Context()) < minor {
			return notFoundf("The resource could not be found.")
		}
		return h(w, r)
	}
}

// sinceOr is since with the status Ironic answers before the
// microversion where it is not a 404 (traits: 406 for a read, 405 for a
// write).
func sinceOr(minor, status int, h api.HandlerFunc) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if versionOf(r.Context()) < minor {
			return api.Errorf(status, "Request not acceptable: this resource needs API version %s or later.", fmt.Sprint(versionText(minor)))
		}
		return h(w, r)
	}
}

// principalUser is who a history event names: the token's user id, as
// Ironic records it.
func principalUser(ctx context.Context) string {
	if p := api.PrincipalFrom(ctx); p != nil {
		return p.UserID
	}
	return ""
}

func timeText(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05+00:00")
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func links(base, kind, id string) []any {
	return []any{
		map[string]any{"href": base + "/v1/" + kind + "/" + id, "rel": "self"},
		map[string]any{"href": base + "/" + kind + "/" + id, "rel": "bookmark"},
	}
}

// Schema is the bare-metal service's part of the replicated state.
func Schema() store.Schema { return bmstate.Schema() }

// retryStale runs try, a read-change-propose step, again while what it
// proposed was refused as stale (a concurrent change, often the
// conductor's, landed between its read and its write), at most 10 times
// over; any other outcome is returned as it is.
func retryStale(try func() error) error {
	for attempt := 0; ; attempt++ {
		err := try()
		if !bmstate.IsStale(err) || attempt >= 10 {
			return err
		}
	}
}
