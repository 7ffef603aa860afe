package volume

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// Snapshot metadata, as volume metadata: the whole set (GET, POST merges,
// PUT replaces) and one key (GET, PUT, DELETE).

func (s *Service) readableSnapshot(r *http.Request) (*volstate.Snapshot, error) {
	if _, err := project(r); err != nil {
		return nil, err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return nil, err
	}
	return s.snapshots(r, true).Get(tx, principal(r), chi.URLParam(r, "id"))
}

func metadataOrEmpty(md map[string]string) map[string]string {
	if md == nil {
		return map[string]string{}
	}
	return md
}

func (s *Service) showSnapshotMetadata(w http.ResponseWriter, r *http.Request) error {
	sn, err := s.readableSnapshot(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": metadataOrEmpty(sn.Metadata)})
	return nil
}

// setSnapshotMetadata merges (POST) or replaces (PUT) a snapshot's
// metadata.
func (s *Service) setSnapshotMetadata(replace bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		top, err := api.ReadObject(r)
		if err != nil {
			return err
		}
		in := newInput(top)
		if !in.Has("metadata") {
			return cinderWording{}.Missing("metadata")
		}
		md := metadata(in, "metadata")
		if in.Err != nil {
			return in.Err
		}
		sn, err := s.ownSnapshot(r)
		if err != nil {
			return err
		}
		row, err := s.changeSnapshot(r.Context(), sn.ID, func(sn *volstate.Snapshot) error {
			if replace || sn.Metadata == nil {
				sn.Metadata = map[string]string{}
			}
			for k, v := range md {
				sn.Metadata[k] = v
			}
			return nil
		})
		if err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"metadata": metadataOrEmpty(row.Metadata)})
		return nil
	}
}

func (s *Service) showSnapshotMetadataKey(w http.ResponseWriter, r *http.Request) error {
	sn, err := s.readableSnapshot(r)
	if err != nil {
		return err
	}
	key, _ := url.PathUnescape(chi.URLParam(r, "key"))
	v, ok := sn.Metadata[key]
	if !ok {
		return store.Fault(store.KindNotFound, "itemNotFound", "Snapshot %s has no metadata with key %s.", sn.ID, key)
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
	return nil
}

func (s *Service) putSnapshotMetadataKey(w http.ResponseWriter, r *http.Request) error {
	key, _ := url.PathUnescape(chi.URLParam(r, "key"))
	top, err := api.ReadObject(r)
	if err != nil {
		return err
	}
	in := newInput(top)
	meta := metadata(in, "meta")
	if in.Err != nil {
		return in.Err
	}
	if len(meta) != 1 {
		return badRequest("Request body contains too many items: meta must hold exactly one key.")
	}
	if _, ok := meta[key]; !ok {
		return badRequest("Request body and URI mismatch")
	}
	sn, err := s.ownSnapshot(r)
	if err != nil {
		return err
	}
	if _, err := s.changeSnapshot(r.Context(), sn.ID, func(sn *volstate.Snapshot) error {
		if sn.Metadata == nil {
			sn.Metadata = map[string]string{}
		}
		sn.Metadata[key] = meta[key]
		return nil
	}); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": meta})
	return nil
}

func (s *Service) deleteSnapshotMetadataKey(w http.ResponseWriter, r *http.Request) error {
	key, _ := url.PathUnescape(chi.URLParam(r, "key"))
	sn, err := s.ownSnapshot(r)
	if err != nil {
		return err
	}
	if _, err := s.changeSnapshot(r.Context(), sn.ID, func(sn *volstate.Snapshot) error {
		if _, ok := sn.Metadata[key]; !ok {
			return store.Fault(store.KindNotFound, "itemNotFound", "Snapshot %s has no metadata with key %s.", sn.ID, key)
		}
		delete(sn.Metadata, key)
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
