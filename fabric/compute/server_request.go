package compute

import (
	"encoding/base64"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
)

// A server create request, read in named steps: every attribute is
// checked for its type and form before anything is looked up.

// maxUserData bounds user_data as Nova does (the base64 text).
const maxUserData = 65535

// requestedNIC is one entry of the networks list.
type requestedNIC struct {
	NetworkID, PortID, FixedIP string
	// Tag is the NIC's device tag (2.32, 2.42 on).
	Tag string
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
	// networksValue is the networks attribute as sent (for errors).
	networksValue any
	// baremetal is set for a bare-metal flavor: the node to claim.
	baremetal *baremetalClaim
	// boot is the volume to boot from (block_device_mapping_v2), if any.
	boot *blockDevice
	// volumes are data volumes attached as the server is created.
	volumes []blockDevice
	// local are the ephemeral and swap disks block_device_mapping_v2
	// asks for (localdisks.go).
	local []localDisk
	// deviceTags says whether NICs and block devices may have tags at
	// the request's microversion.
	deviceTags bool
}

// deviceTagsOnCreate says whether a create's networks and
// block_device_mapping_v2 entries take a tag: at 2.32, then again from
// 2.42 (Nova lost them from 2.33 to 2.41 and restored them).
func deviceTagsOnCreate(r *http.Request) bool {
	return (atLeast(r, 32) && !atLeast(r, 33)) || atLeast(r, 42)
}

// deviceTag reads a device tag (Nova's schema: at most 60 characters,
// no ',' or '/'), "" when there is none.
func deviceTag(in *api.Input, field string) string {
	if in.IsNull("tag") {
		return ""
	}
	t := str(in, "tag", false, 0, 60)
	if in.Err == nil && strings.ContainsAny(t, ",/") {
		in.Fail(badField(field, t, "'%s' does not match '^[^,/]*$'", t))
	}
	return t
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
	if atLeast(r, 90) {
		fields = append(fields, "hostname")
	}
	return fields
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
	req := &serverRequest{count: 1, deviceTags: deviceTagsOnCreate(r)}
	req.tmpl = Server{Project: p.ProjectID, UserID: p.UserID, Metadata: map[string]string{}, ConfigDrive: true, Created: now, Updated: now,
		Want: "active", PowerState: PowerNoState}
	setState(&req.tmpl, vmBuilding, "scheduling")
	in := newInput(o)
	readServerAttrs(in, req)
	readServerOptions(r, in, req)
	readSecurityGroups(in, req)
	readNetworks(r, in, req)
	readSchedulerHints(in, top, req)
	if h := readHostname(r, in); h != nil {
		req.tmpl.HostnameSet = *h
		if req.count > 1 {
			// Nova's AmbiguousHostnameForMultipleInstances.
			in.Fail(badRequest("Unable to allocate a single hostname to multiple instances"))
		}
	}
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
		// Checked, then not followed: every server here gets a config
		// drive, as Nova's do under its force_config_drive option
		// (config_drive shows "True" either way), so that a guest
		// without a route to the metadata service still finds its
		// keys and network (Terraform sends false by default).
		if v, ok := in.Obj["config_drive"].(string); !ok || v != "" {
			boolean(in, "config_drive", true)
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
	readBlockDevices(in, req, atLeast(r, 67))
	if l, ok := in.Obj["trusted_image_certificates"].([]any); ok && len(l) > 0 {
		in.Fail(badRequest("trusted_image_certificates is not supported by this cloud"))
	}
	// tags (2.52; serverFields lets the attribute through).
	if v, ok := in.Obj["tags"]; ok && in.Err == nil {
		tags, err := readTags("tags", v)
		if err != nil {
			in.Fail(err)
		} else if len(tags) > 0 {
			req.tmpl.Tags = tags
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
	req.networksValue = in.Obj["networks"]
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
	if deviceTagsOnCreate(r) {
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
	nic.Tag = deviceTag(in, "networks.tag")
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
