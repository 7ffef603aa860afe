package compute

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Rebuild (Nova's rebuild): the server keeps its id, ports, addresses
// and attached volumes and gets a new root disk from the (new) image and
// a config drive rebuilt from the server as it is then. A virtual
// machine's node agent stops the guest, replaces its root disk and boots
// it again; a bare-metal server's node is deployed again (active →
// deploying → active, its disk rewritten by the agent). Either way the
// server shows REBUILD until its node reports it ACTIVE with the
// rebuild's number (Server.RebuildSeq).

// rebuildFields are the rebuild arguments taken: Nova's, less
// personality (files the config drive would carry; Nova's before 2.57).
// adminPass is taken as a create takes it: answered back, as Nova
// answers it with enable_instance_password. description is Nova's from
// 2.19, key_name from 2.54, user_data from 2.57 (personality before it):
// the config drive the rebuild builds from the server as it is then
// carries the new ones.
var rebuildFields = []string{"imageRef", "name", "metadata", "preserve_ephemeral", "adminPass", "OS-DCF:diskConfig",
	"accessIPv4", "accessIPv6"}

func (s *Service) rebuild(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, "os_compute_api:servers:rebuild")
	if err != nil {
		return err
	}
	m, ok := arg.(map[string]any)
	if !ok {
		return badField("rebuild", arg, "%s is not of type 'object'", api.Text(arg))
	}
	fields := slices.Clip(rebuildFields)
	if !atLeast(r, 57) {
		fields = append(fields, "personality") // user_data from 2.57 replaces it
	}
	for _, v := range []struct {
		min   int
		field string
	}{{19, "description"}, {54, "key_name"}, {57, "user_data"}, {90, "hostname"}} {
		if atLeast(r, v.min) {
			fields = append(fields, v.field)
		}
	}
	for k := range m {
		if !slices.Contains(fields, k) {
			return badField(k, m[k], "Rebuilding a server takes only %s: %s is not supported.", strings.Join(fields, ", "), k)
		}
	}
	keep, _ := m["preserve_ephemeral"].(bool)
	if keep && len(sv.LocalDisks) == 0 {
		return badField("preserve_ephemeral", m["preserve_ephemeral"], "Server %s has no ephemeral disk to preserve: the rebuild replaces the root disk.", sv.ID)
	}
	if sv.BootVolume != "" && !atLeast(r, 93) {
		// Nova before microversion 2.93 refuses it too: the root disk is
		// a volume, which only 2.93's rebuild reimages.
		return badRequest("Rebuilding server %s is not supported: it boots from volume %s, and only an image-backed root disk is rebuilt before microversion 2.93.", sv.ID, sv.BootVolume)
	}
	ref, _ := m["imageRef"].(string)
	c := serverRebuildCmd{ID: sv.ID, UserID: principal(r).UserID, RequestID: requestID(r.Context()), Now: s.now(), PreserveEphemeral: keep}
	target := *sv
	flavor := sv.Flavor
	if sv.BootVolume != "" {
		// The boot volume's size bounds the image, not the flavor's disk.
		size, err := s.bootVolumeSize(r, sv)
		if err != nil {
			return err
		}
		flavor.Disk = size
	}
	img, err := s.resolveImage(r.Context(), principal(r), ref, &flavor, &target)
	if err != nil {
		if sv.BootVolume != "" && strings.Contains(err.Error(), "Flavor's disk is too small") {
			// Nova's VolumeSmallerThanMinDisk.
			full, _ := s.cfg.Images.Get(r.Context(), principal(r), target.ImageID)
			return badRequest("Volume is smaller than the minimum size specified in image metadata. Volume size is %d bytes, minimum size is %d bytes.",
				int64(flavor.Disk)<<30, max(int64(full.MinDisk)<<30, full.Size))
		}
		return err
	}
	c.ImageID, c.RootGB, c.DiskFormat = target.ImageID, target.RootGB, img.DiskFormat
	if sv.BootVolume != "" {
		c.Reimage, c.RootGB = true, sv.RootGB
	}
	if v, ok := m["name"]; ok {
		name, isStr := v.(string)
		if !isStr || strings.TrimSpace(name) == "" || len(name) > 255 {
			return badField("name", v, "The name must be 1 to 255 characters, not only spaces.")
		}
		c.Name = &name
	}
	if v, ok := m["metadata"]; ok {
		md, isObj := v.(map[string]any)
		if !isObj {
			return badField("metadata", v, "%s is not of type 'object'", api.Text(v))
		}
		meta := map[string]string{}
		for k, x := range md {
			text, isStr := x.(string)
			if !isStr || k == "" || len(k) > 255 || len(text) > 255 {
				return badField("metadata", v, "Metadata keys and values must be strings of at most 255 characters.")
			}
			meta[k] = text
		}
		c.Metadata = meta
	}
	pass, err := readRebuildAttrs(m, &c)
	if err != nil {
		return err
	}
	hin := newInput(m)
	if c.Hostname = readHostname(r, hin); hin.Err != nil {
		return hin.Err
	}
	if err := s.readRebuildGuestData(r, m, &c); err != nil {
		return err
	}
	if _, ok := m["personality"]; ok {
		pin := newInput(m)
		files := readPersonality(pin)
		if pin.Err != nil {
			return pin.Err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		if err := checkPersonality(tx, sv.Project, files); err != nil {
			return err
		}
		c.Personality = &files
	}
	var out Server
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerRebuild, c, &out); err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	// Before 2.75 Nova answers a rebuild without the extended
	// attributes (OS-EXT-*, key_name, security_groups, ...), as an
	// update; from it as a show.
	view := s.serverView(r, tx, &out, true)
	// The user data is answered as user_data from 2.57 (below), never
	// as the admin's OS-EXT-SRV-ATTR:user_data: Nova's rebuild view is
	// built with show_user_data=False.
	delete(view, "OS-EXT-SRV-ATTR:user_data")
	view["adminPass"] = pass
	// Nova's rebuild answer names the key from 2.54 and the user data
	// from 2.57, the attributes those versions let it change.
	if atLeast(r, 54) {
		view["key_name"] = orNil(out.KeyName)
	}
	if atLeast(r, 57) {
		view["user_data"] = orNil(out.UserData)
	}
	api.JSON(w, http.StatusAccepted, map[string]any{"server": view})
	return nil
}

