package volume

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Volume transfers: the owner offers an available volume and gets an id
// and an auth key, shown once; another project that presents both takes
// the volume. Served at os-volume-transfer and (Cinder 3.55's name)
// volume-transfers.

func (s *Service) transfers(r *http.Request, detail bool, collection string) api.Collection[volstate.Transfer] {
	visible := visibleTo(allTenants(r))
	return api.Collection[volstate.Transfer]{
		Table: volstate.TransferTable, One: "transfer",
		Visible: func(p *api.Principal, t *volstate.Transfer) bool { return visible(p, t.Project) },
		View: func(_ *memdb.Txn, _ *api.Principal, t *volstate.Transfer) api.View {
			v := api.View{"id": t.ID, "name": nullable(t.Name), "volume_id": t.VolumeID, "links": s.links(r, collection, t.ID)}
			if detail {
				v["created_at"] = timeText(t.CreatedAt)
			}
			return v
		},
		NotFound: func(id string) error { return notFound("Transfer", id) },
		Listing:  s.cinderListing("transfers", nil, nil),
	}
}

func (s *Service) listTransfers(detail bool, collection string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := project(r); err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		return s.transfers(sortParams(r), detail, collection).List(w, r, tx)
	}
}

func (s *Service) showTransfer(collection string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := project(r); err != nil {
			return err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		return s.transfers(r, true, collection).Show(w, r, tx, chi.URLParam(r, "id"))
	}
}

// keyHash is how a transfer's key is kept: salted, hashed.
func keyHash(salt, key string) string {
	sum := sha256.Sum256([]byte(salt + key))
	return hex.EncodeToString(sum[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("read random bytes: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

func (s *Service) createTransfer(collection string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		proj, err := project(r)
		if err != nil {
			return err
		}
		o, err := body(r, "transfer")
		if err != nil {
			return err
		}
		in := newInput(o)
		t := volstate.Transfer{ID: api.NewUUID(), Project: proj, CreatedAt: s.now(), Salt: randomHex(8)}
		t.VolumeID = in.Required("volume_id", 36)
		t.Name = in.Str("name", "", 255)
		in.Bool("no_snapshots", false)
		if in.Err != nil {
			return in.Err
		}
		v, err := s.ownVolume(r, t.VolumeID)
		if err != nil {
			return err
		}
		if v.Project != proj {
			return notFound("Volume", t.VolumeID)
		}
		key := randomHex(8) // 16 characters, as Cinder's
		t.KeyHash = keyHash(t.Salt, key)
		if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateTransfer, volstate.CreateTransferCmd{Row: t, Now: t.CreatedAt}, nil); err != nil {
			return err
		}
		api.JSON(w, http.StatusAccepted, map[string]any{"transfer": map[string]any{
			"id": t.ID, "name": nullable(t.Name), "volume_id": t.VolumeID, "auth_key": key, "created_at": timeText(t.CreatedAt),
			"links": s.links(r, collection, t.ID),
		}})
		return nil
	}
}

func (s *Service) deleteTransfer(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	p := principal(r)
	t, err := s.transfers(r, true, "").Get(tx, p, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	if !p.CanWrite(t.Project) {
		return policyDenied("volume:delete_transfer")
	}
	if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdDeleteTransfer, volstate.DeleteTransferCmd{ID: t.ID, Now: s.now()}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// acceptTransfer takes a transfer's volume into the caller's project. The
// transfer is found by id whoever's it is: the key is the permission.
func (s *Service) acceptTransfer(collection string) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		proj, err := project(r)
		if err != nil {
			return err
		}
		o, err := body(r, "accept")
		if err != nil {
			return err
		}
		in := newInput(o)
		key := in.Required("auth_key", 255)
		if in.Err != nil {
			return in.Err
		}
		tx, err := s.cfg.Repl.Read(r.Context())
		if err != nil {
			return err
		}
		id := chi.URLParam(r, "id")
		t := store.Get[volstate.Transfer](tx, volstate.TransferTable, id)
		if t == nil {
			return notFound("Transfer", id)
		}
		if !principal(r).CanWrite(proj) {
			return policyDenied("volume:accept_transfer")
		}
		var done volstate.Transfer
		if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdAcceptTransfer,
			volstate.AcceptTransferCmd{ID: id, Project: proj, User: principal(r).UserID, KeyHash: keyHash(t.Salt, key), Now: s.now()}, &done); err != nil {
			return err
		}
		api.JSON(w, http.StatusAccepted, map[string]any{"transfer": map[string]any{
			"id": done.ID, "name": nullable(done.Name), "volume_id": done.VolumeID, "links": s.links(r, collection, done.ID),
		}})
		return nil
	}
}
