package compute

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sort"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/revert"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
)

// Server create: read the request in named steps, resolve what it names
// (flavor, image, key, group, networks), make the ports, and propose the
// servers, which the apply places and counts against the quota.

// parseServer reads a create request and resolves it against the state
// and the image and network services, in the order Nova checks them.
func (s *Service) parseServer(ctx context.Context, tx *memdb.Txn, r *http.Request) (*serverRequest, error) {
	req, err := s.readServerRequest(r)
	if err != nil {
		return nil, err
	}
	p := principal(r)
	if err := s.resolveZone(ctx, tx, p, req); err != nil {
		return nil, err
	}
	sv := &req.tmpl
	pinned := sv.AZ // the zone asked for, or none
	sv.PinnedAZ = &pinned
	if sv.UserData != "" {
		if _, err := base64.StdEncoding.DecodeString(sv.UserData); err != nil {
			return nil, badRequest("User data needs to be valid base 64.")
		}
	}
	if limit := quotaLimit(tx, p.ProjectID, "metadata_items"); limit >= 0 && len(sv.Metadata) > limit {
		return nil, overQuota("Quota exceeded for metadata_items: Requested %d, but already used 0 of %d metadata_items", len(sv.Metadata), limit)
	}
	if err := checkPersonality(tx, p.ProjectID, sv.Personality); err != nil {
		return nil, err
	}
	f, err := resolveFlavor(tx, p, req.flavorRef, sv)
	if err != nil {
		return nil, err
	}
	if req.boot == nil && req.imageRef != "" {
		if err := s.imageMappings(ctx, p, req); err != nil {
			return nil, err
		}
	}
	var img ImageInfo
	if req.boot != nil {
		err = s.resolveBootVolume(ctx, tx, r, req)
	} else {
		img, err = s.resolveImage(ctx, p, req.imageRef, f, sv)
	}
	if err != nil {
		return nil, err
	}
	if err := resolveBaremetal(req, f, img); err != nil {
		return nil, err
	}
	if req.baremetal != nil && req.boot != nil {
		return nil, badRequest("Bare-metal servers cannot boot from volumes.")
	}
	if err := resolveLocalDisks(req, f, sv); err != nil {
		return nil, err
	}
	if err := s.resolveDataVolumes(ctx, tx, p, req); err != nil {
		return nil, err
	}
	if err := resolveKeyAndGroup(tx, p, sv); err != nil {
		return nil, err
	}
	sv.SecurityGroups = req.groupNames
	if len(sv.SecurityGroups) == 0 {
		sv.SecurityGroups = []string{"default"}
	}
	if req.baremetal != nil {
		// Bare-metal nodes are not in aggregates: such a server is in
		// the service's zone.
		sv.AZ = cmp.Or(sv.AZ, s.cfg.AZ)
		// A bare-metal server has no Neutron port: its NIC is cabled to
		// the provisioning network, where it gets its address.
		req.nics = nil
		return req, nil
	}
	if err := s.resolveNetworks(ctx, r, p, req); err != nil {
		return nil, err
	}
	return req, nil
}

// resolveZone checks the availability zone: one of the nodes' zones (or
// the service's), or for admins "zone:host" to force a host. The server
// asks for that zone; with none it goes to any node and takes that
// node's zone when placed (see place).
func (s *Service) resolveZone(ctx context.Context, tx *memdb.Txn, p *api.Principal, req *serverRequest) error {
	if req.az == "" {
		return nil
	}
	zone, host, _ := strings.Cut(req.az, ":")
	host, _, _ = strings.Cut(host, ":")
	if zone != "" {
		known, err := s.zoneKnown(ctx, tx, zone)
		if err != nil {
			return err
		}
		if !known {
			return badRequest("The requested availability zone is not available")
		}
		req.tmpl.AZ = zone
	}
	if host != "" {
		if !p.IsAdmin() {
			return policyDenied("os_compute_api:servers:create:forced_host")
		}
		req.forceHost = host
	}
	return nil
}

