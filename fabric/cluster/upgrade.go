package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/store"
)

// Rolling upgrades. Every node declares, in the replicated state, the
// command types its rackd can apply (cluster.node.commands, at each
// start). The cluster's gate (store.Gate) then refuses any command of a
// type that some member has not declared, on every node alike and with
// the outcome known (store.KindUnavailable: 503): the client is told
// the cluster is being upgraded, and the member that does not know the
// type neither applies it nor halts on it. Without the gate that member
// would halt at the entry (see store.FSM.Apply) until upgraded. A new
// feature therefore starts working once the last node runs the rackd
// that has it; what older releases already knew keeps working
// throughout. Removing a member (cluster.node.remove) takes its
// declaration with it.
//
// A node that has declared nothing (one from a release before the
// declarations) is not asked: it halts on a type it does not know, as
// before. The declaration is itself a command type a release before it
// does not know, so such a node halts at the first declaration it meets
// and, upgraded, replays from its last snapshot, which precedes it:
// every node sees every declaration, and all decide alike.

// CmdDeclareCommands records the command types a node's rackd applies.
const CmdDeclareCommands = "cluster.node.commands"

// nodeCommandsRow is a node's last declaration.
type nodeCommandsRow struct {
	Name     string   `json:"name"`
	Commands []string `json:"commands"` // sorted
}

type declareCommands struct {
	Name     string   `json:"name"`
	Commands []string `json:"commands"`
}

func commandsTable() store.Table {
	return store.Table{Schema: &memdb.TableSchema{Name: "node_commands", Indexes: idIndex("Name")}, Row: &nodeCommandsRow{}}
}

func applyDeclareCommands(tx *memdb.Txn, d declareCommands) (any, error) {
	if store.Get[nodeRow](tx, "nodes", d.Name) == nil {
		return nil, fmt.Errorf("node %q is not registered: %w", d.Name, store.ErrNotFound)
	}
	if len(d.Commands) == 0 || !slices.IsSorted(d.Commands) {
		return nil, fmt.Errorf("a node's command types must be listed, sorted: %w", store.ErrInvalid)
	}
	return nil, tx.Insert("node_commands", &nodeCommandsRow{Name: d.Name, Commands: d.Commands})
}

// gateCommands refuses a command type that a registered member has
// declared it cannot apply. Declaring and removing members are never
// refused: they are how an upgrade ends, and every release that
// declares knows them.
func gateCommands(tx *memdb.Txn, typ string) error {
	if typ == CmdDeclareCommands || typ == CmdRemoveNode {
		return nil
	}
	it, err := tx.Get("node_commands", "id")
	if err != nil {
		return err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*nodeCommandsRow)
		if _, known := slices.BinarySearch(r.Commands, typ); known {
			continue
		}
		if store.Get[nodeRow](tx, "nodes", r.Name) == nil {
			continue
		}
		return fmt.Errorf("the cluster is being upgraded: node %s runs a rackd that cannot apply %s yet; try again once every node is upgraded (or %s is removed)", r.Name, typ, r.Name)
	}
	return nil
}

// declare records this node's command types unless the state already
// holds exactly them.
func (n *Node) declare(ctx context.Context) error {
	if n.cfg.undeclared {
		return nil
	}
	mine := n.State.Commands()
	if r := store.Get[nodeCommandsRow](n.State.Txn(), "node_commands", n.cfg.Name); r != nil && slices.Equal(r.Commands, mine) {
		return nil
	}
	_, err := n.Propose(ctx, CmdDeclareCommands, declareCommands{Name: n.cfg.Name, Commands: mine})
	return err
}

// upgradeProblems names each registered member that cannot apply a
// command type another member declares: the gate refuses those types
// until it is upgraded.
func upgradeProblems(tx *memdb.Txn) []string {
	it, err := tx.Get("node_commands", "id")
	if err != nil {
		return nil
	}
	var rows []*nodeCommandsRow
	all := map[string]bool{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*nodeCommandsRow)
		if store.Get[nodeRow](tx, "nodes", r.Name) == nil {
			continue
		}
		rows = append(rows, r)
		for _, c := range r.Commands {
			all[c] = true
		}
	}
	var out []string
	for _, r := range rows {
		var missing []string
		for c := range all {
			if _, known := slices.BinarySearch(r.Commands, c); !known {
				missing = append(missing, c)
			}
		}
		if len(missing) == 0 {
			continue
		}
		slices.Sort(missing)
		shown := missing
		if len(shown) > 3 {
			shown = shown[:3]
		}
		out = append(out, fmt.Sprintf("node %s runs an older rackd: it cannot apply %d command types other nodes know (%s%s); what needs them is refused until it is upgraded",
			r.Name, len(missing), strings.Join(shown, ", "), map[bool]string{true: ", …"}[len(missing) > len(shown)]))
	}
	return out
}
