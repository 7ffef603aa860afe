// Package agentapi is the protocol between rack-agent (the program in the
// discovery/deploy ramdisk) and the provisioning node's HTTP server: the
// kernel command line the boot script gives the ramdisk, the paths the
// agent calls, and their bodies. It imports nothing of ours, so the agent
// binary links no Raft, no HTTP kit and no service.
//
// Every call carries the per-boot token from the kernel command line as
// "Authorization: Bearer TOKEN"; a token names one boot of one machine and
// nothing else, and the server answers 401 to any other.
//
// The conversation:
//
//  1. The agent inspects the machine and POSTs its Inventory to
//     PathInventory. For a discovery boot (unknown MAC) this enrols the
//     machine; for an inspection it records the inventory.
//  2. It then POSTs a Heartbeat to PathHeartbeat every HeartbeatEvery
//     (the answer's Interval, when set, overrides it). Each answer carries
//     the Command to run next: wait, clean, deploy or poweroff. The agent
//     keeps heartbeating while a command runs (Heartbeat.Running names it),
//     so long work stays alive; a node whose agent stops heartbeating is
//     failed by the conductor with last_error, never left waiting.
//  3. When a command ends, the agent POSTs a Result to PathResult.
//
// Image bytes come from PathImage (raw, already converted from qcow2 by
// the provisioning node) and the config drive from PathConfigDrive.
package agentapi

import "time"

// Kernel command-line parameters the boot script passes to the ramdisk.
const (
	// ArgURL is the base URL of the provisioning node's HTTP server,
	// "http://IP:PORT".
	ArgURL = "rackstack.url"
	// ArgToken is the per-boot token.
	ArgToken = "rackstack.token"
	// ArgMAC is the MAC the machine PXE-booted from (BOOTIF-style
	// "52:54:00:12:34:56").
	ArgMAC = "rackstack.mac"
)

// Paths on the provisioning HTTP server, relative to ArgURL.
const (
	PathInventory   = "/agent/v1/inventory"   // POST Inventory → InventoryReply
	PathHeartbeat   = "/agent/v1/heartbeat"   // POST Heartbeat → HeartbeatReply
	PathResult      = "/agent/v1/result"      // POST Result → 204
	PathImage       = "/agent/v1/image"       // GET: the raw image, Content-Length set
	PathConfigDrive = "/agent/v1/configdrive" // GET: the ISO9660 config drive
)

// HeartbeatEvery is how often the agent heartbeats unless told otherwise.
const HeartbeatEvery = 5 * time.Second

// Inventory is what the agent found, in Ironic's inventory format (the
// body of GET /v1/nodes/{node}/inventory under "inventory"), so Ironic
// tooling reads it unchanged.
type Inventory struct {
	Interfaces   []Interface  `json:"interfaces"`
	CPU          CPU          `json:"cpu"`
	Memory       Memory       `json:"memory"`
	Disks        []Disk       `json:"disks"`
	SystemVendor SystemVendor `json:"system_vendor"`
	Boot         Boot         `json:"boot"`
	BMCAddress   string       `json:"bmc_address,omitempty"`
	Hostname     string       `json:"hostname,omitempty"`
}

// Interface is one NIC.
type Interface struct {
	Name        string `json:"name"`
	MACAddress  string `json:"mac_address"`
	IPv4Address string `json:"ipv4_address,omitempty"`
	HasCarrier  bool   `json:"has_carrier"`
	SpeedMbps   int    `json:"speed_mbps,omitempty"`
	Driver      string `json:"driver,omitempty"`
}

// CPU is the processors.
type CPU struct {
	ModelName    string   `json:"model_name"`
	Frequency    string   `json:"frequency,omitempty"` // MHz
	Count        int      `json:"count"`               // logical CPUs
	Architecture string   `json:"architecture"`        // x86_64
	Flags        []string `json:"flags,omitempty"`
}

// Memory is RAM.
type Memory struct {
	Total      int64 `json:"total"`       // bytes, as the kernel sees it
	PhysicalMB int   `json:"physical_mb"` // installed, MiB
}

// Disk is one block device the agent could deploy to.
type Disk struct {
	Name       string `json:"name"` // /dev/vda
	Model      string `json:"model,omitempty"`
	Size       int64  `json:"size"` // bytes
	Rotational bool   `json:"rotational"`
	WWN        string `json:"wwn,omitempty"`
	Serial     string `json:"serial,omitempty"`
	Vendor     string `json:"vendor,omitempty"`
	ByPath     string `json:"by_path,omitempty"`
}

