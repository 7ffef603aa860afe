package network

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Tags (Neutron's tag and standard-attr-tag extensions): every resource
// with standard attributes carries a set of strings its owner sets with
// /{resources}/{id}/tags[/{tag}] and lists filter on (tags, tags-any,
// not-tags, not-tags-any).

const (
	// maxTagLen is Neutron's MAX_TAG_LEN.
	maxTagLen = 255
	// maxTags bounds one resource's tags, so that a replicated row stays
	// small; Neutron has no such bound, but no client needs more.
	maxTags = 100
)

// tagged is one kind of resource that carries tags.
type tagged struct {
	kind  string // singular, as in errors: "network"
	table string
	// find returns the row's tags if the caller may see the row and, with
	// write, change it (404 for a row it may not see, 403 for one it may
	// only see).
	find func(s *Service, tx *memdb.Txn, p *api.Principal, id string, write bool) ([]string, error)
}

// findTags adapts a collection and its writable finder to tagged.find.
func findTags[T any](c collection[T], w func(*Service) writable[T], tags func(*T) []string, kind string) func(*Service, *memdb.Txn, *api.Principal, string, bool) ([]string, error) {
	return func(s *Service, tx *memdb.Txn, p *api.Principal, id string, write bool) ([]string, error) {
		if write {
			row, err := w(s)(tx, p, id, "update_"+kind+":tags")
			if err != nil {
				return nil, err
			}
			return tags(row), nil
		}
		row, err := c(tx).Get(tx, p, id)
		if err != nil {
			return nil, err
		}
		return tags(row), nil
	}
}

// taggedKinds maps the collection in the path to its resource.
func (s *Service) taggedKinds() map[string]tagged {
	return map[string]tagged{
		"networks": {"network", tNetworks, findTags(s.networks, func(s *Service) writable[Network] { return s.writableNetwork },
			func(r *Network) []string { return r.Tags }, "network")},
		"subnets": {"subnet", tSubnets, findTags(s.subnets, func(s *Service) writable[Subnet] { return s.writableSubnet },
			func(r *Subnet) []string { return r.Tags }, "subnet")},
		"ports": {"port", tPorts, findTags(s.ports, func(s *Service) writable[Port] { return s.writablePort },
			func(r *Port) []string { return r.Tags }, "port")},
		"security-groups": {"security_group", tGroups, findTags(s.groups, func(s *Service) writable[SecurityGroup] { return s.writableGroup },
			func(r *SecurityGroup) []string { return r.Tags }, "security_group")},
		"routers": {"router", tRouters, findTags(s.routers, func(s *Service) writable[Router] { return s.writableRouter },
			func(r *Router) []string { return r.Tags }, "router")},
		"subnetpools": {"subnetpool", tSubnetPools, findTags(s.subnetPools, func(s *Service) writable[SubnetPool] { return s.writablePool },
			func(r *SubnetPool) []string { return r.Tags }, "subnetpool")},
		"floatingips": {"floatingip", tFloatingIPs, findTags(s.floatingIPs, func(s *Service) writable[FloatingIP] { return s.writableFIP },
			func(r *FloatingIP) []string { return r.Tags }, "floatingip")},
		"policies": {"policy", tQoSPolicies, findTags(s.qosPolicies, func(s *Service) writable[QoSPolicy] { return s.writableQoSPolicy },
			func(r *QoSPolicy) []string { return r.Tags }, "policy")},
		"trunks": {"trunk", tTrunks, findTags(s.trunks, func(s *Service) writable[Trunk] { return s.writableTrunk },
			func(r *Trunk) []string { return r.Tags }, "trunk")},
	}
}

// tagRoutes are the tag endpoints of every tagged collection.
func (s *Service) tagRoutes() []api.Route {
	var out []api.Route
	for _, coll := range []string{"networks", "subnets", "subnetpools", "ports", "security-groups", "routers", "floatingips", "policies", "trunks"} {
		base := "/v2.0/" + coll + "/{id}/tags"
		out = append(out,
			api.Route{Method: http.MethodGet, Path: base, Access: api.Authenticated, Handle: s.listTags(coll)},
			api.Route{Method: http.MethodGet, Path: base + "/{tag}", Access: api.Authenticated, Handle: s.showTag(coll)},
			api.Route{Method: http.MethodPut, Path: base, Access: api.Authenticated, Handle: s.replaceTags(coll)},
			api.Route{Method: http.MethodPut, Path: base + "/{tag}", Access: api.Authenticated, Handle: s.addTag(coll)},
			api.Route{Method: http.MethodDelete, Path: base, Access: api.Authenticated, Handle: s.clearTags(coll)},
			api.Route{Method: http.MethodDelete, Path: base + "/{tag}", Access: api.Authenticated, Handle: s.removeTag(coll)},
		)
	}
	return out
}

// tagsOf reads the tags of {id} in coll for the caller.
func (s *Service) tagsOf(r *http.Request, coll string, write bool) (tagged, []string, error) {
	k := s.taggedKinds()[coll]
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return k, nil, err
	}
	tags, err := k.find(s, tx, principal(r), chi.URLParam(r, "id"), write)
	return k, tags, err
}

