package baremetal

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Deploy templates (Ironic 1.55): deploy steps named by a custom trait,
// run during the deploy of a node whose instance traits include the name
// (bmstate.DeploySteps says which steps this cloud runs and in what
// order). A template is accepted as Ironic accepts it, whatever its
// steps; a deploy or a server whose traits select a template with a step
// the agent and BMC cannot run (BIOS, RAID, firmware) is refused naming
// the step.

var deployTemplateFields = []string{"uuid", "name", "steps", "extra", "created_at", "updated_at", "links"}

// templateNameRE is a custom trait, the only names a template may have.
var templateNameRE = regexp.MustCompile(`^CUSTOM_[A-Z0-9_]+$`)

// stepInterfaces are the interfaces whose steps a deploy template may
// name (Ironic's list).
var stepInterfaces = []string{"bios", "deploy", "firmware", "management", "network", "power", "raid", "storage", "vendor"}

func deployTemplateNotFound(id string) error {
	return notFoundf("Deploy template %s could not be found.", id)
}

func (s *Service) deployTemplateView(r *http.Request, t *bmstate.DeployTemplate) api.View {
	steps := make([]any, 0, len(t.Steps))
	for _, st := range t.Steps {
		steps = append(steps, st)
	}
	return api.View{
		"id": t.ID, "uuid": t.ID, "name": t.Name, "steps": steps, "extra": jsonMap(t.Extra),
		"created_at": timeText(t.CreatedAt), "updated_at": timeText(t.UpdatedAt),
		"links": links(s.baseURL(r), "deploy_templates", t.ID),
	}
}

func lookupDeployTemplate(tx *memdb.Txn, ident string) (*bmstate.DeployTemplate, error) {
	if t := store.Get[bmstate.DeployTemplate](tx, bmstate.DeployTemplateTable, ident); t != nil {
		return t, nil
	}
	if raw, _ := tx.First(bmstate.DeployTemplateTable, "name", ident); raw != nil {
		return raw.(*bmstate.DeployTemplate), nil
	}
	return nil, deployTemplateNotFound(ident)
}

// setDeployTemplate checks doc (a create body or a patched template) and
// sets t's name, steps and extra from it.
func setDeployTemplate(t *bmstate.DeployTemplate, doc map[string]any) error {
	in := api.NewInput(doc, wording{})
	t.Name = in.Required("name", 255)
	if in.Err != nil {
		return in.Err
	}
	if !templateNameRE.MatchString(t.Name) {
		return wording{}.BadField("name", t.Name, "A deploy template's name must be a custom trait: CUSTOM_ followed by upper-case letters, digits and underscores.")
	}
	raw, ok := doc["steps"]
	if !ok || raw == nil {
		return wording{}.Missing("steps")
	}
	list, ok := raw.([]any)
	if !ok {
		return wording{}.BadField("steps", raw, "Steps must be a list of deploy steps.")
	}
	if len(list) == 0 {
		return wording{}.BadField("steps", raw, "A deploy template needs at least one step.")
	}
	t.Steps = make([]map[string]any, 0, len(list))
	seen := map[string]bool{}
	for i, x := range list {
		st, err := deployStep(i, x)
		if err != nil {
			return err
		}
		key := st["interface"].(string) + "." + st["step"].(string)
		if seen[key] {
			return wording{}.BadField("steps", raw, fmt.Sprintf("Duplicate deploy step %s: a template may name each step once.", key))
		}
		seen[key] = true
		t.Steps = append(t.Steps, st)
	}
	t.Extra = in.Object("extra")
	return in.Err
}

