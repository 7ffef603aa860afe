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

// Volume connectors and targets (Ironic 1.32): how a node reaches remote
// volumes and which it uses. They are recorded and validated, and
// changed only while the node is powered off, as in Ironic. Booting a
// node from a volume target needs the "cinder" storage interface, which
// this cloud does not offer (every node's storage_interface is "noop"):
// the deploy writes images to local disk.

var connectorTypes = []string{"iqn", "ip", "mac", "wwnn", "wwpn", "port", "portgroup"}

var connectorFields = []string{"uuid", "node_uuid", "type", "connector_id", "extra", "created_at", "updated_at", "links"}

var targetFields = []string{"uuid", "node_uuid", "volume_type", "volume_id", "boot_index", "properties", "extra",
	"created_at", "updated_at", "links"}

func (s *Service) volumeRoot(w http.ResponseWriter, r *http.Request) error {
	base := s.baseURL(r)
	body := map[string]any{"links": []any{map[string]any{"href": base + "/v1/volume/", "rel": "self"},
		map[string]any{"href": base + "/volume/", "rel": "bookmark"}}}
	prefix := "volume"
	if node := chi.URLParam(r, "node"); node != "" {
		if _, _, err := s.readNode(r); err != nil {
			return err
		}
		prefix = "nodes/" + node + "/volume"
	}
	for _, kind := range []string{"connectors", "targets"} {
		body[kind] = []any{map[string]any{"href": base + "/v1/" + prefix + "/" + kind, "rel": "self"},
			map[string]any{"href": base + "/" + prefix + "/" + kind, "rel": "bookmark"}}
	}
	api.JSON(w, http.StatusOK, body)
	return nil
}

