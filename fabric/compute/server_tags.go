package compute

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's server tags (microversion 2.26): strings of 1 to 60 characters
// without "/" or ",", at most 50 a server, shown in the server's view,
// set at create from 2.52 and filtered on by a list (tags, tags-any,
// not-tags, not-tags-any).

const (
	maxServerTags = 50
	maxTagLength  = 60
	tagsRule      = "os_compute_api:os-server-tags:"
)

// tagStates are the vm_states a server's tags may change in (Nova's
// server tags controller's).
var tagStates = []string{vmActive, vmPaused, vmStopped, vmSuspended, "rescued", "resized", "shelved", "shelved_offloaded"}

// checkTag is Nova's tag schema: 1-60 characters, no "/" nor ",".
func checkTag(field string, v any) (string, error) {
	t, ok := v.(string)
	if !ok {
		return "", badField(field, v, "%s is not of type 'string'", api.Text(v))
	}
	if t == "" || len([]rune(t)) > maxTagLength || strings.ContainsAny(t, "/,") {
		return "", badField(field, t, "A tag is 1 to %d characters without '/' or ','.", maxTagLength)
	}
	return t, nil
}

// readTags reads a list of tags (duplicates kept once, in order).
func readTags(field string, v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, badField(field, v, "%s is not of type 'array'", api.Text(v))
	}
	out := []string{}
	for _, x := range l {
		t, err := checkTag(field, x)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > maxServerTags {
		return nil, badRequest("The number of tags exceeded the per-server limit %d", maxServerTags)
	}
	return out, nil
}

// serverTagsCmd changes a server's tags: Set replaces them all (nil
// with All: removes them all), Add adds one, Remove removes one.
type serverTagsCmd struct {
	ID     string    `json:"id"`
	All    bool      `json:"all,omitempty"`
	Set    []string  `json:"set,omitempty"`
	Add    string    `json:"add,omitempty"`
	Remove string    `json:"remove,omitempty"`
	Now    time.Time `json:"now"`
}

// tagsResult is what a tags change did: the tags, and whether Add added.
type tagsResult struct {
	Tags  []string `json:"tags"`
	Added bool     `json:"added,omitempty"`
}

func applyServerTags(tx *memdb.Txn, c serverTagsCmd) (any, error) {
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden || old.Want == "deleted" {
		return nil, serverNotFound(c.ID)
	}
	if !slices.Contains(tagStates, old.VMState) {
		return nil, stateConflict("update tags of", c.ID, "vm_state", old.VMState)
	}
	s := *old
	res := tagsResult{}
	switch {
	case c.All:
		s.Tags = slices.Clone(c.Set)
	case c.Add != "":
		if !slices.Contains(s.Tags, c.Add) {
			if len(s.Tags) >= maxServerTags {
				return nil, badRequest("The number of tags exceeded the per-server limit %d", maxServerTags)
			}
			s.Tags = append(slices.Clone(s.Tags), c.Add)
			res.Added = true
		}
	case c.Remove != "":
		i := slices.Index(s.Tags, c.Remove)
		if i < 0 {
			return nil, notFound("Tag %s could not be found.", c.Remove)
		}
		s.Tags = slices.Delete(slices.Clone(s.Tags), i, i+1)
	}
	if len(s.Tags) == 0 {
		s.Tags = nil
	}
	s.Updated = c.Now
	res.Tags = tagList(&s)
	return res, tx.Insert(tServers, &s)
}

// tagList is a server's tags, [] for none.
func tagList(sv *Server) []string {
	if len(sv.Tags) == 0 {
		return []string{}
	}
	return slices.Clone(sv.Tags)
}

// tagsServer finds the server of a tags request, from 2.26 (before, the
// resource does not exist: 404).
func (s *Service) tagsServer(r *http.Request, rule string, write bool) (*Server, error) {
	if !atLeast(r, 26) {
		return nil, unknownResource()
	}
	if write {
		return s.readServer(r, tagsRule+rule)
	}
	return s.readServer(r, "")
}

func (s *Service) changeTags(r *http.Request, c serverTagsCmd) (tagsResult, error) {
	c.Now = s.now()
	var res tagsResult
	_, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerTags, c, &res)
	return res, err
}

func (s *Service) listTags(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.tagsServer(r, "index", false)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"tags": tagList(sv)})
	return nil
}

func (s *Service) replaceTags(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.tagsServer(r, "update_all", true)
	if err != nil {
		return err
	}
	o, err := readRaw(r)
	if err != nil {
		return err
	}
	if err := allowOnly(o, "tags"); err != nil {
		return err
	}
	v, ok := o["tags"]
	if !ok {
		return badField("tags", nil, "'tags' is a required property")
	}
	tags, err := readTags("tags", v)
	if err != nil {
		return err
	}
	res, err := s.changeTags(r, serverTagsCmd{ID: sv.ID, All: true, Set: tags})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"tags": res.Tags})
	return nil
}

func (s *Service) deleteAllTags(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.tagsServer(r, "delete_all", true)
	if err != nil {
		return err
	}
	if _, err := s.changeTags(r, serverTagsCmd{ID: sv.ID, All: true}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) checkTagExists(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.tagsServer(r, "show", false)
	if err != nil {
		return err
	}
	tag := chi.URLParam(r, "tag")
	if !slices.Contains(sv.Tags, tag) {
		return notFound("Tag %s could not be found.", tag)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) addTag(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.tagsServer(r, "update", true)
	if err != nil {
		return err
	}
	tag, err := checkTag("tag", chi.URLParam(r, "tag"))
	if err != nil {
		return err
	}
	res, err := s.changeTags(r, serverTagsCmd{ID: sv.ID, Add: tag})
	if err != nil {
		return err
	}
	if !res.Added {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	w.Header().Set("Location", s.apiURL(r)+"/servers/"+sv.ID+"/tags/"+tag)
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Service) deleteTag(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.tagsServer(r, "delete", true)
	if err != nil {
		return err
	}
	if _, err := s.changeTags(r, serverTagsCmd{ID: sv.ID, Remove: chi.URLParam(r, "tag")}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// tagFilter is one of a list's tag filters: the tags, comma-separated.
func tagFilter(q string) []string {
	if q == "" {
		return nil
	}
	return strings.Split(q, ",")
}

// matchesTags reports whether a server passes the list's tag filters
// (2.26): tags (all of), tags-any (one of), not-tags (not all of),
// not-tags-any (none of).
func matchesTags(sv *Server, all, any_, notAll, notAny []string) bool {
	has := func(t string) bool { return slices.Contains(sv.Tags, t) }
	if len(all) > 0 && !everyOf(all, has) {
		return false
	}
	if len(any_) > 0 && !slices.ContainsFunc(any_, has) {
		return false
	}
	if len(notAll) > 0 && everyOf(notAll, has) {
		return false
	}
	if len(notAny) > 0 && slices.ContainsFunc(notAny, has) {
		return false
	}
	return true
}

func everyOf(l []string, f func(string) bool) bool {
	for _, x := range l {
		if !f(x) {
			return false
		}
	}
	return true
}
