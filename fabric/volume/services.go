package volume

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// What Cinder's operators look at: its services, hosts, pools and a
// backend's capabilities, and the availability zones and extensions.
// They describe this cloud as it is: every node runs the API and the
// scheduling (cinder-scheduler, cinder-backup where backups are kept),
// and the volumes live in one cluster-wide block store, the one
// cinder-volume host volumeHost with its one pool, which is up while any
// node is. Its capacity is the disks' and shared with objects: it is
// reported unknown, as Cinder allows, rather than made up.

// volumeHost is the block store as a Cinder volume host; volumes show
// it, with its pool, as os-vol-host-attr:host.
const (
	volumeHost  = "rackstack@block"
	volumePool  = volumeHost + "#block"
	backendName = "block"
	// blockServiceUUID is the cinder-volume service's uuid (volumes'
	// service_uuid): there is one, the block store, whichever nodes run.
	blockServiceUUID = "5f0c2a4e-7b1d-4c39-9a86-2d4e1b7c0f3a"
	vendorName       = "Rackstack"
)

// NodeState is a node of the cluster as Cinder's service list shows it.
type NodeState struct {
	Name string
	Up   bool
	// Seen is its last heartbeat.
	Seen time.Time
}

// cinderService is one row of os-services.
type cinderService struct {
	binary, host string
	up           bool
	seen         time.Time
}

func (s *Service) services(ctx context.Context) ([]cinderService, error) {
	nodes := []NodeState{{Name: s.cfg.Node, Up: true, Seen: s.cfg.Now()}}
	if s.cfg.Nodes != nil {
		var err error
		if nodes, err = s.cfg.Nodes(ctx); err != nil {
			return nil, err
		}
	}
	var out []cinderService
	block := cinderService{binary: "cinder-volume", host: volumeHost}
	for _, n := range nodes {
		out = append(out, cinderService{binary: "cinder-scheduler", host: n.Name, up: n.Up, seen: n.Seen})
		if s.cfg.Backups != nil {
			out = append(out, cinderService{binary: "cinder-backup", host: n.Name, up: n.Up, seen: n.Seen})
		}
		block.up = block.up || n.Up
		if n.Seen.After(block.seen) {
			block.seen = n.Seen
		}
	}
	return append(out, block), nil
}

// onHost reports whether a service runs on host: its host, or the
// machine part of a host@backend.
func (sv cinderService) onHost(host string) bool {
	machine, _, _ := strings.Cut(sv.host, "@")
	return sv.host == host || machine == host
}

func (sv cinderService) state() string {
	if sv.up {
		return "up"
	}
	return "down"
}

func (s *Service) listServices(w http.ResponseWriter, r *http.Request) error {
	all, err := s.services(r.Context())
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out := []any{}
	for _, sv := range all {
		if (q.Has("binary") && sv.binary != q.Get("binary")) || (q.Has("host") && !sv.onHost(q.Get("host"))) {
			continue
		}
		row := map[string]any{"binary": sv.binary, "host": sv.host, "zone": "nova", "status": "enabled",
			"state": sv.state(), "updated_at": timeText(sv.seen), "disabled_reason": nil}
		if sv.binary == "cinder-volume" && atLeast(r, 49) {
			// The block store is the back end: it is up while its
			// service is.
			row["backend_state"] = sv.state()
		}
		out = append(out, row)
	}
	api.JSON(w, http.StatusOK, map[string]any{"services": out})
	return nil
}

