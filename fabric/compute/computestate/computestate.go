// Package computestate is the compute service's part of the replicated
// state as node agents read it: the row types, the table names and
// schema, and the reads an agent needs (Load, Hostname). It imports no
// HTTP code, so node/ can follow servers without linking the Nova API.
// What changes these rows (the FSM handlers) lives in fabric/compute.
package computestate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Rows of the compute tables. A row is never changed after insert: a
// handler copies it, changes the copy and inserts that. The node agent
// reads Server and Flavor (through Load), so their Go field names are a
// contract.

// Flavor is a server size. A server keeps a copy of its flavor as it was
// at create time, so deleting or changing the flavor never changes it.
type Flavor struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	VCPUs       int               `json:"vcpus"`
	RAM         int               `json:"ram"`  // MB
	Disk        int               `json:"disk"` // root disk, GB
	Ephemeral   int               `json:"ephemeral"`
	Swap        int               `json:"swap"` // MB
	RxTxFactor  float64           `json:"rxtx_factor"`
	Public      bool              `json:"public"`
	ExtraSpecs  map[string]string `json:"extra_specs,omitempty"`
	Created     time.Time         `json:"created"`
	// Seq is the log index of the flavor's create: Nova's integer id
	// of a flavor (instance_type_id), which os-migrations shows. 0 for
	// flavors made before it was kept.
	Seq uint64 `json:"seq,omitempty"`
}

// FlavorAccess lets a project use a private flavor.
type FlavorAccess struct {
	ID       string `json:"id"` // flavor/project
	FlavorID string `json:"flavor_id"`
	Project  string `json:"project"`
}

// Keypair is a user's SSH public key; the private key, when the service
// generated one, was shown once and never stored.
type Keypair struct {
	ID          string    `json:"id"` // user/name
	UserID      string    `json:"user_id"`
	Name        string    `json:"name"`
	Type        string    `json:"type"` // ssh, x509
	PublicKey   string    `json:"public_key"`
	Fingerprint string    `json:"fingerprint"`
	Seq         uint64    `json:"seq"` // Nova's integer id: the log index that created it
	Created     time.Time `json:"created"`
}

// Fault is why a server is in ERROR.
type Fault struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Details string    `json:"details,omitempty"`
	Created time.Time `json:"created"`
}

// Nova's power states.
const (
	PowerNoState   = 0
	PowerRunning   = 1
	PowerPaused    = 3
	PowerShutdown  = 4
	PowerCrashed   = 6
	PowerSuspended = 7
)

