package volume

import (
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Cinder's qos-specs, admin only. A spec holds only limits this cloud
// enforces (volstate.CheckQoS): a key it would not enforce is refused
// with a 400 that names it, never kept and ignored. The limits of a
// front-end spec are applied by the node agent to the guest's disk of
// every volume of an associated type when it is plugged.

func qosView(q *volstate.QoSSpec) api.View {
	specs := q.Specs
	if specs == nil {
		specs = map[string]string{}
	}
	return api.View{"id": q.ID, "name": q.Name, "consumer": q.Consumer, "specs": specs}
}

// qosSpecValue reads a spec's value: a string, or a whole number.
func qosSpecValue(key string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		if len(x) > 255 {
			return "", cinderWording{}.BadField(key, v, "is longer than 255 characters")
		}
		return x, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.FormatInt(int64(x), 10), nil
		}
	}
	return "", cinderWording{}.BadField(key, v, "is not a string or a whole number")
}

// checkQoS words CheckQoS's refusal as a 400.
func checkQoS(consumer string, specs map[string]string) error {
	if err := volstate.CheckQoS(consumer, specs); err != nil {
		return badRequest("Invalid qos specs: %s.", err)
	}
	return nil
}

func (s *Service) listQoS(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	out := []api.View{}
	for _, q := range store.All[volstate.QoSSpec](tx, volstate.QoSTable, "id") {
		out = append(out, qosView(q))
	}
	api.JSON(w, http.StatusOK, map[string]any{"qos_specs": out})
	return nil
}

func (s *Service) qosLinks(r *http.Request, id string) []any {
	return s.links(r, "qos-specs", id)
}

func (s *Service) createQoS(w http.ResponseWriter, r *http.Request) error {
	o, err := body(r, "qos_specs")
	if err != nil {
		return err
	}
	in := newInput(o)
	q := volstate.QoSSpec{ID: api.NewUUID(), Specs: map[string]string{}}
	q.Name = in.Required("name", 255)
	q.Consumer = in.Str("consumer", volstate.ConsumerBackEnd, 16)
	if in.Err != nil {
		return in.Err
	}
	for k, v := range o {
		if k == "name" || k == "consumer" {
			continue
		}
		val, err := qosSpecValue(k, v)
		if err != nil {
			return err
		}
		q.Specs[k] = val
	}
	if err := checkQoS(q.Consumer, q.Specs); err != nil {
		return err
	}
	var row volstate.QoSSpec
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateQoS, volstate.CreateQoSCmd{Row: q}, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"qos_specs": qosView(&row), "links": s.qosLinks(r, row.ID)})
	return nil
}

func (s *Service) findQoS(r *http.Request) (*volstate.QoSSpec, *memdb.Txn, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, nil, err
	}
	q, err := volstate.LoadQoS(tx, chi.URLParam(r, "id"))
	return q, tx, err
}

func (s *Service) showQoS(w http.ResponseWriter, r *http.Request) error {
	q, _, err := s.findQoS(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"qos_specs": qosView(q), "links": s.qosLinks(r, q.ID)})
	return nil
}

// changeQoS applies change to spec id and proposes it, retrying when
// another change got in first.
func (s *Service) changeQoS(r *http.Request, id string, change func(q *volstate.QoSSpec) error) (*volstate.QoSSpec, error) {
	return changeRow(r.Context(), s.cfg.Repl, func(tx *memdb.Txn) (*volstate.QoSSpec, error) { return volstate.LoadQoS(tx, id) },
		func(cur *volstate.QoSSpec) (string, any, error) {
			next := cur.Clone()
			if next.Specs == nil {
				next.Specs = map[string]string{}
			}
			if err := change(next); err != nil {
				return "", nil, err
			}
			if err := checkQoS(next.Consumer, next.Specs); err != nil {
				return "", nil, err
			}
			return volstate.CmdPutQoS, volstate.PutQoSCmd{Row: *next, Revision: cur.Revision}, nil
		})
}

