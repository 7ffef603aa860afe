package volume

import (
	"net/http"

	"github.com/rackstack/rackstack/fabric/api"
)

// listCounted answers a list of volumes, snapshots or backups: the page
// of views (each shown through summary, when given), and from 3.45, if
// with_count is true, "count": how many match the filters, whatever the
// page (Cinder's count for paging clients).
func listCounted(w http.ResponseWriter, r *http.Request, l api.Listing, views []api.View, summary func(api.View) api.View) error {
	body, err := l.Page(r, views)
	if err != nil {
		return err
	}
	if summary != nil {
		page := body[l.Key].([]api.View)
		out := make([]api.View, 0, len(page))
		for _, v := range page {
			out = append(out, summary(v))
		}
		body[l.Key] = out
	}
	q := r.URL.Query()
	if with, _ := api.ToBool(q.Get("with_count")); with && atLeast(r, 45) {
		n := 0
		for _, v := range views {
			ok, err := l.Matches(v, q)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		body["count"] = n
	}
	api.JSON(w, http.StatusOK, body)
	return nil
}
