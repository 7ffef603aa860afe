//go:build integration

package integration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// waitExtendRecorded waits (30 s at most, after the guest already saw
// the size) for server's extend_volume instance action to have its
// compute_extend_volume event finished with Success, as tempest's
// extend-attached tests wait for it through `openstack server event`.
func waitExtendRecorded(t *testing.T, env []string, server string) {
	t.Helper()
	var actions []struct {
		RequestID string `json:"Request ID"`
		Action    string `json:"Action"`
	}
	if err := json.Unmarshal([]byte(openstack(t, env, "server", "event", "list", "-f", "json", server)), &actions); err != nil {
		t.Fatal(err)
	}
	req := ""
	for _, a := range actions {
		if a.Action == "extend_volume" {
			req = a.RequestID
		}
	}
	if req == "" {
		t.Fatalf("no extend_volume action on %s: %+v", server, actions)
	}
	var last string
	if !eventually(30*time.Second, func() bool {
		last = openstack(t, env, "server", "event", "show", "-f", "json", server, req)
		return strings.Contains(last, "compute_extend_volume") && strings.Contains(last, "Success")
	}) {
		t.Fatalf("extend_volume action of %s never finished: %s", server, last)
	}
}
