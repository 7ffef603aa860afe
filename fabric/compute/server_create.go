package compute

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
)

// Server create: read the request in named steps, resolve what it names
// (flavor, image, key, group, networks), make the ports, and propose the
// servers, which the apply places and counts against the quota.

// maxUserData bounds user_data as Nova does (the base64 text).
const maxUserData = 65535

// requestedNIC is one entry of the networks list.
type requestedNIC struct {
	NetworkID, PortID, FixedIP string
}

// serverRequest is a validated create request for one or more servers.
type serverRequest struct {
	tmpl       Server
	count      int
	nics       []requestedNIC
	groupNames []string
	forceHost  string
	adminPass  string
	resID      bool
	// What the body names, resolved against the state by parseServer.
	imageRef, flavorRef, az string
}

// serverFields are the attributes a create body may have at the
// request's microversion.
func serverFields(r *http.Request) []string {
	fields := []string{"name", "imageRef", "flavorRef", "networks", "key_name", "user_data", "metadata", "availability_zone",
		"security_groups", "config_drive", "min_count", "max_count", "return_reservation_id", "accessIPv4", "accessIPv6",
		"adminPass", "OS-DCF:diskConfig", "block_device_mapping", "block_device_mapping_v2"}
	if !atLeast(r, 57) {
		fields = append(fields, "personality")
	}
	if atLeast(r, 19) {
		fields = append(fields, "description")
	}
	if atLeast(r, 52) {
		fields = append(fields, "tags")
	}
	if atLeast(r, 63) {
		fields = append(fields, "trusted_image_certificates")
	}
	if atLeast(r, 74) {
		fields = append(fields, "host", "hypervisor_hostname")
	}
	return fields
}

// parseServer reads a create request and resolves it against the state
// and the image and network services, in the order Nova checks them.
func (s *Service) parseServer(ctx context.Context, tx *memdb.Txn, r *http.Request) (*serverRequest, error) {
	req, err := s.readServerRequest(r)
	if err != nil {
		return nil, err
	}
	p := principal(r)
	if err := s.resolveZone(p, req); err != nil {
		return nil, err
	}
	sv := &req.tmpl
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
	if err := s.resolveImage(ctx, p, req.imageRef, f, sv); err != nil {
		return nil, err
	}
	if err := resolveKeyAndGroup(tx, p, sv); err != nil {
		return nil, err
	}
	sv.SecurityGroups = req.groupNames
	if len(sv.SecurityGroups) == 0 {
		sv.SecurityGroups = []string{"default"}
	}
	if err := s.resolveNetworks(ctx, r, p, req); err != nil {
		return nil, err
	}
	return req, nil
}

// readServerRequest reads the body: every attribute is checked for its
// type and form before anything is looked up.
func (s *Service) readServerRequest(r *http.Request) (*serverRequest, error) {
	o, top, err := readBody(r, "server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints")
	if err != nil {
		return nil, err
	}
	if err := allowOnly(o, serverFields(r)...); err != nil {
		return nil, err
	}
	p := principal(r)
	now := s.now()
	req := &serverRequest{count: 1}
	req.tmpl = Server{Project: p.ProjectID, UserID: p.UserID, Metadata: map[string]string{}, ConfigDrive: true, Created: now, Updated: now,
		Want: "active", AZ: s.cfg.AZ, PowerState: PowerNoState}
	setState(&req.tmpl, vmBuilding, "scheduling")
	in := newInput(o)
	readServerAttrs(in, req)
	readServerOptions(r, in, req)
	readSecurityGroups(in, req)
	readNetworks(r, in, req)
	readSchedulerHints(in, top, req)
	if in.Err != nil {
		return nil, in.Err
	}
	return req, nil
}

// readServerAttrs reads what the server is: name, description, image and
// flavor references, key, user data, metadata and access addresses.
func readServerAttrs(in *api.Input, req *serverRequest) {
	sv := &req.tmpl
	sv.Name = str(in, "name", true, 1, 255)
	if in.Err == nil && strings.TrimSpace(sv.Name) == "" {
		in.Fail(badField("name", sv.Name, "'%s' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'", sv.Name))
	}
	sv.Description = optStr(in, "description", 255)
	req.imageRef = str(in, "imageRef", false, 0, 0)
	if v, ok := in.Obj["flavorRef"].(float64); ok {
		req.flavorRef = api.Text(v)
	} else {
		req.flavorRef = str(in, "flavorRef", true, 1, 0)
	}
	sv.KeyName = str(in, "key_name", false, 1, 255)
	sv.UserData = optStr(in, "user_data", maxUserData)
	if md := metadata(in, "metadata"); md != nil {
		sv.Metadata = md
	}
	sv.AccessIPv4 = accessIP(in, "accessIPv4", false)
	sv.AccessIPv6 = accessIP(in, "accessIPv6", true)
}

