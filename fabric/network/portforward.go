package network

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Floating IP port forwarding (Neutron's floating-ip-port-forwarding and
// floating-ip-port-forwarding-description): a floating IP associated with
// no port forwards single TCP or UDP ports of its address to ports of
// internal addresses, enforced by the nodes' eBPF dataplanes
// (dataplane/portfwd.go, bpf/portfwd.h). A forwarding is a sub-resource
// of its floating IP: whoever sees the floating IP sees its forwardings
// (another project gets 404 for the floating IP), and whoever may change
// it may change them.

var pfAttrs = newAttrSpec("protocol external_port internal_port internal_ip_address internal_port_id description", "",
	"id floatingip_id")

func pfView(pf *PortForwarding) api.View {
	return map[string]any{
		"id": pf.ID, "protocol": pf.Protocol, "external_port": pf.ExternalPort, "internal_port": pf.InternalPort,
		"internal_ip_address": pf.InternalIP, "internal_port_id": pf.InternalPortID, "description": pf.Description,
	}
}

// fipForwardings are a floating IP's forwardings as its own view shows
// them (expose-port-forwarding-in-fip).
func fipForwardings(tx *memdb.Txn, fip string) []map[string]any {
	out := []map[string]any{}
	for _, pf := range store.All[PortForwarding](tx, tPortForwardings, "fip", fip) {
		out = append(out, map[string]any{"protocol": pf.Protocol, "internal_ip_address": pf.InternalIP,
			"internal_port": pf.InternalPort, "external_port": pf.ExternalPort})
	}
	return out
}

// pfOf finds forwarding {pf_id} of the floating IP {id} the caller sees.
func (s *Service) pfOf(tx *memdb.Txn, r *http.Request) (*FloatingIP, *PortForwarding, error) {
	f, err := s.floatingIPs(tx).Get(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return nil, nil, err
	}
	id := chi.URLParam(r, "pf_id")
	pf := store.Get[PortForwarding](tx, tPortForwardings, id)
	if pf == nil || pf.FloatingIPID != f.ID {
		return nil, nil, pfNotFound(id, f.ID)
	}
	return f, pf, nil
}

func (s *Service) listPFs(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	f, err := s.floatingIPs(tx).Get(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	views := []api.View{}
	for _, pf := range store.All[PortForwarding](tx, tPortForwardings, "fip", f.ID) {
		views = append(views, pfView(pf))
	}
	return s.listing("port_forwardings").Write(w, r, views)
}

func (s *Service) showPF(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	_, pf, err := s.pfOf(tx, r)
	if err != nil {
		return err
	}
	return api.Show(w, r, "port_forwarding", pfView(pf))
}

func (s *Service) createPF(w http.ResponseWriter, r *http.Request) error {
	return s.writePF(w, r, true)
}

func (s *Service) updatePF(w http.ResponseWriter, r *http.Request) error {
	return s.writePF(w, r, false)
}

// writePF is a forwarding's create (a new forwarding of the floating IP
// in the path) or update (the forwarding in the path): the body changes
// it, and the command that stores it checks it against the state.
func (s *Service) writePF(w http.ResponseWriter, r *http.Request, create bool) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p := principal(r)
	method, cmd, status, action := http.MethodPut, cmdPFUpdate, http.StatusOK, "update_floatingip_port_forwarding"
	if create {
		method, cmd, status, action = http.MethodPost, cmdPFCreate, http.StatusCreated, "create_floatingip_port_forwarding"
	}
	f, err := s.writableFIP(tx, p, chi.URLParam(r, "id"), action)
	if err != nil {
		return err
	}
	var pf PortForwarding
	if create {
		pf = PortForwarding{ID: api.NewUUID(), FloatingIPID: f.ID, Project: f.Project}
	} else {
		_, old, err := s.pfOf(tx, r)
		if err != nil {
			return err
		}
		pf = *old
	}
	objs, _, err := bodies(r, "port_forwarding", "")
	if err != nil {
		return err
	}
	if err := pfAttrs.check(objs[0], method); err != nil {
		return err
	}
	rd := input(objs[0])
	readPF(rd, &pf, create)
	if rd.Err != nil {
		return rd.Err
	}
	if create || rd.Has("internal_port_id") {
		if _, err := s.writablePort(tx, p, pf.InternalPortID, action); err != nil {
			return err
		}
	}
	var row PortForwarding
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmd, pfCmd{PF: pf, Now: s.now()}, &row); err != nil {
		return err
	}
	api.JSON(w, status, map[string]any{"port_forwarding": pfView(&row)})
	return nil
}

