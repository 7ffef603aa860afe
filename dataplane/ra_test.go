package dataplane

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// TestUnsolicitedRANamespaces: a guest that never solicits forms its
// address by SLAAC and routes by the router from the advertisement Verify
// sends on its own, the same frame port_in answers a solicitation from ::
// with.
func TestUnsolicitedRANamespaces(t *testing.T) {
	pfx := netip.MustParsePrefix
	d := openTestConfig(t, Config{RAInterval: time.Nanosecond}, "tapa", "tapd", "up0")
	ga := dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.Addr{})
	if _, err := d.Apply(l3v6State()); err != nil {
		t.Fatal(err)
	}
	r := d.run(t, d.objs.PortIn, "tapa", frame{src: macA, dst: mac("33:33:00:00:00:02")}.icmp6("::", "ff02::2", 133, 0, 0))
	ra, ok := d.cur.l3v6.ras[101]
	if !ok || r.String() != "REDIRECT [icmp_reply]" {
		t.Fatalf("no advertisement for network 101: %s", r)
	}
	if got := raFrame(ra); !bytes.Equal(got, r.out[:len(got)]) || len(r.out) != len(got) {
		t.Errorf("unsolicited advertisement\n%x\nwant port_in's\n%x", got, r.out)
	}

	if err := dataplanetest.In(t, ga, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/tapap/router_solicitations", []byte("0"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	dataplanetest.IPv6(t, ga, "tapap")
	var addrs, routes string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, err := d.Verify(); err != nil {
			t.Fatal(err)
		}
		addrs, _ = ipIn(ga, "-6", "addr", "show", "dev", "tapap")
		routes, _ = ipIn(ga, "-6", "route", "show", "default")
		if strings.Contains(addrs, slaacA.String()) && strings.Contains(routes, linkLocal(macR1).Addr().String()) {
			return
		}
	}
	t.Errorf("a, never soliciting, formed no address or default route from unsolicited advertisements:\n%s\n%s", addrs, routes)
}
