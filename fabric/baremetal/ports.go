package baremetal

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

var portSince = map[string]int{"pxe_enabled": 19, "local_link_connection": 19, "internal_info": 18, "portgroup_uuid": 24, "physical_network": 34, "is_smartnic": 53}

var portFields = []string{"uuid", "address", "node_uuid", "pxe_enabled", "local_link_connection", "physical_network",
	"extra", "is_smartnic", "internal_info", "portgroup_uuid", "created_at", "updated_at", "links"}

func (s *Service) portView(r *http.Request, p *bmstate.Port) api.View {
	llc := map[string]any{}
	for k, v := range p.LocalLinkConnection {
		llc[k] = v
	}
	v := api.View{
		"id": p.ID, "uuid": p.ID, "address": p.Address, "node_uuid": p.NodeID, "pxe_enabled": p.PXEEnabled,
		"local_link_connection": llc, "physical_network": nullStr(p.PhysicalNetwork), "extra": jsonMap(p.Extra),
		"is_smartnic": p.IsSmartNIC, "internal_info": map[string]any{}, "portgroup_uuid": nullStr(p.PortgroupID),
		"created_at": timeText(p.CreatedAt), "updated_at": timeText(p.UpdatedAt),
		"links": links(s.baseURL(r), "ports", p.ID),
	}
	minor := versionOf(r.Context())
	for f, since := range portSince {
		if minor < since {
			delete(v, f)
		}
	}
	return v
}

// askedDetail reports whether a list request asks ?detail=true. The
// route's own detail flag is shared by every request: handlers combine
// the two into a variable of their own.
func askedDetail(r *http.Request) bool {
	d, ok := api.ToBool(r.URL.Query().Get("detail"))
	return ok && d
}

func (s *Service) listPorts(detail, underNode bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		detail := detail || askedDetail(r)
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		node := q.Get("node")
		if underNode {
			node = chi.URLParam(r, "node")
		} else if node == "" {
			node = q.Get("node_uuid")
		}
		var rows []*bmstate.Port
		group := q.Get("portgroup")
		if underGroup := chi.URLParam(r, "portgroup"); underGroup != "" {
			group = underGroup
		}
		if group != "" {
			g, err := lookupPortgroup(tx, group)
			if err != nil {
				if chi.URLParam(r, "portgroup") != "" {
					return err
				}
				return badRequestf("%s", err.Error())
			}
			rows = bmstate.PortgroupPorts(tx, g.ID)
		} else if node != "" {
			n, err := lookupNode(tx, node)
			if err != nil {
				if underNode {
					return err
				}
				return badRequestf("%s", err.Error())
			}
			rows = bmstate.Ports(tx, n.ID)
		} else {
			rows = store.All[bmstate.Port](tx, bmstate.PortTable, "id")
		}
		if group != "" && node != "" {
			// Both given: the group's ports on that node.
			n, err := lookupNode(tx, node)
			if err != nil {
				return badRequestf("%s", err.Error())
			}
			rows = slices.DeleteFunc(rows, func(p *bmstate.Port) bool { return p.NodeID != n.ID })
		}
		var views []api.View
		for _, p := range rows {
			views = append(views, s.portView(r, p))
		}
		l := listing{
			key: "ports", short: []string{"uuid", "address", "links"}, known: portFields,
			unsortable: []string{"extra", "local_link_connection", "internal_info", "links"},
			filters: map[string]api.Filter{
				"node":      func(api.View, []string) (bool, error) { return true, nil },
				"node_uuid": func(api.View, []string) (bool, error) { return true, nil },
				"address": func(v api.View, want []string) (bool, error) {
					return bmstate.NormalizeMAC(want[0]) == v["address"], nil
				},
				"portgroup": func(api.View, []string) (bool, error) { return true, nil },
			},
		}
		return l.write(w, r, s.baseURL(r), views, detail)
	}
}

