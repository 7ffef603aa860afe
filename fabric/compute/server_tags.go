package compute

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Server tags (Nova's os-server-tags, microversion 2.26; set at create
// from 2.52): a server's set of short strings, kept sorted in its row,
// shown in its view and filtered on by lists (tags, tags-any, not-tags,
// not-tags-any).

const (
	// maxServerTags and maxTagLen are Nova's MAX_TAG_COUNT and
	// MAX_TAG_LENGTH.
	maxServerTags = 50
	maxTagLen     = 60
	tagsRule      = "os_compute_api:os-server-tags:"
)

// tagVMStates are the vm_states in which Nova lets a server's tags change.
var tagVMStates = []string{vmActive, vmPaused, vmSuspended, vmStopped}

// tagProblem says what is wrong with a tag ("" when nothing), in the
// words of Nova's schema of it.
func tagProblem(t string) string {
	switch n := utf8.RuneCountInString(t); {
	case n == 0:
		return "'' is too short"
	case n > maxTagLen:
		return "'" + t + "' is too long"
	case strings.ContainsAny(t, "/,"):
		return "'" + t + "' does not match '^[^,/]*$'"
	}
	return ""
}

// readTags reads a list of tags (a create's or a replace's "tags"), as
// Nova's schema checks it: an array of at most 50 valid tags. Duplicates
// collapse, as Nova's tag set does.
func readTags(field string, v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, badField(field, v, "%s is not of type 'array'", api.Text(v))
	}
	if len(l) > maxServerTags {
		return nil, badField(field, v, "%s is too long: the number of tags is over the limit of %d", api.Text(v), maxServerTags)
	}
	out := make([]string, 0, len(l))
	for _, x := range l {
		t, ok := x.(string)
		if !ok {
			return nil, badField(field, v, "%s is not of type 'string'", api.Text(x))
		}
		if p := tagProblem(t); p != "" {
			return nil, badField(field, v, "%s", p)
		}
		out = append(out, t)
	}
	return normalTags(out), nil
}

// normalTags is a set of tags as a row keeps it: sorted, without
// duplicates (Nova's rows come back in their key's order).
func normalTags(tags []string) []string {
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out)
}

// tagsOf is a server's tags as the API shows them (never null).
func tagsOf(sv *Server) []string {
	if sv.Tags == nil {
		return []string{}
	}
	return slices.Clone(sv.Tags)
}

// serverTagsCmd changes a server's tags: Replace (with Set, all of
// them, nil for none), Add or Delete one.
type serverTagsCmd struct {
	ID      string    `json:"id"`
	Replace bool      `json:"replace,omitempty"`
	Set     []string  `json:"set,omitempty"`
	Add     string    `json:"add,omitempty"`
	Delete  string    `json:"delete,omitempty"`
	Action  string    `json:"action"` // Nova's name of it, for a refusal
	Now     time.Time `json:"now"`
}

// serverTagsResult is the tags after the change; Added says Add made a
// new tag (201) rather than finding it there (204).
type serverTagsResult struct {
	Tags  []string `json:"tags"`
	Added bool     `json:"added,omitempty"`
}

// applyServerTags makes the change whole or not at all, checking the
// server's state and the limit on the row as it is when applied.
func applyServerTags(tx *memdb.Txn, c serverTagsCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if !slices.Contains(tagVMStates, old.VMState) {
		return nil, stateConflict(c.Action, c.ID, "vm_state", old.VMState)
	}
	tags := slices.Clone(old.Tags)
	res := serverTagsResult{}
	switch {
	case c.Replace:
		tags = normalTags(c.Set)
		if len(tags) > maxServerTags {
			return nil, badRequest("The number of tags exceeded the per-server limit %d", maxServerTags)
		}
	case c.Add != "":
		if len(tags) >= maxServerTags {
			return nil, badRequest("The number of tags exceeded the per-server limit %d", maxServerTags)
		}
		if slices.Contains(tags, c.Add) {
			return serverTagsResult{Tags: tagsOf(old)}, nil
		}
		tags, res.Added = normalTags(append(tags, c.Add)), true
	case c.Delete != "":
		i := slices.Index(tags, c.Delete)
		if i < 0 {
			return nil, notFound("Instance %s has no tag '%s'", c.ID, c.Delete)
		}
		tags = slices.Delete(tags, i, i+1)
	default:
		return nil, badRequest("no change of tags")
	}
	s := *old
	s.Tags = tags
	if len(s.Tags) == 0 {
		s.Tags = nil
	}
	s.Updated = c.Now
	res.Tags = tagsOf(&s)
	return res, tx.Insert(tServers, &s)
}

