package compute

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// shelve of an image-backed server: refusals by name, policy, lock and
// state; else createImage's snapshot into "<name>-shelved", in Nova's
// shelving task states, and once made the server is offloaded at once
// (SHELVED_OFFLOADED, no host, its ports bound to no host) with a
// shelve action. shelveOffload is admin-only and finds nothing shelved
// to offload. unshelve places it on a host again (task unshelving) with
// its ports bound there; its agent's ACTIVE ends it and the shelved
// image is forgotten. A shelved server deleted takes its image along.
func TestShelve(t *testing.T) {
	f := newFixtureWith(t, eventstate.Schema())
	snaps := f.withSnapshots()
	id := f.server(alice, "vm")
	path := "/v2.1/servers/" + id + "/action"
	f.action(alice, id, map[string]any{"shelve": nil}, 409, "vm_state building")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	host := f.row(id).Host

	f.expect("POST", path, bob, "", map[string]any{"shelve": nil}, 404, "itemNotFound")
	f.expect("POST", path, carol, "", map[string]any{"shelve": nil}, 403, "forbidden", shelveRule)
	f.action(admin, id, map[string]any{"lock": nil}, 202)
	f.action(alice, id, map[string]any{"shelve": nil}, 409, "locked")
	f.action(admin, id, map[string]any{"unlock": nil}, 202)
	f.action(alice, id, map[string]any{"unshelve": nil}, 409, "vm_state active")
	if snaps.n != 0 {
		t.Fatalf("refused shelves made %d images", snaps.n)
	}

	// As tempest's client sends it: an empty object, which Nova takes.
	r := f.do("POST", path, alice, "", map[string]any{"shelve": map[string]any{}})
	if r.code != 202 || len(r.body) != 0 {
		t.Fatalf("shelve: %d %v", r.code, r.body)
	}
	made := snaps.made["snap-1"]
	if made.Name != "vm-shelved" || made.Project != projA || made.Properties["image_type"] != "snapshot" || made.Properties["instance_uuid"] != id {
		t.Fatalf("shelved image asked for: %+v", made)
	}
	if row := f.row(id); row.TaskState != "shelving" || !row.SnapshotShelve || row.SnapshotImage != "snap-1" || row.Host != host {
		t.Fatalf("while shelving: %q %v %q %q", row.TaskState, row.SnapshotShelve, row.SnapshotImage, row.Host)
	}
	step := func(c computestate.ImageStepCmd) {
		t.Helper()
		c.ServerID, c.ImageID, c.Now = id, "snap-1", f.now
		if err := f.svc.ImageStep(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	step(computestate.ImageStepCmd{Task: "image_uploading"})
	if row := f.row(id); row.TaskState != "shelving_image_uploading" {
		t.Fatalf("shelve's upload step: %q", row.TaskState)
	}
	step(computestate.ImageStepCmd{Result: "Success"})
	row := f.row(id)
	if row.Status != "SHELVED_OFFLOADED" || row.VMState != "shelved_offloaded" || row.TaskState != "" || row.Host != "" ||
		row.ShelvedImage != "snap-1" || row.SnapshotImage != "" || row.SnapshotShelve {
		t.Fatalf("after the shelve: %+v", row)
	}
	if sv := f.show(admin, id, ""); sv["status"] != "SHELVED_OFFLOADED" || sv["OS-EXT-STS:vm_state"] != "shelved_offloaded" {
		t.Fatalf("shown after the shelve: %v %v", sv["status"], sv["OS-EXT-STS:vm_state"])
	}
	for _, p := range row.Ports {
		if pt, _ := f.ports.get(p); pt.Host != "" || pt.DeviceID != id {
			t.Errorf("port %s of the offloaded server: host %q device %q", p, pt.Host, pt.DeviceID)
		}
	}
	var shelveAct *Action
	for _, a := range store.All[Action](f.local.State.Txn(), tActions, "server", id) {
		if a.Action == "shelve" {
			shelveAct = a
		}
	}
	if shelveAct == nil || len(shelveAct.Events) != 1 || shelveAct.Events[0].Event != "compute_shelve_instance" || shelveAct.Events[0].Result != "Success" {
		t.Fatalf("shelve action: %+v", shelveAct)
	}
	f.action(alice, id, map[string]any{"os-start": nil}, 409)
	f.action(alice, id, map[string]any{"shelve": nil}, 409, "vm_state shelved_offloaded")
	f.action(alice, id, map[string]any{"shelveOffload": nil}, 403)
	f.action(admin, id, map[string]any{"shelveOffload": nil}, 409, "vm_state shelved_offloaded")

	f.expect("POST", path, alice, "2.77", map[string]any{"unshelve": map[string]any{"availability_zone": "elsewhere"}}, 400, "badRequest", "availability zone")
	f.expect("POST", path, alice, "2.77", map[string]any{"unshelve": map[string]any{"host": "n1"}}, 400, "badRequest", "host")
	// Before 2.77 Nova reads no schema for unshelve's argument: an object
	// (Terraform sends its availability_zone) is taken as null.
	f.expect("POST", path, alice, "2.76", map[string]any{"unshelve": map[string]any{"availability_zone": "elsewhere"}}, 202, "")
	row = f.row(id)
	if row.Host == "" || row.TaskState != "unshelving" || row.Want != "active" || row.Status != "SHELVED_OFFLOADED" {
		t.Fatalf("unshelving: host %q task %q want %q %s", row.Host, row.TaskState, row.Want, row.Status)
	}
	for _, p := range row.Ports {
		if pt, _ := f.ports.get(p); pt.Host != row.Host {
			t.Errorf("port %s of the unshelved server is bound to %q, not %q", p, pt.Host, row.Host)
		}
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	if row := f.row(id); row.Status != "ACTIVE" || row.TaskState != "" || row.ShelvedImage != "" {
		t.Fatalf("after the unshelve: %s %q %q", row.Status, row.TaskState, row.ShelvedImage)
	}
	if ev := f.events(id); !containsAll(ev, "shelve", "unshelve") {
		t.Fatalf("event log: %s", ev)
	}

	// Shelved, then deleted: the server goes at once, with its image.
	f.action(alice, id, map[string]any{"shelve": nil}, 202)
	step2 := computestate.ImageStepCmd{ServerID: id, ImageID: "snap-2", Result: "Success", Now: f.now}
	if err := f.svc.ImageStep(context.Background(), step2); err != nil {
		t.Fatal(err)
	}
	f.expect("DELETE", "/v2.1/servers/"+id, alice, "", nil, 204, "")
	if !slices.Contains(snaps.discarded, "snap-2") {
		t.Errorf("a deleted shelved server's image was kept: %v", snaps.discarded)
	}
	f.expect("GET", "/v2.1/servers/"+id, alice, "", nil, 404, "itemNotFound")
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// A volume-backed server has no image to make: shelve offloads it at
// once. Without an image service an image-backed one cannot be shelved
// (501).
func TestShelveVolumeBacked(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	snaps := f.withSnapshots()
	vol := f.volume(projA)
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bfv("volume", vol, 0, false))
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.action(alice, id, map[string]any{"shelve": nil}, 202)
	if row := f.row(id); snaps.n != 0 || row.Status != "SHELVED_OFFLOADED" || row.Host != "" || row.ShelvedImage != "" {
		t.Fatalf("volume-backed shelve: %d images, %s host %q", snaps.n, row.Status, row.Host)
	}
	f.action(alice, id, map[string]any{"unshelve": nil}, 202)
	if row := f.row(id); row.Host == "" || row.TaskState != "unshelving" {
		t.Fatalf("volume-backed unshelve: host %q task %q", row.Host, row.TaskState)
	}

	g := newFixture(t)
	g.stdFlavors()
	vm := g.server(alice, "vm")
	g.report(vm, Observed{Status: "ACTIVE", PowerState: 1})
	g.expect("POST", "/v2.1/servers/"+vm+"/action", alice, "", map[string]any{"shelve": nil}, 501, "notImplemented", "shelve")
}
