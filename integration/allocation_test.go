//go:build integration

package integration

import (
	"encoding/json"
	"testing"
)

// bmAllocation is a row of `openstack baremetal allocation list`.
type bmAllocation struct {
	UUID  string `json:"UUID"`
	State string `json:"State"`
	Node  string `json:"Node UUID"`
}

func allocations(t *testing.T, env []string) []bmAllocation {
	t.Helper()
	out := openstack(t, env, "baremetal", "allocation", "list", "-f", "json")
	var rows []bmAllocation
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("allocation list: %v\n%s", err, out)
	}
	return rows
}

// checkServerAllocation: the node Nova placed a server on holds an
// Ironic allocation of the server's id, active, and it is the only one.
func checkServerAllocation(t *testing.T, env []string, server, node string) {
	t.Helper()
	rows := allocations(t, env)
	if len(rows) != 1 || rows[0].UUID != server || rows[0].Node != node || rows[0].State != "active" {
		t.Fatalf("allocations %+v, want server %s's, active on node %s", rows, server, node)
	}
}