// Server is a virtual machine: what the API asked for (Want, RebootSeq)
// and what its node last reported (VMState, PowerState, Fault).
type Server struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// HostnameSet is the hostname asked for (microversion 2.90: create,
	// update, rebuild); "" derives it from the name (Hostname).
	HostnameSet string `json:"hostname,omitempty"`
	Description string `json:"description,omitempty"`
	Project     string `json:"project"`
	UserID      string `json:"user_id"`
	// Host is the node the scheduler placed it on; "" when placement
	// failed.
	Host    string `json:"host"`
	ImageID string `json:"image_id"`
	// BootVolume is the volume the server boots from ("" : the image,
	// copied to a local disk), attached to it as its root disk.
	BootVolume string `json:"boot_volume,omitempty"`
	KeyName    string `json:"key_name,omitempty"`
	PublicKey  string `json:"public_key,omitempty"`
	// UserData is base64, as the client sent it.
	UserData string `json:"user_data,omitempty"`
	AZ       string `json:"az"`
	// PinnedAZ is the zone the server is held to (Nova's request spec's
	// availability_zone): the one its create asked for, changed or
	// cleared by an unshelve (2.77, 2.91); "" for none. nil on a row
	// made before it was kept: its AZ holds it.
	PinnedAZ *string `json:"pinned_az,omitempty"`
	// Status is Nova's status (BUILD, ACTIVE, SHUTOFF, PAUSED, SUSPENDED,
	// REBOOT, HARD_REBOOT, ERROR, DELETED), derived from VMState and
	// TaskState whenever either changes.
	Status     string `json:"status"`
	VMState    string `json:"vm_state"` // building, active, stopped, paused, suspended, error
	TaskState  string `json:"task_state,omitempty"`
	PowerState int    `json:"power_state"`
	Flavor     Flavor `json:"flavor"`
	// RootGB is the root disk's size: the flavor's, or the image's when
	// the flavor's is 0.
	RootGB int `json:"root_gb"`
	// Ports are the Neutron ports of the server, in NIC order;
	// CreatedPorts are those the compute service made (deleted with the
	// server), the others were the client's (only unbound).
	Ports        []string `json:"ports"`
	CreatedPorts []string `json:"created_ports,omitempty"`
	// NICTags are the device tags of its ports (2.32, 2.42 on create,
	// 2.49 on attach), by port id: the guest reads them in its
	// metadata's devices. A volume's tag is on its attachment
	// (volstate.Attachment.Tag).
	NICTags  map[string]string `json:"nic_tags,omitempty"`
	Metadata map[string]string `json:"metadata"`
	// Tags are Nova's server tags (2.26), sorted and unique.
	Tags []string `json:"tags,omitempty"`
	// Want is the state the node must converge to: active, stopped,
	// paused, suspended or deleted.
	Want string `json:"want"`
	// RebootSeq counts reboot requests; the node reboots when it has
	// completed fewer (Observed.RebootSeq), hard when RebootHard.
	RebootSeq  int  `json:"reboot_seq"`
	RebootHard bool `json:"reboot_hard,omitempty"`
	// RebuildSeq counts rebuilds of a bare-metal server; a rebuild is
	// done when its conductor reports the node active with it
	// (Observed.RebuildSeq).
	RebuildSeq int `json:"rebuild_seq,omitempty"`
	// StopAfterRebuild says the rebuild in progress began on a stopped
	// server: once rebuilt it is stopped again, as Nova's rebuild brings
	// a stopped instance back to its original state.
	StopAfterRebuild bool `json:"stop_after_rebuild,omitempty"`
	// ResizeSeq counts the resizes and resize reverts of a virtual
	// machine: its node restarts the guest with Flavor (the root disk
	// grown to RootGB) when it has done fewer (Observed.ResizeSeq).
	// OldFlavor is the flavor before the resize in progress or waiting
	// for its confirm (VERIFY_RESIZE), which a revert restores;
	// Migration is that resize's migration record.
	ResizeSeq int     `json:"resize_seq,omitempty"`
	OldFlavor *Flavor `json:"old_flavor,omitempty"`
	// RescueSeq counts the rescues and unrescues of a virtual machine:
	// its node restarts the guest with the disks they give it when it
	// has done fewer (Observed.RescueSeq). RescueImage is the image the
	// guest boots from while rescued (its rescue disk, first, with its
	// own root disk second), "" when it is not. RescueStable is Nova's
	// stable device rescue (a rescue image with hw_rescue_bus or
	// hw_rescue_device): the guest's own disks keep their places and the
	// rescue disk is added after them, booted first.
	// ReimageImage is the image a volume-backed server's rebuild (2.93)
	// writes over its boot volume, for the rebuild ReimageSeq: a later
	// rebuild of another kind (RebuildSeq past it) reimages nothing.
	ReimageImage   string   `json:"reimage_image,omitempty"`
	ReimageSeq     int      `json:"reimage_seq,omitempty"`
	RescueSeq      int      `json:"rescue_seq,omitempty"`
	RescueImage    string   `json:"rescue_image,omitempty"`
	RescueStable   bool     `json:"rescue_stable,omitempty"`
	Migration      string   `json:"migration,omitempty"`
	Fault          *Fault   `json:"fault,omitempty"`
	Group          string   `json:"group,omitempty"`
	SecurityGroups []string `json:"security_groups"`
	ConfigDrive    bool     `json:"config_drive"`
	AccessIPv4     string   `json:"access_ipv4,omitempty"`
	AccessIPv6     string   `json:"access_ipv6,omitempty"`
	// DiskConfig is Nova's OS-DCF:diskConfig, AUTO or MANUAL ("" is
	// MANUAL).
	DiskConfig string `json:"disk_config,omitempty"`
	// Personality are the files to inject (Nova's personality, before
	// microversion 2.57): the config drive carries them.
	Personality   []File    `json:"personality,omitempty"`
	ReservationID string    `json:"reservation_id"`
	LaunchIndex   int       `json:"launch_index"`
	Created       time.Time `json:"created"`
	Updated       time.Time `json:"updated"`
	LaunchedAt    time.Time `json:"launched_at,omitzero"`
	// Hidden marks a server deleted while its node was down: gone for
	// the API (and its quota), kept until the node comes back and
	// reports it torn down.
	Hidden bool `json:"hidden,omitempty"`
	// Baremetal is the bare-metal node (its UUID) the server was deployed
	// on, for a server of a bare-metal flavor (BaremetalClass): the
	// conductor drives it, no servers agent runs it, and Host is the
	// node's conductor.
	Baremetal string `json:"baremetal,omitempty"`
	// Locked is Nova's lock: only an admin may change a locked server.
	// LockedBy is who locked it ("owner": its project, "admin": an admin
	// of another project), LockedReason why (Nova's locked_reason).
	Locked       bool   `json:"locked,omitempty"`
	LockedBy     string `json:"locked_by,omitempty"`
	LockedReason string `json:"locked_reason,omitempty"`
	// SnapshotImage is the image a createImage is making of the server
	// ("" when none runs): its node agent copies the disk into it (see
	// CmdImageStep).
	SnapshotImage string `json:"snapshot_image,omitempty"`
	// Password is what the guest posted to the metadata service (Nova's
	// server password: encrypted with the server's public key by the
	// guest's agent), until its owner clears it.
	Password string `json:"password,omitempty"`
	// SnapshotBackup is set when that snapshot is a createBackup's: the
	// backups to keep once it is made.
	SnapshotBackup *Backup `json:"snapshot_backup,omitempty"`
	// SnapshotShelve is set when that snapshot is a shelve's: the guest
	// is powered off first, and the server offloaded once it is made.
	SnapshotShelve bool `json:"snapshot_shelve,omitempty"`
	// ShelvedImage is the image a shelved server's disk was saved in
	// (Nova's shelved_image_id): unshelve boots from it, then it goes.
	ShelvedImage string `json:"shelved_image,omitempty"`
	// ShelvedAttachments are the attachments of volumes attached while
	// the server was shelved offloaded (2.20): recorded on no host, the
	// volume in-use, as Nova's local attach leaves it; unshelve plugs
	// them on the server's new host (fabric/compute/shelved_volumes.go).
	ShelvedAttachments []string `json:"shelved_attachments,omitempty"`
	// MigrateTo is the host a cold migration moves the server to while
	// its source node saves it (task_state resize_migrating); MigrateFrom
	// the host it left, which keeps the guest's disk, off, until the
	// migration is confirmed or reverted; MigrateImage the image the
	// source copies a local root disk into, for the new host to make
	// its disk from (see fabric/compute/server_migrate.go).
	MigrateTo    string `json:"migrate_to,omitempty"`
	MigrateFrom  string `json:"migrate_from,omitempty"`
	MigrateImage string `json:"migrate_image,omitempty"`
	// Live is the live migration under way (livemigrate.go), nil when
	// none is; MigrateTo is then its destination.
	Live *LiveMigration `json:"live,omitempty"`
	// BlockDevices are the volumes a create gives the server when some
	// must be made first (boot from a volume made from an image or a
	// snapshot, blank or made data volumes): while they are made
	// (task_state block_device_mapping) the server has no host, and once
	// they exist one command places it and attaches them. A build that
	// failed keeps them: the ones made with DeleteOnTermination go when
	// the server does.
	BlockDevices []BlockDevice `json:"block_devices,omitempty"`
	// BuildNode and BuildRun name the process making them (a process
	// that died leaves its builds to the next one on its node, or to the
	// leader for a lost node); BuildHost is an admin's forced host.
	BuildNode string `json:"build_node,omitempty"`
	BuildRun  string `json:"build_run,omitempty"`
	BuildHost string `json:"build_host,omitempty"`
	// LocalDisks are the server's ephemeral and swap disks, files on its
	// host beside the root disk, in the order the guest sees them after
	// it (vdb, vdc, ...): from its flavor's ephemeral and swap sizes or
	// its create's block_device_mapping_v2 (source blank, destination
	// local). They live and die with the server on its host.
	LocalDisks []LocalDisk `json:"local_disks,omitempty"`
	// OldLocalDisks are the local disks before the resize in progress or
	// waiting for its confirm, which a revert restores (a disk grown
	// stays grown: the node never shrinks one).
	OldLocalDisks []LocalDisk `json:"old_local_disks,omitempty"`
	// PreserveEphemeral says the rebuild in progress keeps the
	// ephemeral disks as they are (Nova's preserve_ephemeral); without
	// it a rebuild makes them anew, empty.
	PreserveEphemeral bool `json:"preserve_ephemeral,omitempty"`
}