func (s *Service) readPort(r *http.Request) (*bmstate.Port, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	id := chi.URLParam(r, "port")
	p := store.Get[bmstate.Port](tx, bmstate.PortTable, id)
	if p == nil {
		if !uuidRE.MatchString(id) {
			return nil, badRequestf("Expected a UUID but received %s.", id)
		}
		return nil, portNotFound(id)
	}
	return p, nil
}

func (s *Service) showPort(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readPort(r)
	if err != nil {
		return err
	}
	v := s.portView(r, p)
	delete(v, "id")
	api.JSON(w, http.StatusOK, api.Pick(v, api.Fields(r.URL.Query())))
	return nil
}

var portCreateFields = []string{"uuid", "address", "node_uuid", "pxe_enabled", "local_link_connection", "physical_network", "extra", "is_smartnic", "portgroup_uuid"}

func (s *Service) createPort(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	if extra := api.Unexpected(body, portCreateFields...); len(extra) > 0 {
		return &api.Error{Status: http.StatusBadRequest, Field: extra[0],
			Msg: fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", strings.Join(extra, "', '"))}
	}
	minor := versionOf(r.Context())
	for k := range body {
		if since, ok := portSince[k]; ok && minor < since {
			return versionError(k, since)
		}
	}
	in := api.NewInput(body, wording{})
	now := s.now()
	p := &bmstate.Port{CreatedAt: now, PXEEnabled: true}
	id, err := newID(in)
	if err != nil {
		return err
	}
	p.ID = id
	node := in.Required("node_uuid", 36)
	if in.Err != nil {
		return in.Err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	n, err := lookupNode(tx, node)
	if err != nil {
		return badRequestf("%s", err.Error())
	}
	p.NodeID = n.ID
	if err := setPortFields(p, body, true); err != nil {
		return err
	}
	res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdCreatePort, bmstate.CreatePortCmd{Row: *p})
	if err != nil {
		return err
	}
	var out bmstate.Port
	if err := res.Decode(&out); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/ports/"+out.ID)
	v := s.portView(r, &out)
	delete(v, "id")
	api.JSON(w, http.StatusCreated, v)
	return nil
}

// newID is a create body's "uuid", or a new one when it has none.
func newID(in *api.Input) (string, error) {
	id := strings.ToLower(in.Str("uuid", "", 36))
	if id == "" {
		return api.NewUUID(), nil
	}
	if !uuidRE.MatchString(id) {
		return "", wording{}.BadField("uuid", id, "Expected a UUID.")
	}
	return id, nil
}

// setPortFields sets p's fields from doc (a create body or a patched
// port); on update an absent field is reset.
func setPortFields(p *bmstate.Port, doc map[string]any, create bool) error {
	in := api.NewInput(doc, wording{})
	has := func(f string) bool { return in.Has(f) || !create }
	addr := in.Required("address", 17)
	if in.Err != nil {
		return in.Err
	}
	if p.Address = bmstate.NormalizeMAC(addr); p.Address == "" {
		return wording{}.BadField("address", addr, "Expected a MAC address but received "+addr+".")
	}
	if has("pxe_enabled") {
		p.PXEEnabled = in.Bool("pxe_enabled", true)
	}
	if has("physical_network") {
		p.PhysicalNetwork = in.Str("physical_network", "", 64)
	}
	if has("is_smartnic") {
		p.IsSmartNIC = in.Bool("is_smartnic", false)
	}
	if has("extra") {
		p.Extra = in.Object("extra")
	}
	if has("local_link_connection") {
		llc := in.Object("local_link_connection")
		p.LocalLinkConnection = nil
		for k, v := range llc {
			text, ok := v.(string)
			if !ok {
				if b, isBool := v.(bool); isBool {
					text = fmt.Sprint(b)
				} else {
					return wording{}.BadField("local_link_connection", llc, "The value of "+k+" must be a string.")
				}
			}
			switch k {
			case "switch_id", "port_id", "switch_info", "hostname", "network_type":
			default:
				return wording{}.BadField("local_link_connection", llc, "Unknown key "+k+": the keys are switch_id, port_id, switch_info, hostname and network_type.")
			}
			if p.LocalLinkConnection == nil {
				p.LocalLinkConnection = map[string]string{}
			}
			p.LocalLinkConnection[k] = text
		}
	}
	if has("portgroup_uuid") {
		// The group's existence and node are checked where the port is
		// written.
		p.PortgroupID = strings.ToLower(in.Str("portgroup_uuid", "", 36))
		if in.Err == nil && p.PortgroupID != "" && !uuidRE.MatchString(p.PortgroupID) {
			return wording{}.BadField("portgroup_uuid", p.PortgroupID, "Expected a UUID.")
		}
	}
	return in.Err
}

func portDoc(p *bmstate.Port) map[string]any {
	llc := map[string]any{}
	for k, v := range p.LocalLinkConnection {
		llc[k] = v
	}
	return map[string]any{
		"address": p.Address, "node_uuid": p.NodeID, "pxe_enabled": p.PXEEnabled, "local_link_connection": llc,
		"physical_network": nullStr(p.PhysicalNetwork), "extra": deepCopy(jsonMap(p.Extra)), "is_smartnic": p.IsSmartNIC,
		"portgroup_uuid": nullStr(p.PortgroupID),
	}
}

var portReadOnly = []string{"uuid", "id", "created_at", "updated_at", "links", "internal_info"}

func (s *Service) updatePort(w http.ResponseWriter, r *http.Request) error {
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	minor := versionOf(r.Context())
	for _, o := range ops {
		if since, ok := portSince[o.path[0]]; ok && minor < since {
			return versionError(o.path[0], since)
		}
	}
	return retryStale(func() error {
		cur, err := s.readPort(r)
		if err != nil {
			return err
		}
		p := *cur
		doc := portDoc(cur)
		if err := applyPatch(doc, ops, portReadOnly, []string{"address", "node_uuid"}); err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		nodeRef, _ := doc["node_uuid"].(string)
		n, err := lookupNode(tx, nodeRef)
		if err != nil {
			return badRequestf("%s", err.Error())
		}
		p.NodeID = n.ID
		if err := setPortFields(&p, doc, false); err != nil {
			return err
		}
		if err := portChangeAllowed(tx, cur, &p); err != nil {
			return err
		}
		p.UpdatedAt = s.now()
		res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdPutPort, bmstate.PutPortCmd{Row: p, Revision: cur.Revision})
		if err != nil {
			return err
		}
		var out bmstate.Port
		if err := res.Decode(&out); err != nil {
			return err
		}
		v := s.portView(r, &out)
		delete(v, "id")
		api.JSON(w, http.StatusOK, v)
		return nil
	})
}

// portChangeAllowed refuses moving or re-addressing a port while a
// conductor works on its node (it boots the node by that MAC).
func portChangeAllowed(tx *memdb.Txn, before, after *bmstate.Port) error {
	if before.Address == after.Address && before.NodeID == after.NodeID && before.PXEEnabled == after.PXEEnabled {
		return nil
	}
	for _, id := range []string{before.NodeID, after.NodeID} {
		if n := store.Get[bmstate.Node](tx, bmstate.NodeTable, id); n != nil && bmstate.Working(n.ProvisionState) {
			return nodeLocked(n.ID, n.ProvisionState)
		}
	}
	return nil
}

func (s *Service) deletePort(w http.ResponseWriter, r *http.Request) error {
	p, err := s.readPort(r)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if n := store.Get[bmstate.Node](tx, bmstate.NodeTable, p.NodeID); n != nil && bmstate.Working(n.ProvisionState) {
		return nodeLocked(n.ID, n.ProvisionState)
	}
	if _, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdDeletePort, bmstate.DeletePortCmd{ID: p.ID}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
