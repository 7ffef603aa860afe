package conductor

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/node/configdrive"
	"github.com/rackstack/rackstack/node/metadata"
	"github.com/rackstack/rackstack/provision/agentapi"
)

// rawImage is an image as the agent writes it: raw bytes, their size and
// SHA-256.
type rawImage struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func (c *Conductor) imagePath(id string) string {
	return filepath.Join(c.Dir, "images", filepath.Base(id)+".raw")
}

func (c *Conductor) configDrivePath(node string) string {
	return filepath.Join(c.Dir, "configdrives", filepath.Base(node)+".iso")
}

// rawImage returns the cached raw form of image id, fetching it (checked
// against the image's hashes) and converting a qcow2 with qemu-img once;
// the SHA-256 is computed once and kept beside it.
func (c *Conductor) rawImage(ctx context.Context, id string) (rawImage, error) {
	// Deploys of one image wait for its one conversion; other images'
	// deploys do not.
	mu := c.imageLock(id)
	mu.Lock()
	defer mu.Unlock()
	path := c.imagePath(id)
	var img rawImage
	if raw, err := os.ReadFile(path + ".json"); err == nil && json.Unmarshal(raw, &img) == nil {
		if st, err := os.Stat(path); err == nil && st.Size() == img.Size {
			return img, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return img, err
	}
	rc, meta, err := c.Images.Open(ctx, id)
	if err != nil {
		return img, err
	}
	defer rc.Close()
	part := path + ".part"
	defer os.Remove(part)
	if err := fetch(rc, part, meta.Size, meta.HashValue, meta.Checksum); err != nil {
		return img, err
	}
	tmp := path + ".tmp"
	defer os.Remove(tmp)
	switch meta.DiskFormat {
	case "qcow2":
		out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", part, tmp).CombinedOutput()
		if err != nil {
			return img, fmt.Errorf("qemu-img convert: %v: %s", err, strings.TrimSpace(string(out)))
		}
	case "raw", "":
		if err := os.Rename(part, tmp); err != nil {
			return img, err
		}
	default:
		return img, fmt.Errorf("disk format %s cannot be written to bare metal (want raw or qcow2)", meta.DiskFormat)
	}
	f, err := os.Open(tmp)
	if err != nil {
		return img, err
	}
	sum := sha256.New()
	img.Size, err = io.Copy(sum, f)
	f.Close()
	if err != nil {
		return img, fmt.Errorf("hash %s: %w", tmp, err)
	}
	img.SHA256 = hex.EncodeToString(sum.Sum(nil))
	if err := os.Rename(tmp, path); err != nil {
		return img, err
	}
	raw, _ := json.Marshal(img)
	if err := os.WriteFile(path+".json", raw, 0o600); err != nil {
		return img, err
	}
	c.log().Info("conductor: image prepared", "image", id, "format", meta.DiskFormat, "raw_bytes", img.Size)
	return img, nil
}

func (c *Conductor) imageLock(id string) *sync.Mutex {
	c.imageMu.Lock()
	defer c.imageMu.Unlock()
	if c.imageLocks == nil {
		c.imageLocks = map[string]*sync.Mutex{}
	}
	mu := c.imageLocks[id]
	if mu == nil {
		mu = &sync.Mutex{}
		c.imageLocks[id] = mu
	}
	return mu
}

// fetch streams r into path, checking the size and the image's hashes.
func fetch(r io.Reader, path string, size int64, sha512Hex, md5Hex string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	sha, sum := sha512.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(f, sha, sum), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return fmt.Errorf("fetch image: %w", err)
	case size > 0 && n != size:
		return fmt.Errorf("fetched %d bytes, the image has %d", n, size)
	case sha512Hex != "" && hex.EncodeToString(sha.Sum(nil)) != sha512Hex:
		return errors.New("fetched bytes do not match the image's sha512")
	case md5Hex != "" && hex.EncodeToString(sum.Sum(nil)) != md5Hex:
		return errors.New("fetched bytes do not match the image's MD5 checksum")
	}
	return nil
}

