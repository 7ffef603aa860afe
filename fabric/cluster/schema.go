package cluster

import (
	"crypto/subtle"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/node/inventory"
)

// Rows of the cluster tables. Rows are never mutated after insert.

// caRow holds the cluster CA (one row, id "ca").
type caRow struct {
	ID string `json:"id"`
	CA CA     `json:"ca"`
}

// joinTokenRow is a join token; only the SHA-256 of its secret is kept.
type joinTokenRow struct {
	ID         string    `json:"id"`
	SecretHash []byte    `json:"secret_hash"`
	ExpiresAt  time.Time `json:"expires_at"`
	UsesLeft   int       `json:"uses_left"`
	CreatedAt  time.Time `json:"created_at"`
}

// nodeRow is a registered node.
type nodeRow struct {
	Name          string              `json:"name"`
	APIURL        string              `json:"api_url"`
	RaftAddress   string              `json:"raft_address"`
	JoinedAt      time.Time           `json:"joined_at"`
	LastHeartbeat time.Time           `json:"last_heartbeat"`
	Inventory     inventory.Inventory `json:"inventory"`
	// Services are what the node said it runs when it registered (see
	// Node.SetServices); nil from a node before this field.
	Services []string `json:"services,omitempty"`
}

// Command types of the cluster service.
const (
	CmdSetCA           = "cluster.ca.set"
	CmdCreateJoinToken = "cluster.jointoken.create"
	CmdUseJoinToken    = "cluster.jointoken.use"
	CmdRevokeJoinToken = "cluster.jointoken.revoke"
	CmdRegisterNode    = "cluster.node.register"
	CmdHeartbeat       = "cluster.node.heartbeat"
	CmdRemoveNode      = "cluster.node.remove"
)

// useJoinToken spends one use of a token and, in the same transaction,
// registers the node it admits: a join is never half-recorded.
type useJoinToken struct {
	ID         string    `json:"id"`
	SecretHash []byte    `json:"secret_hash"`
	Now        time.Time `json:"now"`
	Node       *nodeRow  `json:"node,omitempty"`
}

type revokeJoinToken struct {
	ID string `json:"id"`
}

type heartbeat struct {
	Name      string               `json:"name"`
	At        time.Time            `json:"at"`
	Inventory *inventory.Inventory `json:"inventory,omitempty"`
}

type removeNode struct {
	Name string `json:"name"`
}

func idIndex(field string) map[string]*memdb.IndexSchema {
	return map[string]*memdb.IndexSchema{"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: field}}}
}

// Schema is the cluster service's part of the replicated state.
func Schema() store.Schema {
	return store.Schema{
		Tables: []store.Table{
			{Schema: &memdb.TableSchema{Name: "cluster_ca", Indexes: idIndex("ID")}, Row: &caRow{}},
			{Schema: &memdb.TableSchema{Name: "join_tokens", Indexes: idIndex("ID")}, Row: &joinTokenRow{}},
			{Schema: &memdb.TableSchema{Name: "nodes", Indexes: idIndex("Name")}, Row: &nodeRow{}},
			{Schema: &memdb.TableSchema{Name: "cluster_secret_key", Indexes: idIndex("ID")}, Row: &secretKeyRow{}},
			commandsTable(),
		},
		Handlers: map[string]store.Handler{
			CmdSetCA:           store.Typed(applySetCA),
			CmdCreateJoinToken: store.Typed(applyCreateJoinToken),
			CmdUseJoinToken:    store.Typed(applyUseJoinToken),
			CmdRevokeJoinToken: store.Typed(applyRevokeJoinToken),
			CmdRegisterNode:    store.Typed(applyRegisterNode),
			CmdHeartbeat:       store.Typed(applyHeartbeat),
			CmdRemoveNode:      store.Typed(applyRemoveNode),
			CmdSetSecretKeyID:  applySetSecretKeyID,
			CmdDeclareCommands: store.Typed(applyDeclareCommands),
		},
		Gate: gateCommands,
	}
}

// applySetCA stores the CA once; a second CA is refused so that a stray
// bootstrap can never replace the trust root of a running cluster.
func applySetCA(tx *memdb.Txn, ca CA) (any, error) {
	existing, err := tx.First("cluster_ca", "id", "ca")
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return nil, fmt.Errorf("cluster ca already set: %w", store.ErrConflict)
	}
	return nil, tx.Insert("cluster_ca", &caRow{ID: "ca", CA: ca})
}

