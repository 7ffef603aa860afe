package volume

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Volume type encryption (/types/{id}/encryption), done as Nova and
// os-brick do it with QEMU: a volume of an encrypted type gets a random
// key when it is made; the node that attaches it writes a LUKS header
// with it on the first attach and opens the volume through QEMU's luks
// driver, so the block store and its exports hold only ciphertext. The
// key is sealed with the cluster key in the replicated state, bound to
// the volume's id, and is never shown or logged; the volume shows the
// key's id as Cinder's encryption_key_id.
//
// Only what is built is accepted: provider luks (LUKS1, by any of the
// names Cinder knows it by), cipher aes-xts-plain64, keys of 256 or 512
// bits, the front end (the hypervisor) doing the work. Anything else is
// refused with a 400 naming the field rather than stored and ignored.

// Sealer encrypts secrets bound to the id of the row that holds them (the
// cluster key of fabric/secrets; rackd passes cluster.Node.Secrets()).
type Sealer interface {
	Seal(plain, aad []byte) (string, error)
	Open(value string, aad []byte) ([]byte, error)
}

// luksProviders are the names Cinder and os-brick accept for LUKS1.
var luksProviders = []string{"luks", "LuksEncryptor", "nova.volume.encryptors.luks.LuksEncryptor",
	"os_brick.encryptors.luks.LuksEncryptor"}

const (
	luksCipher  = "aes-xts-plain64"
	frontEnd    = "front-end"
	keyBytes    = 32 // the volume's passphrase: 256 random bits
	defaultBits = 256
)

// encryptionView is a type's encryption spec as Cinder shows it.
func encryptionView(typeID string, e *volstate.Encryption) map[string]any {
	return map[string]any{
		"volume_type_id": typeID, "encryption_id": e.ID, "provider": e.Provider, "cipher": e.Cipher,
		"key_size": e.KeySize, "control_location": e.ControlLocation, "created_at": timeText(e.CreatedAt),
		"updated_at": timeText(e.UpdatedAt), "deleted": false, "deleted_at": nil,
	}
}

// encryptionInput reads an encryption spec's fields over e (a create
// starts from the defaults); a field that is not built is refused.
func encryptionInput(in *api.Input, e *volstate.Encryption) {
	if in.Has("provider") {
		p := in.Str("provider", "", 255)
		if in.Err == nil && !slices.Contains(luksProviders, p) {
			in.Fail(in.Word.BadField("provider", p, "the only encryption provider is luks (LUKS1, opened by QEMU on the node); plain dm-crypt, luks2 and others are not supported"))
		}
		e.Provider = p
	}
	if in.Has("cipher") {
		c := in.Str("cipher", luksCipher, 255)
		if c == "" {
			c = luksCipher
		}
		if in.Err == nil && c != luksCipher {
			in.Fail(in.Word.BadField("cipher", c, "the only cipher is "+luksCipher))
		}
		e.Cipher = c
	}
	if in.Has("key_size") {
		if n := in.Int("key_size", 0, 4096); n != nil {
			if *n != 256 && *n != 512 {
				in.Fail(in.Word.BadField("key_size", *n, "an aes-xts key is 256 or 512 bits"))
			}
			e.KeySize = *n
		} else if in.Err == nil {
			e.KeySize = defaultBits
		}
	}
	if in.Has("control_location") {
		l := in.Str("control_location", frontEnd, 255)
		if in.Err == nil && l != frontEnd {
			in.Fail(in.Word.BadField("control_location", l, "only front-end encryption (by the hypervisor) is supported; no back end encrypts"))
		}
		e.ControlLocation = l
	}
	for k := range in.Obj {
		switch k {
		case "provider", "cipher", "key_size", "control_location":
		default:
			in.Fail(in.Word.BadField(k, in.Obj[k], "Additional properties are not allowed ('"+k+"' was unexpected)"))
		}
	}
}

// showTypeEncryption is a type's encryption spec, {} for a type without
// one (as Cinder shows it).
func (s *Service) showTypeEncryption(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if t.Encryption == nil {
		api.JSON(w, http.StatusOK, map[string]any{})
		return nil
	}
	api.JSON(w, http.StatusOK, encryptionView(t.ID, t.Encryption))
	return nil
}

// encryptionOf is type id's encryption spec, 404 when it has none.
func (s *Service) encryptionOf(r *http.Request) (*volstate.Type, error) {
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return nil, err
	}
	if t.Encryption == nil {
		return nil, store.Fault(store.KindNotFound, "itemNotFound", "Volume type encryption for type %s does not exist.", t.ID)
	}
	return t, nil
}

