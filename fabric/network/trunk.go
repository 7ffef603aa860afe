package network

import (
	"net/http"
	"regexp"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Trunks (Neutron's trunk and trunk-details extensions): a parent port
// whose device carries its subports' frames, each tagged with the
// subport's VLAN id (segmentation_type vlan, the one type the dataplane
// enforces). Trunks are their project's, as ports are: its members
// create them on ports they may change, admins see and change all.

type (
	Trunk   = netstate.Trunk
	SubPort = netstate.SubPort
)

const tTrunks = netstate.TableTrunks

// uuidText is neutron-lib's validate_uuid: a subport's port_id.
var uuidText = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

var trunkAttrs = newAttrSpec("name description admin_state_up", "port_id sub_ports tenant_id project_id",
	"id status created_at updated_at revision_number tags")

// trunks is the trunks collection as seen in tx.
func (s *Service) trunks(tx *memdb.Txn) api.Collection[Trunk] {
	return api.Collection[Trunk]{Table: tTrunks, One: "trunk",
		Project:  func(t *Trunk) string { return t.Project },
		View:     func(tx *memdb.Txn, _ *api.Principal, t *Trunk) api.View { return s.trunkView(tx, t) },
		NotFound: trunkNotFound, Listing: s.listing("trunks")}
}

// writableTrunk finds a trunk the caller may change: its project's
// members and admins.
func (s *Service) writableTrunk(tx *memdb.Txn, p *api.Principal, id, action string) (*Trunk, error) {
	t, err := s.trunks(tx).Get(tx, p, id)
	if err != nil {
		return nil, err
	}
	if !p.CanWrite(t.Project) {
		return nil, policyDenied(action)
	}
	return t, nil
}

func subPortViews(subs []SubPort) []map[string]any {
	out := make([]map[string]any, 0, len(subs))
	for _, sp := range subs {
		out = append(out, map[string]any{"port_id": sp.PortID, "segmentation_type": sp.SegmentationType, "segmentation_id": sp.SegmentationID})
	}
	return out
}

// trunkView shows a trunk. Its status is its parent's: ACTIVE once the
// node hosting the parent's device enforces it (and with it the
// subports), DOWN before.
func (s *Service) trunkView(tx *memdb.Txn, t *Trunk) api.View {
	status := "DOWN"
	if pt := store.Get[Port](tx, tPorts, t.PortID); pt != nil && s.portStatus(tx, pt) == "ACTIVE" {
		status = "ACTIVE"
	}
	return map[string]any{
		"id": t.ID, "name": t.Name, "description": t.Description, "port_id": t.PortID,
		"sub_ports": subPortViews(t.SubPorts), "admin_state_up": t.AdminStateUp, "status": status,
		"tenant_id": t.Project, "project_id": t.Project, "tags": tagList(t.Tags),
		"created_at": timeText(t.CreatedAt), "updated_at": timeText(t.UpdatedAt), "revision_number": t.Revision,
	}
}

// trunkDetails is a parent port's trunk_details (trunk-details): nil for
// a port that is no trunk's parent, which then has no such key.
func trunkDetails(tx *memdb.Txn, pt *Port) map[string]any {
	t := trunkOfParent(tx, pt.ID)
	if t == nil {
		return nil
	}
	subs := subPortViews(t.SubPorts)
	for _, v := range subs {
		if sp := store.Get[Port](tx, tPorts, v["port_id"].(string)); sp != nil {
			v["mac_address"] = sp.MAC
		}
	}
	return map[string]any{"trunk_id": t.ID, "sub_ports": subs}
}

// readSubPorts reads sub_ports as neutron-lib's validate_subports does:
// a list of objects, each port once; with segmentation, a type and an
// id, each (type, id) once. Without segmentation (remove_subports) only
// the port ids count.
func readSubPorts(rd *api.Input, field string, segmentation bool) []SubPort {
	raw, ok := rd.Obj[field].([]any)
	if !ok {
		rd.Fail(invalidInput("Invalid data format for subports: '%s' is not a list", api.Text(rd.Obj[field])))
		return nil
	}
	out := make([]SubPort, 0, len(raw))
	ports := map[string]bool{}
	segs := map[int]bool{}
	for _, x := range raw {
		m, ok := x.(map[string]any)
		if !ok {
			rd.Fail(invalidInput("Invalid data format for subport: '%s' is not a dict", api.Text(x)))
			return nil
		}
		id, _ := m["port_id"].(string)
		if _, given := m["port_id"]; !given {
			rd.Fail(invalidInput("A valid port UUID must be specified"))
			return nil
		}
		if !uuidText.MatchString(id) {
			rd.Fail(invalidInput("Invalid UUID for subport: '%s'", api.Text(m["port_id"])))
			return nil
		}
		if ports[id] {
			rd.Fail(invalidInput("Non unique UUID for subport: '%s'", id))
			return nil
		}
		ports[id] = true
		sp := SubPort{PortID: id}
		if segmentation {
			typ, tok := m["segmentation_type"].(string)
			seg, sok := api.ToInt(m["segmentation_id"])
			_, segGiven := m["segmentation_id"]
			switch {
			case !tok || !segGiven:
				rd.Fail(invalidInput("Invalid subport details '%s': missing segmentation information. Must specify both segmentation_id and segmentation_type", api.Text(x)))
				return nil
			case !sok:
				rd.Fail(invalidInput("Invalid subport details: segmentation_id '%s' is not an integer", api.Text(m["segmentation_id"])))
				return nil
			case typ != "vlan":
				rd.Fail(invalidInput("Unknown segmentation_type '%s'", typ))
				return nil
			case seg < 1 || seg > 4094:
				rd.Fail(invalidInput("Segmentation ID '%d' is not in range", seg))
				return nil
			case segs[seg]:
				rd.Fail(invalidInput("Segmentation ID '%d' for '%s' is not unique", seg, id))
				return nil
			}
			segs[seg] = true
			sp.SegmentationType, sp.SegmentationID = typ, seg
		}
		out = append(out, sp)
	}
	return out
}

// checkSubPortsWritable: each subport is a port the caller sees and may
// change (the trunk rewrites its device_owner and binding).
func (s *Service) checkSubPortsWritable(tx *memdb.Txn, p *api.Principal, subs []SubPort) error {
	for _, sp := range subs {
		if _, err := s.writablePort(tx, p, sp.PortID, "add_subports"); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) parseTrunk(tx *memdb.Txn, p *api.Principal, o api.Object) (Trunk, error) {
	if err := trunkAttrs.check(o, http.MethodPost); err != nil {
		return Trunk{}, err
	}
	rd := input(o)
	now := s.now()
	t := Trunk{ID: api.NewUUID(), CreatedAt: now, UpdatedAt: now}
	t.PortID = rd.Str("port_id", "", 64)
	if rd.Err == nil && t.PortID == "" {
		return t, badInput("port_id", "'port_id' is a required property")
	}
	t.Name = rd.Str("name", "", 255)
	t.Description = rd.Str("description", "", 255)
	t.AdminStateUp = rd.Bool("admin_state_up", true)
	t.Project = readProject(rd, p)
	if rd.Has("sub_ports") {
		t.SubPorts = readSubPorts(rd, "sub_ports", true)
	}
	if rd.Err != nil {
		return t, rd.Err
	}
	if _, err := s.writablePort(tx, p, t.PortID, "create_trunk"); err != nil {
		return t, err
	}
	return t, s.checkSubPortsWritable(tx, p, t.SubPorts)
}

// trunkCreation makes one trunk: Neutron's trunk plugin has no bulk
// create, so {"trunks": [...]} is refused as a body without "trunk".
func (s *Service) trunkCreation() creation[Trunk, Trunk] {
	return creation[Trunk, Trunk]{one: "trunk", parse: s.parseTrunk,
		command: func(_ *memdb.Txn, ts []Trunk) (string, any) {
			return cmdTrunkCreate, trunkCreateCmd{Trunk: ts[0], Now: s.now()}
		},
		view: func(tx *memdb.Txn, _ *api.Principal, t *Trunk) api.View { return s.trunkView(tx, t) }}
}

func (s *Service) updateTrunk(w http.ResponseWriter, r *http.Request) error {
	ch, err := readChange(s, r, "trunk", trunkAttrs, "update_trunk", s.writableTrunk)
	if err != nil {
		return err
	}
	c := trunkUpdateCmd{ifMatch: ch.match, ID: ch.row.ID, Now: s.now()}
	c.Name = optStr(ch.in, "name", 255)
	c.Description = optStr(ch.in, "description", 255)
	c.AdminStateUp = optBool(ch.in, "admin_state_up", true)
	if ch.in.Err != nil {
		return ch.in.Err
	}
	var row Trunk
	tx, err := api.Propose(r.Context(), s.cfg.Repl, cmdTrunkUpdate, c, &row)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"trunk": s.trunkView(tx, &row)})
	return nil
}

func (s *Service) deleteTrunk(w http.ResponseWriter, r *http.Request) error {
	return remove(s, w, r, cmdTrunkDelete, "delete_trunk", s.writableTrunk)
}

// changeSubports answers add_subports and remove_subports: the body is
// {"sub_ports": [...]}, the answer the trunk itself, unwrapped, as in
// Neutron.
func (s *Service) changeSubports(add bool) api.HandlerFunc {
	action := "remove_subports"
	if add {
		action = "add_subports"
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		p := principal(r)
		t, err := s.writableTrunk(tx, p, chi.URLParam(r, "id"), action)
		if err != nil {
			return err
		}
		var body api.Object
		if err := api.DecodeLoose(r, &body); err != nil {
			return err
		}
		rd := input(body)
		if !rd.Has("sub_ports") {
			return badInput("sub_ports", "'sub_ports' is a required property")
		}
		subs := readSubPorts(rd, "sub_ports", add)
		if rd.Err != nil {
			return rd.Err
		}
		c := trunkSubportsCmd{ID: t.ID, Now: s.now()}
		if add {
			if err := s.checkSubPortsWritable(tx, p, subs); err != nil {
				return err
			}
			c.Add = subs
		} else {
			for _, sp := range subs {
				c.Remove = append(c.Remove, sp.PortID)
			}
		}
		var row Trunk
		tx, err = api.Propose(r.Context(), s.cfg.Repl, cmdTrunkSubports, c, &row)
		if err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, s.trunkView(tx, &row))
		return nil
	}
}

