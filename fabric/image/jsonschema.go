package image

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// The JSON schemas Glance publishes at /v2/schemas/...: clients read them
// to know which attributes exist and which are read-only.

type obj = map[string]any

func nullableEnum(list []string) []any {
	out := []any{nil}
	for _, s := range list {
		out = append(out, s)
	}
	return out
}

const uuidRegexp = `^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$`

func imageSchema() obj {
	ro := func(typ any, desc string, extra ...any) obj {
		o := obj{"type": typ, "readOnly": true, "description": desc}
		for i := 0; i+1 < len(extra); i += 2 {
			o[extra[i].(string)] = extra[i+1]
		}
		return o
	}
	prop := func(typ any, desc string, extra ...any) obj {
		o := ro(typ, desc, extra...)
		delete(o, "readOnly")
		return o
	}
	extraProp := func(typ any, desc string, extra ...any) obj {
		o := prop(typ, desc, extra...)
		o["is_base"] = false
		return o
	}
	nullStr := []string{"null", "string"}
	return obj{
		"name": "image",
		"properties": obj{
			"id":               prop("string", "An identifier for the image", "pattern", uuidRegexp),
			"name":             prop(nullStr, "Descriptive name for the image", "maxLength", 255),
			"status":           ro("string", "Status of the image", "enum", statuses),
			"visibility":       prop("string", "Scope of image accessibility", "enum", visibilities),
			"protected":        prop("boolean", "If true, image will not be deletable."),
			"os_hidden":        prop("boolean", "If true, image will not appear in default image list response."),
			"checksum":         ro(nullStr, "md5 hash of image contents.", "maxLength", 32),
			"os_hash_algo":     ro(nullStr, "Algorithm to calculate the os_hash_value", "maxLength", 64),
			"os_hash_value":    ro(nullStr, "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength", 128),
			"owner":            prop(nullStr, "Owner of the image", "maxLength", 255),
			"size":             ro([]string{"null", "integer"}, "Size of image file in bytes"),
			"virtual_size":     ro([]string{"null", "integer"}, "Virtual size of image in bytes"),
			"container_format": prop(nullStr, "Format of the container", "enum", nullableEnum(containerFormats)),
			"disk_format":      prop(nullStr, "Format of the disk", "enum", nullableEnum(diskFormats)),
			"created_at":       ro("string", "Date and time of image registration"),
			"updated_at":       ro("string", "Date and time of the last image modification"),
			"tags":             prop("array", "List of strings related to the image", "items", obj{"type": "string", "maxLength": 255}),
			"direct_url":       ro("string", "URL to access the image file kept in external store"),
			"min_ram":          prop("integer", "Amount of ram (in MB) required to boot image.", "minimum", 0),
			"min_disk":         prop("integer", "Amount of disk space (in GB) required to boot image.", "minimum", 0),
			"self":             ro("string", "An image self url"),
			"file":             ro("string", "An image file url"),
			"schema":           ro("string", "An image schema url"),
			"locations":        ro("array", "A set of URLs to access the image file kept in external store", "items", obj{"type": "object"}),
			"kernel_id": extraProp(nullStr, "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image.",
				"pattern", uuidRegexp),
			"ramdisk_id": extraProp(nullStr, "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image.",
				"pattern", uuidRegexp),
			"instance_uuid": extraProp("string", "Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)"),
			"architecture":  extraProp("string", "Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"),
			"os_distro":     extraProp("string", "Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"),
			"os_version":    extraProp("string", "Operating system version as specified by the distributor."),
			"description":   extraProp("string", "A human-readable string describing this image."),
		},
		"additionalProperties": obj{"type": "string"},
		"links": []any{
			obj{"rel": "self", "href": "{self}"},
			obj{"rel": "enclosure", "href": "{file}"},
			obj{"rel": "describedby", "href": "{schema}"},
		},
	}
}

func memberSchema() obj {
	return obj{
		"name": "member",
		"properties": obj{
			"member_id":  obj{"type": "string", "description": "An identifier for the image member (tenantId)"},
			"image_id":   obj{"type": "string", "description": "An identifier for the image", "pattern": uuidRegexp},
			"created_at": obj{"type": "string", "description": "Date and time of image member creation"},
			"updated_at": obj{"type": "string", "description": "Date and time of last modification of image member"},
			"status":     obj{"type": "string", "description": "The status of this image member", "enum": []string{MemberPending, MemberAccepted, MemberRejected}},
			"schema":     obj{"type": "string", "readOnly": true},
		},
	}
}

// pagedSchema is the schema of a paged list of items (images, tasks):
// the list under its name, with first and next links.
func pagedSchema(name string, item obj) obj {
	return obj{
		"name": name,
		"properties": obj{
			name:     obj{"type": "array", "items": item},
			"schema": obj{"type": "string"},
			"first":  obj{"type": "string"},
			"next":   obj{"type": "string"},
		},
		"links": []any{
			obj{"rel": "first", "href": "{first}"},
			obj{"rel": "next", "href": "{next}"},
			obj{"rel": "describedby", "href": "{schema}"},
		},
	}
}

func (s *Service) showSchema(w http.ResponseWriter, r *http.Request) error {
	var out obj
	switch chi.URLParam(r, "name") {
	case "image":
		out = imageSchema()
	case "images":
		out = pagedSchema("images", imageSchema())
	case "member":
		out = memberSchema()
	case "members":
		out = obj{
			"name": "members",
			"properties": obj{
				"members": obj{"type": "array", "items": memberSchema()},
				"schema":  obj{"type": "string"},
			},
			"links": []any{obj{"rel": "describedby", "href": "{schema}"}},
		}
	case "task":
		out = taskSchema()
	case "tasks":
		out = pagedSchema("tasks", taskSchema())
	default:
		return api.Errorf(http.StatusNotFound, "The resource could not be found.")
	}
	api.JSON(w, http.StatusOK, out)
	return nil
}

// taskSchema is Glance's task schema (tasks.go serves them).
func taskSchema() obj {
	str := func(desc string) obj { return obj{"type": "string", "description": desc} }
	return obj{
		"name": "task",
		"properties": obj{
			"id":         obj{"type": "string", "pattern": uuidRegexp, "description": "An identifier for the task"},
			"type":       obj{"type": "string", "enum": []any{"import", "api_image_import"}, "description": "The type of task represented by this content"},
			"status":     obj{"type": "string", "enum": []any{"pending", "processing", "success", "failure"}, "description": "The current status of this task"},
			"input":      obj{"type": []any{"null", "object"}, "description": "The parameters required by task, JSON blob"},
			"result":     obj{"type": []any{"null", "object"}, "description": "The result of current task, JSON blob"},
			"owner":      str("An identifier for the owner of this task"),
			"message":    str("Human-readable informative message only included when appropriate (usually on failure)"),
			"image_id":   str("Image associated with the task"),
			"request_id": str("Human-readable informative request-id"),
			"user_id":    str("User associated with the task"),
			"expires_at": obj{"type": []any{"null", "string"}, "description": "Datetime when this resource would be subject to removal"},
			"created_at": str("Datetime when this resource was created"),
			"updated_at": str("Datetime when this resource was updated"),
			"self":       obj{"type": "string"},
			"schema":     obj{"type": "string"},
		},
		"links": []any{obj{"rel": "self", "href": "{self}"}, obj{"rel": "describedby", "href": "{schema}"}},
	}
}
