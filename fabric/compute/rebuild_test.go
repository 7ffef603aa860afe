package compute

import (
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// A virtual machine's rebuild: REBUILD until its node reports the rebuild
// done (an ACTIVE from before does not end it), keeping its ports and
// host, renamed and with new metadata when asked; in the action log and
// the event log. What it cannot take is refused naming the field.
func TestVirtualMachineRebuild(t *testing.T) {
	f := newFixtureWith(t, eventstate.Schema())
	f.stdFlavors()
	id := f.server(alice, "vm")
	before := *f.row(id)
	rebuild := func(tok string, arg any, status int, inMsg ...string) map[string]any {
		t.Helper()
		fault := ""
		switch status {
		case 400:
			fault = "badRequest"
		case 409:
			fault = "conflictingRequest"
		}
		return f.expect("POST", "/v2.1/servers/"+id+"/action", tok, "", map[string]any{"rebuild": arg}, status, fault, inMsg...)
	}
	// Still building: not yet.
	rebuild(alice, map[string]any{"imageRef": img1}, 409, "vm_state building")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})

	rebuild(alice, "x", 400, "not of type 'object'")
	rebuild(alice, map[string]any{"imageRef": img1, "user_data": "eA=="}, 400, "user_data")
	rebuild(alice, map[string]any{"imageRef": img1, "accessIPv4": "1.1.1.1.1"}, 400, "accessIPv4")
	rebuild(alice, map[string]any{"imageRef": img1, "accessIPv6": "1.1.1.1"}, 400, "accessIPv6")
	rebuild(alice, map[string]any{"imageRef": img1, "OS-DCF:diskConfig": "SIDEWAYS"}, 400, "OS-DCF:diskConfig")
	rebuild(alice, map[string]any{"imageRef": img1, "description": "d"}, 400, "description") // from 2.19
	rebuild(alice, map[string]any{"imageRef": img1, "preserve_ephemeral": true}, 400, "preserve_ephemeral")
	rebuild(alice, map[string]any{}, 400, "imageRef")
	rebuild(alice, map[string]any{"imageRef": imgQueued}, 400, "not active")
	rebuild(alice, map[string]any{"imageRef": imgBig}, 400, "too small")
	rebuild(alice, map[string]any{"imageRef": img1, "name": " "}, 400, "name")
	rebuild(bob, map[string]any{"imageRef": img1}, 404)

	// Nova's rebuild takes the admin password (answered back, as a
	// create's), the access addresses and the disk config; before 2.75
	// the answer has no extended attributes.
	rebuild(alice, map[string]any{"imageRef": img1, "personality": []any{map[string]any{"path": "/a", "contents": "!!"}}}, 400, "Personality content")
	// Before 2.57 its personality replaces the injected files.
	files := []any{map[string]any{"path": "/tmp/foobar.txt", "contents": "aGFwcHk="}}
	body := rebuild(alice, map[string]any{"imageRef": img1, "name": "vm-rebuilt", "metadata": map[string]any{"k": "v"},
		"adminPass": "rebuildPassw0rd", "accessIPv4": "1.1.1.1", "accessIPv6": "0:0::babe:1", "OS-DCF:diskConfig": "AUTO", "personality": files}, 202)
	if sv := body["server"].(map[string]any); sv["status"] != "REBUILD" || sv["name"] != "vm-rebuilt" || sv["adminPass"] != "rebuildPassw0rd" ||
		sv["accessIPv4"] != "1.1.1.1" || sv["accessIPv6"] != "::babe:1" || sv["OS-DCF:diskConfig"] != "AUTO" {
		t.Fatalf("rebuild answered %v", sv)
	}
	for _, k := range []string{"OS-EXT-STS:vm_state", "security_groups", "key_name", "config_drive", "OS-EXT-AZ:availability_zone"} {
		if _, ok := body["server"].(map[string]any)[k]; ok {
			t.Errorf("rebuild answer before 2.75 has %s", k)
		}
	}
	plainAddrs(t, body["server"].(map[string]any), true)
	row := f.row(id)
	if row.TaskState != "rebuilding" || row.RebuildSeq != 1 || row.Want != "active" || row.Host != before.Host ||
		len(row.Ports) != 1 || row.Ports[0] != before.Ports[0] || row.Metadata["k"] != "v" ||
		row.AccessIPv4 != "1.1.1.1" || row.AccessIPv6 != "::babe:1" || row.DiskConfig != "AUTO" ||
		len(row.Personality) != 1 || row.Personality[0] != (File{Path: "/tmp/foobar.txt", Contents: "aGFwcHk="}) {
		t.Fatalf("server while rebuilding: %+v", row)
	}
	if sv := f.show(alice, id, "2.19"); sv["OS-EXT-STS:task_state"] != "rebuilding" || sv["status"] != "REBUILD" {
		t.Fatalf("shown while rebuilding: %v %v", sv["status"], sv["OS-EXT-STS:task_state"])
	}
	rebuild(alice, map[string]any{"imageRef": img1}, 409, "task_state rebuilding")
	// The agent's report from before the rebuild does not end it.
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	if row := f.row(id); row.Status != "REBUILD" {
		t.Fatalf("a stale ACTIVE ended the rebuild: %s", row.Status)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 1})
	if row := f.row(id); row.Status != "ACTIVE" || row.TaskState != "" {
		t.Fatalf("after the rebuild: %s %q", row.Status, row.TaskState)
	}

	// A stopped server is rebuilt; a failed rebuild shows ERROR with
	// why, and can be rebuilt again (and ends running).
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, RebuildSeq: 1})
	// From 2.75 the answer is a show's; a rebuild without a password
	// answers a made-up one; 2.19's description is taken.
	body = f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "2.75",
		map[string]any{"rebuild": map[string]any{"imageRef": img1, "description": "rebuilt"}}, 202, "")
	if sv := body["server"].(map[string]any); sv["OS-EXT-STS:vm_state"] != "stopped" || sv["adminPass"] == "" || sv["description"] != "rebuilt" {
		t.Fatalf("rebuild at 2.75 answered %v", sv)
	}
	plainAddrs(t, body["server"].(map[string]any), false)
	if row := f.row(id); row.Status != "REBUILD" || row.Want != "active" {
		t.Fatalf("stopped server rebuilding: %s want %s", row.Status, row.Want)
	}
	f.report(id, Observed{Status: "ERROR", PowerState: 4, RebuildSeq: 2, Fault: "Rebuild of instance failed: image store unreachable"})
	if row := f.row(id); row.Status != "ERROR" || row.Fault == nil {
		t.Fatalf("failed rebuild: %s %+v", row.Status, row.Fault)
	}
	rebuild(alice, map[string]any{"imageRef": img1}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 3})
	if row := f.row(id); row.Status != "ACTIVE" || row.Fault != nil {
		t.Fatalf("rebuilt out of ERROR: %s %+v", row.Status, row.Fault)
	}

	acts := f.expect("GET", "/v2.1/servers/"+id+"/os-instance-actions", alice, "", nil, 200, "")["instanceActions"].([]any)
	n := 0
	for _, a := range acts {
		if a.(map[string]any)["action"] == "rebuild" {
			n++
		}
	}
	if n != 3 {
		t.Errorf("instance actions %v: want 3 rebuilds", acts)
	}
	// (All at one fixture time: the log's order among them is not the
	// point, each being there is.)
	got := f.events(id)
	for _, want := range []string{"rebuild ACTIVE>REBUILD by u-alice", "state REBUILD>ACTIVE by system", "rebuild SHUTOFF>REBUILD by u-alice",
		"state REBUILD>ERROR by system (Rebuild of instance failed: image store unreachable)", "rebuild ERROR>REBUILD by u-alice"} {
		if !strings.Contains(got, want) {
			t.Errorf("events lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "state REBUILD>ACTIVE by system"); n != 2 {
		t.Errorf("%d rebuilds ended in the events, want 2:\n%s", n, got)
	}

	// A stopped server, rebuilt (booted by its node to make it), is
	// stopped again, as Nova brings it back to its original state.
	f.action(alice, id, map[string]any{"os-stop": nil}, 202)
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, RebuildSeq: 3})
	rebuild(alice, map[string]any{"imageRef": img1}, 202)
	if row := f.row(id); row.Status != "REBUILD" || row.Want != "active" {
		t.Fatalf("stopped server rebuilding: %s want %s", row.Status, row.Want)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 4})
	if row := f.row(id); row.Status != "ACTIVE" || row.TaskState != "powering-off" || row.Want != "stopped" {
		t.Fatalf("rebuilt from stopped: %s %q want %s", row.Status, row.TaskState, row.Want)
	}
	f.report(id, Observed{Status: "SHUTOFF", PowerState: 4, RebuildSeq: 4})
	if row := f.row(id); row.Status != "SHUTOFF" || row.TaskState != "" || row.StopAfterRebuild {
		t.Fatalf("rebuilt from stopped, stopped again: %s %q %+v", row.Status, row.TaskState, row)
	}
	// Started and rebuilt again: it stays running.
	f.action(alice, id, map[string]any{"os-start": nil}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 4})
	rebuild(alice, map[string]any{"imageRef": img1}, 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: 5})
	if row := f.row(id); row.Status != "ACTIVE" || row.TaskState != "" || row.Want != "active" {
		t.Fatalf("rebuilt from active: %s %q want %s", row.Status, row.TaskState, row.Want)
	}
	// An admin's answer from 2.75 has the extended attributes a show
	// has, but the user data only as user_data (2.57): Nova's rebuild
	// view leaves OS-EXT-SRV-ATTR:user_data out (show_user_data=False).
	body = f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "2.75",
		map[string]any{"rebuild": map[string]any{"imageRef": img1}}, 202, "")
	if sv := body["server"].(map[string]any); sv["OS-EXT-SRV-ATTR:host"] == nil || !has(sv, "user_data") || has(sv, "OS-EXT-SRV-ATTR:user_data") {
		t.Fatalf("admin's rebuild at 2.75 answered %v", sv)
	}
}

