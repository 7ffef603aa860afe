package baremetal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/fabric/store"
)

// masked is what the API shows for a secret (a BMC password, a config
// drive), as Ironic does.
const masked = "******"

// fieldSince is the microversion each node field appeared in; older
// requests do not see it, and may not set it (406), as in Ironic.
var fieldSince = map[string]int{
	"driver_internal_info": 3, "name": 5, "inspection_started_at": 6, "inspection_finished_at": 6,
	"clean_step": 7, "network_interface": 20, "resource_class": 21,
	"boot_interface": 31, "console_interface": 31, "deploy_interface": 31, "inspect_interface": 31,
	"management_interface": 31, "power_interface": 31, "raid_interface": 31, "vendor_interface": 31,
	"storage_interface": 33, "traits": 37, "rescue_interface": 38, "bios_interface": 40, "fault": 42,
	"deploy_step": 44, "conductor_group": 46, "automated_clean": 47, "protected": 48, "protected_reason": 48,
	"conductor": 49, "owner": 50, "description": 51, "allocation_uuid": 52, "retired": 61, "retired_reason": 61,
	"portgroups": 24, "volume": 32, "lessee": 65, "network_data": 66, "boot_mode": 75, "secure_boot": 75,
	// firmware_interface is 1.86, beyond this API: never shown.
	"firmware_interface": 86,
}

// nodeFields are the fields of a full node view, for fields= checks.
var nodeFields = []string{
	"uuid", "name", "driver", "driver_info", "driver_internal_info", "properties", "instance_info", "instance_uuid",
	"resource_class", "description", "extra", "owner", "lessee", "traits", "maintenance", "maintenance_reason",
	"fault", "protected", "protected_reason", "retired", "retired_reason", "provision_state", "target_provision_state",
	"provision_updated_at", "power_state", "target_power_state", "last_error", "console_enabled", "conductor",
	"conductor_group", "chassis_uuid", "clean_step", "deploy_step", "raid_config", "target_raid_config",
	"reservation", "allocation_uuid", "automated_clean", "inspection_started_at", "inspection_finished_at",
	"created_at", "updated_at", "network_data", "boot_mode", "secure_boot", "links", "ports", "portgroups", "states", "volume",
	"bios_interface", "boot_interface", "console_interface", "deploy_interface", "inspect_interface",
	"management_interface", "network_interface", "power_interface", "raid_interface", "rescue_interface",
	"storage_interface", "vendor_interface",
}

// faults are the reasons the conductor may put a node into maintenance
// by itself (Ironic's faults).
var faults = []string{"power failure", "clean failure", "rescue abort failure"}

var nodeListing = listing{
	key:        "nodes",
	short:      []string{"uuid", "instance_uuid", "maintenance", "power_state", "provision_state", "name", "links"},
	known:      nodeFields,
	since:      fieldSince,
	unsortable: []string{"driver_info", "driver_internal_info", "properties", "instance_info", "extra", "traits", "clean_step", "deploy_step", "raid_config", "target_raid_config", "network_data", "links", "ports", "portgroups", "states", "volume"},
	filters: map[string]api.Filter{
		"associated": func(v api.View, want []string) (bool, error) {
			b, ok := api.ToBool(want[0])
			if !ok {
				return false, badRequestf("Invalid value for associated: %q is not a boolean.", want[0])
			}
			return (v["instance_uuid"] != nil) == b, nil
		},
		"fault": func(v api.View, want []string) (bool, error) {
			if !slices.Contains(faults, want[0]) {
				return false, badRequestf("Unrecognized fault \"%s\" is specified, allowed faults are %s", want[0], strings.Join(faults, ", "))
			}
			return v["fault"] == want[0], nil
		},
		"description_contains": func(v api.View, want []string) (bool, error) {
			d, _ := v["description"].(string)
			return strings.Contains(d, want[0]), nil
		},
		"provision_state": func(v api.View, want []string) (bool, error) {
			return api.MatchValue(v["provision_state"], want), nil
		},
	},
}

// driverInfoView is driver_info as shown: its values, and "******" for
// each sealed password.
func driverInfoView(n *bmstate.Node) map[string]any {
	out := map[string]any{}
	for k, v := range n.DriverInfo {
		out[k] = v
	}
	for k := range n.Secrets {
		out[k] = masked
	}
	return out
}

func jsonMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// instanceInfoView is instance_info with the config drive masked.
func instanceInfoView(n *bmstate.Node) map[string]any {
	out := map[string]any{}
	for k, v := range n.InstanceInfo {
		out[k] = v
	}
	if _, ok := out["configdrive"]; ok {
		out["configdrive"] = masked
	}
	return out
}

// nodeView is a node as Ironic shows it at the request's microversion.
func (s *Service) nodeView(r *http.Request, n *bmstate.Node) api.View {
	base := s.baseURL(r)
	traits := n.Traits
	if traits == nil {
		traits = []string{}
	}
	v := api.View{
		"id": n.ID, "uuid": n.ID, "name": nullStr(n.Name), "driver": n.Driver,
		"driver_info": driverInfoView(n), "driver_internal_info": jsonMap(n.DriverInternalInfo),
		"properties": jsonMap(n.Properties), "instance_info": instanceInfoView(n), "instance_uuid": nullStr(n.InstanceUUID),
		"resource_class": nullStr(n.ResourceClass), "description": nullStr(n.Description), "extra": jsonMap(n.Extra),
		"owner": nullStr(n.Owner), "lessee": nullStr(n.Lessee), "traits": traits,
		"maintenance": n.Maintenance, "maintenance_reason": nullStr(n.MaintenanceReason), "fault": nullStr(n.Fault),
		"protected": n.Protected, "protected_reason": nullStr(n.ProtectedReason),
		"retired": n.Retired, "retired_reason": nullStr(n.RetiredReason),
		"provision_state": provisionStateText(r, n.ProvisionState), "target_provision_state": nullStr(n.TargetProvisionState),
		"provision_updated_at": timeText(n.ProvisionUpdatedAt),
		"power_state":          nullStr(n.PowerState), "target_power_state": nullStr(n.TargetPowerState),
		"last_error": nullStr(n.LastError), "console_enabled": n.ConsoleEnabled,
		"conductor": nullStr(n.Conductor), "conductor_group": "", "chassis_uuid": nullStr(n.ChassisID),
		"clean_step": map[string]any{}, "deploy_step": map[string]any{},
		"raid_config": map[string]any{}, "target_raid_config": jsonMap(n.TargetRAIDConfig),
		"reservation": nil, "allocation_uuid": nullStr(n.AllocationID), "automated_clean": nil,
		"inspection_started_at": timeText(n.InspectionStartedAt), "inspection_finished_at": timeText(n.InspectedAt),
		"created_at": timeText(n.CreatedAt), "updated_at": timeText(n.UpdatedAt),
		"network_data": map[string]any{}, "boot_mode": nil, "secure_boot": nil,
		"links":      links(base, "nodes", n.ID),
		"ports":      links(base, "nodes", n.ID+"/ports"),
		"portgroups": links(base, "nodes", n.ID+"/portgroups"),
		"states":     links(base, "nodes", n.ID+"/states"),
		"volume":     links(base, "nodes", n.ID+"/volume"),
	}
	for _, k := range interfaceKinds {
		v[k+"_interface"] = n.Interfaces[k]
	}
	minor := versionOf(r.Context())
	for f, since := range fieldSince {
		if minor < since {
			delete(v, f)
		}
	}
	return v
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// nameRE is what a node name may be: hostname-like, with Ironic's 1.10
// additions (".", "_", "~").
var nameRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,255}$`)

// lookupNode finds a node by uuid or name.
func lookupNode(tx *memdb.Txn, ident string) (*bmstate.Node, error) {
	if n := store.Get[bmstate.Node](tx, bmstate.NodeTable, ident); n != nil {
		return n.Clone(), nil
	}
	if !uuidRE.MatchString(ident) {
		if raw, _ := tx.First(bmstate.NodeTable, "name", ident); raw != nil {
			return raw.(*bmstate.Node).Clone(), nil
		}
	}
	return nil, nodeNotFound(ident)
}

func (s *Service) readNode(r *http.Request) (*memdb.Txn, *bmstate.Node, error) {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, nil, err
	}
	n, err := lookupNode(tx, chi.URLParam(r, "node"))
	return tx, n, err
}

// mutateNode changes the node ident names with change, which gets a copy
// of the current row, and proposes the result against the revision it
// read; a concurrent change (the conductor's) makes it read again and
// retry. change returning an error stops it.
func (s *Service) mutateNode(ctx context.Context, ident string, change func(tx *memdb.Txn, n *bmstate.Node) error) (*bmstate.Node, error) {
	var out bmstate.Node
	err := retryStale(func() error {
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return err
		}
		cur, err := lookupNode(tx, ident)
		if err != nil {
			return err
		}
		n := cur.Clone()
		if err := change(tx, n); err != nil {
			return err
		}
		n.UpdatedAt = s.now()
		res, err := s.cfg.Repl.Propose(ctx, bmstate.CmdPutNode, bmstate.PutNodeCmd{Row: *n, Revision: cur.Revision})
		if err != nil {
			return err
		}
		return res.Decode(&out)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (s *Service) listNodes(detail bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		if askedDetail(r) && detail {
			return badRequestf("Invalid parameter: detail is not allowed on /nodes/detail.")
		}
		detail := detail || askedDetail(r)
		minor := versionOf(r.Context())
		for param, since := range map[string]int{"resource_class": 21, "fault": 42, "conductor_group": 46, "conductor": 49, "owner": 50, "description_contains": 51, "lessee": 65, "retired": 61} {
			if q.Has(param) && minor < since {
				return versionError(param, since)
			}
		}
		if q.Has("instance_uuid") && q.Has("associated") {
			return badRequestf("Only one of instance_uuid or associated may be specified.")
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		var views []api.View
		for _, n := range store.All[bmstate.Node](tx, bmstate.NodeTable, "id") {
			views = append(views, s.nodeView(r, n))
		}
		return nodeListing.write(w, r, s.baseURL(r), views, detail)
	}
}

func (s *Service) showNode(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	v := s.nodeView(r, n)
	delete(v, "id")
	fields := api.Fields(r.URL.Query())
	for _, f := range fields {
		if _, ok := v[f]; !ok {
			return badRequestf("Field(s) \"%s\" are not valid", f)
		}
	}
	api.JSON(w, http.StatusOK, api.Pick(v, fields))
	return nil
}

// createFields are the attributes a node may be created with.
var createFields = func() []string {
	f := []string{"uuid", "name", "driver", "driver_info", "properties", "extra", "instance_info", "resource_class",
		"description", "owner", "lessee", "maintenance", "maintenance_reason", "chassis_uuid", "conductor_group",
		"automated_clean", "protected", "protected_reason", "retired", "retired_reason"}
	for _, k := range interfaceKinds {
		f = append(f, k+"_interface")
	}
	return f
}()

func (s *Service) createNode(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	if extra := api.Unexpected(body, createFields...); len(extra) > 0 {
		return &api.Error{Status: http.StatusBadRequest, Field: extra[0],
			Msg: fmt.Sprintf("Additional properties are not allowed ('%s' was unexpected)", strings.Join(extra, "', '"))}
	}
	minor := versionOf(r.Context())
	for k := range body {
		if since, ok := fieldSince[k]; ok && minor < since {
			return versionError(k, since)
		}
	}
	in := api.NewInput(body, wording{})
	now := s.now()
	n := &bmstate.Node{
		CreatedAt: now, ProvisionState: bmstate.StateEnroll,
		ProvisionUpdatedAt: now, Interfaces: map[string]string{},
	}
	id, err := newID(in)
	if err != nil {
		return err
	}
	n.ID = id
	// Before 1.11 new nodes were made available at once, and old
	// clients expect it.
	if minor < 11 {
		n.ProvisionState = bmstate.StateAvailable
	}
	drvName := in.Required("driver", 255)
	if in.Err != nil {
		return in.Err
	}
	d := findDriver(drvName)
	if d == nil {
		return &api.Error{Status: http.StatusBadRequest, Field: "driver",
			Msg: fmt.Sprintf("Invalid input for field/attribute driver. Value: '%s'. No conductor can drive hardware type %s: the drivers are %s.", drvName, drvName, driverNames())}
	}
	n.Driver = drvName
	if err := s.setFields(n, body, d, true); err != nil {
		return err
	}
	if _, ok := body["resource_class"]; !ok {
		n.ResourceClass = s.cfg.DefaultResourceClass
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	n.Conductor = s.pickConductor(tx, d)
	res, err := s.cfg.Repl.Propose(r.Context(), bmstate.CmdCreateNode, bmstate.CreateNodeCmd{Row: *n})
	if err != nil {
		return err
	}
	var out bmstate.Node
	if err := res.Decode(&out); err != nil {
		return err
	}
	w.Header().Set("Location", s.baseURL(r)+"/v1/nodes/"+out.ID)
	v := s.nodeView(r, &out)
	delete(v, "id")
	api.JSON(w, http.StatusCreated, v)
	return nil
}

func driverNames() string {
	var names []string
	for _, d := range drivers {
		names = append(names, d.name)
	}
	return strings.Join(names, ", ")
}

// setFields sets n's writable fields from doc (a create body, or a
// patched node document), checking each and naming the field at fault.
// A field absent from doc is left alone on create and reset to its
// default on update (a JSON patch "remove").
func (s *Service) setFields(n *bmstate.Node, doc map[string]any, d *driver, create bool) error {
	in := api.NewInput(doc, wording{})
	has := func(f string) bool { return in.Has(f) || !create }
	if has("name") {
		n.Name = in.Str("name", "", 255)
		if in.Err == nil && n.Name != "" && (!nameRE.MatchString(n.Name) || uuidRE.MatchString(n.Name)) {
			return wording{}.BadField("name", n.Name, "Expected a logical name but received "+n.Name+".")
		}
	}
	if has("description") {
		n.Description = in.Str("description", "", 4096)
	}
	if has("resource_class") {
		n.ResourceClass = in.Str("resource_class", "", 80)
	}
	if has("owner") {
		n.Owner = in.Str("owner", "", 255)
	}
	if has("lessee") {
		n.Lessee = in.Str("lessee", "", 255)
	}
	if has("maintenance") {
		n.Maintenance = in.Bool("maintenance", false)
	}
	if has("maintenance_reason") {
		n.MaintenanceReason = in.Str("maintenance_reason", "", 255)
	}
	if has("protected") {
		n.Protected = in.Bool("protected", false)
	}
	if has("protected_reason") {
		n.ProtectedReason = in.Str("protected_reason", "", 255)
	}
	if has("retired") {
		n.Retired = in.Bool("retired", false)
	}
	if has("retired_reason") {
		n.RetiredReason = in.Str("retired_reason", "", 255)
	}
	if has("properties") {
		n.Properties = in.Object("properties")
	}
	if has("extra") {
		n.Extra = in.Object("extra")
	}
	if has("instance_info") {
		n.InstanceInfo = in.Object("instance_info")
	}
	if !create {
		id := in.Str("instance_uuid", "", 36)
		if in.Err == nil && id != "" && !uuidRE.MatchString(id) {
			return wording{}.BadField("instance_uuid", id, "Expected a UUID.")
		}
		n.InstanceUUID = id
	}
	if has("chassis_uuid") {
		n.ChassisID = strings.ToLower(in.Str("chassis_uuid", "", 36))
		if in.Err == nil && n.ChassisID != "" && !uuidRE.MatchString(n.ChassisID) {
			return wording{}.BadField("chassis_uuid", n.ChassisID, "Expected a UUID.")
		}
	}
	if in.Has("conductor_group") && in.Str("conductor_group", "", 255) != "" {
		return wording{}.BadField("conductor_group", in.Obj["conductor_group"], "Conductor groups are not supported by this cloud.")
	}
	for _, k := range interfaceKinds {
		f := k + "_interface"
		if !has(f) {
			if create {
				n.Interfaces[k] = d.interfaces[k]
			}
			continue
		}
		v := in.Str(f, "", 255)
		if v == "" {
			v = d.interfaces[k]
		}
		if in.Err == nil && !slices.Contains(d.enabled(k), v) {
			return wording{}.BadField(f, v, fmt.Sprintf("Could not find the following interface in the 'ironic.hardware.interfaces.%s' entrypoint: %s. Valid interfaces for hardware type %s are ['%s'].", k, v, d.name, strings.Join(d.enabled(k), "', '")))
		}
		if n.Interfaces == nil {
			n.Interfaces = map[string]string{}
		}
		n.Interfaces[k] = v
	}
	if in.Err != nil {
		return in.Err
	}
	if n.Protected && !create && n.ProvisionState != bmstate.StateActive {
		return conflictf("Protected can only be set in state active, node %s is %s.", n.ID, n.ProvisionState)
	}
	if !n.Protected && n.ProtectedReason != "" {
		return badRequestf("Cannot set protected_reason while protected is False.")
	}
	if !n.Maintenance {
		n.MaintenanceReason, n.Fault = "", ""
	}
	if has("driver_info") {
		info := in.Object("driver_info")
		if in.Err != nil {
			return in.Err
		}
		return s.setDriverInfo(n, info)
	}
	return nil
}

// setDriverInfo stores info as n's driver_info: passwords sealed into
// Secrets (a value of "******" keeps the sealed one), the rest as text.
func (s *Service) setDriverInfo(n *bmstate.Node, info map[string]any) error {
	old := n.Secrets
	n.DriverInfo, n.Secrets = map[string]string{}, map[string]string{}
	keys := make([]string, 0, len(info))
	for k := range info {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		text, err := infoText(k, info[k])
		if err != nil {
			return err
		}
		if !bmstate.IsSecretKey(k) {
			n.DriverInfo[k] = text
			continue
		}
		if sealed, ok := old[k]; ok && text == masked {
			n.Secrets[k] = sealed
			continue
		}
		sealed, err := s.cfg.Secrets.Seal([]byte(text), bmstate.SecretAAD(n.ID))
		if errors.Is(err, secrets.ErrNoKey) {
			return &api.Error{Status: http.StatusServiceUnavailable, Msg: "This node does not hold the cluster secret key yet; retry shortly."}
		}
		if err != nil {
			return fmt.Errorf("seal %s of node %s: %w", k, n.ID, err)
		}
		n.Secrets[k] = sealed
	}
	if len(n.DriverInfo) == 0 {
		n.DriverInfo = nil
	}
	if len(n.Secrets) == 0 {
		n.Secrets = nil
	}
	return nil
}

// infoText is a driver_info value as the conductor reads it: text
// (numbers and booleans as JSON writes them). The value itself is never
// quoted back, since it may be a password.
func infoText(key string, v any) (string, error) {
	switch x := v.(type) {
	case string:
		if !utf8.ValidString(x) || strings.ContainsRune(x, 0) {
			return "", &api.Error{Status: http.StatusBadRequest, Field: "driver_info",
				Msg: "Invalid input for field/attribute driver_info: the value of " + key + " is not valid text."}
		}
		return x, nil
	case nil:
		return "", nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", badRequestf("Invalid input for field/attribute driver_info: the value of %s is not JSON.", key)
	}
	return string(b), nil
}

func (s *Service) deleteNode(w http.ResponseWriter, r *http.Request) error {
	ident := chi.URLParam(r, "node")
	return retryStale(func() error {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		n, err := lookupNode(tx, ident)
		if err != nil {
			return err
		}
		if bmstate.Working(n.ProvisionState) {
			return nodeLocked(n.ID, n.ProvisionState)
		}
		if n.InstanceUUID != "" {
			return conflictf("Node %s is associated with instance %s.", n.ID, n.InstanceUUID)
		}
		if !deletable(n) {
			return conflictf("Can not delete node %s while it is in provision state \"%s\". Valid provision states to start deletion are: enroll, manageable, available, inspect failed, clean failed, adopt failed; or set the node in maintenance first.", n.ID, n.ProvisionState)
		}
		_, err = s.cfg.Repl.Propose(r.Context(), bmstate.CmdDeleteNode, bmstate.DeleteNodeCmd{ID: n.ID, Revision: n.Revision})
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

// deletable reports whether a node may be deleted: not while it holds a
// deployed machine, unless an operator put it in maintenance.
func deletable(n *bmstate.Node) bool {
	switch n.ProvisionState {
	case bmstate.StateEnroll, bmstate.StateManageable, bmstate.StateAvailable, bmstate.StateInspectFail,
		bmstate.StateCleanFail, bmstate.StateAdoptFail:
		return true
	}
	return n.Maintenance
}
