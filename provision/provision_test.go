package provision

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pin/tftp/v3"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/provision/agentapi"
	"github.com/rackstack/rackstack/provision/dhcp"
	"github.com/rackstack/rackstack/provision/ipxe"
)

type exitBackend struct{}

func (exitBackend) Boot(context.Context, string) (ipxe.Boot, error) {
	return ipxe.Boot{Kind: ipxe.BootExit}, nil
}
func (exitBackend) Inventory(context.Context, string, agentapi.Inventory) (agentapi.InventoryReply, error) {
	return agentapi.InventoryReply{}, ipxe.ErrBadToken
}
func (exitBackend) Heartbeat(context.Context, string, agentapi.Heartbeat) (agentapi.HeartbeatReply, error) {
	return agentapi.HeartbeatReply{}, ipxe.ErrBadToken
}
func (exitBackend) Result(context.Context, string, agentapi.Result) error { return ipxe.ErrBadToken }
func (exitBackend) Image(context.Context, string) (ipxe.Content, error) {
	return ipxe.Content{}, ipxe.ErrBadToken
}
func (exitBackend) ConfigDrive(context.Context, string) (ipxe.Content, error) {
	return ipxe.Content{}, ipxe.ErrBadToken
}

// fakeServer is a DHCP or TFTP server that records its site and serves
// until its context ends, or fails with err.
type fakeServer struct {
	site    Site
	err     error
	stopped chan struct{}
}

func (f *fakeServer) Serve(ctx context.Context) error {
	defer close(f.stopped)
	if f.err != nil {
		return f.err
	}
	<-ctx.Done()
	return nil
}

func ramdisk(t *testing.T) string {
	dir := t.TempDir()
	for _, f := range []string{ipxe.Kernel, ipxe.Initrd} {
		os.WriteFile(filepath.Join(dir, f), []byte(f), 0o644)
	}
	return dir
}

func hook(servers *[]*fakeServer, err error) func(Site) (Server, error) {
	return func(s Site) (Server, error) {
		f := &fakeServer{site: s, err: err, stopped: make(chan struct{})}
		*servers = append(*servers, f)
		return f, nil
	}
}

