package dhcp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/provision/tftp"
)

// The firmware tests boot a QEMU guest (TCG: no KVM needed) whose only
// NIC is a tap in the test's namespace, with real firmware, until iPXE
// fetches the boot script over HTTP: the packets a test crafts are only
// what the test's author believes firmware sends; these are what it sends.
//
//   - UEFI, full mode: OVMF's own PXE stack (the NIC's iPXE ROM left out)
//     gets an address and ipxe.efi over TFTP; ipxe.efi asks again, as
//     iPXE, and gets the script URL.
//   - BIOS, proxy mode: SeaBIOS runs the NIC's iPXE ROM (user class iPXE
//     from its first packet, as QEMU guests are); a stand-in site server
//     gives it an address, we give it the script URL (ProxyDHCP, 4011).
//   - UEFI, proxy mode: OVMF's PXE beside the stand-in site server.
func TestFirmwareBootsToTheScript(t *testing.T) {
	testenv.Require(t, !testing.Short(), "-short: boots QEMU guests under TCG (minutes)")
	qemu := testenv.RequireCommand(t, "qemu-system-x86_64")
	testenv.RequireFile(t, "/usr/share/qemu/OVMF.fd", "make deps installs ovmf")
	testenv.RequireFile(t, "/usr/lib/ipxe/ipxe.efi", "make deps installs ipxe")
	testenv.RequireFile(t, "/usr/lib/ipxe/qemu/efi-virtio.rom", "make deps installs ipxe-qemu")
	for name, tc := range map[string]struct {
		mode Mode
		uefi bool
	}{
		"uefi full":  {Full, true},
		"bios proxy": {Proxy, false},
		"uefi proxy": {Proxy, true},
	} {
		t.Run(name, func(t *testing.T) {
			bootFirmware(t, qemu, tc.mode, tc.uefi)
		})
	}
}

func bootFirmware(t *testing.T, qemu string, mode Mode, uefi bool) {
	testenv.RequireRoot(t, "create a namespace and a tap for a QEMU guest")
	const mac = "52:54:00:9a:00:01"
	srvIP := netip.MustParseAddr("10.9.0.1")
	ns := newNetns(t)
	var err error
	in(t, ns, func() {
		tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: "prov0"}, Mode: netlink.TUNTAP_MODE_TAP,
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR}
		if err = netlink.LinkAdd(tap); err != nil {
			return
		}
		for _, a := range []string{"10.9.0.1/24", "10.9.0.2/24"} { // ours, the site server's
			addr, _ := netlink.ParseAddr(a)
			if err = netlink.AddrAdd(tap, addr); err != nil {
				return
			}
		}
		err = netlink.LinkSetUp(tap)
	})
	if err != nil {
		t.Fatalf("tap: %v", err)
	}

	// HTTP: the boot script iPXE fetches; the request is the test's goal.
	fetched := make(chan string, 4)
	var httpLn net.Listener
	in(t, ns, func() { httpLn, err = net.Listen("tcp", srvIP.String()+":8069") })
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case fetched <- r.URL.Query().Get("mac"):
		default:
		}
		fmt.Fprint(w, "#!ipxe\necho RACKSTACK-BOOT-SCRIPT\nsleep 60\n")
	})}
	go hs.Serve(httpLn)
	t.Cleanup(func() { hs.Close() })

	// TFTP, served from a thread in the namespace: pin/tftp opens each
	// transfer's socket on the serving goroutine's thread.
	ctx, cancel := context.WithCancel(context.Background())
	var ts *tftp.Server
	in(t, ns, func() {
		ts, err = tftp.New(tftp.Config{Addr: netip.AddrPortFrom(srvIP, tftp.Port), Dir: "/usr/lib/ipxe", Log: testLogger(t)})
	})
	if err != nil {
		t.Fatal(err)
	}
	tftpDone := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := netns.Set(ns); err != nil {
			tftpDone <- err
			return
		}
		tftpDone <- ts.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-tftpDone; err != nil {
			t.Errorf("tftp: %v", err)
		}
	})

	seg := &segment{srv: ns, srvIf: "prov0", srvIP: srvIP}
	cfg := Config{Mode: mode, ServerIP: srvIP, ScriptURL: func(m net.HardwareAddr) string {
		return "http://10.9.0.1:8069/boot.ipxe?mac=" + m.String()
	}}
	if mode == Full {
		cfg.Range = Range{Start: netip.MustParseAddr("10.9.0.100"), End: netip.MustParseAddr("10.9.0.120")}
		cfg.LeaseDir = t.TempDir()
	} else {
		siteDHCP(t, ns, "prov0", netip.MustParseAddr("10.9.0.2"), netip.MustParseAddr("10.9.0.77"))
	}
	seg.serve(t, cfg)

	dir := t.TempDir()
	console := filepath.Join(dir, "console.log")
	args := []string{"-machine", "q35", "-accel", "tcg", "-m", "256", "-smp", "1",
		"-display", "none", "-nodefaults", "-no-reboot", "-serial", "file:" + console,
		"-netdev", "tap,id=n0,ifname=prov0,script=no,downscript=no,vhost=off",
		"-boot", "order=n"}
	if uefi {
		// romfile= leaves out the NIC's iPXE ROM: OVMF's own PXE boots.
		args = append(args, "-bios", "/usr/share/qemu/OVMF.fd",
			"-device", "virtio-net-pci,netdev=n0,mac="+mac+",romfile=")
	} else {
		// QEMU's own NIC ROM (ipxe-qemu's efi-virtio.rom) is iPXE.
		args = append(args, "-device", "virtio-net-pci,netdev=n0,mac="+mac)
	}
	cmd := exec.Command(qemu, args...)
	in(t, ns, func() { err = cmd.Start() }) // the child is born in the namespace
	if err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	select {
	case got := <-fetched:
		if got != mac {
			t.Errorf("boot script fetched for mac %q, want %q", got, mac)
		}
	case <-exited:
		t.Fatalf("qemu exited before fetching the boot script; console:\n%s", tail(console))
	case <-time.After(5 * time.Minute): // OVMF under TCG takes ~40 s here
		t.Fatalf("no boot script fetched; console:\n%s", tail(console))
	}
}

// siteDHCP is a stand-in for the site's DHCP server beside proxy mode: it
// gives every client one address and no boot options.
func siteDHCP(t *testing.T, ns netns.NsHandle, iface string, self, give netip.Addr) {
	t.Helper()
	var conn *net.UDPConn
	var err error
	in(t, ns, func() { conn, err = server4.NewIPv4UDPConn(iface, &net.UDPAddr{Port: dhcpv4.ServerPort}) })
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server4.NewServer("", nil, func(c net.PacketConn, peer net.Addr, req *dhcpv4.DHCPv4) {
		if req.OpCode != dhcpv4.OpcodeBootRequest {
			return
		}
		typ := dhcpv4.MessageTypeOffer
		switch req.MessageType() {
		case dhcpv4.MessageTypeDiscover:
		case dhcpv4.MessageTypeRequest:
			if sid := req.ServerIdentifier(); sid != nil && !sid.Equal(net.IP(self.AsSlice())) {
				return
			}
			typ = dhcpv4.MessageTypeAck
		default:
			return
		}
		resp, _ := dhcpv4.NewReplyFromRequest(req,
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(net.IP(give.AsSlice())),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithLeaseTime(3600),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IP(self.AsSlice()))))
		c.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
	}, server4.WithConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
