package baremetal

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
)

// Updates are RFC 6902 JSON patches ([{"op": "add", "path":
// "/driver_info/ipmi_address", "value": "..."}]) with add, replace and
// remove, applied to the resource as a JSON document; all apply or none.
// Removing a top-level attribute resets it to its default.

type patchOp struct {
	op    string
	path  []string
	value any
}

func readPatch(r *http.Request) ([]patchOp, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, api.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, api.Errorf(http.StatusRequestEntityTooLarge, "Request body exceeds %d bytes.", api.MaxBodyBytes)
		}
		return nil, badRequestf("Malformed request body: %v", err)
	}
	var ops []map[string]any
	if err := json.Unmarshal(raw, &ops); err != nil {
		return nil, badRequestf("Invalid patch: the body must be a JSON list of operations.")
	}
	if len(ops) == 0 {
		return nil, badRequestf("Invalid patch: the list of operations is empty.")
	}
	out := make([]patchOp, 0, len(ops))
	for _, o := range ops {
		op, _ := o["op"].(string)
		switch op {
		case "add", "replace", "remove":
		default:
			return nil, badRequestf("Invalid patch operation %q: only add, replace and remove are supported.", op)
		}
		p, _ := o["path"].(string)
		if !strings.HasPrefix(p, "/") || len(p) < 2 {
			return nil, badRequestf("Invalid patch path %q: a JSON pointer naming an attribute is required.", p)
		}
		var segs []string
		for _, s := range strings.Split(p[1:], "/") {
			segs = append(segs, strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~"))
		}
		v, hasValue := o["value"]
		if op != "remove" && !hasValue {
			return nil, badRequestf("Invalid patch for %s: 'value' is required for %s.", p, op)
		}
		out = append(out, patchOp{op: op, path: segs, value: v})
	}
	return out, nil
}

func pointer(segs []string) string { return "/" + strings.Join(segs, "/") }

// applyPatch applies ops to doc. readOnly are top-level attributes that
// cannot be changed, mandatory those that cannot be removed.
func applyPatch(doc map[string]any, ops []patchOp, readOnly, mandatory []string) error {
	for _, o := range ops {
		top := o.path[0]
		if slices.Contains(readOnly, top) {
			return badRequestf("'%s' is an internal attribute and can not be updated", pointer(o.path[:1]))
		}
		if _, ok := doc[top]; !ok {
			return badRequestf("Adding a new attribute (%s) to the root of the resource is not allowed.", pointer(o.path[:1]))
		}
		if len(o.path) == 1 && o.op == "remove" && slices.Contains(mandatory, top) {
			return badRequestf("'%s' is a mandatory attribute and can not be removed", pointer(o.path))
		}
		if len(o.path) == 1 {
			// The root always has its attributes: add and replace set
			// one, remove resets it (the key goes; setFields defaults it).
			if o.op == "remove" {
				delete(doc, top)
			} else {
				doc[top] = o.value
			}
			continue
		}
		child, err := patchValue(doc[top], o.path[1:], o)
		if err != nil {
			return err
		}
		doc[top] = child
	}
	return nil
}

// patchValue applies o at segs inside v and returns the new v.
func patchValue(v any, segs []string, o patchOp) (any, error) {
	k := segs[0]
	switch c := v.(type) {
	case map[string]any:
		if len(segs) > 1 {
			child, ok := c[k]
			if !ok {
				return nil, badRequestf("Invalid patch path %s: member '%s' not found.", pointer(o.path), k)
			}
			nc, err := patchValue(child, segs[1:], o)
			c[k] = nc
			return c, err
		}
		_, exists := c[k]
		switch o.op {
		case "add":
			c[k] = o.value
		case "replace":
			if !exists {
				return nil, badRequestf("Invalid patch path %s: can't replace non-existent object '%s'.", pointer(o.path), k)
			}
			c[k] = o.value
		case "remove":
			if !exists {
				return nil, badRequestf("Invalid patch path %s: can't remove non-existent object '%s'.", pointer(o.path), k)
			}
			delete(c, k)
		}
		return c, nil
	case []any:
		i, err := strconv.Atoi(k)
		if k == "-" && o.op == "add" && len(segs) == 1 {
			return append(c, o.value), nil
		}
		if err != nil || i < 0 || i > len(c) || (i == len(c) && (o.op != "add" || len(segs) > 1)) {
			return nil, badRequestf("Invalid patch path %s: no list element %s.", pointer(o.path), k)
		}
		if len(segs) > 1 {
			nc, err := patchValue(c[i], segs[1:], o)
			c[i] = nc
			return c, err
		}
		switch o.op {
		case "add":
			return slices.Insert(c, i, o.value), nil
		case "replace":
			c[i] = o.value
			return c, nil
		}
		return slices.Delete(c, i, i+1), nil
	}
	return nil, badRequestf("Invalid patch path %s: it goes into a value that is not an object.", pointer(o.path))
}

// nodeReadOnly are the node attributes only the service or the conductor
// sets.
var nodeReadOnly = []string{
	"uuid", "id", "created_at", "updated_at", "provision_state", "target_provision_state", "provision_updated_at",
	"power_state", "target_power_state", "last_error", "conductor", "driver_internal_info", "reservation",
	"console_enabled", "allocation_uuid", "fault", "traits", "links", "ports", "portgroups", "states", "volume",
	"clean_step", "deploy_step", "raid_config", "target_raid_config", "inspection_started_at",
	"inspection_finished_at", "boot_mode", "secure_boot", "network_data",
}

