//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netns"
)

// segment is a provisioning network as a rack has one: an L2 segment (a
// bridge in the root namespace, holding the provisioning address of the
// rackd under test), the site's own DHCP server in a namespace of its own
// (busybox udhcpd behind a veth), and the machines' taps. rackd's proxyDHCP
// adds only boot options to what the site's server hands out. Everything is
// removed when the test ends.
type segment struct {
	t      *testing.T
	bridge string
	net    string // "10.213.N" — the /24's first three octets
	siteNS string
	taps   int
}

// hostIP is rackd's address on the segment.
func (s *segment) hostIP() string { return s.net + ".1" }

func newSegment(t *testing.T) *segment {
	t.Helper()
	n := os.Getpid()%200 + 20
	s := &segment{t: t, bridge: nsName("pbr"), net: fmt.Sprintf("10.213.%d", n), siteNS: nsName("site")}
	exec.Command("ip", "link", "del", s.bridge).Run()
	ip(t, "link", "add", s.bridge, "type", "bridge")
	t.Cleanup(func() { exec.Command("ip", "link", "del", s.bridge).Run() })
	ip(t, "addr", "add", s.hostIP()+"/24", "dev", s.bridge)
	ip(t, "link", "set", s.bridge, "up")
	addNetns(t, s.siteNS)
	s.veth(s.siteNS, "site0", "")
	ip(t, "-n", s.siteNS, "addr", "add", s.net+".2/24", "dev", "site0")
	return s
}

// veth plugs a namespace into the segment: dev inside ns, its peer on the
// bridge.
func (s *segment) veth(ns, dev, mac string) {
	s.t.Helper()
	s.taps++
	host := fmt.Sprintf("%sv%d", s.bridge, s.taps)
	ip(s.t, "link", "add", host, "type", "veth", "peer", "name", dev, "netns", ns)
	ip(s.t, "link", "set", host, "master", s.bridge, "up")
	if mac != "" {
		ip(s.t, "-n", ns, "link", "set", dev, "address", mac)
	}
	ip(s.t, "-n", ns, "link", "set", dev, "up")
}

// tap makes a tap on the segment for a QEMU NIC and returns its name.
func (s *segment) tap() string {
	s.t.Helper()
	s.taps++
	name := fmt.Sprintf("%st%d", s.bridge, s.taps)
	ip(s.t, "tuntap", "add", "dev", name, "mode", "tap")
	s.t.Cleanup(func() { exec.Command("ip", "link", "del", name).Run() })
	ip(s.t, "link", "set", name, "master", s.bridge, "up")
	return name
}

// startSiteDHCP runs the site's DHCP server (busybox udhcpd) in its
// namespace, handing out .100–.150, and stops it (by PID) when the test
// ends.
func (s *segment) startSiteDHCP() {
	s.t.Helper()
	dir := s.t.TempDir()
	conf := filepath.Join(dir, "udhcpd.conf")
	body := fmt.Sprintf("start %[1]s.100\nend %[1]s.150\ninterface site0\nlease_file %[2]s/leases\noption subnet 255.255.255.0\noption lease 3600\n", s.net, dir)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "leases"), nil, 0o644)
	cmd := exec.Command("ip", "netns", "exec", s.siteNS, "busybox", "udhcpd", "-f", conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log, _ := os.Create(filepath.Join(dir, "udhcpd.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start site DHCP: %v", err)
	}
	recordProcess(s.t, cmd.Process.Pid, true)
	s.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		log.Close()
	})
}

// discover sends one DHCPDISCOVER from a fresh namespace on the segment,
// with the given vendor class ("" for an ordinary client), and returns the
// offers that came back within a few seconds, by server address.
func (s *segment) discover(name, vendorClass string) map[string]*dhcpv4.DHCPv4 {
	s.t.Helper()
	ns := nsName(name)
	addNetns(s.t, ns)
	s.veth(ns, "eth0", "")
	offers := map[string]*dhcpv4.DHCPv4{}
	err := func() error {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			return err
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			return err
		}
		defer netns.Set(orig)
		iface, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := nclient4.New("eth0", nclient4.WithTimeout(3*time.Second), nclient4.WithRetry(1))
		if err != nil {
			return err
		}
		defer c.Close()
		mods := []dhcpv4.Modifier{}
		if vendorClass != "" {
			mods = append(mods,
				dhcpv4.WithOption(dhcpv4.OptClassIdentifier(vendorClass)),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0, 0})))
		}
		disc, err := dhcpv4.NewDiscovery(iface.HardwareAddr, mods...)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		// Collect every OFFER to our transaction until the deadline.
		_, err = c.SendAndRead(ctx, c.RemoteAddr(), disc, func(m *dhcpv4.DHCPv4) bool {
			if m.TransactionID == disc.TransactionID && m.MessageType() == dhcpv4.MessageTypeOffer {
				offers[m.ServerIdentifier().String()] = m
			}
			return false
		})
		// No answer at all is an answer here: the caller checks who
		// offered.
		if err != nil && !errors.Is(err, nclient4.ErrNoResponse) && ctx.Err() == nil {
			return err
		}
		return nil
	}()
	if err != nil {
		s.t.Fatalf("DHCP discover from %s: %v", ns, err)
	}
	return offers
}