func TestStartServesOnTheInterfaceAddressOnly(t *testing.T) {
	var servers []*fakeServer
	s, err := Start(context.Background(), Config{Interface: "lo", DHCPMode: DHCPProxy, RamdiskDir: ramdisk(t)},
		exitBackend{}, Hooks{DHCP: hook(&servers, nil), TFTP: hook(&servers, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Site.IP != netip.MustParseAddr("127.0.0.1") || !strings.HasPrefix(s.Site.HTTPURL, "http://127.0.0.1:") {
		t.Fatalf("site %+v", s.Site)
	}
	if len(servers) != 2 || servers[0].site != s.Site || servers[1].site != s.Site {
		t.Fatalf("hooks got %+v, want the site %+v", servers, s.Site)
	}
	if got := s.Site.ScriptURL("52:54:00:00:00:01"); got != s.Site.HTTPURL+"/boot.ipxe?mac=52:54:00:00:00:01" {
		t.Fatalf("ScriptURL = %s", got)
	}
	resp, err := http.Get(s.Site.ScriptURL("52:54:00:00:00:01"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "exit") {
		t.Fatalf("script %q", body)
	}
	// Bound to 127.0.0.1 alone: another loopback address is not served.
	port := s.Site.HTTPURL[strings.LastIndex(s.Site.HTTPURL, ":")+1:]
	if resp, err := http.Get("http://127.0.0.2:" + port + "/boot.ipxe?mac=52:54:00:00:00:01"); err == nil {
		resp.Body.Close()
		t.Fatal("the provisioning server answers on 127.0.0.2 too")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range servers {
		<-f.stopped
	}
	if _, err := http.Get(s.Site.HTTPURL + "/boot.ipxe"); err == nil {
		t.Fatal("HTTP still served after Close")
	}
}

// TestRouterAdvertisementsOnlyInFullMode: the advertiser runs on a segment
// Rackstack owns (full DHCP), never beside the site's DHCP server (proxy),
// where the routers are the site's.
func TestRouterAdvertisementsOnlyInFullMode(t *testing.T) {
	lo, hi := netip.MustParseAddr("127.0.0.100"), netip.MustParseAddr("127.0.0.200")
	for name, tc := range map[string]struct {
		cfg    Config
		wantRA bool
	}{
		"proxy": {Config{DHCPMode: DHCPProxy}, false},
		"full":  {Config{DHCPMode: DHCPFull, Range: dhcp.Range{Start: lo, End: hi}, LeaseDir: t.TempDir()}, true},
	} {
		t.Run(name, func(t *testing.T) {
			var servers, ras []*fakeServer
			cfg := tc.cfg
			cfg.Interface, cfg.RamdiskDir = "lo", ramdisk(t)
			s, err := Start(context.Background(), cfg, exitBackend{},
				Hooks{DHCP: hook(&servers, nil), TFTP: hook(&servers, nil), RA: hook(&ras, nil)})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if got := len(ras) == 1; got != tc.wantRA || len(ras) > 1 {
				t.Fatalf("%d router advertisers started in %s mode", len(ras), cfg.DHCPMode)
			}
			if tc.wantRA && ras[0].site != s.Site {
				t.Fatalf("the advertiser got %+v, want the site %+v", ras[0].site, s.Site)
			}
		})
	}
}

func TestAFailingServerStopsTheOthers(t *testing.T) {
	var servers []*fakeServer
	boom := errors.New("bind udp 67: address in use")
	s, err := Start(context.Background(), Config{Interface: "lo", DHCPMode: DHCPProxy, RamdiskDir: ramdisk(t)},
		exitBackend{}, Hooks{DHCP: hook(&servers, boom), TFTP: hook(&servers, nil)})
	if err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	if !errors.Is(s.Err(), boom) || !strings.Contains(s.Err().Error(), "dhcp") {
		t.Fatalf("Err = %v", s.Err())
	}
	<-servers[1].stopped
}

func TestStartRefusesBadConfig(t *testing.T) {
	dir := ramdisk(t)
	lo, hi := netip.MustParseAddr("127.0.0.100"), netip.MustParseAddr("127.0.0.200")
	far := netip.MustParseAddr("10.9.9.9")
	for name, tc := range map[string]struct {
		cfg  Config
		want string
	}{
		"no interface":          {Config{DHCPMode: DHCPProxy, RamdiskDir: dir}, "no interface"},
		"missing interface":     {Config{Interface: "nosuch0", DHCPMode: DHCPProxy, RamdiskDir: dir}, "nosuch0"},
		"bad mode":              {Config{Interface: "lo", DHCPMode: "relay", RamdiskDir: dir}, "relay"},
		"full without a range":  {Config{Interface: "lo", DHCPMode: DHCPFull, RamdiskDir: dir}, "needs a range"},
		"proxy with a range":    {Config{Interface: "lo", DHCPMode: DHCPProxy, Range: dhcp.Range{Start: lo, End: hi}, RamdiskDir: dir}, "only for full"},
		"range outside the net": {Config{Interface: "lo", DHCPMode: DHCPFull, Range: dhcp.Range{Start: lo, End: far}, RamdiskDir: dir}, "not inside"},
		"no ramdisk":            {Config{Interface: "lo", DHCPMode: DHCPProxy, RamdiskDir: t.TempDir()}, "make ramdisk"},
		"full without leases":   {Config{Interface: "lo", DHCPMode: DHCPFull, Range: dhcp.Range{Start: lo, End: hi}, RamdiskDir: dir}, "lease directory"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := Start(context.Background(), tc.cfg, exitBackend{}, Hooks{})
			if err == nil {
				s.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestStartRunsTheRealServers composes provision/dhcp and provision/tftp
// on lo (root: DHCP and TFTP use privileged ports) and fetches an iPXE
// binary over TFTP from the provisioning address.
func TestStartRunsTheRealServers(t *testing.T) {
	testenv.RequireRoot(t, "DHCP and TFTP bind ports 67 and 69")
	tftpDir := t.TempDir()
	want := []byte("an iPXE binary")
	os.WriteFile(filepath.Join(tftpDir, "undionly.kpxe"), want, 0o644)
	s, err := Start(context.Background(), Config{Interface: "lo", DHCPMode: DHCPProxy, RamdiskDir: ramdisk(t), TFTPDir: tftpDir},
		exitBackend{}, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := tftp.NewClient("127.0.0.1:69")
	if err != nil {
		t.Fatal(err)
	}
	wt, err := c.Receive("undionly.kpxe", "octet")
	if err != nil {
		t.Fatalf("tftp get: %v", err)
	}
	var got bytes.Buffer
	if _, err := wt.WriteTo(&got); err != nil || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("tftp got %q, %v", got.Bytes(), err)
	}
	select {
	case <-s.Done():
		t.Fatalf("the servers stopped: %v", s.Err())
	default:
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
