package identity

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Unified limits (Keystone's /v3/registered_limits and /v3/limits): a
// registered limit is a service's default for one resource (in a region
// or everywhere); a limit overrides it for one project or domain. Like
// Keystone, they are stored and served for the services to read; the
// enforcement model is flat (a project's limit does not depend on its
// parent's), and nothing here counts usage.

// RegisteredLimit is a service's default limit of one resource.
type RegisteredLimit struct {
	ID           string  `json:"id"`
	ServiceID    string  `json:"service_id"`
	RegionID     string  `json:"region_id,omitempty"`
	ResourceName string  `json:"resource_name"`
	DefaultLimit int     `json:"default_limit"`
	Description  *string `json:"description,omitempty"`
	// Key is service/region/resource, one registered limit each; the
	// state machine sets it.
	Key string `json:"key"`
}

// Limit is one project's or domain's limit of a registered resource.
type Limit struct {
	ID            string  `json:"id"`
	ProjectID     string  `json:"project_id,omitempty"`
	DomainID      string  `json:"domain_id,omitempty"`
	ServiceID     string  `json:"service_id"`
	RegionID      string  `json:"region_id,omitempty"`
	ResourceName  string  `json:"resource_name"`
	ResourceLimit int     `json:"resource_limit"`
	Description   *string `json:"description,omitempty"`
	// RegisteredLimitID is the registered limit this one overrides; the
	// state machine finds it (Keystone refuses a limit without one) and
	// refuses to delete or re-key it while this limit exists.
	RegisteredLimitID string `json:"registered_limit_id"`
	// Key is service/region/resource/project:<id> (or domain:<id>).
	Key string `json:"key"`
}

func registeredLimitKey(service, region, resource string) string {
	return service + "/" + region + "/" + resource
}

func (l *Limit) key() string {
	owner := "project:" + l.ProjectID
	if l.DomainID != "" {
		owner = "domain:" + l.DomainID
	}
	return registeredLimitKey(l.ServiceID, l.RegionID, l.ResourceName) + "/" + owner
}

// limitModel is the one enforcement model served, Keystone's default.
var limitModel = map[string]any{"name": "flat",
	"description": "Limit enforcement and validation does not take project hierarchy into consideration."}

// maxLimit bounds a limit as Keystone's schema does; -1 is unlimited.
const maxLimit = math.MaxInt32

func (s *Service) limitRoutes() []api.Route {
	return []api.Route{
		route("GET", "/v3/registered_limits", api.Authenticated, "identity:list_registered_limits", list(s, s.registeredLimits)),
		route("POST", "/v3/registered_limits", api.Admin, "identity:create_registered_limits", s.createRegisteredLimits),
		route("GET", "/v3/registered_limits/{id}", api.Authenticated, "identity:get_registered_limit", show(s, s.registeredLimits)),
		route("PATCH", "/v3/registered_limits/{id}", api.Admin, "identity:update_registered_limit", s.updateRegisteredLimit),
		route("DELETE", "/v3/registered_limits/{id}", api.Admin, "identity:delete_registered_limit", s.deleteRow(tRegisteredLimits)),

		route("GET", "/v3/limits/model", api.Authenticated, "identity:get_limit_model", func(w http.ResponseWriter, r *http.Request) error {
			api.JSON(w, http.StatusOK, map[string]any{"model": limitModel})
			return nil
		}),
		route("GET", "/v3/limits", api.Authenticated, "identity:list_limits", s.listLimits),
		route("POST", "/v3/limits", api.Admin, "identity:create_limits", s.createLimits),
		route("GET", "/v3/limits/{id}", api.Authenticated, "identity:get_limit", s.showLimit),
		route("PATCH", "/v3/limits/{id}", api.Admin, "identity:update_limit", s.updateLimit),
		route("DELETE", "/v3/limits/{id}", api.Admin, "identity:delete_limit", s.deleteRow(tLimits)),
	}
}

func (s *Service) registeredLimits(r *http.Request) api.Collection[RegisteredLimit] {
	return api.Collection[RegisteredLimit]{
		Table: tRegisteredLimits, One: "registered_limit", NotFound: notFoundOf("registered limit"), Listing: s.listing("registered_limits"),
		Visible: func(*api.Principal, *RegisteredLimit) bool { return true },
		View:    func(_ *memdb.Txn, _ *api.Principal, l *RegisteredLimit) api.View { return s.registeredLimitView(r, l) },
	}
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func strOrNull(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func (s *Service) registeredLimitView(r *http.Request, l *RegisteredLimit) api.View {
	return api.View{"id": l.ID, "service_id": l.ServiceID, "region_id": orNull(l.RegionID), "resource_name": l.ResourceName,
		"default_limit": l.DefaultLimit, "description": strOrNull(l.Description), "links": s.self(r, "registered_limits", l.ID)}
}

func (s *Service) limitView(r *http.Request, l *Limit) api.View {
	return api.View{"id": l.ID, "project_id": orNull(l.ProjectID), "domain_id": orNull(l.DomainID), "service_id": l.ServiceID,
		"region_id": orNull(l.RegionID), "resource_name": l.ResourceName, "resource_limit": l.ResourceLimit,
		"description": strOrNull(l.Description), "links": s.self(r, "limits", l.ID)}
}

// limitVisible is Keystone's scoping of limits: the system (and, in
// Rackstack, any admin) sees every limit; a domain-scoped token the
// domain's own and those of its projects; a project-scoped token its
// project's.
func limitVisible(tx *memdb.Txn, p *api.Principal, l *Limit) bool {
	switch {
	case p.IsAdmin() || (p.System && p.HasRole("reader")):
		return true
	case p.ProjectID != "":
		return l.ProjectID == p.ProjectID
	case p.DomainID != "" && !p.System:
		if l.DomainID != "" {
			return l.DomainID == p.DomainID
		}
		pr := store.Get[Project](tx, tProjects, l.ProjectID)
		return pr != nil && pr.DomainID == p.DomainID
	}
	return false
}

func (s *Service) listLimits(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p := api.PrincipalFrom(r.Context())
	views := []api.View{}
	for _, l := range store.All[Limit](tx, tLimits, "id") {
		if limitVisible(tx, p, l) {
			views = append(views, s.limitView(r, l))
		}
	}
	return s.writeList(w, r, s.listing("limits"), views)
}

// visibleLimit is the limit id if the caller may see it, else the 404.
func (s *Service) visibleLimit(r *http.Request) (*Limit, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	id := chi.URLParam(r, "id")
	l := store.Get[Limit](tx, tLimits, id)
	if l == nil || !limitVisible(tx, api.PrincipalFrom(r.Context()), l) {
		return nil, notFoundErr("limit", id)
	}
	return l, nil
}

func (s *Service) showLimit(w http.ResponseWriter, r *http.Request) error {
	l, err := s.visibleLimit(r)
	if err != nil {
		return err
	}
	return api.Show(w, r, "limit", s.limitView(r, l))
}

// Reading limits as Keystone's schemas do: no attribute they do not
// name, integers that are JSON integers.

var (
	registeredLimitFields = []string{"service_id", "region_id", "resource_name", "default_limit", "description"}
	limitFields           = []string{"project_id", "domain_id", "service_id", "region_id", "resource_name", "resource_limit", "description"}
	limitUpdateFields     = []string{"resource_limit", "description"}
)

// onlyFields refuses attributes outside names, as additionalProperties
// false does, and an empty object when update.
func onlyFields(in *api.Input, update bool, names ...string) {
	if extra := api.Unexpected(in.Obj, names...); len(extra) > 0 {
		in.Fail(api.BadField(extra[0], "Additional properties are not allowed ('%s' was unexpected)", strings.Join(extra, "', '")))
	}
	if update && len(in.Obj) == 0 {
		in.Fail(api.BadField(names[0], "{} does not have enough properties"))
	}
}

// limitInt reads an integer attribute: -1 (unlimited) to 2^31-1.
func limitInt(in *api.Input, field string, def int, required bool) int {
	v, ok := in.Obj[field]
	if in.Err != nil {
		return def
	}
	if !ok {
		if required {
			in.Fail(wording{}.Missing(field))
		}
		return def
	}
	f, isNum := v.(float64)
	switch {
	case !isNum || f != math.Trunc(f):
		in.Fail(api.BadField(field, "%s is not of type 'integer'", jsonText(v)))
	case f < -1:
		in.Fail(api.BadField(field, "%s is less than the minimum of -1", jsonText(v)))
	case f > maxLimit:
		in.Fail(api.BadField(field, "%s is greater than the maximum of %d", jsonText(v), maxLimit))
	default:
		return int(f)
	}
	return def
}

// description reads Keystone's nullable description.
func description(in *api.Input, def *string) *string {
	if !in.Has("description") {
		return def
	}
	if in.IsNull("description") {
		return nil
	}
	d := in.Str("description", "", 0)
	return &d
}

// resourceName reads a resource name: 1 to 255 characters.
func resourceName(in *api.Input, def string, required bool) string {
	if !required && !in.Has("resource_name") {
		return def
	}
	return in.Required("resource_name", maxName)
}

func readRegisteredLimit(in *api.Input, old *RegisteredLimit) *RegisteredLimit {
	l := RegisteredLimit{ID: api.NewHexID()}
	create := old == nil
	if !create {
		l = *old
	}
	onlyFields(in, !create, registeredLimitFields...)
	if create || in.Has("service_id") {
		l.ServiceID = in.Required("service_id", maxName)
	}
	l.RegionID = str(in, "region_id", l.RegionID)
	l.ResourceName = resourceName(in, l.ResourceName, create)
	l.DefaultLimit = limitInt(in, "default_limit", l.DefaultLimit, create)
	l.Description = description(in, l.Description)
	return &l
}

func readLimit(in *api.Input) *Limit {
	l := Limit{ID: api.NewHexID()}
	onlyFields(in, false, limitFields...)
	l.ProjectID = str(in, "project_id", "")
	l.DomainID = str(in, "domain_id", "")
	if in.Err == nil && (l.ProjectID == "") == (l.DomainID == "") {
		in.Fail(api.BadField("project_id", "a limit is of exactly one of project_id and domain_id"))
	}
	l.ServiceID = in.Required("service_id", maxName)
	l.RegionID = str(in, "region_id", "")
	l.ResourceName = resourceName(in, "", true)
	l.ResourceLimit = limitInt(in, "resource_limit", 0, true)
	l.Description = description(in, nil)
	return &l
}

// listBody reads {"<key>": [{...}, ...]}: at least one object.
func listBody(r *http.Request, key string) ([]*api.Input, error) {
	top, err := topObject(r, key)
	if err != nil {
		return nil, err
	}
	items, ok := top[key].([]any)
	if !ok || len(items) == 0 {
		return nil, api.BadField(key, "'%s' is a required property and must be a non-empty array", key)
	}
	out := make([]*api.Input, 0, len(items))
	for _, it := range items {
		obj, ok := it.(map[string]any)
		if !ok {
			return nil, api.BadField(key, "%s is not of type 'object'", jsonText(it))
		}
		out = append(out, api.NewInput(obj, wording{}))
	}
	return out, nil
}

// putAll proposes rows into table as one command: Keystone creates a
// batch of limits whole or not at all.
func (s *Service) putAll(r *http.Request, table string, rows []any) error {
	c := putAllCmd{Table: table, At: s.cfg.Now().UTC()}
	for _, row := range rows {
		raw, err := json.Marshal(row)
		if err != nil {
			return err
		}
		c.Rows = append(c.Rows, raw)
	}
	_, err := api.Propose(r.Context(), s.cfg.Repl, cmdPutAll, c, nil)
	return err
}

func (s *Service) createRegisteredLimits(w http.ResponseWriter, r *http.Request) error {
	ins, err := listBody(r, "registered_limits")
	if err != nil {
		return err
	}
	var rows []any
	var views []any
	for _, in := range ins {
		l := readRegisteredLimit(in, nil)
		if in.Err != nil {
			return in.Err
		}
		rows = append(rows, l)
		views = append(views, s.registeredLimitView(r, l))
	}
	if err := s.putAll(r, tRegisteredLimits, rows); err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, map[string]any{"registered_limits": views, "links": s.links(r)})
	return nil
}

func (s *Service) createLimits(w http.ResponseWriter, r *http.Request) error {
	ins, err := listBody(r, "limits")
	if err != nil {
		return err
	}
	var rows []any
	var views []any
	for _, in := range ins {
		l := readLimit(in)
		if in.Err != nil {
			return in.Err
		}
		rows = append(rows, l)
		views = append(views, s.limitView(r, l))
	}
	if err := s.putAll(r, tLimits, rows); err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, map[string]any{"limits": views, "links": s.links(r)})
	return nil
}

func (s *Service) updateRegisteredLimit(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	old := store.Get[RegisteredLimit](tx, tRegisteredLimits, id)
	if old == nil {
		return notFoundErr("registered limit", id)
	}
	in, err := body(r, "registered_limit")
	if err != nil {
		return err
	}
	l := readRegisteredLimit(in, old)
	if in.Err != nil {
		return in.Err
	}
	if err := s.put(r, tRegisteredLimits, false, l); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"registered_limit": s.registeredLimitView(r, l)})
	return nil
}