// tagsAPI checks the microversion: below 2.26 these paths do not exist.
func tagsAPI(r *http.Request) error {
	if !atLeast(r, 26) {
		return unknownResource()
	}
	return nil
}

// tagParam is the {tag} of the path, unescaped ("a%20b" is "a b").
func tagParam(r *http.Request) string {
	raw := chi.URLParam(r, "tag")
	if t, err := url.PathUnescape(raw); err == nil {
		return t
	}
	return raw
}

// readTagged is the {id} server for a read (rule "") or for a change
// (Nova's action name of it), which its vm_state must allow.
func (s *Service) readTagged(r *http.Request, rule, action string) (*Server, error) {
	if err := tagsAPI(r); err != nil {
		return nil, err
	}
	if rule == "" {
		return s.readServer(r, "")
	}
	sv, err := s.readServer(r, tagsRule+rule)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(tagVMStates, sv.VMState) {
		return nil, stateConflict(action, sv.ID, "vm_state", sv.VMState)
	}
	return sv, nil
}

func (s *Service) proposeTags(r *http.Request, c serverTagsCmd) (serverTagsResult, error) {
	c.Now = s.now()
	var res serverTagsResult
	_, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerTags, c, &res)
	return res, err
}

func (s *Service) listServerTags(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readTagged(r, "", "")
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"tags": tagsOf(sv)})
	return nil
}

func (s *Service) showServerTag(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readTagged(r, "", "")
	if err != nil {
		return err
	}
	if t := tagParam(r); !slices.Contains(sv.Tags, t) {
		return notFound("Server %s has no tag '%s'", sv.ID, t)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) replaceServerTags(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readTagged(r, "update_all", "update tags")
	if err != nil {
		return err
	}
	top, err := readRaw(r)
	if err != nil {
		return err
	}
	if err := allowOnly(top, "tags"); err != nil {
		return err
	}
	v, ok := top["tags"]
	if !ok {
		return missing("tags")
	}
	tags, err := readTags("tags", v)
	if err != nil {
		return err
	}
	res, err := s.proposeTags(r, serverTagsCmd{ID: sv.ID, Replace: true, Set: tags, Action: "update tags"})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"tags": res.Tags})
	return nil
}

func (s *Service) addServerTag(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readTagged(r, "update", "update tag")
	if err != nil {
		return err
	}
	t := tagParam(r)
	if p := tagProblem(t); p != "" {
		return badRequest("Tag '%s' is invalid. It must be a non empty string without characters '/' and ','. Validation error message: %s", t, p)
	}
	res, err := s.proposeTags(r, serverTagsCmd{ID: sv.ID, Add: t, Action: "update tag"})
	if err != nil {
		return err
	}
	if !res.Added {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Location", s.apiURL(r)+"/servers/"+sv.ID+"/tags/"+url.PathEscape(t))
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Service) deleteServerTag(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readTagged(r, "delete", "delete tag")
	if err != nil {
		return err
	}
	t := tagParam(r)
	if t == "" {
		return notFound("Instance %s has no tag ''", sv.ID)
	}
	if _, err := s.proposeTags(r, serverTagsCmd{ID: sv.ID, Delete: t, Action: "delete tag"}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) deleteServerTags(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readTagged(r, "delete_all", "delete tags")
	if err != nil {
		return err
	}
	if _, err := s.proposeTags(r, serverTagsCmd{ID: sv.ID, Replace: true, Action: "delete tags"}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tagQuery is a list's tag filters (2.26): each a comma-separated list.
type tagQuery struct {
	all, any, notAll, notAny []string
}

// readTagQuery reads the tag filters of a server list; before 2.26 there
// are none.
func readTagQuery(r *http.Request) *tagQuery {
	if !atLeast(r, 26) {
		return nil
	}
	q := r.URL.Query()
	var tq tagQuery
	found := false
	for _, p := range []struct {
		name string
		dst  *[]string
	}{{"tags", &tq.all}, {"tags-any", &tq.any}, {"not-tags", &tq.notAll}, {"not-tags-any", &tq.notAny}} {
		if v, ok := q[p.name]; ok {
			*p.dst, found = strings.Split(v[0], ","), true
		}
	}
	if !found {
		return nil
	}
	return &tq
}

// matches is Nova's tag filtering: a server with all of tags, any of
// tags-any, not all of not-tags and none of not-tags-any.
func (tq *tagQuery) matches(have []string) bool {
	return (tq.all == nil || api.HasTags(have, tq.all, true)) && (tq.any == nil || api.HasTags(have, tq.any, false)) &&
		(tq.notAll == nil || !api.HasTags(have, tq.notAll, true)) && (tq.notAny == nil || !api.HasTags(have, tq.notAny, false))
}