// setQoSKeys sets keys of a spec ("consumer" among them changes its
// consumer), answering the keys set.
func (s *Service) setQoSKeys(w http.ResponseWriter, r *http.Request) error {
	o, err := body(r, "qos_specs")
	if err != nil {
		return err
	}
	set := map[string]string{}
	for k, v := range o {
		val, err := qosSpecValue(k, v)
		if err != nil {
			return err
		}
		set[k] = val
	}
	if _, ok := set["name"]; ok {
		return cinderWording{}.BadField("name", set["name"], "a qos spec's name cannot change")
	}
	q, _, err := s.findQoS(r)
	if err != nil {
		return err
	}
	if _, err := s.changeQoS(r, q.ID, func(q *volstate.QoSSpec) error {
		for k, v := range set {
			if k == "consumer" {
				q.Consumer = v
				continue
			}
			q.Specs[k] = v
		}
		return nil
	}); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"qos_specs": set})
	return nil
}

func (s *Service) unsetQoSKeys(w http.ResponseWriter, r *http.Request) error {
	o, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := newInput(o)
	if !in.Has("keys") {
		return cinderWording{}.Missing("keys")
	}
	keys := in.Strs("keys")
	if in.Err != nil {
		return in.Err
	}
	q, _, err := s.findQoS(r)
	if err != nil {
		return err
	}
	if _, err := s.changeQoS(r, q.ID, func(q *volstate.QoSSpec) error {
		for _, k := range keys {
			if _, ok := q.Specs[k]; !ok {
				return store.Fault(store.KindNotFound, "itemNotFound", "QoS spec %s has no key %s.", q.ID, k)
			}
			delete(q.Specs, k)
		}
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) deleteQoS(w http.ResponseWriter, r *http.Request) error {
	force := false
	if f := r.URL.Query().Get("force"); f != "" {
		var ok bool
		if force, ok = api.ToBool(f); !ok {
			return cinderWording{}.BadField("force", f, "is not a boolean")
		}
	}
	q, _, err := s.findQoS(r)
	if err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdDeleteQoS, volstate.DeleteQoSCmd{ID: q.ID, Force: force}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) qosAssociations(w http.ResponseWriter, r *http.Request) error {
	q, tx, err := s.findQoS(r)
	if err != nil {
		return err
	}
	out := []api.View{}
	types := volstate.TypesOfQoS(tx, q.ID)
	slices.SortFunc(types, func(a, b *volstate.Type) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	for _, t := range types {
		out = append(out, api.View{"association_type": "volume_type", "id": t.ID, "name": t.Name})
	}
	api.JSON(w, http.StatusOK, map[string]any{"qos_associations": out})
	return nil
}

// associate associates the type vol_type_id with the spec, or (false)
// disassociates it. A type has at most one spec.
func (s *Service) associate(associate bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		typeRef := r.URL.Query().Get("vol_type_id")
		if typeRef == "" {
			return cinderWording{}.Missing("vol_type_id")
		}
		q, tx, err := s.findQoS(r)
		if err != nil {
			return err
		}
		t, err := volstate.LoadType(tx, typeRef)
		if err != nil {
			return notFound("Volume type", typeRef)
		}
		if _, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
			switch {
			case !associate:
				if t.QoSSpecID == q.ID {
					t.QoSSpecID = ""
				}
			case t.QoSSpecID != "" && t.QoSSpecID != q.ID:
				return badRequest("Invalid volume type: type %s is already associated with another qos specs: %s.", t.ID, t.QoSSpecID)
			default:
				t.QoSSpecID = q.ID
			}
			return nil
		}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
}

func (s *Service) disassociateAll(w http.ResponseWriter, r *http.Request) error {
	q, tx, err := s.findQoS(r)
	if err != nil {
		return err
	}
	for _, t := range volstate.TypesOfQoS(tx, q.ID) {
		if _, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
			if t.QoSSpecID == q.ID {
				t.QoSSpecID = ""
			}
			return nil
		}); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