// A server booted from a volume is not rebuilt (its root disk is the
// volume): refused saying so, as Nova before 2.93 does.
func TestRebuildRefusesVolumeBackedServer(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.stdFlavors()
	vol := f.volume(projA)
	id := f.server(alice, "vm", "imageRef", "", "block_device_mapping_v2", bfv("volume", vol, 0, false))
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "", map[string]any{"rebuild": map[string]any{"imageRef": img1}}, 400, "badRequest", "boots from volume")
	if row := f.row(id); row.TaskState != "" || row.RebuildSeq != 0 {
		t.Fatalf("refused rebuild changed the server: %+v", row)
	}
}

// plainAddrs checks a server view's addresses: with only version and
// addr (Nova's update and rebuild answers before 2.75), or with the
// OS-EXT-IPS attributes too.
func plainAddrs(t *testing.T, sv map[string]any, plain bool) {
	t.Helper()
	n := 0
	for _, list := range sv["addresses"].(map[string]any) {
		for _, a := range list.([]any) {
			n++
			_, ext := a.(map[string]any)["OS-EXT-IPS:type"]
			if ext == plain || a.(map[string]any)["addr"] == nil {
				t.Errorf("address %v (plain wanted: %v)", a, plain)
			}
		}
	}
	if n == 0 {
		t.Errorf("no addresses in %v", sv)
	}
}