// poweredOff refuses a change to a volume record of node n unless the
// node is powered off (or asked to be: the request is the latest word),
// with Ironic's InvalidStateRequested.
func poweredOff(n *bmstate.Node, action string) error {
	power := n.PowerState
	switch n.TargetPowerState {
	case bmstate.PowerOff, bmstate.SoftOff:
		power = bmstate.PowerOff
	case bmstate.PowerOn, bmstate.Rebooting, bmstate.SoftBoot:
		power = bmstate.PowerOn
	}
	if power != bmstate.PowerOff {
		if power == "" {
			power = "None"
		}
		return badRequestf("The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".", action, n.ID, power)
	}
	return nil
}

func (s *Service) connectorView(r *http.Request, c *bmstate.VolumeConnector) api.View {
	return api.View{
		"id": c.ID, "uuid": c.ID, "node_uuid": c.NodeID, "type": c.Type, "connector_id": c.ConnectorID,
		"extra": jsonMap(c.Extra), "created_at": timeText(c.CreatedAt), "updated_at": timeText(c.UpdatedAt),
		"links": links(s.baseURL(r), "volume/connectors", c.ID),
	}
}

func (s *Service) targetView(r *http.Request, t *bmstate.VolumeTarget) api.View {
	return api.View{
		"id": t.ID, "uuid": t.ID, "node_uuid": t.NodeID, "volume_type": t.VolumeType, "volume_id": t.VolumeID,
		"boot_index": t.BootIndex, "properties": jsonMap(t.Properties), "extra": jsonMap(t.Extra),
		"created_at": timeText(t.CreatedAt), "updated_at": timeText(t.UpdatedAt),
		"links": links(s.baseURL(r), "volume/targets", t.ID),
	}
}

// volumeKind is what differs between connectors and targets; the
// handlers below serve both.
type volumeKind struct {
	key, word, param string
	table            string
	fields, short    []string
	create           []string
	mandatory        []string
	// rows lists a node's records ("" for all); view shows one;
	// doc is its writable attributes as a JSON document; set checks a
	// document into a row (a copy of the current one on update) and
	// put proposes it.
	rows func(tx *memdb.Txn, node string) []any
	view func(s *Service, r *http.Request, row any) api.View
	get  func(tx *memdb.Txn, id string) (any, string)
	doc  func(row any) map[string]any
	set  func(row any, doc map[string]any) (any, error)
	put  func(row any, rev int64) (string, any)
	del  string
}

var connectorKind = volumeKind{
	key: "connectors", word: "volume connector", param: "connector", table: bmstate.VolumeConnectorTable,
	fields: connectorFields, short: []string{"uuid", "type", "connector_id", "node_uuid", "links"},
	create:    []string{"uuid", "node_uuid", "type", "connector_id", "extra"},
	mandatory: []string{"node_uuid", "type", "connector_id"},
	rows: func(tx *memdb.Txn, node string) []any {
		var rows []*bmstate.VolumeConnector
		if node == "" {
			rows = store.All[bmstate.VolumeConnector](tx, bmstate.VolumeConnectorTable, "id")
		} else {
			rows = bmstate.VolumeConnectors(tx, node)
		}
		out := make([]any, 0, len(rows))
		for _, x := range rows {
			out = append(out, x)
		}
		return out
	},
	view: func(s *Service, r *http.Request, row any) api.View {
		return s.connectorView(r, row.(*bmstate.VolumeConnector))
	},
	get: func(tx *memdb.Txn, id string) (any, string) {
		if c := store.Get[bmstate.VolumeConnector](tx, bmstate.VolumeConnectorTable, id); c != nil {
			return c, c.NodeID
		}
		return nil, ""
	},
	doc: func(row any) map[string]any {
		c := row.(*bmstate.VolumeConnector)
		return map[string]any{"node_uuid": c.NodeID, "type": c.Type, "connector_id": c.ConnectorID, "extra": deepCopy(jsonMap(c.Extra))}
	},
	set: func(row any, doc map[string]any) (any, error) {
		c := *row.(*bmstate.VolumeConnector)
		in := api.NewInput(doc, wording{})
		c.Type = in.Required("type", 32)
		c.ConnectorID = in.Required("connector_id", 255)
		c.Extra = in.Object("extra")
		if in.Err != nil {
			return nil, in.Err
		}
		if !slices.Contains(connectorTypes, c.Type) {
			return nil, wording{}.BadField("type", c.Type, "The connector type must be one of "+strings.Join(connectorTypes, ", ")+".")
		}
		return &c, nil
	},
	put: func(row any, rev int64) (string, any) {
		return bmstate.CmdPutVolumeConnector, bmstate.PutVolumeConnectorCmd{Row: *row.(*bmstate.VolumeConnector), Revision: rev}
	},
	del: bmstate.CmdDeleteVolumeConnector,
}

var targetKind = volumeKind{
	key: "targets", word: "volume target", param: "target", table: bmstate.VolumeTargetTable,
	fields: targetFields, short: []string{"uuid", "volume_type", "boot_index", "volume_id", "node_uuid", "links"},
	create:    []string{"uuid", "node_uuid", "volume_type", "volume_id", "boot_index", "properties", "extra"},
	mandatory: []string{"node_uuid", "volume_type", "volume_id", "boot_index"},
	rows: func(tx *memdb.Txn, node string) []any {
		var rows []*bmstate.VolumeTarget
		if node == "" {
			rows = store.All[bmstate.VolumeTarget](tx, bmstate.VolumeTargetTable, "id")
		} else {
			rows = bmstate.VolumeTargets(tx, node)
		}
		out := make([]any, 0, len(rows))
		for _, x := range rows {
			out = append(out, x)
		}
		return out
	},
	view: func(s *Service, r *http.Request, row any) api.View {
		return s.targetView(r, row.(*bmstate.VolumeTarget))
	},
	get: func(tx *memdb.Txn, id string) (any, string) {
		if t := store.Get[bmstate.VolumeTarget](tx, bmstate.VolumeTargetTable, id); t != nil {
			return t, t.NodeID
		}
		return nil, ""
	},
	doc: func(row any) map[string]any {
		t := row.(*bmstate.VolumeTarget)
		// Through JSON, as a request's document is (numbers as float64).
		return deepCopy(map[string]any{"node_uuid": t.NodeID, "volume_type": t.VolumeType, "volume_id": t.VolumeID,
			"boot_index": t.BootIndex, "properties": jsonMap(t.Properties), "extra": jsonMap(t.Extra)})
	},
	set: func(row any, doc map[string]any) (any, error) {
		t := *row.(*bmstate.VolumeTarget)
		in := api.NewInput(doc, wording{})
		t.VolumeType = in.Required("volume_type", 64)
		t.VolumeID = in.Required("volume_id", 36*8)
		idx := in.Int("boot_index", 0, 1<<31-1)
		t.Properties = in.Object("properties")
		t.Extra = in.Object("extra")
		if in.Err != nil {
			return nil, in.Err
		}
		if idx == nil {
			return nil, wording{}.Missing("boot_index")
		}
		t.BootIndex = *idx
		return &t, nil
	},
	put: func(row any, rev int64) (string, any) {
		return bmstate.CmdPutVolumeTarget, bmstate.PutVolumeTargetCmd{Row: *row.(*bmstate.VolumeTarget), Revision: rev}
	},
	del: bmstate.CmdDeleteVolumeTarget,
}

func (k volumeKind) notFound(id string) error {
	return notFoundf("The %s %s could not be found.", k.word, id)
}

func (s *Service) listVolumes(k volumeKind, detail, underNode bool) api.HandlerFunc {
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
		if node != "" {
			n, err := lookupNode(tx, node)
			if err != nil {
				if underNode {
					return err
				}
				return badRequestf("%s", err.Error())
			}
			node = n.ID
		}
		var views []api.View
		for _, row := range k.rows(tx, node) {
			views = append(views, k.view(s, r, row))
		}
		l := listing{key: k.key, short: k.short, known: k.fields, unsortable: []string{"extra", "properties", "links"},
			filters: map[string]api.Filter{"node": func(api.View, []string) (bool, error) { return true, nil }}}
		return l.write(w, r, s.baseURL(r), views, detail)
	}
}

