package dataplane

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

// qosGuests are two guests, a and b, behind ports of one network, each in
// its own namespace, with IPv4 and IPv6 addresses.
func qosGuests(t *testing.T) (d *Dataplane, ga, gb string, want Desired) {
	pfx := netip.MustParsePrefix
	d = openTest(t, "tapa", "tapb")
	ga = dataplanetest.Guest(t, d.cfg.Netns, "tapa", macA, pfx("10.0.0.10/24"), netip.Addr{})
	gb = dataplanetest.Guest(t, d.cfg.Netns, "tapb", macB, pfx("10.0.0.11/24"), netip.Addr{})
	dataplanetest.IPv6(t, ga, "tapap", pfx("2001:db8::10/64"))
	dataplanetest.IPv6(t, gb, "tapbp", pfx("2001:db8::11/64"))
	want = Desired{Ports: []Port{
		{ID: "a", Device: "tapa", VLAN: 101, MAC: macA, Addrs: []netip.Prefix{pfx("10.0.0.10/32"), pfx("2001:db8::10/128")}},
		{ID: "b", Device: "tapb", VLAN: 101, MAC: macB, Addrs: []netip.Prefix{pfx("10.0.0.11/32"), pfx("2001:db8::11/128")}},
	}}
	return d, ga, gb, want
}

