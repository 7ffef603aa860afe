package baremetal

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Port groups (Ironic 1.23): a node's ports bonded into one link. They
// are recorded and shown; the provisioning network boots machines by
// their ports' MACs, so nothing acts on them.

// portgroupSince is when Ironic added each field.
var portgroupSince = map[string]int{"mode": 26, "properties": 26}

// defaultPortgroupMode is Ironic's [DEFAULT]default_portgroup_mode.
const defaultPortgroupMode = "active-backup"

var portgroupFields = []string{"uuid", "address", "name", "node_uuid", "standalone_ports_supported", "internal_info",
	"extra", "mode", "properties", "created_at", "updated_at", "links", "ports"}

func portgroupNotFound(id string) error { return notFoundf("Portgroup %s could not be found.", id) }

func (s *Service) portgroupView(r *http.Request, g *bmstate.Portgroup) api.View {
	base := s.baseURL(r)
	v := api.View{
		"id": g.ID, "uuid": g.ID, "address": nullStr(g.Address), "name": nullStr(g.Name), "node_uuid": g.NodeID,
		"standalone_ports_supported": g.StandalonePortsSupported, "internal_info": map[string]any{},
		"extra": jsonMap(g.Extra), "mode": nullStr(g.Mode), "properties": jsonMap(g.Properties),
		"created_at": timeText(g.CreatedAt), "updated_at": timeText(g.UpdatedAt),
		"links": links(base, "portgroups", g.ID), "ports": links(base, "portgroups", g.ID+"/ports"),
	}
	minor := versionOf(r.Context())
	for f, since := range portgroupSince {
		if minor < since {
			delete(v, f)
		}
	}
	return v
}

// lookupPortgroup finds a port group by UUID or name.
func lookupPortgroup(tx *memdb.Txn, ident string) (*bmstate.Portgroup, error) {
	if g := store.Get[bmstate.Portgroup](tx, bmstate.PortgroupTable, ident); g != nil {
		return g, nil
	}
	if !uuidRE.MatchString(ident) {
		if raw, _ := tx.First(bmstate.PortgroupTable, "name", ident); raw != nil {
			return raw.(*bmstate.Portgroup), nil
		}
	}
	return nil, portgroupNotFound(ident)
}

func (s *Service) readPortgroup(r *http.Request) (*memdb.Txn, *bmstate.Portgroup, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, nil, err
	}
	g, err := lookupPortgroup(tx, chi.URLParam(r, "portgroup"))
	return tx, g, err
}

func (s *Service) listPortgroups(detail, underNode bool) api.HandlerFunc {
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
		}
		var rows []*bmstate.Portgroup
		if node != "" {
			n, err := lookupNode(tx, node)
			if err != nil {
				if underNode {
					return err
				}
				return badRequestf("%s", err.Error())
			}
			rows = bmstate.Portgroups(tx, n.ID)
		} else {
			rows = store.All[bmstate.Portgroup](tx, bmstate.PortgroupTable, "id")
		}
		var views []api.View
		for _, g := range rows {
			views = append(views, s.portgroupView(r, g))
		}
		l := listing{
			key: "portgroups", short: []string{"uuid", "address", "name", "links"}, known: portgroupFields,
			unsortable: []string{"extra", "internal_info", "properties", "links", "ports"},
			filters: map[string]api.Filter{
				"node": func(api.View, []string) (bool, error) { return true, nil },
				"address": func(v api.View, want []string) (bool, error) {
					return bmstate.NormalizeMAC(want[0]) == v["address"], nil
				},
			},
		}
		return l.write(w, r, s.baseURL(r), views, detail)
	}
}

func (s *Service) showPortgroup(w http.ResponseWriter, r *http.Request) error {
	_, g, err := s.readPortgroup(r)
	if err != nil {
		return err
	}
	v := s.portgroupView(r, g)
	delete(v, "id")
	api.JSON(w, http.StatusOK, api.Pick(v, api.Fields(r.URL.Query())))
	return nil
}

var portgroupCreateFields = []string{"uuid", "address", "name", "node_uuid", "standalone_ports_supported", "extra", "mode", "properties"}

