package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/volume/volstate"
	"github.com/rackstack/rackstack/node/configdrive"
	"github.com/rackstack/rackstack/node/hypervisor"
)

const taggedVol = "0c3f1d7e-5a8b-4c2d-9e6f-112233445566"

// taggedState is a server with a tagged and an untagged NIC and a
// tagged and an untagged volume.
func taggedState(t *testing.T) func(context.Context) (*memdb.Txn, error) {
	st := store.NewMemState(t, netstate.Schema(), computestate.Schema(), volstate.Schema())
	for _, p := range []netstate.Port{
		{ID: "p1", Project: "proj", NetworkID: "net", DeviceID: "vm", MAC: "fa:16:3e:00:00:01"},
		{ID: "p2", Project: "proj", NetworkID: "net", DeviceID: "vm", MAC: "fa:16:3e:00:00:02"},
	} {
		st.Put(netstate.TablePorts, &p)
	}
	st.Put(computestate.TableServers, &computestate.Server{ID: "vm", Name: "vm", Project: "proj", Ports: []string{"p1", "p2"},
		NICTags: map[string]string{"p2": "second"}})
	st.Put(volstate.VolumeTable, &volstate.Volume{ID: taggedVol, Project: "proj", Size: 1, Status: volstate.StatusInUse,
		Attachments: []volstate.Attachment{{ID: "a1", ServerID: "vm", Device: "/dev/vdc", Tag: "db"}}})
	st.Put(volstate.VolumeTable, &volstate.Volume{ID: "untagged", Project: "proj", Size: 1, Status: volstate.StatusInUse,
		Attachments: []volstate.Attachment{{ID: "a2", ServerID: "vm", Device: "/dev/vdd"}}})
	return func(context.Context) (*memdb.Txn, error) { return st.DB.Txn(false), nil }
}

// The metadata service lists the tagged devices only, each at the
// address the guest's hypervisor reports (a disk matched by the first 20
// characters of its volume's id, its virtio serial); when the addresses
// cannot be had, the devices are listed without.
func TestMetadataDevices(t *testing.T) {
	from := netip.MustParseAddr("169.254.10.9")
	live := []hypervisor.GuestDevice{
		{Kind: hypervisor.DeviceNIC, MAC: "fa:16:3e:00:00:01", Address: "0000:00:03.0"},
		{Kind: hypervisor.DeviceNIC, MAC: "fa:16:3e:00:00:02", Address: "0000:00:04.0"},
		{Kind: hypervisor.DeviceDisk, Serial: taggedVol[:20], Address: "0000:02:00.0"},
		{Kind: hypervisor.DeviceDisk, Serial: "untagged", Address: "0000:03:00.0"},
	}
	var liveErr error
	s, err := New(Config{Ports: sources{from: "p1"}, State: taggedState(t),
		GuestDevices: func(_ context.Context, id string) ([]hypervisor.GuestDevice, error) {
			if id != "vm" {
				t.Errorf("devices of %s", id)
			}
			return live, liveErr
		}})
	if err != nil {
		t.Fatal(err)
	}
	devices := func() []configdrive.Device {
		t.Helper()
		code, body := get(t, s, from, "/openstack/latest/meta_data.json")
		var md struct {
			Devices []configdrive.Device `json:"devices"`
		}
		if err := json.Unmarshal([]byte(body), &md); code != 200 || err != nil {
			t.Fatalf("meta_data.json: %d %s", code, body)
		}
		return md.Devices
	}
	want := []configdrive.Device{
		{Type: "nic", Bus: "pci", Address: "0000:00:04.0", MAC: "fa:16:3e:00:00:02", Tags: []string{"second"}},
		{Type: "disk", Bus: "pci", Address: "0000:02:00.0", Serial: taggedVol, Tags: []string{"db"}},
	}
	if got := devices(); !reflect.DeepEqual(got, want) {
		t.Fatalf("devices %+v, want %+v", got, want)
	}
	live, liveErr = nil, errors.New("no guest")
	s.live.fresh = time.Nanosecond // the last read is not reused
	for i := range want {
		want[i].Address = ""
	}
	if got := devices(); !reflect.DeepEqual(got, want) {
		t.Fatalf("devices without the guest %+v, want %+v", got, want)
	}
}
