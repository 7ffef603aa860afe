package image

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/image/imagestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Reading the catalog's request bodies. Every refusal is a 400 naming the
// attribute (with its path inside the body: properties/cpu/type), worded
// as Glance's schema validation words it.

// Glance's length limits of the catalog.
const (
	mdNameMax        = 80  // namespace, object, property, resource type names
	mdDescriptionMax = 500 // namespace description
	mdTagMax         = 255 // tag names
	// maxDefinitions bounds each kind of definition in one namespace, so
	// that a namespace row stays small.
	maxDefinitions = 1024
)

var propertyTypes = []string{"array", "boolean", "integer", "number", "object", "string", "null"}

// mdReadOnly are the attributes of a catalog entity only the service sets.
var mdReadOnly = []string{"created_at", "updated_at", "schema", "self"}

// mdWording words a bad attribute of the catalog schema named schema; the
// attributes read are inside prefix (e.g. "properties/cpu/").
type mdWording struct{ schema, prefix string }

func (w mdWording) BadField(field string, _ any, reason string) error {
	return mdBadField(w.schema, w.prefix+field, reason)
}

func (w mdWording) Missing(field string) error {
	return mdBadField(w.schema, w.prefix+field, fmt.Sprintf("'%s' is a required property", field))
}

func mdBadField(schema, field, reason string) error {
	return store.Invalidf("Provided object does not match schema '%s': %s (attribute %s)", schema, reason, field)
}

// mdInput reads one object of a catalog body.
func mdInput(o api.Object, schema, prefix string) *api.Input {
	return api.NewInput(o, mdWording{schema: schema, prefix: prefix})
}