// readPF reads a forwarding's attributes into pf: every required one for
// a create, the ones given for an update.
func readPF(rd *api.Input, pf *PortForwarding, create bool) {
	if create {
		for _, field := range []string{"protocol", "external_port", "internal_port", "internal_port_id"} {
			if !rd.Has(field) {
				rd.Fail(badInput(field, "'%s' is a required property", field))
				return
			}
		}
	}
	if rd.Has("protocol") {
		v := rd.Str("protocol", "", 16)
		if rd.Err == nil && v != "tcp" && v != "udp" {
			rd.Fail(badInput("protocol", "%s is not in valid_values", api.Text(rd.Obj["protocol"])))
		}
		pf.Protocol = v
	}
	for _, port := range []struct {
		field string
		into  *int
	}{{"external_port", &pf.ExternalPort}, {"internal_port", &pf.InternalPort}} {
		if !rd.Has(port.field) || rd.Err != nil {
			continue
		}
		v, ok := api.ToInt(rd.Obj[port.field])
		if !ok || v < 1 || v > 65535 {
			rd.Fail(badInput(port.field, "Invalid port '%s', the port must be an integer between 1 and 65535", api.Text(rd.Obj[port.field])))
			return
		}
		*port.into = v
	}
	if rd.Has("internal_port_id") {
		pf.InternalPortID = rd.Str("internal_port_id", "", 64)
		if rd.Err == nil && pf.InternalPortID == "" {
			rd.Fail(badInput("internal_port_id", "'' is not a valid UUID"))
		}
	}
	if rd.Has("internal_ip_address") {
		pf.InternalIP = ""
		if ip := rd.Str("internal_ip_address", "", 64); rd.Err == nil && ip != "" {
			a, err := parseIP(ip)
			switch {
			case err != nil:
				rd.Fail(badInput("internal_ip_address", "%v", err))
			case !a.Is4():
				rd.Fail(badInput("internal_ip_address", "'%s' is not an IPv4 address", ip))
			default:
				pf.InternalIP = a.String()
			}
		}
	} else if !create && rd.Has("internal_port_id") {
		pf.InternalIP = "" // the new port's first IPv4 address
	}
	if rd.Has("description") {
		pf.Description = rd.Str("description", "", 255)
	}
}

func (s *Service) deletePF(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p := principal(r)
	if _, err := s.writableFIP(tx, p, chi.URLParam(r, "id"), "delete_floatingip_port_forwarding"); err != nil {
		return err
	}
	_, pf, err := s.pfOf(tx, r)
	if err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdPFDelete, pfCmd{PF: *pf, Now: s.now()}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// portForwardingRoutes are the port forwarding API's routes.
func (s *Service) portForwardingRoutes() []api.Route {
	const get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	const token = api.Authenticated
	base := "/v2.0/floatingips/{id}/port_forwardings"
	return []api.Route{
		{Method: get, Path: base, Access: token, Rule: "get_floatingip_port_forwarding", Handle: s.listPFs},
		{Method: post, Path: base, Access: token, Rule: "create_floatingip_port_forwarding", Handle: s.createPF},
		{Method: get, Path: base + "/{pf_id}", Access: token, Rule: "get_floatingip_port_forwarding", Handle: s.showPF},
		{Method: put, Path: base + "/{pf_id}", Access: token, Rule: "update_floatingip_port_forwarding", Handle: s.updatePF},
		{Method: del, Path: base + "/{pf_id}", Access: token, Rule: "delete_floatingip_port_forwarding", Handle: s.deletePF},
	}
}
