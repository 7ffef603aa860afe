package compute

import (
	"context"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's port interfaces (os-interface): the ports of a server, listed,
// shown, attached and detached while it exists. An attach binds a port
// (the client's, or one made on the network it names, which the server
// then owns and deletes on detach or delete) to the server and adds it to
// the server's row; the node's compute agent plugs a NIC for it into the
// running guest (node/instances), or the next start boots with it. A
// detach takes the port out of the row, which unplugs it, and releases
// the port as a deleted server's are.

// interfaceStates are the vm_states Nova attaches and detaches in.
var interfaceStates = []string{vmActive, vmPaused, vmStopped}

type serverInterfaceCmd struct {
	ID     string `json:"id"`
	Port   string `json:"port"`
	Attach bool   `json:"attach,omitempty"`
	// Created marks a port the attach made: the server owns it.
	Created bool `json:"created,omitempty"`
	// Tag is the attached NIC's device tag.
	Tag       string    `json:"tag,omitempty"`
	Admin     bool      `json:"admin,omitempty"`
	UserID    string    `json:"user_id"`
	RequestID string    `json:"request_id"`
	Now       time.Time `json:"now"`
}

// interfaceAllowed is Nova's check of an attach or detach: not bare
// metal, not locked (but for an admin), in a state that takes it.
func interfaceAllowed(s *Server, action string, admin bool) error {
	if isBaremetal(s) {
		return baremetalNotSupported(action, s.ID)
	}
	if s.Locked && !admin {
		return serverLocked(s.ID)
	}
	if !slices.Contains(interfaceStates, s.VMState) {
		return stateConflict(action, s.ID, "vm_state", s.VMState)
	}
	if s.TaskState != "" {
		return stateConflict(action, s.ID, "task_state", s.TaskState)
	}
	return nil
}

func interfaceAction(attach bool) string {
	if attach {
		return "attach_interface"
	}
	return "detach_interface"
}

func applyServerInterface(tx *memdb.Txn, c serverInterfaceCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	s := *old
	action := interfaceAction(c.Attach)
	if err := interfaceAllowed(&s, action, c.Admin); err != nil {
		return nil, err
	}
	is := func(id string) bool { return id == c.Port }
	if c.Attach {
		if slices.Contains(s.Ports, c.Port) {
			return nil, conflict("Port %s is still in use.", c.Port)
		}
		s.Ports = append(slices.Clone(s.Ports), c.Port)
		if c.Created {
			s.CreatedPorts = append(slices.Clone(s.CreatedPorts), c.Port)
		}
		if c.Tag != "" {
			s.NICTags = maps(s.NICTags)
			if s.NICTags == nil {
				s.NICTags = map[string]string{}
			}
			s.NICTags[c.Port] = c.Tag
		}
	} else {
		if !slices.Contains(s.Ports, c.Port) {
			return nil, portNotAttached(c.Port)
		}
		s.Ports = slices.DeleteFunc(slices.Clone(s.Ports), is)
		s.CreatedPorts = slices.DeleteFunc(slices.Clone(s.CreatedPorts), is)
		if _, ok := s.NICTags[c.Port]; ok {
			s.NICTags = maps(s.NICTags)
			delete(s.NICTags, c.Port)
			if len(s.NICTags) == 0 {
				s.NICTags = nil
			}
		}
	}
	s.Updated = c.Now
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	if err := tx.Insert(tActions, &Action{ID: s.ID + "/" + c.RequestID, ServerID: s.ID, Project: s.Project, UserID: c.UserID,
		Action: action, RequestID: c.RequestID, Start: c.Now}); err != nil {
		return nil, err
	}
	return s, nil
}

// portNotAttached is Nova's PortNotFound for a port the server lacks.
func portNotAttached(id string) error { return notFound("Port %s is not attached", id) }

// interfaceView is an interfaceAttachment as Nova shows it.
func interfaceView(r *http.Request, sv *Server, pt PortInfo) map[string]any {
	ips := []any{}
	for i, ip := range pt.IPs {
		f := map[string]any{"ip_address": ip}
		if i < len(pt.Subnets) {
			f["subnet_id"] = pt.Subnets[i]
		}
		ips = append(ips, f)
	}
	v := map[string]any{"port_id": pt.ID, "net_id": pt.NetworkID, "mac_addr": pt.MAC, "port_state": pt.Status, "fixed_ips": ips}
	if atLeast(r, 70) {
		v["tag"] = orNil(sv.NICTags[pt.ID])
	}
	return v
}

func (s *Service) listInterfaces(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "")
	if err != nil {
		return err
	}
	out := []any{}
	if s.cfg.Ports != nil {
		for _, id := range sv.Ports {
			pt, err := s.cfg.Ports.Port(r.Context(), nil, id)
			if api.StatusOf(err) == http.StatusNotFound {
				continue // deleted under the server: not an interface
			}
			if err != nil {
				return err
			}
			out = append(out, interfaceView(r, sv, pt))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"interfaceAttachments": out})
	return nil
}