// getSubports answers GET /v2.0/trunks/{id}/get_subports.
func (s *Service) getSubports(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	t, err := s.trunks(tx).Get(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"sub_ports": subPortViews(t.SubPorts)})
	return nil
}

func (s *Service) trunkRoutes() []api.Route {
	const get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	const token = api.Authenticated
	return []api.Route{
		{Method: get, Path: "/v2.0/trunks", Access: token, Rule: "get_trunk", Handle: list(s, s.trunks)},
		{Method: post, Path: "/v2.0/trunks", Access: token, Rule: "create_trunk", Handle: create(s, s.trunkCreation())},
		{Method: get, Path: "/v2.0/trunks/{id}", Access: token, Rule: "get_trunk", Handle: show(s, s.trunks)},
		{Method: put, Path: "/v2.0/trunks/{id}", Access: token, Rule: "update_trunk", Handle: s.updateTrunk},
		{Method: del, Path: "/v2.0/trunks/{id}", Access: token, Rule: "delete_trunk", Handle: s.deleteTrunk},
		{Method: put, Path: "/v2.0/trunks/{id}/add_subports", Access: token, Rule: "add_subports", Handle: s.changeSubports(true)},
		{Method: put, Path: "/v2.0/trunks/{id}/remove_subports", Access: token, Rule: "remove_subports", Handle: s.changeSubports(false)},
		{Method: get, Path: "/v2.0/trunks/{id}/get_subports", Access: token, Rule: "get_subports", Handle: s.getSubports},
	}
}