// buildConfigDrive writes the config drive of the server deployed on a
// node, as the servers agent builds it for a VM (without NICs: a bare
// metal server's addresses come from the provisioning network's DHCP).
func (c *Conductor) buildConfigDrive(ctx context.Context, node string, s computestate.Server) error {
	path := c.configDrivePath(node)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	cd := metadata.Describe(s)
	return configdrive.Build(ctx, path, cd)
}

// maxConfigDrive bounds a config drive given through instance_info (the
// agent buffers it; Ironic's own limit is 64 MiB).
const maxConfigDrive = 64 << 20

// instanceConfigDrive writes the config drive given with the deploy
// through Ironic's API (instance_info configdrive), in each form Ironic
// takes: a dict of meta_data, network_data, user_data and vendor_data
// built into a config-2 drive here; a gzipped, base64-encoded ISO; or
// the URL of one.
func (c *Conductor) instanceConfigDrive(ctx context.Context, n *bmstate.Node, v any) error {
	path := c.configDrivePath(n.ID)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	switch v := v.(type) {
	case map[string]any:
		files, err := configDriveFiles(n, v)
		if err != nil {
			return err
		}
		return configdrive.BuildFiles(ctx, path, files)
	case string:
		if strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://") {
			got, err := fetchConfigDrive(ctx, v)
			if err != nil {
				return err
			}
			v = got
		}
		iso, err := decodeConfigDrive(v)
		if err != nil {
			return err
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, iso, 0o600); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	return fmt.Errorf("configdrive: want a JSON object, a gzipped base64 ISO or a URL, got %T", v)
}

// configDriveFiles lays Ironic's configdrive dict out as a config-2
// drive, as Ironic does (openstacksdk's configdrive.build): meta_data
// gets the node's uuid and name when it has none.
func configDriveFiles(n *bmstate.Node, d map[string]any) (map[string][]byte, error) {
	meta := map[string]any{}
	if m, ok := d["meta_data"].(map[string]any); ok {
		for k, v := range m {
			meta[k] = v
		}
	}
	if _, ok := meta["uuid"]; !ok {
		id := n.InstanceUUID
		if id == "" {
			id = n.ID
		}
		meta["uuid"] = id
	}
	if _, ok := meta["name"]; !ok && n.Name != "" {
		meta["name"] = n.Name
	}
	mdJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("configdrive: meta_data: %w", err)
	}
	var userData []byte
	switch u := d["user_data"].(type) {
	case nil:
	case string:
		userData = []byte(u)
	default: // a dict or list is written as JSON, as Ironic does
		if userData, err = json.Marshal(u); err != nil {
			return nil, fmt.Errorf("configdrive: user_data: %w", err)
		}
	}
	files := map[string][]byte{}
	for _, ver := range configdrive.Versions {
		dir := "openstack/" + ver + "/"
		files[dir+"meta_data.json"] = mdJSON
		if nd, ok := d["network_data"]; ok && nd != nil {
			raw, err := json.Marshal(nd)
			if err != nil {
				return nil, fmt.Errorf("configdrive: network_data: %w", err)
			}
			files[dir+"network_data.json"] = raw
		}
		if vd, ok := d["vendor_data"]; ok && vd != nil {
			raw, err := json.Marshal(vd)
			if err != nil {
				return nil, fmt.Errorf("configdrive: vendor_data: %w", err)
			}
			files[dir+"vendor_data2.json"] = raw
		}
		if userData != nil {
			files[dir+"user_data"] = userData
		}
	}
	return files, nil
}

// decodeConfigDrive turns Ironic's string form — base64 of a gzipped
// ISO — into the ISO.
func decodeConfigDrive(s string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("configdrive: not base64: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("configdrive: not gzipped: %w", err)
	}
	iso, err := io.ReadAll(io.LimitReader(zr, maxConfigDrive+1))
	if err != nil {
		return nil, fmt.Errorf("configdrive: gunzip: %w", err)
	}
	if len(iso) > maxConfigDrive {
		return nil, fmt.Errorf("configdrive: larger than %d bytes", maxConfigDrive)
	}
	return iso, nil
}