// checkKeys refuses the read-only attributes (403, as Glance) and those
// not in allowed (400).
func checkKeys(o api.Object, schema, prefix string, allowed ...string) error {
	for _, k := range mdReadOnly {
		if _, ok := o[k]; ok {
			return readOnly(prefix + k)
		}
	}
	if extra := api.Unexpected(o, allowed...); len(extra) > 0 {
		return mdBadField(schema, prefix+extra[0], fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", extra[0]))
	}
	return nil
}

// mdName reads a required name that goes into URLs: no slash, not only
// blanks.
func mdName(in *api.Input, field string, max int) string {
	s := in.Required(field, max)
	if in.Err == nil && strings.Contains(s, "/") {
		in.Fail(in.Word.BadField(field, s, fmt.Sprintf("'%s' must not contain '/'", field)))
	}
	return s
}

// namespaceFields reads the namespace's own attributes from body into ns,
// as a create or a PUT (which replaces them all) sets them.
func namespaceFields(body api.Object, ns *imagestate.Namespace) error {
	in := mdInput(body, "namespace", "")
	ns.Name = mdName(in, "namespace", mdNameMax)
	ns.DisplayName = in.Str("display_name", "", mdNameMax)
	ns.Description = in.Str("description", "", mdDescriptionMax)
	ns.Protected = in.Bool("protected", false)
	if owner := in.Str("owner", "", 255); owner != "" {
		ns.Owner = owner
	}
	ns.Visibility = imagestate.NamespacePrivate
	if v, ok := body["visibility"]; ok && in.Err == nil {
		if s, _ := v.(string); s == imagestate.NamespacePublic || s == imagestate.NamespacePrivate {
			ns.Visibility = s
		} else {
			in.Fail(mdBadField("namespace", "visibility", fmt.Sprintf("%s is not one of ['public', 'private']", textOf(v))))
		}
	}
	return in.Err
}

// readAssociation reads a resource type association.
func readAssociation(o api.Object, prefix string) (imagestate.Association, error) {
	if err := checkKeys(o, "resource_type_association", prefix, "name", "prefix", "properties_target"); err != nil {
		return imagestate.Association{}, err
	}
	in := mdInput(o, "resource_type_association", prefix)
	a := imagestate.Association{
		Name:             mdName(in, "name", mdNameMax),
		Prefix:           in.Str("prefix", "", mdNameMax),
		PropertiesTarget: in.Str("properties_target", "", mdNameMax),
	}
	return a, in.Err
}

// propertyKeys are the attributes of a property definition.
var propertyKeys = []string{"name", "title", "description", "operators", "type", "default", "minimum", "maximum",
	"minLength", "maxLength", "pattern", "enum", "readonly", "items", "uniqueItems", "minItems", "maxItems", "additionalItems"}

// readProperty reads a property definition; named says whether its name
// is in it (a property created or replaced alone) rather than its key.
func readProperty(o api.Object, schema, prefix string, named bool) (string, imagestate.MetaProperty, error) {
	var p imagestate.MetaProperty
	keys := propertyKeys
	if !named {
		keys = keys[1:]
	}
	if err := checkKeys(o, schema, prefix, keys...); err != nil {
		return "", p, err
	}
	in := mdInput(o, schema, prefix)
	name := ""
	if named {
		name = mdName(in, "name", mdNameMax)
	}
	p.Title = in.Required("title", 0)
	if v, ok := o["type"]; !ok || v == nil {
		in.Fail(in.Word.Missing("type"))
	} else if s, _ := v.(string); !slices.Contains(propertyTypes, s) {
		in.Fail(in.Word.BadField("type", v, fmt.Sprintf("%s is not one of %s", textOf(v), quoted(propertyTypes))))
	} else {
		p.Type = s
	}
	p.Description = in.Str("description", "", 0)
	p.Pattern = in.Str("pattern", "", 0)
	if p.Pattern != "" && in.Err == nil {
		if _, err := regexp.Compile(p.Pattern); err != nil {
			in.Fail(in.Word.BadField("pattern", p.Pattern, fmt.Sprintf("%s is not a 'regex'", textOf(p.Pattern))))
		}
	}
	if in.Has("operators") {
		p.Operators = in.Strs("operators")
	}
	p.Default = o["default"]
	p.Enum = readEnum(in, "enum")
	p.Minimum, p.Maximum = readNumber(in, "minimum"), readNumber(in, "maximum")
	p.MinLength, p.MaxLength = in.Int("minLength", 0, math.MaxInt32), in.Int("maxLength", 0, math.MaxInt32)
	p.MinItems, p.MaxItems = in.Int("minItems", 0, math.MaxInt32), in.Int("maxItems", 0, math.MaxInt32)
	p.ReadOnly = readBool(in, "readonly")
	p.UniqueItems = readBool(in, "uniqueItems")
	p.AdditionalItems = readBool(in, "additionalItems")
	if items := in.Object("items"); items != nil && in.Err == nil {
		if extra := api.Unexpected(items, "type", "enum"); len(extra) > 0 {
			in.Fail(mdBadField(schema, prefix+"items/"+extra[0], fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", extra[0])))
		}
		it := &imagestate.MetaItems{}
		iin := mdInput(items, schema, prefix+"items/")
		if v, ok := items["type"]; ok {
			if s, _ := v.(string); slices.Contains(propertyTypes, s) {
				it.Type = s
			} else {
				iin.Fail(iin.Word.BadField("type", v, fmt.Sprintf("%s is not one of %s", textOf(v), quoted(propertyTypes))))
			}
		}
		it.Enum = readEnum(iin, "enum")
		in.Fail(iin.Err)
		p.Items = it
	}
	return name, p, in.Err
}

// readEnum reads a list of JSON scalars.
func readEnum(in *api.Input, field string) []any {
	l := in.List(field)
	for _, v := range l {
		switch v.(type) {
		case string, float64, bool, nil:
		default:
			in.Fail(in.Word.BadField(field, v, textOf(v)+" is not a string, number, boolean or null"))
			return nil
		}
	}
	return l
}

func readNumber(in *api.Input, field string) *float64 {
	v, ok := in.Obj[field]
	if !ok || v == nil || in.Err != nil {
		return nil
	}
	f, ok := v.(float64)
	if !ok {
		in.Fail(in.Word.BadField(field, v, textOf(v)+" is not of type 'number'"))
		return nil
	}
	return &f
}

func readBool(in *api.Input, field string) *bool {
	if !in.Has(field) || in.IsNull(field) {
		return nil
	}
	b := in.Bool(field, false)
	return &b
}

// readProperties reads a map of property definitions by name.
func readProperties(v any, schema, prefix string) (map[string]imagestate.MetaProperty, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, mdBadField(schema, strings.TrimSuffix(prefix, "/"), textOf(v)+" is not of type 'object'")
	}
	if len(m) > maxDefinitions {
		return nil, tooLarge("Maximum number of property definitions exceeded: attempted %d, maximum %d.", len(m), maxDefinitions)
	}
	out := make(map[string]imagestate.MetaProperty, len(m))
	for name, pv := range m {
		po, ok := pv.(map[string]any)
		if !ok {
			return nil, mdBadField(schema, prefix+name, textOf(pv)+" is not of type 'object'")
		}
		if name == "" || len(name) > mdNameMax || strings.Contains(name, "/") {
			return nil, mdBadField(schema, prefix+name, "property names are 1 to 80 characters, without '/'")
		}
		if err := checkText(prefix+name, name); err != nil {
			return nil, err
		}
		_, p, err := readProperty(po, schema, prefix+name+"/", false)
		if err != nil {
			return nil, err
		}
		out[name] = p
	}
	return out, nil
}

// readObject reads an object definition.
func readObject(o api.Object, prefix string) (imagestate.MetaObject, error) {
	var obj imagestate.MetaObject
	if err := checkKeys(o, "object", prefix, "name", "description", "required", "properties"); err != nil {
		return obj, err
	}
	in := mdInput(o, "object", prefix)
	obj.Name = mdName(in, "name", mdNameMax)
	obj.Description = in.Str("description", "", 0)
	if in.Has("required") {
		obj.Required = in.Strs("required")
	}
	if in.Err != nil {
		return obj, in.Err
	}
	props, err := readProperties(o["properties"], "object", prefix+"properties/")
	obj.Properties = props
	return obj, err
}

// readTagName reads the name of a tag definition.
func readTagName(o api.Object, prefix string) (string, error) {
	if err := checkKeys(o, "tag", prefix, "name"); err != nil {
		return "", err
	}
	in := mdInput(o, "tag", prefix)
	name := mdName(in, "name", mdTagMax)
	return name, in.Err
}

// tagIndex finds a tag by name, which Glance compares without case.
func tagIndex(tags []imagestate.MetaTag, name string) int {
	return slices.IndexFunc(tags, func(t imagestate.MetaTag) bool { return strings.EqualFold(t.Name, name) })
}

func tagExists(name, ns string) error {
	return conflict("A metadata tag with name=%s already exists in namespace=%s. (Please note that metadata tag names are case insensitive).", name, ns)
}
