package volume

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
)

// withSecrets gives the service a keyring, as rackd gives it the
// cluster's; the test keeps it to open what was sealed.
func withSecrets(t *testing.T) (*secrets.Keyring, func(*Config)) {
	t.Helper()
	key, err := secrets.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := secrets.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return ring, func(c *Config) { c.Secrets = ring }
}

var luksSpec = map[string]any{"provider": "luks", "control_location": "front-end", "cipher": "aes-xts-plain64", "key_size": 256}

func (f *fixture) encryptedType(name string) string {
	f.t.Helper()
	typ := f.createType(map[string]any{"name": name})
	f.expect(http.StatusOK, "POST", "types/"+typ+"/encryption", admin, map[string]any{"encryption": luksSpec})
	return typ
}

// An encryption spec is what is built or a 400 naming the field; it is
// admin's, shown as Cinder shows it, and fixed while volumes use it.
func TestTypeEncryptionSpec(t *testing.T) {
	_, opt := withSecrets(t)
	f := newFixture(t, opt)
	typ := f.createType(map[string]any{"name": "secret"})
	if got := f.expect(http.StatusOK, "GET", "types/"+typ+"/encryption", admin, nil); len(got.Body) != 0 {
		t.Fatalf("encryption of a plain type %s", got.Raw)
	}
	f.expect(http.StatusNotFound, "GET", "types/"+typ+"/encryption/provider", admin, nil)
	spec := func(k string, v any) map[string]any {
		e := map[string]any{}
		for key, val := range luksSpec {
			e[key] = val
		}
		e[k] = v
		return map[string]any{"encryption": e}
	}
	f.expect(http.StatusForbidden, "POST", "types/"+typ+"/encryption", alice, spec("provider", "luks"))
	f.expect(http.StatusNotFound, "POST", "types/no-such-type/encryption", admin, spec("provider", "luks"))
	for _, bad := range []struct {
		field string
		value any
	}{
		{"provider", "plain"}, {"provider", "cryptsetup"}, {"provider", "luks2"}, {"control_location", "back-end"},
		{"cipher", "aes-cbc-essiv:sha256"}, {"key_size", 128}, {"key_size", "big"}, {"keys", "x"},
	} {
		r := f.expect(http.StatusBadRequest, "POST", "types/"+typ+"/encryption", admin, spec(bad.field, bad.value))
		if _, msg := fault(t, r); !strings.Contains(msg, bad.field) {
			t.Errorf("%s %v: %s does not name the field", bad.field, bad.value, msg)
		}
	}
	f.expect(http.StatusBadRequest, "POST", "types/"+typ+"/encryption", admin, map[string]any{"encryption": map[string]any{"cipher": "aes-xts-plain64"}})

	// Tempest's spec: Cinder's legacy class name for LUKS.
	created := f.expect(http.StatusOK, "POST", "types/"+typ+"/encryption", admin, spec("provider", "LuksEncryptor")).Body["encryption"].(map[string]any)
	if created["provider"] != "LuksEncryptor" || created["key_size"] != float64(256) || created["cipher"] != "aes-xts-plain64" ||
		created["control_location"] != "front-end" || created["volume_type_id"] != typ || created["encryption_id"] == "" || len(created) != 6 {
		t.Fatalf("created %v", created)
	}
	f.expect(http.StatusBadRequest, "POST", "types/"+typ+"/encryption", admin, spec("provider", "luks"))
	shown := f.expect(http.StatusOK, "GET", "types/"+typ+"/encryption", admin, nil).Body
	if shown["provider"] != "LuksEncryptor" || shown["encryption_id"] != created["encryption_id"] {
		t.Fatalf("shown %v", shown)
	}
	if got := f.expect(http.StatusOK, "GET", "types/"+typ+"/encryption/cipher", admin, nil).Body; got["cipher"] != "aes-xts-plain64" || len(got) != 1 {
		t.Fatalf("one key %v", got)
	}
	f.expect(http.StatusNotFound, "GET", "types/"+typ+"/encryption/colour", admin, nil)
	enc := "types/" + typ + "/encryption/" + created["encryption_id"].(string)
	f.expect(http.StatusBadRequest, "PUT", enc, admin, map[string]any{"encryption": map[string]any{"control_location": "back-end"}})
	f.expect(http.StatusOK, "PUT", enc, admin, map[string]any{"encryption": map[string]any{"key_size": 512, "provider": "nova.volume.encryptors.luks.LuksEncryptor"}})
	if got := f.expect(http.StatusOK, "GET", "types/"+typ+"/encryption", admin, nil).Body; got["key_size"] != float64(512) || got["cipher"] != "aes-xts-plain64" {
		t.Fatalf("updated %v", got)
	}

	// In use, the spec is fixed: the volume's header was made with it.
	vol := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "secret"})["id"].(string)
	f.expect(http.StatusBadRequest, "PUT", enc, admin, map[string]any{"encryption": map[string]any{"key_size": 256}})
	f.expect(http.StatusBadRequest, "DELETE", enc, admin, nil)
	plain := f.createType(map[string]any{"name": "plain"})
	f.createVolume(alice, map[string]any{"size": 1, "volume_type": "plain"})
	f.expect(http.StatusBadRequest, "POST", "types/"+plain+"/encryption", admin, spec("provider", "luks"))
	f.expect(http.StatusAccepted, "DELETE", "volumes/"+vol, alice, nil)
	f.waitGone("volumes/" + vol)
	f.expect(http.StatusAccepted, "DELETE", enc, admin, nil)
	if got := f.expect(http.StatusOK, "GET", "types/"+typ+"/encryption", admin, nil); len(got.Body) != 0 {
		t.Fatalf("deleted encryption %s", got.Raw)
	}
}