func applyCreateJoinToken(tx *memdb.Txn, t joinTokenRow) (any, error) {
	if t.ID == "" || len(t.SecretHash) == 0 || t.UsesLeft < 1 {
		return nil, fmt.Errorf("join token needs an id, a secret and at least one use: %w", store.ErrInvalid)
	}
	return nil, tx.Insert("join_tokens", &t)
}

func applyUseJoinToken(tx *memdb.Txn, u useJoinToken) (any, error) {
	raw, err := tx.First("join_tokens", "id", u.ID)
	if err != nil {
		return nil, err
	}
	t, _ := raw.(*joinTokenRow)
	if t == nil || subtle.ConstantTimeCompare(t.SecretHash, u.SecretHash) != 1 {
		return nil, fmt.Errorf("join token is not valid: %w", store.ErrInvalid)
	}
	if u.Node != nil {
		// The same join sent again because its outcome was unknown (the
		// leader was deposed while committing it): it has counted once.
		if old := store.Get[nodeRow](tx, "nodes", u.Node.Name); old != nil && old.JoinedAt.Equal(u.Node.JoinedAt) && old.RaftAddress == u.Node.RaftAddress {
			return nil, nil
		}
	}
	if !u.Now.Before(t.ExpiresAt) {
		return nil, fmt.Errorf("join token expired at %s: %w", t.ExpiresAt.UTC().Format(time.RFC3339), store.ErrInvalid)
	}
	if t.UsesLeft < 1 {
		return nil, fmt.Errorf("join token has already been used: %w", store.ErrInvalid)
	}
	n := *t
	n.UsesLeft--
	if err := tx.Insert("join_tokens", &n); err != nil {
		return nil, err
	}
	if u.Node != nil {
		if u.Node.Name == "" {
			return nil, fmt.Errorf("node needs a name: %w", store.ErrInvalid)
		}
		return nil, tx.Insert("nodes", u.Node)
	}
	return nil, nil
}

func applyRevokeJoinToken(tx *memdb.Txn, c revokeJoinToken) (any, error) {
	t := store.Get[joinTokenRow](tx, "join_tokens", c.ID)
	if t == nil {
		return nil, store.NotFoundf("join token %s does not exist", c.ID)
	}
	return nil, tx.Delete("join_tokens", t)
}

func applyRegisterNode(tx *memdb.Txn, n nodeRow) (any, error) {
	if n.Name == "" {
		return nil, fmt.Errorf("node needs a name: %w", store.ErrInvalid)
	}
	if raw, err := tx.First("nodes", "id", n.Name); err != nil {
		return nil, err
	} else if old, ok := raw.(*nodeRow); ok && n.JoinedAt.IsZero() {
		n.JoinedAt = old.JoinedAt
	}
	return nil, tx.Insert("nodes", &n)
}

func applyHeartbeat(tx *memdb.Txn, h heartbeat) (any, error) {
	raw, err := tx.First("nodes", "id", h.Name)
	if err != nil {
		return nil, err
	}
	old, _ := raw.(*nodeRow)
	if old == nil {
		return nil, fmt.Errorf("node %q is not registered: %w", h.Name, store.ErrNotFound)
	}
	n := *old
	if h.At.After(n.LastHeartbeat) {
		n.LastHeartbeat = h.At
	}
	if h.Inventory != nil {
		n.Inventory = *h.Inventory
	}
	return nil, tx.Insert("nodes", &n)
}

func applyRemoveNode(tx *memdb.Txn, r removeNode) (any, error) {
	n, err := tx.DeleteAll("nodes", "id", r.Name)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("node %q: %w", r.Name, store.ErrNotFound)
	}
	_, err = tx.DeleteAll("node_commands", "id", r.Name)
	return nil, err
}

// Lookups on a read transaction.

func readCA(tx *memdb.Txn) (*CA, error) {
	raw, err := tx.First("cluster_ca", "id", "ca")
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("cluster ca: %w", store.ErrNotFound)
	}
	ca := raw.(*caRow).CA
	return &ca, nil
}

func readNodes(tx *memdb.Txn) ([]*nodeRow, error) {
	it, err := tx.Get("nodes", "id")
	if err != nil {
		return nil, err
	}
	var out []*nodeRow
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*nodeRow))
	}
	return out, nil
}

func readNode(tx *memdb.Txn, name string) (*nodeRow, error) {
	raw, err := tx.First("nodes", "id", name)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, fmt.Errorf("node %q: %w", name, store.ErrNotFound)
	}
	return raw.(*nodeRow), nil
}
