package image

import (
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// What a namespace defines: objects, properties and tags.

func objectExists(name, ns string) error {
	return conflict("A metadata definition object with name=%s already exists in namespace=%s.", name, ns)
}

func objectNotFound(name, ns string) error {
	return store.NotFoundf("Metadata definition object not found for name=%s in namespace=%s.", name, ns)
}

func propertyExists(name, ns string) error {
	return conflict("A metadata definition property with name=%s already exists in namespace=%s.", name, ns)
}

func propertyNotFound(name, ns string) error {
	return store.NotFoundf("Metadata definition property not found for name=%s in namespace=%s.", name, ns)
}

func tagNotFound(name, ns string) error {
	return store.NotFoundf("Metadata definition tag not found for name=%s in namespace=%s.", name, ns)
}

func objectIndex(ns *Namespace, name string) int {
	return slices.IndexFunc(ns.Objects, func(o imagestate.MetaObject) bool { return o.Name == name })
}

// Objects.

func (s *Service) listObjects(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.findNamespace(r)
	if err != nil {
		return err
	}
	out := make([]any, len(ns.Objects))
	for i, o := range ns.Objects {
		out[i] = objectView(ns, o, "")
	}
	api.JSON(w, http.StatusOK, map[string]any{"objects": out, "schema": "/v2/schemas/metadefs/objects"})
	return nil
}

func (s *Service) showObject(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.findNamespace(r)
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "name")
	i := objectIndex(ns, name)
	if i < 0 {
		return objectNotFound(name, ns.Name)
	}
	prefix := ""
	if rt := r.URL.Query().Get("resource_type"); rt != "" {
		for _, a := range ns.Associations {
			if a.Name == rt {
				prefix = a.Prefix
			}
		}
	}
	api.JSON(w, http.StatusOK, objectView(ns, ns.Objects[i], prefix))
	return nil
}