// LocalDisk is an ephemeral or swap disk of a server: Name is what
// Nova's metadata calls it (ephemeral0, ephemeral1, ..., swap), SizeMB
// its size, Format the filesystem its host makes on it (ext2, ext3,
// ext4, vfat) or "swap" (mkswap); the filesystem is labelled Name.
type LocalDisk struct {
	Name   string `json:"name"`
	SizeMB int    `json:"size_mb"`
	Format string `json:"format"`
}

// LocalDiskFormats are the guest_formats a local disk can be made with.
var LocalDiskFormats = []string{"ext2", "ext3", "ext4", "vfat", "swap"}

// Swap says whether d is the swap disk.
func (d LocalDisk) Swap() bool { return d.Format == "swap" }

// DeviceMapping is Nova's block-device-mapping of the metadata (its
// EC2 tree): the root disk as ami and root, each local disk by its name
// on the device after the root it gets (vdb, vdc, ...).
func DeviceMapping(s *Server) map[string]string {
	m := map[string]string{"ami": "vda", "root": "/dev/vda"}
	for i, d := range s.LocalDisks {
		m[d.Name] = LocalDevice(i)
	}
	return m
}

// LocalDevice is the device name of a server's i-th local disk: the
// disks after the root, vdb on.
func LocalDevice(i int) string { return "/dev/vd" + string(rune('b'+i)) }