// updateService serves PUT os-services/{action}. Services are not
// enabled, disabled, frozen or thawed one by one here (a node leaves the
// cluster instead): a request naming a real service is 501, one naming
// none is refused as Cinder refuses it.
func (s *Service) updateService(w http.ResponseWriter, r *http.Request) error {
	action := chi.URLParam(r, "action")
	if !slices.Contains([]string{"enable", "disable", "disable-log-reason", "freeze", "thaw", "failover_host", "failover", "set-log", "get-log"}, action) {
		return notFound("Service action", action)
	}
	top, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := newInput(top)
	host := in.Str("host", "", 255)
	binary := in.Str("binary", "", 255)
	if in.Err != nil {
		return in.Err
	}
	all, err := s.services(r.Context())
	if err != nil {
		return err
	}
	found := slices.ContainsFunc(all, func(sv cinderService) bool {
		return sv.onHost(host) && (binary == "" || sv.binary == binary)
	})
	switch action {
	case "freeze", "thaw", "failover_host", "failover":
		if !found {
			return badRequest("Invalid input received: host %q runs no volume service.", host)
		}
	case "disable-log-reason":
		if reason, _ := top["disabled_reason"].(string); strings.TrimSpace(reason) == "" {
			return badRequest("Invalid input received: disabled_reason must be a non-empty string.")
		}
		fallthrough
	default:
		if !found {
			return notFound("Service", binary+" on host "+host)
		}
	}
	return &api.Error{Status: http.StatusNotImplemented, Msg: "the " + action + " service action is not supported by this cloud: a node's services come and go with the node"}
}

func (s *Service) listHosts(w http.ResponseWriter, r *http.Request) error {
	all, err := s.services(r.Context())
	if err != nil {
		return err
	}
	out := []any{}
	for _, sv := range all {
		status := "unavailable"
		if sv.up {
			status = "available"
		}
		out = append(out, map[string]any{"service-status": status, "service": sv.binary, "zone": "nova",
			"service-state": "enabled", "host_name": sv.host, "last-update": timeText(sv.seen)})
	}
	api.JSON(w, http.StatusOK, map[string]any{"hosts": out})
	return nil
}

// showHost is the volume usage of the cinder-volume host: the total,
// then per project.
func (s *Service) showHost(w http.ResponseWriter, r *http.Request) error {
	host := chi.URLParam(r, "host")
	if host != volumeHost && host != volumePool {
		return notFound("Host", host)
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	type usage struct{ volumes, volumeGB, snapshots, snapshotGB int }
	per := map[string]*usage{}
	var projects []string
	at := func(p string) *usage {
		if per[p] == nil {
			per[p] = &usage{}
			projects = append(projects, p)
		}
		return per[p]
	}
	total := &usage{}
	for _, v := range store.All[volstate.Volume](tx, volstate.VolumeTable, "id") {
		u := at(v.Project)
		u.volumes++
		u.volumeGB += v.Size
		total.volumes++
		total.volumeGB += v.Size
	}
	for _, sn := range store.All[volstate.Snapshot](tx, volstate.SnapshotTable, "id") {
		u := at(sn.Project)
		u.snapshots++
		u.snapshotGB += sn.Size
		total.snapshots++
		total.snapshotGB += sn.Size
	}
	slices.Sort(projects)
	row := func(project string, u *usage) any {
		return map[string]any{"resource": map[string]any{"host": volumeHost, "project": project,
			"volume_count": strconv.Itoa(u.volumes), "total_volume_gb": strconv.Itoa(u.volumeGB),
			"snapshot_count": strconv.Itoa(u.snapshots), "total_snapshot_gb": strconv.Itoa(u.snapshotGB)}}
	}
	out := []any{row("(total)", total)}
	for _, p := range projects {
		out = append(out, row(p, per[p]))
	}
	api.JSON(w, http.StatusOK, map[string]any{"host": out})
	return nil
}

// capabilities are the block store's, as the pool list and the
// capabilities API show them.
func (s *Service) poolCapabilities(r *http.Request) (map[string]any, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	allocated := 0
	for _, v := range store.All[volstate.Volume](tx, volstate.VolumeTable, "id") {
		allocated += v.Size
	}
	return map[string]any{"pool_name": "block", "volume_backend_name": backendName, "vendor_name": vendorName,
		"driver_version": "1.0", "storage_protocol": "nbd", "total_capacity_gb": "unknown", "free_capacity_gb": "unknown",
		"allocated_capacity_gb": allocated, "provisioned_capacity_gb": allocated, "reserved_percentage": 0,
		"thin_provisioning_support": true, "thick_provisioning_support": false, "multiattach": false, "QoS_support": false,
		"timestamp": timeText(s.cfg.Now())}, nil
}

func (s *Service) listPools(w http.ResponseWriter, r *http.Request) error {
	pool := map[string]any{"name": volumePool}
	if b, _ := api.ToBool(r.URL.Query().Get("detail")); b {
		caps, err := s.poolCapabilities(r)
		if err != nil {
			return err
		}
		pool["capabilities"] = caps
	}
	api.JSON(w, http.StatusOK, map[string]any{"pools": []any{pool}})
	return nil
}

func (s *Service) showCapabilities(w http.ResponseWriter, r *http.Request) error {
	host := chi.URLParam(r, "host")
	// Cinder finds the volume service by host, backend or pool: a name
	// without '@' is a host and names every backend on it.
	if hostPart, _, _ := strings.Cut(volumeHost, "@"); host != hostPart && host != volumeHost && host != volumePool {
		return notFound("Host", host)
	}
	caps, err := s.poolCapabilities(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"namespace": "OS::Storage::Capabilities::" + volumeHost,
		"vendor_name": caps["vendor_name"], "volume_backend_name": backendName, "pool_name": nil, "driver_version": caps["driver_version"],
		"storage_protocol": caps["storage_protocol"], "display_name": "Rackstack block store",
		"description": "volumes as erasure-coded extents in the cluster's disks, exported over NBD", "visibility": nil,
		"replication_targets": []any{}, "properties": map[string]any{
			"thin_provisioning": map[string]any{"type": "boolean", "title": "Thin Provisioning", "description": "Volumes are thin: unwritten extents cost nothing."},
			"compression":       map[string]any{"type": "boolean", "title": "Compression", "description": "Volumes are not compressed."},
		}})
	return nil
}