func (s *Service) createObject(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	obj, err := readObject(body, "")
	if err != nil {
		return err
	}
	ns, err := s.changeNamespace(r, func(ns *Namespace, now time.Time) error {
		if objectIndex(ns, obj.Name) >= 0 {
			return objectExists(obj.Name, ns.Name)
		}
		if len(ns.Objects) >= maxDefinitions {
			return tooLarge("Maximum number of objects in a namespace exceeded: maximum %d.", maxDefinitions)
		}
		obj.CreatedAt, obj.UpdatedAt = now, now
		ns.Objects = append(ns.Objects, obj)
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, objectView(ns, obj, ""))
	return nil
}

// updateObject replaces an object definition, renaming it if the body
// says so.
func (s *Service) updateObject(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	obj, err := readObject(body, "")
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "name")
	ns, err := s.changeNamespace(r, func(ns *Namespace, now time.Time) error {
		i := objectIndex(ns, name)
		if i < 0 {
			return objectNotFound(name, ns.Name)
		}
		if j := objectIndex(ns, obj.Name); j >= 0 && j != i {
			return objectExists(obj.Name, ns.Name)
		}
		obj.CreatedAt, obj.UpdatedAt = ns.Objects[i].CreatedAt, now
		ns.Objects[i] = obj
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, objectView(ns, obj, ""))
	return nil
}

func (s *Service) deleteObject(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	_, err := s.changeNamespace(r, func(ns *Namespace, _ time.Time) error {
		i := objectIndex(ns, name)
		if i < 0 {
			return objectNotFound(name, ns.Name)
		}
		if err := protectedIn(ns, "Metadata definition object "+name); err != nil {
			return err
		}
		ns.Objects = slices.Delete(ns.Objects, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Properties.

func (s *Service) listProperties(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.findNamespace(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"properties": propertiesView(ns.Properties, ""), "schema": "/v2/schemas/metadefs/properties"})
	return nil
}

// propertyName is the property of the path, without the prefix of the
// resource type the query names (as a client that reads a flavor's
// "hw:cpu_policy" asks for "cpu_policy" of OS::Nova::Flavor).
func propertyName(r *http.Request, ns *Namespace) string {
	name := chi.URLParam(r, "name")
	if rt := r.URL.Query().Get("resource_type"); rt != "" {
		for _, a := range ns.Associations {
			if a.Name == rt && a.Prefix != "" {
				return strings.TrimPrefix(name, a.Prefix)
			}
		}
	}
	return name
}

func (s *Service) showProperty(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.findNamespace(r)
	if err != nil {
		return err
	}
	name := propertyName(r, ns)
	p, ok := ns.Properties[name]
	if !ok {
		return propertyNotFound(chi.URLParam(r, "name"), ns.Name)
	}
	api.JSON(w, http.StatusOK, propertyView(chi.URLParam(r, "name"), p))
	return nil
}

func (s *Service) createProperty(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	name, p, err := readProperty(body, "property", "", true)
	if err != nil {
		return err
	}
	_, err = s.changeNamespace(r, func(ns *Namespace, _ time.Time) error {
		if _, ok := ns.Properties[name]; ok {
			return propertyExists(name, ns.Name)
		}
		if len(ns.Properties) >= maxDefinitions {
			return tooLarge("Maximum number of properties in a namespace exceeded: maximum %d.", maxDefinitions)
		}
		ns.Properties = maps.Clone(ns.Properties)
		if ns.Properties == nil {
			ns.Properties = map[string]imagestate.MetaProperty{}
		}
		ns.Properties[name] = p
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, propertyView(name, p))
	return nil
}

// updateProperty replaces a property definition, renaming it if the body
// says so.
func (s *Service) updateProperty(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	name, p, err := readProperty(body, "property", "", true)
	if err != nil {
		return err
	}
	_, err = s.changeNamespace(r, func(ns *Namespace, _ time.Time) error {
		old := propertyName(r, ns)
		if _, ok := ns.Properties[old]; !ok {
			return propertyNotFound(chi.URLParam(r, "name"), ns.Name)
		}
		if _, taken := ns.Properties[name]; taken && name != old {
			return propertyExists(name, ns.Name)
		}
		ns.Properties = maps.Clone(ns.Properties)
		delete(ns.Properties, old)
		ns.Properties[name] = p
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, propertyView(name, p))
	return nil
}

func (s *Service) deleteProperty(w http.ResponseWriter, r *http.Request) error {
	_, err := s.changeNamespace(r, func(ns *Namespace, _ time.Time) error {
		name := propertyName(r, ns)
		if _, ok := ns.Properties[name]; !ok {
			return propertyNotFound(chi.URLParam(r, "name"), ns.Name)
		}
		if err := protectedIn(ns, "Metadata definition property "+name); err != nil {
			return err
		}
		ns.Properties = maps.Clone(ns.Properties)
		delete(ns.Properties, name)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// Tags.

func (s *Service) listTags(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.findNamespace(r)
	if err != nil {
		return err
	}
	out := make([]any, len(ns.Tags))
	for i, t := range ns.Tags {
		out[i] = tagView(t)
	}
	api.JSON(w, http.StatusOK, map[string]any{"tags": out})
	return nil
}

func (s *Service) showTag(w http.ResponseWriter, r *http.Request) error {
	ns, err := s.findNamespace(r)
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "name")
	i := tagIndex(ns.Tags, name)
	if i < 0 {
		return tagNotFound(name, ns.Name)
	}
	api.JSON(w, http.StatusOK, tagView(ns.Tags[i]))
	return nil
}

// checkTagName checks a tag name of the path.
func checkTagName(name string) error {
	_, err := readTagName(api.Object{"name": name}, "")
	return err
}

func (s *Service) createTag(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	if err := checkTagName(name); err != nil {
		return err
	}
	var tag imagestate.MetaTag
	_, err := s.changeNamespace(r, func(ns *Namespace, now time.Time) error {
		if tagIndex(ns.Tags, name) >= 0 {
			return tagExists(name, ns.Name)
		}
		if len(ns.Tags) >= maxDefinitions {
			return tooLarge("Maximum number of tags in a namespace exceeded: maximum %d.", maxDefinitions)
		}
		tag = imagestate.MetaTag{Name: name, CreatedAt: now, UpdatedAt: now}
		ns.Tags = append(ns.Tags, tag)
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusCreated, tagView(tag))
	return nil
}

// createTags creates tags in bulk: they replace the namespace's tags, or
// with "X-Openstack-Append: true" are added to them.
func (s *Service) createTags(w http.ResponseWriter, r *http.Request) error {
	appendTags := false
	if h := r.Header.Get("X-Openstack-Append"); h != "" {
		b, ok := api.ToBool(h)
		if !ok {
			return badRequest("Invalid X-Openstack-Append header value %q: it is true or false.", h)
		}
		appendTags = b
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	if err := checkKeys(body, "tags", "", "tags"); err != nil {
		return err
	}
	in := mdInput(body, "tags", "")
	if !in.Has("tags") {
		return in.Word.Missing("tags")
	}
	objs := in.Objects("tags")
	if in.Err != nil {
		return in.Err
	}
	var names []string
	for i, o := range objs {
		name, err := readTagName(o, "tags/"+strconv.Itoa(i)+"/")
		if err != nil {
			return err
		}
		if slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, name) }) {
			return conflict("Duplicate tag name %s in the request.", name)
		}
		names = append(names, name)
	}
	_, err = s.changeNamespace(r, func(ns *Namespace, now time.Time) error {
		if !appendTags {
			ns.Tags = nil
		}
		for _, name := range names {
			if tagIndex(ns.Tags, name) >= 0 {
				return tagExists(name, ns.Name)
			}
			ns.Tags = append(ns.Tags, imagestate.MetaTag{Name: name, CreatedAt: now, UpdatedAt: now})
		}
		if len(ns.Tags) > maxDefinitions {
			return tooLarge("Maximum number of tags in a namespace exceeded: maximum %d.", maxDefinitions)
		}
		return nil
	})
	if err != nil {
		return err
	}
	out := make([]any, len(names))
	for i, n := range names {
		out[i] = map[string]any{"name": n}
	}
	api.JSON(w, http.StatusCreated, map[string]any{"tags": out})
	return nil
}

// updateTag renames a tag.
func (s *Service) updateTag(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	newName, err := readTagName(body, "")
	if err != nil {
		return err
	}
	name := chi.URLParam(r, "name")
	var tag imagestate.MetaTag
	_, err = s.changeNamespace(r, func(ns *Namespace, now time.Time) error {
		i := tagIndex(ns.Tags, name)
		if i < 0 {
			return tagNotFound(name, ns.Name)
		}
		if j := tagIndex(ns.Tags, newName); j >= 0 && j != i {
			return tagExists(newName, ns.Name)
		}
		ns.Tags[i].Name, ns.Tags[i].UpdatedAt = newName, now
		tag = ns.Tags[i]
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, tagView(tag))
	return nil
}

// deleteMetadefTag deletes a tag definition.
func (s *Service) deleteMetadefTag(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	_, err := s.changeNamespace(r, func(ns *Namespace, _ time.Time) error {
		i := tagIndex(ns.Tags, name)
		if i < 0 {
			return tagNotFound(name, ns.Name)
		}
		if err := protectedIn(ns, "Metadata definition tag "+name); err != nil {
			return err
		}
		ns.Tags = slices.Delete(ns.Tags, i, i+1)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
