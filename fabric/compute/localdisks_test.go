package compute

import (
	"slices"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// blankLocal is a block_device_mapping_v2 entry for an ephemeral or swap
// disk, with the extra attributes given.
func blankLocal(extra ...any) map[string]any {
	m := map[string]any{"source_type": "blank", "destination_type": "local", "boot_index": -1}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

// A flavor's ephemeral and swap sizes give a server an ext4 ephemeral0
// and a swap disk, after the root disk; the metadata's mapping names
// them on vdb and vdc, and a volume attached later skips them and the
// config drive.
func TestLocalDisksFromFlavor(t *testing.T) {
	f := newFixtureWith(t, volstate.Schema())
	f.flavor("eph", "m1.eph", 1, 512, 1, "OS-FLV-EXT-DATA:ephemeral", 2, "swap", 128)
	id := f.server(alice, "vm", "flavorRef", "eph")
	want := []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 2048, Format: "ext4"}, {Name: "swap", SizeMB: 128, Format: "swap"}}
	if got := f.row(id).LocalDisks; !slices.Equal(got, want) {
		t.Fatalf("local disks %+v, want %+v", got, want)
	}
	m := computestate.DeviceMapping(f.row(id))
	if m["ephemeral0"] != "/dev/vdb" || m["swap"] != "/dev/vdc" || m["root"] != "/dev/vda" || m["ami"] != "vda" {
		t.Fatalf("mapping %v", m)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	vol := f.volume(projA)
	att := f.expect("POST", "/v2.1/servers/"+id+"/os-volume_attachments", alice, "", map[string]any{"volumeAttachment": map[string]any{"volumeId": vol}}, 200, "")["volumeAttachment"].(map[string]any)
	if att["device"] != "/dev/vde" {
		t.Fatalf("attachment on %v, want /dev/vde (vdb, vdc local, vdd the config drive)", att["device"])
	}

	// A flavor without them gives none.
	f.stdFlavors()
	if got := f.row(f.server(alice, "plain")).LocalDisks; got != nil {
		t.Fatalf("local disks of a plain flavor %+v", got)
	}
}

// block_device_mapping_v2's blank local entries make the disks, with
// their guest_format and sizes, instead of the flavor's ephemeral0;
// Nova's checks refuse what the flavor does not allow, naming it.
func TestLocalDisksFromBlockDeviceMapping(t *testing.T) {
	f := newFixture(t)
	f.flavor("eph", "m1.eph", 1, 512, 1, "OS-FLV-EXT-DATA:ephemeral", 3, "swap", 256)
	f.stdFlavors()
	create := func(flavor string, bdms ...any) resp {
		t.Helper()
		return f.do("POST", "/v2.1/servers", alice, "", map[string]any{"server": map[string]any{
			"name": "vm", "imageRef": img1, "flavorRef": flavor, "networks": []any{map[string]any{"uuid": netA}},
			"block_device_mapping_v2": bdms}})
	}
	// Three local disks at most, the image's root disk among them.
	r := create("eph", blankLocal("guest_format", "ext3", "volume_size", 1), blankLocal("guest_format", "vfat", "volume_size", 2))
	if r.code != 202 {
		t.Fatalf("create: %d %v", r.code, r.body)
	}
	want := []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 1024, Format: "ext3"}, {Name: "ephemeral1", SizeMB: 2048, Format: "vfat"},
		{Name: "swap", SizeMB: 256, Format: "swap"}}
	if got := f.row(r.body["server"].(map[string]any)["id"].(string)).LocalDisks; !slices.Equal(got, want) {
		t.Fatalf("local disks %+v, want %+v", got, want)
	}
	r = create("eph", blankLocal("guest_format", "swap", "volume_size", 64))
	want = []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 3072, Format: "ext4"}, {Name: "swap", SizeMB: 64, Format: "swap"}}
	if got := f.row(r.body["server"].(map[string]any)["id"].(string)).LocalDisks; r.code != 202 || !slices.Equal(got, want) {
		t.Fatalf("create: %d %v %+v, want %+v", r.code, r.body, got, want)
	}
	// One without a size takes the flavor's; without a format, ext4; the
	// flavor's swap stays.
	r = create("eph", blankLocal())
	if got := f.row(r.body["server"].(map[string]any)["id"].(string)).LocalDisks; r.code != 202 ||
		!slices.Equal(got, []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 3072, Format: "ext4"}, {Name: "swap", SizeMB: 256, Format: "swap"}}) {
		t.Fatalf("create: %d %v %+v", r.code, r.body, got)
	}

	for _, c := range []struct {
		flavor string
		bdms   []any
		words  string
	}{
		{"eph", []any{blankLocal("volume_size", 2), blankLocal("volume_size", 2)}, "Ephemeral disks requested are larger than the instance type allows"},
		{"eph", []any{blankLocal(), blankLocal("volume_size", 1)}, "Ephemeral disks requested are larger"},
		{"small", []any{blankLocal("volume_size", 1)}, "Ephemeral disks requested are larger"},
		{"eph", []any{blankLocal("guest_format", "swap", "volume_size", 512)}, "Swap drive requested is larger than instance type allows"},
		{"eph", []any{blankLocal("guest_format", "swap"), blankLocal("guest_format", "swap")}, "More than one swap drive requested"},
		{"eph", []any{blankLocal("volume_size", 1), blankLocal("volume_size", 1), blankLocal("guest_format", "swap")}, "more local devices than the limit allows"},
		{"small", []any{blankLocal()}, "block_device_mapping_v2.volume_size"},
		{"eph", []any{blankLocal("guest_format", "ntfs")}, "block_device_mapping_v2.guest_format"},
		{"eph", []any{blankLocal("guest_format", 4)}, "block_device_mapping_v2.guest_format"},
		{"eph", []any{blankLocal("boot_index", 0)}, "Boot sequence"},
		{"eph", []any{blankLocal("uuid", img1)}, "block_device_mapping_v2.uuid"},
		{"eph", []any{map[string]any{"source_type": "blank", "destination_type": "volume", "volume_size": 1, "guest_format": "ext4"}}, "block_device_mapping_v2.guest_format"},
		{"eph", []any{map[string]any{"source_type": "volume", "destination_type": "local", "uuid": img1}}, "block_device_mapping_v2.destination_type"},
	} {
		r := create(c.flavor, c.bdms...)
		msg, _ := r.body["badRequest"].(map[string]any)["message"].(string)
		if r.code != 400 || !strings.Contains(msg, c.words) {
			t.Errorf("%v on %s: %d %v, want 400 saying %q", c.bdms, c.flavor, r.code, r.body, c.words)
		}
	}
}

