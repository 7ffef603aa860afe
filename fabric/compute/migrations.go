package compute

import (
	"net/http"
	"strconv"

	"github.com/rackstack/rackstack/fabric/api"
)

// Migrations (os-migrations): nothing here moves a server between hosts
// (resize, cold and live migration and evacuate answer 501), so there
// never is a migration and the list is honestly empty. The query is
// still Nova's: any filter to 2.58; from 2.59 only its known parameters
// (unknown ones are a 400 naming them), limit a non-negative integer,
// changes-since (and from 2.66 changes-before) date-times, and a marker,
// which can name no migration, Nova's 400.

// migrationParams are the query parameters Nova's schema knows from
// 2.59 (changes-before from 2.66).
var migrationParams = map[string]int{
	"hidden": 59, "host": 59, "instance_uuid": 59, "source_compute": 59, "status": 59, "migration_type": 59,
	"limit": 59, "marker": 59, "changes-since": 59, "changes-before": 66,
}

// listMigrations is GET /os-migrations (admin).
func (s *Service) listMigrations(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	if atLeast(r, 59) {
		for k := range q {
			if from, ok := migrationParams[k]; !ok || !atLeast(r, from) {
				return badRequest("Invalid input for query parameters %s. Value: %s. Additional properties are not allowed ('%s' was unexpected)", k, q.Get(k), k)
			}
		}
		if l, ok := q["limit"]; ok {
			if n, err := strconv.Atoi(l[0]); err != nil || n < 0 {
				return badRequest("Invalid input for query parameters limit. Value: %s. '%s' does not match '^[0-9]*$'", l[0], l[0])
			}
		}
		if _, _, err := changeWindow(r, 59); err != nil {
			return err
		}
		if m := q.Get("marker"); m != "" {
			return badRequest("Marker %s could not be found.", m)
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"migrations": []any{}})
	return nil
}
