//go:build integration

package integration

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// checkServerTags drives Nova's server tags (2.26) with the openstack CLI
// on a server of the project: set adds each tag, the list filters on
// them, unset removes one and show has the rest. others are servers of
// the project without tags, which the filters must leave out.
func checkServerTags(t *testing.T, alice []string, vm serverInfo, others ...serverInfo) {
	t.Helper()
	cli := func(args ...string) string {
		t.Helper()
		return openstack(t, alice, append([]string{"--os-compute-api-version", "2.52"}, args...)...)
	}
	cli("server", "set", "--tag", "a", "--tag", "b", vm.ID)
	if got := strings.Fields(cli("server", "list", "--tags", "a", "-f", "value", "-c", "ID")); !slices.Equal(got, []string{vm.ID}) {
		t.Errorf("server list --tags a: %v, want only %s", got, vm.ID)
	}
	untagged := strings.Fields(cli("server", "list", "--not-tags", "a", "-f", "value", "-c", "ID"))
	for _, o := range others {
		if !slices.Contains(untagged, o.ID) {
			t.Errorf("server list --not-tags a lacks %s: %v", o.ID, untagged)
		}
	}
	if slices.Contains(untagged, vm.ID) {
		t.Errorf("server list --not-tags a has the tagged %s", vm.ID)
	}
	cli("server", "unset", "--tag", "a", vm.ID)
	var shown struct {
		Tags []string `json:"tags"`
	}
	out := cli("server", "show", "-f", "json", "-c", "tags", vm.ID)
	if err := json.Unmarshal([]byte(out), &shown); err != nil || !slices.Equal(shown.Tags, []string{"b"}) {
		t.Errorf("server show -c tags after unset a: %v %s", err, out)
	}
}
