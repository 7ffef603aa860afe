package image

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// The catalog's JSON schemas, at /v2/schemas/metadefs/{name}: glanceclient
// validates what it sends and receives against them, so every attribute
// the service returns is declared here.

func mdDefinitions() obj {
	typeEnum := obj{"type": "string", "enum": propertyTypes}
	return obj{
		"positiveInteger":         obj{"type": "integer", "minimum": 0},
		"positiveIntegerDefault0": obj{"allOf": []any{obj{"$ref": "#/definitions/positiveInteger"}, obj{"default": 0}}},
		"stringArray":             obj{"type": "array", "items": obj{"type": "string"}, "uniqueItems": true},
		"property": obj{
			"type": "object",
			"additionalProperties": obj{
				"type":     "object",
				"required": []string{"title", "type"},
				"properties": obj{
					"name":            obj{"type": "string", "maxLength": mdNameMax},
					"title":           obj{"type": "string"},
					"description":     obj{"type": "string"},
					"operators":       obj{"type": "array", "items": obj{"type": "string"}},
					"type":            typeEnum,
					"required":        obj{"$ref": "#/definitions/stringArray"},
					"minimum":         obj{"type": "number"},
					"maximum":         obj{"type": "number"},
					"maxLength":       obj{"$ref": "#/definitions/positiveInteger"},
					"minLength":       obj{"$ref": "#/definitions/positiveIntegerDefault0"},
					"pattern":         obj{"type": "string", "format": "regex"},
					"enum":            obj{"type": "array"},
					"readonly":        obj{"type": "boolean"},
					"default":         obj{},
					"items":           obj{"type": "object", "properties": obj{"type": typeEnum, "enum": obj{"type": "array"}}},
					"maxItems":        obj{"$ref": "#/definitions/positiveInteger"},
					"minItems":        obj{"$ref": "#/definitions/positiveIntegerDefault0"},
					"uniqueItems":     obj{"type": "boolean", "default": false},
					"additionalItems": obj{"type": "boolean"},
				},
			},
		},
	}
}

func timestamps(p obj, what string) obj {
	p["created_at"] = obj{"type": "string", "readOnly": true, "format": "date-time", "description": "Date and time of " + what + " creation"}
	p["updated_at"] = obj{"type": "string", "readOnly": true, "format": "date-time", "description": "Date and time of the last " + what + " modification"}
	return p
}

func assocProperties() obj {
	return timestamps(obj{
		"name":              obj{"type": "string", "maxLength": mdNameMax, "description": "Resource type names should be aligned with Heat resource types whenever possible: https://docs.openstack.org/heat/latest/template_guide/openstack.html"},
		"prefix":            obj{"type": "string", "maxLength": mdNameMax, "description": "Specifies the prefix to use for the given resource type. Any properties in the namespace should be prefixed with this prefix when being applied to the specified resource type."},
		"properties_target": obj{"type": "string", "maxLength": mdNameMax, "description": "Some resource types allow more than one key / value pair per instance. For example, Cinder allows user and image metadata on volumes. Only the image properties metadata is evaluated by Nova (scheduling or drivers). This property allows a namespace target to remove the ambiguity."},
	}, "resource type association")
}

func mdObjectProperties() obj {
	return timestamps(obj{
		"name":        obj{"type": "string", "maxLength": mdNameMax},
		"description": obj{"type": "string"},
		"required":    obj{"$ref": "#/definitions/stringArray"},
		"properties":  obj{"$ref": "#/definitions/property"},
		"schema":      obj{"type": "string", "readOnly": true},
		"self":        obj{"type": "string", "readOnly": true},
	}, "object")
}

func mdTagProperties() obj {
	return timestamps(obj{"name": obj{"type": "string", "maxLength": mdTagMax}}, "tag")
}

