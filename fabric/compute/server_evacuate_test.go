package compute

import (
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// An evacuation is refused, saying why, before anything changes: not an
// admin, a host that is up (Nova's "still in use"), a body that is not
// the microversion's, shared storage for a local disk, an unknown or
// the same host.
func TestEvacuateRefusals(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	src := f.row(id).Host
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	path := "/v2.1/servers/" + id + "/action"
	f.expect("POST", path, alice, "2.14", map[string]any{"evacuate": map[string]any{}}, 403, "forbidden", evacuateRule)
	f.expect("POST", path, admin, "2.14", map[string]any{"evacuate": map[string]any{}}, 400, "badRequest", "Compute service of "+src+" is still in use.")
	f.hosts.setUp(src, false)
	f.expect("POST", path, admin, "2.14", map[string]any{"evacuate": nil}, 400, "badRequest", "evacuate")
	f.expect("POST", path, admin, "", map[string]any{"evacuate": map[string]any{}}, 400, "badRequest", "onSharedStorage")
	f.expect("POST", path, admin, "", map[string]any{"evacuate": map[string]any{"onSharedStorage": true}}, 400, "badRequest", "shared storage")
	f.expect("POST", path, admin, "2.14", map[string]any{"evacuate": map[string]any{"onSharedStorage": false}}, 400, "badRequest", "onSharedStorage")
	f.expect("POST", path, admin, "2.29", map[string]any{"evacuate": map[string]any{"host": "nope"}}, 400, "badRequest", "Compute host nope could not be found.")
	f.expect("POST", path, admin, "2.29", map[string]any{"evacuate": map[string]any{"host": src}}, 400, "badRequest", "The target host can't be the same one.")
	f.hosts.setUp(otherHost(src), false)
	f.expect("POST", path, admin, "2.14", map[string]any{"evacuate": map[string]any{}}, 400, "badRequest", "No valid host was found.")
	if sv := f.row(id); sv.Host != src || sv.RebuildSeq != 0 || sv.Status != "ACTIVE" {
		t.Fatalf("a refused evacuation changed the server: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); len(ms) != 0 {
		t.Fatalf("refused evacuations left migrations: %v", ms)
	}
}

// An active server of a down host is rebuilt on the other (REBUILD, its
// ports bound there), its migration of type evacuation done once the
// new host reports it rebuilt; the old host's reports are not heard.
func TestEvacuate(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	id := f.server(alice, "vm")
	src := f.row(id).Host
	dst := otherHost(src)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	f.hosts.setUp(src, false)
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "2.14", map[string]any{"evacuate": map[string]any{}}, 200, "")
	sv := f.row(id)
	if sv.Host != dst || sv.RebuildSeq != 1 || sv.Status != "REBUILD" || sv.Want != "active" || sv.Migration == "" {
		t.Fatalf("after evacuate: %+v", sv)
	}
	for _, p := range sv.Ports {
		if pt, _ := f.ports.get(p); pt.Host != dst {
			t.Fatalf("port %s bound to %q, want %s", p, pt.Host, dst)
		}
	}
	ms := f.migrations("2.59", "")
	if len(ms) != 1 || ms[0]["migration_type"] != "evacuation" || ms[0]["status"] != "pre-migrating" || ms[0]["source_compute"] != src || ms[0]["dest_compute"] != dst {
		t.Fatalf("migrations %v", ms)
	}
	// The old node, back, is not heard.
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, Node: src})
	if sv := f.row(id); sv.Host != dst || sv.Status != "REBUILD" {
		t.Fatalf("after a report of the old host: %+v", sv)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1, Node: dst})
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.Migration != "" || sv.Host != dst {
		t.Fatalf("after the rebuild: %+v", sv)
	}
	if ms := f.migrations("2.59", ""); ms[0]["status"] != "done" {
		t.Fatalf("migration %v", ms[0])
	}
	// The old node, back, sees its guest off: not heard, the server is
	// not stopped.
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, Node: src})
	if sv := f.row(id); sv.Status != "ACTIVE" || sv.Want != "active" {
		t.Fatalf("after a report of the old host: %+v", sv)
	}
	if evs := f.actionEvents(id, computestate.ActionEvacuate); len(evs) != 2 || evs[1].Result != "Success" || evs[1].Host != dst {
		t.Fatalf("evacuate events %+v", evs)
	}
}

// A stopped server booted from a volume is evacuated (before 2.14, with
// the admin password answered) with its volume's attachment, and is
// stopped again once rebuilt.
func TestEvacuateStoppedVolumeBacked(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	vol := f.volume(projA)
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bfv("volume", vol, 0, false))
	src := f.row(id).Host
	dst := otherHost(src)
	f.agentReports(volstate.CmdAttached, volstate.AttachedCmd{VolumeID: vol, AttachmentID: f.vol(vol).Attachments[0].ID, Now: f.now})
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, Node: src})
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, Node: src})
	f.hosts.setUp(src, false)
	body := f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "", map[string]any{"evacuate": map[string]any{"onSharedStorage": true, "adminPass": "s3cret"}}, 200, "")
	if body["adminPass"] != "s3cret" {
		t.Fatalf("evacuate answered %v", body)
	}
	if h := f.vol(vol).Attachments[0].Host; h != dst {
		t.Fatalf("volume attached on %s after the evacuation, want %s", h, dst)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1, Node: dst})
	if sv := f.row(id); sv.Want != "stopped" || sv.Host != dst || sv.Migration != "" {
		t.Fatalf("a stopped server after its evacuation: %+v", sv)
	}
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, RebuildSeq: 1, Node: dst})
	if sv := f.row(id); sv.Status != "SHUTOFF" {
		t.Fatalf("status %s after the stop", sv.Status)
	}
}
