package compute

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// Nova's rescue and unrescue of a virtual machine.
//
// rescue (200, with the admin password, as Nova answers it with
// enable_instance_password) checks the request against the state --
// lock, vm_state active, stopped or error with no task, a server with a
// host, not booted from a volume -- and, all fine, records the image the
// guest is to boot from (rescue_image_ref, or the server's own image),
// bumps RescueSeq and wants the guest running: task_state rescuing. Its
// node's agent powers the guest off and starts it again from a fresh
// qcow2 overlay of that image, the server's own root disk attached second
// and left as it was, its flavor and NICs the same, then reports with the
// RescueSeq done: vm_state rescued (RESCUE). unrescue (202) from rescued
// clears the rescue image and bumps RescueSeq (task_state unrescuing);
// the node powers the guest off, removes the rescue disk and boots the
// server's own disk again: ACTIVE. Nothing else changes: the flavor, the
// host's claim and the quotas stay as they are; the instance actions
// rescue and unrescue carry the node's event.
//
// Nova's stable device rescue: a rescue image with the property
// hw_rescue_bus or hw_rescue_device keeps the guest's disks where they
// are and adds the rescue disk after them, booted first (RescueStable);
// without either the rescue disk takes the first place (the legacy
// layout above). A volume-backed server is rescued from 2.87 with a
// rescue image that has both properties (every node here can: Nova's
// COMPUTE_RESCUE_BFV); otherwise it is refused (400) as Nova refuses it
// ("Cannot rescue a volume-backed instance"). The disk is a virtio disk
// whatever bus or device type the properties name.
//
// While rescued, the actions Nova's check_instance_state refuses for
// vm_state rescued (reboot, rebuild, resize, stop, pause, volume attach
// and detach, snapshot, shelve, ...) are refused (409) by their own
// state checks, which do not list it; delete works and takes the rescue
// disk with the instance directory.
//
// Each step is one command, and the node's part is keyed by RescueSeq
// in its instance record, written once the step is done: a rackd that
// restarts in the middle does the step again (power off, fresh rescue
// disk or none, start) and reports it, so a rescue always ends rescued
// (or in ERROR saying why), never half applied.

const (
	rescueRule   = "os_compute_api:os-rescue"
	unrescueRule = "os_compute_api:os-unrescue"
)

// rescueStates are the vm_states Nova rescues a server from.
var rescueStates = []string{vmActive, vmStopped, vmError}

func (s *Service) rescue(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, rescueRule)
	if err != nil {
		return err
	}
	if isBaremetal(sv) {
		return badRequest("rescue is not supported for bare-metal servers.")
	}
	m := map[string]any{}
	if arg != nil {
		var ok bool
		if m, ok = arg.(map[string]any); !ok {
			return badField("rescue", arg, "%s is not of type 'object', 'null'", api.Text(arg))
		}
	}
	if err := allowOnly(m, "adminPass", "rescue_image_ref"); err != nil {
		return err
	}
	in := newInput(m)
	pass := str(in, "adminPass", false, 0, 0)
	ref := str(in, "rescue_image_ref", false, 0, 0)
	if in.Err != nil {
		return in.Err
	}
	if _, has := m["rescue_image_ref"]; has && !uuidPattern.MatchString(ref) {
		return badField("rescue_image_ref", ref, "'%s' is not a 'uuid'", ref)
	}
	if sv.BootVolume != "" && (!atLeast(r, 87) || ref == "") {
		return notRescuable(sv.ID)
	}
	p := principal(r)
	c := serverRescueCmd{ID: sv.ID, Action: computestate.ActionRescue, Image: sv.ImageID, UserID: p.UserID, RequestID: requestID(r.Context()),
		Now: s.now(), Admin: p.IsAdmin()}
	var props map[string]string
	if ref == "" && sv.ImageID != "" && s.cfg.Images != nil {
		// The server's own image: its properties choose the layout; one
		// gone is the node's to report when it cannot fetch it.
		if img, err := s.cfg.Images.Get(r.Context(), p, sv.ImageID); err == nil {
			props = img.Properties
		}
	}
	if ref != "" {
		// Nova's UnsupportedRescueImage: an image the caller cannot see
		// or that is not active is no rescue image.
		if s.cfg.Images == nil {
			return badField("rescue_image_ref", ref, "Requested rescue image '%s' is not supported: it could not be found.", ref)
		}
		img, err := s.cfg.Images.Get(r.Context(), p, ref)
		switch {
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, api.ErrNotFound) || api.StatusOf(err) == http.StatusNotFound:
			return badField("rescue_image_ref", ref, "Requested rescue image '%s' is not supported: it could not be found.", ref)
		case err != nil:
			return err
		case !strings.EqualFold(img.Status, "active"):
			return badField("rescue_image_ref", ref, "Requested rescue image '%s' is not supported: it is %s, not active.", ref, img.Status)
		case img.Properties["block_device_mapping"] != "":
			// A volume-backed server's snapshot: its bytes are in volume
			// snapshots, which Nova does not rescue from either.
			return badField("rescue_image_ref", ref, "Requested rescue image '%s' is not supported: it is a snapshot of volumes (block_device_mapping).", ref)
		}
		c.Image = cmp.Or(img.ID, strings.ToLower(ref))
		props = img.Properties
	}
	_, bus := props["hw_rescue_bus"]
	_, device := props["hw_rescue_device"]
	c.Stable = bus || device
	if sv.BootVolume != "" && !(bus && device) {
		return notRescuable(sv.ID)
	}
	if c.Image == "" {
		return badRequest("Instance %s cannot be rescued: it has no image to boot the rescue from; give rescue_image_ref.", sv.ID)
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerRescue, c, nil); err != nil {
		return err
	}
	if pass == "" {
		pass = randomText(12)
	}
	api.JSON(w, http.StatusOK, map[string]any{"adminPass": pass})
	return nil
}

