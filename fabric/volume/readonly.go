package volume

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// The readonly flag (os-update_readonly_flag) is Cinder's readonly admin
// metadata: shown in the volume's metadata as "True" or "False" once set,
// and a volume with it set is attached read-only — the node agent opens
// it read-only in QEMU, and the attachment's mode is "ro".

// updateReadonly sets or clears the flag of an available volume, as
// Cinder allows it only then (an attached guest keeps the mode it was
// given).
func (s *Service) updateReadonly(w http.ResponseWriter, r *http.Request, arg any) error {
	in, err := actionArg(arg, "os-update_readonly_flag")
	if err != nil {
		return err
	}
	if !in.Has("readonly") {
		return cinderWording{}.Missing("readonly")
	}
	ro := in.Bool("readonly", false)
	if in.Err != nil {
		return in.Err
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if _, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		if v.Status != volstate.StatusAvailable {
			return badRequest("Invalid volume: Volume %s status must be available to update readonly flag, but current status is: %s.", v.ID, v.Status)
		}
		v.ReadOnly = &ro
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// attachMode is the mode of a new attachment of v when the caller asked
// for mode ("" for the volume's own): a read-only volume is never
// attached read-write.
func attachMode(v *volstate.Volume, mode string) (string, error) {
	switch mode {
	case "":
		if v.IsReadOnly() {
			return volstate.AttachReadOnly, nil
		}
		return "", nil
	case "rw":
		if v.IsReadOnly() {
			return "", badRequest("Invalid attaching mode 'rw' for volume %s: the volume is read-only.", v.ID)
		}
		return "", nil
	case "ro":
		return volstate.AttachReadOnly, nil
	}
	return "", cinderWording{}.BadField("mode", mode, "must be rw or ro")
}

// modeText is Cinder's attach_mode of an attachment.
func modeText(a volstate.Attachment) string {
	if a.Mode == volstate.AttachReadOnly {
		return "ro"
	}
	return "rw"
}

// pyBool is a boolean as Cinder writes it into metadata.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
