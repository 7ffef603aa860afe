package volume

import (
	"net/http"
	"regexp"

	"github.com/rackstack/rackstack/fabric/api"
)

// Request body schemas (3.53): from 3.53 every body is checked against
// Cinder's schema of it (cinder/api/schemas) before the handler runs, by
// the kit's one validation layer (api.Route.Body): unknown keys are
// refused where Cinder closes the object, types and lengths are checked,
// and the 400 names the field. Below 3.53 the handlers' own checks are
// the only ones, as before. The action endpoints list the actions Cinder
// has schemas for; an action they do not list goes to the handler, which
// serves it, refuses it or answers 501.

type bodyStep struct {
	minor  int
	schema *api.Schema
}

// since is a Route.Body: the schema of the last step the request's
// version reached, none below 3.53.
func since(steps ...bodyStep) func(*http.Request) *api.Schema {
	return func(r *http.Request) *api.Schema {
		var s *api.Schema
		for _, st := range steps {
			if atLeast(r, st.minor) {
				s = st.schema
			}
		}
		return s
	}
}

func from53(s *api.Schema) func(*http.Request) *api.Schema { return since(bodyStep{schemaMinor, s}) }

// schemaMinor is the microversion from which bodies are validated.
const schemaMinor = 53

var (
	tObj     = []string{"object"}
	tObjNull = []string{"object", "null"}
	tStr     = []string{"string"}
	tStrNull = []string{"string", "null"}

	specKey        = regexp.MustCompile(`^[a-zA-Z0-9_:. /-]{1,255}$`)
	specKeyNoSpace = regexp.MustCompile(`^[a-zA-Z0-9_:.-]{1,255}$`)
	digits         = regexp.MustCompile(`^[0-9]+$`)
	digitsOrNone   = regexp.MustCompile(`^[0-9]*$`)
	dbMaxInt       = api.Bound(0x7FFFFFFF)
)

// Cinder's parameter types (cinder/api/validation/parameter_types.py).
var (
	pName        = &api.Schema{Types: tStr, MinLen: 1, MaxLen: 255}
	pUpdateName  = &api.Schema{Types: tStrNull, MinLen: 1, MaxLen: 255}
	pNameZero    = &api.Schema{Types: tStrNull, MaxLen: 255}
	pDescription = &api.Schema{Types: tStrNull, MaxLen: 255}
	pBool        = &api.Schema{Types: []string{"boolean", "string"}, Bool: true}
	pBoolNull    = &api.Schema{Types: []string{"boolean", "string", "null"}, Bool: true}
	pUUID        = &api.Schema{Types: tStr, UUID: true}
	pUUIDNull    = &api.Schema{Types: tStrNull, UUID: true}
	pSize        = &api.Schema{Types: []string{"integer", "string"}, Pattern: digits, Min: api.Bound(1), Max: dbMaxInt}
	pSizeNull    = &api.Schema{Types: []string{"integer", "string", "null"}, Pattern: digits, Min: api.Bound(1), Max: dbMaxInt}
	pZone        = &api.Schema{Types: tStrNull, MinLen: 1, MaxLen: 255}
	pNullable    = &api.Schema{Types: tStrNull, MaxLen: 255}
	pAny         = &api.Schema{}
	// extra_specs: a map of keys of letters, digits and -_:. / to
	// strings of at most 255 characters.
	pSpecs         = specMap(specKey, tStr, tObj)
	pSpecsNullVals = specMap(specKey, tStrNull, tObj)
	pMetadataNull  = specMap(specKey, tStr, tObjNull)
	pSpecsNoSpace  = specMap(specKeyNoSpace, tStrNull, tObj)
	pOneSpec       = oneKey(specKey, tStr)
	pOneSpecNoSp   = oneKey(specKeyNoSpace, tStrNull)
)

func specMap(keys *regexp.Regexp, valueTypes, types []string) *api.Schema {
	return &api.Schema{Types: types, Closed: true, Keys: keys, Values: &api.Schema{Types: valueTypes, MaxLen: 255}}
}

func oneKey(keys *regexp.Regexp, valueTypes []string) *api.Schema {
	s := specMap(keys, valueTypes, tObj)
	s.MinProps, s.MaxProps = 1, 1
	return s
}

type props = map[string]*api.Schema

func closed(p props, required ...string) *api.Schema { return api.ObjectOf(p, required...) }

func nullableClosed(p props, required ...string) *api.Schema {
	s := api.ObjectOf(p, required...)
	s.Types = tObjNull
	return s
}

func open(p props, required ...string) *api.Schema {
	s := api.ObjectOf(p, required...)
	s.Closed = false
	return s
}

func anyOf(s *api.Schema, keys ...string) *api.Schema {
	for _, k := range keys {
		s.AnyOf = append(s.AnyOf, []string{k})
	}
	return s
}

