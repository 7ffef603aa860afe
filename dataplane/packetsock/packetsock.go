// Package packetsock opens raw packet sockets on a device that report, for
// each frame they read, the VLAN tag the kernel took off it (its
// PACKET_AUXDATA): the dataplane's DHCP server for trunks' subports reads
// tagged requests with one, and the namespace tests' VLAN sub-interfaces
// are made of one.
package packetsock

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Open opens a non-blocking packet socket bound to device ifindex, every
// protocol, with the tags in the auxdata; filter, when given, is a classic
// BPF program that passes only what the reader wants. name names the
// file.
func Open(ifindex int, filter []unix.SockFilter, name string) (*os.File, error) {
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("open packet socket: %w", err)
	}
	if len(filter) > 0 {
		prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("attach the packet socket's filter: %w", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ask for auxdata: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind packet socket to %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// VLAN reads a frame's status and the VLAN tag the kernel took off it from
// its PACKET_AUXDATA message (struct tpacket_auxdata); ok says a tag was
// taken off.
func VLAN(oob []byte) (status uint32, tci uint16, ok bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < 20 {
			continue
		}
		status = binary.NativeEndian.Uint32(m.Data[0:])
		tci = binary.NativeEndian.Uint16(m.Data[16:])
		return status, tci, status&unix.TP_STATUS_VLAN_VALID != 0
	}
	return 0, 0, false
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Receive waits on rc (a socket Open made) for the next frame its device
// received, not one it sent, and reads it into buf and its auxdata into
// oob. An error ends the socket's reading: it was closed.
func Receive(rc syscall.RawConn, buf, oob []byte) (n, oobn int, err error) {
	for {
		var from unix.Sockaddr
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		}); err != nil {
			return 0, 0, err
		}
		switch {
		case rerr == unix.EINTR:
			continue
		case rerr != nil:
			return 0, 0, rerr
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype != unix.PACKET_OUTGOING {
			return n, oobn, nil
		}
	}
}