// zoneKnown says whether a server may ask for zone: the zone of one of
// the nodes (the service's own before there is any).
func (s *Service) zoneKnown(ctx context.Context, tx *memdb.Txn, zone string) (bool, error) {
	if s.cfg.Hosts == nil {
		return zone == s.cfg.AZ, nil
	}
	hs, err := s.cfg.Hosts.Hosts(ctx)
	if err != nil {
		return false, fmt.Errorf("list hosts: %w", err)
	}
	if len(hs) == 0 {
		return zone == s.cfg.AZ, nil
	}
	for _, h := range hs {
		if s.hostAZ(tx, h) == zone {
			return true, nil
		}
	}
	return false, nil
}

// resolveFlavor copies the flavor the caller may use into the server.
func resolveFlavor(tx *memdb.Txn, p *api.Principal, ref string, sv *Server) (*Flavor, error) {
	f, err := visibleFlavor(tx, p, refID(ref))
	if err != nil {
		return nil, badRequest("Flavor %s could not be found.", refID(ref))
	}
	sv.Flavor = *f
	sv.Flavor.ExtraSpecs = maps(f.ExtraSpecs)
	sv.RootGB = f.Disk
	return f, nil
}

// resolveImage checks the image is active and fits the flavor; a flavor
// without a root disk size takes the image's.
func (s *Service) resolveImage(ctx context.Context, p *api.Principal, ref string, f *Flavor, sv *Server) (ImageInfo, error) {
	if ref == "" {
		return ImageInfo{}, badRequest("Missing imageRef attribute")
	}
	sv.ImageID = refID(ref)
	if !uuidPattern.MatchString(sv.ImageID) {
		return ImageInfo{}, badRequest("Invalid imageRef provided.")
	}
	if s.cfg.Images == nil {
		return ImageInfo{}, badRequest("Image %s could not be found.", sv.ImageID)
	}
	img, err := s.cfg.Images.Get(ctx, p, sv.ImageID)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, api.ErrNotFound) || api.StatusOf(err) == http.StatusNotFound:
		return ImageInfo{}, badRequest("Image %s could not be found.", sv.ImageID)
	case err != nil:
		return ImageInfo{}, err
	case !strings.EqualFold(img.Status, "active"):
		return ImageInfo{}, badRequest("Image %s is not active.", sv.ImageID)
	case img.MinRAM > f.RAM:
		return ImageInfo{}, badRequest("Flavor's memory is too small for requested image.")
	case f.Disk > 0 && img.MinDisk > f.Disk:
		return ImageInfo{}, badRequest("Flavor's disk is too small for requested image.")
	case f.Disk > 0 && img.Size > int64(f.Disk)<<30:
		return ImageInfo{}, badRequest("Flavor's disk is too small for requested image.")
	}
	if f.Disk == 0 {
		sv.RootGB = max(img.MinDisk, int((img.Size+(1<<30)-1)>>30), 1)
	}
	return img, nil
}

// tenantNetworksOnBaremetal is why a bare-metal server takes no
// networks: plugging a machine into a tenant network means configuring
// the switch port it is cabled to, which this cloud does not do.
const tenantNetworksOnBaremetal = "Tenant networks on bare-metal servers are not supported: they need switch configuration (out of scope); the server gets an address on the provisioning network."

// resolveBaremetal recognises a bare-metal flavor (computestate's
// BaremetalClass) and prepares what the apply's claim of a node records
// in the node's instance_info, as Nova's Ironic driver fills it.
func resolveBaremetal(req *serverRequest, f *Flavor, img ImageInfo) error {
	classes := computestate.BaremetalClasses(f)
	switch {
	case len(classes) == 0:
		return nil
	case len(classes) > 1:
		return badRequest("Flavor %s asks for more than one bare-metal resource class (%s): a server takes one node.", f.ID, strings.Join(classes, ", "))
	case len(req.nics) > 0:
		return badField("networks", req.networksValue, "%s", tenantNetworksOnBaremetal)
	}
	info := map[string]any{"image_source": req.tmpl.ImageID, "root_gb": req.tmpl.RootGB, "configdrive": true}
	if img.DiskFormat != "" {
		info["image_disk_format"] = img.DiskFormat
	}
	caps := map[string]any{}
	for k, v := range f.ExtraSpecs {
		if name, ok := strings.CutPrefix(k, "capabilities:"); ok && name != "" {
			caps[name] = v
		}
	}
	if len(caps) > 0 {
		info["capabilities"] = caps
	}
	// Required traits pick the node and select its deploy templates, as
	// Nova's Ironic driver passes them in instance_info.traits.
	var traits []string
	for k, v := range f.ExtraSpecs {
		if name, ok := strings.CutPrefix(k, "trait:"); ok && name != "" && v == "required" {
			traits = append(traits, name)
		}
	}
	if len(traits) > 0 {
		sort.Strings(traits) // the command is the same on every replica
		list := make([]any, len(traits))
		for i, t := range traits {
			list[i] = t
		}
		info["traits"] = list
	}
	req.baremetal = &baremetalClaim{Class: classes[0], Info: info}
	return nil
}