// BlockDevice is one volume of a server's create: an existing volume
// (Source "volume", VolumeID the caller's), or one to make (Source
// "blank", "image" or "snapshot", UUID the image or snapshot, Size GiB, of
// volume type Type) under the id VolumeID chosen by the API, so a volume
// is never made that the server does not name. Boot marks the root disk.
type BlockDevice struct {
	Boot                bool   `json:"boot,omitempty"`
	Source              string `json:"source"`
	UUID                string `json:"uuid,omitempty"`
	Type                string `json:"type,omitempty"`
	Size                int    `json:"size,omitempty"`
	DeleteOnTermination bool   `json:"delete_on_termination,omitempty"`
	VolumeID            string `json:"volume_id"`
	AttachmentID        string `json:"attachment_id,omitempty"`
	// Tag is the device tag its attachment gets.
	Tag string `json:"tag,omitempty"`
}

// MaxPassword is the most a guest may post as its server password:
// Nova's four chunks of 255 characters.
const MaxPassword = 4 * 255

// File is a file injected into a server's guest.
type File struct {
	Path string `json:"path"`
	// Contents are base64, as the client sent them.
	Contents string `json:"contents"`
}

// ServerGroup groups servers for (anti-)affinity.
type ServerGroup struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Project    string    `json:"project"`
	UserID     string    `json:"user_id"`
	Policy     string    `json:"policy"`
	MaxPerHost int       `json:"max_per_host,omitempty"`
	Members    []string  `json:"members"`
	Created    time.Time `json:"created"`
}

// Quota holds a project's limits that differ from the defaults.
type Quota struct {
	ID     string         `json:"id"` // project id
	Limits map[string]int `json:"limits"`
}