func (s *Service) showVolume(k volumeKind) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		id := chi.URLParam(r, k.param)
		row, _ := k.get(tx, id)
		if row == nil {
			return k.notFound(id)
		}
		v := k.view(s, r, row)
		delete(v, "id")
		api.JSON(w, http.StatusOK, api.Pick(v, api.Fields(r.URL.Query())))
		return nil
	}
}

func (s *Service) createVolume(k volumeKind) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := api.ReadObject(r)
		if err != nil {
			return err
		}
		if extra := api.Unexpected(body, k.create...); len(extra) > 0 {
			return &api.Error{Status: http.StatusBadRequest, Field: extra[0],
				Msg: fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", strings.Join(extra, "', '"))}
		}
		in := api.NewInput(body, wording{})
		id, err := newID(in)
		if err != nil {
			return err
		}
		nodeRef := in.Required("node_uuid", 255)
		if in.Err != nil {
			return in.Err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		n, err := lookupNode(tx, nodeRef)
		if err != nil {
			return badRequestf("%s", err.Error())
		}
		var row any
		if k.key == "connectors" {
			row = &bmstate.VolumeConnector{ID: id, NodeID: n.ID, CreatedAt: s.now()}
		} else {
			row = &bmstate.VolumeTarget{ID: id, NodeID: n.ID, CreatedAt: s.now()}
		}
		if row, err = k.set(row, body); err != nil {
			return err
		}
		typ, cmd := k.put(row, 0)
		res, err := s.cfg.Repl.Propose(r.Context(), typ, cmd)
		if err != nil {
			return err
		}
		return s.writeVolume(w, r, k, http.StatusCreated, res)
	}
}

func (s *Service) writeVolume(w http.ResponseWriter, r *http.Request, k volumeKind, status int, res store.Result) error {
	var row any = &bmstate.VolumeConnector{}
	if k.key == "targets" {
		row = &bmstate.VolumeTarget{}
	}
	if err := res.Decode(row); err != nil {
		return err
	}
	v := k.view(s, r, row)
	if status == http.StatusCreated {
		w.Header().Set("Location", s.baseURL(r)+"/v1/volume/"+k.key+"/"+v["uuid"].(string))
	}
	delete(v, "id")
	api.JSON(w, status, v)
	return nil
}

func (s *Service) updateVolume(k volumeKind) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		ops, err := readPatch(r)
		if err != nil {
			return err
		}
		id := chi.URLParam(r, k.param)
		return retryStale(func() error {
			tx, err := s.cfg.Repl.Read(r.Context())
			if err != nil {
				return err
			}
			cur, nodeID := k.get(tx, id)
			if cur == nil {
				return k.notFound(id)
			}
			doc := k.doc(cur)
			if err := applyPatch(doc, ops, []string{"uuid", "id", "created_at", "updated_at", "links"}, k.mandatory); err != nil {
				return err
			}
			ref, _ := doc["node_uuid"].(string)
			n, err := lookupNode(tx, ref)
			if err != nil {
				return badRequestf("%s", err.Error())
			}
			for _, node := range []string{nodeID, n.ID} {
				cn, err := lookupNode(tx, node)
				if err != nil {
					return err
				}
				if err := poweredOff(cn, k.word+" update"); err != nil {
					return err
				}
			}
			row, err := k.set(cur, doc)
			if err != nil {
				return err
			}
			rev := int64(0)
			switch x := row.(type) {
			case *bmstate.VolumeConnector:
				x.NodeID, x.UpdatedAt, rev = n.ID, s.now(), x.Revision
			case *bmstate.VolumeTarget:
				x.NodeID, x.UpdatedAt, rev = n.ID, s.now(), x.Revision
			}
			typ, cmd := k.put(row, rev)
			res, err := s.cfg.Repl.Propose(r.Context(), typ, cmd)
			if err != nil {
				return err
			}
			return s.writeVolume(w, r, k, http.StatusOK, res)
		})
	}
}

func (s *Service) deleteVolume(k volumeKind) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		id := chi.URLParam(r, k.param)
		cur, nodeID := k.get(tx, id)
		if cur == nil {
			return k.notFound(id)
		}
		n, err := lookupNode(tx, nodeID)
		if err != nil {
			return err
		}
		if err := poweredOff(n, k.word+" deletion"); err != nil {
			return err
		}
		if _, err := s.cfg.Repl.Propose(r.Context(), k.del, bmstate.DeleteRecordCmd{ID: id}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// noBootVolume refuses to deploy a node that is to boot from a volume
// (a target at boot_index 0): that needs the "cinder" storage interface,
// which this cloud does not offer, and writing the image to the local
// disk instead would not be what was asked.
func noBootVolume(tx *memdb.Txn, n *bmstate.Node) error {
	for _, t := range bmstate.VolumeTargets(tx, n.ID) {
		if t.BootIndex == 0 {
			return badRequestf("Node %s has a boot volume target %s (boot_index 0): booting from a volume needs the cinder storage interface, which this cloud does not offer; nodes deploy to and boot from their local disk. Delete the target to deploy the node.", n.ID, t.ID)
		}
	}
	return nil
}
