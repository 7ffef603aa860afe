package dhcp

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// The config checks run against the loopback interface (127.0.0.1/8),
// which every machine has; they need no root because they open no socket.
func TestConfigErrorsNameTheProblem(t *testing.T) {
	full := func(start, end string) Config {
		return Config{Interface: "lo", Mode: Full, ScriptURL: scriptURL, LeaseDir: t.TempDir(),
			Range: Range{Start: netip.MustParseAddr(start), End: netip.MustParseAddr(end)}}
	}
	with := func(c Config, f func(*Config)) Config { f(&c); return c }
	proxy := Config{Interface: "lo", ScriptURL: scriptURL}
	for name, tc := range map[string]struct {
		cfg  Config
		want string // in the error; "" for none
	}{
		"proxy ok":              {proxy, ""},
		"full ok":               {full("127.0.0.10", "127.0.0.20"), ""},
		"no interface":          {with(proxy, func(c *Config) { c.Interface = "" }), "interface is required"},
		"unknown interface":     {with(proxy, func(c *Config) { c.Interface = "nosuch0" }), `interface "nosuch0"`},
		"unknown mode":          {with(proxy, func(c *Config) { c.Mode = "relay" }), `mode "relay"`},
		"no script url":         {with(proxy, func(c *Config) { c.ScriptURL = nil }), "ScriptURL is required"},
		"uefi boot path":        {with(proxy, func(c *Config) { c.UEFIBoot = "../ipxe.efi" }), "must be a file name"},
		"server ip elsewhere":   {with(proxy, func(c *Config) { c.ServerIP = netip.MustParseAddr("10.1.2.3") }), "10.1.2.3 is not on interface"},
		"range in proxy mode":   {with(proxy, func(c *Config) { c.Range = full("127.0.0.10", "127.0.0.20").Range }), "for full mode"},
		"full without range":    {with(full("127.0.0.10", "127.0.0.20"), func(c *Config) { c.Range = Range{} }), "needs a range"},
		"range outside":         {full("10.9.0.10", "10.9.0.20"), "outside 127.0.0.0/8"},
		"range backwards":       {full("127.0.0.20", "127.0.0.10"), "before its start"},
		"range holds server":    {full("127.0.0.1", "127.0.0.20"), "server's own address 127.0.0.1"},
		"range holds broadcast": {full("127.255.255.200", "127.255.255.255"), "network or broadcast"},
		"range too big":         {full("127.0.0.2", "127.1.0.2"), "more than 65536"},
		"no lease dir":          {with(full("127.0.0.10", "127.0.0.20"), func(c *Config) { c.LeaseDir = "" }), "lease directory"},
		"router in range":       {with(full("127.0.0.10", "127.0.0.20"), func(c *Config) { c.Router = netip.MustParseAddr("127.0.0.15") }), "holds the router"},
		"router outside":        {with(full("127.0.0.10", "127.0.0.20"), func(c *Config) { c.Router = netip.MustParseAddr("10.0.0.1") }), "router 10.0.0.1 is outside"},
		"negative lease":        {with(full("127.0.0.10", "127.0.0.20"), func(c *Config) { c.Lease = -time.Second }), "negative"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := tc.cfg
			subnet, err := checkConfig(&cfg)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if subnet != netip.MustParsePrefix("127.0.0.0/8") || cfg.ServerIP != netip.MustParseAddr("127.0.0.1") {
					t.Errorf("subnet %s, server %s; want 127.0.0.0/8 and the interface's address", subnet, cfg.ServerIP)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v, want ErrConfig saying %q", err, tc.want)
			}
		})
	}
}

func TestInterfaceAddr(t *testing.T) {
	a, err := InterfaceAddr("lo")
	if err != nil || a != netip.MustParsePrefix("127.0.0.1/8") {
		t.Errorf("InterfaceAddr(lo) = %v, %v; want 127.0.0.1/8", a, err)
	}
	if _, err := InterfaceAddr("nosuch0"); err == nil {
		t.Error("InterfaceAddr of a missing interface: no error")
	}
}

func TestParseRange(t *testing.T) {
	r, err := ParseRange("10.9.0.100-10.9.0.200")
	if err != nil || r.Start != netip.MustParseAddr("10.9.0.100") || r.End != netip.MustParseAddr("10.9.0.200") {
		t.Fatalf("ParseRange = %v, %v", r, err)
	}
	for _, bad := range []string{"", "10.9.0.100", "10.9.0.200-10.9.0.100", "fd00::1-fd00::2", "x-y"} {
		if _, err := ParseRange(bad); err == nil {
			t.Errorf("ParseRange(%q) accepted", bad)
		}
	}
}

func TestBootFileByClient(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:aa:bb:cc")
	for name, tc := range map[string]struct {
		mods []dhcpv4.Modifier
		uefi string
		want string
	}{
		"bios":              {biosPXE, "", BIOSBoot},
		"uefi":              {uefiPXE, "", UEFIBoot},
		"uefi snponly":      {uefiPXE, SNPOnly, SNPOnly},
		"uefi 9 in vendor":  {uefi9VendorOnly, "", UEFIBoot},
		"ipxe":              {inIPXE, "", "http://10.9.0.1:8069/boot.ipxe?mac=52:54:00:aa:bb:cc"},
		"ipxe rfc3004":      {[]dhcpv4.Modifier{dhcpv4.WithUserClass("iPXE", true)}, "", "http://10.9.0.1:8069/boot.ipxe?mac=52:54:00:aa:bb:cc"},
		"arm64":             {arm64PXE, "", ""},
		"pxe without arch":  {[]dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient"))}, "", ""},
		"ordinary":          {ordinary, "", ""},
		"nothing":           {nil, "", ""},
		"http boot client":  {[]dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016"))}, "", ""},
		"bad arch in class": {[]dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:x"))}, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			uefi := tc.uefi
			if uefi == "" {
				uefi = UEFIBoot
			}
			s := &Server{cfg: Config{ScriptURL: scriptURL, UEFIBoot: uefi}}
			req, err := dhcpv4.NewDiscovery(mac, tc.mods...)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.bootFile(classify(req), mac); got != tc.want {
				t.Errorf("boot file %q, want %q", got, tc.want)
			}
		})
	}
}
