//go:build integration

package integration

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/bpf"
	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/dataplane/dataplanetest"
	"github.com/rackstack/rackstack/fabric/testenv"
)

const qosNetnsEnv = "RACKSTACK_QOS_NETNS"

// TestNeutronQoS drives Neutron QoS with the openstack CLI against a real
// rackd with its dataplane on: a policy with a bandwidth limit and a DSCP
// mark, the rule types listed and the unenforced ones refused, the policy
// set on a port and on a network, refused deletion while in use; the
// port's compiled policy in rackd's pinned qos map once the port's device
// is on the node; and real traffic between guests behind two ports of the
// network held to the first port's egress limit and marked EF.
func TestNeutronQoS(t *testing.T) {
	testenv.RequireRoot(t, "make a network namespace and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "ip"} {
		testenv.RequireCommand(t, c)
	}
	if inOwnNetns(t, qosNetnsEnv, "qos") {
		return
	}

	n1, bpfDir, creds, admin := dataplaneRackd(t, "qos")

	member := projectMember(t, creds, n1, admin, "qp", "uqp", "qp-pass-1")

	// Policies and rules are an admin's; the member sees its project's.
	if out, err := openstackErr(member, "network", "qos", "policy", "create", "mine"); err == nil {
		t.Fatalf("a member made a QoS policy: %s", out)
	}
	policy := strings.TrimSpace(openstack(t, admin, "network", "qos", "policy", "create", "--project", "qp", "-f", "value", "-c", "id", "gold"))
	openstack(t, admin, "network", "qos", "rule", "create", "--type", "bandwidth-limit", "--max-kbps", "10000", "--max-burst-kbits", "2000", "--egress", policy)
	openstack(t, admin, "network", "qos", "rule", "create", "--type", "bandwidth-limit", "--max-kbps", "20000", "--ingress", policy)
	openstack(t, admin, "network", "qos", "rule", "create", "--type", "dscp-marking", "--dscp-mark", "46", policy)
	if out, err := openstackErr(admin, "network", "qos", "rule", "create", "--type", "minimum-bandwidth", "--min-kbps", "1000", "--egress", policy); err == nil || !strings.Contains(out, "not supported") {
		t.Fatalf("a minimum-bandwidth rule: %v %s", err, out)
	}
	if out, err := openstackErr(admin, "network", "qos", "rule", "create", "--type", "minimum-packet-rate", "--min-kpps", "1000", "--egress", policy); err == nil || !strings.Contains(out, "not supported") {
		t.Fatalf("a minimum-packet-rate rule: %v %s", err, out)
	}
	if out := openstack(t, admin, "network", "qos", "rule", "type", "list", "-f", "value"); strings.Join(strings.Fields(out), " ") != "bandwidth_limit packet_rate_limit dscp_marking" {
		t.Errorf("rule types: %q", out)
	}
	var shown struct {
		Rules []map[string]any `json:"rules"`
	}
	if err := json.Unmarshal([]byte(openstack(t, member, "network", "qos", "policy", "show", "-f", "json", policy)), &shown); err != nil || len(shown.Rules) != 3 {
		t.Fatalf("the member's view of the policy: %+v %v", shown, err)
	}

	// On a port (its own policy) and on its network.
	netID := strings.TrimSpace(openstack(t, member, "network", "create", "-f", "value", "-c", "id", "qnet"))
	openstack(t, member, "subnet", "create", "--network", netID, "--subnet-range", "10.62.0.0/24", "qsub")
	port := strings.TrimSpace(openstack(t, member, "port", "create", "-f", "value", "-c", "id", "--network", netID, "qport"))
	openstack(t, member, "port", "set", "--qos-policy", policy, port)
	openstack(t, member, "network", "set", "--qos-policy", policy, netID)
	if got := strings.TrimSpace(openstack(t, member, "port", "show", "-f", "value", "-c", "qos_policy_id", port)); got != policy {
		t.Errorf("port's qos_policy_id %q, want %s", got, policy)
	}
	if got := strings.TrimSpace(openstack(t, member, "port", "show", "-f", "value", "-c", "qos_network_policy_id", port)); got != policy {
		t.Errorf("port's qos_network_policy_id %q, want %s", got, policy)
	}
	if out, err := openstackErr(admin, "network", "qos", "policy", "delete", policy); err == nil {
		t.Fatalf("deleted a policy in use: %s", out)
	}

	// Bound to this node with its device present, the port's policy is
	// compiled into the dataplane's qos map.
	openstack(t, admin, "port", "set", "--host", "qos", port)
	dev := dataplane.DeviceName(port)
	if out, err := exec.Command("ip", "link", "add", dev, "type", "veth", "peer", "name", dev+"p").CombinedOutput(); err != nil {
		t.Fatalf("ip link add %s: %v %s", dev, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", dev).Run() })
	exec.Command("ip", "link", "set", dev, "up").Run()
	exec.Command("ip", "link", "set", dev+"p", "up").Run()
	var cfg bpf.DataplaneQosCfg
	compiled := eventually(60*time.Second, func() bool {
		m, err := ebpf.LoadPinnedMap(filepath.Join(bpfDir, bpf.DataplaneMapQos), nil)
		if err != nil {
			return false
		}
		defer m.Close()
		var k uint32
		it := m.Iterate()
		for it.Next(&k, &cfg) {
			if cfg.Rate[1] == 10000*125 && cfg.Rate[0] == 20000*125 && cfg.Dscp == 46 && cfg.Flags&1 == 1 {
				return true
			}
		}
		return false
	})
	if !compiled {
		t.Fatalf("the port's policy never reached the qos map (last entry read %+v)", cfg)
	}

	// Traffic: a second port on the network (its network's policy, whose
	// ingress limit is the looser one), each port's device with a guest
	// namespace behind it; a's guest sends a UDP burst far above a's
	// egress limit to b's guest.
	portB := strings.TrimSpace(openstack(t, member, "port", "create", "-f", "value", "-c", "id", "--network", netID, "qportb"))
	openstack(t, admin, "port", "set", "--host", "qos", portB)
	here := "/run/netns/" + os.Getenv(qosNetnsEnv)
	devB := dataplane.DeviceName(portB)
	dataplanetest.Veths(t, here, devB)
	t.Cleanup(func() { exec.Command("ip", "link", "del", devB).Run() })
	guestA := qosGuest(t, member, here, port, dev)
	guestB := qosGuest(t, member, here, portB, devB)
	ipB := portIP(t, member, portB)
	sink := qosSink(t, guestB, ipB+":9000")
	if !eventually(30*time.Second, func() bool { qosSend(t, guestA, ipB+":9000", 1, 100); return sink.bytes() > 0 }) {
		t.Fatal("a's guest never reached b's")
	}
	if tos := sink.tos(); tos != 46<<2 {
		t.Errorf("b's guest received TOS %#x from a, want EF (%#x)", tos, 46<<2)
	}
	before := sink.bytes()
	took := qosSend(t, guestA, ipB+":9000", 2000, 1400)
	time.Sleep(300 * time.Millisecond)
	got := sink.bytes() - before
	bound := 2000*125 + 10000*125*(took.Seconds()+1) // burst + rate over the sending, plus a second
	t.Logf("a's 2,800,000 bytes to b under a 10 Mbit/s egress limit: %d arrived in %v (bound %.0f)", got, took, bound)
	if float64(got) > bound || got == 0 {
		t.Errorf("%d bytes arrived in %v, want 1..%.0f", got, took, bound)
	}

	// Unset everywhere, the policy goes, and the map entry with it.
	openstack(t, member, "port", "unset", "--qos-policy", port)
	openstack(t, member, "network", "set", "--no-qos-policy", netID)
	openstack(t, admin, "network", "qos", "policy", "delete", policy)
	if !eventually(60*time.Second, func() bool {
		m, err := ebpf.LoadPinnedMap(filepath.Join(bpfDir, bpf.DataplaneMapQos), nil)
		if err != nil {
			return false
		}
		defer m.Close()
		var k uint32
		return !m.Iterate().Next(&k, &cfg)
	}) {
		t.Errorf("the qos map still holds an entry after the policy went: %+v", cfg)
	}
}

// portIP is a port's first fixed IP.
func portIP(t *testing.T, env []string, port string) string {
	t.Helper()
	var p struct {
		FixedIPs []struct {
			IP string `json:"ip_address"`
		} `json:"fixed_ips"`
	}
	if err := json.Unmarshal([]byte(openstack(t, env, "port", "show", "-f", "json", port)), &p); err != nil || len(p.FixedIPs) == 0 {
		t.Fatalf("port %s's addresses: %v", port, err)
	}
	return p.FixedIPs[0].IP
}

// qosGuest puts the peer of port's device dev (in the namespace here)
// into a guest namespace with the port's MAC and address.
func qosGuest(t *testing.T, env []string, here, port, dev string) string {
	t.Helper()
	mac, err := net.ParseMAC(strings.TrimSpace(openstack(t, env, "port", "show", "-f", "value", "-c", "mac_address", port)))
	if err != nil {
		t.Fatal(err)
	}
	return dataplanetest.Guest(t, here, dev, mac, netip.PrefixFrom(netip.MustParseAddr(portIP(t, env, port)), 24), netip.Addr{})
}

// udpSink counts the UDP bytes that reach it and keeps the IPv4 TOS of
// the first datagram.
type udpSink struct {
	mu    sync.Mutex
	n     int
	first int // -1 until a datagram came
}

func (s *udpSink) bytes() int { s.mu.Lock(); defer s.mu.Unlock(); return s.n }
func (s *udpSink) tos() int   { s.mu.Lock(); defer s.mu.Unlock(); return s.first }

func qosSink(t *testing.T, ns, addr string) *udpSink {
	t.Helper()
	var c *net.UDPConn
	if err := dataplanetest.In(t, ns, func() error {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		if c, err = net.ListenUDP("udp", ua); err != nil {
			return err
		}
		raw, err := c.SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1) })
		return serr
	}); err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(4 << 20)
	s := &udpSink{first: -1}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf, oob := make([]byte, 65536), make([]byte, 128)
		for {
			n, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.n += n
			if s.first < 0 {
				if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
					for _, m := range msgs {
						if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TOS && len(m.Data) > 0 {
							s.first = int(m.Data[0])
						}
					}
				}
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// qosSend sends count datagrams of size bytes from namespace ns to addr
// as fast as the socket takes them, and says how long that took.
func qosSend(t *testing.T, ns, addr string, count, size int) time.Duration {
	t.Helper()
	var took time.Duration
	if err := dataplanetest.In(t, ns, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		payload, start := make([]byte, size), time.Now()
		for i := 0; i < count; i++ {
			c.Write(payload) // an unreachable peer's ICMP error fails a write; the count says what arrived
		}
		took = time.Since(start)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return took
}