// tagParam is the {tag} of the path, unescaped ("a%20b" is "a b").
func tagParam(r *http.Request) string {
	raw := chi.URLParam(r, "tag")
	if t, err := url.PathUnescape(raw); err == nil {
		return t
	}
	return raw
}

func tagNotFound(k tagged, id, tag string) error {
	return store.Fault(store.KindNotFound, "TagNotFound", "Tag %s could not be found for %s %s.", tag, k.kind, id)
}

func (s *Service) listTags(coll string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		_, tags, err := s.tagsOf(r, coll, false)
		if err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"tags": tagList(tags)})
		return nil
	}
}

func (s *Service) showTag(coll string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		k, tags, err := s.tagsOf(r, coll, false)
		if err != nil {
			return err
		}
		if tag := tagParam(r); !slices.Contains(tags, tag) {
			return tagNotFound(k, chi.URLParam(r, "id"), tag)
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Service) replaceTags(coll string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		k, _, err := s.tagsOf(r, coll, true)
		if err != nil {
			return err
		}
		var body map[string]any
		if err := api.DecodeLoose(r, &body); err != nil {
			return err
		}
		raw, ok := body["tags"].([]any)
		if !ok {
			return badInput("tags", "Invalid tags body")
		}
		tags := make([]string, 0, len(raw))
		for _, v := range raw {
			t, ok := v.(string)
			if !ok {
				return badInput("tags", "'%s' is not a valid string", api.Text(v))
			}
			tags = append(tags, t)
		}
		if err := checkTags(tags, true); err != nil {
			return err
		}
		row, err := s.proposeTags(r, k, tagsCmd{Set: &tags})
		if err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"tags": tagList(row)})
		return nil
	}
}

func (s *Service) addTag(coll string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		k, _, err := s.tagsOf(r, coll, true)
		if err != nil {
			return err
		}
		tag := tagParam(r)
		if err := checkTags([]string{tag}, false); err != nil {
			return err
		}
		if _, err := s.proposeTags(r, k, tagsCmd{Add: tag}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusCreated)
		return nil
	}
}

func (s *Service) clearTags(coll string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		k, _, err := s.tagsOf(r, coll, true)
		if err != nil {
			return err
		}
		if _, err := s.proposeTags(r, k, tagsCmd{Set: &[]string{}}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Service) removeTag(coll string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		k, _, err := s.tagsOf(r, coll, true)
		if err != nil {
			return err
		}
		if _, err := s.proposeTags(r, k, tagsCmd{Remove: tagParam(r)}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// proposeTags changes the tags of {id}; it returns them as they are now.
func (s *Service) proposeTags(r *http.Request, k tagged, c tagsCmd) ([]string, error) {
	match, err := readIfMatch(r)
	if err != nil {
		return nil, err
	}
	c.ifMatch, c.Table, c.Kind, c.ID, c.Now = match, k.table, k.kind, chi.URLParam(r, "id"), s.now()
	var tags []string
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdTags, c, &tags); err != nil {
		return nil, err
	}
	return tags, nil
}

// checkTags checks tags as Neutron does: strings of at most 255
// characters, and, in a whole set, no repeats. Commas are refused too:
// the list filters separate tags by them.
func checkTags(tags []string, set bool) error {
	if len(tags) > maxTags {
		return badInput("tags", "a resource has at most %d tags", maxTags)
	}
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case t == "":
			return badInput("tags", "a tag is not empty")
		case len(t) > maxTagLen:
			return badInput("tags", "'%s' exceeds maximum length of %d", t, maxTagLen)
		case strings.Contains(t, ","):
			return badInput("tags", "'%s' contains a comma", t)
		case set && seen[t]:
			return badInput("tags", "Duplicate items in the list: '%s'", t)
		}
		seen[t] = true
	}
	return nil
}

// readCreationTags reads the tags a create names (extension
// tag-ports-during-bulk-creation), checked as a replacement of all tags
// is, and sorted as stored tags are.
func readCreationTags(rd *api.Input) []string {
	tags := rd.Strs("tags")
	if rd.Err != nil {
		return nil
	}
	if err := checkTags(tags, true); err != nil {
		rd.Fail(err)
		return nil
	}
	if len(tags) == 0 {
		return nil
	}
	out := append([]string{}, tags...)
	sort.Strings(out)
	return out
}