// actions is the schema of an …/action body: each action Cinder checks,
// by name; other names go to the handler.
func actions(p props) *api.Schema {
	return &api.Schema{Types: tObj, Properties: p}
}

var (
	volumeCreate = api.ObjectOf(props{
		"volume": closed(props{
			"name": pNameZero, "description": pDescription, "display_name": pNameZero, "display_description": pDescription,
			"volume_type": pNameZero, "metadata": pMetadataNull,
			"snapshot_id": pUUIDNull, "source_volid": pUUIDNull, "consistencygroup_id": pUUIDNull, "backup_id": pUUIDNull,
			"group_id": pNameZero, "size": pSizeNull, "availability_zone": pZone, "multiattach": pBoolNull,
			"image_id": pNameZero, "imageRef": pNameZero,
		}),
		"OS-SCH-HNT:scheduler_hints": {Types: tObjNull},
	}, "volume")
	volumeUpdate = api.BodyOf("volume", anyOf(closed(props{
		"name": pNameZero, "description": pDescription, "display_name": pNameZero, "display_description": pDescription,
		"metadata": pSpecs,
	}), "name", "description", "display_name", "display_description", "metadata"))

	volumeActions = actions(props{
		"os-extend": closed(props{"new_size": pSize}, "new_size"),
		"os-attach": anyOf(closed(props{"instance_uuid": pUUID, "mountpoint": pName, "host_name": {Types: tStr, MaxLen: 255},
			"mode": {Types: tStr, Enum: []any{"rw", "ro"}}}, "mountpoint"), "instance_uuid", "host_name"),
		"os-detach":       nullableClosed(props{"attachment_id": pUUIDNull}),
		"os-retype":       closed(props{"new_type": {Types: tStr}, "migration_policy": {Types: tStrNull, Enum: []any{"on-demand", "never", nil}}}, "new_type"),
		"os-set_bootable": closed(props{"bootable": pBool}, "bootable"),
		"os-volume_upload_image": closed(props{"image_name": pName, "force": pBool,
			"disk_format":      {Types: tStr, Enum: []any{"raw", "vmdk", "vdi", "qcow2", "vhd", "vhdx", "ploop"}},
			"container_format": pDescription,
			"visibility":       {Types: tStr, Enum: []any{"community", "public", "private", "shared"}},
			"protected":        pBool}, "image_name"),
		"os-initialize_connection":    closed(props{"connector": {Types: []string{"object", "string"}}}, "connector"),
		"os-terminate_connection":     closed(props{"connector": {Types: []string{"string", "object", "null"}}}, "connector"),
		"os-update_readonly_flag":     closed(props{"readonly": pBool}, "readonly"),
		"os-reimage":                  closed(props{"image_id": pUUID, "reimage_reserved": pBool}, "image_id"),
		"os-extend_volume_completion": closed(props{"error": pBool}),
		"os-reset_status":             closed(props{"status": {Types: tStrNull}, "attach_status": {Types: tStrNull}, "migration_status": {Types: tStrNull}}),
		"os-force_detach":             closed(props{"connector": {Types: []string{"string", "object", "null"}}, "attachment_id": {Types: tStrNull}}),
		"os-migrate_volume": closed(props{"host": {Types: tStrNull, MaxLen: 255}, "force_host_copy": pBool, "lock_volume": pBool,
			"cluster": pNameZero}),
		"os-migrate_volume_completion": closed(props{"new_volume": pUUID, "error": {Types: []string{"string", "null", "boolean"}}}, "new_volume"),
	})

	snapshotCreate = api.BodyOf("snapshot", closed(props{
		"name": pNameZero, "display_name": pNameZero, "description": pDescription, "volume_id": pUUIDNull,
		"force": pBool, "metadata": pMetadataNull,
	}, "volume_id"))
	snapshotUpdate = api.BodyOf("snapshot", anyOf(closed(props{
		"name": pNameZero, "description": pDescription, "display_name": pNameZero, "display_description": pDescription,
	}), "name", "description", "display_name", "display_description"))
	statusOnly      = closed(props{"status": {Types: tStr}}, "status")
	snapshotActions = actions(props{
		"os-reset_status":           statusOnly,
		"os-update_snapshot_status": closed(props{"status": {Types: tStr}, "progress": pAny}, "status"),
	})

	metadataSet    = api.BodyOf("metadata", pSpecs)
	metadataPutKey = api.BodyOf("meta", pOneSpec)

	typeCreate = api.BodyOf("volume_type", closed(props{
		"name": pName, "description": pDescription, "extra_specs": pSpecsNullVals, "os-volume-type-access:is_public": pBool,
	}, "name"))
	typeUpdate       = api.BodyOf("volume_type", closed(props{"name": pUpdateName, "description": pDescription, "is_public": pBool}))
	extraSpecsCreate = api.BodyOf("extra_specs", pSpecsNoSpace)
	typeAccess       = closed(props{"project": pUUID}, "project")
	typeActions      = actions(props{"addProjectAccess": typeAccess, "removeProjectAccess": typeAccess})
	encryption       = props{
		"key_size":         {Types: []string{"string", "integer", "null"}, Min: api.Bound(0), Max: dbMaxInt},
		"provider":         {Types: tStr, MaxLen: 255},
		"control_location": {Enum: []any{"front-end", "back-end"}},
		"cipher":           {Types: tStrNull, MaxLen: 255},
	}
	encryptionCreate = api.BodyOf("encryption", open(encryption, "provider", "control_location"))
	encryptionUpdate = api.BodyOf("encryption", open(encryption))

	qosCreate = api.BodyOf("qos_specs", open(props{"name": {Types: tStr}}, "name"))
	qosSet    = api.BodyOf("qos_specs", pSpecsNullVals)
	qosUnset  = api.BodyOf("keys", &api.Schema{Types: []string{"array"}, Items: &api.Schema{Types: tStr, MinLen: 1, MaxLen: 255}, Unique: true})

	quotaSet      = api.BodyOf("quota_set", &api.Schema{Types: tObj, MinProps: 1})
	quotaClassSet = api.BodyOf("quota_class_set", &api.Schema{Types: tObj, Closed: true, Keys: regexp.MustCompile(`^[a-zA-Z0-9_:. -]{1,255}$`),
		Values: &api.Schema{Types: []string{"integer", "string"}, Pattern: digitsOrNone, MinLen: 1, Min: api.Bound(-1), Max: dbMaxInt}})

	backupCreate = api.BodyOf("backup", closed(props{
		"volume_id": pUUID, "container": pNameZero, "description": pDescription, "incremental": pBool, "force": pBool,
		"name": pNameZero, "snapshot_id": pUUIDNull, "metadata": pMetadataNull, "availability_zone": pNullable,
	}, "volume_id"))
	backupUpdate  = api.BodyOf("backup", nullableClosed(props{"name": pNameZero, "description": pDescription, "metadata": pSpecs}))
	backupRestore = api.BodyOf("restore", nullableClosed(props{"name": pNameZero, "volume_id": pUUIDNull}))
	backupImport  = api.BodyOf("backup-record", closed(props{
		"backup_service": {Types: tStr, MaxLen: 255}, "backup_url": {Types: tStr, MinLen: 1},
	}, "backup_service", "backup_url"))
	backupActions = actions(props{"os-reset_status": statusOnly})

	transferName     = &api.Schema{Types: tStrNull, MaxLen: 255}
	transferCreate   = api.BodyOf("transfer", closed(props{"volume_id": pUUID, "name": transferName}, "volume_id"))
	transferCreate55 = api.BodyOf("transfer", closed(props{"volume_id": pUUID, "name": transferName, "no_snapshots": pBool}, "volume_id"))
	transferAccept   = api.BodyOf("accept", closed(props{"auth_key": {Types: []string{"string", "integer"}}}, "auth_key"))

	attachmentCreate = api.BodyOf("attachment", closed(props{
		"instance_uuid": pUUID, "connector": {Types: tObjNull}, "volume_uuid": pUUID,
	}, "volume_uuid"))
	attachmentCreate54 = api.BodyOf("attachment", closed(props{
		"instance_uuid": pUUID, "connector": {Types: tObjNull}, "volume_uuid": pUUID, "mode": {Types: tStr, Enum: []any{"rw", "ro"}},
	}, "volume_uuid"))
	attachmentUpdate = api.BodyOf("attachment", closed(props{"connector": {Types: tObj, MinProps: 1}}, "connector"))

	groupTypeCreate = api.BodyOf("group_type", closed(props{
		"name": pName, "description": pDescription, "is_public": pBool, "group_specs": pMetadataNull,
	}, "name"))
	groupTypeUpdate  = api.BodyOf("group_type", closed(props{"name": pNameZero, "description": pDescription, "is_public": pBool}))
	groupSpecsCreate = api.BodyOf("group_specs", pSpecsNoSpace)

	groupCreate = api.BodyOf("group", closed(props{
		"description": pDescription, "group_type": {Types: tStr}, "name": pNameZero,
		"volume_types":      {Types: []string{"array"}, MinItems: 1, Items: &api.Schema{Types: tStr, MaxLen: 255}, Unique: true},
		"availability_zone": {Types: tStrNull},
	}, "group_type", "volume_types"))
	groupFromSource = func() *api.Schema {
		s := closed(props{"description": pDescription, "name": pNameZero, "source_group_id": pUUID, "group_snapshot_id": pUUID})
		s.OneOf = [][]string{{"group_snapshot_id"}, {"source_group_id"}}
		return api.BodyOf("create-from-src", s)
	}()
	groupUpdate = api.BodyOf("group", anyOf(closed(props{
		"description": pDescription, "name": pNameZero, "add_volumes": pDescription, "remove_volumes": pDescription,
	}), "name", "description", "add_volumes", "remove_volumes"))
	groupActions = actions(props{
		"delete":                   closed(props{"delete-volumes": pBool}),
		"reset_status":             statusOnly,
		"failover_replication":     closed(props{"allow_attached_volume": pBool, "secondary_backend_id": pNullable}),
		"list_replication_targets": {Types: tObj},
		"enable_replication":       {Types: tObj},
		"disable_replication":      {Types: tObj},
	})
	groupSnapshotCreate  = api.BodyOf("group_snapshot", closed(props{"group_id": pUUID, "name": pNameZero, "description": pDescription}, "group_id"))
	groupSnapshotActions = actions(props{"reset_status": statusOnly})
)

