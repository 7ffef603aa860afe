package volstate

import (
	"slices"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Quiesce requests: how the volume API asks the nodes that write a
// group's volumes to hold them while a group snapshot is made (see the
// fabric/volume package's groupquiesce.go). The API puts a request naming
// the volumes and the nodes that must answer; each of those nodes holds
// the volumes it writes (new writes and flushes wait, the ones in flight
// end, the volume is flushed) and answers with the ones it holds or why
// it could not. The API deletes the request when the snapshot is made
// or has failed, and the nodes let the volumes go; a node lets them go
// by itself once Lease has passed since it took the hold, so a request
// whose API died never leaves a volume held.

// QuiesceTable holds the requests, by group snapshot id.
const QuiesceTable = "volume_quiesces"

// Quiesce commands.
const (
	CmdPutQuiesce    = "volume.quiesce.put"
	CmdAnswerQuiesce = "volume.quiesce.answer"
	CmdDeleteQuiesce = "volume.quiesce.delete"
)

// Quiesce is one request.
type Quiesce struct {
	ID      string   `json:"id"` // the group snapshot's
	Volumes []string `json:"volumes"`
	// Nodes must answer: the nodes that may write the volumes.
	Nodes []string `json:"nodes"`
	// Lease bounds each node's hold, counted on its own clock from when
	// it started holding.
	Lease     time.Duration            `json:"lease"`
	CreatedAt time.Time                `json:"created_at"`
	Answers   map[string]QuiesceAnswer `json:"answers,omitempty"`
}

// QuiesceAnswer is a node's answer: the volumes it writes that it now
// holds, flushed, or why it could not hold them (none held then).
type QuiesceAnswer struct {
	Held  []string `json:"held,omitempty"`
	Error string   `json:"error,omitempty"`
}

func quiesceTable() store.Table { return store.NewTable(QuiesceTable, &Quiesce{}) }

// PutQuiesceCmd makes a request.
type PutQuiesceCmd struct {
	Row Quiesce `json:"row"`
}

func applyPutQuiesce(tx *memdb.Txn, c PutQuiesceCmd) (any, error) {
	if store.Get[Quiesce](tx, QuiesceTable, c.Row.ID) != nil {
		return nil, store.Conflictf("quiesce request %s exists", c.Row.ID)
	}
	if len(c.Row.Nodes) == 0 || c.Row.Lease <= 0 {
		return nil, invalid("a quiesce request needs nodes and a lease")
	}
	row := c.Row
	row.Answers = nil
	return nil, tx.Insert(QuiesceTable, &row)
}

// AnswerQuiesceCmd records Node's answer to request ID. A request that
// is gone (the API gave up or finished) takes no answer: the node lets
// its volumes go.
type AnswerQuiesceCmd struct {
	ID     string        `json:"id"`
	Node   string        `json:"node"`
	Answer QuiesceAnswer `json:"answer"`
}

func applyAnswerQuiesce(tx *memdb.Txn, c AnswerQuiesceCmd) (any, error) {
	cur := store.Get[Quiesce](tx, QuiesceTable, c.ID)
	if cur == nil {
		return nil, store.NotFoundf("quiesce request %s not found", c.ID)
	}
	if !slices.Contains(cur.Nodes, c.Node) {
		return nil, invalid("node %s is not asked by quiesce request %s", c.Node, c.ID)
	}
	n := *cur
	n.Answers = make(map[string]QuiesceAnswer, len(cur.Answers)+1)
	for k, a := range cur.Answers {
		n.Answers[k] = a
	}
	n.Answers[c.Node] = c.Answer
	return nil, tx.Insert(QuiesceTable, &n)
}

// DeleteQuiesceCmd ends request ID (gone already is not an error).
type DeleteQuiesceCmd struct {
	ID string `json:"id"`
}

func applyDeleteQuiesce(tx *memdb.Txn, c DeleteQuiesceCmd) (any, error) {
	cur := store.Get[Quiesce](tx, QuiesceTable, c.ID)
	if cur == nil {
		return nil, nil
	}
	return nil, tx.Delete(QuiesceTable, cur)
}
