package scheduler

import (
	"errors"
	"strings"
	"testing"
)

func hosts() []Host {
	return []Host{
		{Name: "n1", Up: true, AZ: "nova", VCPUs: 2, MemoryMB: 4096, DiskGB: 100, UsedMemoryMB: 2048, Servers: []string{"s1"}},
		{Name: "n2", Up: true, AZ: "nova", VCPUs: 2, MemoryMB: 4096, DiskGB: 100, UsedMemoryMB: 512, Servers: []string{"s2"}},
		{Name: "n3", Up: false, AZ: "nova", VCPUs: 64, MemoryMB: 65536, DiskGB: 1000},
		{Name: "n4", Up: true, AZ: "edge", VCPUs: 2, MemoryMB: 1536, DiskGB: 20},
	}
}

func TestSelect(t *testing.T) {
	cases := []struct {
		name string
		req  Request
		cfg  Config
		want string // host, or "error: <substring>"
	}{
		{"spread: most free RAM, down node skipped", Request{VCPUs: 1, MemoryMB: 256, DiskGB: 1}, Config{}, "n2"},
		{"pack: least free RAM", Request{VCPUs: 1, MemoryMB: 256, DiskGB: 1}, Config{Pack: true}, "n4"},
		{"availability zone", Request{VCPUs: 1, MemoryMB: 256, AZ: "edge"}, Config{}, "n4"},
		{"forced host", Request{VCPUs: 1, MemoryMB: 256, Host: "n1"}, Config{}, "n1"},
		{"CPU overcommit 4x: 8 vCPUs fit on 2 cores", Request{VCPUs: 8, MemoryMB: 256}, Config{}, "n2"},
		{"9 vCPUs do not", Request{VCPUs: 9, MemoryMB: 256}, Config{}, "error: 8 vCPUs free, 9 needed"},
		{"RAM less the node's reservation and its servers", Request{VCPUs: 1, MemoryMB: 3072}, Config{}, "n2"},
		{"RAM short everywhere", Request{VCPUs: 1, MemoryMB: 3073}, Config{}, "error: n2: 3072 MB RAM free, 3073 needed"},
		{"RAM overcommit", Request{VCPUs: 1, MemoryMB: 5000}, Config{RAMRatio: 2}, "n2"},
		{"disk", Request{VCPUs: 1, MemoryMB: 256, DiskGB: 50, AZ: "edge"}, Config{}, "error: 20 GB disk free, 50 needed"},
		{"affinity follows the group", Request{VCPUs: 1, MemoryMB: 256, Group: &Group{Policy: "affinity", Members: []string{"s1"}}}, Config{}, "n1"},
		{"affinity of an empty group: anywhere", Request{VCPUs: 1, MemoryMB: 256, Group: &Group{Policy: "affinity"}}, Config{}, "n2"},
		{"anti-affinity avoids the group", Request{VCPUs: 1, MemoryMB: 256, Group: &Group{Policy: "anti-affinity", Members: []string{"s2"}}}, Config{}, "n1"},
		{"anti-affinity with no host left", Request{VCPUs: 1, MemoryMB: 256, Group: &Group{Policy: "anti-affinity", Members: []string{"s1", "s2"}}, AZ: "nova"}, Config{}, "error: anti-affinity"},
		{"soft-affinity prefers the group's host", Request{VCPUs: 1, MemoryMB: 256, Group: &Group{Policy: "soft-affinity", Members: []string{"s1"}}}, Config{}, "n1"},
		{"soft-anti-affinity prefers elsewhere", Request{VCPUs: 1, MemoryMB: 256, Group: &Group{Policy: "soft-anti-affinity", Members: []string{"s2"}}}, Config{}, "n1"},
		{"soft-anti-affinity still places when it must", Request{VCPUs: 1, MemoryMB: 256, AZ: "nova", Group: &Group{Policy: "soft-anti-affinity", Members: []string{"s1", "s2"}}}, Config{}, "n2"},
	}
	for _, c := range cases {
		got, err := Select(hosts(), c.req, c.cfg)
		if want, ok := strings.CutPrefix(c.want, "error: "); ok {
			if !errors.Is(err, ErrNoValidHost) || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %q, %v; want an error with %q", c.name, got, err, want)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %s", c.name, got, err, c.want)
		}
	}
	if _, err := Select(nil, Request{VCPUs: 1}, Config{}); !errors.Is(err, ErrNoValidHost) {
		t.Errorf("no hosts: %v", err)
	}
}

// A node that runs no compute service takes no server, however much room
// it has; a server with nowhere else to go says why.
func TestSelectSkipsNodesWithoutCompute(t *testing.T) {
	hs := []Host{
		{Name: "a1", Up: true, NoCompute: true, VCPUs: 64, MemoryMB: 65536, DiskGB: 1000},
		{Name: "a2", Up: true, VCPUs: 2, MemoryMB: 4096, DiskGB: 100},
	}
	if got, err := Select(hs, Request{VCPUs: 1, MemoryMB: 256}, Config{}); err != nil || got != "a2" {
		t.Fatalf("got %q, %v; want a2", got, err)
	}
	if got, err := Select(hs, Request{VCPUs: 1, MemoryMB: 256, Host: "a1"}, Config{}); !errors.Is(err, ErrNoValidHost) || !strings.Contains(err.Error(), "runs no compute service") {
		t.Fatalf("forced onto a1: %q, %v", got, err)
	}
}
