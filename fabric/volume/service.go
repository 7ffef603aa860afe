// Package volume is Rackstack's Cinder v3 API at /volume/v3/{project_id}:
// volumes, snapshots, volume types (the storage policy as an extra spec),
// quotas and limits, with version discovery at /volume/.
//
// It records what is asked in the replicated state (volstate) and moves
// volumes through Cinder's statuses; the data operations (make, clone,
// snapshot, grow, delete a volume's blocks) go to a Blocks store, the
// block storage data path, which it never bypasses, and the copies that
// take time (an image into a volume, backups into the object store and
// back) to Data and BackupStore, in background work whose rows name the
// process doing it, so that work a dead process left is settled (work.go).
// Attaching a volume to a server is Nova's (os-volume_attachments) and
// the node agent's; it must not talk to QEMU or to a node.
package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/bgwork"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Blocks is the block store as the volume service uses it: volumes and
// snapshots by id, sizes in bytes. Each call either did its work or
// failed; Delete of an id that does not exist succeeds.
type Blocks interface {
	// Create makes a thin volume of size bytes stored with policy (the
	// zero policy: the store's default).
	Create(ctx context.Context, id string, size int64, policy volstate.Policy) error
	// Clone makes volume id a copy-on-write copy of from, a volume or a
	// snapshot, of from's size.
	Clone(ctx context.Context, id, from string) error
	// Snapshot makes snapshot id of volume.
	Snapshot(ctx context.Context, id, volume string) error
	// Resize grows id to size bytes.
	Resize(ctx context.Context, id string, size int64) error
	// Delete removes a volume's or a snapshot's blocks.
	Delete(ctx context.Context, id string) error
	// Exists reports whether id has blocks.
	Exists(ctx context.Context, id string) (bool, error)
}

// Images is the image service as volume create sees it: an image p may
// see, or an error matching store.ErrNotFound or a 404.
type Images interface {
	Get(ctx context.Context, p *api.Principal, id string) (ImageInfo, error)
}

// ImageInfo is what a volume made from an image takes from it.
type ImageInfo struct {
	ID, Name, Status, DiskFormat, ContainerFormat, Checksum string
	// Size is the data's length; VirtualSize the disk's (0: unknown).
	Size, VirtualSize int64
	MinDisk, MinRAM   int // GiB, MiB
	Properties        map[string]string
}

// Data moves bytes into volumes from elsewhere; each call runs after the
// API answered, in the service's background work.
type Data interface {
	// ImageToVolume writes image's disk, as raw bytes, into volume from
	// its start; runs of zeroes are left unwritten (the volume is thin
	// and new).
	ImageToVolume(ctx context.Context, image, volume string) error
}

// Config configures the volume service.
type Config struct {
	Repl store.Replicated
	Auth api.Authenticator
	// Blocks holds the volumes' data; required.
	Blocks Blocks
	// Images and Data make volumes from images; without them such a
	// create answers 501.
	Images Images
	Data   Data
	// Uploads makes images of volumes; without it os-volume_upload_image
	// answers 501.
	Uploads ImageUploads
	// Backups keeps backups in the object store; without it backups
	// answer 501.
	Backups BackupStore
	// Secrets seals volume encryption keys; without it encryption types
	// answer 501.
	Secrets Sealer
	// Node names this node; work it started (WorkNode) is settled after
	// a restart. IsLeader says whether this node also settles the work
	// of lost nodes (NodeLost, default never) (default: always leader).
	Node     string
	IsLeader func() bool
	// Nodes lists the cluster's nodes for os-services and os-hosts
	// (default: this node alone, up).
	Nodes    func(ctx context.Context) ([]NodeState, error)
	NodeLost func(node string) bool
	Log      *slog.Logger
	Now      func() time.Time
	// PublicURL is the base of links (default: the URL the client used);
	// Prefix is where the handler is mounted (default /volume).
	PublicURL string
	Prefix    string
	// HoldLease bounds how long the nodes hold a group's volumes for a
	// group snapshot (groupquiesce.go); 0: group snapshots are not held,
	// and a consistent one of attached volumes is refused.
	HoldLease time.Duration
	// HoldNodes lists the nodes that are up, which must hold a group's
	// volumes (default: this node).
	HoldNodes func(ctx context.Context) ([]string, error)
}

