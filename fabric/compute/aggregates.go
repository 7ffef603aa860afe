package compute

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Host aggregates (os-aggregates), admin only: groups of compute nodes
// with metadata; the metadata key availability_zone puts the group's
// nodes in that zone (see computestate.NodeAZ). Nova's image precache of
// an aggregate (2.81) is in aggregates_images.go.

const aggregatesRule = "os_compute_api:os-aggregates"

// listAggregates is GET /os-aggregates, by integer id.
func (s *Service) listAggregates(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	all := store.All[Aggregate](tx, tAggregates, "seq")
	out := make([]any, 0, len(all))
	for _, a := range all {
		out = append(out, aggregateView(r, a, true))
	}
	api.JSON(w, http.StatusOK, map[string]any{"aggregates": out})
	return nil
}

// createAggregate is POST /os-aggregates: 200 (Nova's, kept for
// compatibility), without hosts and metadata in the body.
func (s *Service) createAggregate(w http.ResponseWriter, r *http.Request) error {
	o, _, err := readBody(r, "aggregate")
	if err != nil {
		return err
	}
	if err := allowOnly(o, "name", "availability_zone"); err != nil {
		return err
	}
	in := newInput(o)
	n := name(in, "name", true)
	az := zoneName(in)
	if in.Err != nil {
		return in.Err
	}
	a := Aggregate{ID: api.NewUUID(), Name: n, Hosts: []string{}, Metadata: map[string]string{}, Created: s.now()}
	if az != "" {
		a.Metadata[computestate.AZKey] = az
	}
	var row Aggregate
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdAggregateCreate, aggregateCreateCmd{Aggregate: a}, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"aggregate": aggregateView(r, &row, false)})
	return nil
}

// zoneName reads availability_zone: a name (null reads as absent), and
// without ':', which server create reads as zone:host.
func zoneName(in *api.Input) string {
	if in.IsNull("availability_zone") {
		return ""
	}
	az := name(in, "availability_zone", false)
	if in.Err == nil && strings.Contains(az, ":") {
		in.Fail(badField("availability_zone", az, "'%s' does not match '^[^:]*$'", az))
	}
	return az
}

// aggregateID reads the path's integer id, as Nova validates it.
func aggregateID(r *http.Request) (uint64, error) {
	raw := pathParam(r, "id")
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, badRequest("Invalid input received: id must be an integer")
	}
	if n <= 0 {
		return 0, aggregateNotFound(raw)
	}
	return uint64(n), nil
}

func (s *Service) readAggregate(r *http.Request) (*Aggregate, *memdb.Txn, error) {
	id, err := aggregateID(r)
	if err != nil {
		return nil, nil, err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, nil, err
	}
	a := computestate.AggregateBySeq(tx, id)
	if a == nil {
		return nil, nil, aggregateNotFound(id)
	}
	return a, tx, nil
}

func (s *Service) showAggregate(w http.ResponseWriter, r *http.Request) error {
	a, _, err := s.readAggregate(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"aggregate": aggregateView(r, a, true)})
	return nil
}

// updateAggregate is PUT /os-aggregates/{id}: its name and/or zone.
func (s *Service) updateAggregate(w http.ResponseWriter, r *http.Request) error {
	id, err := aggregateID(r)
	if err != nil {
		return err
	}
	o, _, err := readBody(r, "aggregate")
	if err != nil {
		return err
	}
	if err := allowOnly(o, "name", "availability_zone"); err != nil {
		return err
	}
	if len(o) == 0 {
		return badField("aggregate", o, "{} does not have enough properties")
	}
	in := newInput(o)
	c := aggregateUpdateCmd{Seq: id, Now: s.now()}
	if _, ok := o["name"]; ok {
		n := name(in, "name", true)
		c.Name = &n
	}
	if _, ok := o["availability_zone"]; ok {
		// null is a zone without a name, which the apply refuses as
		// Nova does.
		az := zoneName(in)
		c.AZ = &az
	}
	if in.Err != nil {
		return in.Err
	}
	return s.proposeAggregate(w, r, cmdAggregateUpdate, c)
}

