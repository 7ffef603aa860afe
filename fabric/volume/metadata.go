package volume

import (
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// metadataAPI serves a resource's metadata as Cinder does for volumes and
// snapshots: the whole set (GET, POST merges, PUT replaces) and one key
// (GET, PUT, DELETE).
type metadataAPI struct {
	kind string // "Volume", "Snapshot": in messages
	// read returns the resource's id and metadata as the caller sees it.
	read func(r *http.Request) (string, map[string]string, error)
	// edit checks that the caller may change the resource, then changes
	// its metadata (never nil when edit runs) and returns the result.
	edit func(r *http.Request, change func(md map[string]string) error) (map[string]string, error)
}

func (s *Service) volumeMetadata() metadataAPI {
	return metadataAPI{
		kind: "Volume",
		read: func(r *http.Request) (string, map[string]string, error) {
			v, err := s.readableVolume(r)
			if err != nil {
				return "", nil, err
			}
			return v.ID, v.Metadata, nil
		},
		edit: func(r *http.Request, change func(map[string]string) error) (map[string]string, error) {
			v, err := s.ownVolume(r, chi.URLParam(r, "id"))
			if err != nil {
				return nil, err
			}
			row, err := s.changeVolume(r.Context(), v.ID, func(v *volstate.Volume) error {
				if v.Metadata == nil {
					v.Metadata = map[string]string{}
				}
				return change(v.Metadata)
			})
			if err != nil {
				return nil, err
			}
			return row.Metadata, nil
		},
	}
}

func (s *Service) snapshotMetadata() metadataAPI {
	return metadataAPI{
		kind: "Snapshot",
		read: func(r *http.Request) (string, map[string]string, error) {
			sn, err := s.readableSnapshot(r)
			if err != nil {
				return "", nil, err
			}
			return sn.ID, sn.Metadata, nil
		},
		edit: func(r *http.Request, change func(map[string]string) error) (map[string]string, error) {
			sn, err := s.ownSnapshot(r)
			if err != nil {
				return nil, err
			}
			row, err := s.changeSnapshot(r.Context(), sn.ID, func(sn *volstate.Snapshot) error {
				if sn.Metadata == nil {
					sn.Metadata = map[string]string{}
				}
				return change(sn.Metadata)
			})
			if err != nil {
				return nil, err
			}
			return row.Metadata, nil
		},
	}
}

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

func metadataKey(r *http.Request) string {
	key, _ := url.PathUnescape(chi.URLParam(r, "key"))
	return key
}

func (m metadataAPI) noKey(id, key string) error {
	return store.Fault(store.KindNotFound, "itemNotFound", "%s %s has no metadata with key %s.", m.kind, id, key)
}

func (m metadataAPI) show(w http.ResponseWriter, r *http.Request) error {
	_, md, err := m.read(r)
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"metadata": metadataOrEmpty(md)})
	return nil
}

// set merges (POST) or replaces (PUT) the metadata.
func (m metadataAPI) set(replace bool) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if _, err := project(r); err != nil {
			return err
		}
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
		out, err := m.edit(r, func(cur map[string]string) error {
			if replace {
				clear(cur)
			}
			for k, v := range md {
				cur[k] = v
			}
			return nil
		})
		if err != nil {
			return err
		}
		api.JSON(w, http.StatusOK, map[string]any{"metadata": metadataOrEmpty(out)})
		return nil
	}
}

func (m metadataAPI) showKey(w http.ResponseWriter, r *http.Request) error {
	id, md, err := m.read(r)
	if err != nil {
		return err
	}
	key := metadataKey(r)
	v, ok := md[key]
	if !ok {
		return m.noKey(id, key)
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
	return nil
}

func (m metadataAPI) putKey(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	key := metadataKey(r)
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
	if _, err := m.edit(r, func(cur map[string]string) error { cur[key] = meta[key]; return nil }); err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"meta": meta})
	return nil
}

func (m metadataAPI) deleteKey(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	key := metadataKey(r)
	_, err := m.edit(r, func(cur map[string]string) error {
		if _, ok := cur[key]; !ok {
			return m.noKey(chi.URLParam(r, "id"), key)
		}
		delete(cur, key)
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
