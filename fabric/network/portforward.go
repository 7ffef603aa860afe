package network

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Floating IP port forwarding (Neutron's floating-ip-port-forwarding,
// floating-ip-port-forwarding-description and
// floating-ip-port-forwarding-port-ranges): a floating IP associated with
// no port forwards TCP or UDP ports or port ranges of its address to as
// many ports of internal addresses (a range to one port, which Neutron
// allows, is refused: the replies of its flows could not be told apart), enforced by the nodes' eBPF dataplanes
// (dataplane/portfwd.go, bpf/portfwd.h). A forwarding is a sub-resource
// of its floating IP: whoever sees the floating IP sees its forwardings
// (another project gets 404 for the floating IP), and whoever may change
// it may change them.

var pfAttrs = newAttrSpec("protocol external_port internal_port external_port_range internal_port_range internal_ip_address internal_port_id description", "",
	"id floatingip_id")

// maxPFRange bounds a port range: a node's dataplane holds each port of
// a range as an entry of pf_in and pf_out (bpf/portfwd.h, 16384 entries
// each, shared by all the forwardings to its ports), so one forwarding
// may take at most this many.
const maxPFRange = 1024

// pfView shows a forwarding as Neutron does since port ranges: both
// sides as ranges ("first:last"), and as single ports when one port is
// forwarded (null when a range).
func pfView(pf *PortForwarding) api.View {
	v := map[string]any{
		"id": pf.ID, "protocol": pf.Protocol, "external_port": nil, "internal_port": nil,
		"external_port_range": pfRangeText(pf.ExternalPort, pf.Count()), "internal_port_range": pfRangeText(pf.InternalPort, pf.Count()),
		"internal_ip_address": pf.InternalIP, "internal_port_id": pf.InternalPortID, "description": pf.Description,
	}
	if pf.Count() == 1 {
		v["external_port"], v["internal_port"] = pf.ExternalPort, pf.InternalPort
	}
	return v
}

func pfRangeText(first, n int) string {
	return fmt.Sprintf("%d:%d", first, first+n-1)
}

// fipForwardings are a floating IP's forwardings as its own view shows
// them (expose-port-forwarding-in-fip).
func fipForwardings(tx *memdb.Txn, fip string) []map[string]any {
	out := []map[string]any{}
	for _, pf := range store.All[PortForwarding](tx, tPortForwardings, "fip", fip) {
		v := map[string]any{"protocol": pf.Protocol, "internal_ip_address": pf.InternalIP}
		if pf.Count() == 1 {
			v["internal_port"], v["external_port"] = pf.InternalPort, pf.ExternalPort
		} else {
			v["internal_port_range"], v["external_port_range"] = pfRangeText(pf.InternalPort, pf.Count()), pfRangeText(pf.ExternalPort, pf.Count())
		}
		out = append(out, v)
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
		for _, field := range []string{"protocol", "internal_port_id"} {
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
	ext, extN, extField := readPFPorts(rd, "external_port", create)
	in, inN, inField := readPFPorts(rd, "internal_port", create)
	if rd.Err != nil {
		return
	}
	// Both sides forward as many ports: a side given alone keeps the
	// forwarding's count.
	switch {
	case extField != "" && inField != "" && extN != inN:
		rd.Fail(badInput(inField, "the internal port range %s is not of the external port range %s's size", pfRangeText(in, inN), pfRangeText(ext, extN)))
	case extField != "" && inField == "" && extN != pf.Count():
		rd.Fail(badInput(extField, "the external port range %s is not of the internal port range %s's size", pfRangeText(ext, extN), pfRangeText(pf.InternalPort, pf.Count())))
	case inField != "" && extField == "" && inN != pf.Count():
		rd.Fail(badInput(inField, "the internal port range %s is not of the external port range %s's size", pfRangeText(in, inN), pfRangeText(pf.ExternalPort, pf.Count())))
	}
	if rd.Err != nil {
		return
	}
	if extField != "" {
		pf.ExternalPort, pf.Ports = ext, extN
	}
	if inField != "" {
		pf.InternalPort, pf.Ports = in, inN
	}
	if pf.Ports == 1 {
		pf.Ports = 0 // one port, stored as rows from before ranges are
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

// readPFPorts reads one side (prefix "external_port" or
// "internal_port") of a forwarding: its single port, or its port range
// ("first:last" or "port"), as the first port and how many; field is the
// attribute it was read from, "" when neither was given (a create's
// 400). A null attribute is not given, as clients send the single port
// null beside a range.
func readPFPorts(rd *api.Input, prefix string, create bool) (first, n int, field string) {
	rangeField := prefix + "_range"
	port, rng := rd.Has(prefix) && !rd.IsNull(prefix), rd.Has(rangeField) && !rd.IsNull(rangeField)
	switch {
	case port && rng:
		rd.Fail(badInput(rangeField, "'%s' and '%s' cannot both be given", prefix, rangeField))
	case port:
		v, ok := api.ToInt(rd.Obj[prefix])
		if !ok || v < 1 || v > 65535 {
			rd.Fail(badInput(prefix, "Invalid port '%s', the port must be an integer between 1 and 65535", api.Text(rd.Obj[prefix])))
			return 0, 0, ""
		}
		return v, 1, prefix
	case rng:
		text, _ := rd.Obj[rangeField].(string)
		lo, hi, ok := parsePortRange(text)
		switch {
		case !ok:
			rd.Fail(badInput(rangeField, "Invalid port range '%s', it must be 'first:last' or 'port' with ports between 1 and 65535, first not above last", api.Text(rd.Obj[rangeField])))
		case hi-lo+1 > maxPFRange:
			rd.Fail(badInput(rangeField, "the port range %s has more than %d ports", text, maxPFRange))
		default:
			return lo, hi - lo + 1, rangeField
		}
	case create:
		rd.Fail(badInput(prefix, "'%s' or '%s' is a required property", prefix, rangeField))
	}
	return 0, 0, ""
}

// parsePortRange reads "first:last" or "port".
func parsePortRange(s string) (lo, hi int, ok bool) {
	a, b, isRange := strings.Cut(s, ":")
	if !isRange {
		b = a
	}
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
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