// notRescuable is Nova's refusal of a volume-backed server's rescue.
func notRescuable(id string) error {
	return badRequest("Instance %s cannot be rescued: Cannot rescue a volume-backed instance", id)
}

func (s *Service) unrescue(w http.ResponseWriter, r *http.Request, arg any) error {
	sv, err := s.readServer(r, unrescueRule)
	if err != nil {
		return err
	}
	if isBaremetal(sv) {
		return badRequest("unrescue is not supported for bare-metal servers.")
	}
	if _, err := readActionArg(computestate.ActionUnrescue, arg); err != nil {
		return err
	}
	p := principal(r)
	c := serverRescueCmd{ID: sv.ID, Action: computestate.ActionUnrescue, UserID: p.UserID, RequestID: requestID(r.Context()), Now: s.now(), Admin: p.IsAdmin()}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdServerRescue, c, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

type serverRescueCmd struct {
	ID     string `json:"id"`
	Action string `json:"action"` // rescue, unrescue
	// Image is the rescue's image (a rescue only); Stable its layout
	// (Server.RescueStable).
	Image     string    `json:"image,omitempty"`
	Stable    bool      `json:"stable,omitempty"`
	UserID    string    `json:"user_id"`
	RequestID string    `json:"request_id"`
	Admin     bool      `json:"admin,omitempty"`
	Now       time.Time `json:"now"`
}

func rescueEvents(c serverRescueCmd) eventMeta {
	return eventMeta{ids: []string{c.ID}, user: c.UserID, request: c.RequestID, action: c.Action, now: c.Now}
}

// applyServerRescue starts a rescue or an unrescue.
func applyServerRescue(tx *memdb.Txn, c serverRescueCmd) (any, error) {
	if c.Action != computestate.ActionRescue && c.Action != computestate.ActionUnrescue {
		return nil, store.Invalidf("unknown rescue action %q", c.Action)
	}
	old := store.Get[Server](tx, tServers, c.ID)
	if old == nil || old.Hidden {
		return nil, serverNotFound(c.ID)
	}
	if isBaremetal(old) {
		return nil, badRequest("%s is not supported for bare-metal servers.", c.Action)
	}
	from := rescueStates
	if c.Action == computestate.ActionUnrescue {
		from = []string{computestate.VMRescued}
	}
	if err := checkActionable(old, c.Admin, c.Action, from...); err != nil {
		return nil, err
	}
	s := *old
	s.Updated = c.Now
	s.RescueSeq++
	// Rescued or not, the guest runs after the step: Nova's rescue
	// starts a stopped instance, its unrescue leaves it active.
	s.Want = "active"
	if c.Action == computestate.ActionRescue {
		if s.BootVolume != "" && !c.Stable {
			return nil, notRescuable(s.ID)
		}
		if c.Image == "" {
			return nil, store.Invalidf("a rescue needs an image")
		}
		s.RescueImage, s.RescueStable = c.Image, c.Stable
		setState(&s, s.VMState, computestate.TaskRescuing)
	} else {
		s.RescueImage, s.RescueStable = "", false
		setState(&s, s.VMState, computestate.TaskUnrescuing)
	}
	if err := tx.Insert(tServers, &s); err != nil {
		return nil, err
	}
	act := &Action{ID: s.ID + "/" + c.RequestID, ServerID: s.ID, Project: s.Project, UserID: c.UserID,
		Action: c.Action, RequestID: c.RequestID, Start: c.Now}
	return actionResult{Server: s}, tx.Insert(tActions, act)
}

// rescueReport takes a node's report of a server being rescued or
// unrescued, or rescued, and says whether it did: applyServerReport's
// other rules then do not apply. A report from before the step (a lower
// RescueSeq) changes nothing but the power state; the step's report
// finishes it. A rescued guest's ERROR is left to the other rules.
func rescueReport(tx *memdb.Txn, s *Server, c serverReportCmd) (bool, error) {
	o := c.Observed
	if s.Want == "deleted" {
		return false, nil
	}
	if s.VMState == computestate.VMRescued && s.TaskState == "" {
		return o.Status != "ERROR", nil
	}
	unrescue := s.TaskState == computestate.TaskUnrescuing
	if s.TaskState != computestate.TaskRescuing && !unrescue {
		return false, nil
	}
	if o.RescueSeq < s.RescueSeq {
		return true, nil
	}
	ev := ActionEvent{Event: "compute_rescue_instance", Finish: c.Now, Result: "Success", Host: s.Host}
	action := computestate.ActionRescue
	if unrescue {
		ev.Event, action = "compute_unrescue_instance", computestate.ActionUnrescue
	}
	switch o.Status {
	case "ERROR":
		// Nova's failed rescue: the instance in ERROR. Its rescue image
		// goes, so that its next start boots its own disk.
		setState(s, vmError, "")
		s.RescueImage, s.RescueStable = "", false
		s.Fault = &Fault{Code: 500, Message: cmpOr(o.Fault, "the node could not restart the guest for its "+action), Created: c.Now}
		ev.Result, ev.Details = "Error", s.Fault.Message
	case "ACTIVE":
		s.Fault = nil
		if unrescue {
			setState(s, vmActive, "")
		} else {
			setState(s, computestate.VMRescued, "")
		}
	default:
		return true, nil
	}
	if a := lastAction(tx, s.ID, action); a != nil {
		na := *a
		ev.Start = a.Start
		na.Events = append(slices.Clone(a.Events), ev)
		if ev.Result == "Error" {
			na.Message = "Error"
		}
		if err := tx.Insert(tActions, &na); err != nil {
			return false, err
		}
	}
	return true, nil
}
