package benchport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/dataplane/dataplanetest"
)

func TestSpecIsChecked(t *testing.T) {
	tests := map[string]Spec{
		"no port":      {MAC: "fa:16:3e:00:00:01", Address: "10.0.0.1/24"},
		"a slash":      {PortID: "a/b", MAC: "fa:16:3e:00:00:01", Address: "10.0.0.1/24"},
		"bad MAC":      {PortID: "p", MAC: "nope", Address: "10.0.0.1/24"},
		"no length":    {PortID: "p", MAC: "fa:16:3e:00:00:01", Address: "10.0.0.1"},
		"IPv6 address": {PortID: "p", MAC: "fa:16:3e:00:00:01", Address: "fd00::1/64"},
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := (&Manager{}).Create(s); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestRunIsBounded(t *testing.T) {
	m := &Manager{}
	tests := map[string]Test{
		"too long":     {Kind: "rr", Target: "10.0.0.2", Duration: "2m"},
		"no duration":  {Kind: "rr", Target: "10.0.0.2"},
		"bad target":   {Kind: "rr", Target: "example", Duration: "1s"},
		"many streams": {Kind: "stream", Target: "10.0.0.2", Streams: MaxStreams + 1, Duration: "1s"},
	}
	m.ports = map[string]*port{"p": {}}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := m.Run(context.Background(), "p", tc); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := m.Run(context.Background(), "nope", Test{Kind: "rr", Target: "10.0.0.2", Duration: "1s"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown port: %v", err)
	}
}

// Two bench ports in a test namespace standing for the node, plugged
// into a real dataplane as two ports of one network: every kind of test
// runs between them, and removal leaves no device or namespace.
func TestPortsThroughTheDataplane(t *testing.T) {
	dataplanetest.NeedRoot(t)
	nodeNS := dataplanetest.Netns(t)
	dp, err := dataplane.Open(dataplane.Config{PinDir: dataplanetest.PinDir(t), Netns: nodeNS})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	m := &Manager{DataplaneNetns: nodeNS}
	defer m.Close()
	specs := []Spec{
		{PortID: "0a1b2c3d-0000-4000-8000-00000000000a", MAC: "fa:16:3e:00:00:0a", Address: "10.250.0.10/24"},
		{PortID: "7f6e5d4c-0000-4000-8000-00000000000b", MAC: "fa:16:3e:00:00:0b", Address: "10.250.0.11/24"},
	}
	var want dataplane.Desired
	for _, s := range specs {
		p, err := m.Create(s)
		if err != nil {
			t.Fatalf("create %s: %v", s.PortID, err)
		}
		mac, _ := net.ParseMAC(s.MAC)
		pfx := netip.MustParsePrefix(s.Address)
		want.Ports = append(want.Ports, dataplane.Port{ID: s.PortID, Device: p.Device, VLAN: 100, MAC: mac,
			Addrs: []netip.Prefix{netip.PrefixFrom(pfx.Addr(), 32)}, Security: true, Groups: []string{"g"}})
	}
	// Egress anywhere, ingress to the servers only: the stateful path.
	want.Rules = []dataplane.Rule{{Group: "g", PortMin: -1, PortMax: -1}, {Group: "g", Ingress: true, Proto: 6, PortMin: SinkPort, PortMax: EchoPort}}
	plugged, err := dp.Apply(want)
	if err != nil || len(plugged) != 2 {
		t.Fatalf("apply: plugged %v, %v", plugged, err)
	}
	if _, err := m.Create(specs[0]); !errors.Is(err, ErrExists) {
		t.Fatalf("second create of a port: %v", err)
	}
	for _, tc := range []Test{
		{Kind: "stream", Streams: 1}, {Kind: "stream", Streams: 4}, {Kind: "rr"}, {Kind: "crr"},
	} {
		tc.Target, tc.Duration = "10.250.0.11", "300ms"
		res, err := m.Run(context.Background(), specs[0].PortID, tc)
		if err != nil || res.Count == 0 || res.Value <= 0 {
			t.Fatalf("%s x%d: %+v, %v", tc.Kind, tc.Streams, res, err)
		}
	}
	// The second port is removed by a Manager that did not make it, as
	// after a restart of rackd.
	for i, s := range specs {
		rm := m
		if i == 1 {
			m.mu.Lock()
			p := m.ports[s.PortID]
			delete(m.ports, s.PortID)
			m.mu.Unlock()
			p.stop()
			for _, ln := range p.lns {
				ln.Close()
			}
			rm = &Manager{DataplaneNetns: nodeNS}
		}
		if err := rm.Remove(s.PortID); err != nil {
			t.Fatalf("remove: %v", err)
		}
		if err := rm.Remove(s.PortID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second remove: %v, want ErrNotFound", err)
		}
		if _, err := os.Stat("/run/netns/" + nsName(s.PortID)); !os.IsNotExist(err) {
			t.Errorf("namespace of %s left: %v", s.PortID, err)
		}
	}
	ns, _ := netns.GetFromPath(nodeNS)
	defer ns.Close()
	h, _ := netlink.NewHandleAt(ns)
	defer h.Close()
	for _, s := range specs {
		if _, err := h.LinkByName(dataplane.DeviceName(s.PortID)); err == nil {
			t.Errorf("device of %s left in the node's namespace", s.PortID)
		}
	}
	if len(m.List()) != 0 {
		t.Fatalf("ports listed after removal: %v", m.List())
	}
}