// Service serves Cinder v3.
type Service struct {
	cfg Config
	log *slog.Logger
	// run names this process: work rows it marks with it are settled by
	// the next process on this node.
	run string
	// bg runs background work (copies, backups) until Run ends.
	bg *bgwork.Runner
	// carried counts, by volume, the requests and background work of this
	// process that have the volume's work in hand (carry).
	carriedMu sync.Mutex
	carried   map[string]int
}

// New builds the service.
func New(cfg Config) (*Service, error) {
	base, err := cfg.base().Check("volume")
	if err != nil {
		return nil, err
	}
	cfg.Log, cfg.Now, cfg.Prefix = base.Log, base.Now, base.Prefix
	if cfg.Blocks == nil {
		return nil, errors.New("volume: Config.Blocks is required")
	}
	if cfg.IsLeader == nil {
		cfg.IsLeader = func() bool { return true }
	}
	if cfg.NodeLost == nil {
		cfg.NodeLost = func(string) bool { return false }
	}
	return &Service{cfg: cfg, log: cfg.Log, run: api.NewHexID(), bg: bgwork.New(), carried: map[string]int{}}, nil
}

func (c Config) base() api.Base {
	return api.Base{Repl: c.Repl, Auth: c.Auth, Log: c.Log, Now: c.Now, PublicURL: c.PublicURL, Prefix: c.Prefix}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Second) }

// baseURL is where the API is reached, mount prefix included.
func (s *Service) baseURL(r *http.Request) string { return s.cfg.base().URL(r) }

// Handler serves Cinder under the prefix the caller strips (/volume): "/"
// and "/v3/" are version discovery, "/v3/{project_id}/..." the API. Every
// answer carries the microversion; one outside the range is 406.
func (s *Service) Handler() http.Handler {
	rs := api.Routes{Auth: s.cfg.Auth, Errors: writeError, Denied: policyDenied, Word: cinderWording{}, Service: "block-storage"}
	return microversions(rs.Router(s.routes()))
}

