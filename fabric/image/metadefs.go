package image

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Glance's metadata definitions catalog (/v2/metadefs): namespaces of
// property, object and tag definitions for resource types. As in Glance's
// default policy, everyone with a token reads the public namespaces and
// their own project's private ones; only admins write. A private
// namespace of another project is not found.

type Namespace = imagestate.Namespace

// metadefRoutes are the catalog's routes, for routes().
func (s *Service) metadefRoutes() []api.Route {
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
		token, admin        = api.Authenticated, api.Admin
		ns                  = "/v2/metadefs/namespaces/{ns}"
	)
	return []api.Route{
		{Method: get, Path: "/v2/metadefs/resource_types", Access: token, Rule: "list_metadef_resource_types", Handle: s.listResourceTypes},
		{Method: get, Path: "/v2/metadefs/namespaces", Access: token, Rule: "get_metadef_namespaces", Handle: s.listNamespaces},
		{Method: post, Path: "/v2/metadefs/namespaces", Access: admin, Rule: "add_metadef_namespace", Handle: s.createNamespace},
		{Method: get, Path: ns, Access: token, Rule: "get_metadef_namespace", Handle: s.showNamespace},
		{Method: put, Path: ns, Access: admin, Rule: "modify_metadef_namespace", Handle: s.updateNamespace},
		{Method: del, Path: ns, Access: admin, Rule: "delete_metadef_namespace", Handle: s.deleteNamespace},

		{Method: get, Path: ns + "/resource_types", Access: token, Rule: "get_metadef_resource_type", Handle: s.listAssociations},
		{Method: post, Path: ns + "/resource_types", Access: admin, Rule: "add_metadef_resource_type_association", Handle: s.createAssociation},
		{Method: del, Path: ns + "/resource_types/{name}", Access: admin, Rule: "remove_metadef_resource_type_association", Handle: s.deleteAssociation},

		{Method: get, Path: ns + "/objects", Access: token, Rule: "get_metadef_objects", Handle: s.listObjects},
		{Method: post, Path: ns + "/objects", Access: admin, Rule: "add_metadef_object", Handle: s.createObject},
		{Method: del, Path: ns + "/objects", Access: admin, Rule: "delete_metadef_namespace", Handle: s.deleteAll("objects")},
		{Method: get, Path: ns + "/objects/{name}", Access: token, Rule: "get_metadef_object", Handle: s.showObject},
		{Method: put, Path: ns + "/objects/{name}", Access: admin, Rule: "modify_metadef_object", Handle: s.updateObject},
		{Method: del, Path: ns + "/objects/{name}", Access: admin, Rule: "delete_metadef_object", Handle: s.deleteObject},

		{Method: get, Path: ns + "/properties", Access: token, Rule: "get_metadef_properties", Handle: s.listProperties},
		{Method: post, Path: ns + "/properties", Access: admin, Rule: "add_metadef_property", Handle: s.createProperty},
		{Method: del, Path: ns + "/properties", Access: admin, Rule: "delete_metadef_namespace", Handle: s.deleteAll("properties")},
		{Method: get, Path: ns + "/properties/{name}", Access: token, Rule: "get_metadef_property", Handle: s.showProperty},
		{Method: put, Path: ns + "/properties/{name}", Access: admin, Rule: "modify_metadef_property", Handle: s.updateProperty},
		{Method: del, Path: ns + "/properties/{name}", Access: admin, Rule: "remove_metadef_property", Handle: s.deleteProperty},

		{Method: get, Path: ns + "/tags", Access: token, Rule: "get_metadef_tags", Handle: s.listTags},
		{Method: post, Path: ns + "/tags", Access: admin, Rule: "add_metadef_tags", Handle: s.createTags},
		{Method: del, Path: ns + "/tags", Access: admin, Rule: "delete_metadef_tags", Handle: s.deleteAll("tags")},
		{Method: get, Path: ns + "/tags/{name}", Access: token, Rule: "get_metadef_tag", Handle: s.showTag},
		{Method: post, Path: ns + "/tags/{name}", Access: admin, Rule: "add_metadef_tag", Handle: s.createTag},
		{Method: put, Path: ns + "/tags/{name}", Access: admin, Rule: "modify_metadef_tag", Handle: s.updateTag},
		{Method: del, Path: ns + "/tags/{name}", Access: admin, Rule: "delete_metadef_tag", Handle: s.deleteMetadefTag},

		{Method: get, Path: "/v2/schemas/metadefs/{name}", Access: token, Handle: s.showMetadefSchema},
	}
}