// From 2.54 a rebuild replaces the server's key (the caller's keypair,
// null for none), from 2.57 its user data (base64, null for none): the
// rebuilt guest's config drive is built from them. Before, they are
// refused naming the field.
func TestRebuildReplacesKeyAndUserData(t *testing.T) {
	f := newFixture(t)
	f.stdFlavors()
	f.expect("POST", "/v2.1/os-keypairs", alice, "", map[string]any{"keypair": map[string]any{"name": "k", "public_key": testPublicKey}}, 200, "")
	id := f.server(alice, "vm", "user_data", "b2xk")
	rebuild := func(version string, arg map[string]any, status int, inMsg ...string) {
		t.Helper()
		f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: f.row(id).RebuildSeq})
		fault := ""
		if status == 400 {
			fault = "badRequest"
		}
		arg["imageRef"] = img1
		f.expect("POST", "/v2.1/servers/"+id+"/action", alice, version, map[string]any{"rebuild": arg}, status, fault, inMsg...)
	}
	rebuild("2.53", map[string]any{"key_name": "k"}, 400, "key_name")
	rebuild("2.56", map[string]any{"user_data": "bmV3"}, 400, "user_data")
	rebuild("2.54", map[string]any{"key_name": "nope"}, 400, "Invalid key_name")
	rebuild("2.57", map[string]any{"user_data": "not base64!"}, 400, "user_data")
	if row := f.row(id); row.KeyName != "" || row.UserData != "b2xk" || row.RebuildSeq != 0 {
		t.Fatalf("refused rebuilds changed the server: %+v", row)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, RebuildSeq: f.row(id).RebuildSeq})
	body := f.expect("POST", "/v2.1/servers/"+id+"/action", alice, "2.57",
		map[string]any{"rebuild": map[string]any{"imageRef": img1, "key_name": "k", "user_data": "bmV3"}}, 202, "")["server"].(map[string]any)
	if body["key_name"] != "k" || body["user_data"] != "bmV3" {
		t.Fatalf("rebuild answer at 2.57: key_name %v user_data %v", body["key_name"], body["user_data"])
	}
	if row := f.row(id); row.KeyName != "k" || row.PublicKey != testPublicKey || row.UserData != "bmV3" {
		t.Fatalf("after rebuild with key and user data: %q %q %q", row.KeyName, row.PublicKey, row.UserData)
	}
	// Not named: kept.
	rebuild("2.57", map[string]any{}, 202)
	if row := f.row(id); row.KeyName != "k" || row.UserData != "bmV3" {
		t.Fatalf("a rebuild not naming them changed them: %q %q", row.KeyName, row.UserData)
	}
	rebuild("2.57", map[string]any{"key_name": nil, "user_data": nil}, 202)
	if row := f.row(id); row.KeyName != "" || row.PublicKey != "" || row.UserData != "" {
		t.Fatalf("after rebuild unsetting them: %q %q %q", row.KeyName, row.PublicKey, row.UserData)
	}
}

// has says whether an answer's object has key k (null or not).
func has(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}
