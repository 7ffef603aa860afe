package volume

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Retype (os-retype) moves a volume to another type. Where both types
// store volumes alike (the same storage policy) only the type changes,
// at once, whatever migration_policy says: no data moves. Between types
// of different policies the volume's extents would have to be coded
// again, which this cloud does not do: that is refused, naming both
// policies, rather than accepted and left undone.
func (s *Service) retype(w http.ResponseWriter, r *http.Request, arg any) error {
	in, err := actionArg(arg, "os-retype")
	if err != nil {
		return err
	}
	ref := in.Required("new_type", 255)
	migration := in.Str("migration_policy", "never", 255)
	if in.Err != nil {
		return in.Err
	}
	if migration != "never" && migration != "on-demand" {
		return cinderWording{}.BadField("migration_policy", migration, "must be never or on-demand")
	}
	v, err := s.ownVolume(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	to, err := s.findType(r, ref)
	if err != nil {
		return err
	}
	if err := checkTypeFits(to, ""); err != nil {
		return err
	}
	toPolicy, err := policyOf(to)
	if err != nil {
		return err
	}
	if _, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
		if v.Status != volstate.StatusAvailable && v.Status != volstate.StatusInUse {
			return badRequest("Invalid volume: Volume %s status must be available or in-use to retype, but current status is: %s.", v.ID, v.Status)
		}
		if v.TypeID == to.ID {
			return badRequest("Invalid input received: Retype needs a different volume type: volume %s is already of type %s.", v.ID, to.Name)
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		from, err := volstate.LoadType(tx, v.TypeID)
		if err != nil {
			return err
		}
		fromPolicy, err := policyOf(from)
		if err != nil {
			return err
		}
		if fromPolicy != toPolicy {
			return badRequest("Invalid volume: retyping volume %s from %s (%s) to %s (%s) would re-code its data, which is not supported: only types of the same storage policy can be swapped.",
				v.ID, from.Name, policyText(from), to.Name, policyText(to))
		}
		if !volstate.SameEncryption(from.Encryption, to.Encryption) {
			// Encrypting or decrypting means rewriting every block, and
			// another cipher another LUKS header: neither is done.
			return badRequest("Invalid volume: retyping volume %s from %s (%s) to %s (%s) would change its encryption, which is not supported: only types that encrypt alike can be swapped.",
				v.ID, from.Name, encryptionText(from), to.Name, encryptionText(to))
		}
		v.TypeID = to.ID
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func encryptionText(t *volstate.Type) string {
	if e := t.Encryption; e != nil {
		return fmt.Sprintf("encrypted, %s %d-bit", e.Cipher, e.KeySize)
	}
	return "not encrypted"
}

func policyText(t *volstate.Type) string {
	if spec, ok := t.ExtraSpecs[volstate.PolicySpec]; ok {
		return spec
	}
	return "the default policy"
}
