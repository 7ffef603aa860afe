//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/provision/agentapi"
)

// TestProvisioningHTTP runs rackd with provisioning on lo and plays the
// ramdisk agent of an unknown machine over real HTTP: the discovery
// script, the inventory that enrols it, the poweroff it is told, and the
// script a known machine gets — also after rackd restarts.
func TestProvisioningHTTP(t *testing.T) {
	ramdisk := t.TempDir()
	for _, f := range []string{"vmlinuz", "initramfs.zst"} {
		if err := os.WriteFile(filepath.Join(ramdisk, f), []byte("not a real "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, port, _ := net.SplitHostPort(freeAddr(t))
	base := "http://127.0.0.1:" + port
	n1 := newRackd(t, "p1", "--provision-interface", "lo", "--provision-ramdisk", ramdisk, "--provision-http-port", port)
	n1.start("--bootstrap")
	n1.waitHealthy()

	const mac = "52:54:00:0b:ad:01"
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	agentCall := func(path, token string, in, out any) int {
		t.Helper()
		body, _ := json.Marshal(in)
		req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil && resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}

	// The conductor registers once rackd leads; until then the script is
	// served already (it reads the state).
	code, script := get(base + "/boot.ipxe?mac=" + mac)
	if code != 200 || !strings.Contains(script, "kernel "+base+"/ramdisk/vmlinuz initrd=initramfs.zst console=ttyS0") {
		t.Fatalf("discovery script %d:\n%s", code, script)
	}
	m := regexp.MustCompile(`rackstack\.token=(\S+)`).FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("no token in:\n%s", script)
	}
	token := m[1]
	if code, body := get(base + "/ramdisk/vmlinuz"); code != 200 || body != "not a real vmlinuz" {
		t.Fatalf("kernel %d %q", code, body)
	}
	if code, _ := get(n1.url() + "/boot.ipxe?mac=" + mac); code != 404 {
		t.Fatalf("the API listener serves boot scripts (%d): tenants could reach them", code)
	}

	inv := agentapi.Inventory{
		Interfaces: []agentapi.Interface{{Name: "eth0", MACAddress: mac, HasCarrier: true}},
		CPU:        agentapi.CPU{Count: 2, Architecture: "x86_64"},
		Memory:     agentapi.Memory{PhysicalMB: 1024},
		Disks:      []agentapi.Disk{{Name: "/dev/vda", Size: 4 << 30}},
		Boot:       agentapi.Boot{CurrentBootMode: "bios", PXEInterface: mac},
	}
	var reply agentapi.InventoryReply
	if code := agentCall(agentapi.PathInventory, token, inv, &reply); code != 200 || reply.Node == "" {
		t.Fatalf("inventory: %d %+v", code, reply)
	}
	var hb agentapi.HeartbeatReply
	if code := agentCall(agentapi.PathHeartbeat, token, agentapi.Heartbeat{}, &hb); code != 200 || hb.Command.Op != agentapi.OpPowerOff {
		t.Fatalf("heartbeat: %d %+v", code, hb)
	}
	res := agentapi.Result{CommandID: hb.Command.ID, Op: hb.Command.Op, OK: true, Message: "powering off"}
	if code := agentCall(agentapi.PathResult, token, res, nil); code != http.StatusNoContent {
		t.Fatalf("poweroff result: %d", code)
	}
	if code := agentCall(agentapi.PathHeartbeat, token+"0", agentapi.Heartbeat{}, nil); code != http.StatusUnauthorized {
		t.Fatalf("a wrong token: %d, want 401", code)
	}
	known := func() {
		t.Helper()
		code, script := get(base + "/boot.ipxe?mac=" + mac)
		if code != 200 || !strings.Contains(script, "\nexit\n") || !strings.Contains(script, reply.Node+" is enroll") {
			t.Fatalf("known machine's script %d:\n%s", code, script)
		}
	}
	known()
	// The conductor registers (a Raft write) once this node can write.
	if !eventually(30*time.Second, func() bool { return strings.Contains(n1.log(), "conductor started") }) {
		t.Fatalf("the conductor did not start:\n%s", n1.log())
	}

	// A restarted rackd knows the machine, and the conductor key it keeps
	// in its data dir still accepts the token the machine booted with.
	n1.kill()
	n1.start()
	n1.waitHealthy()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/boot.ipxe?mac=" + mac)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("provisioning HTTP not back after the restart: %v\n%s", err, n1.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	known()
	var again agentapi.InventoryReply
	if code := agentCall(agentapi.PathInventory, token, inv, &again); code != 200 || again.Node != reply.Node {
		t.Fatalf("inventory after the restart: %d %+v, want node %s", code, again, reply.Node)
	}
	if !eventually(30*time.Second, func() bool { return strings.Count(n1.log(), "conductor started") == 2 }) {
		t.Fatalf("the conductor did not start twice:\n%s", n1.log())
	}
}