// fetchConfigDrive downloads a config drive given by URL (its body in
// the string form).
func fetchConfigDrive(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("configdrive: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch configdrive: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch configdrive %s: %s", url, resp.Status)
	}
	// base64 makes 4 bytes of 3, and the ISO is gzipped: this bound is
	// loose and only stops an endless body.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 2*maxConfigDrive))
	if err != nil {
		return "", fmt.Errorf("fetch configdrive: %w", err)
	}
	return string(body), nil
}

const gib = 1 << 30

// configDriveRoom is what the agent needs at the end of the root disk for
// the config drive partition.
const configDriveRoom = 64 << 20

// rootDisk picks the disk to deploy to: the root_device hint's name when
// the node has one, else Ironic's default — the smallest disk of at
// least 4 GiB — falling back to the smallest disk the image fits on.
func rootDisk(n *bmstate.Node, imageSize int64) (string, error) {
	if n.Inventory == nil || len(n.Inventory.Disks) == 0 {
		return "", fmt.Errorf("node %s has no disks in its inventory to deploy to", n.ID)
	}
	if hint, ok := n.Properties["root_device"].(map[string]any); ok {
		if name, _ := hint["name"].(string); name != "" {
			for _, d := range n.Inventory.Disks {
				if d.Name == name {
					return d.Name, nil
				}
			}
			return "", fmt.Errorf("root_device hint: node %s has no disk %s", n.ID, name)
		}
	}
	disks := slices.Clone(n.Inventory.Disks)
	slices.SortStableFunc(disks, func(a, b agentapi.Disk) int {
		switch {
		case a.Size < b.Size:
			return -1
		case a.Size > b.Size:
			return 1
		}
		return 0
	})
	need := imageSize + configDriveRoom
	for _, min := range []int64{max(need, 4*gib), need} {
		for _, d := range disks {
			if d.Size >= min {
				return d.Name, nil
			}
		}
	}
	return "", fmt.Errorf("no disk of node %s holds the %d-byte image and a config drive", n.ID, imageSize)
}

// setProperties fills Ironic's scheduling properties from an inventory,
// as ironic-inspector does.
func setProperties(n *bmstate.Node, inv *agentapi.Inventory) {
	if n.Properties == nil {
		n.Properties = map[string]any{}
	}
	if inv.CPU.Count > 0 {
		n.Properties["cpus"] = inv.CPU.Count
	}
	if inv.CPU.Architecture != "" {
		n.Properties["cpu_arch"] = inv.CPU.Architecture
	}
	mb := int64(inv.Memory.PhysicalMB)
	if mb == 0 {
		mb = inv.Memory.Total >> 20
	}
	if mb > 0 {
		n.Properties["memory_mb"] = mb
	}
	if d := defaultRoot(inv); d != nil {
		n.Properties["local_gb"] = d.Size / gib
	}
	if inv.Boot.CurrentBootMode != "" {
		n.Properties["capabilities"] = "boot_mode:" + inv.Boot.CurrentBootMode
	}
}

// defaultRoot is the disk local_gb describes: the smallest of at least
// 4 GiB, else the largest.
func defaultRoot(inv *agentapi.Inventory) *agentapi.Disk {
	var best *agentapi.Disk
	for i := range inv.Disks {
		d := &inv.Disks[i]
		if d.Size >= 4*gib && (best == nil || best.Size < 4*gib || d.Size < best.Size) {
			best = d
		} else if best == nil || (best.Size < 4*gib && d.Size > best.Size) {
			best = d
		}
	}
	return best
}

// summary is an inventory in one line, for history and logs.
func summary(inv *agentapi.Inventory) string {
	var disk int64
	for _, d := range inv.Disks {
		disk += d.Size
	}
	return fmt.Sprintf("%d CPUs (%s), %d MiB, %d disks (%d GiB), %d NICs",
		inv.CPU.Count, inv.CPU.Architecture, max(int64(inv.Memory.PhysicalMB), inv.Memory.Total>>20), len(inv.Disks), disk/gib, len(inv.Interfaces))
}