// updateLimit changes a limit's value or description, all Keystone lets
// change.
func (s *Service) updateLimit(w http.ResponseWriter, r *http.Request) error {
	old, err := s.visibleLimit(r)
	if err != nil {
		return err
	}
	in, err := body(r, "limit")
	if err != nil {
		return err
	}
	l := *old
	onlyFields(in, true, limitUpdateFields...)
	l.ResourceLimit = limitInt(in, "resource_limit", l.ResourceLimit, false)
	l.Description = description(in, l.Description)
	if in.Err != nil {
		return in.Err
	}
	if err := s.put(r, tLimits, false, &l); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"limit": s.limitView(r, &l)})
	return nil
}

// The state machine's checks of limits.

// putAllCmd creates rows of one table, all or none.
type putAllCmd struct {
	Table string            `json:"table"`
	Rows  []json.RawMessage `json:"rows"`
	At    time.Time         `json:"at"`
}

func applyPutAll(tx *memdb.Txn, c putAllCmd) (any, error) {
	if len(c.Rows) == 0 {
		return nil, invalid("%s: no rows", cmdPutAll)
	}
	for _, row := range c.Rows {
		if _, err := applyPut(tx, putCmd{Table: c.Table, Create: true, Row: row, At: c.At}); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// checkRegisteredLimit checks a registered limit's service and region
// and that no other one has its key.
func checkRegisteredLimit(tx *memdb.Txn, l *RegisteredLimit) error {
	if !exists(tx, tServices, l.ServiceID) {
		return invalid("Expecting to find service_id in registered_limit: no service %s.", l.ServiceID)
	}
	if l.RegionID != "" && !exists(tx, tRegions, l.RegionID) {
		return invalid("Expecting to find region_id in registered_limit: no region %s.", l.RegionID)
	}
	l.Key = registeredLimitKey(l.ServiceID, l.RegionID, l.ResourceName)
	if sameName(tx, tRegisteredLimits, "key", l.ID, l.Key) {
		return conflict("Conflict occurred attempting to store registered_limit - Duplicate entry found with service_id: %s, region_id: %s, resource_name: %s.", l.ServiceID, l.RegionID, l.ResourceName)
	}
	return nil
}

// checkLimit checks a limit's owner and finds the registered limit it
// overrides.
func checkLimit(tx *memdb.Txn, l *Limit) error {
	switch {
	case (l.ProjectID == "") == (l.DomainID == ""):
		return invalid("limit %s: exactly one of project_id and domain_id", l.ID)
	case l.ProjectID != "" && !exists(tx, tProjects, l.ProjectID):
		return invalid("Expecting to find project_id in limit: no project %s.", l.ProjectID)
	case l.DomainID != "" && !exists(tx, tDomains, l.DomainID):
		return invalid("Expecting to find domain_id in limit: no domain %s.", l.DomainID)
	}
	reg := first[RegisteredLimit](tx, tRegisteredLimits, "key", registeredLimitKey(l.ServiceID, l.RegionID, l.ResourceName))
	if reg == nil {
		return store.Forbiddenf("Unable to create a limit that has no corresponding registered limit.")
	}
	l.RegisteredLimitID = reg.ID
	l.Key = l.key()
	if sameName(tx, tLimits, "key", l.ID, l.Key) {
		return conflict("Conflict occurred attempting to store limit - Duplicate entry found with service_id: %s, region_id: %s, resource_name: %s, project_id: %s, domain_id: %s.", l.ServiceID, l.RegionID, l.ResourceName, l.ProjectID, l.DomainID)
	}
	return nil
}

// checkRegisteredLimitChange refuses to re-key a registered limit that
// limits override: they would override another resource's default.
func checkRegisteredLimitChange(tx *memdb.Txn, old, row any) error {
	before, _ := old.(*RegisteredLimit)
	after, _ := row.(*RegisteredLimit)
	if before == nil || after == nil || before.Key == after.Key {
		return nil
	}
	return refusedIfOverridden(tx, before.ID)
}

func refusedIfOverridden(tx *memdb.Txn, registered string) error {
	if first[Limit](tx, tLimits, "registered", registered) != nil {
		return store.Forbiddenf("Unable to update or delete registered limit %s because there are project limits associated with it.", registered)
	}
	return nil
}

// refusedIfLimited refuses to delete a service or region that registered
// limits name.
func refusedIfLimited(tx *memdb.Txn, index, id string) error {
	if l := first[RegisteredLimit](tx, tRegisteredLimits, index, id); l != nil {
		return conflict("Cannot delete %s %s: registered limit %s names it.", index, id, l.ID)
	}
	return nil
}

// first is the first row of table that index matches with args, or nil.
func first[T any](tx *memdb.Txn, table, index string, args ...any) *T {
	raw, _ := tx.First(table, index, args...)
	if raw == nil {
		return nil
	}
	return raw.(*T)
}
