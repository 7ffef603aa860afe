//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/testenv"
)

// testImage is the guest `make test-image` builds.
func testImage(t *testing.T) string {
	t.Helper()
	p, _ := filepath.Abs("../build/test-image.qcow2")
	testenv.RequireFile(t, p, "make test-image")
	return p
}

type serverInfo struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Status    string         `json:"status"`
	Addresses map[string]any `json:"addresses"`
	Host      string         `json:"OS-EXT-SRV-ATTR:host"`
	Power     any            `json:"OS-EXT-STS:power_state"`
}

func showServer(t *testing.T, env []string, name string) serverInfo {
	t.Helper()
	var s serverInfo
	out := openstack(t, env, "server", "show", "-f", "json", name)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("server show %s: %v\n%s", name, err, out)
	}
	return s
}

// waitConsole waits until the server's console log holds every marker.
func waitConsole(t *testing.T, env []string, name string, d time.Duration, markers ...string) string {
	t.Helper()
	var out string
	ok := eventually(d, func() bool {
		out, _ = openstackErr(env, "console", "log", "show", name)
		for _, m := range markers {
			if !strings.Contains(out, m) {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("console of %s lacks %q after %s:\n%s", name, markers, d, out)
	}
	return out
}

func qemuPID(t *testing.T, serverID string) int {
	t.Helper()
	out, _ := exec.Command("pgrep", "-f", "qemu-system-x86_64.*"+serverID).Output()
	fields := strings.Fields(string(out))
	if len(fields) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(fields[0])
	return pid
}

// logLines counts the lines of log that contain both msg and id.
func logLines(log, msg, id string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, msg) && strings.Contains(l, id) {
			n++
		}
	}
	return n
}

func TestCompute(t *testing.T) {
	testenv.RequireRoot(t, "make taps and load BPF programs")
	for _, c := range []string{"/usr/bin/openstack", "qemu-system-x86_64", "qemu-img", "genisoimage"} {
		testenv.RequireCommand(t, c)
	}
	img := testImage(t)
	bpfDir := fmt.Sprintf("/sys/fs/bpf/rackstack-ct%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(bpfDir) })
	// Image bytes live in the object store: the node gets a disk.
	n1 := newRackd(t, "c1", "--disk", t.TempDir(), "--dataplane", "on", "--bpf-dir", bpfDir, "--compute", "on", "--accel", "tcg", "--s3-listen", "off", "--history-step", "1s")
	n1.start("--bootstrap")
	n1.waitHealthy()
	creds := openrc(t, n1.dataDir)
	admin := osEnv(creds, n1)
	alice := osEnv(creds, n1, "OS_USERNAME=alice", "OS_PASSWORD=alice-pass-1", "OS_PROJECT_NAME=demo")
	home := t.TempDir()
	// What does not depend on another step goes at once: the CLI's
	// start-up is most of each step's time.
	setupTestimgAndAlice(t, admin, img)
	inParallel(t, "networks", map[string]func(t *testing.T){
		"net1": func(t *testing.T) {
			openstack(t, alice, "network", "create", "net1")
			openstack(t, alice, "subnet", "create", "--network", "net1", "--subnet-range", "10.30.0.0/24", "sub1")
		},
		"net2": func(t *testing.T) {
			openstack(t, alice, "network", "create", "net2")
			openstack(t, alice, "subnet", "create", "--network", "net2", "--subnet-range", "10.30.0.0/24", "sub2")
			openstack(t, alice, "keypair", "create", "--private-key", filepath.Join(home, "k1.pem"), "k1")
		},
	})

	// vm2 first: vm1's user data pings it (same network) and vm3's address
	// on net2 (must fail: same addresses, another VLAN).
	create := func(t *testing.T, name string, extra ...string) serverInfo {
		t.Helper()
		args := append([]string{"server", "create", "--image", "testimg", "--flavor", "m1.tiny", "--key-name", "k1", "--wait", "-f", "json"}, extra...)
		out := openstack(t, alice, append(args, name)...)
		var s serverInfo
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("server create %s: %v\n%s", name, err, out)
		}
		if s.Status != "ACTIVE" {
			t.Fatalf("%s is %s after --wait", name, s.Status)
		}
		return s
	}
	// vm2 and vm3 are made and boot at once.
	var vm2, vm3 serverInfo
	inParallel(t, "vm2 and vm3", map[string]func(t *testing.T){
		"vm2": func(t *testing.T) {
			start := time.Now()
			vm2 = create(t, "vm2", "--network", "net1")
			t.Logf("vm2 ACTIVE after %s", time.Since(start).Round(time.Millisecond))
			waitConsole(t, alice, "vm2", 3*time.Minute, "RACKSTACK-TEST-IMAGE: ready")
		},
		"vm3": func(t *testing.T) {
			vm3 = create(t, "vm3", "--nic", "net-id=net2,v4-fixed-ip=10.30.0.50")
			waitConsole(t, alice, "vm3", 3*time.Minute, "RACKSTACK-TEST-IMAGE: ready")
		},
	})
	vm2IP := firstIP(t, showServer(t, alice, "vm2"))
	ud := filepath.Join(home, "ud.sh")
	os.WriteFile(ud, []byte(fmt.Sprintf(`#!/bin/sh
for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 1 %s >/dev/null 2>&1 && break; sleep 1; done
ping -c 2 -W 1 %s >/dev/null 2>&1 && echo PING-VM2-OK || echo PING-VM2-FAIL
ping -c 2 -W 1 10.30.0.50 >/dev/null 2>&1 && echo PING-VM3-OK || echo PING-VM3-FAIL
printf %s | dd of=/dev/vda bs=1M seek=100 conv=fsync 2>/dev/null && sync
# The guest says when a NIC comes or goes (os-interface hot-plug), for
# at most 30 minutes.
(seen=""; i=0; while [ $i -lt 1800 ]; do
	for d in /sys/class/net/eth*; do
		[ -e "$d" ] || continue
		n=${d##*/}
		case " $seen " in *" $n "*) ;; *) seen="$seen $n"; echo "NIC-UP $n $(cat $d/address)";; esac
	done
	for n in $seen; do
		[ -e /sys/class/net/$n ] || { seen=$(echo " $seen " | sed "s/ $n / /"); echo "NIC-GONE $n"; }
	done
	i=$((i + 1)); sleep 1
done) &
`, vm2IP, vm2IP, snapshotMarker)), 0o644)
	vm1 := create(t, "vm1", "--network", "net1", "--user-data", ud)
	console := waitConsole(t, alice, "vm1", 4*time.Minute, "RACKSTACK-TEST-IMAGE: ready", "user-data ran")
	for _, want := range []string{"RACKSTACK-TEST-IMAGE: hostname=vm1", "RACKSTACK-TEST-IMAGE: uuid=" + vm1.ID, "RACKSTACK-TEST-IMAGE: ssh-key=ssh-", "RACKSTACK-TEST-IMAGE: ip=10.30.0.", "PING-VM2-OK", "PING-VM3-FAIL"} {
		if !strings.Contains(console, want) {
			t.Errorf("vm1's console lacks %q:\n%s", want, console)
		}
	}

	// The serial console: the URL Nova hands out is a live websocket to
	// the guest's first serial port. Enter gets echoed back.
	url := strings.TrimSpace(openstack(t, alice, "console", "url", "show", "--serial", "-f", "value", "-c", "url", "vm1"))
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	ws, _, err := websocket.Dial(wctx, url, &websocket.DialOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		t.Fatalf("serial console %s: %v", url, err)
	}
	if err := ws.Write(wctx, websocket.MessageBinary, []byte("\r")); err != nil {
		t.Fatalf("serial console write: %v", err)
	}
	if _, msg, err := ws.Read(wctx); err != nil || len(msg) == 0 {
		t.Fatalf("serial console read: %v %q", err, msg)
	}
	ws.Close(websocket.StatusNormalClosure, "")
	wcancel()
	checkNoVNC(t, alice, "vm1")

	// Stop, start, reboot, rebuild and rackctl console: each on a guest of
	// its own, at once.
	inParallel(t, "lifecycle", map[string]func(t *testing.T){
		"vm3 stop and start": func(t *testing.T) {
			openstack(t, alice, "server", "stop", "vm3")
			if !eventually(2*time.Minute, func() bool { return showServer(t, alice, "vm3").Status == "SHUTOFF" }) {
				t.Fatalf("vm3 did not stop")
			}
			if pid := qemuPID(t, vm3.ID); pid != 0 {
				t.Fatalf("vm3 is SHUTOFF but QEMU %d still runs", pid)
			}
			openstack(t, alice, "server", "start", "vm3")
			if !eventually(2*time.Minute, func() bool { return showServer(t, alice, "vm3").Status == "ACTIVE" }) {
				t.Fatalf("vm3 did not start again")
			}
			// shelve and unshelve: offloaded, then built again here.
			checkShelve(t, alice, vm3)
		},
		"vm2 reboot and rebuild": func(t *testing.T) {
			openstack(t, alice, "server", "reboot", "--hard", "--wait", "vm2")
			if s := showServer(t, alice, "vm2"); s.Status != "ACTIVE" {
				t.Fatalf("vm2 is %s after a hard reboot", s.Status)
			}
			checkRebuild(t, creds, n1, alice, vm2, vm2IP)
			// Backups here, not in vm1's longer lane (CI time).
			checkServerBackup(t, alice, vm2)
			start := time.Now()
			checkResize(t, creds, n1, admin, alice, vm2)
			t.Logf("vm2 resized, confirmed, resized and reverted in %s", time.Since(start).Round(time.Second))
		},
		// rackctl console: the same console in a terminal.
		"vm1 rackctl console": func(t *testing.T) { checkRackctlConsole(t, creds, n1, vm1.ID) },
		// lock, os-resetState and security groups: on vm1, left as it was.
		// createImage after them: a snapshot of vm1 with what it wrote.
		// Rescue and unrescue last (this lane is shorter than vm2's).
		"vm1 server actions": func(t *testing.T) {
			checkServerActions(t, admin, alice, vm1)
			checkServerImage(t, alice, vm1)
			start := time.Now()
			checkRescue(t, n1, alice, vm1)
			t.Logf("vm1 rescued and unrescued in %s", time.Since(start).Round(time.Second))
		},
		// Server tags: on vm3, whose stop and start keep it in states
		// Nova lets tags change in.
		"vm3 server tags": func(t *testing.T) { checkServerTags(t, alice, vm3, vm1, vm2) },
	})

	// kill -9 rackd: the guests keep running, the new rackd adopts them.
	pid := qemuPID(t, vm1.ID)
	if pid == 0 {
		t.Fatal("no QEMU for vm1")
	}
	n1.kill()
	time.Sleep(time.Second)
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("vm1's QEMU %d died with rackd", pid)
	}
	n1.start()
	n1.waitHealthy()
	time.Sleep(3 * time.Second)
	if s := showServer(t, alice, "vm1"); s.Status != "ACTIVE" || qemuPID(t, vm1.ID) != pid {
		t.Fatalf("after the restart vm1 is %s with QEMU %d (was %d)", s.Status, qemuPID(t, vm1.ID), pid)
	}
	// A guest that dies on its own: stopped by the system, as Nova's power
	// sync does, said once in the log and in the action log.
	qpid := qemuPID(t, vm3.ID)
	if qpid == 0 {
		t.Fatal("no QEMU for vm3")
	}
	syscall.Kill(qpid, syscall.SIGKILL) // the QEMU this test's rackd started
	if !eventually(time.Minute, func() bool { return showServer(t, alice, "vm3").Status == "SHUTOFF" }) {
		t.Fatalf("vm3 is %s after its QEMU died", showServer(t, alice, "vm3").Status)
	}
	var acts struct {
		InstanceActions []struct {
			Action string  `json:"action"`
			UserID *string `json:"user_id"`
		} `json:"instanceActions"`
	}
	if code, err := call("GET", n1.url()+"/compute/v2.1/servers/"+vm3.ID+"/os-instance-actions", token(t, n1, "alice", "alice-pass-1", "demo"), nil, &acts); err != nil || code != 200 ||
		len(acts.InstanceActions) == 0 || acts.InstanceActions[0].Action != "stop" || acts.InstanceActions[0].UserID != nil {
		t.Errorf("vm3's actions after its guest died: %d %v %+v", code, err, acts)
	}
	time.Sleep(5 * time.Second) // a few more passes
	if n := logLines(n1.log(), "shutdown by itself", vm3.ID); n != 1 {
		t.Errorf("vm3's death logged %d times, want once", n)
	}
	// The restarted agent says once that it adopted each guest, not on
	// every pass (one every 2 s; the restart was more than the few passes
	// above ago, the wait for vm3's death shared; vm3 is not started again
	// before this count).
	for _, s := range []serverInfo{vm1, vm2, vm3} {
		if n := logLines(n1.log(), "adopted a running guest", s.ID); n != 1 {
			t.Errorf("adoption of %s logged %d times, want once", s.ID, n)
		}
	}
	openstack(t, alice, "server", "start", "vm3")
	if !eventually(2*time.Minute, func() bool { return showServer(t, alice, "vm3").Status == "ACTIVE" }) {
		t.Fatalf("vm3 did not start after dying")
	}
	// Telemetry of real guests: vm1's CPU in /metrics and in its
	// project's history; vm3's death in the event log.
	demoID := strings.TrimSpace(openstack(t, admin, "project", "show", "-f", "value", "-c", "id", "demo"))
	checkInstanceTelemetry(t, n1, token(t, n1, "admin", creds["OS_PASSWORD"], "admin"), token(t, n1, "alice", "alice-pass-1", "demo"), demoID, vm1.ID)
	if evs := serverEvents(t, creds, n1, vm3.ID); !hasEventLine(evs, "stop ACTIVE>ACTIVE") || !hasEventLine(evs, "state ACTIVE>SHUTOFF the guest stopped on its own") {
		t.Errorf("vm3's events do not show its stop and its death:\n%s", strings.Join(evs, "\n"))
	}

	// Bad input and a bare-metal server share nothing: they go at once.
	inParallel(t, "refusals", map[string]func(t *testing.T){
		"bad input": func(t *testing.T) {
			// Bad input: the CLI's own lookups, then Nova's errors straight from
			// the API; nothing half-made.
			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"--flavor", "no-such-flavor", "--image", "testimg", "--network", "net1"}, "No flavor with a name or ID"},
				{[]string{"--flavor", "m1.tiny", "--image", "no-such-image", "--network", "net1"}, "No Image found"},
			} {
				out, err := openstackErr(alice, append(append([]string{"server", "create"}, c.args...), "bad")...)
				if err == nil || !strings.Contains(out, c.want) {
					t.Errorf("server create %v: %v\n%s", c.args, err, out)
				}
			}
			aliceTok := token(t, n1, "alice", "alice-pass-1", "demo")
			imgID := strings.TrimSpace(openstack(t, alice, "image", "show", "-f", "value", "-c", "id", "testimg"))
			flavorID := strings.TrimSpace(openstack(t, alice, "flavor", "show", "-f", "value", "-c", "id", "m1.tiny"))
			netID := strings.TrimSpace(openstack(t, alice, "network", "show", "-f", "value", "-c", "id", "net1"))
			none := "00000000-0000-4000-8000-000000000000"
			for _, c := range []struct {
				name                 string
				flavor, image, netID string
				code                 int
				want                 string
			}{
				{"unknown flavor", none, imgID, netID, 400, "Flavor " + none + " could not be found"},
				{"unknown image", flavorID, none, netID, 400, "Image " + none + " could not be found"},
				{"unknown network", flavorID, imgID, none, 400, "Network " + none + " could not be found"},
			} {
				var body map[string]map[string]any
				code, err := call("POST", n1.url()+"/compute/v2.1/servers", aliceTok, map[string]any{"server": map[string]any{
					"name": "bad", "flavorRef": c.flavor, "imageRef": c.image, "networks": []map[string]string{{"uuid": c.netID}},
				}}, &body)
				msg := fmt.Sprint(body)
				if err != nil || code != c.code || !strings.Contains(msg, c.want) {
					t.Errorf("%s: %d %v %s, want %d %q", c.name, code, err, msg, c.code, c.want)
				}
			}
		},
		"bare metal": func(t *testing.T) {
			// Bare metal, as far as compute goes without a node: the flavor an
			// operator writes for Ironic nodes, a tenant network refused, and a
			// server no node can take in ERROR as Nova says it (and deleted at
			// once: it holds nothing).
			openstack(t, admin, "flavor", "create", "--ram", "1", "--disk", "1", "--vcpus", "1", "bm.small")
			openstack(t, admin, "flavor", "set", "--property", "resources:CUSTOM_BAREMETAL=1", "--property", "resources:VCPU=0",
				"--property", "resources:MEMORY_MB=0", "--property", "resources:DISK_GB=0", "bm.small")
			if out, err := openstackErr(admin, "flavor", "set", "--property", "resources:CUSTOM_BAREMETAL=2", "bm.small"); err == nil || !strings.Contains(out, "resources:CUSTOM_BAREMETAL") {
				t.Errorf("a bare-metal class asked for twice: %v\n%s", err, out)
			}
			if out, err := openstackErr(alice, "server", "create", "--flavor", "bm.small", "--image", "testimg", "--network", "net1", "bad"); err == nil || !strings.Contains(out, "Tenant networks on bare-metal servers are not supported") {
				t.Errorf("a bare-metal server on a tenant network: %v\n%s", err, out)
			}
			openstack(t, alice, "server", "create", "--flavor", "bm.small", "--image", "testimg", "metal")
			if !eventually(time.Minute, func() bool { return showServer(t, alice, "metal").Status == "ERROR" }) {
				t.Errorf("a bare-metal server with no node is %s, want ERROR", showServer(t, alice, "metal").Status)
			}
			if out := openstack(t, alice, "server", "show", "-f", "value", "-c", "fault", "metal"); !strings.Contains(out, "No valid host was found") {
				t.Errorf("fault of a bare-metal server with no node: %s", out)
			}
			openstack(t, alice, "server", "delete", "--wait", "metal")
		},
	})

	// Over quota: three servers run, the project may have three.
	openstack(t, admin, "quota", "set", "--instances", "3", "demo")
	if out, err := openstackErr(alice, "server", "create", "--flavor", "m1.tiny", "--image", "testimg", "--network", "net1", "bad"); err == nil || !strings.Contains(out, "Quota exceeded for instances") {
		t.Errorf("a fourth server over a quota of three: %v\n%s", err, out)
	}
	// An image with no data yet (queued). Not through the CLI: without
	// --file it uploads its stdin.
	var queued struct {
		ID string `json:"id"`
	}
	tok := token(t, n1, "admin", creds["OS_PASSWORD"], "admin")
	if code, err := call("POST", n1.url()+"/image/v2/images", tok, map[string]any{"name": "empty", "disk_format": "qcow2", "container_format": "bare", "visibility": "public"}, &queued); err != nil || code != 201 {
		t.Fatalf("create a queued image: %d %v", code, err)
	}
	if out, err := openstackErr(alice, "server", "create", "--flavor", "m1.tiny", "--image", queued.ID, "--network", "net1", "bad"); err == nil || !strings.Contains(out, "is not active") {
		t.Errorf("a server from a queued image: %v\n%s", err, out)
	}
	if out, _ := openstackErr(alice, "server", "list", "-f", "value", "-c", "Name"); strings.Contains(out, "bad") {
		t.Errorf("a refused create left a server:\n%s", out)
	}

	// Delete leaves nothing: no QEMU, no tap, no disk, no dataplane entry.
	ports := strings.Fields(openstack(t, alice, "port", "list", "--device-id", vm2.ID, "-f", "value", "-c", "ID"))
	openstack(t, alice, "server", "delete", "--wait", vm2.ID) // renamed by its rebuild
	deleted := time.Now()
	if evs := serverEvents(t, creds, n1, vm2.ID); !hasEventLine(evs, "create >BUILD") || !hasEventLine(evs, "delete ") || !strings.Contains(strings.Join(evs, "\n"), ">DELETED") {
		t.Errorf("vm2's events do not show its create and delete:\n%s", strings.Join(evs, "\n"))
	}
	if pid := qemuPID(t, vm2.ID); pid != 0 {
		t.Errorf("QEMU %d of deleted vm2 still runs", pid)
	}
	for _, p := range ports {
		if exec.Command("ip", "link", "show", dataplane.DeviceName(p)).Run() == nil {
			t.Errorf("tap of deleted vm2's port %s is still there", p)
		}
	}
	if _, err := os.Stat(filepath.Join(n1.dataDir, "compute", "instances", vm2.ID)); err == nil {
		t.Errorf("vm2's instance directory is still there")
	}
	// The node's dataplane agent drops the ports when it next reconciles,
	// after the delete has answered: give it a bounded while.
	var show string
	gone := eventually(30*time.Second, func() bool {
		show, _ = rackctl(t, creds, n1, "dataplane", "show", "--node", "c1")
		for _, p := range ports {
			if strings.Contains(show, p) {
				return false
			}
		}
		return true
	})
	if !gone {
		t.Errorf("30 s after its delete, the dataplane still holds deleted vm2's ports %v:\n%s", ports, show)
	} else {
		t.Logf("the dataplane dropped vm2's ports %s after the delete answered", time.Since(deleted).Round(time.Millisecond))
	}
	openstack(t, alice, "server", "delete", "--wait", "vm3")
	checkUsage(t, n1, admin, alice, demoID, token(t, n1, "alice", "alice-pass-1", "demo"), vm1.ID, vm2.ID)

	// rackd dev --purge takes down what a node leaves behind once rackd is
	// stopped: vm1 still runs (guests outlive rackd), with its taps.
	vm1Ports := strings.Fields(openstack(t, alice, "port", "list", "--device-id", vm1.ID, "-f", "value", "-c", "ID"))
	purge := func() (string, error) {
		out, err := exec.Command(filepath.Join(binDir, "rackd"), "dev", "--purge", "--name", "c1", "--data-dir", n1.dataDir, "--bpf-dir", bpfDir).CombinedOutput()
		return string(out), err
	}
	if out, err := purge(); err == nil || !strings.Contains(out, "a rackd is running") {
		t.Fatalf("purge while rackd runs: %v\n%s", err, out)
	}
	n1.kill()
	if qemuPID(t, vm1.ID) == 0 {
		t.Fatal("vm1's QEMU died with rackd; the purge would have nothing to stop")
	}
	out, err := purge()
	if err != nil || !strings.Contains(out, "stopped 1 guest(s)") {
		t.Fatalf("rackd dev --purge: %v\n%s", err, out)
	}
	if pid := qemuPID(t, vm1.ID); pid != 0 {
		t.Errorf("QEMU %d of vm1 still runs after the purge", pid)
	}
	for _, p := range vm1Ports {
		if exec.Command("ip", "link", "show", dataplane.DeviceName(p)).Run() == nil {
			t.Errorf("tap of vm1's port %s is still there after the purge", p)
		}
	}
	for _, dir := range []string{n1.dataDir, bpfDir} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the purge (%v)", dir, err)
		}
	}
}