func namespaceSchema() obj {
	props := timestamps(obj{
		"namespace":                  obj{"type": "string", "maxLength": mdNameMax, "description": "The unique namespace text."},
		"display_name":               obj{"type": "string", "maxLength": mdNameMax, "description": "The user friendly name for the namespace. Used by UI if available."},
		"description":                obj{"type": "string", "maxLength": mdDescriptionMax, "description": "Provides a user friendly description of the namespace."},
		"visibility":                 obj{"type": "string", "enum": []string{"public", "private"}, "description": "Scope of namespace accessibility."},
		"protected":                  obj{"type": "boolean", "description": "If true, namespace will not be deletable."},
		"owner":                      obj{"type": "string", "maxLength": 255, "description": "Owner of the namespace."},
		"schema":                     obj{"type": "string", "readOnly": true},
		"self":                       obj{"type": "string", "readOnly": true},
		"resource_type_associations": obj{"type": "array", "items": obj{"type": "object", "properties": assocProperties()}},
		"properties":                 obj{"$ref": "#/definitions/property"},
		"objects": obj{"type": "array", "items": obj{"type": "object", "properties": obj{
			"name": obj{"type": "string"}, "description": obj{"type": "string"},
			"required": obj{"$ref": "#/definitions/stringArray"}, "properties": obj{"$ref": "#/definitions/property"},
		}}},
		"tags": obj{"type": "array", "items": obj{"type": "object", "properties": obj{"name": obj{"type": "string"}}}},
	}, "namespace")
	return obj{"name": "namespace", "properties": props, "required": []string{"namespace"},
		"additionalProperties": false, "definitions": mdDefinitions()}
}

// collection is the schema of a list of the entities item describes.
func collection(name, key string, item obj, paged bool) obj {
	props := obj{key: obj{"type": "array", "items": item}, "schema": obj{"type": "string"}}
	links := []any{obj{"rel": "describedby", "href": "{schema}"}}
	if paged {
		props["first"], props["next"] = obj{"type": "string"}, obj{"type": "string"}
		links = append([]any{obj{"rel": "first", "href": "{first}"}, obj{"rel": "next", "href": "{next}"}}, links...)
	}
	out := obj{"name": name, "properties": props, "links": links}
	if defs, ok := item["definitions"]; ok {
		out["definitions"] = defs
		delete(item, "definitions")
	}
	return out
}

func metadefSchema(name string) obj {
	switch name {
	case "namespace":
		return namespaceSchema()
	case "namespaces":
		return collection("namespaces", "namespaces", namespaceSchema(), true)
	case "resource_type":
		return obj{"name": "resource_type_association", "properties": assocProperties(), "required": []string{"name"}, "additionalProperties": false}
	case "resource_types":
		return collection("resource_type_associations", "resource_type_associations", obj{"name": "resource_type_association", "properties": assocProperties()}, true)
	case "object":
		return obj{"name": "object", "properties": mdObjectProperties(), "required": []string{"name"}, "additionalProperties": false, "definitions": mdDefinitions()}
	case "objects":
		return collection("objects", "objects", obj{"name": "object", "properties": mdObjectProperties(), "definitions": mdDefinitions()}, true)
	case "property":
		defs := mdDefinitions()
		item := defs["property"].(obj)["additionalProperties"].(obj)
		item["required"] = []string{"name", "title", "type"}
		return obj{"name": "property", "properties": item["properties"], "required": item["required"], "additionalProperties": false, "definitions": defs}
	case "properties":
		return obj{"name": "properties", "properties": obj{"properties": obj{"$ref": "#/definitions/property"}, "schema": obj{"type": "string"}},
			"links": []any{obj{"rel": "describedby", "href": "{schema}"}}, "definitions": mdDefinitions()}
	case "tag":
		return obj{"name": "tag", "properties": mdTagProperties(), "required": []string{"name"}, "additionalProperties": false}
	case "tags":
		return collection("tags", "tags", obj{"name": "tag", "properties": mdTagProperties()}, true)
	}
	return nil
}

func (s *Service) showMetadefSchema(w http.ResponseWriter, r *http.Request) error {
	out := metadefSchema(chi.URLParam(r, "name"))
	if out == nil {
		return api.Errorf(http.StatusNotFound, "The resource could not be found.")
	}
	api.JSON(w, http.StatusOK, out)
	return nil
}
