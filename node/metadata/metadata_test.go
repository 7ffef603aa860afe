package metadata

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// sources is the dataplane's address → port mapping.
type sources map[netip.Addr]string

func (s sources) MetadataPort(a netip.Addr) (string, bool) { id, ok := s[a]; return id, ok }

var (
	vm1Addr = netip.MustParseAddr("169.254.10.1")
	vm2Addr = netip.MustParseAddr("169.254.10.2")
)

func newServer(t *testing.T) *Server {
	st := store.NewMemState(t, netstate.Schema(), computestate.Schema())
	st.Put(netstate.TableNetworks, &netstate.Network{ID: "net", Project: "proj", SegmentationID: 100, MTU: 1450})
	for _, p := range []netstate.Port{
		{ID: "p1", Project: "proj", NetworkID: "net", DeviceID: "vm1", MAC: "fa:16:3e:00:00:01", FixedIPs: []netstate.FixedIP{{SubnetID: "s", IP: "10.0.0.5"}}},
		{ID: "p2", Project: "proj", NetworkID: "net", DeviceID: "vm2", MAC: "fa:16:3e:00:00:02", FixedIPs: []netstate.FixedIP{{SubnetID: "s", IP: "10.0.0.6"}}},
	} {
		st.Put(netstate.TablePorts, &p)
	}
	st.Put(netstate.TableFloatingIPs, &netstate.FloatingIP{ID: "f", Project: "proj", NetworkID: "ext", IP: "172.24.4.9", FixedPortID: "p1", FixedIP: "10.0.0.5"})
	st.Put(computestate.TableServers, &computestate.Server{ID: "vm1", Name: "web one", Project: "proj", AZ: "nova", Ports: []string{"p1"},
		KeyName: "k", PublicKey: "ssh-ed25519 AAAA one", UserData: base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho one\n")),
		Metadata: map[string]string{"role": "web"}, Flavor: computestate.Flavor{Name: "m1.tiny"},
		LocalDisks: []computestate.LocalDisk{{Name: "ephemeral0", SizeMB: 1024, Format: "ext4"}, {Name: "swap", SizeMB: 64, Format: "swap"}}})
	st.Put(computestate.TableServers, &computestate.Server{ID: "vm2", Name: "two", HostnameSet: "db2.example.com", Project: "proj", Ports: []string{"p2"}})
	s, err := New(Config{
		Ports: sources{vm1Addr: "p1", vm2Addr: "p2"},
		State: func(context.Context) (*memdb.Txn, error) { return st.DB.Txn(false), nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get asks as the guest whose port sends from addr.
func get(t *testing.T, s *Server, from netip.Addr, path string, header ...string) (int, string) {
	t.Helper()
	r := httptest.NewRequest("GET", "http://169.254.169.254"+path, nil)
	r.RemoteAddr = netip.AddrPortFrom(from, 40000).String()
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestOpenStackMetadataIsTheConfigDrives(t *testing.T) {
	s := newServer(t)
	code, body := get(t, s, vm1Addr, "/openstack/latest/meta_data.json")
	if code != http.StatusOK {
		t.Fatalf("meta_data.json: %d %s", code, body)
	}
	var md map[string]any
	if err := json.Unmarshal([]byte(body), &md); err != nil {
		t.Fatal(err)
	}
	if md["uuid"] != "vm1" || md["hostname"] != "web-one" || md["public_keys"].(map[string]any)["k"] != "ssh-ed25519 AAAA one" || md["meta"].(map[string]any)["role"] != "web" {
		t.Fatalf("meta_data.json: %v", md)
	}
	if code, body := get(t, s, vm1Addr, "/openstack/latest/user_data"); code != 200 || body != "#!/bin/sh\necho one\n" {
		t.Fatalf("user_data: %d %q", code, body)
	}
	code, body = get(t, s, vm1Addr, "/openstack/latest/network_data.json")
	if code != 200 || !strings.Contains(body, `"ethernet_mac_address":"fa:16:3e:00:00:01"`) || !strings.Contains(body, `"mtu":1450`) {
		t.Fatalf("network_data.json: %d %s", code, body)
	}
	if code, body := get(t, s, vm1Addr, "/openstack/latest/vendor_data.json"); code != 200 || body != "{}" {
		t.Fatalf("vendor_data.json: %d %s", code, body)
	}
	if code, body := get(t, s, vm1Addr, "/openstack"); code != 200 || !strings.Contains(body, "latest") || strings.Contains(body, "latest/") {
		t.Fatalf("versions: %d %q", code, body)
	}
	if code, body := get(t, s, vm1Addr, "/openstack/latest/"); code != 200 || !strings.Contains(body, "meta_data.json\n") {
		t.Fatalf("latest: %d %q", code, body)
	}
	// vm2's hostname is the one asked for (2.90), not its name's.
	if code, body := get(t, s, vm2Addr, "/openstack/latest/meta_data.json"); code != 200 || !strings.Contains(body, `"hostname":"db2.example.com"`) {
		t.Fatalf("vm2 meta_data.json: %d %s", code, body)
	}
	if code, body := get(t, s, vm2Addr, "/latest/meta-data/hostname"); code != 200 || body != "db2.example.com" {
		t.Fatalf("vm2 EC2 hostname: %d %q", code, body)
	}
	// vm2 has no user data.
	if code, _ := get(t, s, vm2Addr, "/openstack/latest/user_data"); code != http.StatusNotFound {
		t.Fatalf("vm2 user_data: %d", code)
	}
}

func TestEC2Metadata(t *testing.T) {
	s := newServer(t)
	for path, want := range map[string]string{
		"/latest/meta-data/instance-id":                 "vm1",
		"/latest/meta-data/local-ipv4":                  "10.0.0.5",
		"/latest/meta-data/public-ipv4":                 "172.24.4.9",
		"/latest/meta-data/public-keys/0/openssh-key":   "ssh-ed25519 AAAA one",
		"/latest/meta-data/placement/availability-zone": "nova",
		"/latest/user-data":                             "#!/bin/sh\necho one\n",
		"/latest/meta-data/instance-type":               "m1.tiny",
		// Nova's block-device-mapping: the root, then the local disks.
		"/latest/meta-data/block-device-mapping/ami":        "vda",
		"/latest/meta-data/block-device-mapping/root":       "/dev/vda",
		"/latest/meta-data/block-device-mapping/ephemeral0": "/dev/vdb",
		"/latest/meta-data/block-device-mapping/swap":       "/dev/vdc",
	} {
		if code, body := get(t, s, vm1Addr, path); code != 200 || body != want {
			t.Errorf("%s: %d %q, want %q", path, code, body, want)
		}
	}
	code, body := get(t, s, vm1Addr, "/latest/meta-data/")
	if code != 200 || !strings.Contains(body, "instance-id\n") || !strings.Contains(body, "placement/") {
		t.Fatalf("listing: %d %q", code, body)
	}
	if code, body := get(t, s, vm1Addr, "/latest/meta-data/block-device-mapping/"); code != 200 || body != "ami\nephemeral0\nroot\nswap" {
		t.Fatalf("block-device-mapping: %d %q", code, body)
	}
	if code, body := get(t, s, vm2Addr, "/latest/meta-data/block-device-mapping/"); code != 200 || body != "ami\nroot" {
		t.Fatalf("block-device-mapping without local disks: %d %q", code, body)
	}
}

// TestTheSourceAloneSaysWhoAsks: a guest is answered about its own server
// whatever it claims, and an address no port has gets nothing.
func TestTheSourceAloneSaysWhoAsks(t *testing.T) {
	s := newServer(t)
	_, body := get(t, s, vm2Addr, "/latest/meta-data/instance-id", "X-Forwarded-For", vm1Addr.String(), "X-Instance-ID", "vm1")
	if body != "vm2" {
		t.Fatalf("vm2 claiming to be vm1 was answered as %q", body)
	}
	if code, _ := get(t, s, netip.MustParseAddr("169.254.10.99"), "/latest/meta-data/instance-id"); code != http.StatusNotFound {
		t.Fatalf("unknown source: %d", code)
	}
	if code, _ := get(t, s, netip.MustParseAddr("10.0.0.5"), "/latest/meta-data/instance-id"); code != http.StatusNotFound {
		t.Fatalf("a guest's own address, not rewritten by the dataplane: %d", code)
	}
}

// A guest posts its password once (Nova's server password); it reads it
// back, the other guest does not see it; too large is refused; posting
// again before its owner clears it is a conflict.
func TestGuestPostsItsPassword(t *testing.T) {
	st := store.NewMemState(t, netstate.Schema(), computestate.Schema())
	st.Put(netstate.TablePorts, &netstate.Port{ID: "p1", Project: "proj", NetworkID: "net", DeviceID: "vm1", MAC: "fa:16:3e:00:00:01"})
	st.Put(netstate.TablePorts, &netstate.Port{ID: "p2", Project: "proj", NetworkID: "net", DeviceID: "vm2", MAC: "fa:16:3e:00:00:02"})
	st.Put(computestate.TableServers, &computestate.Server{ID: "vm1", Name: "one", Project: "proj", Ports: []string{"p1"}})
	st.Put(computestate.TableServers, &computestate.Server{ID: "vm2", Name: "two", HostnameSet: "db2.example.com", Project: "proj", Ports: []string{"p2"}})
	var kept []string
	s, err := New(Config{
		Ports: sources{vm1Addr: "p1", vm2Addr: "p2"},
		State: func(context.Context) (*memdb.Txn, error) { return st.DB.Txn(false), nil },
		SetPassword: func(ctx context.Context, id, pw string) error {
			if err := ctx.Err(); err != nil {
				return err // the proposal would be abandoned
			}
			kept = append(kept, id+"="+pw)
			sv := *store.Get[computestate.Server](st.DB.Txn(false), computestate.TableServers, id)
			sv.Password = pw
			st.Put(computestate.TableServers, &sv)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	post := func(from netip.Addr, path, body string) int {
		t.Helper()
		r := httptest.NewRequest("POST", "http://169.254.169.254"+path, strings.NewReader(body))
		r.RemoteAddr = netip.AddrPortFrom(from, 40000).String()
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w.Code
	}
	if code := post(vm1Addr, "/openstack/latest/password", strings.Repeat("x", computestate.MaxPassword+1)); code != http.StatusBadRequest {
		t.Fatalf("oversized post: %d", code)
	}
	if code := post(vm1Addr, "/openstack/latest/meta_data.json", "x"); code != http.StatusMethodNotAllowed {
		t.Fatalf("post elsewhere: %d", code)
	}
	if code := post(vm1Addr, "/openstack/2013-10-17/password", "c2VjcmV0"); code != http.StatusOK {
		t.Fatalf("post: %d", code)
	}
	if len(kept) != 1 || kept[0] != "vm1=c2VjcmV0" {
		t.Fatalf("kept %v", kept)
	}
	if code, body := get(t, s, vm1Addr, "/openstack/latest/password"); code != http.StatusOK || body != "c2VjcmV0" {
		t.Fatalf("read back: %d %q", code, body)
	}
	if _, body := get(t, s, vm1Addr, "/openstack/latest/"); !strings.Contains(body, "password") {
		t.Fatalf("listing lacks password: %q", body)
	}
	if code, body := get(t, s, vm2Addr, "/openstack/latest/password"); code != http.StatusOK || body != "" {
		t.Fatalf("the other guest reads %d %q", code, body)
	}
	if code := post(vm1Addr, "/openstack/latest/password", "again"); code != http.StatusConflict {
		t.Fatalf("second post: %d", code)
	}
	if len(kept) != 1 {
		t.Fatalf("kept %v", kept)
	}
	// A guest that closes its side once the body is sent (busybox nc):
	// the request's context ends, the post is kept all the same.
	r := httptest.NewRequest("POST", "http://169.254.169.254/openstack/latest/password", strings.NewReader("gone"))
	r.RemoteAddr = netip.AddrPortFrom(vm2Addr, 40000).String()
	ctx, cancel := context.WithCancel(r.Context())
	cancel()
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r.WithContext(ctx))
	if w.Code != http.StatusOK || len(kept) != 2 || kept[1] != "vm2=gone" {
		t.Fatalf("post from a guest that closed its side: %d, kept %v", w.Code, kept)
	}
}