// deployStep checks one step: {"interface", "step", "args", "priority"}.
func deployStep(i int, x any) (map[string]any, error) {
	field := fmt.Sprintf("steps[%d]", i)
	m, ok := x.(map[string]any)
	if !ok {
		return nil, wording{}.BadField(field, x, "A deploy step must be an object with interface, step, args and priority.")
	}
	if extra := api.Unexpected(m, "interface", "step", "args", "priority"); len(extra) > 0 {
		return nil, wording{}.BadField(field, x, "Additional properties are not allowed ('"+strings.Join(extra, "', '")+"' was unexpected).")
	}
	iface, _ := m["interface"].(string)
	if !slices.Contains(stepInterfaces, iface) {
		return nil, wording{}.BadField(field+".interface", m["interface"], "The interface must be one of "+strings.Join(stepInterfaces, ", ")+".")
	}
	if name, _ := m["step"].(string); name == "" {
		return nil, wording{}.BadField(field+".step", m["step"], "The step must be a non-empty string.")
	}
	if _, ok := m["args"].(map[string]any); !ok {
		return nil, wording{}.BadField(field+".args", m["args"], "The args must be an object.")
	}
	p, ok := api.ToInt(m["priority"])
	if _, isStr := m["priority"].(string); !ok || isStr || p < 0 {
		return nil, wording{}.BadField(field+".priority", m["priority"], "The priority must be a non-negative integer.")
	}
	return map[string]any{"interface": iface, "step": m["step"], "args": m["args"], "priority": p}, nil
}

func (s *Service) listDeployTemplates(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		detail := detail || askedDetail(r)
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		var views []api.View
		for _, t := range store.All[bmstate.DeployTemplate](tx, bmstate.DeployTemplateTable, "id") {
			views = append(views, s.deployTemplateView(r, t))
		}
		l := listing{key: "deploy_templates", short: []string{"uuid", "name", "links"}, known: deployTemplateFields,
			unsortable: []string{"steps", "extra", "links"}}
		return l.write(w, r, s.baseURL(r), views, detail)
	}
}

func (s *Service) showDeployTemplate(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	t, err := lookupDeployTemplate(tx, chi.URLParam(r, "template"))
	if err != nil {
		return err
	}
	v := s.deployTemplateView(r, t)
	delete(v, "id")
	api.JSON(w, http.StatusOK, api.Pick(v, api.Fields(r.URL.Query())))
	return nil
}

func (s *Service) createDeployTemplate(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	if extra := api.Unexpected(body, "uuid", "name", "steps", "extra"); len(extra) > 0 {
		return &api.Error{Status: http.StatusBadRequest, Field: extra[0],
			Msg: fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", strings.Join(extra, "', '"))}
	}
	id, err := newID(api.NewInput(body, wording{}))
	if err != nil {
		return err
	}
	t := bmstate.DeployTemplate{ID: id, CreatedAt: s.now()}
	if err := setDeployTemplate(&t, body); err != nil {
		return err
	}
	return s.putDeployTemplate(w, r, http.StatusCreated, t, 0)
}

func (s *Service) putDeployTemplate(w http.ResponseWriter, r *http.Request, status int, t bmstate.DeployTemplate, rev int64) error {
	res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdPutDeployTemplate, bmstate.PutDeployTemplateCmd{Row: t, Revision: rev})
	if err != nil {
		return err
	}
	var out bmstate.DeployTemplate
	if err := res.Decode(&out); err != nil {
		return err
	}
	if status == http.StatusCreated {
		w.Header().Set("Location", s.baseURL(r)+"/v1/deploy_templates/"+out.ID)
	}
	v := s.deployTemplateView(r, &out)
	delete(v, "id")
	api.JSON(w, status, v)
	return nil
}

func (s *Service) updateDeployTemplate(w http.ResponseWriter, r *http.Request) error {
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	return retryStale(func() error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		cur, err := lookupDeployTemplate(tx, chi.URLParam(r, "template"))
		if err != nil {
			return err
		}
		v := s.deployTemplateView(r, cur)
		doc := deepCopy(map[string]any{"name": v["name"], "steps": v["steps"], "extra": v["extra"]})
		if err := applyPatch(doc, ops, []string{"uuid", "id", "created_at", "updated_at", "links"}, []string{"name", "steps"}); err != nil {
			return err
		}
		t := *cur
		if err := setDeployTemplate(&t, doc); err != nil {
			return err
		}
		t.UpdatedAt = s.now()
		err = s.putDeployTemplate(w, r, http.StatusOK, t, cur.Revision)
		return err
	})
}

func (s *Service) deleteDeployTemplate(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	t, err := lookupDeployTemplate(tx, chi.URLParam(r, "template"))
	if err != nil {
		return err
	}
	if _, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdDeleteDeployTemplate, bmstate.DeleteRecordCmd{ID: t.ID}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