// routes is the API and its policy, with Cinder's rule names. Reads need
// the reader role, changes the member role in the project, and types,
// quotas and status resets the admin role. Whose project a volume is in
// is checked by the handlers.
func (s *Service) routes() []api.Route {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
		reader, member      = api.Reader, api.Member
		admin               = api.Admin
		v3                  = "/v3/{project_id}"
	)
	routes := []api.Route{
		{Method: get, Path: "/", Access: api.Public, Handle: s.rootVersions},
		{Method: get, Path: "/v3", Access: api.Public, Handle: s.versions},
		{Method: get, Path: "/v3/", Access: api.Public, Handle: s.versions},

		{Method: get, Path: v3 + "/volumes", Access: reader, Rule: "volume:get_all", Handle: s.listVolumes(false)},
		{Method: get, Path: v3 + "/volumes/detail", Access: reader, Rule: "volume:get_all", Handle: s.listVolumes(true)},
		{Method: get, Path: v3 + "/volumes/summary", Access: reader, Rule: "volume:get_volume_summary", Handle: s.volumeSummary},
		{Method: post, Path: v3 + "/volumes", Access: member, Rule: "volume:create", Handle: s.createVolume},
		{Method: get, Path: v3 + "/volumes/{id}", Access: reader, Rule: "volume:get", Handle: s.showVolume},
		{Method: put, Path: v3 + "/volumes/{id}", Access: member, Rule: "volume:update", Handle: s.updateVolume},
		{Method: del, Path: v3 + "/volumes/{id}", Access: member, Rule: "volume:delete", Handle: s.deleteVolume},
		{Method: post, Path: v3 + "/volumes/{id}/action", Access: member, Rule: "volume:action", Handle: s.volumeAction},
		{Method: get, Path: v3 + "/volumes/{id}/metadata", Access: reader, Rule: "volume:get_volume_metadata", Handle: s.volumeMetadata().show},
		{Method: post, Path: v3 + "/volumes/{id}/metadata", Access: member, Rule: "volume:update_volume_metadata", Handle: s.volumeMetadata().set(false)},
		{Method: put, Path: v3 + "/volumes/{id}/metadata", Access: member, Rule: "volume:update_volume_metadata", Handle: s.volumeMetadata().set(true)},
		{Method: get, Path: v3 + "/volumes/{id}/metadata/{key}", Access: reader, Rule: "volume:get_volume_metadata", Handle: s.volumeMetadata().showKey},
		{Method: put, Path: v3 + "/volumes/{id}/metadata/{key}", Access: member, Rule: "volume:update_volume_metadata", Handle: s.volumeMetadata().putKey},
		{Method: del, Path: v3 + "/volumes/{id}/metadata/{key}", Access: member, Rule: "volume:delete_volume_metadata", Handle: s.volumeMetadata().deleteKey},

		{Method: get, Path: v3 + "/snapshots", Access: reader, Rule: "volume:get_all_snapshots", Handle: s.listSnapshots(false)},
		{Method: get, Path: v3 + "/snapshots/detail", Access: reader, Rule: "volume:get_all_snapshots", Handle: s.listSnapshots(true)},
		{Method: post, Path: v3 + "/snapshots", Access: member, Rule: "volume:create_snapshot", Handle: s.createSnapshot},
		{Method: get, Path: v3 + "/snapshots/{id}", Access: reader, Rule: "volume:get_snapshot", Handle: s.showSnapshot},
		{Method: put, Path: v3 + "/snapshots/{id}", Access: member, Rule: "volume:update_snapshot", Handle: s.updateSnapshot},
		{Method: del, Path: v3 + "/snapshots/{id}", Access: member, Rule: "volume:delete_snapshot", Handle: s.deleteSnapshot},
		{Method: get, Path: v3 + "/snapshots/{id}/metadata", Access: reader, Rule: "volume:get_snapshot_metadata", Handle: s.snapshotMetadata().show},
		{Method: post, Path: v3 + "/snapshots/{id}/metadata", Access: member, Rule: "volume:update_snapshot_metadata", Handle: s.snapshotMetadata().set(false)},
		{Method: put, Path: v3 + "/snapshots/{id}/metadata", Access: member, Rule: "volume:update_snapshot_metadata", Handle: s.snapshotMetadata().set(true)},
		{Method: get, Path: v3 + "/snapshots/{id}/metadata/{key}", Access: reader, Rule: "volume:get_snapshot_metadata", Handle: s.snapshotMetadata().showKey},
		{Method: put, Path: v3 + "/snapshots/{id}/metadata/{key}", Access: member, Rule: "volume:update_snapshot_metadata", Handle: s.snapshotMetadata().putKey},
		{Method: del, Path: v3 + "/snapshots/{id}/metadata/{key}", Access: member, Rule: "volume:delete_snapshot_metadata", Handle: s.snapshotMetadata().deleteKey},
		{Method: post, Path: v3 + "/snapshots/{id}/action", Access: member, Rule: "volume:snapshot_action", Handle: s.snapshotAction},

		{Method: get, Path: v3 + "/types", Access: reader, Rule: "volume_extension:types_manage", Handle: s.listTypes},
		{Method: get, Path: v3 + "/types/default", Access: reader, Rule: "volume_extension:default_get", Handle: s.showDefaultType},
		{Method: post, Path: v3 + "/types", Access: admin, Rule: "volume_extension:types_manage", Handle: s.createType},
		{Method: get, Path: v3 + "/types/{id}", Access: reader, Rule: "volume_extension:type_get", Handle: s.showType},
		{Method: put, Path: v3 + "/types/{id}", Access: admin, Rule: "volume_extension:types_manage", Handle: s.updateType},
		{Method: del, Path: v3 + "/types/{id}", Access: admin, Rule: "volume_extension:types_manage", Handle: s.deleteType},
		{Method: get, Path: v3 + "/types/{id}/os-volume-type-access", Access: admin, Rule: "volume_extension:volume_type_access", Handle: s.listTypeAccess},
		{Method: post, Path: v3 + "/types/{id}/action", Access: admin, Rule: "volume_extension:volume_type_access:addProjectAccess", Handle: s.typeAction},
		{Method: get, Path: v3 + "/types/{id}/extra_specs", Access: reader, Rule: "volume_extension:types_extra_specs:index", Handle: s.listExtraSpecs},
		{Method: post, Path: v3 + "/types/{id}/extra_specs", Access: admin, Rule: "volume_extension:types_extra_specs:create", Handle: s.setExtraSpecs},
		{Method: get, Path: v3 + "/types/{id}/extra_specs/{key}", Access: reader, Rule: "volume_extension:types_extra_specs:show", Handle: s.showExtraSpec},
		{Method: put, Path: v3 + "/types/{id}/extra_specs/{key}", Access: admin, Rule: "volume_extension:types_extra_specs:update", Handle: s.putExtraSpec},
		{Method: del, Path: v3 + "/types/{id}/extra_specs/{key}", Access: admin, Rule: "volume_extension:types_extra_specs:delete", Handle: s.deleteExtraSpec},

		{Method: get, Path: v3 + "/qos-specs", Access: admin, Rule: "volume_extension:qos_specs_manage:get_all", Handle: s.listQoS},
		{Method: post, Path: v3 + "/qos-specs", Access: admin, Rule: "volume_extension:qos_specs_manage:create", Handle: s.createQoS},
		{Method: get, Path: v3 + "/qos-specs/{id}", Access: admin, Rule: "volume_extension:qos_specs_manage:get", Handle: s.showQoS},
		{Method: put, Path: v3 + "/qos-specs/{id}", Access: admin, Rule: "volume_extension:qos_specs_manage:update", Handle: s.setQoSKeys},
		{Method: del, Path: v3 + "/qos-specs/{id}", Access: admin, Rule: "volume_extension:qos_specs_manage:delete", Handle: s.deleteQoS},
		{Method: put, Path: v3 + "/qos-specs/{id}/delete_keys", Access: admin, Rule: "volume_extension:qos_specs_manage:delete_keys", Handle: s.unsetQoSKeys},
		{Method: get, Path: v3 + "/qos-specs/{id}/associations", Access: admin, Rule: "volume_extension:qos_specs_manage:get_all", Handle: s.qosAssociations},
		{Method: get, Path: v3 + "/qos-specs/{id}/associate", Access: admin, Rule: "volume_extension:qos_specs_manage:update", Handle: s.associate(true)},
		{Method: get, Path: v3 + "/qos-specs/{id}/disassociate", Access: admin, Rule: "volume_extension:qos_specs_manage:update", Handle: s.associate(false)},
		{Method: get, Path: v3 + "/qos-specs/{id}/disassociate_all", Access: admin, Rule: "volume_extension:qos_specs_manage:update", Handle: s.disassociateAll},

		{Method: get, Path: v3 + "/types/{id}/encryption", Access: admin, Rule: "volume_extension:volume_type_encryption:get", Handle: s.showTypeEncryption},
		{Method: post, Path: v3 + "/types/{id}/encryption", Access: admin, Rule: "volume_extension:volume_type_encryption:create", Handle: s.createTypeEncryption},
		{Method: get, Path: v3 + "/types/{id}/encryption/{spec}", Access: admin, Rule: "volume_extension:volume_type_encryption:get", Handle: s.showEncryptionSpec},
		{Method: put, Path: v3 + "/types/{id}/encryption/{spec}", Access: admin, Rule: "volume_extension:volume_type_encryption:update", Handle: s.updateTypeEncryption},
		{Method: del, Path: v3 + "/types/{id}/encryption/{spec}", Access: admin, Rule: "volume_extension:volume_type_encryption:delete", Handle: s.deleteTypeEncryption},

		{Method: get, Path: v3 + "/os-quota-sets/{project}", Access: reader, Rule: "volume_extension:quotas:show", Handle: s.showQuota},
		{Method: get, Path: v3 + "/os-quota-sets/{project}/defaults", Access: reader, Rule: "volume_extension:quotas:show", Handle: s.showDefaultQuota},
		{Method: put, Path: v3 + "/os-quota-sets/{project}", Access: admin, Rule: "volume_extension:quotas:update", Handle: s.updateQuota},
		{Method: del, Path: v3 + "/os-quota-sets/{project}", Access: admin, Rule: "volume_extension:quotas:delete", Handle: s.deleteQuota},
		{Method: get, Path: v3 + "/os-quota-class-sets/{class}", Access: admin, Rule: "volume_extension:quota_classes", Handle: s.showQuotaClass},
		{Method: put, Path: v3 + "/os-quota-class-sets/{class}", Access: admin, Rule: "volume_extension:quota_classes:update", Handle: s.updateQuotaClass},
		{Method: get, Path: v3 + "/limits", Access: reader, Rule: "limits_extension:used_limits", Handle: s.limits},

		{Method: get, Path: v3 + "/os-services", Access: admin, Rule: "volume_extension:services:index", Handle: s.listServices},
		{Method: put, Path: v3 + "/os-services/{action}", Access: admin, Rule: "volume_extension:services:update", Handle: s.updateService},
		{Method: get, Path: v3 + "/os-hosts", Access: admin, Rule: "volume_extension:hosts", Handle: s.listHosts},
		{Method: get, Path: v3 + "/os-hosts/{host}", Access: admin, Rule: "volume_extension:hosts", Handle: s.showHost},
		{Method: get, Path: v3 + "/scheduler-stats/get_pools", Access: admin, Rule: "scheduler_extension:scheduler_stats:get_pools", Handle: s.listPools},
		{Method: get, Path: v3 + "/capabilities/{host}", Access: admin, Rule: "volume_extension:capabilities", Handle: s.showCapabilities},
		{Method: get, Path: v3 + "/os-availability-zone", Access: reader, Rule: "volume_extension:availability_zone_list", Handle: s.listAvailabilityZones},
		{Method: get, Path: v3 + "/extensions", Access: reader, Rule: "volume_extension:extensions", Handle: s.listExtensions},

		{Method: get, Path: v3 + "/backups", Access: reader, Rule: "backup:get_all", Handle: s.listBackups(false)},
		{Method: get, Path: v3 + "/backups/detail", Access: reader, Rule: "backup:get_all", Handle: s.listBackups(true)},
		{Method: post, Path: v3 + "/backups", Access: member, Rule: "backup:create", Handle: s.createBackup},
		{Method: get, Path: v3 + "/backups/{id}/export_record", Access: admin, Rule: "backup:export-import", Handle: s.exportBackup},
		{Method: post, Path: v3 + "/backups/import_record", Access: admin, Rule: "backup:backup-import", Handle: s.importBackup},
		{Method: get, Path: v3 + "/backups/{id}", Access: reader, Rule: "backup:get", Handle: s.showBackup},
		{Method: del, Path: v3 + "/backups/{id}", Access: member, Rule: "backup:delete", Handle: s.deleteBackup},
		{Method: put, Path: v3 + "/backups/{id}", Access: member, Rule: "backup:update", Handle: s.updateBackup},
		{Method: post, Path: v3 + "/backups/{id}/restore", Access: member, Rule: "backup:restore", Handle: s.restoreBackup},
		{Method: post, Path: v3 + "/backups/{id}/action", Access: member, Rule: "backup:backup-action", Handle: s.backupAction},
	}
	for _, c := range []string{"os-volume-transfer", "volume-transfers"} {
		routes = append(routes,
			api.Route{Method: get, Path: v3 + "/" + c, Access: reader, Rule: "volume:get_all_transfers", Handle: s.listTransfers(false, c)},
			api.Route{Method: get, Path: v3 + "/" + c + "/detail", Access: reader, Rule: "volume:get_all_transfers", Handle: s.listTransfers(true, c)},
			api.Route{Method: post, Path: v3 + "/" + c, Access: member, Rule: "volume:create_transfer", Handle: s.createTransfer(c)},
			api.Route{Method: get, Path: v3 + "/" + c + "/{id}", Access: reader, Rule: "volume:get_transfer", Handle: s.showTransfer(c)},
			api.Route{Method: del, Path: v3 + "/" + c + "/{id}", Access: member, Rule: "volume:delete_transfer", Handle: s.deleteTransfer},
			api.Route{Method: post, Path: v3 + "/" + c + "/{id}/accept", Access: member, Rule: "volume:accept_transfer", Handle: s.acceptTransfer(c)})
	}
	routes = append(routes,
		api.Route{Method: get, Path: v3 + "/attachments", Access: reader, Rule: "volume:attachment_get_all", Handle: s.listAttachments(false)},
		api.Route{Method: get, Path: v3 + "/attachments/detail", Access: reader, Rule: "volume:attachment_get_all", Handle: s.listAttachments(true)},
		api.Route{Method: post, Path: v3 + "/attachments", Access: member, Rule: "volume:attachment_create", Handle: s.createAttachment},
		api.Route{Method: get, Path: v3 + "/attachments/{id}", Access: reader, Rule: "volume:attachment_get", Handle: s.showAttachment},
		api.Route{Method: put, Path: v3 + "/attachments/{id}", Access: member, Rule: "volume:attachment_update", Handle: s.updateAttachment},
		api.Route{Method: del, Path: v3 + "/attachments/{id}", Access: member, Rule: "volume:attachment_delete", Handle: s.deleteAttachment},
		api.Route{Method: post, Path: v3 + "/attachments/{id}/action", Access: member, Rule: "volume:attachment_complete", Handle: s.attachmentAction})
	routes = append(routes,
		api.Route{Method: get, Path: v3 + "/messages", Access: reader, Rule: "message:get_all", Handle: s.listMessages},
		api.Route{Method: get, Path: v3 + "/messages/{id}", Access: reader, Rule: "message:get", Handle: s.showMessage},
		api.Route{Method: del, Path: v3 + "/messages/{id}", Access: member, Rule: "message:delete", Handle: s.deleteMessage})
	routes = append(routes,
		api.Route{Method: get, Path: v3 + "/resource_filters", Access: reader, Rule: "volume:resource_filters", Handle: s.listResourceFilters})
	routes = append(routes,
		api.Route{Method: get, Path: v3 + "/group_types", Access: reader, Rule: "group:group_types:get_all", Handle: s.listGroupTypes},
		api.Route{Method: get, Path: v3 + "/group_types/default", Access: reader, Rule: "group:group_types:get", Handle: s.showDefaultGroupType},
		api.Route{Method: get, Path: v3 + "/group_types/{id}", Access: reader, Rule: "group:group_types:get", Handle: s.showGroupType},
		api.Route{Method: post, Path: v3 + "/group_types", Access: admin, Rule: "group:group_types:create", Handle: s.createGroupType},
		api.Route{Method: put, Path: v3 + "/group_types/{id}", Access: admin, Rule: "group:group_types:update", Handle: s.updateGroupType},
		api.Route{Method: del, Path: v3 + "/group_types/{id}", Access: admin, Rule: "group:group_types:delete", Handle: s.deleteGroupType},
		api.Route{Method: get, Path: v3 + "/group_types/{id}/group_specs", Access: admin, Rule: "group:group_types_specs:get_all", Handle: s.listGroupSpecs},
		api.Route{Method: post, Path: v3 + "/group_types/{id}/group_specs", Access: admin, Rule: "group:group_types_specs:create", Handle: s.setGroupSpecs},
		api.Route{Method: get, Path: v3 + "/group_types/{id}/group_specs/{key}", Access: admin, Rule: "group:group_types_specs:get", Handle: s.showGroupSpec},
		api.Route{Method: put, Path: v3 + "/group_types/{id}/group_specs/{key}", Access: admin, Rule: "group:group_types_specs:update", Handle: s.putGroupSpec},
		api.Route{Method: del, Path: v3 + "/group_types/{id}/group_specs/{key}", Access: admin, Rule: "group:group_types_specs:delete", Handle: s.deleteGroupSpec})
	routes = append(routes,
		api.Route{Method: get, Path: v3 + "/groups", Access: reader, Rule: "group:get_all", Handle: s.listGroups(false)},
		api.Route{Method: get, Path: v3 + "/groups/detail", Access: reader, Rule: "group:get_all", Handle: s.listGroups(true)},
		api.Route{Method: post, Path: v3 + "/groups", Access: member, Rule: "group:create", Handle: s.createGroup},
		api.Route{Method: post, Path: v3 + "/groups/action", Access: member, Rule: "group:create", Handle: s.createGroupFromSource},
		api.Route{Method: get, Path: v3 + "/groups/{id}", Access: reader, Rule: "group:get", Handle: s.showGroup},
		api.Route{Method: put, Path: v3 + "/groups/{id}", Access: member, Rule: "group:update", Handle: s.updateGroup},
		api.Route{Method: post, Path: v3 + "/groups/{id}/action", Access: member, Rule: "group:delete", Handle: s.groupAction},
		api.Route{Method: get, Path: v3 + "/group_snapshots", Access: reader, Rule: "group:get_all_group_snapshots", Handle: s.listGroupSnapshots(false)},
		api.Route{Method: get, Path: v3 + "/group_snapshots/detail", Access: reader, Rule: "group:get_all_group_snapshots", Handle: s.listGroupSnapshots(true)},
		api.Route{Method: post, Path: v3 + "/group_snapshots", Access: member, Rule: "group:create_group_snapshot", Handle: s.createGroupSnapshot},
		api.Route{Method: get, Path: v3 + "/group_snapshots/{id}", Access: reader, Rule: "group:get_group_snapshot", Handle: s.showGroupSnapshot},
		api.Route{Method: del, Path: v3 + "/group_snapshots/{id}", Access: member, Rule: "group:delete_group_snapshot", Handle: s.deleteGroupSnapshot},
		api.Route{Method: post, Path: v3 + "/group_snapshots/{id}/action", Access: member, Rule: "group:reset_group_snapshot_status", Handle: s.groupSnapshotAction})
	routes = append(routes,
		api.Route{Method: get, Path: v3 + "/consistencygroups", Access: reader, Rule: "consistencygroup:get_all", Handle: s.listCGs(false)},
		api.Route{Method: get, Path: v3 + "/consistencygroups/detail", Access: reader, Rule: "consistencygroup:get_all", Handle: s.listCGs(true)},
		api.Route{Method: post, Path: v3 + "/consistencygroups", Access: member, Rule: "consistencygroup:create", Handle: s.createCG},
		api.Route{Method: post, Path: v3 + "/consistencygroups/create_from_src", Access: member, Rule: "consistencygroup:create", Handle: s.createCGFromSource},
		api.Route{Method: get, Path: v3 + "/consistencygroups/{id}", Access: reader, Rule: "consistencygroup:get", Handle: s.showCG},
		api.Route{Method: put, Path: v3 + "/consistencygroups/{id}/update", Access: member, Rule: "consistencygroup:update", Handle: s.updateCG},
		api.Route{Method: post, Path: v3 + "/consistencygroups/{id}/delete", Access: member, Rule: "consistencygroup:delete", Handle: s.deleteCG},
		api.Route{Method: get, Path: v3 + "/cgsnapshots", Access: reader, Rule: "consistencygroup:get_all_cgsnapshots", Handle: s.listCGSnapshots(false)},
		api.Route{Method: get, Path: v3 + "/cgsnapshots/detail", Access: reader, Rule: "consistencygroup:get_all_cgsnapshots", Handle: s.listCGSnapshots(true)},
		api.Route{Method: post, Path: v3 + "/cgsnapshots", Access: member, Rule: "consistencygroup:create_cgsnapshot", Handle: s.createCGSnapshot},
		api.Route{Method: get, Path: v3 + "/cgsnapshots/{id}", Access: reader, Rule: "consistencygroup:get_cgsnapshot", Handle: s.showCGSnapshot},
		api.Route{Method: del, Path: v3 + "/cgsnapshots/{id}", Access: member, Rule: "consistencygroup:delete_cgsnapshot", Handle: s.deleteCGSnapshot})
	routes = append(routes,
		api.Route{Method: get, Path: "/v3/default-types", Access: admin, Rule: "volume_extension:default_get_all", Handle: s.listDefaultTypes},
		api.Route{Method: get, Path: "/v3/default-types/{id}", Access: reader, Rule: "volume_extension:default_get", Handle: s.showProjectDefaultType},
		api.Route{Method: put, Path: "/v3/default-types/{id}", Access: admin, Rule: "volume_extension:default_set_or_update", Handle: s.setDefaultType},
		api.Route{Method: del, Path: "/v3/default-types/{id}", Access: admin, Rule: "volume_extension:default_unset", Handle: s.unsetDefaultType})
	bodies := bodySchemas()
	for i, rt := range routes {
		if b, ok := bodies[rt.Method+" "+strings.TrimPrefix(rt.Path, v3)]; ok {
			routes[i].Body = b
			delete(bodies, rt.Method+" "+strings.TrimPrefix(rt.Path, v3))
		}
	}
	if len(bodies) > 0 {
		panic(fmt.Sprintf("volume: body schemas of no route: %v", slices.Collect(maps.Keys(bodies))))
	}
	// 3.67: the project in the URL is optional; without it the request
	// acts in the token's project. Cinder's router takes both forms at
	// every version; so does this one.
	for _, rt := range routes {
		if rest, ok := strings.CutPrefix(rt.Path, v3+"/"); ok {
			rt.Path = "/v3/" + rest
			routes = append(routes, rt)
		}
	}
	for _, u := range unbuiltRoutes {
		routes = append(routes, api.Route{Method: u.method, Path: v3 + "/" + u.path, Access: reader, Rule: u.what, Handle: notBuilt(u.what)})
	}
	return routes
}