// A server with local disks is resized on its host with them (not to a
// flavor too small for them), rebuilt with or without them preserved,
// and refused a cold or live migration, which would have to copy them.
func TestLocalDisksFollowTheServer(t *testing.T) {
	f := newFixture(t)
	f.withSnapshots()
	f.flavor("eph", "m1.eph", 1, 512, 1, "OS-FLV-EXT-DATA:ephemeral", 2, "swap", 128)
	f.flavor("eph1", "m1.eph1", 1, 512, 1, "OS-FLV-EXT-DATA:ephemeral", 1)
	f.flavor("eph4", "m1.eph4", 2, 768, 2, "OS-FLV-EXT-DATA:ephemeral", 4)
	id := f.server(alice, "vm", "flavorRef", "eph")
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1})
	disks := f.row(id).LocalDisks

	f.action(admin, id, map[string]any{"migrate": nil}, 409, "local ephemeral or swap disks")
	f.expect("POST", "/v2.1/servers/"+id+"/action", admin, "2.25", map[string]any{"os-migrateLive": map[string]any{"host": nil, "block_migration": "auto"}},
		409, "conflictingRequest", "local ephemeral or swap disks")
	f.action(alice, id, resizeBody("eph1"), 400, "Unable to resize disk down")
	// Resized as Nova's libvirt driver does: the one ephemeral disk
	// grows to the flavor's, the swap is the new flavor's (none here); a
	// revert gives the old ones back, a confirm keeps the new.
	resized := []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 4096, Format: "ext4"}}
	f.action(alice, id, resizeBody("eph4"), 202)
	if got := f.row(id).LocalDisks; !slices.Equal(got, resized) {
		t.Fatalf("local disks after resize %+v, want %+v", got, resized)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: f.row(id).ResizeSeq})
	f.action(alice, id, map[string]any{"revertResize": nil}, 202)
	if got := f.row(id); !slices.Equal(got.LocalDisks, disks) || got.OldLocalDisks != nil {
		t.Fatalf("local disks after the revert %+v (old %+v), want %+v", got.LocalDisks, got.OldLocalDisks, disks)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: f.row(id).ResizeSeq})
	f.action(alice, id, resizeBody("eph4"), 202)
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: f.row(id).ResizeSeq})
	f.action(alice, id, map[string]any{"confirmResize": nil}, 204)
	if got := f.row(id); !slices.Equal(got.LocalDisks, resized) || got.OldLocalDisks != nil {
		t.Fatalf("local disks after the confirm %+v (old %+v)", got.LocalDisks, got.OldLocalDisks)
	}
	disks = resized

	f.action(alice, id, map[string]any{"rebuild": map[string]any{"imageRef": img1, "preserve_ephemeral": true}}, 202)
	if row := f.row(id); !row.PreserveEphemeral || !slices.Equal(row.LocalDisks, disks) {
		t.Fatalf("rebuild preserving: %+v", row)
	}
	f.report(id, Observed{Status: "ACTIVE", PowerState: 1, ResizeSeq: f.row(id).ResizeSeq, RebuildSeq: f.row(id).RebuildSeq})
	f.action(alice, id, map[string]any{"rebuild": map[string]any{"imageRef": img1}}, 202)
	if f.row(id).PreserveEphemeral {
		t.Fatal("a rebuild without preserve_ephemeral preserves")
	}
}

// A server of a flavor without ephemeral disk resized to one with gets
// its ephemeral0; a swap disk follows the flavor.
func TestResizedLocalDisks(t *testing.T) {
	sv := &Server{}
	got := resizedLocalDisks(sv, Flavor{Ephemeral: 2, Swap: 64})
	want := []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 2048, Format: "ext4"}, {Name: "swap", SizeMB: 64, Format: "swap"}}
	if !slices.Equal(got, want) {
		t.Fatalf("%+v, want %+v", got, want)
	}
	// Two ephemeral disks keep their sizes (Nova resizes one only).
	sv.LocalDisks = []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 1024, Format: "ext4"}, {Name: "ephemeral1", SizeMB: 1024, Format: "vfat"}}
	if got := resizedLocalDisks(sv, Flavor{Ephemeral: 4}); !slices.Equal(got, sv.LocalDisks) {
		t.Fatalf("%+v", got)
	}
}