// builtinResourceTypes are the resource types Glance's catalog knows
// from the start; associating a namespace with another name adds it.
var builtinResourceTypes = []string{"OS::Cinder::Volume", "OS::Glance::Image", "OS::Nova::Aggregate", "OS::Nova::Flavor", "OS::Nova::Server"}

// catalogEpoch is the creation time shown for the built-in resource types.
var catalogEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func nsVisible(p *api.Principal, ns *Namespace) bool {
	return p.IsAdmin() || ns.Visibility == imagestate.NamespacePublic || p.CanRead(ns.Owner)
}

func nsNotFound(name string) error {
	return store.NotFoundf("Metadata definition namespace=%s was not found.", name)
}

// findNamespace reads the namespace of the request's path as p sees it.
func (s *Service) findNamespace(r *http.Request) (*Namespace, error) {
	name := chi.URLParam(r, "ns")
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	ns := imagestate.NamespaceByName(tx, name)
	if ns == nil || !nsVisible(principal(r), ns) {
		return nil, nsNotFound(name)
	}
	return ns.Clone(), nil
}

// changeNamespace applies change to the request's namespace and stores
// the result if nothing changed it meanwhile (else it reads again and
// retries). change returning errSkip stores nothing.
func (s *Service) changeNamespace(r *http.Request, change func(ns *Namespace, now time.Time) error) (*Namespace, error) {
	for attempt := 0; ; attempt++ {
		ns, err := s.findNamespace(r)
		if err != nil {
			return nil, err
		}
		rev, now := ns.Revision, s.now()
		if err := change(ns, now); err != nil {
			return ns, err
		}
		ns.UpdatedAt = now
		if err := checkNamespaceSize(ns); err != nil {
			return nil, err
		}
		res, err := s.cfg.Repl.Propose(r.Context(), imagestate.CmdNamespacePut, imagestate.NamespacePutCmd{Row: *ns, Revision: rev})
		if imagestate.IsStale(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return nil, err
		}
		var out Namespace
		return &out, res.Decode(&out)
	}
}

// maxNamespaceBytes bounds a namespace row (the largest of Glance's
// stock namespaces is some tens of KiB): every change to a namespace
// carries all of it through the Raft log.
const maxNamespaceBytes = 1 << 20

func checkNamespaceSize(ns *Namespace) error {
	b, err := json.Marshal(ns)
	if err != nil {
		return err
	}
	if len(b) > maxNamespaceBytes {
		return tooLarge("Metadata definition namespace %s would take %d bytes, more than the maximum of %d.", ns.Name, len(b), maxNamespaceBytes)
	}
	return nil
}

// protectedIn refuses deleting what a protected namespace defines.
func protectedIn(ns *Namespace, what string) error {
	if ns.Protected {
		return forbidden("%s cannot be deleted because namespace %s is protected.", what, ns.Name)
	}
	return nil
}

func readBody(r *http.Request) (api.Object, error) {
	if err := api.RequireUTF8(r); err != nil {
		return nil, err
	}
	return api.ReadObject(r)
}

// Views.

func nsPath(ns *Namespace) string { return "/v2/metadefs/namespaces/" + url.PathEscape(ns.Name) }

func assocView(a imagestate.Association) map[string]any {
	v := map[string]any{"name": a.Name, "created_at": timeText(a.CreatedAt), "updated_at": timeText(a.UpdatedAt)}
	if a.Prefix != "" {
		v["prefix"] = a.Prefix
	}
	if a.PropertiesTarget != "" {
		v["properties_target"] = a.PropertiesTarget
	}
	return v
}

// propertyView is a property definition; name is set for a property
// shown alone.
func propertyView(name string, p imagestate.MetaProperty) map[string]any {
	b, _ := json.Marshal(p)
	v := map[string]any{}
	_ = json.Unmarshal(b, &v)
	if name != "" {
		v["name"] = name
	}
	return v
}

func propertiesView(props map[string]imagestate.MetaProperty, prefix string) map[string]any {
	out := make(map[string]any, len(props))
	for name, p := range props {
		out[prefix+name] = propertyView("", p)
	}
	return out
}