// accessIP reads accessIPv4 or accessIPv6: an address of that family,
// canonical as Nova stores it (an IP column), or "" for none.
func accessIP(in *api.Input, field string, v6 bool) string {
	v := str(in, field, false, 0, 0)
	if in.Err != nil || v == "" {
		return v
	}
	a, err := netip.ParseAddr(v)
	if err != nil || a.Is6() != v6 || a.Zone() != "" {
		family := "ipv4"
		if v6 {
			family = "ipv6"
		}
		in.Fail(badField(field, v, "'%s' is not a '%s'", v, family))
		return ""
	}
	return a.String()
}

// diskConfig reads OS-DCF:diskConfig: AUTO or MANUAL ("" when absent).
func diskConfig(in *api.Input) string {
	const f = "OS-DCF:diskConfig"
	dc := str(in, f, false, 0, 0)
	if in.Err == nil && dc != "" && dc != "AUTO" && dc != "MANUAL" {
		in.Fail(badField(f, dc, "'%s' is not one of ['AUTO', 'MANUAL']", dc))
	}
	return dc
}

// readServerOptions reads how to make it: zone, password, disk config,
// config drive, how many, and an admin's requested host.
func readServerOptions(r *http.Request, in *api.Input, req *serverRequest) {
	req.az = str(in, "availability_zone", false, 0, 255)
	req.adminPass = str(in, "adminPass", false, 0, 0)
	req.tmpl.DiskConfig = diskConfig(in)
	if req.tmpl.DiskConfig == "" {
		req.tmpl.DiskConfig = "MANUAL"
	}
	if in.Has("config_drive") {
		if v, ok := in.Obj["config_drive"].(string); ok && v == "" {
			// "" is "no preference"; every server gets one anyway.
		} else if !boolean(in, "config_drive", true) {
			in.Fail(badField("config_drive", in.Obj["config_drive"], "servers here always get a config drive"))
		}
	}
	minCount := integer(in, "min_count", false, 1, 1, math.MaxInt32)
	maxCount := integer(in, "max_count", false, minCount, 1, math.MaxInt32)
	req.resID = boolean(in, "return_reservation_id", false)
	if in.Err == nil && minCount > maxCount {
		in.Fail(badRequest("min_count must be <= max_count"))
	}
	req.count = maxCount
	// Personality is allowed (below 2.57) and read apart.
	for _, f := range []string{"block_device_mapping", "block_device_mapping_v2", "tags", "trusted_image_certificates"} {
		if l, ok := in.Obj[f].([]any); ok && len(l) > 0 {
			in.Fail(badRequest("%s is not supported by this cloud", f))
		}
	}
	if atLeast(r, 74) {
		readRequestedHost(principal(r), in, req)
	}
	req.tmpl.Personality = readPersonality(in)
}

// readPersonality reads the files to inject (allowed below 2.57, where
// serverFields lets the attribute through): a path and base64 contents
// each.
func readPersonality(in *api.Input) []File {
	var out []File
	for _, x := range array(in, "personality") {
		m, ok := x.(map[string]any)
		if !ok {
			in.Fail(badField("personality", in.Obj["personality"], "%s is not of type 'object'", api.Text(x)))
			return nil
		}
		if err := allowOnly(m, "path", "contents"); err != nil {
			in.Fail(err)
			return nil
		}
		fin := newInput(m)
		f := File{Path: str(fin, "path", true, 0, 0), Contents: str(fin, "contents", true, 0, 0)}
		if fin.Err == nil {
			if _, err := base64.StdEncoding.DecodeString(f.Contents); err != nil {
				fin.Fail(badRequest("Personality content for %s cannot be decoded", f.Path))
			}
		}
		if fin.Err != nil {
			in.Fail(fin.Err)
			return nil
		}
		out = append(out, f)
	}
	return out
}

// checkPersonality holds the files to the project's injected_files
// quotas, with Nova's 403s.
func checkPersonality(tx *memdb.Txn, project string, files []File) error {
	if limit := quotaLimit(tx, project, "injected_files"); limit >= 0 && len(files) > limit {
		return forbidden("Personality file limit exceeded")
	}
	pathLimit := quotaLimit(tx, project, "injected_file_path_bytes")
	contentLimit := quotaLimit(tx, project, "injected_file_content_bytes")
	for _, f := range files {
		if pathLimit >= 0 && len(f.Path) > pathLimit {
			return forbidden("Personality file path exceeds maximum %d", pathLimit)
		}
		data, _ := base64.StdEncoding.DecodeString(f.Contents) // checked by readPersonality
		if contentLimit >= 0 && len(data) > contentLimit {
			return forbidden("Personality file content exceeds maximum %d", contentLimit)
		}
	}
	return nil
}

