package compute

import (
	"net/http"
	"strconv"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Migrations (os-migrations): the resizes (server_resize.go), each on
// its server's own host, and the cold migrations (server_migrate.go)
// between hosts, and the live migrations (server_livemigrate.go). The query is Nova's: any filter
// to 2.58 (those Nova knows filter: host, status, instance_uuid,
// source_compute, migration_type; others are ignored); from 2.59 only
// its known parameters (unknown ones are a 400 naming them), limit a
// non-negative integer, changes-since (and from 2.66 changes-before)
// date-times, and a marker naming a migration by uuid (none is Nova's
// 400); from 2.80 user_id and project_id filter too (and the view shows
// both). Migrations are listed newest first; a removed server's go with
// it, as Nova lists a deleted instance's no more.

// migrationParams are the query parameters Nova's schema knows from
// 2.59 (changes-before from 2.66).
var migrationParams = map[string]int{
	"hidden": 59, "host": 59, "instance_uuid": 59, "source_compute": 59, "status": 59, "migration_type": 59,
	"limit": 59, "marker": 59, "changes-since": 59, "changes-before": 66,
	"user_id": 80, "project_id": 80,
}

// listMigrations is GET /os-migrations (admin).
func (s *Service) listMigrations(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := -1
	if atLeast(r, 59) {
		for k := range q {
			if from, ok := migrationParams[k]; !ok || !atLeast(r, from) {
				return badRequest("Invalid input for query parameters %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", k, q.Get(k), k)
			}
		}
		if l, ok := q["limit"]; ok {
			n, err := strconv.Atoi(l[0])
			if err != nil || n < 0 {
				return badRequest("Invalid input for query parameters limit. Value: %s. '%s' does not match '^[0-9]*$'", l[0], l[0])
			}
			limit = n
		}
	}
	since, before, err := changeWindow(r, 59)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	var ms []*Migration
	for _, m := range store.All[Migration](tx, tMigrations, "id") {
		switch {
		case q.Get("instance_uuid") != "" && m.ServerID != q.Get("instance_uuid"),
			q.Get("status") != "" && m.Status != q.Get("status"),
			q.Get("migration_type") != "" && m.Type != q.Get("migration_type"),
			q.Get("source_compute") != "" && m.SourceCompute != q.Get("source_compute"),
			q.Get("host") != "" && m.SourceCompute != q.Get("host") && m.DestCompute != q.Get("host"),
			atLeast(r, 80) && q.Get("user_id") != "" && m.UserID != q.Get("user_id"),
			atLeast(r, 80) && q.Get("project_id") != "" && m.Project != q.Get("project_id"),
			!inWindow(m.Updated, since, before):
			continue
		}
		ms = append(ms, m)
	}
	sortMigrations(ms)
	if mk := q.Get("marker"); mk != "" && atLeast(r, 59) {
		at := -1
		for i, m := range ms {
			if m.ID == mk {
				at = i
			}
		}
		if at < 0 {
			return badRequest("Marker %s could not be found.", mk)
		}
		ms = ms[at+1:]
	}
	if limit >= 0 && len(ms) > limit {
		ms = ms[:limit]
	}
	out := make([]any, 0, len(ms))
	for _, m := range ms {
		out = append(out, migrationView(r, m))
	}
	api.JSON(w, http.StatusOK, map[string]any{"migrations": out})
	return nil
}