func objectView(ns *Namespace, o imagestate.MetaObject, prefix string) map[string]any {
	req := o.Required
	if req == nil {
		req = []string{}
	}
	v := map[string]any{
		"name": o.Name, "required": req, "properties": propertiesView(o.Properties, prefix),
		"created_at": timeText(o.CreatedAt), "updated_at": timeText(o.UpdatedAt),
		"schema": "/v2/schemas/metadefs/object", "self": nsPath(ns) + "/objects/" + url.PathEscape(o.Name),
	}
	if o.Description != "" {
		v["description"] = o.Description
	}
	return v
}

func tagView(t imagestate.MetaTag) map[string]any {
	return map[string]any{"name": t.Name, "created_at": timeText(t.CreatedAt), "updated_at": timeText(t.UpdatedAt)}
}

// namespaceView is the namespace as Glance shows it: with its definitions
// when full (a show, a create), only its associations in a listing. For
// resourceType, property names carry that association's prefix.
func namespaceView(ns *Namespace, full bool, resourceType string) map[string]any {
	v := map[string]any{
		"namespace": ns.Name, "visibility": ns.Visibility, "protected": ns.Protected, "owner": ns.Owner,
		"created_at": timeText(ns.CreatedAt), "updated_at": timeText(ns.UpdatedAt),
		"schema": "/v2/schemas/metadefs/namespace", "self": nsPath(ns),
	}
	if ns.DisplayName != "" {
		v["display_name"] = ns.DisplayName
	}
	if ns.Description != "" {
		v["description"] = ns.Description
	}
	prefix := ""
	if len(ns.Associations) > 0 {
		as := make([]any, len(ns.Associations))
		for i, a := range ns.Associations {
			as[i] = assocView(a)
			if a.Name == resourceType {
				prefix = a.Prefix
			}
		}
		v["resource_type_associations"] = as
	}
	if !full {
		return v
	}
	if len(ns.Properties) > 0 {
		v["properties"] = propertiesView(ns.Properties, prefix)
	}
	if len(ns.Objects) > 0 {
		objs := make([]any, len(ns.Objects))
		for i, o := range ns.Objects {
			ov := objectView(ns, o, prefix)
			delete(ov, "schema")
			delete(ov, "self")
			delete(ov, "created_at")
			delete(ov, "updated_at")
			objs[i] = ov
		}
		v["objects"] = objs
	}
	if len(ns.Tags) > 0 {
		tags := make([]any, len(ns.Tags))
		for i, t := range ns.Tags {
			tags[i] = map[string]any{"name": t.Name}
		}
		v["tags"] = tags
	}
	return v
}

// Namespaces.