// showEncryptionSpec is one field of a type's encryption spec.
func (s *Service) showEncryptionSpec(w http.ResponseWriter, r *http.Request) error {
	t, err := s.encryptionOf(r)
	if err != nil {
		return err
	}
	key := chi.URLParam(r, "spec")
	v, ok := encryptionView(t.ID, t.Encryption)[key]
	if !ok {
		return store.Fault(store.KindNotFound, "itemNotFound", "Volume type encryption for type %s has no %s.", t.ID, key)
	}
	api.JSON(w, http.StatusOK, map[string]any{key: v})
	return nil
}

func (s *Service) createTypeEncryption(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if s.cfg.Secrets == nil {
		return &api.Error{Status: http.StatusNotImplemented, Msg: "volume encryption is not configured on this cloud: it has no cluster key to keep volume keys with"}
	}
	o, err := body(r, "encryption")
	if err != nil {
		return err
	}
	in := newInput(o)
	now := s.now()
	e := volstate.Encryption{ID: api.NewUUID(), Cipher: luksCipher, KeySize: defaultBits, ControlLocation: frontEnd, CreatedAt: now, UpdatedAt: now}
	if !in.Has("provider") || in.IsNull("provider") {
		return cinderWording{}.Missing("provider")
	}
	encryptionInput(in, &e)
	if in.Err != nil {
		return in.Err
	}
	row, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
		if t.Encryption != nil {
			return badRequest("Volume type encryption for type %s already exists.", t.ID)
		}
		t.Encryption = &e
		return nil
	})
	if err != nil {
		return err
	}
	// Cinder answers a create with the spec's fields only, no times.
	view := encryptionView(row.ID, row.Encryption)
	for _, k := range []string{"created_at", "updated_at", "deleted", "deleted_at"} {
		delete(view, k)
	}
	api.JSON(w, http.StatusOK, map[string]any{"encryption": view})
	return nil
}

func (s *Service) updateTypeEncryption(w http.ResponseWriter, r *http.Request) error {
	t, err := s.encryptionOf(r)
	if err != nil {
		return err
	}
	o, err := body(r, "encryption")
	if err != nil {
		return err
	}
	in := newInput(o)
	e := *t.Encryption
	encryptionInput(in, &e)
	if in.Err != nil {
		return in.Err
	}
	e.UpdatedAt = s.now()
	if _, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
		if t.Encryption == nil {
			return store.Fault(store.KindNotFound, "itemNotFound", "Volume type encryption for type %s does not exist.", t.ID)
		}
		t.Encryption = &e
		return nil
	}); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"encryption": map[string]any(o)})
	return nil
}

func (s *Service) deleteTypeEncryption(w http.ResponseWriter, r *http.Request) error {
	t, err := s.encryptionOf(r)
	if err != nil {
		return err
	}
	if _, err := s.changeType(r.Context(), t.ID, func(t *volstate.Type) error {
		t.Encryption = nil
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// newVolumeKey makes an encryption key for volume id: a random
// passphrase, sealed bound to id, and the id the volume shows for it.
func (s *Service) newVolumeKey(id string) (sealed, keyID string, err error) {
	raw := make([]byte, keyBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("make volume key: %w", err)
	}
	// As os-brick hands Barbican's key to cryptsetup and QEMU: as hex.
	pass := []byte(hex.EncodeToString(raw))
	sealed, err = s.sealKey(pass, id)
	return sealed, api.NewUUID(), err
}

// sealKey seals a volume key bound to the row id that holds it.
func (s *Service) sealKey(pass []byte, id string) (string, error) {
	if s.cfg.Secrets == nil {
		return "", &api.Error{Status: http.StatusNotImplemented, Msg: "volume encryption is not configured on this cloud"}
	}
	sealed, err := s.cfg.Secrets.Seal(pass, []byte(id))
	if err != nil {
		return "", fmt.Errorf("seal volume key: %w", err)
	}
	return sealed, nil
}

// copyKey re-seals the key sealed for row from to row to (a snapshot, a
// clone, a backup or a restore of an encrypted volume keeps its key, as
// Cinder keeps it: the data is the same ciphertext). keyID is a new id.
func (s *Service) copyKey(sealed, from, to string) (string, string, error) {
	if s.cfg.Secrets == nil {
		return "", "", &api.Error{Status: http.StatusNotImplemented, Msg: "volume encryption is not configured on this cloud"}
	}
	pass, err := s.cfg.Secrets.Open(sealed, []byte(from))
	if err != nil {
		return "", "", fmt.Errorf("open volume key: %w", err)
	}
	out, err := s.sealKey(pass, to)
	clear(pass)
	return out, api.NewUUID(), err
}
