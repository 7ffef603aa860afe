package compute

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/scheduler"
	"github.com/rackstack/rackstack/fabric/store"
)

// maxUserData bounds user_data as Nova does (the base64 text).
const maxUserData = 65535

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// visibleServer returns a server the caller may see, else a 404: another
// project's server does not exist for it.
func visibleServer(tx *memdb.Txn, p *api.Principal, id string) (*Server, error) {
	sv := store.Get[Server](tx, tServers, id)
	if sv == nil || sv.Hidden || !p.CanRead(sv.Project) {
		return nil, serverNotFound(id)
	}
	return sv, nil
}

// writableServer is visibleServer for a change: a reader of the project
// gets 403.
func writableServer(tx *memdb.Txn, p *api.Principal, id, rule string) (*Server, error) {
	sv, err := visibleServer(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(sv.Project) {
		return nil, policyDenied(rule)
	}
	return sv, nil
}

// refID takes an id out of a reference that may be an id or a URL.
func refID(v string) string {
	v = strings.TrimRight(v, "/")
	if i := strings.LastIndex(v, "/"); i >= 0 {
		return v[i+1:]
	}
	return v
}

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
}

func (s *Service) parseServer(ctx context.Context, tx *memdb.Txn, r *http.Request) (*serverRequest, error) {
	p := principal(r)
	o, top, err := body(r, "server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints")
	if err != nil {
		return nil, err
	}
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
	if err := allowOnly(o, fields...); err != nil {
		return nil, err
	}
	rd := &reader{o: o}
	now := s.now()
	req := &serverRequest{count: 1}
	sv := Server{Project: p.ProjectID, UserID: p.UserID, Metadata: map[string]string{}, ConfigDrive: true, Created: now, Updated: now,
		Want: "active", AZ: s.cfg.AZ, PowerState: PowerNoState}
	setState(&sv, vmBuilding, "scheduling")
	sv.Name = rd.str("name", true, 1, 255)
	if rd.err == nil && strings.TrimSpace(sv.Name) == "" {
		rd.fail(badField("name", sv.Name, "'%s' does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'", sv.Name))
	}
	if atLeast(r, 19) && o["description"] != nil {
		sv.Description = rd.str("description", false, 0, 255)
	}
	imageRef := rd.str("imageRef", false, 0, 0)
	flavorRef := ""
	switch v := o["flavorRef"].(type) {
	case float64:
		flavorRef = valueText(v)
	default:
		flavorRef = rd.str("flavorRef", true, 1, 0)
	}
	sv.KeyName = rd.str("key_name", false, 1, 255)
	if o["user_data"] != nil {
		sv.UserData = rd.str("user_data", false, 0, maxUserData)
	}
	sv.Metadata = rd.metadata("metadata")
	if sv.Metadata == nil {
		sv.Metadata = map[string]string{}
	}
	sv.AccessIPv4 = rd.str("accessIPv4", false, 0, 0)
	sv.AccessIPv6 = rd.str("accessIPv6", false, 0, 0)
	az := rd.str("availability_zone", false, 0, 255)
	req.adminPass = rd.str("adminPass", false, 0, 0)
	if dc := rd.str("OS-DCF:diskConfig", false, 0, 0); rd.err == nil && dc != "" && dc != "AUTO" && dc != "MANUAL" {
		rd.fail(badField("OS-DCF:diskConfig", dc, "'%s' is not one of ['AUTO', 'MANUAL']", dc))
	}
	if rd.has("config_drive") {
		if v, ok := o["config_drive"].(string); ok && v == "" {
			// "" is "no preference"; every server gets one anyway.
		} else if !rd.boolean("config_drive", true) {
			rd.fail(badField("config_drive", o["config_drive"], "servers here always get a config drive"))
		}
	}
	minCount := rd.integer("min_count", false, 1, 1, math.MaxInt32)
	maxCount := rd.integer("max_count", false, minCount, 1, math.MaxInt32)
	req.resID = rd.boolean("return_reservation_id", false)
	if rd.err == nil && minCount > maxCount {
		rd.fail(badRequest("min_count must be <= max_count"))
	}
	req.count = maxCount
	for _, f := range []string{"block_device_mapping", "block_device_mapping_v2", "personality", "tags", "trusted_image_certificates"} {
		if l, ok := o[f].([]any); ok && len(l) > 0 {
			rd.fail(badRequest("%s is not supported by this cloud", f))
		}
	}
	if atLeast(r, 74) {
		host := rd.str("host", false, 1, 255)
		node := rd.str("hypervisor_hostname", false, 1, 255)
		if rd.err == nil && (host != "" || node != "") {
			if !p.IsAdmin() {
				return nil, policyDenied("compute:servers:create:requested_destination")
			}
			if host != "" && node != "" && host != node {
				// A node's hypervisor is the node itself.
				rd.fail(badRequest("Compute host %s could not be found.", host))
			}
			req.forceHost = host
			if host == "" {
				req.forceHost = node
			}
		}
	}
	// Security groups, by name.
	for _, g := range rdList(rd, "security_groups") {
		m, ok := g.(map[string]any)
		name, _ := m["name"].(string)
		if !ok || name == "" {
			rd.fail(badField("security_groups", o["security_groups"], "each security group needs a name"))
			break
		}
		if !slices.Contains(req.groupNames, name) {
			req.groupNames = append(req.groupNames, name)
		}
	}
	// Networks.
	switch v := o["networks"].(type) {
	case nil:
		if atLeast(r, 37) {
			rd.fail(badRequest("Invalid input for field/attribute server. Value: %s. 'networks' is a required property", valueText(map[string]any(o))))
		}
	case string:
		if !atLeast(r, 37) || (v != "auto" && v != "none") {
			rd.fail(badField("networks", v, "'%s' is not of type 'array'", v))
		}
		if v == "none" {
			req.nics = []requestedNIC{}
		}
	case []any:
		if atLeast(r, 37) && len(v) == 0 {
			rd.fail(badField("networks", v, "[] is too short"))
		}
		if len(v) > 0 {
			// Before 2.37 an empty list asks for nothing in particular.
			req.nics = []requestedNIC{}
		}
		for _, x := range v {
			m, ok := x.(map[string]any)
			if !ok {
				rd.fail(badField("networks", v, "%s is not of type 'object'", valueText(x)))
				break
			}
			allowed := []string{"uuid", "port", "fixed_ip"}
			if atLeast(r, 32) {
				allowed = append(allowed, "tag")
			}
			if err := allowOnly(m, allowed...); err != nil {
				rd.fail(err)
				break
			}
			nr := &reader{o: m}
			nic := requestedNIC{NetworkID: nr.str("uuid", false, 0, 0), PortID: nr.str("port", false, 0, 0), FixedIP: nr.str("fixed_ip", false, 0, 0)}
			if m["port"] == nil {
				nic.PortID = ""
			}
			rd.fail(nr.err)
			switch {
			case rd.err != nil:
			case nic.PortID != "" && nic.FixedIP != "":
				rd.fail(badRequest("Specified Fixed IP '%s' cannot be used with port '%s': the two cannot be specified together.", nic.FixedIP, nic.PortID))
			case nic.PortID != "" && !uuidPattern.MatchString(nic.PortID):
				rd.fail(badField("port", nic.PortID, "'%s' is not a 'uuid'", nic.PortID))
			case nic.PortID == "" && !uuidPattern.MatchString(nic.NetworkID):
				rd.fail(badRequest("Bad networks format: network uuid is not in proper format (%s)", nic.NetworkID))
			case nic.FixedIP != "":
				if _, err := netip.ParseAddr(nic.FixedIP); err != nil {
					rd.fail(badRequest("Invalid fixed IP address (%s)", nic.FixedIP))
				}
			}
			if nic.PortID != "" {
				nic.NetworkID = ""
				for _, o := range req.nics {
					if o.PortID == nic.PortID {
						rd.fail(badRequest("Duplicate networks (%s) are not allowed", nic.PortID))
					}
				}
			}
			req.nics = append(req.nics, nic)
		}
	default:
		rd.fail(badField("networks", v, "%s is not of type 'array'", valueText(v)))
	}
	// Scheduler hints: a server group.
	for _, k := range []string{"os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"} {
		if h, ok := top[k]; ok {
			m, ok := h.(map[string]any)
			if !ok {
				rd.fail(badField(k, h, "%s is not of type 'object'", valueText(h)))
				break
			}
			if g, ok := m["group"]; ok {
				gs, _ := g.(string)
				if !uuidPattern.MatchString(gs) {
					rd.fail(badField("group", g, "'%s' is not a 'uuid'", valueText(g)))
				}
				sv.Group = gs
			}
		}
	}
	if rd.err != nil {
		return nil, rd.err
	}
	// Availability zone: ours, or for admins "zone:host" to force a host.
	if az != "" {
		zone, host, _ := strings.Cut(az, ":")
		host, _, _ = strings.Cut(host, ":")
		if zone != "" && zone != s.cfg.AZ {
			return nil, badRequest("The requested availability zone is not available")
		}
		if host != "" {
			if !p.IsAdmin() {
				return nil, policyDenied("os_compute_api:servers:create:forced_host")
			}
			req.forceHost = host
		}
	}
	if p.ProjectID == "" || !p.CanWrite(p.ProjectID) {
		return nil, policyDenied("os_compute_api:servers:create")
	}
	// User data is base64.
	if sv.UserData != "" {
		if _, err := base64.StdEncoding.DecodeString(sv.UserData); err != nil {
			return nil, badRequest("User data needs to be valid base 64.")
		}
	}
	if limit := quotaLimit(tx, p.ProjectID, "metadata_items"); limit >= 0 && len(sv.Metadata) > limit {
		return nil, overQuota("Quota exceeded for metadata_items: Requested %d, but already used 0 of %d metadata_items", len(sv.Metadata), limit)
	}
	// The flavor.
	f, err := visibleFlavor(tx, p, refID(flavorRef))
	if err != nil {
		return nil, badRequest("Flavor %s could not be found.", refID(flavorRef))
	}
	sv.Flavor = *f
	sv.Flavor.ExtraSpecs = maps(f.ExtraSpecs)
	sv.RootGB = f.Disk
	// The image.
	if imageRef == "" {
		return nil, badRequest("Missing imageRef attribute")
	}
	sv.ImageID = refID(imageRef)
	if !uuidPattern.MatchString(sv.ImageID) {
		return nil, badRequest("Invalid imageRef provided.")
	}
	if s.cfg.Images == nil {
		return nil, badRequest("Image %s could not be found.", sv.ImageID)
	}
	img, err := s.cfg.Images.Get(ctx, p, sv.ImageID)
	switch {
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, api.ErrNotFound) || api.StatusOf(err) == http.StatusNotFound:
		return nil, badRequest("Image %s could not be found.", sv.ImageID)
	case err != nil:
		return nil, err
	case !strings.EqualFold(img.Status, "active"):
		return nil, badRequest("Image %s is not active.", sv.ImageID)
	case img.MinRAM > f.RAM:
		return nil, badRequest("Flavor's memory is too small for requested image.")
	case f.Disk > 0 && img.MinDisk > f.Disk:
		return nil, badRequest("Flavor's disk is too small for requested image.")
	case f.Disk > 0 && img.Size > int64(f.Disk)<<30:
		return nil, badRequest("Flavor's disk is too small for requested image.")
	}
	if f.Disk == 0 {
		sv.RootGB = max(img.MinDisk, int((img.Size+(1<<30)-1)>>30), 1)
	}
	// The key.
	if sv.KeyName != "" {
		k := store.Get[Keypair](tx, tKeypairs, p.UserID+"/"+sv.KeyName)
		if k == nil {
			return nil, badRequest("Invalid key_name provided.")
		}
		sv.PublicKey = k.PublicKey
	}
	// The server group.
	if sv.Group != "" {
		g := store.Get[ServerGroup](tx, tGroups, sv.Group)
		if g == nil || !p.CanRead(g.Project) {
			return nil, badRequest("Invalid input for field/attribute group. Value: %s. Instance group %s could not be found.", sv.Group, sv.Group)
		}
	}
	sv.SecurityGroups = req.groupNames
	if len(sv.SecurityGroups) == 0 {
		sv.SecurityGroups = []string{"default"}
	}
	// Networks: those named, or with none named (or "auto") the one the
	// project may use, as Nova picks it.
	if req.nics == nil {
		if s.cfg.Ports != nil {
			nets, err := s.cfg.Ports.Networks(ctx, p)
			if err != nil {
				return nil, err
			}
			switch len(nets) {
			case 0:
				if atLeast(r, 37) {
					return nil, badRequest("Unable to automatically allocate a network for project %s", p.ProjectID)
				}
			case 1:
				req.nics = []requestedNIC{{NetworkID: nets[0].ID}}
			default:
				return nil, conflict("Multiple possible networks found, use a Network ID to be more specific.")
			}
		}
	}
	for _, nic := range req.nics {
		if s.cfg.Ports == nil {
			if nic.PortID != "" {
				return nil, badRequest("Port id %s could not be found.", nic.PortID)
			}
			return nil, badRequest("Network %s could not be found.", nic.NetworkID)
		}
		if nic.PortID != "" {
			pt, err := s.cfg.Ports.Port(ctx, p, nic.PortID)
			if err != nil {
				if api.StatusOf(err) == http.StatusNotFound {
					return nil, badRequest("Port id %s could not be found.", nic.PortID)
				}
				return nil, err
			}
			if pt.DeviceID != "" {
				return nil, conflict("Port %s is still in use.", nic.PortID)
			}
			continue
		}
		if _, err := s.cfg.Ports.Network(ctx, p, nic.NetworkID); err != nil {
			if api.StatusOf(err) == http.StatusNotFound {
				return nil, badRequest("Network %s could not be found.", nic.NetworkID)
			}
			return nil, err
		}
	}
	if req.count > 1 && len(req.nics) > 0 {
		for _, nic := range req.nics {
			if nic.PortID != "" || nic.FixedIP != "" {
				return nil, badRequest("Unable to launch multiple instances with a single configured port ID or fixed IP. Please launch your instance one by one with different ports.")
			}
		}
	}
	req.tmpl = sv
	return req, nil
}