// readRequestedHost reads an admin's host and hypervisor_hostname (2.74).
func readRequestedHost(p *api.Principal, in *api.Input, req *serverRequest) {
	host := str(in, "host", false, 1, 255)
	node := str(in, "hypervisor_hostname", false, 1, 255)
	if in.Err != nil || (host == "" && node == "") {
		return
	}
	if !p.IsAdmin() {
		in.Fail(policyDenied("compute:servers:create:requested_destination"))
		return
	}
	if host != "" && node != "" && host != node {
		// A node's hypervisor is the node itself.
		in.Fail(badRequest("Compute host %s could not be found.", host))
	}
	req.forceHost = host
	if host == "" {
		req.forceHost = node
	}
}

// readSecurityGroups reads the security groups, by name.
func readSecurityGroups(in *api.Input, req *serverRequest) {
	for _, g := range array(in, "security_groups") {
		m, ok := g.(map[string]any)
		name, _ := m["name"].(string)
		if !ok || name == "" {
			in.Fail(badField("security_groups", in.Obj["security_groups"], "each security group needs a name"))
			return
		}
		if !slices.Contains(req.groupNames, name) {
			req.groupNames = append(req.groupNames, name)
		}
	}
}

// readNetworks reads the networks: a list of NICs, or from 2.37 "auto"
// or "none". req.nics stays nil when the request leaves the choice to
// the service.
func readNetworks(r *http.Request, in *api.Input, req *serverRequest) {
	switch v := in.Obj["networks"].(type) {
	case nil:
		if atLeast(r, 37) {
			in.Fail(badRequest("Invalid input for field/attribute server. Value: %s. 'networks' is a required property", api.Text(in.Obj)))
		}
	case string:
		if !atLeast(r, 37) || (v != "auto" && v != "none") {
			in.Fail(badField("networks", v, "'%s' is not of type 'array'", v))
		}
		if v == "none" {
			req.nics = []requestedNIC{}
		}
	case []any:
		if atLeast(r, 37) && len(v) == 0 {
			in.Fail(badField("networks", v, "[] is too short"))
		}
		if len(v) > 0 {
			// Before 2.37 an empty list asks for nothing in particular.
			req.nics = []requestedNIC{}
		}
		for _, x := range v {
			m, ok := x.(map[string]any)
			if !ok {
				in.Fail(badField("networks", v, "%s is not of type 'object'", api.Text(x)))
				return
			}
			nic, err := readNIC(r, m, req.nics)
			if err != nil {
				in.Fail(err)
				return
			}
			req.nics = append(req.nics, nic)
		}
	default:
		in.Fail(badField("networks", v, "%s is not of type 'array'", api.Text(v)))
	}
}

// readNIC reads one entry of the networks list: a network (and maybe a
// fixed IP) or a port not asked for before.
func readNIC(r *http.Request, m api.Object, before []requestedNIC) (requestedNIC, error) {
	allowed := []string{"uuid", "port", "fixed_ip"}
	if atLeast(r, 32) {
		allowed = append(allowed, "tag")
	}
	if err := allowOnly(m, allowed...); err != nil {
		return requestedNIC{}, err
	}
	in := newInput(m)
	nic := requestedNIC{NetworkID: str(in, "uuid", false, 0, 0), FixedIP: str(in, "fixed_ip", false, 0, 0)}
	if m["port"] != nil {
		nic.PortID = str(in, "port", false, 0, 0)
	}
	switch {
	case in.Err != nil:
		return nic, in.Err
	case nic.PortID != "" && nic.FixedIP != "":
		return nic, badRequest("Specified Fixed IP '%s' cannot be used with port '%s': the two cannot be specified together.", nic.FixedIP, nic.PortID)
	case nic.PortID != "" && !uuidPattern.MatchString(nic.PortID):
		return nic, badField("port", nic.PortID, "'%s' is not a 'uuid'", nic.PortID)
	case nic.PortID == "" && !uuidPattern.MatchString(nic.NetworkID):
		return nic, badRequest("Bad networks format: network uuid is not in proper format (%s)", nic.NetworkID)
	case nic.FixedIP != "":
		if _, err := netip.ParseAddr(nic.FixedIP); err != nil {
			return nic, badRequest("Invalid fixed IP address (%s)", nic.FixedIP)
		}
	}
	if nic.PortID != "" {
		nic.NetworkID = ""
		for _, o := range before {
			if o.PortID == nic.PortID {
				return nic, badRequest("Duplicate networks (%s) are not allowed", nic.PortID)
			}
		}
	}
	return nic, nil
}