func (s *Service) deleteAggregate(w http.ResponseWriter, r *http.Request) error {
	id, err := aggregateID(r)
	if err != nil {
		return err
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdAggregateDelete, aggregateUpdateCmd{Seq: id, Now: s.now()}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// aggregateAction is POST /os-aggregates/{id}/action: add_host,
// remove_host or set_metadata, each under its own (admin) policy rule,
// which is checked before the body is judged.
func (s *Service) aggregateAction(w http.ResponseWriter, r *http.Request) error {
	top, err := readRaw(r)
	if err != nil && principal(r).IsAdmin() {
		return err
	}
	action, known := "", false
	for k := range top {
		action = k
	}
	switch action {
	case "add_host", "remove_host", "set_metadata":
		known = true
	}
	rule := "add_host"
	if known {
		rule = action
	}
	if err := requireAdmin(r, aggregatesRule+":"+rule); err != nil {
		return err
	}
	if len(top) != 1 {
		keys := make([]string, 0, len(top))
		for k := range top {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		return badRequest("Invalid action body: one of add_host, remove_host or set_metadata expected, got %q", keys)
	}
	if !known {
		return badRequest("There is no such action: %s", action)
	}
	arg := top[action]
	id, err := aggregateID(r)
	if err != nil {
		return err
	}
	o, ok := arg.(map[string]any)
	if !ok {
		return badField(action, arg, "%s is not of type 'object'", api.Text(arg))
	}
	if action == "set_metadata" {
		return s.setAggregateMetadata(w, r, id, o)
	}
	return s.aggregateHost(w, r, id, o, action == "add_host")
}

func (s *Service) aggregateHost(w http.ResponseWriter, r *http.Request, id uint64, o api.Object, add bool) error {
	if err := allowOnly(o, "host"); err != nil {
		return err
	}
	in := newInput(o)
	host := str(in, "host", true, 1, 255)
	if in.Err != nil {
		return in.Err
	}
	// Only a node of this cloud can be a member: which nodes there are
	// is the cluster's, not the compute state's, so it is asked here.
	hs, _, err := s.hostList(r)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(hs, func(h Host) bool { return h.Name == host }) {
		if add {
			return notFound("Compute host %s could not be found.", host)
		}
		return notFound("Cannot remove host %s in aggregate %d", host, id)
	}
	return s.proposeAggregate(w, r, cmdAggregateHost, aggregateHostCmd{Seq: id, Host: host, Add: add, Now: s.now()})
}

// metadataKey is Nova's pattern for an aggregate's metadata keys.
var metadataKey = regexp.MustCompile(`^[a-zA-Z0-9-_:. ]{1,255}$`)

// setAggregateMetadata sets the keys given; a null value deletes its key.
func (s *Service) setAggregateMetadata(w http.ResponseWriter, r *http.Request, id uint64, o api.Object) error {
	if err := allowOnly(o, "metadata"); err != nil {
		return err
	}
	raw, ok := o["metadata"]
	if !ok {
		return missing("metadata")
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return badField("metadata", raw, "%s is not of type 'object'", api.Text(raw))
	}
	set := make(map[string]*string, len(m))
	for k, v := range m {
		if !metadataKey.MatchString(k) {
			return badField("metadata", raw, "'%s' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'", k)
		}
		switch v := v.(type) {
		case nil:
			set[k] = nil
		case string:
			if len([]rune(v)) > 255 {
				return badField("metadata", raw, "'%s' is too long", v)
			}
			if k == computestate.AZKey && strings.Contains(v, ":") {
				return badField("metadata", raw, "'%s' does not match '^[^:]*$'", v)
			}
			set[k] = &v
		default:
			return badField("metadata", raw, "%s is not of type 'string', 'null'", api.Text(v))
		}
	}
	return s.proposeAggregate(w, r, cmdAggregateMeta, aggregateMetaCmd{Seq: id, Set: set, Now: s.now()})
}

// proposeAggregate applies a command that answers the aggregate it
// changed, and shows it.
func (s *Service) proposeAggregate(w http.ResponseWriter, r *http.Request, typ string, c any) error {
	var row Aggregate
	if _, err := api.Propose(r.Context(), s.cfg.Repl, typ, c, &row); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"aggregate": aggregateView(r, &row, true)})
	return nil
}

// aggregateView is Nova's aggregate; create's leaves out hosts and
// metadata (full false). uuid is 2.41's.
func aggregateView(r *http.Request, a *Aggregate, full bool) map[string]any {
	v := map[string]any{"id": a.Seq, "name": a.Name, "availability_zone": nil,
		"created_at": timeOrNil(a.Created), "updated_at": timeOrNil(a.Updated), "deleted_at": nil, "deleted": false}
	if az := a.AZ(); az != "" {
		v["availability_zone"] = az
	}
	if atLeast(r, 41) {
		v["uuid"] = a.ID
	}
	if full {
		hosts := a.Hosts
		if hosts == nil {
			hosts = []string{}
		}
		v["hosts"] = hosts
		meta := a.Metadata
		if meta == nil {
			meta = map[string]string{}
		}
		v["metadata"] = meta
	}
	return v
}
