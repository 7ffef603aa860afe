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
				transferDetail(r, v, t)
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
		if !atLeast(r, 59) {
			r = withoutPaging(r)
		}
		r = sortParams(r)
		return s.transfers(r, detail, collection).List(w, r, tx)
	}
}

// withoutPaging drops the sort and paging parameters of a transfer list:
// Cinder sorts and pages transfers from 3.59 and ignores them before.
func withoutPaging(r *http.Request) *http.Request {
	q := r.URL.Query()
	for _, k := range []string{"sort", "sort_key", "sort_dir", "limit", "marker", "offset"} {
		q.Del(k)
	}
	r2 := r.Clone(r.Context())
	r2.URL.RawQuery = q.Encode()
	return r2
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

// transferDetail adds what later versions show of a transfer: 3.55
// no_snapshots, 3.57 its history (a transfer shown is not accepted yet:
// an accepted one is gone).
func transferDetail(r *http.Request, v api.View, t *volstate.Transfer) {
	if atLeast(r, 55) {
		v["no_snapshots"] = t.NoSnapshots
	}
	if atLeast(r, 57) {
		v["source_project_id"], v["destination_project_id"], v["accepted"] = t.Project, nil, false
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
		t.NoSnapshots = in.Bool("no_snapshots", false)
		if in.Err != nil {
			return in.Err
		}
		if in.Has("no_snapshots") && !atLeast(r, 55) {
			return cinderWording{}.BadField("no_snapshots", o["no_snapshots"], "Additional properties are not allowed ('no_snapshots' was unexpected): it is taken from microversion 3.55")
		}
		v, err := s.ownVolume(r, t.VolumeID)
		if err != nil {
			return err
		}
		if v.Project != proj {
			return notFound("Volume", t.VolumeID)
		}
		if v.Key != "" {
			// As Cinder: encrypted volumes are transferred from 3.70
			// (the key, sealed with the cluster's key, goes with the
			// volume), and only with their snapshots.
			switch {
			case !atLeast(r, 70):
				return badRequest("Invalid volume: transferring encrypted volume is not supported before microversion 3.70.")
			case t.NoSnapshots:
				return badRequest("Invalid volume: transferring an encrypted volume without its snapshots is not supported.")
			}
		}
		key := randomHex(8) // 16 characters, as Cinder's
		t.KeyHash = keyHash(t.Salt, key)
		if _, err := api.Propose(r.Context(), s.cfg.Repl, volstate.CmdCreateTransfer, volstate.CreateTransferCmd{Row: t, Now: t.CreatedAt}, nil); err != nil {
			return err
		}
		view := api.View{
			"id": t.ID, "name": nullable(t.Name), "volume_id": t.VolumeID, "auth_key": key, "created_at": timeText(t.CreatedAt),
			"links": s.links(r, collection, t.ID),
		}
		transferDetail(r, view, &t)
		api.JSON(w, http.StatusAccepted, map[string]any{"transfer": view})
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