// resolveKeyAndGroup copies the named key into the server and checks the
// server group is one the caller may see.
func resolveKeyAndGroup(tx *memdb.Txn, p *api.Principal, sv *Server) error {
	if sv.KeyName != "" {
		k := store.Get[Keypair](tx, tKeypairs, p.UserID+"/"+sv.KeyName)
		if k == nil {
			return badRequest("Invalid key_name provided.")
		}
		sv.PublicKey = k.PublicKey
	}
	if sv.Group != "" {
		g := store.Get[ServerGroup](tx, tGroups, sv.Group)
		if g == nil || !p.CanRead(g.Project) {
			return badRequest("Invalid input for field/attribute group. Value: %s. Instance group %s could not be found.", sv.Group, sv.Group)
		}
	}
	return nil
}

// resolveNetworks picks the network when the request leaves it to the
// service (the one the project may use, as Nova picks it) and checks
// every named network and port.
func (s *Service) resolveNetworks(ctx context.Context, r *http.Request, p *api.Principal, req *serverRequest) error {
	if req.nics == nil && s.cfg.Ports != nil {
		nets, err := s.cfg.Ports.Networks(ctx, p)
		if err != nil {
			return err
		}
		switch len(nets) {
		case 0:
			// From 2.37 nics is nil only for "auto".
			if atLeast(r, 37) {
				nic, err := s.autoNetwork(ctx, p)
				if err != nil {
					return err
				}
				req.nics = []requestedNIC{nic}
			}
		case 1:
			req.nics = []requestedNIC{{NetworkID: nets[0].ID}}
		default:
			return conflict("Multiple possible networks found, use a Network ID to be more specific.")
		}
	}
	for _, nic := range req.nics {
		if err := s.checkNIC(ctx, p, nic); err != nil {
			return err
		}
	}
	if req.count > 1 {
		for _, nic := range req.nics {
			if nic.PortID != "" || nic.FixedIP != "" {
				return badRequest("Unable to launch multiple instances with a single configured port ID or fixed IP. Please launch your instance one by one with different ports.")
			}
		}
	}
	return nil
}

// checkNIC checks that a NIC's network exists for the caller, or that its
// port does and is free.
func (s *Service) checkNIC(ctx context.Context, p *api.Principal, nic requestedNIC) error {
	if s.cfg.Ports == nil {
		if nic.PortID != "" {
			return badRequest("Port id %s could not be found.", nic.PortID)
		}
		return badRequest("Network %s could not be found.", nic.NetworkID)
	}
	if nic.PortID != "" {
		pt, err := s.cfg.Ports.Port(ctx, p, nic.PortID)
		switch {
		case api.StatusOf(err) == http.StatusNotFound:
			return badRequest("Port id %s could not be found.", nic.PortID)
		case err != nil:
			return err
		case pt.DeviceID != "":
			return conflict("Port %s is still in use.", nic.PortID)
		}
		return nil
	}
	if _, err := s.cfg.Ports.Network(ctx, p, nic.NetworkID); err != nil {
		if api.StatusOf(err) == http.StatusNotFound {
			return badRequest("Network %s could not be found.", nic.NetworkID)
		}
		return err
	}
	return nil
}

func maps(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return copyMap(m)
}