// SystemVendor is the DMI system information.
type SystemVendor struct {
	ProductName  string `json:"product_name"`
	SerialNumber string `json:"serial_number"`
	Manufacturer string `json:"manufacturer"`
	UUID         string `json:"uuid,omitempty"` // DMI system UUID
}

// Boot is how the machine booted this time.
type Boot struct {
	CurrentBootMode string `json:"current_boot_mode"` // bios, uefi
	PXEInterface    string `json:"pxe_interface"`     // the MAC it booted from
}

// InventoryReply answers a posted inventory.
type InventoryReply struct {
	// Node is the bare-metal node's UUID the machine is now (or already
	// was) enrolled as.
	Node string `json:"node"`
}

// Commands the conductor gives the agent in a HeartbeatReply.
const (
	OpWait     = "wait"     // nothing to do yet: heartbeat again
	OpClean    = "clean"    // erase the disks (CleanArgs)
	OpDeploy   = "deploy"   // write the image (DeployArgs)
	OpPowerOff = "poweroff" // done: power the machine off (inspection, discovery)
)

// Heartbeat tells the conductor the agent is alive and what it is doing.
type Heartbeat struct {
	// Running is the Op of the command in progress, "" when idle.
	Running string `json:"running,omitempty"`
	// CommandID echoes the Command being run.
	CommandID string `json:"command_id,omitempty"`
	// Progress is a free-form step ("writing image 512/1024 MiB").
	Progress string `json:"progress,omitempty"`
}

// HeartbeatReply carries the next command.
type HeartbeatReply struct {
	Command Command `json:"command"`
	// Interval, when set, is the heartbeat period the conductor wants.
	Interval Duration `json:"interval,omitempty"`
}

// Command is one unit of work for the agent. The agent runs a given
// CommandID once: a repeated command while it runs, or after it reported
// its Result, is not restarted.
type Command struct {
	ID     string      `json:"id,omitempty"`
	Op     string      `json:"op"`
	Clean  *CleanArgs  `json:"clean,omitempty"`
	Deploy *DeployArgs `json:"deploy,omitempty"`
}

// CleanArgs says how to erase.
type CleanArgs struct {
	// Disks are the devices to erase; empty means every disk in the
	// inventory.
	Disks []string `json:"disks,omitempty"`
	// Full overwrites every byte with zeroes; otherwise partition tables
	// and filesystem signatures are erased (the start and the end of the
	// disk and of every partition), as Ironic's metadata erase does.
	Full bool `json:"full,omitempty"`
}

// DeployArgs says what to write where.
type DeployArgs struct {
	// RootDisk is the device to write, chosen by the conductor from the
	// inventory ("/dev/vda").
	RootDisk string `json:"root_disk"`
	// ImageSize and ImageSHA256 describe the raw image PathImage serves;
	// the agent refuses to report success unless what it wrote hashes to
	// ImageSHA256.
	ImageSize   int64  `json:"image_size"`
	ImageSHA256 string `json:"image_sha256"`
	// ConfigDrive, when true, asks for the config drive from
	// PathConfigDrive written to a new partition labelled config-2 at the
	// end of RootDisk.
	ConfigDrive bool `json:"config_drive,omitempty"`
	// EraseMetadata asks for the partition tables and filesystem
	// signatures of every disk to be erased first (the deploy step
	// deploy.erase_devices_metadata before deploy.write_image).
	EraseMetadata bool `json:"erase_metadata,omitempty"`
}

// Result is how a command ended.
type Result struct {
	CommandID string `json:"command_id"`
	Op        string `json:"op"`
	OK        bool   `json:"ok"`
	// Error says what failed when !OK; it becomes the node's last_error.
	Error string `json:"error,omitempty"`
	// Message is a summary on success ("wrote 64 MiB to /dev/vda,
	// sha256 ok, config drive on /dev/vda2").
	Message string `json:"message,omitempty"`
}

// Duration is a time.Duration that travels as seconds.
type Duration float64

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(float64(d) * float64(time.Second)) }

// Seconds returns dur as a Duration.
func Seconds(dur time.Duration) Duration { return Duration(dur.Seconds()) }