func tagList(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// tagsCmd sets, adds to or removes from the tags of one row of Table.
type tagsCmd struct {
	ifMatch
	Table  string    `json:"table"`
	Kind   string    `json:"kind"`
	ID     string    `json:"id"`
	Set    *[]string `json:"set,omitempty"`
	Add    string    `json:"add,omitempty"`
	Remove string    `json:"remove,omitempty"`
	Now    time.Time `json:"now"`
}

// applyTags changes a row's tags; a change that changes nothing leaves
// the row (and its revision) as it is. It returns the row's tags.
func applyTags(tx *memdb.Txn, c tagsCmd) (any, error) {
	switch c.Table {
	case tNetworks:
		return retag(tx, c, func(r *Network) (*[]string, *time.Time, *int) { return &r.Tags, &r.UpdatedAt, &r.Revision })
	case tSubnets:
		return retag(tx, c, func(r *Subnet) (*[]string, *time.Time, *int) { return &r.Tags, &r.UpdatedAt, &r.Revision })
	case tPorts:
		return retag(tx, c, func(r *Port) (*[]string, *time.Time, *int) { return &r.Tags, &r.UpdatedAt, &r.Revision })
	case tGroups:
		return retag(tx, c, func(r *SecurityGroup) (*[]string, *time.Time, *int) { return &r.Tags, &r.UpdatedAt, &r.Revision })
	case tRouters:
		return retag(tx, c, func(r *Router) (*[]string, *time.Time, *int) { return &r.Tags, &r.UpdatedAt, &r.Revision })
	case tSubnetPools:
		return retag(tx, c, func(r *SubnetPool) (*[]string, *time.Time, *int) { return &r.Tags, &r.UpdatedAt, &r.Revision })
	case tFloatingIPs:
		return retag(tx, c, func(r *FloatingIP) (*[]string, *time.Time, *int) { return &r.Tags, &r.UpdatedAt, &r.Revision })
	case tQoSPolicies:
		return retag(tx, c, func(r *QoSPolicy) (*[]string, *time.Time, *int) { return &r.Tags, &r.UpdatedAt, &r.Revision })
	case tTrunks:
		return retag(tx, c, func(r *Trunk) (*[]string, *time.Time, *int) { return &r.Tags, &r.UpdatedAt, &r.Revision })
	}
	return nil, store.Fault(store.KindInvalid, "HTTPBadRequest", "resources of %s carry no tags", c.Table)
}

// retag applies c to the row of type T; fields points at its tags, update
// time and revision.
func retag[T any](tx *memdb.Txn, c tagsCmd, fields func(*T) (*[]string, *time.Time, *int)) (any, error) {
	old, err := current(tx, c.Table, c.Kind, c.ID, c.ifMatch, func(r *T) int { _, _, rev := fields(r); return *rev })
	if err != nil {
		return nil, err
	}
	row := *old
	tags, updated, rev := fields(&row)
	was := *tags
	next := append([]string{}, was...)
	switch {
	case c.Set != nil:
		next = append([]string{}, *c.Set...)
	case c.Add != "":
		if !slices.Contains(next, c.Add) {
			next = append(next, c.Add)
		}
	case c.Remove != "":
		i := slices.Index(next, c.Remove)
		if i < 0 {
			return nil, store.Fault(store.KindNotFound, "TagNotFound", "Tag %s could not be found for %s %s.", c.Remove, c.Kind, c.ID)
		}
		next = slices.Delete(next, i, i+1)
	}
	sort.Strings(next)
	if len(next) > maxTags {
		return nil, badInput("tags", "a resource has at most %d tags", maxTags)
	}
	if slices.Equal(next, was) {
		return tagList(was), nil
	}
	if len(next) == 0 {
		next = nil
	}
	*tags = next
	touch(updated, rev, c.Now)
	if err := tx.Insert(c.Table, &row); err != nil {
		return nil, err
	}
	return tagList(next), nil
}

// tagFilters are the list filters on tags. Each takes tags separated by
// commas (and repeated parameters): tags keeps a resource with all of
// them, tags-any one with any; not-tags drops one with all of them,
// not-tags-any one with any.
func tagFilters() map[string]api.Filter {
	filter := func(all, keep bool) api.Filter {
		return func(v api.View, want []string) (bool, error) {
			have, _ := v["tags"].([]string)
			var wanted []string
			for _, w := range want {
				for _, t := range strings.Split(w, ",") {
					if t != "" {
						wanted = append(wanted, t)
					}
				}
			}
			if len(wanted) == 0 {
				return true, nil
			}
			return api.HasTags(have, wanted, all) == keep, nil
		}
	}
	return map[string]api.Filter{
		"tags": filter(true, true), "tags-any": filter(false, true),
		"not-tags": filter(true, false), "not-tags-any": filter(false, false),
	}
}