func (s *Service) listNamespaces(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	q := r.URL.Query()
	limit := 25
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return badRequest("limit param must be a non-negative integer")
		}
		limit = min(n, 1000)
	}
	if limit == 0 {
		api.JSON(w, http.StatusOK, map[string]any{"namespaces": []any{}, "first": "/v2/metadefs/namespaces", "schema": "/v2/schemas/metadefs/namespaces"})
		return nil
	}
	sortKey, sortDir := cmp.Or(q.Get("sort_key"), "created_at"), cmp.Or(q.Get("sort_dir"), "desc")
	if !slices.Contains([]string{"created_at", "updated_at", "namespace", "display_name"}, sortKey) {
		return badRequest("Invalid sort key: %s. It must be one of the following: namespace, created_at, updated_at, display_name.", sortKey)
	}
	if sortDir != "asc" && sortDir != "desc" {
		return badRequest("Invalid sort direction: %s", sortDir)
	}
	vis := q.Get("visibility")
	if vis != "" && vis != imagestate.NamespacePublic && vis != imagestate.NamespacePrivate {
		return badRequest("Invalid visibility value: %s", vis)
	}
	var types []string
	if v := q.Get("resource_types"); v != "" {
		types = strings.Split(v, ",")
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	var list []*Namespace
	for _, ns := range store.All[Namespace](tx, imagestate.NamespaceTable, "id") {
		if !nsVisible(p, ns) || (vis != "" && ns.Visibility != vis) {
			continue
		}
		if types != nil && !slices.ContainsFunc(ns.Associations, func(a imagestate.Association) bool { return slices.Contains(types, a.Name) }) {
			continue
		}
		list = append(list, ns)
	}
	key := func(ns *Namespace) string {
		switch sortKey {
		case "namespace":
			return ns.Name
		case "display_name":
			return ns.DisplayName
		case "updated_at":
			return ns.UpdatedAt.UTC().Format(time.RFC3339Nano)
		}
		return ns.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	slices.SortFunc(list, func(a, b *Namespace) int {
		c := cmp.Or(cmp.Compare(key(a), key(b)), cmp.Compare(a.Name, b.Name))
		if sortDir == "desc" {
			return -c
		}
		return c
	})
	if m := q.Get("marker"); m != "" {
		i := slices.IndexFunc(list, func(ns *Namespace) bool { return ns.Name == m })
		if i < 0 {
			return nsNotFound(m)
		}
		list = list[i+1:]
	}
	out := map[string]any{"first": "/v2/metadefs/namespaces", "schema": "/v2/schemas/metadefs/namespaces"}
	if len(list) > limit {
		list = list[:limit]
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("marker", list[len(list)-1].Name)
		next.Set("limit", strconv.Itoa(limit))
		out["next"] = "/v2/metadefs/namespaces?" + next.Encode()
	}
	views := make([]any, len(list))
	for i, ns := range list {
		views[i] = namespaceView(ns, false, "")
	}
	out["namespaces"] = views
	api.JSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) showNamespace(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.findNamespace(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, namespaceView(ns, true, r.URL.Query().Get("resource_type")))
	return nil
}

func (s *Service) createNamespace(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if err := checkKeys(body, "namespace", "", "namespace", "display_name", "description", "visibility", "protected",
		"owner", "resource_type_associations", "properties", "objects", "tags"); err != nil {
		return err
	}
	now := s.now()
	ns := &Namespace{ID: api.NewUUID(), Owner: p.ProjectID, CreatedAt: now, UpdatedAt: now}
	if err := namespaceFields(body, ns); err != nil {
		return err
	}
	in := mdInput(body, "namespace", "")
	assocs, objects, tags := in.Objects("resource_type_associations"), in.Objects("objects"), in.Objects("tags")
	if in.Err != nil {
		return in.Err
	}
	if len(assocs) > maxDefinitions || len(objects) > maxDefinitions || len(tags) > maxDefinitions {
		return tooLarge("Maximum number of definitions in a namespace exceeded: maximum %d of each kind.", maxDefinitions)
	}
	for i, o := range assocs {
		a, err := readAssociation(o, "resource_type_associations/"+strconv.Itoa(i)+"/")
		if err != nil {
			return err
		}
		if slices.ContainsFunc(ns.Associations, func(b imagestate.Association) bool { return b.Name == a.Name }) {
			return assocExists(a.Name, ns.Name)
		}
		a.CreatedAt, a.UpdatedAt = now, now
		ns.Associations = append(ns.Associations, a)
	}
	if ns.Properties, err = readProperties(body["properties"], "namespace", "properties/"); err != nil {
		return err
	}
	for i, o := range objects {
		obj, err := readObject(o, "objects/"+strconv.Itoa(i)+"/")
		if err != nil {
			return err
		}
		if slices.ContainsFunc(ns.Objects, func(b imagestate.MetaObject) bool { return b.Name == obj.Name }) {
			return objectExists(obj.Name, ns.Name)
		}
		obj.CreatedAt, obj.UpdatedAt = now, now
		ns.Objects = append(ns.Objects, obj)
	}
	for i, o := range tags {
		name, err := readTagName(o, "tags/"+strconv.Itoa(i)+"/")
		if err != nil {
			return err
		}
		if tagIndex(ns.Tags, name) >= 0 {
			return tagExists(name, ns.Name)
		}
		ns.Tags = append(ns.Tags, imagestate.MetaTag{Name: name, CreatedAt: now, UpdatedAt: now})
	}
	if err := checkNamespaceSize(ns); err != nil {
		return err
	}
	res, err := s.cfg.Repl.Propose(r.Context(), imagestate.CmdNamespaceCreate, imagestate.NamespaceCreateCmd{Row: *ns})
	if err != nil {
		return err
	}
	if err := res.Decode(ns); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+nsPath(ns))
	api.JSON(w, http.StatusCreated, namespaceView(ns, true, ""))
	return nil
}

