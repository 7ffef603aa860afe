package volume

import (
	"net/http"
	"slices"
	"sort"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// volumeSummary is GET /volumes/summary (3.12): how many volumes the
// caller's project has and their GiB, and from 3.36 each metadata key
// with the values it has.
func (s *Service) volumeSummary(w http.ResponseWriter, r *http.Request) error {
	proj, err := project(r)
	if err != nil {
		return err
	}
	if !atLeast(r, 12) {
		return notFound("Volume", "summary")
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	count, size := 0, 0
	values := map[string][]string{}
	for _, v := range store.All[volstate.Volume](tx, volstate.VolumeTable, "id") {
		if v.Project != proj {
			continue
		}
		count, size = count+1, size+v.Size
		for k, val := range v.Metadata {
			if !slices.Contains(values[k], val) {
				values[k] = append(values[k], val)
			}
		}
	}
	sum := map[string]any{"total_count": count, "total_size": size}
	if atLeast(r, 36) {
		md := map[string]any{}
		for k, vals := range values {
			sort.Strings(vals)
			md[k] = vals
		}
		sum["metadata"] = md
	}
	api.JSON(w, http.StatusOK, map[string]any{"volume-summary": sum})
	return nil
}

// updateBackup is PUT /backups/{id} (3.9): its name and description, and
// from 3.43 its metadata.
func (s *Service) updateBackup(w http.ResponseWriter, r *http.Request) error {
	if _, err := project(r); err != nil {
		return err
	}
	if !atLeast(r, 9) {
		return &api.Error{Status: http.StatusNotFound, Msg: "The resource could not be found: updating a backup needs microversion 3.9 or later."}
	}
	o, err := body(r, "backup")
	if err != nil {
		return err
	}
	in := newInput(o)
	name, hasName := in.Str("name", "", 255), in.Has("name")
	desc, hasDesc := in.Str("description", "", 255), in.Has("description")
	var md map[string]string
	hasMD := atLeast(r, 43) && in.Has("metadata")
	if hasMD {
		md = metadata(in, "metadata")
	}
	for k := range o {
		if k != "name" && k != "description" && !(k == "metadata" && atLeast(r, 43)) {
			in.Fail(in.Word.BadField(k, o[k], "Additional properties are not allowed ('"+k+"' was unexpected)"))
		}
	}
	if in.Err != nil {
		return in.Err
	}
	b, err := s.ownBackup(r, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	row, err := s.changeBackup(r.Context(), b.ID, func(b *volstate.Backup) error {
		if hasName {
			b.Name = name
		}
		if hasDesc {
			b.Description = desc
		}
		if hasMD {
			b.Metadata = md
		}
		return nil
	})
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"backup": api.View{"id": row.ID, "name": nullable(row.Name), "links": s.links(r, "backups", row.ID)}})
	return nil
}
