// Package ndp builds and sends IPv6 router advertisements (RFC 4861) as
// whole Ethernet frames through a packet socket, so the sender needs no
// IPv6 address or route of its own on the link: the dataplane advertises
// tenant networks' gateways from devices that hold no address, and
// provisioning advertises on a segment it owns. It imports nothing of
// Rackstack's, so any layer may use it.
package ndp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// ICMPv6 types of router discovery.
const (
	TypeRouterSolicitation  = 133
	TypeRouterAdvertisement = 134
)

// allNodes is ff02::1, where advertisements go.
var allNodes = netip.MustParseAddr("ff02::1").As16()

// Prefix is a prefix information option.
type Prefix struct {
	Prefix           [16]byte
	Len              uint8
	Flags            uint8  // L 0x80, A 0x40
	Valid, Preferred uint32 // seconds
}

// RA is a router advertisement from a router's MAC and link-local address
// to all nodes.
type RA struct {
	MAC [6]byte
	LLA [16]byte
	// Flags are M (0x80) and O (0x40).
	Flags uint8
	// Lifetime is the router lifetime in seconds: 0 says the sender is no
	// default router, which still ends a host's wait for a router.
	Lifetime uint16
	Prefix   *Prefix
	MTU      uint32 // 0: no MTU option
}

// Frame is ra as an Ethernet frame to 33:33:00:00:00:01, hop limit 255,
// options in the order prefix, source link-layer address, MTU.
func (ra RA) Frame() []byte {
	msg := []byte{TypeRouterAdvertisement, 0, 0, 0, 64, ra.Flags, byte(ra.Lifetime >> 8), byte(ra.Lifetime), 0, 0, 0, 0, 0, 0, 0, 0}
	if p := ra.Prefix; p != nil {
		msg = append(msg, 3, 4, p.Len, p.Flags)
		msg = binary.BigEndian.AppendUint32(msg, p.Valid)
		msg = binary.BigEndian.AppendUint32(msg, p.Preferred)
		msg = append(append(msg, 0, 0, 0, 0), p.Prefix[:]...)
	}
	msg = append(append(msg, 1, 1), ra.MAC[:]...)
	if ra.MTU != 0 {
		msg = binary.BigEndian.AppendUint32(append(msg, 5, 1, 0, 0), ra.MTU)
	}
	sum := Checksum(ra.LLA, allNodes, msg)
	msg[2], msg[3] = byte(sum>>8), byte(sum)
	f := append([]byte{0x33, 0x33, 0, 0, 0, 1}, ra.MAC[:]...)
	f = append(f, 0x86, 0xdd, 0x60, 0, 0, 0, byte(len(msg)>>8), byte(len(msg)), 58, 255)
	return append(append(append(f, ra.LLA[:]...), allNodes[:]...), msg...)
}

// Checksum is the ICMPv6 checksum of msg from src to dst.
func Checksum(src, dst [16]byte, msg []byte) uint16 {
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			s += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	add([]byte{0, 0, byte(len(msg) >> 8), byte(len(msg)), 0, 0, 0, 58})
	add(msg)
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// LinkLocal is the EUI-64 link-local address of mac (fe80::/64).
func LinkLocal(mac [6]byte) [16]byte {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11] = mac[0]^0x02, mac[1], mac[2], 0xff
	a[12], a[13], a[14], a[15] = 0xfe, mac[3], mac[4], mac[5]
	return a
}

// Send sends an Ethernet frame out of the device ifindex, to the
// destination MAC in its header.
func Send(ifindex int, frame []byte) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0) // 0: send only, receive nothing
	if err != nil {
		return fmt.Errorf("open packet socket: %w", err)
	}
	defer unix.Close(fd)
	return SendOn(fd, ifindex, frame)
}

// SendOn is Send through an open packet socket.
func SendOn(fd, ifindex int, frame []byte) error {
	sa := &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(unix.ETH_P_IPV6), Halen: 6}
	copy(sa.Addr[:], net.HardwareAddr(frame[:6]))
	if err := unix.Sendto(fd, frame, 0, sa); err != nil {
		return fmt.Errorf("send frame on interface %d: %w", ifindex, err)
	}
	return nil
}

// IsRouterSolicitation reports whether an Ethernet frame is an ICMPv6
// router solicitation (no extension headers, hop limit 255, as RFC 4861
// requires of a valid one).
func IsRouterSolicitation(f []byte) bool {
	return len(f) >= 14+40+8 && f[12] == 0x86 && f[13] == 0xdd && f[14]>>4 == 6 &&
		f[14+6] == 58 && f[14+7] == 255 && f[14+40] == TypeRouterSolicitation && f[14+41] == 0
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