func rdList(rd *reader, f string) []any {
	v, ok := rd.o[f]
	if !ok || v == nil || rd.err != nil {
		return nil
	}
	l, ok := v.([]any)
	if !ok {
		rd.fail(badField(f, v, "%s is not of type 'array'", valueText(v)))
		return nil
	}
	return l
}

func maps(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
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
		az := h.AZ
		if az == "" {
			az = s.cfg.AZ
		}
		out = append(out, scheduler.Host{Name: h.Name, Up: h.Up, AZ: az, VCPUs: h.VCPUs, MemoryMB: h.MemoryMB, DiskGB: h.DiskGB})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Service) hostUp(ctx context.Context, name string) bool {
	if s.cfg.Hosts == nil || name == "" {
		return false
	}
	hs, err := s.cfg.Hosts.Hosts(ctx)
	if err != nil {
		return true // unknown: assume up, so the node still owns the delete
	}
	for _, h := range hs {
		if h.Name == name {
			return h.Up
		}
	}
	return false
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

func (s *Service) createServer(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principal(r)
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	req, err := s.parseServer(ctx, tx, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	hosts, err := s.schedulerHosts(ctx)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resID := "r-" + strings.ToLower(randomText(8))
	c := serverCreateCmd{Hosts: hosts, Scheduler: s.cfg.Scheduler, ForceHost: req.forceHost, RequestID: api.RequestID(ctx), Now: req.tmpl.Created}
	if c.RequestID == "" {
		c.RequestID = "req-" + api.NewUUID()
	}
	// Ports first: a server never exists without the ports it asked for.
	// Undo them if anything after fails.
	var created []string
	defer func() {
		for _, id := range created {
			if err := s.cfg.Ports.Delete(context.WithoutCancel(ctx), id); err != nil {
				s.log.Warn("delete port of a server that was not created", "port", id, "err", err)
			}
		}
	}()
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
				s.fail(w, r, portError(err, nic))
				return
			}
			created = append(created, pt.ID)
			sv.Ports = append(sv.Ports, pt.ID)
			sv.CreatedPorts = append(sv.CreatedPorts, pt.ID)
		}
		c.Servers = append(c.Servers, sv)
	}
	var rows []Server
	if err := s.propose(ctx, cmdServerCreate, c, &rows); err != nil {
		s.fail(w, r, err)
		return
	}
	created = nil
	for _, sv := range rows {
		s.settlePorts(context.WithoutCancel(ctx), c.Servers, sv)
	}
	if req.resID {
		api.JSON(w, http.StatusAccepted, map[string]any{"reservation_id": resID})
		return
	}
	first := rows[0]
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
		"id": first.ID, "links": s.links(r, "servers", first.ID), "OS-DCF:diskConfig": "MANUAL",
		"security_groups": groups, "adminPass": pass,
	}})
}