// schedulerHosts are the cluster's nodes as the scheduler takes them; usage
// is filled in by the apply.
func (s *Service) schedulerHosts(ctx context.Context) ([]scheduler.Host, error) {
	if s.cfg.Hosts == nil {
		return nil, nil
	}
	hs, err := s.cfg.Hosts.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]scheduler.Host, 0, len(hs))
	for _, h := range withServiceStates(tx, hs) {
		// A disabled compute service takes no new servers, as Nova's
		// ComputeFilter; a forced-down one is down (os_services.go).
		off := h.NoCompute || computestate.ServiceStateOf(tx, h.Name).Disabled
		out = append(out, scheduler.Host{Name: h.Name, Up: h.Up, NoCompute: off, AZ: s.ownAZ(h), VCPUs: h.VCPUs, MemoryMB: h.MemoryMB, DiskGB: h.DiskGB})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func randomText(n int) string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			panic(err)
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b)
}

func (s *Service) createServer(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return err
	}
	req, err := s.parseServer(ctx, tx, r)
	if err != nil {
		return err
	}
	hosts, err := s.schedulerHosts(ctx)
	if err != nil {
		return err
	}
	resID := "r-" + strings.ToLower(randomText(8))
	c := serverCreateCmd{Hosts: hosts, Scheduler: s.cfg.Scheduler, ForceHost: req.forceHost, RequestID: requestID(ctx), Now: req.tmpl.Created,
		Baremetal: req.baremetal}
	// Ports first: a server never exists without the ports it asked for.
	// The ports this request makes are deleted again unless a server that
	// uses them may exist.
	rv := revert.New()
	defer rv.Fail()
	// A create whose volumes must be made first answers now: the server
	// waits in BUILD (block_device_mapping) without a host while they
	// are made, and is placed once they exist (bdmbuild.go).
	deferred := req.makesVolumes()
	if deferred {
		req.tmpl.BlockDevices = req.blockDevices()
		req.tmpl.BuildNode, req.tmpl.BuildRun, req.tmpl.BuildHost = s.cfg.Node, s.run, req.forceHost
		setState(&req.tmpl, vmBuilding, taskBlockDeviceMapping)
		c.Deferred = true
	} else {
		if req.boot != nil {
			req.tmpl.BootVolume, c.DeleteBootVolume, c.BootTag = req.boot.UUID, req.boot.DeleteOnTermination, req.boot.Tag
		}
		for _, d := range req.volumes {
			c.Volumes = append(c.Volumes, createVolume{VolumeID: d.UUID, AttachmentID: api.NewUUID(), DeleteOnTermination: d.DeleteOnTermination, Tag: d.Tag})
		}
	}
	c.Servers, err = s.newServers(ctx, principal(r), req, resID, rv)
	if err != nil {
		return err
	}
	var rows []Server
	if _, err = api.Propose(ctx, s.cfg.Repl, cmdServerCreate, c, &rows); err != nil {
		if !api.Rejected(err) {
			// The outcome is unknown: the servers may be in the state,
			// with these ports. A port left over is better than a server
			// without its port. A server that is there is built (its
			// build is resumed if it comes later).
			rv.Success()
			if deferred {
				s.startBuild(c.Servers[0].ID, principal(r))
			}
		}
		return err
	}
	rv.Success()
	for _, sv := range rows {
		if sv.Host == "" && sv.Fault != nil {
			// The apply cannot log (every node runs it): the node that
			// proposed says it once, with each host's reason.
			s.log.Warn("compute: no valid host for a server", "server", sv.ID, "project", sv.Project,
				"flavor", sv.Flavor.Name, "vcpus", sv.Flavor.VCPUs, "ram_mb", sv.Flavor.RAM, "disk_gb", diskGB(&sv),
				"request_id", c.RequestID, "reasons", sv.Fault.Message)
		}
		if deferred {
			s.startBuild(sv.ID, principal(r))
			continue
		}
		s.settlePorts(context.WithoutCancel(ctx), c.Servers, sv)
	}
	if req.resID {
		api.JSON(w, http.StatusAccepted, map[string]any{"reservation_id": resID})
		return nil
	}
	s.writeCreated(w, r, req, rows[0])
	return nil
}