// Action is one entry of a server's instance-action log.
type Action struct {
	ID        string    `json:"id"` // server/request
	ServerID  string    `json:"server_id"`
	Project   string    `json:"project"`
	UserID    string    `json:"user_id"`
	Action    string    `json:"action"`
	RequestID string    `json:"request_id"`
	Start     time.Time `json:"start"`
	// Message is Nova's action message: "Error" when an event failed.
	Message string        `json:"message,omitempty"`
	Events  []ActionEvent `json:"events,omitempty"`
	// Volume and Size are an extend_volume action's volume and the size
	// in bytes it grew to, which its node's agent tells the guest.
	Volume string `json:"volume,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// ActionEvent is one step of an instance action, as Nova records the
// steps nova-compute runs (compute_stop_instance, ...). Actions a user
// asked for carry none here; those the system takes on its own (a guest
// that shut itself down) carry the event that says what happened.
type ActionEvent struct {
	Event  string    `json:"event"`
	Start  time.Time `json:"start"`
	Finish time.Time `json:"finish"`
	// Result is Success or Error.
	Result string `json:"result"`
	// Details says what went wrong, with Result Error (Nova's event
	// traceback and, from microversion 2.84, details).
	Details string `json:"details,omitempty"`
	Host    string `json:"host,omitempty"`
}

// ConsoleToken grants a serial-console connection to one server; only
// the token's SHA-256 is kept.
type ConsoleToken struct {
	ID       string    `json:"id"` // hex SHA-256 of the token
	ServerID string    `json:"server_id"`
	Expires  time.Time `json:"expires"`
	// Kind is the console the token opens: "" the serial console,
	// "vnc" the graphical one.
	Kind string `json:"kind,omitempty"`
}

// UsageRecord is what the usage report (os-simple-tenant-usage) keeps of
// a server after its row is removed: Nova counts a server deleted within
// the period asked for, and here a deleted server's row goes. It is
// written by the same command that removes the row and pruned by later
// removals once older than fabric/compute's usage retention.
type UsageRecord struct {
	ID       string `json:"id"` // the server's id
	Project  string `json:"project"`
	UserID   string `json:"user_id"`
	Name     string `json:"name"`
	Flavor   string `json:"flavor"` // the flavor's name
	VCPUs    int    `json:"vcpus"`
	MemoryMB int    `json:"memory_mb"`
	// LocalGB is the flavor's root and ephemeral disks, as Nova counts
	// local_gb.
	LocalGB      int       `json:"local_gb"`
	LaunchedAt   time.Time `json:"launched_at"`
	TerminatedAt time.Time `json:"terminated_at"`
}

// Observed is what a node reports about one of its servers.
type Observed struct {
	PowerState int `json:"power_state"`
	// Status is ACTIVE, SHUTOFF, PAUSED, SUSPENDED or ERROR.
	Status string `json:"status"`
	// Fault says why, with Status ERROR; with SHUTOFF it says why the
	// guest stopped on its own (it crashed).
	Fault string `json:"fault,omitempty"`
	// Gone reports a deleted server torn down completely.
	Gone bool `json:"gone,omitempty"`
	// Node is the node that reports, when it is a compute node's agent:
	// a report from a node that is no longer the server's host (its
	// guest was migrated or evacuated away) changes nothing.
	Node string `json:"node,omitempty"`
	// RebootSeq is the last reboot request (Server.RebootSeq) completed.
	RebootSeq int `json:"reboot_seq"`
	// RebuildSeq is the last rebuild (Server.RebuildSeq) done.
	RebuildSeq int `json:"rebuild_seq,omitempty"`
	// ResizeSeq is the last resize or revert (Server.ResizeSeq) done,
	// failed or not.
	ResizeSeq int `json:"resize_seq,omitempty"`
	// RescueSeq is the last rescue or unrescue (Server.RescueSeq) done,
	// failed or not.
	RescueSeq int `json:"rescue_seq,omitempty"`
}

// Table names.
const (
	TableFlavors      = "compute_flavors"
	TableFlavorAccess = "compute_flavor_access"
	TableKeypairs     = "compute_keypairs"
	TableServers      = "compute_servers"
	TableGroups       = "compute_server_groups"
	TableQuotas       = "compute_quotas"
	TableActions      = "compute_instance_actions"
	TableConsoles     = "compute_console_tokens"
	TableUsage        = "compute_usage_records"
	TableMigrations   = "compute_migrations"
)

// Schema is the compute tables without their command handlers (which
// fabric/compute adds): enough for a store an agent or a test reads.
func Schema() store.Schema {
	return store.Schema{Tables: []store.Table{
		store.NewTable(TableFlavors, &Flavor{}),
		store.NewTable(TableFlavorAccess, &FlavorAccess{}, store.StringIndex("flavor", "FlavorID", false), store.StringIndex("project", "Project", false)),
		store.NewTable(TableKeypairs, &Keypair{}, store.StringIndex("user", "UserID", false)),
		store.NewTable(TableServers, &Server{}, store.StringIndex("project", "Project", false),
			&memdb.IndexSchema{Name: "host", AllowMissing: true, Indexer: &memdb.StringFieldIndex{Field: "Host"}}),
		store.NewTable(TableGroups, &ServerGroup{}, store.StringIndex("project", "Project", false)),
		store.NewTable(TableQuotas, &Quota{}),
		store.NewTable(TableActions, &Action{}, store.StringIndex("server", "ServerID", false)),
		store.NewTable(TableConsoles, &ConsoleToken{}, store.StringIndex("server", "ServerID", false)),
		store.NewTable(TableMigrations, &Migration{}, store.StringIndex("server", "ServerID", false)),
		aggregatesTable(),
		serviceStatesTable(),
		store.NewTable(TableUsage, &UsageRecord{}, store.StringIndex("project", "Project", false),
			&memdb.IndexSchema{Name: "terminated", Indexer: terminatedIndex{}}),
	}}
}

// terminatedIndex orders usage records by TerminatedAt (UTC, fixed width,
// so the bytes sort as the times do), for pruning the oldest first.
type terminatedIndex struct{}

const indexTime = "20060102T150405.000000000"

func (terminatedIndex) FromObject(raw any) (bool, []byte, error) {
	u, ok := raw.(*UsageRecord)
	if !ok {
		return false, nil, fmt.Errorf("terminated index: %T is not a usage record", raw)
	}
	return true, []byte(u.TerminatedAt.UTC().Format(indexTime) + "\x00"), nil
}

func (terminatedIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("terminated index: one time, got %d args", len(args))
	}
	t, ok := args[0].(time.Time)
	if !ok {
		return nil, fmt.Errorf("terminated index: %T is not a time", args[0])
	}
	return []byte(t.UTC().Format(indexTime) + "\x00"), nil
}

// TableNames lists the tables Load reads, so a watcher can watch them.
func TableNames() []string { return []string{TableServers} }

// Load reads every server from txn in id order, including those deleted
// while their node was down (Hidden): the node agent filters by Host and
// tears down what is Want "deleted".
func Load(txn *memdb.Txn) ([]Server, error) {
	it, err := txn.Get(TableServers, "id")
	if err != nil {
		return nil, err
	}
	var out []Server
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, *raw.(*Server))
	}
	return out, nil
}

// BaremetalClass is the bare-metal resource class a flavor asks for, as
// Nova's flavors for Ironic do it: the extra spec
// resources:CUSTOM_<CLASS>=1 (the standard classes VCPU, MEMORY_MB and
// DISK_GB are set to 0 beside it). It returns "CUSTOM_<CLASS>", or ""
// for a flavor of virtual machines. A flavor naming more than one class
// returns the first in name order; server create refuses it.
func BaremetalClass(f *Flavor) string {
	classes := BaremetalClasses(f)
	if len(classes) == 0 {
		return ""
	}
	return classes[0]
}

// BaremetalClasses are all the custom resource classes a flavor asks one
// of, in name order.
func BaremetalClasses(f *Flavor) []string {
	var out []string
	for k, v := range f.ExtraSpecs {
		class, ok := strings.CutPrefix(k, "resources:")
		if ok && strings.HasPrefix(class, "CUSTOM_") && strings.TrimSpace(v) == "1" {
			out = append(out, class)
		}
	}
	slices.Sort(out)
	return out
}

var hostnameBad = regexp.MustCompile(`[^a-z0-9-]+`)

// Reimaging says whether s's rebuild in progress (RebuildSeq) writes an
// image over its boot volume.
func Reimaging(s *Server) bool {
	return s.BootVolume != "" && s.ReimageImage != "" && s.ReimageSeq == s.RebuildSeq
}

// Pinned is the zone s is held to, "" for none.
func Pinned(s *Server) string {
	if s.PinnedAZ == nil {
		return s.AZ
	}
	return *s.PinnedAZ
}

// Hostname is the hostname a server's guest gets (its config drive's and
// metadata service's): the one asked for, or its display name sanitized
// as Nova does it.
func Hostname(sv *Server) string {
	if sv.HostnameSet != "" {
		return sv.HostnameSet
	}
	h := hostnameBad.ReplaceAllString(strings.ToLower(strings.ReplaceAll(sv.Name, " ", "-")), "")
	h = strings.Trim(h, "-.")
	if len(h) > 63 {
		h = strings.Trim(h[:63], "-")
	}
	if h == "" {
		h = "server"
	}
	return h
}
