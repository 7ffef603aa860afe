package volumes

import (
	"context"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// An encrypted volume is plugged with its key opened from the sealed
// row, through a LUKS layer of its type's cipher; its header is written
// only when the volume is blank. A node that cannot open keys gives the
// volume back instead of plugging ciphertext.
func TestEncryptedVolumeIsPluggedWithItsKey(t *testing.T) {
	w := newWorld(t)
	w.vm("s1")
	key, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	blank := map[string]bool{}
	w.agent.Unseal = ring.Open
	w.agent.Blank = func(_ context.Context, id string) (bool, error) { return blank[id], nil }

	w.propose(volstate.CmdCreateType, volstate.CreateTypeCmd{Row: volstate.Type{ID: "t1", Name: "secret", Public: true,
		Encryption: &volstate.Encryption{ID: "e1", Provider: "luks", Cipher: "aes-xts-plain64", KeySize: 512, ControlLocation: "front-end"}}})
	const fresh, used, stranded = "aaaaaaaa-2222-3333-4444-555555555555", "bbbbbbbb-2222-3333-4444-555555555555", "cccccccc-2222-3333-4444-555555555555"
	blank[fresh] = true
	for _, id := range []string{fresh, used, stranded} {
		sealed, err := ring.Seal([]byte("pass-"+id), []byte(id))
		if err != nil {
			t.Fatal(err)
		}
		w.propose(volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: volstate.Volume{ID: id, Project: "p", Size: 1,
			Status: volstate.StatusAvailable, TypeID: "t1", Key: sealed, KeyID: "k-" + id}})
		w.exports.size[id] = volstate.GiB
	}
	for _, id := range []string{fresh, used} {
		w.propose(volstate.CmdAttach, volstate.AttachCmd{VolumeID: id, Attachment: volstate.Attachment{ID: "att-" + id, ServerID: "s1", Host: "n1"}})
	}
	w.pass()
	for id, format := range map[string]bool{fresh: true, used: false} {
		d, ok := w.host.HotDisk("s1", DiskID(id))
		if !ok || d.Encryption == nil {
			t.Fatalf("%s plugged as %+v (%v): no encryption", id, d, ok)
		}
		if e := d.Encryption; string(e.Passphrase) != "pass-"+id || e.CipherAlg != "aes-256" || e.Format != format {
			t.Fatalf("%s plugged with cipher %s, format %v, the right key %v", id, e.CipherAlg, e.Format, string(e.Passphrase) == "pass-"+id)
		}
		if got := w.volume(id).Status; got != volstate.StatusInUse {
			t.Fatalf("%s: %s", id, got)
		}
	}

	w.agent.Unseal = nil
	w.propose(volstate.CmdAttach, volstate.AttachCmd{VolumeID: stranded, Attachment: volstate.Attachment{ID: "att-s", ServerID: "s1", Host: "n1"}})
	w.pass()
	if v := w.volume(stranded); v.Status != volstate.StatusAvailable || !strings.Contains(v.Reason, "encrypted") {
		t.Fatalf("attach without keys: %s %q", v.Status, v.Reason)
	}
	if _, ok := w.host.HotDisk("s1", DiskID(stranded)); ok {
		t.Fatal("an encrypted volume was plugged without its key")
	}
}

// A running boot volume's limits follow its type's QoS spec, as a
// plugged disk's do: set when the spec changes, cleared when it goes.
func TestBootVolumeLimitsFollowTheSpec(t *testing.T) {
	w := newWorld(t)
	const vol = "dddddddd-2222-3333-4444-555555555555"
	w.propose(volstate.CmdCreateQoS, volstate.CreateQoSCmd{Row: volstate.QoSSpec{ID: "q1", Name: "cap", Consumer: volstate.ConsumerFrontEnd,
		Specs: map[string]string{volstate.QoSReadIOPS: "100"}}})
	w.propose(volstate.CmdCreateType, volstate.CreateTypeCmd{Row: volstate.Type{ID: "t1", Name: "capped", Public: true, QoSSpecID: "q1"}})
	w.propose(volstate.CmdCreateVolume, volstate.CreateVolumeCmd{Row: volstate.Volume{ID: vol, Project: "p", Size: 1, Status: volstate.StatusAvailable, TypeID: "t1"}})
	w.exports.size[vol] = volstate.GiB
	w.propose(volstate.CmdAttach, volstate.AttachCmd{VolumeID: vol, Attachment: volstate.Attachment{ID: "s7", ServerID: "s7", Host: "n1", Device: "/dev/vda", Root: true}})
	w.vm("s7")
	w.pass()
	if got, _ := w.host.BootDiskLimits("s7"); got != (hypervisor.IOLimits{ReadIOPS: 100}) {
		t.Fatalf("boot disk limits %+v", got)
	}
	w.propose(volstate.CmdPutQoS, volstate.PutQoSCmd{Row: volstate.QoSSpec{ID: "q1", Name: "cap", Consumer: volstate.ConsumerBoth,
		Specs: map[string]string{volstate.QoSTotalBytes: "2097152"}}, Revision: 1})
	w.pass()
	if got, _ := w.host.BootDiskLimits("s7"); got != (hypervisor.IOLimits{TotalBytes: 2 << 20}) {
		t.Fatalf("after the spec changed: %+v", got)
	}
	w.propose(volstate.CmdDeleteQoS, volstate.DeleteQoSCmd{ID: "q1", Force: true})
	w.pass()
	if got, _ := w.host.BootDiskLimits("s7"); !got.IsZero() {
		t.Fatalf("after the spec went: %+v", got)
	}
}