// udpSink counts the UDP payload bytes that reach addr in namespace ns
// until stop is closed; the count comes on the channel it returns.
func udpSink(t *testing.T, ns, addr string, stop <-chan struct{}) <-chan int {
	t.Helper()
	var c *net.UDPConn
	if err := dataplanetest.In(t, ns, func() error {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp", ua)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(4 << 20)
	got := make(chan int, 1)
	go func() {
		defer c.Close()
		total, buf := 0, make([]byte, 65536)
		for {
			select {
			case <-stop:
				got <- total
				return
			default:
			}
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := c.Read(buf)
			if err == nil {
				total += n
			} else if !errors.Is(err, os.ErrDeadlineExceeded) {
				got <- total
				return
			}
		}
	}()
	return got
}

// blast sends count datagrams of size bytes from namespace ns to addr as
// fast as the socket takes them, and says how long that took.
func blast(t *testing.T, ns, addr string, count, size int) time.Duration {
	t.Helper()
	var took time.Duration
	if err := dataplanetest.In(t, ns, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		payload := make([]byte, size)
		start := time.Now()
		for i := 0; i < count; i++ {
			if _, err := c.Write(payload); err != nil {
				return err
			}
		}
		took = time.Since(start)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return took
}

// measure blasts count datagrams from ga to gb's sink and returns the
// payload bytes that arrived, how long the sending took, and how the
// dataplane's counters moved.
func measure(t *testing.T, d *Dataplane, ga, gb string, count, size int) (int, time.Duration, map[string]uint64) {
	t.Helper()
	stop := make(chan struct{})
	got := udpSink(t, gb, "10.0.0.11:9000", stop)
	before, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	took := blast(t, ga, "10.0.0.11:9000", count, size)
	time.Sleep(300 * time.Millisecond) // let the sink drain what arrived
	close(stop)
	received := <-got
	after, err := d.counters()
	if err != nil {
		t.Fatal(err)
	}
	moved := map[string]uint64{}
	for k, v := range after {
		moved[k] = v - before[k]
	}
	return received, took, moved
}

// TestQoSBandwidthLimitNamespaces sends a burst of UDP far above a
// port's bandwidth limit between guests in namespaces: with the limit,
// what arrives is at most the bucket plus the rate over the time the
// sending took (with a second's margin) and the policer counts drops;
// without it, the dataplane drops nothing. Egress (a's limit) and
// ingress (b's) alike.
func TestQoSBandwidthLimitNamespaces(t *testing.T) {
	d, ga, gb, want := qosGuests(t)
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if out, err := ping(t, ga, "-c", "1", "10.0.0.11"); err != nil { // ARP resolved before the burst
		t.Fatalf("ping a to b: %v\n%s", err, out)
	}
	const count, size = 2000, 1400 // 2.8 MB of payload
	const kbps, burstKbits = 2000, 1000
	rate, burst := float64(kbps*125), float64(burstKbits*125)
	if burst < minBurstBytes {
		burst = minBurstBytes
	}

	received, took, moved := measure(t, d, ga, gb, count, size)
	if moved["drop_qos"] != 0 {
		t.Errorf("without a limit the policer dropped %d frames", moved["drop_qos"])
	}
	if moved["fwd_local"] < count {
		t.Errorf("without a limit the dataplane passed %d of %d datagrams", moved["fwd_local"], count)
	}
	t.Logf("no limit: %d of %d bytes arrived in %v", received, count*size, took)

	for _, tc := range []struct {
		name string
		port int
		qos  QoS
	}{
		{"egress of a", 0, QoS{Egress: Limit{Kbps: kbps, BurstKbits: burstKbits}}},
		{"ingress of b", 1, QoS{Ingress: Limit{Kbps: kbps, BurstKbits: burstKbits}}},
	} {
		limited := want
		limited.Ports = append([]Port{}, want.Ports...)
		q := tc.qos
		limited.Ports[tc.port].QoS = &q
		if _, err := d.Apply(limited); err != nil {
			t.Fatal(err)
		}
		received, took, moved := measure(t, d, ga, gb, count, size)
		// Each datagram is its payload plus 42 bytes of headers on the
		// wire the policer counts.
		bound := burst + rate*(took.Seconds()+1)
		t.Logf("%s: %d of %d payload bytes arrived in %v (bound %.0f), %d frames policed", tc.name, received, count*size, took, bound, moved["drop_qos"])
		if float64(received) > bound {
			t.Errorf("%s: %d bytes arrived in %v, more than the bucket (%.0f) and %.0f B/s allow (%.0f)", tc.name, received, took, burst, rate, bound)
		}
		if moved["drop_qos"] == 0 {
			t.Errorf("%s: the policer dropped nothing", tc.name)
		}
		if received == 0 {
			t.Errorf("%s: nothing arrived: the bucket let not even its burst through", tc.name)
		}
		// Removing the limit lifts it.
		if _, err := d.Apply(want); err != nil {
			t.Fatal(err)
		}
	}
}

// recvTOS listens on addr (IPv4 or IPv6 UDP) in namespace ns and returns a
// function that reads one datagram and returns its IPv4 TOS or IPv6
// traffic class, as the receiving kernel saw it.
func recvTOS(t *testing.T, ns, addr string, v6 bool) func() (byte, error) {
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
		raw.Control(func(fd uintptr) {
			if v6 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
			}
		})
		return serr
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func() (byte, error) {
		buf, oob := make([]byte, 2048), make([]byte, 256)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
		if err != nil {
			return 0, err
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return 0, err
		}
		for _, m := range msgs {
			switch {
			case !v6 && m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TOS && len(m.Data) >= 1:
				return m.Data[0], nil
			case v6 && m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_TCLASS && len(m.Data) >= 4:
				return m.Data[0], nil // an int, little-endian
			}
		}
		return 0, errors.New("no TOS or traffic class in the control messages")
	}
}

// sendTOS sends one datagram from namespace ns to addr with the IPv4 TOS
// or IPv6 traffic class tos.
func sendTOS(t *testing.T, ns, addr string, v6 bool, tos int) {
	t.Helper()
	if err := dataplanetest.In(t, ns, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		raw, err := c.(*net.UDPConn).SyscallConn()
		if err != nil {
			return err
		}
		var serr error
		raw.Control(func(fd uintptr) {
			if v6 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tos)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, tos)
			}
		})
		if serr != nil {
			return serr
		}
		_, err = c.Write([]byte("dscp"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestQoSDSCPMarkingNamespaces checks that a port's DSCP marking rewrites
// what its guest sends, IPv4 (whose header checksum the receiving kernel
// checks) and IPv6, keeping the ECN bits the guest set, and that without
// the rule the guest's own TOS arrives unchanged.
func TestQoSDSCPMarkingNamespaces(t *testing.T) {
	d, ga, gb, want := qosGuests(t)
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	recv4 := recvTOS(t, gb, "10.0.0.11:9100", false)
	recv6 := recvTOS(t, gb, "[2001:db8::11]:9100", true)
	if out, err := ping(t, ga, "-c", "1", "10.0.0.11"); err != nil {
		t.Fatalf("ping a to b: %v\n%s", err, out)
	}
	if out, err := ping(t, ga, "-6", "-c", "1", "2001:db8::11"); err != nil {
		t.Fatalf("ping6 a to b: %v\n%s", err, out)
	}
	check := func(what string, v6 bool, recv func() (byte, error), sent int, wantTOS byte) {
		t.Helper()
		sendTOS(t, ga, map[bool]string{false: "10.0.0.11:9100", true: "[2001:db8::11]:9100"}[v6], v6, sent)
		got, err := recv()
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return
		}
		if got != wantTOS {
			t.Errorf("%s: b received TOS %#x, want %#x", what, got, wantTOS)
		}
	}
	// Unmarked: the guest's TOS (AF11 with ECT(0)) goes through as sent.
	check("IPv4 without marking", false, recv4, 0x2a, 0x2a)
	check("IPv6 without marking", true, recv6, 0x2a, 0x2a)

	marked := want
	marked.Ports = append([]Port{}, want.Ports...)
	marked.Ports[0].QoS = &QoS{Mark: true, DSCP: 46}
	if _, err := d.Apply(marked); err != nil {
		t.Fatal(err)
	}
	// EF (46) in the DSCP bits, the guest's ECN bits (here ECT(0)=2) kept.
	check("IPv4 marked EF", false, recv4, 0x2a, 46<<2|2)
	check("IPv6 marked EF", true, recv6, 0x2a, 46<<2|2)
	check("IPv4 marked EF, no ECN", false, recv4, 0, 46<<2)
}

// TestQoSPacketRateLimitNamespaces sends small datagrams far above a
// port's packet rate limit (egress of a, then ingress of b): what arrives
// is at most the packet bucket plus the rate over the sending time (with
// a second's margin), though the byte rate is low; and without the limit
// the dataplane drops nothing.
func TestQoSPacketRateLimitNamespaces(t *testing.T) {
	d, ga, gb, want := qosGuests(t)
	if _, err := d.Apply(want); err != nil {
		t.Fatal(err)
	}
	if out, err := ping(t, ga, "-c", "1", "10.0.0.11"); err != nil {
		t.Fatalf("ping a to b: %v\n%s", err, out)
	}
	const count, size = 8000, 100
	const kpps = 1 // 1000 packets per second, a bucket of 800
	received, _, moved := measure(t, d, ga, gb, count, size)
	if moved["drop_qos"] != 0 || moved["fwd_local"] < count {
		t.Errorf("without a limit: %d policed, %d of %d passed", moved["drop_qos"], moved["fwd_local"], count)
	}
	t.Logf("no limit: %d of %d datagrams arrived", received/size, count)
	for _, tc := range []struct {
		name string
		port int
		qos  QoS
	}{
		{"egress of a", 0, QoS{Egress: Limit{Kpps: kpps}}},
		{"ingress of b", 1, QoS{Ingress: Limit{Kpps: kpps}}},
	} {
		limited := want
		limited.Ports = append([]Port{}, want.Ports...)
		q := tc.qos
		limited.Ports[tc.port].QoS = &q
		if _, err := d.Apply(limited); err != nil {
			t.Fatal(err)
		}
		received, took, moved := measure(t, d, ga, gb, count, size)
		packets := received / size
		bound := 800 + 1000*(took.Seconds()+1)
		t.Logf("%s: %d of %d datagrams arrived in %v (bound %.0f), %d frames policed", tc.name, packets, count, took, bound, moved["drop_qos"])
		if float64(packets) > bound {
			t.Errorf("%s: %d datagrams arrived in %v, more than 800 and 1000/s allow (%.0f)", tc.name, packets, took, bound)
		}
		if moved["drop_qos"] == 0 || packets == 0 {
			t.Errorf("%s: %d policed, %d arrived", tc.name, moved["drop_qos"], packets)
		}
		if _, err := d.Apply(want); err != nil {
			t.Fatal(err)
		}
	}
}