func (s *Service) createPortgroup(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	if extra := api.Unexpected(body, portgroupCreateFields...); len(extra) > 0 {
		return &api.Error{Status: http.StatusBadRequest, Field: extra[0],
			Msg: fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", strings.Join(extra, "', '"))}
	}
	minor := versionOf(r.Context())
	for k := range body {
		if since, ok := portgroupSince[k]; ok && minor < since {
			return versionError(k, since)
		}
	}
	in := api.NewInput(body, wording{})
	g := &bmstate.Portgroup{CreatedAt: s.now(),
		StandalonePortsSupported: true, Mode: defaultPortgroupMode}
	id, err := newID(in)
	if err != nil {
		return err
	}
	g.ID = id
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
	g.NodeID = n.ID
	if err := setPortgroupFields(g, body, true); err != nil {
		return err
	}
	res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdCreatePortgroup, bmstate.CreatePortgroupCmd{Row: *g})
	if err != nil {
		return err
	}
	var out bmstate.Portgroup
	if err := res.Decode(&out); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/portgroups/"+out.ID)
	v := s.portgroupView(r, &out)
	delete(v, "id")
	api.JSON(w, http.StatusCreated, v)
	return nil
}

// setPortgroupFields sets g's fields from doc (a create body or a
// patched group); on update an absent field is reset.
func setPortgroupFields(g *bmstate.Portgroup, doc map[string]any, create bool) error {
	in := api.NewInput(doc, wording{})
	has := func(f string) bool { return in.Has(f) || !create }
	if has("address") {
		g.Address = ""
		if addr := in.Str("address", "", 17); addr != "" {
			if g.Address = bmstate.NormalizeMAC(addr); g.Address == "" {
				return wording{}.BadField("address", addr, "Expected a MAC address but received "+addr+".")
			}
		}
	}
	if has("name") {
		g.Name = in.Str("name", "", 255)
		if in.Err == nil && g.Name != "" && (!nameRE.MatchString(g.Name) || uuidRE.MatchString(g.Name)) {
			return wording{}.BadField("name", g.Name, "Expected a logical name but received "+g.Name+".")
		}
	}
	if has("standalone_ports_supported") {
		g.StandalonePortsSupported = in.Bool("standalone_ports_supported", true)
	}
	if has("mode") {
		g.Mode = in.Str("mode", defaultPortgroupMode, 255)
		if g.Mode == "" {
			g.Mode = defaultPortgroupMode
		}
	}
	if has("properties") {
		g.Properties = in.Object("properties")
	}
	if has("extra") {
		g.Extra = in.Object("extra")
	}
	return in.Err
}

func portgroupDoc(g *bmstate.Portgroup) map[string]any {
	return map[string]any{
		"address": nullStr(g.Address), "name": nullStr(g.Name), "node_uuid": g.NodeID,
		"standalone_ports_supported": g.StandalonePortsSupported, "mode": nullStr(g.Mode),
		"properties": deepCopy(jsonMap(g.Properties)), "extra": deepCopy(jsonMap(g.Extra)),
	}
}

var portgroupReadOnly = []string{"uuid", "id", "created_at", "updated_at", "links", "ports", "internal_info"}

func (s *Service) updatePortgroup(w http.ResponseWriter, r *http.Request) error {
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	minor := versionOf(r.Context())
	for _, o := range ops {
		// Ironic refuses only the whole field before 1.26; a key of it
		// may be patched.
		if since, ok := portgroupSince[o.path[0]]; ok && len(o.path) == 1 && minor < since {
			return versionError(o.path[0], since)
		}
	}
	return retryStale(func() error {
		tx, cur, err := s.readPortgroup(r)
		if err != nil {
			return err
		}
		g := *cur
		doc := portgroupDoc(cur)
		if err := applyPatch(doc, ops, portgroupReadOnly, []string{"node_uuid"}); err != nil {
			return err
		}
		nodeRef, _ := doc["node_uuid"].(string)
		n, err := lookupNode(tx, nodeRef)
		if err != nil {
			return badRequestf("%s", err.Error())
		}
		g.NodeID = n.ID
		if err := setPortgroupFields(&g, doc, false); err != nil {
			return err
		}
		g.UpdatedAt = s.now()
		res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdPutPortgroup, bmstate.PutPortgroupCmd{Row: g, Revision: cur.Revision})
		if err != nil {
			return err
		}
		var out bmstate.Portgroup
		if err := res.Decode(&out); err != nil {
			return err
		}
		v := s.portgroupView(r, &out)
		delete(v, "id")
		api.JSON(w, http.StatusOK, v)
		return nil
	})
}

func (s *Service) deletePortgroup(w http.ResponseWriter, r *http.Request) error {
	_, g, err := s.readPortgroup(r)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdDeletePortgroup, bmstate.DeletePortgroupCmd{ID: g.ID}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