// unbuiltRoutes are Cinder's paths of the resources this cloud does not
// build, each at the path Cinder serves it (the clients' calls: the CLI's
// 'block storage cluster list', 'volume create --remote-source' through
// the legacy os-volume-manage, 'block storage cleanup'), so that they
// answer 501 saying so rather than 404, which says the path is no
// Cinder's.
var unbuiltRoutes = []struct{ method, path, what string }{
	{http.MethodGet, "clusters", "clusters"},
	{http.MethodGet, "clusters/detail", "clusters"},
	{http.MethodGet, "clusters/{name}", "clusters"},
	{http.MethodPut, "clusters/{action}", "clusters"},
	{http.MethodPost, "workers/cleanup", "workers"},
	{http.MethodGet, "manageable_volumes", "manageable volumes"},
	{http.MethodGet, "manageable_volumes/detail", "manageable volumes"},
	{http.MethodPost, "manageable_volumes", "manageable volumes"},
	{http.MethodGet, "os-volume-manage", "manageable volumes"},
	{http.MethodGet, "os-volume-manage/detail", "manageable volumes"},
	{http.MethodPost, "os-volume-manage", "manageable volumes"},
	{http.MethodGet, "manageable_snapshots", "manageable snapshots"},
	{http.MethodGet, "manageable_snapshots/detail", "manageable snapshots"},
	{http.MethodPost, "manageable_snapshots", "manageable snapshots"},
	{http.MethodGet, "os-snapshot-manage", "manageable snapshots"},
	{http.MethodGet, "os-snapshot-manage/detail", "manageable snapshots"},
	{http.MethodPost, "os-snapshot-manage", "manageable snapshots"},
}

func notBuilt(what string) api.HandlerFunc {
	return func(http.ResponseWriter, *http.Request) error {
		return &api.Error{Status: http.StatusNotImplemented, Msg: what + " are not supported by this cloud yet"}
	}
}

func principal(r *http.Request) *api.Principal { return api.PrincipalFrom(r.Context()) }

// project is the project the request acts in: the token's. The project
// in the URL, if the URL names one (optional from 3.67), must be it,
// unless the caller is an admin.
func project(r *http.Request) (string, error) {
	p := principal(r)
	if u := chi.URLParam(r, "project_id"); u != "" && u != p.ProjectID && !p.IsAdmin() {
		return "", policyDenied("project_id")
	}
	return p.ProjectID, nil
}

func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }
