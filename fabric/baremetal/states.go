package baremetal

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Requests that the conductor carries out are recorded on the node and
// answered 202 (provision and power states) or waited for (the boot
// device, which Ironic sets synchronously). Each is an event of the
// node's history, naming the user of the token.

func (s *Service) event(r *http.Request, n *bmstate.Node, typ, severity, format string, args ...any) {
	n.Record(bmstate.HistoryEvent{
		ID: api.NewUUID(), CreatedAt: s.now(), Severity: severity, EventType: typ,
		Event: fmt.Sprintf(format, args...), Conductor: n.Conductor, User: principalUser(r.Context()),
	})
}

func (s *Service) statesLocation(w http.ResponseWriter, r *http.Request, n *bmstate.Node) {
	w.Header().Set("Location", s.baseURL(r)+"/v1/nodes/"+n.ID+"/states")
}

// readBody reads an optional JSON object body: an empty body is {}.
func readBody(r *http.Request) (api.Object, error) {
	if r.ContentLength == 0 && r.Header.Get("Transfer-Encoding") == "" {
		return api.Object{}, nil
	}
	return api.ReadObject(r)
}

func (s *Service) setMaintenance(on bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		body, err := readBody(r)
		if err != nil {
			return err
		}
		in := api.NewInput(body, wording{})
		reason := in.Str("reason", "", 255)
		if in.Err != nil {
			return in.Err
		}
		_, err = s.mutateNode(r.Context(), chi.URLParam(r, "node"), func(_ *memdb.Txn, n *bmstate.Node) error {
			n.Maintenance = on
			n.MaintenanceReason = ""
			if on {
				n.MaintenanceReason = reason
				s.event(r, n, "maintenance", "INFO", "Maintenance set: %s", reason)
			} else {
				n.Fault = ""
				s.event(r, n, "maintenance", "INFO", "Maintenance cleared")
			}
			return nil
		})
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
}

func (s *Service) showStates(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	v := map[string]any{
		"console_enabled": n.ConsoleEnabled, "last_error": nullStr(n.LastError),
		"power_state": nullStr(n.PowerState), "target_power_state": nullStr(n.TargetPowerState),
		"provision_state": provisionStateText(r, n.ProvisionState), "target_provision_state": nullStr(n.TargetProvisionState),
		"provision_updated_at": timeText(n.ProvisionUpdatedAt),
		"raid_config":          map[string]any{}, "target_raid_config": jsonMap(n.TargetRAIDConfig),
		"boot_mode": nil, "secure_boot": nil,
	}
	// The states are a part of the node's view: a field the node does
	// not show at this microversion is not here either, as in Ironic.
	minor := versionOf(r.Context())
	for f, since := range statesSince {
		if minor < since {
			delete(v, f)
		}
	}
	api.JSON(w, http.StatusOK, v)
	return nil
}

// statesSince is the microversion each states field appeared in.
var statesSince = map[string]int{"raid_config": 12, "target_raid_config": 12, "boot_mode": 75, "secure_boot": 75}

// provisionStateText is provision_state as a client of the request's
// microversion knows it: before 1.2, available was "no state" (null).
func provisionStateText(r *http.Request, state string) any {
	if state == bmstate.StateAvailable && versionOf(r.Context()) < 2 {
		return nil
	}
	return state
}

// validation is what validate says of each interface.
func validation(tx *memdb.Txn, n *bmstate.Node, d *driver, ports []*bmstate.Port) map[string]any {
	ok := map[string]any{"result": true}
	fail := func(reason string) map[string]any { return map[string]any{"result": false, "reason": reason} }
	unsupported := func(what string) map[string]any {
		return map[string]any{"result": nil, "reason": what + " is not supported by this cloud"}
	}
	power := ok
	var missing []string
	for _, k := range d.required {
		if n.DriverInfo[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		power = fail(fmt.Sprintf("Some parameters were missing in node's driver_info. Missing are: %v", missing))
	}
	// Ironic's fake boot and deploy interfaces check nothing.
	deploy := ok
	if src, _ := n.InstanceInfo["image_source"].(string); src == "" && n.Interfaces["deploy"] != "fake" {
		deploy = fail("Cannot validate image information for node " + n.ID + " because one or more parameters are missing from its instance_info. Missing are: ['image_source']")
	}
	boot := ok
	pxe := slices.ContainsFunc(ports, func(p *bmstate.Port) bool { return p.PXEEnabled })
	if !pxe && n.Interfaces["boot"] != "fake" {
		boot = fail("Node " + n.ID + " has no port with PXE enabled: the conductor boots nodes over the network by their PXE port's MAC.")
	}
	storage := ok
	if err := noBootVolume(tx, n); err != nil {
		storage = fail(err.Error())
	}
	return map[string]any{
		"power": power, "management": power, "deploy": deploy, "boot": boot,
		"inspect": ok, "network": ok, "storage": storage,
		"console": unsupported("Console"), "rescue": unsupported("Rescue"), "raid": unsupported("RAID"),
		"bios": unsupported("BIOS settings"), "firmware": unsupported("Firmware updates"),
	}
}

func (s *Service) validateNode(w http.ResponseWriter, r *http.Request) error {
	tx, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	d := findDriver(n.Driver)
	if d == nil {
		return badRequestf("Node %s has the unknown driver %s.", n.ID, n.Driver)
	}
	api.JSON(w, http.StatusOK, validation(tx, n, d, bmstate.Ports(tx, n.ID)))
	return nil
}

// unsupportedVerbs are Ironic's provision verbs this cloud does not
// carry out.
var unsupportedVerbs = []string{"rescue", "unrescue", "service", "unhold", "inspect_abort"}

// needHardware are the verbs that act on the machine, refused while an
// operator holds it in maintenance.
var needHardware = []string{bmstate.VerbInspect, bmstate.VerbClean, bmstate.VerbProvide, bmstate.VerbDeploy,
	bmstate.VerbActive, bmstate.VerbRebuild, bmstate.VerbAdopt}

func (s *Service) setProvisionState(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := api.NewInput(body, wording{})
	verb := in.Required("target", 64)
	configdrive := in.Obj["configdrive"]
	cleanSteps := in.List("clean_steps")
	if in.Err != nil {
		return in.Err
	}
	if slices.Contains(unsupportedVerbs, verb) {
		return badRequestf("The provision state target %q is not supported by this cloud.", verb)
	}
	if verb == bmstate.VerbClean && len(cleanSteps) == 0 {
		return badRequestf("\"clean_steps\" is required when setting target provision state to %s", verb)
	}
	if configdrive != nil && verb != bmstate.VerbActive && verb != bmstate.VerbDeploy && verb != bmstate.VerbRebuild {
		return badRequestf("Adding a config drive is only supported when setting provision state to %s or %s", bmstate.VerbActive, bmstate.VerbRebuild)
	}
	if err := checkConfigDrive(configdrive); err != nil {
		return err
	}
	n, err := s.mutateNode(r.Context(), chi.URLParam(r, "node"), func(tx *memdb.Txn, n *bmstate.Node) error {
		to, target, err := bmstate.Next(n.ProvisionState, verb)
		if errors.Is(err, bmstate.ErrBadTransition) {
			if bmstate.Working(n.ProvisionState) {
				return nodeLocked(n.ID, n.ProvisionState)
			}
			return badRequestf("The requested action \"%s\" can not be performed on node \"%s\" while it is in state \"%s\".", verb, n.ID, n.ProvisionState)
		}
		if n.Retired && verb == bmstate.VerbProvide {
			return badRequestf("The %s operation can't be performed on node %s because it is retired.", verb, n.ID)
		}
		if n.Maintenance && slices.Contains(needHardware, verb) {
			return badRequestf("The requested action \"%s\" can not be performed on node \"%s\" while it is in maintenance mode.", verb, n.ID)
		}
		if n.Protected && (verb == bmstate.VerbDeleted || verb == bmstate.VerbUndeploy || verb == bmstate.VerbRebuild) {
			return store.Forbiddenf("Node %s is protected and cannot be undeployed, rebuilt or deleted.", n.ID)
		}
		switch verb {
		case bmstate.VerbDeploy, bmstate.VerbActive, bmstate.VerbRebuild:
			// Ironic's fake deploy interface writes nothing and asks for
			// no image.
			if src, _ := n.InstanceInfo["image_source"].(string); src == "" && n.Interfaces["deploy"] != "fake" {
				return badRequestf("Cannot validate image information for node %s because one or more parameters are missing from its instance_info. Missing are: ['image_source']", n.ID)
			}
			if n.Interfaces["deploy"] != "fake" {
				if err := noBootVolume(tx, n); err != nil {
					return err
				}
				// The deploy templates its instance traits select must
				// be ones the deploy can run: refused now, not failed
				// on the machine later.
				if _, err := bmstate.DeploySteps(tx, n); err != nil {
					return badRequestf("Cannot deploy node %s: %v", n.ID, err)
				}
			}
			if configdrive != nil {
				if n.InstanceInfo == nil {
					n.InstanceInfo = map[string]any{}
				}
				n.InstanceInfo["configdrive"] = configdrive
			}
		case bmstate.VerbClean:
			if n.DriverInternalInfo == nil {
				n.DriverInternalInfo = map[string]any{}
			}
			n.DriverInternalInfo["clean_steps"] = cleanSteps
		}
		now := s.now()
		from := n.ProvisionState
		n.ProvisionState, n.TargetProvisionState, n.ProvisionUpdatedAt = to, target, now
		n.LastError = ""
		if to == bmstate.StateInspecting {
			n.InspectionStartedAt = now
		}
		s.event(r, n, "provisioning", "INFO", "%s requested: %s -> %s", verb, from, to)
		return nil
	})
	if err != nil {
		return err
	}
	s.statesLocation(w, r, n)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// checkConfigDrive takes what Ironic's schema takes: a string (a
// gzipped, base64-encoded ISO, or its URL) or an object of meta_data,
// network_data, vendor_data (objects) and user_data (object, list or
// string), which the conductor builds into a config-2 drive.
func checkConfigDrive(v any) error {
	bad := func(why string) error {
		return &api.Error{Status: http.StatusBadRequest, Field: "configdrive",
			Msg: "Invalid configdrive format: " + why}
	}
	switch v := v.(type) {
	case nil, string:
		return nil
	case map[string]any:
		for k, val := range v {
			switch k {
			case "meta_data", "network_data", "vendor_data":
				if _, ok := val.(map[string]any); !ok && val != nil {
					return bad(k + " must be an object")
				}
			case "user_data":
				switch val.(type) {
				case nil, string, map[string]any, []any:
				default:
					return bad("user_data must be a string, an object or a list")
				}
			default:
				return bad("unexpected key " + k + " (want meta_data, network_data, user_data, vendor_data)")
			}
		}
		return nil
	}
	return bad("want a string or an object")
}

var powerTargets = []string{bmstate.PowerOn, bmstate.PowerOff, bmstate.Rebooting, bmstate.SoftOff, bmstate.SoftBoot}

func (s *Service) setPowerState(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := api.NewInput(body, wording{})
	target := in.Required("target", 64)
	timeout := in.Int("timeout", 1, 86400)
	if in.Err != nil {
		return in.Err
	}
	if !slices.Contains(powerTargets, target) {
		return wording{}.BadField("target", target, fmt.Sprintf("The target power state must be one of %q.", powerTargets))
	}
	if timeout != nil && target != bmstate.SoftOff && target != bmstate.SoftBoot {
		return badRequestf("\"timeout\" can only be used with a soft power state: \"%s\" or \"%s\".", bmstate.SoftOff, bmstate.SoftBoot)
	}
	n, err := s.mutateNode(r.Context(), chi.URLParam(r, "node"), func(_ *memdb.Txn, n *bmstate.Node) error {
		if bmstate.Working(n.ProvisionState) {
			return nodeLocked(n.ID, n.ProvisionState)
		}
		n.TargetPowerState = target
		n.PowerSeq++
		n.LastError = ""
		s.event(r, n, "power", "INFO", "%s requested (power request %d)", target, n.PowerSeq)
		return nil
	})
	if err != nil {
		return err
	}
	s.statesLocation(w, r, n)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) showBootDevice(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	var dev, persistent any
	switch {
	case n.BootDevice != "":
		dev, persistent = n.BootDevice, n.BootDevicePersistent
	case n.Interfaces["management"] == "fake":
		// Ironic's fake management reports a one-time PXE boot.
		dev, persistent = "pxe", false
	}
	api.JSON(w, http.StatusOK, map[string]any{"boot_device": dev, "persistent": persistent})
	return nil
}

func (s *Service) supportedBootDevices(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	devs := []string{}
	if d := findDriver(n.Driver); d != nil {
		devs = d.bootDevices
	}
	api.JSON(w, http.StatusOK, map[string]any{"supported_boot_devices": devs})
	return nil
}

// setBootDevice records the device and waits for the node's conductor to
// set it (BootDeviceDone reaching the request's sequence number), as
// Ironic's synchronous call does; the conductor's LastError is the
// answer when it failed.
func (s *Service) setBootDevice(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := api.NewInput(body, wording{})
	dev := in.Required("boot_device", 64)
	persistent := in.Bool("persistent", false)
	if in.Err != nil {
		return in.Err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	if len(store.All[bmstate.Conductor](tx, bmstate.ConductorTable, "id")) == 0 {
		return badRequestf("No conductor is registered to set the boot device: bare-metal nodes are driven by a rackd started with --provision-interface.")
	}
	var seq int
	var lastError string
	n, err := s.mutateNode(r.Context(), chi.URLParam(r, "node"), func(_ *memdb.Txn, n *bmstate.Node) error {
		d := findDriver(n.Driver)
		if d == nil {
			return badRequestf("Node %s has the unknown driver %s.", n.ID, n.Driver)
		}
		if !slices.Contains(d.bootDevices, dev) {
			return wording{}.BadField("boot_device", dev, fmt.Sprintf("Invalid boot device %s specified for node %s, valid devices are %q.", dev, n.ID, d.bootDevices))
		}
		if bmstate.Working(n.ProvisionState) {
			return nodeLocked(n.ID, n.ProvisionState)
		}
		n.BootDevice, n.BootDevicePersistent = dev, persistent
		n.BootDeviceSeq = max(n.BootDeviceSeq, n.BootDeviceDone) + 1
		seq, lastError = n.BootDeviceSeq, n.LastError
		s.event(r, n, "management", "INFO", "Boot device %s (persistent: %t) requested", dev, persistent)
		return nil
	})
	if err != nil {
		return err
	}
	done, err := s.awaitBootDevice(r, n.ID, seq)
	if err != nil {
		return err
	}
	if done == nil {
		return api.Errorf(http.StatusGatewayTimeout, "The boot device %s of node %s is recorded, but its conductor %q did not set it within %s; it sets it when it can.",
			dev, n.ID, n.Conductor, s.cfg.BootDeviceWait)
	}
	if done.LastError != "" && done.LastError != lastError {
		return api.Errorf(http.StatusInternalServerError, "Failed to set the boot device of node %s: %s", n.ID, done.LastError)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// awaitBootDevice polls until node id's BootDeviceDone reaches seq and
// returns the node then; nil when the wait ran out.
func (s *Service) awaitBootDevice(r *http.Request, id string, seq int) (*bmstate.Node, error) {
	deadline := time.NewTimer(s.cfg.BootDeviceWait)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return nil, err
		}
		n := store.Get[bmstate.Node](tx, bmstate.NodeTable, id)
		if n == nil {
			return nil, nodeNotFound(id)
		}
		if n.BootDeviceDone >= seq {
			return n, nil
		}
		select {
		case <-r.Context().Done():
			return nil, r.Context().Err()
		case <-deadline.C:
			return nil, nil
		case <-tick.C:
		}
	}
}

func (s *Service) showInventory(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	if n.Inventory == nil {
		return notFoundf("Inventory for node %s could not be found.", n.ID)
	}
	api.JSON(w, http.StatusOK, map[string]any{"inventory": n.Inventory, "plugin_data": map[string]any{}})
	return nil
}

func (s *Service) historyView(r *http.Request, n *bmstate.Node, ev bmstate.HistoryEvent, detail bool) api.View {
	v := api.View{
		"uuid": ev.ID, "created_at": timeText(ev.CreatedAt), "severity": ev.Severity, "event": ev.Event,
		"links": links(s.baseURL(r), "nodes", n.ID+"/history/"+ev.ID),
	}
	if detail {
		v["event_type"] = ev.EventType
		v["conductor"] = nullStr(ev.Conductor)
		v["user"] = nullStr(ev.User)
	}
	return v
}

func (s *Service) listHistory(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	detail, _ := api.ToBool(r.URL.Query().Get("detail"))
	out := []any{}
	for _, ev := range n.History {
		out = append(out, s.historyView(r, n, ev, detail))
	}
	api.JSON(w, http.StatusOK, map[string]any{"history": out})
	return nil
}

func (s *Service) showHistory(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "event")
	for _, ev := range n.History {
		if ev.ID == id {
			api.JSON(w, http.StatusOK, s.historyView(r, n, ev, true))
			return nil
		}
	}
	return notFoundf("Node history record %s could not be found.", id)
}

// Serial consoles of bare-metal nodes are not served (the no-console
// interface): the state says so, and enabling one is refused.

func (s *Service) showConsole(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	var info any
	if n.ConsoleEnabled {
		// Ironic's fake console answers with a fake connection.
		info = map[string]any{"type": "fake", "url": "fake-url"}
	}
	api.JSON(w, http.StatusOK, map[string]any{"console_enabled": n.ConsoleEnabled, "console_info": info})
	return nil
}

// setConsole enables or disables the console of a node whose console
// interface is Ironic's fake one; no other console exists here.
func (s *Service) setConsole(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := api.NewInput(body, wording{})
	if !in.Has("enabled") {
		return wording{}.Missing("enabled")
	}
	enabled := in.Bool("enabled", false)
	if in.Err != nil {
		return in.Err
	}
	_, err = s.mutateNode(r.Context(), chi.URLParam(r, "node"), func(_ *memdb.Txn, n *bmstate.Node) error {
		if n.Interfaces["console"] != "fake" {
			return badRequestf("Node %s does not support a console: its console interface is %s.", n.ID, n.Interfaces["console"])
		}
		n.ConsoleEnabled = enabled
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Service) listVIFs(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := s.readNode(r); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"vifs": []any{}})
	return nil
}

// detachVIF is DELETE /v1/nodes/{node}/vifs/{vif}: no VIF is ever
// attached here (attachVIF refuses), so every one is not attached, as
// Ironic words it.
func (s *Service) detachVIF(w http.ResponseWriter, r *http.Request) error {
	_, n, err := s.readNode(r)
	if err != nil {
		return err
	}
	return badRequestf("Unable to detach VIF %s from node %s because it is not attached to it.", chi.URLParam(r, "vif"), n.ID)
}

func (s *Service) attachVIF(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := s.readNode(r); err != nil {
		return err
	}
	return badRequestf("Attaching a VIF is not supported: tenant networks on bare metal need switch configuration, which this cloud does not do; bare-metal servers use the provisioning network.")
}

// raidLevels are the RAID levels Ironic's RAID schema allows.
var raidLevels = []string{"0", "1", "2", "5", "6", "1+0", "5+0", "6+0", "JBOD"}

// setRAIDConfig records a node's target RAID configuration (1.12),
// checked against Ironic's schema; only a node whose RAID interface can
// take one (Ironic's fake) does.
func (s *Service) setRAIDConfig(w http.ResponseWriter, r *http.Request) error {
	body, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	disks, ok := body["logical_disks"].([]any)
	if !ok || len(disks) == 0 {
		return wording{}.BadField("logical_disks", body["logical_disks"], "RAID config validation error: 'logical_disks' is a required list of at least one logical disk.")
	}
	for i, raw := range disks {
		d, ok := raw.(map[string]any)
		if !ok {
			return wording{}.BadField("logical_disks", raw, fmt.Sprintf("RAID config validation error: logical disk %d is not an object.", i))
		}
		level, _ := d["raid_level"].(string)
		if !slices.Contains(raidLevels, level) {
			return wording{}.BadField("raid_level", d["raid_level"], "RAID config validation error: raid_level must be one of "+strings.Join(raidLevels, ", ")+".")
		}
		switch size := d["size_gb"].(type) {
		case float64:
			if size < 0 || size != float64(int64(size)) {
				return wording{}.BadField("size_gb", size, "RAID config validation error: size_gb must be a whole number of GiB or MAX.")
			}
		case string:
			if size != "MAX" {
				return wording{}.BadField("size_gb", size, "RAID config validation error: size_gb must be a whole number of GiB or MAX.")
			}
		default:
			return wording{}.BadField("size_gb", d["size_gb"], "RAID config validation error: size_gb is required.")
		}
	}
	_, err = s.mutateNode(r.Context(), chi.URLParam(r, "node"), func(_ *memdb.Txn, n *bmstate.Node) error {
		if iface := n.Interfaces["raid"]; iface != "fake" {
			return badRequestf("Node %s cannot be configured for RAID: its raid interface is %s.", n.ID, iface)
		}
		n.TargetRAIDConfig = body
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
