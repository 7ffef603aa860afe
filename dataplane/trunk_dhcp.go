package dataplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/dataplane/packetsock"
)

// DHCP for trunks' subports. The node's DHCP servers (dhcp.go) are UDP
// sockets on a port's device, which neither see a subport's tagged
// requests (port_in drops them, see bpf/trunk.h) nor could answer them
// tagged. A trunk's parent device gets instead one packet socket that
// takes the subports' requests as the stack hands frames to its taps,
// before tc (so before port_in drops them), and sends each answer back
// out of the device with the subport's tag: the same answer dhcp.go's
// reply makes from the subport's lease, to the subport's own MAC only.
// A classic BPF filter on the socket passes only tagged IPv4 UDP to port
// 67, so the device's other traffic never reaches rackd.

// trunkDHCPServers runs one trunkDHCPServer per parent device with
// subports that have a lease.
type trunkDHCPServers struct {
	d   *Dataplane
	log *slog.Logger

	mu      sync.Mutex
	servers map[string]*trunkDHCPServer // parent device → server
}

type trunkDHCPServer struct {
	sock *os.File
	mu   sync.Mutex
	mac  net.HardwareAddr // the device's: the answers' source
	subs map[uint16]Port  // VLAN id → subport
	idx  int              // the device's ifindex
	done chan struct{}    // closed when the reader returns
}

func newTrunkDHCPServers(d *Dataplane, log *slog.Logger) *trunkDHCPServers {
	return &trunkDHCPServers{d: d, log: log, servers: map[string]*trunkDHCPServer{}}
}

// sync serves the subports of ports whose parent device is in devs.
func (s *trunkDHCPServers) sync(ports []Port, devs map[string]device) error {
	want := map[string]map[uint16]Port{}
	for _, p := range ports {
		if p.TrunkVID == 0 || p.DHCP == nil || !p.DHCP.IP.Addr().Is4() {
			continue
		}
		if _, ok := devs[p.Device]; !ok {
			continue
		}
		if want[p.Device] == nil {
			want[p.Device] = map[uint16]Port{}
		}
		want[p.Device][p.TrunkVID] = p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for dev, srv := range s.servers {
		if _, ok := want[dev]; !ok || int(devs[dev].ifindex) != srv.idx {
			srv.stop()
			delete(s.servers, dev)
		}
	}
	var errs []error
	for dev, subs := range want {
		if srv, ok := s.servers[dev]; ok {
			srv.mu.Lock()
			srv.subs = subs
			srv.mu.Unlock()
			continue
		}
		dv := devs[dev]
		srv := &trunkDHCPServer{mac: net.HardwareAddr(dv.mac[:]), subs: subs, idx: int(dv.ifindex), done: make(chan struct{})}
		err := s.d.inNetns(func() (err error) {
			srv.sock, err = packetsock.Open(srv.idx, dhcpRequestFilter, fmt.Sprintf("dhcp-trunk:%d", srv.idx))
			return err
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("subports' dhcp on %s: %w", dev, err))
			continue
		}
		go srv.serve(s.log, dev)
		s.servers[dev] = srv
	}
	return errors.Join(errs...)
}

func (s *trunkDHCPServers) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for dev, srv := range s.servers {
		srv.stop()
		delete(s.servers, dev)
	}
}

func (srv *trunkDHCPServer) stop() {
	srv.sock.Close()
	<-srv.done
}

// Classic BPF's ancillary load of "a VLAN tag came with the frame"
// (linux/filter.h SKF_AD_OFF + SKF_AD_VLAN_TAG_PRESENT).
const skfVLANTagPresent = 0xfffff000 + 48

