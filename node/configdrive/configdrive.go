// Package configdrive builds the OpenStack config drive a server boots
// with: an ISO9660 filesystem labelled config-2 holding
// openstack/latest/{meta_data.json, user_data, network_data.json,
// vendor_data.json}, laid out as Nova lays it out, so cloud-init and the
// test image read it unchanged. The ISO is written by genisoimage with
// Nova's own options.
package configdrive

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// Versions are the metadata versions written; each holds the same files.
var Versions = []string{"2013-10-17", "2017-02-22", "2018-08-27", "latest"}

// Server is what the drive tells the guest about itself.
type Server struct {
	UUID     string
	Name     string
	Hostname string
	Project  string
	AZ       string
	Keys     []Key
	Meta     map[string]string
	UserData []byte // decoded; nil: none
	NICs     []NIC
	// Files are injected files (Nova's personality): cloud-init writes
	// each to its path.
	Files []File
	// Devices are the tagged devices (Nova's device metadata), listed
	// as meta_data.json's "devices".
	Devices []Device
	// BlockDeviceMapping is Nova's EC2 block-device-mapping (ami, root,
	// ephemeral0, ..., swap → device): with it the drive has the EC2
	// tree's ec2/{2009-04-04,latest}/meta-data.json, as Nova's has.
	BlockDeviceMapping map[string]string
	// InstanceType is the flavor's name, for the EC2 tree.
	InstanceType string
}

// EC2Versions are the EC2 metadata versions written beside Versions.
var EC2Versions = []string{"2009-04-04", "latest"}

// Device is a tagged NIC or disk as meta_data.json's "devices" has it
// (Nova's NetworkInterfaceMetadata and DiskMetadata): its bus and
// address there ("" when unknown), a NIC's MAC, a disk's serial.
type Device struct {
	Type    string   `json:"type"` // "nic" or "disk"
	Bus     string   `json:"bus"`  // "pci"
	Address string   `json:"address,omitempty"`
	MAC     string   `json:"mac,omitempty"`
	Serial  string   `json:"serial,omitempty"`
	Tags    []string `json:"tags"`
}

// File is a file for the guest to write.
type File struct {
	Path string
	Data []byte
}

// Key is an SSH public key.
type Key struct {
	Name string
	Data string
}

// NIC is one of the server's ports.
type NIC struct {
	PortID    string
	NetworkID string
	MAC       string
	MTU       int
	Device    string // the tap on the host: the link id, as Nova names it
}

// Files returns the drive's content: path → bytes.
func Files(s Server) (map[string][]byte, error) {
	keys := map[string]string{}
	var keyList []map[string]string
	for _, k := range s.Keys {
		keys[k.Name] = k.Data
		keyList = append(keyList, map[string]string{"name": k.Name, "type": "ssh", "data": k.Data})
	}
	meta := s.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	md := map[string]any{
		"uuid":              s.UUID,
		"name":              s.Name,
		"hostname":          s.Hostname,
		"launch_index":      0,
		"availability_zone": s.AZ,
		"project_id":        s.Project,
		"meta":              meta,
		"devices":           []Device{},
	}
	if len(s.Devices) > 0 {
		md["devices"] = s.Devices
	}
	if len(keys) > 0 {
		md["public_keys"] = keys
		md["keys"] = keyList
	}
	// Injected files live once, in openstack/content/, and every version's
	// meta_data.json lists them, as Nova lays them out.
	files := map[string][]byte{}
	if len(s.Files) > 0 {
		var list []map[string]string
		for i, f := range s.Files {
			content := fmt.Sprintf("/content/%04d", i)
			files["openstack"+content] = f.Data
			list = append(list, map[string]string{"path": f.Path, "content_path": content})
		}
		md["files"] = list
	}
	mdJSON, err := json.Marshal(md)
	if err != nil {
		return nil, err
	}
	links, networks := []map[string]any{}, []map[string]any{}
	for i, n := range s.NICs {
		link := map[string]any{"id": n.Device, "vif_id": n.PortID, "type": "phy", "ethernet_mac_address": n.MAC}
		if n.MTU > 0 {
			link["mtu"] = n.MTU
		}
		links = append(links, link)
		networks = append(networks, map[string]any{
			"id": fmt.Sprintf("network%d", i), "type": "ipv4_dhcp", "link": n.Device, "network_id": n.NetworkID,
		})
	}
	ndJSON, err := json.Marshal(map[string]any{"links": links, "networks": networks, "services": []any{}})
	if err != nil {
		return nil, err
	}
	if s.BlockDeviceMapping != nil {
		ec2, err := json.Marshal(map[string]any{
			"instance-id": s.UUID, "hostname": s.Hostname, "local-hostname": s.Hostname, "instance-type": s.InstanceType,
			"ami-launch-index": 0, "placement": map[string]string{"availability-zone": s.AZ},
			"block-device-mapping": s.BlockDeviceMapping,
		})
		if err != nil {
			return nil, err
		}
		for _, v := range EC2Versions {
			files["ec2/"+v+"/meta-data.json"] = ec2
		}
	}
	for _, v := range Versions {
		dir := "openstack/" + v + "/"
		files[dir+"meta_data.json"] = mdJSON
		files[dir+"network_data.json"] = ndJSON
		files[dir+"vendor_data.json"] = []byte("{}")
		files[dir+"vendor_data2.json"] = []byte("{}")
		if s.UserData != nil {
			files[dir+"user_data"] = s.UserData
		}
	}
	return files, nil
}

// Build writes the drive for s to path (an ISO image), atomically.
func Build(ctx context.Context, path string, s Server) error {
	files, err := Files(s)
	if err != nil {
		return err
	}
	return BuildFiles(ctx, path, files)
}

// BuildFiles writes an ISO9660 config drive labelled config-2 to path
// holding files (by slash-separated path inside the drive), for a drive
// whose contents someone else chose (Ironic's configdrive dict).
func BuildFiles(ctx context.Context, path string, files map[string][]byte) error {
	tree, err := os.MkdirTemp(filepath.Dir(path), ".configdrive-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tree)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := filepath.Join(tree, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return err
		}
	}
	tmp := path + ".tmp"
	// Nova's options (nova/virt/configdrive.py).
	cmd := exec.CommandContext(ctx, "genisoimage", "-o", tmp, "-ldots", "-allow-lowercase", "-allow-multidot",
		"-l", "-publisher", "Rackstack", "-quiet", "-J", "-r", "-V", "config-2", tree)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("genisoimage: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return os.Rename(tmp, path)
}
