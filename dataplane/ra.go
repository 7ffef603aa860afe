package dataplane

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/bpf"
)

// raInterval is how often routers advertise themselves unsolicited: well
// within the router lifetime they give (1800 s, ra_reply's), so that a
// guest that solicited once, at boot, keeps its default route and its
// prefix's lifetimes are renewed (RFC 4861's MaxRtrAdvInterval is 600 s).
const raInterval = 200 * time.Second

// advertise sends, every RAInterval, each network's router advertisement
// (ras) to every local port of it, as port_in answers a solicitation but
// to all nodes. Verify calls it, with d.mu held.
func (d *Dataplane) advertise() {
	every := d.cfg.RAInterval
	if every <= 0 {
		every = raInterval
	}
	if time.Since(d.lastRA) < every {
		return
	}
	d.lastRA = time.Now()
	for ifindex, p := range d.cur.ports {
		ra, ok := d.cur.l3v6.ras[p.Vlan]
		if !ok {
			continue
		}
		if err := d.inNetns(func() error { return sendRA(int(ifindex), ra) }); err != nil {
			d.log.Warn("advertise the router", "ifindex", ifindex, "err", err)
		}
	}
}

// raFrame is ra as ra_reply in bpf/dataplane.c builds it, to ff02::1.
func raFrame(ra bpf.DataplaneRa) []byte {
	msg := []byte{134, 0, 0, 0, 64, ra.Flags, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0} // lifetime 1800 s
	pi := []byte{3, 4, ra.Plen, ra.Pflags}
	pi = binary.BigEndian.AppendUint32(pi, 86400)
	pi = binary.BigEndian.AppendUint32(pi, 14400)
	pi = append(append(pi, 0, 0, 0, 0), ra.Prefix[:]...)
	msg = append(append(append(msg, pi...), 1, 1), ra.Mac[:]...)
	if ra.Mtu != 0 {
		msg = binary.BigEndian.AppendUint32(append(msg, 5, 1, 0, 0), ra.Mtu)
	}
	all := netip.MustParseAddr("ff02::1").As16()
	sum := checksum6(ra.Lla, all, msg)
	msg[2], msg[3] = byte(sum>>8), byte(sum)
	f := append([]byte{0x33, 0x33, 0, 0, 0, 1}, ra.Mac[:]...)
	f = append(f, 0x86, 0xdd, 0x60, 0, 0, 0, 0, byte(len(msg)), 58, 255)
	f = append(append(append(f, ra.Lla[:]...), all[:]...), msg...)
	return f
}

// sendRA sends ra out of the device to the guest behind it.
func sendRA(ifindex int, ra bpf.DataplaneRa) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0) // 0: send only, receive nothing
	if err != nil {
		return fmt.Errorf("open packet socket: %w", err)
	}
	defer unix.Close(fd)
	f := raFrame(ra)
	sa := &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(unix.ETH_P_IPV6), Halen: 6}
	copy(sa.Addr[:], net.HardwareAddr(f[:6]))
	if err := unix.Sendto(fd, f, 0, sa); err != nil {
		return fmt.Errorf("send router advertisement: %w", err)
	}
	return nil
}