// Without a cluster key there is nowhere safe to keep volume keys:
// encryption is refused, not stored.
func TestTypeEncryptionWithoutKeysIs501(t *testing.T) {
	f := newFixture(t)
	typ := f.createType(map[string]any{"name": "secret"})
	f.expect(http.StatusNotImplemented, "POST", "types/"+typ+"/encryption", admin, map[string]any{"encryption": luksSpec})
}

// volumeRow is the stored row of volume id.
func (f *fixture) volumeRow(id string) *volstate.Volume {
	f.t.Helper()
	v := store.Get[volstate.Volume](f.local.State.Txn(), volstate.VolumeTable, id)
	if v == nil {
		f.t.Fatalf("no volume %s", id)
	}
	return v
}

// openKey opens a row's sealed key bound to the row's id.
func openKey(t *testing.T, ring *secrets.Keyring, sealed, id string) string {
	t.Helper()
	if !secrets.Sealed(sealed) {
		t.Fatalf("key of %s stored in clear", id)
	}
	plain, err := ring.Open(sealed, []byte(id))
	if err != nil {
		t.Fatalf("open the key of %s: %v", id, err)
	}
	return string(plain)
}

// A volume of an encrypted type gets its own random key, sealed at rest
// and never shown; its copies keep it (snapshots, clones, backups and
// restores), and what would change whether data is encrypted is refused.
func TestEncryptedVolumeKeys(t *testing.T) {
	ring, opt := withSecrets(t)
	f := newFixture(t, opt)
	f.encryptedType("secret")
	f.createType(map[string]any{"name": "plain"})

	resp := f.expect(http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "secret"}})
	v := resp.Body["volume"].(map[string]any)
	id := v["id"].(string)
	row := f.volumeRow(id)
	key := openKey(t, ring, row.Key, id)
	if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		t.Fatalf("volume key is not 256 random bits in hex: %d characters", len(key))
	}
	shown := f.showVolume(alice, id)
	// The key's id is Cinder's from 3.64, which is not served: below it
	// a client's schema has no such field.
	if _, has := shown["encryption_key_id"]; shown["encrypted"] != true || has || row.KeyID == "" {
		t.Fatalf("volume shows encrypted %v, key id %v", shown["encrypted"], shown["encryption_key_id"])
	}
	for _, raw := range []string{string(resp.Raw), string(f.expect(http.StatusOK, "GET", "volumes/"+id, admin, nil).Raw),
		string(f.expect(http.StatusOK, "GET", "volumes/detail", admin, nil).Raw)} {
		if strings.Contains(raw, key) || strings.Contains(raw, row.Key) {
			t.Fatal("an answer carries the volume's key")
		}
	}
	other := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "secret"})["id"].(string)
	if openKey(t, ring, f.volumeRow(other).Key, other) == key {
		t.Fatal("two volumes have one key")
	}
	if plain := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "plain"}); plain["encrypted"] != false || plain["encryption_key_id"] != nil {
		t.Fatalf("plain volume %v", plain)
	}

	// Copies are the same ciphertext: they keep the key, under new ids.
	clone := f.createVolume(alice, map[string]any{"source_volid": id})["id"].(string)
	if c := f.volumeRow(clone); openKey(t, ring, c.Key, clone) != key || c.KeyID == row.KeyID {
		t.Fatalf("clone's key id %s, source's %s", c.KeyID, row.KeyID)
	}
	snap := f.expect(http.StatusAccepted, "POST", "snapshots", alice, map[string]any{"snapshot": map[string]any{"volume_id": id}}).Body["snapshot"].(map[string]any)["id"].(string)
	f.waitStatus(alice, "snapshots/"+snap, "snapshot", "available")
	fromSnap := f.createVolume(alice, map[string]any{"snapshot_id": snap})["id"].(string)
	if openKey(t, ring, f.volumeRow(fromSnap).Key, fromSnap) != key {
		t.Fatal("a volume from the snapshot has another key")
	}
	f.expect(http.StatusBadRequest, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"source_volid": id, "volume_type": "plain"}})
	plainVol := f.createVolume(alice, map[string]any{"size": 1, "volume_type": "plain"})["id"].(string)
	f.expect(http.StatusBadRequest, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"source_volid": plainVol, "volume_type": "secret"}})
	f.testImage()
	// Made from an image, it gets a key of its own (the image is written
	// through its LUKS layer by Data.ImageToVolume).
	fromImage := f.expect(http.StatusAccepted, "POST", "volumes", alice, map[string]any{"volume": map[string]any{"imageRef": imageID, "size": 2, "volume_type": "secret"}}).Body["volume"].(map[string]any)["id"].(string)
	if k := f.volumeRow(fromImage).Key; k == "" || openKey(t, ring, k, fromImage) == key {
		t.Fatal("a volume made from an image has no key of its own")
	}

	// Retype and upload would change what is encrypted: refused.
	f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-retype": map[string]any{"new_type": "plain"}})
	f.expect(http.StatusBadRequest, "POST", "volumes/"+id+"/action", alice, map[string]any{"os-volume_upload_image": map[string]any{"image_name": "x"}})

	// A backup keeps the key; a restore into a new volume gets it, into
	// an existing encrypted one replaces that one's key, and into an
	// unencrypted one is refused.
	backup := f.createBackup(alice, map[string]any{"volume_id": id})
	f.waitStatus(alice, "backups/"+backup, "backup", "available")
	b := store.Get[volstate.Backup](f.local.State.Txn(), volstate.BackupTable, backup)
	if openKey(t, ring, b.Key, backup) != key {
		t.Fatal("the backup does not keep the volume's key")
	}
	if raw := f.expect(http.StatusOK, "GET", "backups/"+backup, alice, nil).Raw; strings.Contains(string(raw), key) || strings.Contains(string(raw), b.Key) {
		t.Fatal("the backup's answer carries the key")
	}
	f.expect(http.StatusBadRequest, "GET", "backups/"+backup+"/export_record", admin, nil)
	restored := f.expect(http.StatusAccepted, "POST", "backups/"+backup+"/restore", alice, map[string]any{"restore": map[string]any{}}).Body["restore"].(map[string]any)["volume_id"].(string)
	f.waitStatus(alice, "volumes/"+restored, "volume", "available")
	if r := f.volumeRow(restored); openKey(t, ring, r.Key, restored) != key {
		t.Fatal("the restored volume has another key")
	}
	f.expect(http.StatusBadRequest, "POST", "backups/"+backup+"/restore", alice, map[string]any{"restore": map[string]any{"volume_id": plainVol}})
	f.expect(http.StatusAccepted, "POST", "backups/"+backup+"/restore", alice, map[string]any{"restore": map[string]any{"volume_id": other}})
	f.waitStatus(alice, "volumes/"+other, "volume", "available")
	if openKey(t, ring, f.volumeRow(other).Key, other) != key {
		t.Fatal("a volume restored over keeps its old key, which does not open the backup's header")
	}
	plainBackup := f.createBackup(alice, map[string]any{"volume_id": plainVol})
	f.waitStatus(alice, "backups/"+plainBackup, "backup", "available")
	f.expect(http.StatusBadRequest, "POST", "backups/"+plainBackup+"/restore", alice, map[string]any{"restore": map[string]any{"volume_id": other}})
}