// newServers makes the rows of the servers asked for, and the ports they
// need (each with its undo in rv).
func (s *Service) newServers(ctx context.Context, p *api.Principal, req *serverRequest, resID string, rv *revert.Reverter) ([]Server, error) {
	out := make([]Server, 0, req.count)
	for i := 0; i < req.count; i++ {
		sv := req.tmpl
		sv.ID = api.NewUUID()
		sv.Metadata = maps(req.tmpl.Metadata)
		sv.ReservationID, sv.LaunchIndex = resID, i
		if req.count > 1 {
			sv.Name = fmt.Sprintf("%s-%d", req.tmpl.Name, i+1)
		}
		sv.Ports = []string{}
		sv.NICTags = nil
		tag := func(port, t string) {
			if t == "" {
				return
			}
			if sv.NICTags == nil {
				sv.NICTags = map[string]string{}
			}
			sv.NICTags[port] = t
		}
		for _, nic := range req.nics {
			if nic.PortID != "" {
				sv.Ports = append(sv.Ports, nic.PortID)
				tag(nic.PortID, nic.Tag)
				continue
			}
			pt, err := s.cfg.Ports.Create(ctx, p, PortRequest{NetworkID: nic.NetworkID, FixedIP: nic.FixedIP, Project: sv.Project,
				DeviceID: sv.ID, DeviceOwner: "compute:" + cmp.Or(sv.AZ, s.cfg.AZ), SecurityGroups: req.groupNames})
			if err != nil {
				return nil, portError(err, nic)
			}
			rv.Add(func() {
				s.deletePorts(context.WithoutCancel(ctx), []string{pt.ID}, "delete port of a server that was not created")
			})
			sv.Ports = append(sv.Ports, pt.ID)
			sv.CreatedPorts = append(sv.CreatedPorts, pt.ID)
			tag(pt.ID, nic.Tag)
		}
		out = append(out, sv)
	}
	return out, nil
}

// deletePorts deletes ports this service made, logging what it could not.
func (s *Service) deletePorts(ctx context.Context, ids []string, why string) {
	for _, id := range ids {
		if err := s.cfg.Ports.Delete(ctx, id); err != nil {
			s.log.Warn(why, "port", id, "err", err)
		}
	}
}

// writeCreated answers a create with the first server, as Nova does.
func (s *Service) writeCreated(w http.ResponseWriter, r *http.Request, req *serverRequest, first Server) {
	groups := []any{}
	for _, g := range first.SecurityGroups {
		groups = append(groups, map[string]any{"name": g})
	}
	pass := req.adminPass
	if pass == "" {
		pass = randomText(12)
	}
	w.Header().Set("Location", s.apiURL(r)+"/servers/"+first.ID)
	api.JSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": first.ID, "links": s.links(r, "servers", first.ID), "OS-DCF:diskConfig": diskConfigOf(&first),
		"security_groups": groups, "adminPass": pass,
	}})
}

// settlePorts binds a placed server's ports to its host, or releases the
// ports of one that found no host.
func (s *Service) settlePorts(ctx context.Context, asked []Server, sv Server) {
	if sv.Host == "" {
		for _, a := range asked {
			if a.ID == sv.ID {
				s.deletePorts(ctx, a.CreatedPorts, "delete port of an unplaced server")
			}
		}
		return
	}
	for _, id := range sv.Ports {
		if err := s.cfg.Ports.Bind(ctx, id, sv.ID, sv.Host); err != nil {
			s.log.Warn("bind port", "server", sv.ID, "port", id, "err", err)
			o := Observed{Status: "ERROR", Fault: fmt.Sprintf("Binding port %s to host %s failed: %v", id, sv.Host, err)}
			if _, err := s.cfg.Repl.Propose(ctx, cmdServerReport, serverReportCmd{ID: sv.ID, Observed: o, Now: s.now()}); err != nil {
				s.log.Error("record port binding failure", "server", sv.ID, "err", err)
			}
			return
		}
	}
}

// portError turns a port-creation failure into Nova's answer: the
// network service's faults for an address it cannot give are the
// client's 400s, as Nova's FixedIpAlreadyInUse and NoMoreFixedIps are.
func portError(err error, nic requestedNIC) error {
	p := api.ProblemOf(err)
	switch p.Status {
	case http.StatusNotFound:
		return badRequest("Network %s could not be found.", nic.NetworkID)
	case http.StatusConflict:
		if p.Fault == "IpAddressAlreadyAllocated" || p.Fault == "IpAddressGenerationFailure" {
			return badRequest("%s", p.Msg)
		}
		return conflict("%s", p.Msg)
	case http.StatusBadRequest:
		return badRequest("%s", p.Msg)
	case http.StatusForbidden:
		return forbidden("%s", p.Msg)
	}
	return err
}