func (s *Service) showInterface(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "")
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "port_id")
	if !slices.Contains(sv.Ports, id) || s.cfg.Ports == nil {
		return notFound("Port %s could not be found.", id)
	}
	pt, err := s.cfg.Ports.Port(r.Context(), nil, id)
	if api.StatusOf(err) == http.StatusNotFound {
		return notFound("Port %s could not be found.", id)
	}
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"interfaceAttachment": interfaceView(r, sv, pt)})
	return nil
}

// interfaceRequest is what an attach asks for: a port, or a network
// with an optional address.
type interfaceRequest struct {
	PortID, NetworkID, FixedIP string
	// Tag is the NIC's device tag (2.49).
	Tag string
}

func readInterfaceRequest(r *http.Request) (interfaceRequest, error) {
	var req interfaceRequest
	top, err := readRaw(r)
	if err != nil {
		return req, err
	}
	if err := allowOnly(top, "interfaceAttachment"); err != nil {
		return req, err
	}
	m := api.Object{}
	if v, ok := top["interfaceAttachment"]; ok {
		if m, ok = v.(map[string]any); !ok {
			return req, badField("interfaceAttachment", v, "%s is not of type 'object'", api.Text(v))
		}
	}
	fields := []string{"port_id", "net_id", "fixed_ips"}
	if atLeast(r, 49) {
		fields = append(fields, "tag")
	}
	if err := allowOnly(m, fields...); err != nil {
		return req, err
	}
	in := newInput(m)
	req.PortID, req.NetworkID = str(in, "port_id", false, 0, 0), str(in, "net_id", false, 0, 0)
	req.Tag = deviceTag(in, "tag")
	if in.Err != nil {
		return req, in.Err
	}
	if req.PortID != "" && !uuidPattern.MatchString(req.PortID) {
		return req, badField("port_id", req.PortID, "'%s' is not a 'uuid'", req.PortID)
	}
	if req.NetworkID != "" && !uuidPattern.MatchString(req.NetworkID) {
		return req, badField("net_id", req.NetworkID, "'%s' is not a 'uuid'", req.NetworkID)
	}
	if v, ok := m["fixed_ips"]; ok {
		list, ok := v.([]any)
		if !ok {
			return req, badField("fixed_ips", v, "%s is not of type 'array'", api.Text(v))
		}
		if len(list) > 1 {
			return req, badField("fixed_ips", v, "%s is too long", api.Text(v))
		}
		for _, e := range list {
			o, ok := e.(map[string]any)
			if !ok {
				return req, badField("fixed_ips", e, "%s is not of type 'object'", api.Text(e))
			}
			if err := allowOnly(o, "ip_address"); err != nil {
				return req, err
			}
			ip, ok := o["ip_address"].(string)
			if !ok {
				return req, badField("ip_address", o["ip_address"], "%s is not a 'ip_address'", api.Text(o["ip_address"]))
			}
			if _, err := netip.ParseAddr(ip); err != nil {
				return req, badField("ip_address", ip, "'%s' is not a 'ip_address'", ip)
			}
			req.FixedIP = ip
		}
	}
	switch {
	case req.PortID != "" && req.NetworkID != "":
		return req, badRequest("Must not input both network_id and port_id")
	case req.FixedIP != "" && req.NetworkID == "":
		return req, badRequest("Must input network_id when request IP address")
	}
	return req, nil
}