func (s *Service) listAvailabilityZones(w http.ResponseWriter, r *http.Request) error {
	api.JSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": []any{
		map[string]any{"zoneName": "nova", "zoneState": map[string]any{"available": true}},
	}})
	return nil
}

// extensions are the Cinder API extensions this service serves.
var extensions = [][3]string{
	{"os-admin-actions", "AdminActions", "Volume and snapshot reset_status and force_delete."},
	{"os-availability-zone", "AvailabilityZones", "The availability zones."},
	{"backups", "Backups", "Backups into the object store."},
	{"capabilities", "Capabilities", "A backend's capabilities."},
	{"os-extended-snapshot-attributes", "ExtendedSnapshotAttributes", "A snapshot's project and progress."},
	{"os-hosts", "Hosts", "The volume hosts and their usage."},
	{"os-quota-sets", "Quotas", "Quotas per project."},
	{"scheduler-stats", "Scheduler_stats", "The pools and their capabilities."},
	{"os-services", "Services", "The services and their state."},
	{"os-snapshot-actions", "SnapshotActions", "update_snapshot_status."},
	{"os-used-limits", "UsedLimits", "Used limits."},
	{"os-vol-host-attr", "VolumeHostAttribute", "A volume's host."},
	{"os-vol-image-meta", "VolumeImageMetadata", "A volume's image metadata."},
	{"os-vol-tenant-attr", "VolumeTenantAttribute", "A volume's project."},
	{"os-volume-actions", "VolumeActions", "Extend, upload to image, retype, attach and detach."},
	{"os-volume-transfer", "VolumeTransfer", "Volume transfers between projects."},
	{"os-volume-type-access", "VolumeTypeAccess", "Private volume types and their projects."},
}

func (s *Service) listExtensions(w http.ResponseWriter, r *http.Request) error {
	out := make([]any, 0, len(extensions))
	for _, e := range extensions {
		out = append(out, map[string]any{"alias": e[0], "name": e[1], "description": e[2], "links": []any{},
			"namespace": "https://docs.openstack.org/api-ref/block-storage/", "updated": "2026-12-05T00:00:00+00:00"})
	}
	api.JSON(w, http.StatusOK, map[string]any{"extensions": out})
	return nil
}