// settlePorts binds a placed server's ports to its host, or releases the
// ports of one that found no host.
func (s *Service) settlePorts(ctx context.Context, asked []Server, sv Server) {
	var want Server
	for _, a := range asked {
		if a.ID == sv.ID {
			want = a
		}
	}
	if sv.Host == "" {
		for _, id := range want.CreatedPorts {
			if err := s.cfg.Ports.Delete(ctx, id); err != nil {
				s.log.Warn("delete port of an unplaced server", "server", sv.ID, "port", id, "err", err)
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

// portError turns a port-creation failure into Nova's answer.
func portError(err error, nic requestedNIC) error {
	switch api.StatusOf(err) {
	case http.StatusNotFound:
		return badRequest("Network %s could not be found.", nic.NetworkID)
	case http.StatusConflict:
		msg := err.Error()
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			msg = rest
		}
		if strings.Contains(msg, "IP address") || strings.Contains(msg, "No more IP") {
			return badRequest("%s", msg)
		}
		return conflict("%s", msg)
	case http.StatusBadRequest:
		msg := err.Error()
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			msg = rest
		}
		return badRequest("%s", msg)
	case http.StatusForbidden:
		return forbidden("%s", err.Error())
	}
	return err
}

// Views.

func hostID(sv *Server) string {
	if sv.Host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(sv.Project + sv.Host))
	return hex.EncodeToString(sum[:])
}

func (s *Service) addresses(ctx context.Context, sv *Server) map[string]any {
	out := map[string]any{}
	if s.cfg.Ports == nil {
		return out
	}
	for _, id := range sv.Ports {
		pt, err := s.cfg.Ports.Port(ctx, nil, id)
		if err != nil {
			continue
		}
		name := pt.NetworkName
		if name == "" {
			name = pt.NetworkID
		}
		list, _ := out[name].([]any)
		for _, ip := range pt.IPs {
			v := 4
			if strings.Contains(ip, ":") {
				v = 6
			}
			list = append(list, map[string]any{"version": v, "addr": ip, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": pt.MAC})
		}
		if list == nil {
			list = []any{}
		}
		out[name] = list
	}
	return out
}

func instanceName(sv *Server) string { return "instance-" + strings.ReplaceAll(sv.ID, "-", "")[:8] }

// serverView is a server as Nova shows it at the request's microversion;
// basic leaves out what update answers lack before 2.75.
func (s *Service) serverView(r *http.Request, tx *memdb.Txn, sv *Server, basic bool) map[string]any {
	p := principal(r)
	ctx := r.Context()
	md := sv.Metadata
	if md == nil {
		md = map[string]string{}
	}
	v := map[string]any{
		"id": sv.ID, "name": sv.Name, "status": sv.Status, "tenant_id": sv.Project, "user_id": sv.UserID,
		"metadata": md, "hostId": hostID(sv), "created": timeText(sv.Created), "updated": timeText(sv.Updated),
		"addresses": s.addresses(ctx, sv), "accessIPv4": sv.AccessIPv4, "accessIPv6": sv.AccessIPv6,
		"links": s.links(r, "servers", sv.ID), "OS-DCF:diskConfig": "MANUAL",
		"image": map[string]any{"id": sv.ImageID, "links": []any{link("bookmark", s.baseURL(r)+"/images/"+sv.ImageID)}},
	}
	if atLeast(r, 47) {
		fl := map[string]any{"vcpus": sv.Flavor.VCPUs, "ram": sv.Flavor.RAM, "disk": sv.Flavor.Disk, "ephemeral": sv.Flavor.Ephemeral,
			"swap": sv.Flavor.Swap, "original_name": sv.Flavor.Name}
		specs := map[string]string{}
		for k, x := range sv.Flavor.ExtraSpecs {
			specs[k] = x
		}
		fl["extra_specs"] = specs
		v["flavor"] = fl
	} else {
		v["flavor"] = map[string]any{"id": sv.Flavor.ID, "links": []any{link("bookmark", s.baseURL(r)+"/flavors/"+sv.Flavor.ID)}}
	}
	switch sv.Status {
	case "ACTIVE", "BUILD":
		v["progress"] = 0
	}
	if sv.Fault != nil && (sv.Status == "ERROR" || sv.Status == "DELETED") {
		f := map[string]any{"code": sv.Fault.Code, "message": sv.Fault.Message, "created": timeText(sv.Fault.Created)}
		if sv.Fault.Details != "" && (p.IsAdmin() || sv.Fault.Code != 500) {
			f["details"] = sv.Fault.Details
		}
		v["fault"] = f
	}
	if atLeast(r, 19) {
		v["description"] = nil
		if sv.Description != "" {
			v["description"] = sv.Description
		}
	}
	if atLeast(r, 9) {
		v["locked"] = false
	}
	if atLeast(r, 26) {
		v["tags"] = []string{}
	}
	if atLeast(r, 63) {
		v["trusted_image_certificates"] = nil
	}
	if atLeast(r, 73) {
		v["locked_reason"] = nil
	}
	if atLeast(r, 71) && tx != nil {
		groups := []string{}
		if sv.Group != "" && store.Get[ServerGroup](tx, tGroups, sv.Group) != nil {
			groups = append(groups, sv.Group)
		}
		v["server_groups"] = groups
	}
	if basic && !atLeast(r, 75) {
		return v
	}
	groups := []any{}
	for _, g := range sv.SecurityGroups {
		groups = append(groups, map[string]any{"name": g})
	}
	var key any
	if sv.KeyName != "" {
		key = sv.KeyName
	}
	var task any
	if sv.TaskState != "" {
		task = sv.TaskState
	}
	v["key_name"] = key
	v["security_groups"] = groups
	v["OS-SRV-USG:launched_at"] = timeOrNil(sv.LaunchedAt)
	v["OS-SRV-USG:terminated_at"] = nil
	v["OS-EXT-AZ:availability_zone"] = sv.AZ
	v["OS-EXT-STS:task_state"] = task
	v["OS-EXT-STS:vm_state"] = sv.VMState
	v["OS-EXT-STS:power_state"] = sv.PowerState
	v["os-extended-volumes:volumes_attached"] = []any{}
	v["config_drive"] = "True"
	if p.IsAdmin() {
		var host any
		if sv.Host != "" {
			host = sv.Host
		}
		v["OS-EXT-SRV-ATTR:host"] = host
		v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = host
		v["OS-EXT-SRV-ATTR:instance_name"] = instanceName(sv)
		if atLeast(r, 3) {
			var ud any
			if sv.UserData != "" {
				ud = sv.UserData
			}
			v["OS-EXT-SRV-ATTR:reservation_id"] = sv.ReservationID
			v["OS-EXT-SRV-ATTR:launch_index"] = sv.LaunchIndex
			v["OS-EXT-SRV-ATTR:hostname"] = hostname(sv.Name)
			v["OS-EXT-SRV-ATTR:kernel_id"] = ""
			v["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
			v["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
			v["OS-EXT-SRV-ATTR:user_data"] = ud
		}
		if atLeast(r, 16) {
			status := ""
			switch {
			case sv.Host == "":
			case s.hostUp(ctx, sv.Host):
				status = "UP"
			default:
				status = "DOWN"
			}
			v["host_status"] = status
		}
	}
	return v
}

var hostnameBad = regexp.MustCompile(`[^a-z0-9-]+`)

// hostname is the guest's hostname from its display name, as Nova
// sanitizes it.
func hostname(name string) string {
	h := hostnameBad.ReplaceAllString(strings.ToLower(strings.ReplaceAll(name, " ", "-")), "")
	h = strings.Trim(h, "-.")
	if len(h) > 63 {
		h = strings.Trim(h[:63], "-")
	}
	if h == "" {
		h = "server"
	}
	return h
}

// Hostname is the hostname a server's guest gets (its config drive's).
func Hostname(sv *Server) string { return hostname(sv.Name) }

func (s *Service) showServer(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	sv, err := visibleServer(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"server": s.serverView(r, tx, sv, false)})
}

// listParams are the query parameters server list takes (unknown ones are
// ignored before 2.75 and refused from it).
var listParams = map[string]bool{
	"name": true, "status": true, "image": true, "flavor": true, "changes-since": true, "changes-before": true,
	"limit": true, "marker": true, "sort_key": true, "sort_dir": true, "reservation_id": true, "ip": true, "ip6": true,
	"all_tenants": true, "host": true, "node": true, "project_id": true, "tenant_id": true, "availability_zone": true,
	"key_name": true, "vm_state": true, "task_state": true, "power_state": true, "locked": true, "deleted": true,
	"uuid": true, "user_id": true, "config_drive": true, "access_ip_v4": true, "access_ip_v6": true, "description": true,
	"hostname": true, "launched_at": true, "terminated_at": true, "created_at": true, "display_name": true,
	"display_description": true, "tags": true, "tags-any": true, "not-tags": true, "not-tags-any": true,
	"soft_deleted": true, "progress": true, "launch_index": true, "kernel_id": true, "ramdisk_id": true,
	"root_device_name": true, "block_device_mapping": true, "info_cache": true, "security_groups": true,
	"pci_devices": true, "key_pair": true, "cleaned": true, "locked_by": true, "shutdown_terminate": true,
	"vm_mode": true, "architecture": true, "auto_disk_config": true, "os_type": true, "config_drive_id": true,
	"default_ephemeral_device": true, "default_swap_device": true, "ephemeral_key_uuid": true, "flavor_id": true,
	"image_ref": true, "instance_type_id": true, "metadata": true, "system_metadata": true, "updated_at": true,
	"launched_on": true, "ephemeral_gb": true, "memory_mb": true, "root_gb": true, "vcpus": true, "services": true,
	"compute_host": true, "fields": true,
}

func (s *Service) listServers(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := principal(r)
		q := r.URL.Query()
		if atLeast(r, 75) {
			for k := range q {
				if !listParams[k] {
					s.fail(w, r, badRequest("Invalid input for query parameters %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", k, q.Get(k), k))
					return
				}
			}
		}
		allTenants := false
		if v, ok := q["all_tenants"]; ok {
			b, isBool := toBool(v[0])
			allTenants = v[0] == "" || (isBool && b)
			if allTenants && !p.IsAdmin() {
				s.fail(w, r, policyDenied("os_compute_api:servers:index:get_all_tenants"))
				return
			}
		}
		var nameRE *regexp.Regexp
		if n := q.Get("name"); n != "" {
			re, err := regexp.Compile(n)
			if err != nil {
				re = regexp.MustCompile(regexp.QuoteMeta(n))
			}
			nameRE = re
		}
		var statuses []string
		for _, st := range q["status"] {
			st = strings.ToUpper(st)
			if !slices.Contains([]string{"ACTIVE", "BUILD", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR", "REBOOT", "HARD_REBOOT", "DELETED",
				"SOFT_DELETED", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE", "MIGRATING", "RESCUE", "SHELVED", "SHELVED_OFFLOADED",
				"UNKNOWN", "PASSWORD", "REBUILD"}, st) {
				if atLeast(r, 38) {
					s.fail(w, r, badRequest("Invalid status value"))
					return
				}
			}
			statuses = append(statuses, st)
		}
		var since, before time.Time
		for _, tf := range []struct {
			name string
			dst  *time.Time
			ok   bool
		}{{"changes-since", &since, true}, {"changes-before", &before, atLeast(r, 66)}} {
			if v := q.Get(tf.name); v != "" && tf.ok {
				t, err := parseTime(v)
				if err != nil {
					s.fail(w, r, badRequest("Invalid input for query parameters %s. Value: %s. '%s' is not a 'date-time'", tf.name, v, v))
					return
				}
				*tf.dst = t
			}
		}
		if !since.IsZero() && !before.IsZero() && before.Before(since) {
			s.fail(w, r, badRequest("The value of changes-since must be less than or equal to changes-before."))
			return
		}
		tx, ok := s.read(w, r)
		if !ok {
			return
		}
		project := p.ProjectID
		if allTenants {
			project = ""
			if v := q.Get("project_id"); v != "" {
				project = v
			} else if v := q.Get("tenant_id"); v != "" {
				project = v
			}
		}
		var rows []*Server
		var all []*Server
		if project == "" {
			all = store.All[Server](tx, tServers, "id")
		} else {
			all = store.All[Server](tx, tServers, "project", project)
		}
		for _, sv := range all {
			if sv.Hidden || !p.CanRead(sv.Project) {
				continue
			}
			switch {
			case nameRE != nil && !nameRE.MatchString(sv.Name):
				continue
			case len(statuses) > 0 && !slices.Contains(statuses, sv.Status):
				continue
			case q.Get("flavor") != "" && sv.Flavor.ID != refID(q.Get("flavor")):
				continue
			case q.Get("image") != "" && sv.ImageID != refID(q.Get("image")):
				continue
			case !since.IsZero() && sv.Updated.Before(since):
				continue
			case !before.IsZero() && sv.Updated.After(before):
				continue
			case q.Get("reservation_id") != "" && sv.ReservationID != q.Get("reservation_id"):
				continue
			case q.Get("key_name") != "" && sv.KeyName != q.Get("key_name"):
				continue
			case q.Get("availability_zone") != "" && sv.AZ != q.Get("availability_zone"):
				continue
			case p.IsAdmin() && q.Get("host") != "" && sv.Host != q.Get("host"):
				continue
			case p.IsAdmin() && q.Get("node") != "" && sv.Host != q.Get("node"):
				continue
			case p.IsAdmin() && q.Get("vm_state") != "" && sv.VMState != q.Get("vm_state"):
				continue
			case p.IsAdmin() && q.Get("user_id") != "" && sv.UserID != q.Get("user_id"):
				continue
			}
			rows = append(rows, sv)
		}
		sortKey, sortDir := q.Get("sort_key"), q.Get("sort_dir")
		if sortKey == "" {
			sortKey = "created_at"
		}
		if sortDir == "" {
			sortDir = "desc"
		}
		keyOf := map[string]func(*Server) any{
			"created_at": func(sv *Server) any { return sv.Created.Unix() }, "updated_at": func(sv *Server) any { return sv.Updated.Unix() },
			"display_name": func(sv *Server) any { return sv.Name }, "uuid": func(sv *Server) any { return sv.ID },
			"vm_state": func(sv *Server) any { return sv.VMState }, "host": func(sv *Server) any { return sv.Host },
			"launched_at": func(sv *Server) any { return sv.LaunchedAt.Unix() }, "key_name": func(sv *Server) any { return sv.KeyName },
			"availability_zone": func(sv *Server) any { return sv.AZ }, "project_id": func(sv *Server) any { return sv.Project },
			"user_id": func(sv *Server) any { return sv.UserID }, "memory_mb": func(sv *Server) any { return sv.Flavor.RAM },
			"vcpus": func(sv *Server) any { return sv.Flavor.VCPUs }, "root_gb": func(sv *Server) any { return sv.Flavor.Disk },
			"power_state": func(sv *Server) any { return sv.PowerState }, "task_state": func(sv *Server) any { return sv.TaskState },
		}[sortKey]
		if keyOf == nil || (sortDir != "asc" && sortDir != "desc") {
			s.fail(w, r, badRequest("Invalid input for query parameters sort_key. Value: %s.", sortKey))
			return
		}
		sort.SliceStable(rows, func(i, j int) bool {
			c := compareAny(keyOf(rows[i]), keyOf(rows[j]))
			if c == 0 {
				c = strings.Compare(rows[i].ID, rows[j].ID)
			}
			if sortDir == "desc" {
				return c > 0
			}
			return c < 0
		})
		ids := make([]string, len(rows))
		for i, sv := range rows {
			ids[i] = sv.ID
		}
		from, to, next, err := page(q, ids)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out := make([]any, 0, to-from)
		for _, sv := range rows[from:to] {
			if detail {
				v := s.serverView(r, nil, sv, false)
				out = append(out, v)
			} else {
				out = append(out, map[string]any{"id": sv.ID, "name": sv.Name, "links": s.links(r, "servers", sv.ID)})
			}
		}
		body := map[string]any{"servers": out}
		if next != "" {
			body["servers_links"] = []any{link("next", s.nextHref(r, next))}
		}
		api.JSON(w, http.StatusOK, body)
	}
}

func parseTime(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("parse time %q", v)
}

func (s *Service) updateServer(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	sv, err := writableServer(tx, principal(r), chi.URLParam(r, "id"), "os_compute_api:servers:update")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	o, _, err := body(r, "server")
	if err == nil {
		fields := []string{"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}
		if atLeast(r, 19) {
			fields = append(fields, "description")
		}
		err = allowOnly(o, fields...)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rd := &reader{o: o}
	c := serverUpdateCmd{ID: sv.ID, Now: s.now()}
	if rd.has("name") {
		n := rd.str("name", false, 1, 255)
		c.Name = &n
	}
	if rd.has("description") {
		d := ""
		if o["description"] != nil {
			d = rd.str("description", false, 0, 255)
		}
		c.Description = &d
	}
	for _, f := range []struct {
		name string
		dst  **string
		v6   bool
	}{{"accessIPv4", &c.AccessIPv4, false}, {"accessIPv6", &c.AccessIPv6, true}} {
		if rd.has(f.name) {
			v := rd.str(f.name, false, 0, 0)
			if a, err := netip.ParseAddr(v); v != "" && (err != nil || a.Is6() != f.v6) {
				rd.fail(badField(f.name, v, "'%s' is not a '%s'", v, map[bool]string{false: "ipv4", true: "ipv6"}[f.v6]))
			}
			*f.dst = &v
		}
	}
	if rd.err != nil {
		s.fail(w, r, rd.err)
		return
	}
	var row Server
	if err := s.propose(r.Context(), cmdServerUpdate, c, &row); err != nil {
		s.fail(w, r, err)
		return
	}
	tx2, err := s.afterWrite(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	api.JSON(w, http.StatusOK, map[string]any{"server": s.serverView(r, tx2, &row, true)})
}

func (s *Service) deleteServer(w http.ResponseWriter, r *http.Request) {
	tx, ok := s.read(w, r)
	if !ok {
		return
	}
	sv, err := writableServer(tx, principal(r), chi.URLParam(r, "id"), "os_compute_api:servers:delete")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.act(r, sv, "delete", false); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// act proposes a state-changing action on a server; a delete that
// removed the server at once releases its ports.
func (s *Service) act(r *http.Request, sv *Server, action string, hard bool) (*Server, error) {
	ctx := r.Context()
	c := serverActionCmd{ID: sv.ID, Action: action, Hard: hard, UserID: principal(r).UserID, RequestID: api.RequestID(ctx), Now: s.now()}
	if c.RequestID == "" {
		c.RequestID = "req-" + api.NewUUID()
	}
	if action == "delete" && sv.Host != "" && !s.hostUp(ctx, sv.Host) {
		c.HostDown = true
	}
	var res actionResult
	if err := s.propose(ctx, cmdServerAction, c, &res); err != nil {
		return nil, err
	}
	if res.Removed {
		s.releasePorts(context.WithoutCancel(ctx), &res.Server)
	}
	return &res.Server, nil
}

// releasePorts deletes the ports the service made for a server and
// unbinds the client's own.
func (s *Service) releasePorts(ctx context.Context, sv *Server) {
	if s.cfg.Ports == nil {
		return
	}
	for _, id := range sv.Ports {
		var err error
		if slices.Contains(sv.CreatedPorts, id) {
			err = s.cfg.Ports.Delete(ctx, id)
		} else {
			err = s.cfg.Ports.Bind(ctx, id, "", "")
		}
		if err != nil && api.StatusOf(err) != http.StatusNotFound {
			s.log.Warn("release port of a deleted server", "server", sv.ID, "port", id, "err", err)
		}
	}
}