func (s *Service) attachInterface(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "os_compute_api:os-attach-interfaces:create")
	if err != nil {
		return err
	}
	req, err := readInterfaceRequest(r)
	if err != nil {
		return err
	}
	p := principal(r)
	if err := interfaceAllowed(sv, "attach_interface", p.IsAdmin()); err != nil {
		return err
	}
	if s.cfg.Ports == nil {
		return notImplemented("Attaching interfaces needs the network service, which this cloud does not run.")
	}
	ctx := r.Context()
	var pt PortInfo
	created := false
	if req.PortID != "" {
		pt, err = s.cfg.Ports.Port(ctx, p, req.PortID)
		switch {
		case api.StatusOf(err) == http.StatusNotFound:
			return notFound("Port %s could not be found.", req.PortID)
		case err != nil:
			return err
		case pt.DeviceID != "" || slices.Contains(sv.Ports, pt.ID):
			return conflict("Port %s is still in use.", pt.ID)
		}
	} else {
		if req.NetworkID == "" {
			if req.NetworkID, err = s.onlyNetwork(ctx, p); err != nil {
				return err
			}
		}
		pt, err = s.cfg.Ports.Create(ctx, p, PortRequest{NetworkID: req.NetworkID, FixedIP: req.FixedIP, Project: sv.Project,
			DeviceID: sv.ID, DeviceOwner: "compute:nova"})
		if err != nil {
			if api.StatusOf(err) == http.StatusNotFound {
				return notFound("Network %s could not be found.", req.NetworkID)
			}
			return portError(err, requestedNIC{NetworkID: req.NetworkID, FixedIP: req.FixedIP})
		}
		created = true
	}
	// The port is the server's before the row says so: the guest's NIC
	// is plugged from the row, and the dataplane wires it from the
	// port's binding.
	undo := func() {
		bg := context.WithoutCancel(ctx)
		if created {
			s.deletePorts(bg, []string{pt.ID}, "delete a port made for an attach that failed")
		} else if err := s.cfg.Ports.Bind(bg, pt.ID, "", ""); err != nil {
			s.log.Warn("release a port of an attach that failed", "server", sv.ID, "port", pt.ID, "err", err)
		}
	}
	if err := s.cfg.Ports.Bind(ctx, pt.ID, sv.ID, sv.Host); err != nil {
		undo()
		if api.StatusOf(err) == http.StatusConflict {
			return conflict("Port %s is still in use.", pt.ID)
		}
		return err
	}
	c := serverInterfaceCmd{ID: sv.ID, Port: pt.ID, Attach: true, Created: created, Admin: p.IsAdmin(), UserID: p.UserID,
		RequestID: requestID(ctx), Now: s.now(), Tag: req.Tag}
	var row Server
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdServerInterface, c, &row); err != nil {
		if api.Rejected(err) {
			undo()
		}
		// Unknown outcome: the row may have the port; it stays bound.
		return err
	}
	if fresh, err := s.cfg.Ports.Port(ctx, nil, pt.ID); err == nil {
		pt = fresh
	}
	api.JSON(w, http.StatusOK, map[string]any{"interfaceAttachment": interfaceView(r, &row, pt)})
	return nil
}

// onlyNetwork is the network an attach that names none goes on: the
// caller's one network, as Nova picks it.
func (s *Service) onlyNetwork(ctx context.Context, p *api.Principal) (string, error) {
	nets, err := s.cfg.Ports.Networks(ctx, p)
	if err != nil {
		return "", err
	}
	switch len(nets) {
	case 0:
		return "", badRequest("No network is available to attach an interface to: give net_id or port_id.")
	case 1:
		return nets[0].ID, nil
	}
	return "", badRequest("Multiple possible networks found, use a Network ID to be more specific.")
}

func (s *Service) detachInterface(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "os_compute_api:os-attach-interfaces:delete")
	if err != nil {
		return err
	}
	p := principal(r)
	if err := interfaceAllowed(sv, "detach_interface", p.IsAdmin()); err != nil {
		return err
	}
	id := chi.URLParam(r, "port_id")
	if !slices.Contains(sv.Ports, id) {
		return portNotAttached(id)
	}
	ctx := r.Context()
	c := serverInterfaceCmd{ID: sv.ID, Port: id, Admin: p.IsAdmin(), UserID: p.UserID, RequestID: requestID(ctx), Now: s.now()}
	var row Server
	if _, err := api.Propose(ctx, s.cfg.Repl, cmdServerInterface, c, &row); err != nil {
		return err
	}
	// Out of the row: the agent unplugs it; the port goes (one the
	// server made) or is the client's again.
	if s.cfg.Ports != nil {
		s.releasePorts(context.WithoutCancel(ctx), &Server{ID: sv.ID, Ports: []string{id},
			CreatedPorts: slices.DeleteFunc(slices.Clone(sv.CreatedPorts), func(x string) bool { return x != id })})
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func interfaceEvents(c serverInterfaceCmd) eventMeta {
	return eventMeta{ids: []string{c.ID}, user: c.UserID, request: c.RequestID, action: interfaceAction(c.Attach), now: c.Now}
}
