package network

import (
	"net/http"
	"strconv"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// ifMatch is Neutron's "If-Match: revision_number=N" carried in an update
// or delete command: the write applies only to a row still at revision N.
// The state machine checks it in the same step as the write, so no other
// change can come between the check and the write.
type ifMatch struct {
	IfRevision *int `json:"if_revision,omitempty"`
}

// check refuses the write if the row is at another revision than the
// client's.
func (m ifMatch) check(current int) error {
	if m.IfRevision != nil && *m.IfRevision != current {
		return store.Fault(store.KindPrecondition, "RevisionNumberConstraintFailed",
			"Constrained to %d, but current revision is %d", *m.IfRevision, current)
	}
	return nil
}

// current is the row id of table that an update or delete of kind acts
// on: a row that is gone is kind's 404, one at another revision than the
// client's a 412.
func current[T any](tx *memdb.Txn, table, kind, id string, m ifMatch, revision func(*T) int) (*T, error) {
	row := store.Get[T](tx, table, id)
	if row == nil {
		return nil, notFound(kind, id)
	}
	if err := m.check(revision(row)); err != nil {
		return nil, err
	}
	return row, nil
}

// readIfMatch reads the revision_number=N entity tag of If-Match (quoted
// or not, among other tags), as Neutron does; none is no constraint.
func readIfMatch(r *http.Request) (ifMatch, error) {
	var m ifMatch
	for _, h := range r.Header.Values("If-Match") {
		for _, tag := range strings.Split(h, ",") {
			tag = strings.Trim(strings.TrimPrefix(strings.TrimSpace(tag), "W/"), `"`)
			v, ok := strings.CutPrefix(tag, "revision_number=")
			if !ok {
				continue
			}
			if m.IfRevision != nil {
				return m, &api.Error{Status: http.StatusBadRequest, Field: "If-Match", Msg: "Multiple revision_number etags are not supported."}
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return m, &api.Error{Status: http.StatusBadRequest, Field: "If-Match", Msg: "Revision number etag must be in the format of revision_number=<int>"}
			}
			m.IfRevision = &n
		}
	}
	return m, nil
}