// nodeDoc is the node's writable attributes as a JSON document, the
// secrets masked.
func nodeDoc(n *bmstate.Node) map[string]any {
	doc := map[string]any{
		"name": nullStr(n.Name), "description": nullStr(n.Description), "driver": n.Driver,
		"driver_info": driverInfoView(n), "properties": deepCopy(jsonMap(n.Properties)), "extra": deepCopy(jsonMap(n.Extra)),
		"instance_info": deepCopy(jsonMap(n.InstanceInfo)), "instance_uuid": nullStr(n.InstanceUUID),
		"resource_class": nullStr(n.ResourceClass), "owner": nullStr(n.Owner), "lessee": nullStr(n.Lessee),
		"maintenance": n.Maintenance, "maintenance_reason": nullStr(n.MaintenanceReason),
		"protected": n.Protected, "protected_reason": nullStr(n.ProtectedReason),
		"retired": n.Retired, "retired_reason": nullStr(n.RetiredReason),
		"chassis_uuid": nullStr(n.ChassisID), "conductor_group": "", "automated_clean": nil,
	}
	for _, k := range interfaceKinds {
		doc[k+"_interface"] = n.Interfaces[k]
	}
	return doc
}

func deepCopy(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

func (s *Service) updateNode(w http.ResponseWriter, r *http.Request) error {
	ops, err := readPatch(r)
	if err != nil {
		return err
	}
	minor := versionOf(r.Context())
	for _, o := range ops {
		if since, ok := fieldSince[o.path[0]]; ok && minor < since {
			return versionError(o.path[0], since)
		}
	}
	q := r.URL.Query()
	reset := false
	if q.Has("reset_interfaces") {
		if minor < 45 {
			return versionError("reset_interfaces", 45)
		}
		var ok bool
		if reset, ok = api.ToBool(q.Get("reset_interfaces")); !ok {
			return badRequestf("Invalid value for reset_interfaces: %q is not a boolean.", q.Get("reset_interfaces"))
		}
		if !touches(ops, "driver") {
			return badRequestf("The reset_interfaces parameter can be provided only when changing the node's driver.")
		}
	}
	n, err := s.mutateNode(r.Context(), chi.URLParam(r, "node"), func(tx *memdb.Txn, n *bmstate.Node) error {
		doc := nodeDoc(n)
		if err := applyPatch(doc, ops, nodeReadOnly, []string{"driver"}); err != nil {
			return err
		}
		if p, _ := doc["protected"].(bool); !p && !touches(ops, "protected_reason") {
			// Unprotecting drops the reason, as in Ironic.
			doc["protected_reason"] = nil
		}
		if r, _ := doc["retired"].(bool); !r && !touches(ops, "retired_reason") {
			// So does unretiring.
			doc["retired_reason"] = nil
		}
		drvName, _ := doc["driver"].(string)
		d := findDriver(drvName)
		if d == nil {
			return &api.Error{Status: http.StatusBadRequest, Field: "driver",
				Msg: "Invalid input for field/attribute driver. Value: '" + api.Text(doc["driver"]) + "'. The drivers are " + driverNames() + "."}
		}
		if drvName != n.Driver && reset {
			// Asked to, a new hardware type resets the interfaces the
			// patch does not set; otherwise they must suit it.
			for _, k := range interfaceKinds {
				if !touches(ops, k+"_interface") {
					doc[k+"_interface"] = d.interfaces[k]
				}
			}
		}
		before := n.Clone()
		n.Driver = drvName
		if err := s.setFields(n, doc, d, false); err != nil {
			return err
		}
		working := bmstate.Working(n.ProvisionState)
		if working && (n.Driver != before.Driver || !maps.Equal(n.DriverInfo, before.DriverInfo) ||
			!maps.Equal(n.Secrets, before.Secrets) || !maps.Equal(n.Interfaces, before.Interfaces)) {
			return nodeLocked(n.ID, n.ProvisionState)
		}
		if n.Retired && !before.Retired && n.ProvisionState == bmstate.StateAvailable {
			// Ironic's rule: an available node could be scheduled the
			// moment it is flagged, so it is moved to manageable first.
			return conflictf("The node %s is in state %s: retire a node in %s (or any state but %s) instead.",
				n.ID, n.ProvisionState, bmstate.StateManageable, bmstate.StateAvailable)
		}
		if n.InstanceUUID != before.InstanceUUID {
			if working {
				return nodeLocked(n.ID, n.ProvisionState)
			}
			if before.InstanceUUID != "" && n.InstanceUUID != "" {
				return conflictf("Node %s is associated with instance %s.", n.ID, before.InstanceUUID)
			}
		}
		if configdrive, ok := before.InstanceInfo["configdrive"]; ok && n.InstanceInfo != nil && n.InstanceInfo["configdrive"] == masked {
			n.InstanceInfo["configdrive"] = configdrive
		}
		return nil
	})
	if err != nil {
		return err
	}
	v := s.nodeView(r, n)
	delete(v, "id")
	api.JSON(w, http.StatusOK, v)
	return nil
}

// touches reports whether a patch addresses the top-level attribute f.
func touches(ops []patchOp, f string) bool {
	for _, o := range ops {
		if o.path[0] == f {
			return true
		}
	}
	return false
}
