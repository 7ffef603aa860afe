//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestVolumeAnswersAsCinder drives, with the real openstack and cinder
// CLIs against a real rackd, what the Cinder conformance sweep found
// answered unlike Cinder: a size past the quota is Cinder's 413
// VolumeSizeExceedsAvailableQuota (create and extend) before this
// cloud's 16 TiB bound, which answers 400 once the quota is unlimited;
// type access refuses a project that cannot be an id (below 3.53 too,
// where no body schema catches it) and adds a real one; and the Cinder
// paths of what is not built (manage, clusters, workers cleanup) answer
// 501 saying so, not 404.
func TestVolumeAnswersAsCinder(t *testing.T) {
	testenv.RequireRoot(t, "run rackd's block store")
	for _, c := range []string{"/usr/bin/openstack", "/usr/bin/cinder"} {
		testenv.RequireCommand(t, c)
	}
	n1 := startDevCloud(t, "va1", "--disk", t.TempDir(), "--compute", "off", "--s3-listen", "off")
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	openstack(t, admin, "project", "create", "alice-proj")
	openstack(t, admin, "user", "create", "--project", "alice-proj", "--password", "alice-pass-1", "alice")
	openstack(t, admin, "role", "add", "--project", "alice-proj", "--user", "alice", "member")
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=alice-proj")
	aliceProj := strings.TrimSpace(openstack(t, admin, "project", "show", "-f", "value", "-c", "id", "alice-proj"))

	// Past the quota: 413 with Cinder's class and figures, for a new
	// volume and for an extend; nothing made, nothing grown.
	if out, err := openstackErr(alice, "volume", "create", "--size", "999999999", "big"); err == nil ||
		!strings.Contains(out, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 999999999G, quota is 1000G and 0G has been consumed.") ||
		!strings.Contains(out, "HTTP 413") {
		t.Fatalf("volume create past the quota: %v\n%s", err, out)
	}
	v := strings.TrimSpace(openstack(t, alice, "volume", "create", "--size", "1", "-f", "value", "-c", "id", "v1"))
	waitVolume(t, alice, v, "available", time.Minute)
	if out, err := cinderErr(alice, "extend", v, "999999999"); err == nil || !strings.Contains(out, "VolumeSizeExceedsAvailableQuota") || !strings.Contains(out, "HTTP 413") {
		t.Fatalf("extend past the quota: %v\n%s", err, out)
	}
	if out := openstack(t, alice, "volume", "list", "-f", "value", "-c", "Name"); strings.Contains(out, "big") {
		t.Fatalf("a refused volume is listed:\n%s", out)
	}
	// Within an unlimited quota, past the bound: 400 naming the field.
	openstack(t, admin, "quota", "set", "--gigabytes", "-1", "alice-proj")
	if out, err := openstackErr(alice, "volume", "create", "--size", "20000", "huge"); err == nil ||
		!strings.Contains(out, "field/attribute size") || !strings.Contains(out, "maximum of 16384") || !strings.Contains(out, "HTTP 400") {
		t.Fatalf("volume create past the bound: %v\n%s", err, out)
	}
	if got := showVolume(t, alice, v); got.Size != 1 || got.Status != "available" {
		t.Fatalf("after refused extends: %+v", got)
	}

	// Type access: a project that cannot be an id is refused at 3.0 and
	// at the CLI's latest; a real one is given the type.
	openstack(t, admin, "volume", "type", "create", "--private", "priv")
	for _, version := range []string{"3.0", "3.71"} {
		if out, err := cinderErr(admin, "--os-volume-api-version", version, "type-access-add", "--volume-type", "priv", "--project-id", "BAD_PROJECT_ID"); err == nil ||
			!strings.Contains(out, "BAD_PROJECT_ID") || !strings.Contains(out, "HTTP 400") {
			t.Fatalf("type-access-add of a bad project at %s: %v\n%s", version, err, out)
		}
	}
	if out := cinder(t, admin, "type-access-list", "--volume-type", "priv"); strings.Contains(out, "BAD_PROJECT_ID") {
		t.Fatalf("a refused project has access:\n%s", out)
	}
	openstack(t, admin, "volume", "type", "set", "--project", "alice-proj", "priv")
	if out := cinder(t, admin, "type-access-list", "--volume-type", "priv"); !strings.Contains(out, aliceProj) {
		t.Fatalf("alice's project has no access:\n%s", out)
	}
	if out := openstack(t, alice, "volume", "type", "list", "-f", "value", "-c", "Name"); !strings.Contains(out, "priv") {
		t.Fatalf("alice does not see the type given to her:\n%s", out)
	}

	// What is not built says so at Cinder's paths.
	for _, c := range [][]string{
		{"--os-volume-api-version", "3.0", "manage", "rackstack@block#block", "some-lun"},
		{"--os-volume-api-version", "3.8", "manageable-list", "rackstack@block"},
		{"--os-volume-api-version", "3.24", "work-cleanup"},
		{"--os-volume-api-version", "3.7", "cluster-list", "--detailed"},
		{"--os-volume-api-version", "3.7", "cluster-show", "c1"},
	} {
		if out, err := cinderErr(admin, c...); err == nil || !strings.Contains(out, "not supported by this cloud") || !strings.Contains(out, "HTTP 501") {
			t.Fatalf("cinder %v: %v\n%s", c, err, out)
		}
	}
}