// updateNamespace replaces the namespace's own attributes (not what it
// defines), renaming it if the body says so.
func (s *Service) updateNamespace(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if err := checkKeys(body, "namespace", "", "namespace", "display_name", "description", "visibility", "protected",
		"owner", "resource_type_associations", "properties", "objects", "tags"); err != nil {
		return err
	}
	ns, err := s.changeNamespace(r, func(ns *Namespace, _ time.Time) error {
		return namespaceFields(body, ns)
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, namespaceView(ns, true, ""))
	return nil
}

func (s *Service) deleteNamespace(w http.ResponseWriter, r *http.Request) error {
	for attempt := 0; ; attempt++ {
		ns, err := s.findNamespace(r)
		if err != nil {
			return err
		}
		if ns.Protected {
			return forbidden("Namespace %s is protected and cannot be deleted.", ns.Name)
		}
		_, err = s.cfg.Repl.Propose(r.Context(), imagestate.CmdNamespaceDelete, imagestate.NamespaceDeleteCmd{ID: ns.ID, Revision: ns.Revision})
		if imagestate.IsStale(err) && attempt < 10 {
			continue
		}
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// deleteAll deletes every definition of one kind (objects, properties,
// tags) of the namespace.
func (s *Service) deleteAll(kind string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		_, err := s.changeNamespace(r, func(ns *Namespace, _ time.Time) error {
			if err := protectedIn(ns, "The "+kind); err != nil {
				return err
			}
			switch kind {
			case "objects":
				ns.Objects = nil
			case "properties":
				ns.Properties = nil
			case "tags":
				ns.Tags = nil
			}
			return nil
		})
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// Resource types and associations.

func assocExists(name, ns string) error {
	return conflict("The metadata definition resource-type association of resource-type=%s to namespace=%s, already exists.", name, ns)
}

func (s *Service) listResourceTypes(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var out []map[string]any
	for _, name := range builtinResourceTypes {
		seen[name] = true
		out = append(out, map[string]any{"name": name, "created_at": timeText(catalogEpoch), "updated_at": timeText(catalogEpoch)})
	}
	// The names of associations, as Glance adds a resource type on its
	// first association; only of the namespaces the caller sees, so that
	// a private namespace's names stay its project's.
	p := principal(r)
	for _, ns := range store.All[Namespace](tx, imagestate.NamespaceTable, "id") {
		if !nsVisible(p, ns) {
			continue
		}
		for _, a := range ns.Associations {
			if !seen[a.Name] {
				seen[a.Name] = true
				out = append(out, map[string]any{"name": a.Name, "created_at": timeText(a.CreatedAt), "updated_at": timeText(a.UpdatedAt)})
			}
		}
	}
	slices.SortFunc(out, func(a, b map[string]any) int { return cmp.Compare(a["name"].(string), b["name"].(string)) })
	api.JSON(w, http.StatusOK, map[string]any{"resource_types": out})
	return nil
}

func (s *Service) listAssociations(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.findNamespace(r)
	if err != nil {
		return err
	}
	out := make([]any, len(ns.Associations))
	for i, a := range ns.Associations {
		out[i] = assocView(a)
	}
	api.JSON(w, http.StatusOK, map[string]any{"resource_type_associations": out})
	return nil
}

func (s *Service) createAssociation(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	a, err := readAssociation(body, "")
	if err != nil {
		return err
	}
	_, err = s.changeNamespace(r, func(ns *Namespace, now time.Time) error {
		if slices.ContainsFunc(ns.Associations, func(b imagestate.Association) bool { return b.Name == a.Name }) {
			return assocExists(a.Name, ns.Name)
		}
		if len(ns.Associations) >= maxDefinitions {
			return tooLarge("Maximum number of resource type associations exceeded: maximum %d.", maxDefinitions)
		}
		a.CreatedAt, a.UpdatedAt = now, now
		ns.Associations = append(ns.Associations, a)
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, assocView(a))
	return nil
}

func (s *Service) deleteAssociation(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	_, err := s.changeNamespace(r, func(ns *Namespace, _ time.Time) error {
		i := slices.IndexFunc(ns.Associations, func(a imagestate.Association) bool { return a.Name == name })
		if i < 0 {
			return store.NotFoundf("The metadata definition resource-type association of resource-type=%s to namespace=%s, was not found.", name, ns.Name)
		}
		if err := protectedIn(ns, "The resource type association "+name); err != nil {
			return err
		}
		ns.Associations = slices.Delete(ns.Associations, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
