package baremetal

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Chassis group nodes (a blade enclosure, a rack); they have no
// behaviour of their own.

var chassisListing = listing{
	key: "chassis", short: []string{"uuid", "description", "links"},
	known:      []string{"uuid", "description", "extra", "created_at", "updated_at", "links", "nodes"},
	unsortable: []string{"extra", "links", "nodes"},
}

func chassisNotFound(id string) error { return notFoundf("Chassis %s could not be found.", id) }

func (s *Service) chassisView(r *http.Request, c *bmstate.Chassis) api.View {
	base := s.baseURL(r)
	return api.View{
		"id": c.ID, "uuid": c.ID, "description": nullStr(c.Description), "extra": jsonMap(c.Extra),
		"created_at": timeText(c.CreatedAt), "updated_at": timeText(c.UpdatedAt),
		"links": links(base, "chassis", c.ID), "nodes": links(base, "chassis", c.ID+"/nodes"),
	}
}

func (s *Service) listChassis(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		detail := detail || askedDetail(r)
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		var views []api.View
		for _, c := range store.All[bmstate.Chassis](tx, bmstate.ChassisTable, "id") {
			views = append(views, s.chassisView(r, c))
		}
		return chassisListing.write(w, r, s.baseURL(r), views, detail)
	}
}

func (s *Service) readChassis(r *http.Request) (*bmstate.Chassis, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	id := chi.URLParam(r, "chassis")
	c := store.Get[bmstate.Chassis](tx, bmstate.ChassisTable, id)
	if c == nil {
		return nil, chassisNotFound(id)
	}
	return c, nil
}

func (s *Service) showChassis(w http.ResponseWriter, r *http.Request) error {
	c, err := s.readChassis(r)
	if err != nil {
		return err
	}
	v := s.chassisView(r, c)
	delete(v, "id")
	api.JSON(w, http.StatusOK, api.Pick(v, api.Fields(r.URL.Query())))
	return nil
}

func (s *Service) createChassis(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	if extra := api.Unexpected(body, "uuid", "description", "extra"); len(extra) > 0 {
		return &api.Error{Status: http.StatusBadRequest, Field: extra[0],
			Msg: fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", strings.Join(extra, "', '"))}
	}
	in := api.NewInput(body, wording{})
	c := &bmstate.Chassis{CreatedAt: s.now()}
	id, err := newID(in)
	if err != nil {
		return err
	}
	c.ID = id
	if err := setChassisFields(c, body, true); err != nil {
		return err
	}
	res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdCreateChassis, bmstate.CreateChassisCmd{Row: *c})
	if err != nil {
		return err
	}
	var out bmstate.Chassis
	if err := res.Decode(&out); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/chassis/"+out.ID)
	v := s.chassisView(r, &out)
	delete(v, "id")
	api.JSON(w, http.StatusCreated, v)
	return nil
}

func setChassisFields(c *bmstate.Chassis, doc map[string]any, create bool) error {
	in := api.NewInput(doc, wording{})
	if in.Has("description") || !create {
		c.Description = in.Str("description", "", 255)
	}
	if in.Has("extra") || !create {
		c.Extra = in.Object("extra")
	}
	return in.Err
}

func (s *Service) updateChassis(w http.ResponseWriter, r *http.Request) error {
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	return retryStale(func() error {
		cur, err := s.readChassis(r)
		if err != nil {
			return err
		}
		c := *cur
		doc := map[string]any{"description": nullStr(cur.Description), "extra": deepCopy(jsonMap(cur.Extra))}
		if err := applyPatch(doc, ops, []string{"uuid", "id", "created_at", "updated_at", "links", "nodes"}, nil); err != nil {
			return err
		}
		if err := setChassisFields(&c, doc, false); err != nil {
			return err
		}
		c.UpdatedAt = s.now()
		res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdPutChassis, bmstate.PutChassisCmd{Row: c, Revision: cur.Revision})
		if err != nil {
			return err
		}
		var out bmstate.Chassis
		if err := res.Decode(&out); err != nil {
			return err
		}
		v := s.chassisView(r, &out)
		delete(v, "id")
		api.JSON(w, http.StatusOK, v)
		return nil
	})
}

func (s *Service) deleteChassis(w http.ResponseWriter, r *http.Request) error {
	c, err := s.readChassis(r)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdDeleteChassis, bmstate.DeleteChassisCmd{ID: c.ID}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// chassisNodes lists the nodes of a chassis.
func (s *Service) chassisNodes(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.readChassis(r)
		if err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		var views []api.View
		for _, n := range store.All[bmstate.Node](tx, bmstate.NodeTable, "chassis", c.ID) {
			views = append(views, s.nodeView(r, n))
		}
		return nodeListing.write(w, r, s.baseURL(r), views, detail)
	}
}