// readSchedulerHints reads the one hint this service takes: a server
// group.
func readSchedulerHints(in *api.Input, top api.Object, req *serverRequest) {
	for _, k := range []string{"os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"} {
		h, ok := top[k]
		if !ok {
			continue
		}
		m, ok := h.(map[string]any)
		if !ok {
			in.Fail(badField(k, h, "%s is not of type 'object'", api.Text(h)))
			return
		}
		if g, ok := m["group"]; ok {
			gs, _ := g.(string)
			if !uuidPattern.MatchString(gs) {
				in.Fail(badField("group", g, "'%s' is not a 'uuid'", api.Text(g)))
			}
			req.tmpl.Group = gs
		}
	}
}

// resolveZone checks the availability zone: ours, or for admins
// "zone:host" to force a host.
func (s *Service) resolveZone(p *api.Principal, req *serverRequest) error {
	if req.az == "" {
		return nil
	}
	zone, host, _ := strings.Cut(req.az, ":")
	host, _, _ = strings.Cut(host, ":")
	if zone != "" && zone != s.cfg.AZ {
		return badRequest("The requested availability zone is not available")
	}
	if host != "" {
		if !p.IsAdmin() {
			return policyDenied("os_compute_api:servers:create:forced_host")
		}
		req.forceHost = host
	}
	return nil
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
func (s *Service) resolveImage(ctx context.Context, p *api.Principal, ref string, f *Flavor, sv *Server) error {
	if ref == "" {
		return badRequest("Missing imageRef attribute")
	}
	sv.ImageID = refID(ref)
	if !uuidPattern.MatchString(sv.ImageID) {
		return badRequest("Invalid imageRef provided.")
	}
	if s.cfg.Images == nil {
		return badRequest("Image %s could not be found.", sv.ImageID)
	}
	img, err := s.cfg.Images.Get(ctx, p, sv.ImageID)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, api.ErrNotFound) || api.StatusOf(err) == http.StatusNotFound:
		return badRequest("Image %s could not be found.", sv.ImageID)
	case err != nil:
		return err
	case !strings.EqualFold(img.Status, "active"):
		return badRequest("Image %s is not active.", sv.ImageID)
	case img.MinRAM > f.RAM:
		return badRequest("Flavor's memory is too small for requested image.")
	case f.Disk > 0 && img.MinDisk > f.Disk:
		return badRequest("Flavor's disk is too small for requested image.")
	case f.Disk > 0 && img.Size > int64(f.Disk)<<30:
		return badRequest("Flavor's disk is too small for requested image.")
	}
	if f.Disk == 0 {
		sv.RootGB = max(img.MinDisk, int((img.Size+(1<<30)-1)>>30), 1)
	}
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
			if atLeast(r, 37) {
				return badRequest("Unable to automatically allocate a network for project %s", p.ProjectID)
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
	out := make([]scheduler.Host, 0, len(hs))
	for _, h := range hs {
		out = append(out, scheduler.Host{Name: h.Name, Up: h.Up, AZ: s.hostAZ(h), VCPUs: h.VCPUs, MemoryMB: h.MemoryMB, DiskGB: h.DiskGB})
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
	c := serverCreateCmd{Hosts: hosts, Scheduler: s.cfg.Scheduler, ForceHost: req.forceHost, RequestID: requestID(ctx), Now: req.tmpl.Created}
	// Ports first: a server never exists without the ports it asked for.
	// made are the ports this request made, deleted again unless a server
	// that uses them may exist.
	var made []string
	c.Servers, err = s.newServers(ctx, principal(r), req, resID, &made)
	var rows []Server
	if err == nil {
		_, err = api.Propose(ctx, s.cfg.Repl, cmdServerCreate, c, &rows)
		if err != nil && !api.Rejected(err) {
			// The outcome is unknown: the servers may be in the state,
			// with these ports. A port left over is better than a server
			// without its port.
			made = nil
		}
	}
	if err != nil {
		s.deletePorts(context.WithoutCancel(ctx), made, "delete port of a server that was not created")
		return err
	}
	for _, sv := range rows {
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
// need (recorded in made as they are made).
func (s *Service) newServers(ctx context.Context, p *api.Principal, req *serverRequest, resID string, made *[]string) ([]Server, error) {
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
		for _, nic := range req.nics {
			if nic.PortID != "" {
				sv.Ports = append(sv.Ports, nic.PortID)
				continue
			}
			pt, err := s.cfg.Ports.Create(ctx, p, PortRequest{NetworkID: nic.NetworkID, FixedIP: nic.FixedIP, Project: sv.Project,
				DeviceID: sv.ID, DeviceOwner: "compute:" + sv.AZ, SecurityGroups: req.groupNames})
			if err != nil {
				return nil, portError(err, nic)
			}
			*made = append(*made, pt.ID)
			sv.Ports = append(sv.Ports, pt.ID)
			sv.CreatedPorts = append(sv.CreatedPorts, pt.ID)
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
