package dataplanetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/dataplane/packetsock"
)

// VLAN makes name, in the namespace at nsPath, an 802.1Q sub-interface of
// lower (a device in the namespace at lowerNS) on VLAN vid, with address
// addr: what `ip link add link LOWER name NAME type vlan id VID` makes on
// a kernel with 8021q, which the test kernels lack. name is a TAP device
// whose frames the test process carries: those it sends leave lower
// tagged with vid, and of what arrives on lower only frames tagged with
// vid reach it, untagged; untagged frames and other VLANs' never do. It
// stops when the test ends.
func VLAN(t testing.TB, lowerNS, lower string, vid uint16, nsPath, name string, addr netip.Prefix) {
	t.Helper()
	if vid == 0 || vid > 4094 {
		t.Fatalf("VLAN %d out of 1-4094", vid)
	}
	var sock, tap *os.File
	err := In(t, lowerNS, func() (err error) {
		sock, err = packetSocket(lower)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	if err := In(t, nsPath, func() (err error) {
		tap, err = openTAP(name)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tap.Close() })
	Addr(t, nsPath, name, addr)
	go tagInto(tap, sock, vid)
	go untagInto(sock, tap, vid)
}

// packetSocket opens a non-blocking raw packet socket bound to dev, which
// reports the VLAN tags the kernel took off the frames it reads.
func packetSocket(dev string) (*os.File, error) {
	ifc, err := netInterface(dev)
	if err != nil {
		return nil, err
	}
	return packetsock.Open(ifc, nil, "packet:"+dev)
}
func netInterface(dev string) (int, error) {
	ifr, err := unix.NewIfreq(dev)
	if err != nil {
		return 0, err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, fmt.Errorf("find %s: %w", dev, err)
	}
	return int(ifr.Uint32()), nil
}

// openTAP creates the TAP device name (frames without a packet-info
// header), non-blocking so that closing it ends a pending read.
func openTAP(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("create tap %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "tap:"+name), nil
}

// tagInto sends what the sub-interface sends out of lower, tagged.
func tagInto(tap, sock *os.File, vid uint16) {
	buf := make([]byte, 65536)
	for {
		n, err := tap.Read(buf)
		if err != nil {
			return
		}
		if n < 14 {
			continue
		}
		f := make([]byte, 0, n+4)
		f = append(f, buf[:12]...)
		f = binary.BigEndian.AppendUint16(f, unix.ETH_P_8021Q)
		f = binary.BigEndian.AppendUint16(f, vid)
		f = append(f, buf[12:n]...)
		if _, err := sock.Write(f); errors.Is(err, os.ErrClosed) {
			return
		}
	}
}

// untagInto hands the sub-interface the frames lower receives on its VLAN,
// without the tag. The tag is in the frame or, when the kernel took it
// off, in the packet's auxdata.
func untagInto(sock, tap *os.File, vid uint16) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return
	}
	buf, oob := make([]byte, 65536), make([]byte, 256)
	for {
		n, oobn, err := packetsock.Receive(rc, buf, oob)
		if err != nil {
			return
		}
		if n < 14 {
			continue
		}
		status, tci, tagged := packetsock.VLAN(oob[:oobn])
		f := buf[:n]
		switch {
		case tagged:
		case binary.BigEndian.Uint16(f[12:]) == unix.ETH_P_8021Q && n >= 18:
			tci, tagged = binary.BigEndian.Uint16(f[14:]), true
			f = append(f[:12:12], f[16:]...)
		}
		if !tagged || tci&0x0fff != vid {
			continue
		}
		if status&unix.TP_STATUS_CSUMNOTREADY != 0 {
			// Sent with its checksum left to the device (a veth's
			// offload): the receiving stack checks it.
			fillL4Checksum(f)
		}
		if _, err := tap.Write(f); errors.Is(err, os.ErrClosed) {
			return
		}
	}
}

// fillL4Checksum computes the TCP or UDP checksum of an untagged IPv4 or
// IPv6 frame (without extension headers) whose checksum field holds only
// the pseudo-header's sum.
func fillL4Checksum(f []byte) {
	if len(f) < 34 {
		return
	}
	var proto byte
	var addrs, l4 []byte
	switch binary.BigEndian.Uint16(f[12:]) {
	case unix.ETH_P_IP:
		iph := f[14:]
		hl := int(iph[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(iph[2:]))
		if hl < 20 || total < hl || total > len(iph) {
			return
		}
		proto, addrs, l4 = iph[9], iph[12:20], iph[hl:total]
	case unix.ETH_P_IPV6:
		iph := f[14:]
		if len(iph) < 40 {
			return
		}
		plen := int(binary.BigEndian.Uint16(iph[4:]))
		if 40+plen > len(iph) {
			return
		}
		proto, addrs, l4 = iph[6], iph[8:40], iph[40:40+plen]
	default:
		return
	}
	var off int
	switch proto {
	case unix.IPPROTO_TCP:
		off = 16
	case unix.IPPROTO_UDP:
		off = 6
	default:
		return
	}
	if len(l4) < off+2 {
		return
	}
	l4[off], l4[off+1] = 0, 0
	sum := uint32(proto) + uint32(len(l4))
	for _, b := range [][]byte{addrs, l4} {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	c := ^uint16(sum)
	if c == 0 && proto == unix.IPPROTO_UDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[off:], c)
}