// bodySchemas are the schemas of the routes' bodies, by method and path
// under /v3/{project_id}.
func bodySchemas() map[string]func(*http.Request) *api.Schema {
	b := map[string]func(*http.Request) *api.Schema{
		"POST /volumes":                      from53(volumeCreate),
		"PUT /volumes/{id}":                  from53(volumeUpdate),
		"POST /volumes/{id}/action":          from53(volumeActions),
		"POST /volumes/{id}/metadata":        from53(metadataSet),
		"PUT /volumes/{id}/metadata":         from53(metadataSet),
		"PUT /volumes/{id}/metadata/{key}":   from53(metadataPutKey),
		"POST /snapshots":                    from53(snapshotCreate),
		"PUT /snapshots/{id}":                from53(snapshotUpdate),
		"POST /snapshots/{id}/action":        from53(snapshotActions),
		"POST /snapshots/{id}/metadata":      from53(metadataSet),
		"PUT /snapshots/{id}/metadata":       from53(metadataSet),
		"PUT /snapshots/{id}/metadata/{key}": from53(metadataPutKey),

		"POST /types":                             from53(typeCreate),
		"PUT /types/{id}":                         from53(typeUpdate),
		"POST /types/{id}/action":                 from53(typeActions),
		"POST /types/{id}/extra_specs":            from53(extraSpecsCreate),
		"PUT /types/{id}/extra_specs/{key}":       from53(pOneSpecNoSp),
		"POST /types/{id}/encryption":             from53(encryptionCreate),
		"PUT /types/{id}/encryption/{spec}":       from53(encryptionUpdate),
		"POST /qos-specs":                         from53(qosCreate),
		"PUT /qos-specs/{id}":                     from53(qosSet),
		"PUT /qos-specs/{id}/delete_keys":         from53(qosUnset),
		"PUT /os-quota-sets/{project}":            from53(quotaSet),
		"PUT /os-quota-class-sets/{class}":        from53(quotaClassSet),
		"POST /backups":                           from53(backupCreate),
		"PUT /backups/{id}":                       from53(backupUpdate),
		"POST /backups/{id}/restore":              from53(backupRestore),
		"POST /backups/import_record":             from53(backupImport),
		"POST /backups/{id}/action":               from53(backupActions),
		"POST /attachments":                       since(bodyStep{53, attachmentCreate}, bodyStep{54, attachmentCreate54}),
		"PUT /attachments/{id}":                   from53(attachmentUpdate),
		"POST /group_types":                       from53(groupTypeCreate),
		"PUT /group_types/{id}":                   from53(groupTypeUpdate),
		"POST /group_types/{id}/group_specs":      from53(groupSpecsCreate),
		"PUT /group_types/{id}/group_specs/{key}": from53(pOneSpecNoSp),
		"POST /groups":                            from53(groupCreate),
		"POST /groups/action":                     from53(groupFromSource),
		"PUT /groups/{id}":                        from53(groupUpdate),
		"POST /groups/{id}/action":                from53(groupActions),
		"POST /group_snapshots":                   from53(groupSnapshotCreate),
		"POST /group_snapshots/{id}/action":       from53(groupSnapshotActions),
	}
	b["PUT /v3/default-types/{id}"] = since(bodyStep{62, api.BodyOf("default_type", closed(props{"volume_type": pName}, "volume_type"))})
	for _, c := range []string{"os-volume-transfer", "volume-transfers"} {
		b["POST /"+c] = since(bodyStep{53, transferCreate}, bodyStep{55, transferCreate55})
		b["POST /"+c+"/{id}/accept"] = from53(transferAccept)
	}
	return b
}