// readRebuildAttrs reads the server attributes a rebuild may set besides
// its name and metadata (access addresses, disk config, description)
// into c, and the admin password: the one asked for, or one made up.
func readRebuildAttrs(m map[string]any, c *serverRebuildCmd) (pass string, err error) {
	in := newInput(m)
	readChangedAttrs(in, &c.AccessIPv4, &c.AccessIPv6, &c.DiskConfig, &c.Description)
	pass = str(in, "adminPass", false, 0, 0)
	if in.Err != nil {
		return "", in.Err
	}
	if pass == "" {
		pass = randomText(12)
	}
	return pass, nil
}

// readRebuildGuestData reads key_name (2.54: the caller's keypair, null
// for none) and user_data (2.57: base64, null for none) into c, as
// Nova's rebuild replaces them.
func (s *Service) readRebuildGuestData(r *http.Request, m map[string]any, c *serverRebuildCmd) error {
	in := newInput(m)
	if in.Has("key_name") {
		name := optStr(in, "key_name", 255)
		if in.Err != nil {
			return in.Err
		}
		pub := ""
		if name != "" {
			tx, err := s.cfg.Repl.Read(r.Context())
			if err != nil {
				return err
			}
			k := store.Get[Keypair](tx, tKeypairs, principal(r).UserID+"/"+name)
			if k == nil {
				return badField("key_name", name, "Invalid key_name provided.")
			}
			pub = k.PublicKey
		}
		c.KeyName, c.PublicKey = &name, &pub
	}
	if in.Has("user_data") {
		ud := optStr(in, "user_data", maxUserData)
		if in.Err != nil {
			return in.Err
		}
		if _, err := base64.StdEncoding.DecodeString(ud); err != nil {
			return badField("user_data", ud, "User data needs to be valid base 64.")
		}
		c.UserData = &ud
	}
	return nil
}

