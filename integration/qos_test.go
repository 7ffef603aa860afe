//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/rackstack/rackstack/bpf"
	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/testenv"
)

const qosNetnsEnv = "RACKSTACK_QOS_NETNS"

// TestNeutronQoS drives Neutron QoS with the openstack CLI against a real
// rackd with its dataplane on: a policy with a bandwidth limit and a DSCP
// mark, the rule types listed and the unenforced ones refused, the policy
// set on a port and on a network, refused deletion while in use; and the
// port's compiled policy in rackd's pinned qos map once the port's device
// is on the node. (That the BPF policer and marker do what the map says
// is shown on real veths by dataplane's TestQoS*Namespaces.)
func TestNeutronQoS(t *testing.T) {
	testenv.RequireRoot(t, "make a network namespace and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "ip"} {
		testenv.RequireCommand(t, c)
	}
	if os.Getenv(qosNetnsEnv) == "" {
		ns := nsName("qos")
		addNetns(t, ns)
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^TestNeutronQoS$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), qosNetnsEnv+"="+ns, "RACKSTACK_BIN="+binDir)
		out, err := cmd.CombinedOutput()
		t.Logf("in namespace %s:\n%s", ns, out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestNeutronQoS") {
			t.Fatalf("TestNeutronQoS in its namespace: %v", err)
		}
		return
	}

	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-qos%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	n1 := newRackd(t, "qos", "--dataplane", "on", "--bpf-dir", bpfDir, "--s3-listen", "off", "--public", "172.24.9.0/24")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)

	openstack(t, admin, "project", "create", "qp")
	openstack(t, admin, "user", "create", "--project", "qp", "--password", "qp-pass-1", "uqp")
	openstack(t, admin, "role", "add", "--project", "qp", "--user", "uqp", "member")
	member := userEnv(creds, n1, "uqp", "qp-pass-1", "qp")

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