// dhcpRequestFilter passes frames that came tagged (the tag taken off
// into the packet's metadata) carrying unfragmented IPv4 UDP to port 67.
var dhcpRequestFilter = []unix.SockFilter{
	{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: skfVLANTagPresent},
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 0, Jt: 9},
	{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 12},
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.ETH_P_IP, Jf: 7},
	{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 23},
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.IPPROTO_UDP, Jf: 5},
	{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 20},
	{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: 0x3fff, Jt: 3}, // a fragment
	{Code: unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH, K: 14},
	{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_IND, K: 16},
	{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: 67, Jt: 1},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0},
	{Code: unix.BPF_RET | unix.BPF_K, K: 0xffff},
}

// serve answers requests until the socket is closed.
func (srv *trunkDHCPServer) serve(log *slog.Logger, dev string) {
	defer close(srv.done)
	rc, err := srv.sock.SyscallConn()
	if err != nil {
		return
	}
	buf, oob := make([]byte, 2048), make([]byte, 256)
	for {
		n, oobn, err := packetsock.Receive(rc, buf, oob)
		if err != nil {
			return
		}
		_, tci, ok := packetsock.VLAN(oob[:oobn])
		if !ok {
			continue
		}
		resp, to := srv.answer(buf[:n], uint16(tci&0x0fff))
		if resp == nil {
			continue
		}
		var rerr error
		if err := rc.Write(func(fd uintptr) bool {
			rerr = unix.Sendto(int(fd), resp, 0, &unix.SockaddrLinklayer{Ifindex: srv.idx, Halen: 6, Addr: to})
			return rerr != unix.EAGAIN
		}); err != nil || rerr != nil {
			log.Warn("dhcp: send a subport's reply", "dev", dev, "err", errors.Join(err, rerr))
		}
	}
}

// answer is the tagged frame answering the untagged frame f (IPv4 UDP to
// port 67, as the filter passed it) that came with VLAN id vid, and the
// MAC it goes to; nil when no subport of that id asked.
func (srv *trunkDHCPServer) answer(f []byte, vid uint16) ([]byte, [8]byte) {
	var to [8]byte
	srv.mu.Lock()
	p, ok := srv.subs[vid]
	srv.mu.Unlock()
	if !ok || len(f) < 14+20 {
		return nil, to
	}
	ihl := int(f[14]&0x0f) * 4
	if ihl < 20 || len(f) < 14+ihl+8 {
		return nil, to
	}
	req, err := dhcpv4.FromBytes(f[14+ihl+8:])
	if err != nil || req.OpCode != dhcpv4.OpcodeBootRequest || req.ClientHWAddr.String() != p.MAC.String() {
		return nil, to // only the subport's own MAC gets its address
	}
	resp, err := reply(req, *p.DHCP)
	if err != nil || resp == nil {
		return nil, to
	}
	dst := net.IPv4bcast.To4()
	if c := req.ClientIPAddr.To4(); c != nil && !c.IsUnspecified() {
		dst = c // a renewal, from a configured address
	}
	copy(to[:], p.MAC)
	return taggedUDP(p.MAC, srv.mac, vid, serverID(*p.DHCP).To4(), dst, 67, 68, resp.ToBytes()), to
}

// taggedUDP builds an Ethernet frame tagged with vid holding an IPv4 UDP
// datagram (no UDP checksum, which IPv4 allows).
func taggedUDP(dstMAC, srcMAC net.HardwareAddr, vid uint16, src, dst net.IP, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 0, 18+20+8+len(payload))
	b = append(b, dstMAC...)
	b = append(b, srcMAC...)
	b = binary.BigEndian.AppendUint16(b, unix.ETH_P_8021Q)
	b = binary.BigEndian.AppendUint16(b, vid)
	b = binary.BigEndian.AppendUint16(b, unix.ETH_P_IP)
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 64, unix.IPPROTO_UDP, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip = append(ip, src...)
	ip = append(ip, dst...)
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	b = append(b, ip...)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint16(b, uint16(8+len(payload)))
	b = binary.BigEndian.AppendUint16(b, 0)
	return append(b, payload...)
}