// serverRebuildCmd rebuilds a server with ImageID.
type serverRebuildCmd struct {
	ID         string            `json:"id"`
	ImageID    string            `json:"image_id"`
	RootGB     int               `json:"root_gb"`
	DiskFormat string            `json:"disk_format,omitempty"`
	Name       *string           `json:"name,omitempty"`
	Hostname   *string           `json:"hostname,omitempty"`
	Metadata   map[string]string `json:"metadata,omitempty"`
	// Reimage: ImageID is written over the boot volume (2.93), which the
	// server's node asks for once its guest is off (ReimageBootVolume).
	Reimage bool `json:"reimage,omitempty"`
	// PreserveEphemeral keeps the server's ephemeral disks as they are;
	// without it its node makes them anew.
	PreserveEphemeral bool `json:"preserve_ephemeral,omitempty"`
	// AccessIPv4, AccessIPv6, DiskConfig and Description, when set,
	// replace the server's.
	AccessIPv4  *string `json:"access_ipv4,omitempty"`
	AccessIPv6  *string `json:"access_ipv6,omitempty"`
	DiskConfig  *string `json:"disk_config,omitempty"`
	Description *string `json:"description,omitempty"`
	// KeyName and PublicKey (2.54) and UserData (2.57), when set,
	// replace the server's ("" unsets them).
	KeyName   *string `json:"key_name,omitempty"`
	PublicKey *string `json:"public_key,omitempty"`
	UserData  *string `json:"user_data,omitempty"`
	// Personality (before 2.57), when set, replaces the files the config
	// drive injects.
	Personality *[]File   `json:"personality,omitempty"`
	UserID      string    `json:"user_id"`
	RequestID   string    `json:"request_id"`
	Now         time.Time `json:"now"`
}

// applyServerRebuild moves the server to REBUILD (and a bare-metal
// server's node to deploying with the new image) in one transaction: the
// node agent or conductor rebuilds it and reports the server ACTIVE with
// the rebuild's number.
func applyServerRebuild(tx *memdb.Txn, c serverRebuildCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if old.BootVolume != "" && !c.Reimage {
		return nil, store.Invalidf("Rebuilding server %s is not supported: it boots from volume %s.", c.ID, old.BootVolume)
	}
	if old.Baremetal == "" && old.Host == "" {
		// It never found a place (ERROR without a host): nothing runs it.
		return nil, conflict("Cannot 'rebuild' instance %s: it was never placed on a host.", c.ID)
	}
	if !slices.Contains([]string{vmActive, vmStopped, vmError}, old.VMState) {
		return nil, stateConflict("rebuild", c.ID, "vm_state", old.VMState)
	}
	if old.TaskState != "" {
		return nil, stateConflict("rebuild", c.ID, "task_state", old.TaskState)
	}
	if old.Baremetal != "" {
		info := map[string]any{"image_source": c.ImageID, "root_gb": c.RootGB}
		if c.DiskFormat != "" {
			info["image_disk_format"] = c.DiskFormat
		}
		if _, err := bmstate.Rebuild(tx, c.ID, info, c.Now); err != nil {
			return nil, err
		}
	}
	s := *old
	if c.Reimage {
		s.ReimageImage = c.ImageID // the server still shows no image
	} else {
		s.ImageID, s.RootGB = c.ImageID, c.RootGB
	}
	set(&s.HostnameSet, c.Hostname)
	if c.Name != nil {
		s.Name = *c.Name
	}
	if c.Metadata != nil {
		s.Metadata = c.Metadata
	}
	set(&s.AccessIPv4, c.AccessIPv4)
	set(&s.AccessIPv6, c.AccessIPv6)
	set(&s.DiskConfig, c.DiskConfig)
	set(&s.Description, c.Description)
	set(&s.KeyName, c.KeyName)
	set(&s.PublicKey, c.PublicKey)
	set(&s.UserData, c.UserData)
	if c.Personality != nil {
		s.Personality = *c.Personality
	}
	s.RebuildSeq++
	s.PreserveEphemeral = c.PreserveEphemeral
	if c.Reimage {
		s.ReimageSeq = s.RebuildSeq
	}
	// The node boots the rebuilt guest; a server that was stopped is
	// stopped again once it is rebuilt (applyServerReport), as Nova
	// powers a rebuilt stopped instance off.
	s.StopAfterRebuild = old.VMState == vmStopped
	s.Want = "active"
	// A fault from before (an ERROR rebuilt) stays until the rebuild
	// ends, as Nova keeps it until the instance is ACTIVE again.
	setState(&s, s.VMState, "rebuilding")
	s.Updated = c.Now
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	if err := tx.Insert(tActions, &Action{ID: s.ID + "/" + c.RequestID, ServerID: s.ID, Project: s.Project, UserID: c.UserID,
		Action: "rebuild", RequestID: c.RequestID, Start: c.Now}); err != nil {
		return nil, err
	}
	return s, nil
}
