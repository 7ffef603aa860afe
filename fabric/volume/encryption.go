package volume

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Volume type encryption (/types/{id}/encryption). Volumes here are not
// encrypted: their blocks go to the block store and to the guest in the
// clear. A type is therefore never given an encryption spec — creating
// one is refused — because a security setting accepted and then ignored
// would tell its owner the data is protected when it is not. Reading a
// type's encryption answers what is true: none.

// encryptionRefused is the answer to any attempt to encrypt a type.
func encryptionRefused() error {
	return &api.Error{Status: http.StatusNotImplemented, Msg: "Volume encryption is not supported by this cloud: " +
		"volumes are stored and attached unencrypted, so a volume type cannot be given an encryption spec. " +
		"Encrypt inside the guest (for example LUKS on the attached disk) instead."}
}

// showTypeEncryption is a type's encryption spec: none, {} as Cinder
// shows a type without one.
func (s *Service) showTypeEncryption(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.findType(r, chi.URLParam(r, "id")); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{})
	return nil
}

// typeEncryptionNotFound answers a read, change or delete of one key of
// a type's encryption spec, which no type has.
func (s *Service) typeEncryptionNotFound(w http.ResponseWriter, r *http.Request) error {
	t, err := s.findType(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return store.Fault(store.KindNotFound, "itemNotFound", "Volume type encryption for type %s does not exist: volume encryption is not supported by this cloud.", t.ID)
}

func (s *Service) createTypeEncryption(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.findType(r, chi.URLParam(r, "id")); err != nil {
		return err
	}
	return encryptionRefused()
}