func firstIP(t *testing.T, s serverInfo) string {
	t.Helper()
	for _, v := range s.Addresses {
		raw, _ := json.Marshal(v)
		var list []string
		if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
			return list[0]
		}
		var objs []struct {
			Addr string `json:"addr"`
		}
		if json.Unmarshal(raw, &objs) == nil && len(objs) > 0 {
			return objs[0].Addr
		}
	}
	t.Fatalf("server %s has no address: %v", s.ID, s.Addresses)
	return ""
}

// setupTestimgAndAlice makes the public image testimg from img, the flavor
// m1.tiny, and alice (password alice-pass-1), a member of project demo,
// the catalog and the tenant side by side.
func setupTestimgAndAlice(t *testing.T, admin []string, img string) {
	t.Helper()
	inParallel(t, "setup", map[string]func(t *testing.T){
		"catalog": func(t *testing.T) {
			openstack(t, admin, "image", "create", "--file", img, "--disk-format", "qcow2", "--container-format", "bare", "--public", "testimg")
			openstack(t, admin, "flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "m1.tiny")
		},
		"alice": func(t *testing.T) {
			openstack(t, admin, "project", "create", "demo")
			openstack(t, admin, "user", "create", "--project", "demo", "--password", "alice-pass-1", "alice")
			openstack(t, admin, "role", "add", "--project", "demo", "--user", "alice", "member")
		},
	})
}

// checkResize resizes a running guest as `openstack server resize` does:
// VERIFY_RESIZE with its QEMU restarted with the new vCPUs and RAM (the
// guest boots with them), confirm → ACTIVE; a smaller root disk refused;
// a second resize reverted → the first flavor's guest again; both in
// os-migrations. The guest is left running the first resize's flavor.
func checkResize(t *testing.T, creds map[string]string, n1 *rackd, admin, alice []string, vm serverInfo) {
	t.Helper()
	openstack(t, admin, "flavor", "create", "--vcpus", "2", "--ram", "384", "--disk", "2", "m1.resize")
	openstack(t, admin, "flavor", "create", "--vcpus", "1", "--ram", "320", "--disk", "2", "m1.resize2")
	readies := func() int {
		out, _ := openstackErr(alice, "console", "log", "show", vm.ID)
		return strings.Count(out, "RACKSTACK-TEST-IMAGE: ready")
	}
	waitStatus := func(want string) {
		t.Helper()
		var s serverInfo
		if !eventually(3*time.Minute, func() bool { s = showServer(t, alice, vm.ID); return s.Status == want }) {
			t.Fatalf("%s is %s, not %s", vm.Name, s.Status, want)
		}
	}
	// guest says whether the server's QEMU runs with vcpus and ram MB.
	guest := func(vcpus, ram int) bool {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", qemuPID(t, vm.ID)))
		cmd := " " + strings.ReplaceAll(string(raw), "\x00", " ")
		return err == nil && strings.Contains(cmd, fmt.Sprintf(" -smp %d ", vcpus)) && strings.Contains(cmd, fmt.Sprintf(" -m %d ", ram))
	}
	waitBooted := func(n int) {
		t.Helper()
		if !eventually(3*time.Minute, func() bool { return readies() > n }) {
			t.Fatalf("%s did not boot again after its resize", vm.Name)
		}
	}
	n := readies()
	openstack(t, alice, "server", "resize", "--flavor", "m1.resize", vm.ID)
	waitStatus("VERIFY_RESIZE")
	if !guest(2, 384) {
		t.Fatalf("%s in VERIFY_RESIZE does not run with 2 vCPUs and 384 MB", vm.Name)
	}
	if f := openstack(t, alice, "server", "show", "-f", "value", "-c", "flavor", vm.ID); !strings.Contains(f, "m1.resize") {
		t.Fatalf("%s's flavor in VERIFY_RESIZE: %s", vm.Name, f)
	}
	waitBooted(n)
	openstack(t, alice, "server", "resize", "confirm", vm.ID)
	waitStatus("ACTIVE")
	if out, err := openstackErr(alice, "server", "resize", "--flavor", "m1.tiny", vm.ID); err == nil || !strings.Contains(out, "smaller disk") {
		t.Fatalf("a resize to a smaller disk: %v\n%s", err, out)
	}
	n = readies()
	openstack(t, alice, "server", "resize", "--flavor", "m1.resize2", vm.ID)
	waitStatus("VERIFY_RESIZE")
	if !guest(1, 320) {
		t.Fatalf("%s resized to m1.resize2 does not run with 1 vCPU and 320 MB", vm.Name)
	}
	waitBooted(n)
	openstack(t, alice, "server", "resize", "revert", vm.ID)
	waitStatus("ACTIVE")
	if !guest(2, 384) {
		t.Fatalf("%s reverted does not run with 2 vCPUs and 384 MB again", vm.Name)
	}
	if f := openstack(t, alice, "server", "show", "-f", "value", "-c", "flavor", vm.ID); !strings.Contains(f, "m1.resize ") && !strings.HasSuffix(strings.TrimSpace(f), "m1.resize") {
		t.Fatalf("%s's flavor after the revert: %s", vm.Name, f)
	}
	var migs struct {
		Migrations []struct {
			Status    string `json:"status"`
			Source    string `json:"source_compute"`
			Dest      string `json:"dest_compute"`
			Type      string `json:"migration_type"`
			NewFlavor *int64 `json:"new_instance_type_id"` // Nova's integer flavor id
		} `json:"migrations"`
	}
	tok := token(t, n1, "admin", creds["OS_PASSWORD"], "admin")
	code, body := novaCall(t, "GET", n1.url()+"/compute/v2.1/os-migrations?instance_uuid="+vm.ID, tok, "59", "")
	err := json.Unmarshal([]byte(body), &migs)
	if err != nil || code != 200 || len(migs.Migrations) != 2 || migs.Migrations[0].Status != "reverted" || migs.Migrations[1].Status != "confirmed" ||
		migs.Migrations[0].Type != "resize" || migs.Migrations[0].Source == "" || migs.Migrations[0].Source != migs.Migrations[0].Dest ||
		migs.Migrations[0].NewFlavor == nil || migs.Migrations[1].NewFlavor == nil || *migs.Migrations[0].NewFlavor == *migs.Migrations[1].NewFlavor {
		t.Fatalf("os-migrations of %s: %d %v %s", vm.Name, code, err, body)
	}
}

// checkRescue rescues a running guest as `openstack server rescue` does:
// RESCUE with its QEMU restarted with two disks, a fresh overlay of the
// rescue image first (the one it boots) and the server's own root disk
// second, so that the guest finds its config drive third; a reboot is
// refused while rescued; unrescue → ACTIVE, QEMU restarted with the
// server's own disk alone and the rescue disk gone; both actions in the
// server's event list.
func checkRescue(t *testing.T, n1 *rackd, alice []string, vm serverInfo) {
	t.Helper()
	dir := filepath.Join(n1.dataDir, "compute", "instances", vm.ID)
	console := func() string {
		out, _ := openstackErr(alice, "console", "log", "show", vm.ID)
		return out
	}
	waitStatus := func(want string) {
		t.Helper()
		var s serverInfo
		if !eventually(3*time.Minute, func() bool { s = showServer(t, alice, vm.ID); return s.Status == want }) {
			t.Fatalf("%s is %s, not %s", vm.Name, s.Status, want)
		}
	}
	cmdline := func() string {
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", qemuPID(t, vm.ID)))
		return strings.ReplaceAll(string(raw), "\x00", " ")
	}
	// A boot's markers: the rescue guest finds the config drive behind
	// two disks, as /dev/vdc (its own boots find it as /dev/vdb).
	const booted, ready, thirdDisk = "RACKSTACK-TEST-IMAGE: booted", "RACKSTACK-TEST-IMAGE: ready", "config drive: /dev/vdc"
	var out string
	// Up first (a step before may have restarted it), so that the rescue
	// stops it with its own shutdown.
	if !eventually(3*time.Minute, func() bool {
		out = console()
		i := strings.LastIndex(out, booted)
		return i >= 0 && strings.Contains(out[i:], ready)
	}) {
		t.Fatalf("%s did not finish its boot:\n%s", vm.Name, out)
	}
	rescueBoots := strings.Count(out, thirdDisk)
	openstack(t, alice, "server", "rescue", "--image", "testimg", "--password", "rescue-pass-1", vm.ID)
	waitStatus("RESCUE")
	cmd := cmdline()
	rescue, root := strings.Index(cmd, "file="+dir+"/disk.rescue,"), strings.Index(cmd, "file="+dir+"/disk,")
	if rescue < 0 || root < 0 || rescue > root || !strings.Contains(cmd, "drive=drive-disk0,serial=rescue,bootindex=1") {
		t.Fatalf("%s's QEMU in RESCUE does not boot the rescue disk first with its own disk second: %s", vm.Name, cmd)
	}
	if !eventually(3*time.Minute, func() bool {
		out = console()
		i := strings.LastIndex(out, thirdDisk)
		return strings.Count(out, thirdDisk) > rescueBoots && strings.Contains(out[i:], ready)
	}) {
		t.Fatalf("%s did not boot its rescue disk with its own disk and config drive behind it:\n%s", vm.Name, out)
	}
	if out, err := openstackErr(alice, "server", "reboot", "--hard", vm.ID); err == nil || !strings.Contains(out, "vm_state rescued") {
		t.Fatalf("a reboot of rescued %s: %v\n%s", vm.Name, err, out)
	}
	openstack(t, alice, "server", "unrescue", vm.ID)
	waitStatus("ACTIVE")
	if cmd := cmdline(); strings.Contains(cmd, "disk.rescue") || !strings.Contains(cmd, "file="+dir+"/disk,") {
		t.Fatalf("%s's QEMU after the unrescue: %s", vm.Name, cmd)
	}
	if _, err := os.Stat(filepath.Join(dir, "disk.rescue")); !os.IsNotExist(err) {
		t.Fatalf("%s's rescue disk is still there after the unrescue: %v", vm.Name, err)
	}
	if acts := openstack(t, alice, "server", "event", "list", "-f", "value", "-c", "Action", vm.ID); !strings.Contains(acts, "unrescue") || !strings.Contains(strings.ReplaceAll(acts, "unrescue", ""), "rescue") {
		t.Fatalf("%s's actions lack rescue and unrescue:\n%s", vm.Name, acts)
	}
}
