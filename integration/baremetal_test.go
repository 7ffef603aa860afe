//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/provision/bmc/bmcsim"
)

// machine is a simulated server: a QEMU guest with an empty disk and one
// NIC on the provisioning segment, behind a BMC (ipmi_sim or the Redfish
// simulator) that starts and stops it.
type machine struct {
	name    string
	mac     string
	cpus    int
	memMB   int
	disk    string
	diskLen int64
	console string
	m       *bmcsim.Machine
	// driver and driverInfo are what an operator gives Ironic for its BMC;
	// password is the right one.
	driver     string
	driverInfo map[string]string
	password   string
	// id is the node the machine enrolled as.
	id string
}

// newMachine makes the machine directory: QEMU under TCG, PXE first (the
// firmware's own order: the BMC's boot override replaces -boot).
func newMachine(t *testing.T, seg *segment, name, mac string, cpus, memMB int, diskLen int64) *machine {
	t.Helper()
	dir := t.TempDir()
	mc := &machine{name: name, mac: mac, cpus: cpus, memMB: memMB, diskLen: diskLen,
		disk: filepath.Join(dir, "disk.raw"), console: filepath.Join(dir, "console.log")}
	if err := os.WriteFile(mc.disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(mc.disk, diskLen); err != nil {
		t.Fatal(err)
	}
	tap := seg.tap()
	argv := []string{"qemu-system-x86_64", "-accel", "tcg", "-cpu", "max",
		"-smp", strconv.Itoa(cpus), "-m", strconv.Itoa(memMB),
		"-display", "none", "-monitor", "none", "-serial", "file:" + mc.console,
		"-smbios", "type=1,manufacturer=Rackstack Test,product=" + name + ",serial=SN-" + name,
		"-drive", "file=" + mc.disk + ",format=raw,if=none,id=d0",
		"-device", "virtio-blk-pci,drive=d0,serial=DISK-" + name,
		"-netdev", "tap,id=n0,ifname=" + tap + ",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac=" + mac,
		"-boot", "n"}
	m, err := bmcsim.Create(filepath.Join(dir, "machine"), argv)
	if err != nil {
		t.Fatal(err)
	}
	mc.m = m
	recordPIDFile(t, filepath.Join(m.Dir, bmcsim.PIDFile))
	t.Cleanup(func() { m.PowerOff(false) })
	return mc
}

// ipmi puts the machine behind ipmi_sim on a loopback port.
func (mc *machine) ipmi(t *testing.T) {
	t.Helper()
	mc.password = "ipmi-" + strconv.Itoa(os.Getpid())
	port := freeUDPPort(t)
	p, err := bmcsim.IPMISim{Dir: t.TempDir(), Port: port, User: "admin", Password: mc.password,
		Chassis: []string{filepath.Join(binDir, "rack-bmcsim"), "chassis", mc.m.Dir}}.Start(context.Background())
	if err != nil {
		t.Fatalf("start ipmi_sim: %v", err)
	}
	recordProcess(t, p.PID(), false)
	t.Cleanup(func() { p.Stop() })
	mc.driver = "ipmi"
	mc.driverInfo = map[string]string{"ipmi_address": "127.0.0.1", "ipmi_port": strconv.Itoa(port), "ipmi_username": "admin"}
}

// redfish puts the machine behind the Redfish simulator.
func (mc *machine) redfish(t *testing.T) {
	t.Helper()
	mc.password = "redfish-" + strconv.Itoa(os.Getpid())
	s, err := bmcsim.StartRedfish("127.0.0.1:0", &bmcsim.Redfish{Machine: mc.m, SystemID: mc.name, User: "admin", Password: mc.password})
	if err != nil {
		t.Fatalf("start redfish: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	mc.driver = "redfish"
	mc.driverInfo = map[string]string{"redfish_address": s.URL, "redfish_system_id": "/redfish/v1/Systems/" + mc.name,
		"redfish_username": "admin", "redfish_verify_ca": "false"}
}

// setArgs are `openstack baremetal node set` arguments for the machine's
// BMC with password.
func (mc *machine) setArgs(password string) []string {
	args := []string{"--driver", mc.driver}
	for k, v := range mc.driverInfo {
		args = append(args, "--driver-info", k+"="+v)
	}
	return append(args, "--driver-info", mc.driver+"_password="+password)
}

func (mc *machine) consoleLog() string {
	b, _ := os.ReadFile(mc.console)
	return string(b)
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		// Loopback ports above 20000, chosen by pid and try, checked free.
		port := 20000 + (os.Getpid()*7+i*131)%20000
		if out, _ := exec.Command("ss", "-Hlun", fmt.Sprintf("sport = :%d", port)).Output(); len(strings.TrimSpace(string(out))) == 0 {
			return port
		}
	}
	t.Fatal("no free UDP port")
	return 0
}

// bmNode is what the test reads of a node, from `openstack baremetal node
// show` or from the API (which has the same names).
type bmNode struct {
	UUID           string         `json:"uuid"`
	Name           string         `json:"name"`
	ProvisionState string         `json:"provision_state"`
	PowerState     string         `json:"power_state"`
	LastError      string         `json:"last_error"`
	InstanceUUID   string         `json:"instance_uuid"`
	Driver         string         `json:"driver"`
	DriverInfo     map[string]any `json:"driver_info"`
	Properties     map[string]any `json:"properties"`
	ResourceClass  string         `json:"resource_class"`
}

func showNode(t *testing.T, env []string, id string) bmNode {
	t.Helper()
	var n bmNode
	if err := json.Unmarshal([]byte(openstack(t, env, "baremetal", "node", "show", id, "-f", "json")), &n); err != nil {
		t.Fatalf("node show %s: %v", id, err)
	}
	return n
}

// bmAPI reads the Ironic API over HTTP. The waits poll it, not the CLI:
// each `openstack` run costs seconds of CPU, which the emulated machines
// beside it need. The CLI still makes every change, and the checks of
// what it shows use it.
type bmAPI struct {
	url, tok string
}

func newBMAPI(t *testing.T, n *rackd, creds map[string]string) bmAPI {
	t.Helper()
	return bmAPI{url: n.url() + "/baremetal/v1", tok: token(t, n, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])}
}

func (a bmAPI) node(t *testing.T, id string) bmNode {
	t.Helper()
	var n bmNode
	if code, err := callVersion("GET", a.url+"/nodes/"+id, a.tok, "1.81", &n); err != nil || code != 200 {
		t.Fatalf("GET node %s: %d %v", id, code, err)
	}
	return n
}

// pollEvery is how often the waits read the API: a read is cheap, and
// every step of a node's life waits on the one before it.
const pollEvery = 500 * time.Millisecond

// waitNode waits until the node is in want, failing early (with its
// last_error and rackd's log tail) when it lands in a state it must not.
func waitNode(t *testing.T, api bmAPI, node *rackd, id, want string, d time.Duration, bad ...string) bmNode {
	t.Helper()
	deadline := time.Now().Add(d)
	var n bmNode
	for time.Now().Before(deadline) {
		n = api.node(t, id)
		if n.ProvisionState == want {
			return n
		}
		for _, b := range bad {
			if n.ProvisionState == b {
				t.Fatalf("node %s went to %q waiting for %q: last_error %q\nrackd log:\n%s", id, n.ProvisionState, want, n.LastError, tail(node.log(), 40))
			}
		}
		time.Sleep(pollEvery)
	}
	t.Fatalf("node %s still %q after %s waiting for %q: last_error %q\nrackd log:\n%s", id, n.ProvisionState, d, want, n.LastError, tail(node.log(), 40))
	return n
}

// nodeByMAC finds the node that owns a port with mac, once discovery made
// it.
func nodeByMAC(t *testing.T, api bmAPI, mac string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var list struct {
			Ports []struct {
				Address string `json:"address"`
				Node    string `json:"node_uuid"`
			} `json:"ports"`
		}
		code, err := callVersion("GET", api.url+"/ports?detail=true&address="+url.QueryEscape(mac), api.tok, "1.81", &list)
		if err != nil || code != 200 {
			t.Fatalf("GET ports with address %s: %d %v", mac, code, err)
		}
		for _, p := range list.Ports {
			if strings.EqualFold(p.Address, mac) {
				return p.Node
			}
		}
		time.Sleep(pollEvery)
	}
	t.Fatalf("no node with port %s after %s", mac, d)
	return ""
}

// checkPortList: `openstack baremetal port list` shows each machine's PXE
// MAC on its node.
func checkPortList(t *testing.T, env []string, machines ...*machine) {
	t.Helper()
	var ports []struct {
		Address string `json:"Address"`
		Node    string `json:"Node UUID"`
	}
	out := openstack(t, env, "baremetal", "port", "list", "--long", "-f", "json")
	if err := json.Unmarshal([]byte(out), &ports); err != nil {
		t.Fatalf("port list: %v\n%s", err, out)
	}
	for _, mc := range machines {
		found := false
		for _, p := range ports {
			found = found || strings.EqualFold(p.Address, mc.mac) && p.Node == mc.id
		}
		if !found {
			t.Errorf("port list has no port %s on node %s (%s):\n%s", mc.mac, mc.id, mc.name, out)
		}
	}
}

// stopwatch logs how far into the test each milestone came, so that a
// slow run's log shows which phase took the time.
func stopwatch() func(t *testing.T, what string) {
	start := time.Now()
	return func(t *testing.T, what string) {
		t.Helper()
		t.Logf("%5.0fs %s", time.Since(start).Seconds(), what)
	}
}

// inParallel runs each function as a parallel subtest of a group named
// name, and stops the test when one of them failed: what follows needs
// all of them done.
func inParallel(t *testing.T, name string, subtests map[string]func(t *testing.T)) {
	t.Helper()
	ok := t.Run(name, func(t *testing.T) {
		for sub, f := range subtests {
			t.Run(sub, func(t *testing.T) {
				t.Parallel()
				f(t)
			})
		}
	})
	if !ok {
		t.FailNow()
	}
}

// TestBareMetal racks two simulated servers on a provisioning segment
// beside the site's own DHCP server and takes them through the life of a
// bare-metal node with the real clients: power on → PXE → discovery →
// enrolled with inventory → BMC credentials (IPMI through ipmi_sim, and
// Redfish) → manage → provide (cleaning) → available → `openstack server
// create` with a bare-metal flavor → the image on the machine's own disk,
// booted from it → `server delete` → cleaning → available; and the
// failures: a wrong BMC password, an agent that stops heartbeating. The
// two machines go their ways at once wherever neither waits for the
// other, as a rack's servers do.
func TestBareMetal(t *testing.T) {
	testenv.RequireRoot(t, "bridges, taps and namespaces for the provisioning segment")
	for _, cmd := range []string{"qemu-system-x86_64", "ipmi_sim", "ipmitool", "busybox", "/usr/bin/openstack"} {
		testenv.RequireCommand(t, cmd)
	}
	ramdisk := buildRamdisk(t)
	img := testImage(t)
	mark := stopwatch()

	seg := newSegment(t)
	httpPort := 18000 + os.Getpid()%1000
	// Image bytes live in the object store: the node gets a disk.
	n := newRackd(t, "bm1", "--disk", t.TempDir(), "--s3-listen", "off", "--provision-interface", seg.bridge, "--provision-ramdisk", ramdisk,
		"--provision-http-port", strconv.Itoa(httpPort), "--provision-heartbeat-timeout", "30s")
	n.start("--bootstrap")
	n.waitHealthy()
	creds := openrc(t, n.dataDir)
	env := osEnv(creds, n)
	api := newBMAPI(t, n, creds)

	// proxyDHCP: a PXE client hears from rackd, an ordinary one does not
	// (the site's server is not up yet, so nobody answers it).
	if offers := seg.discover("plain", ""); len(offers) != 0 {
		t.Fatalf("an ordinary DHCP client got offers in proxy mode: %v", offers)
	}
	offers := seg.discover("pxe", "PXEClient:Arch:00000:UNDI:002001")
	if o := offers[seg.hostIP()]; o == nil || o.BootFileName == "" || !o.YourIPAddr.IsUnspecified() {
		t.Fatalf("PXE client: offers %v, want a boot file from %s and no address", offers, seg.hostIP())
	}
	seg.startSiteDHCP()

	// Rack two servers and switch them on, as a technician does.
	m1 := newMachine(t, seg, "m1", "52:54:00:bb:00:01", 2, 512, 1<<30)
	m1.ipmi(t)
	m2 := newMachine(t, seg, "m2", "52:54:00:bb:00:02", 1, 640, 2<<30)
	m2.redfish(t)
	power := exec.Command("ipmitool", "-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p", m1.driverInfo["ipmi_port"],
		"-U", "admin", "-E", "chassis", "power", "on")
	power.Env = append(os.Environ(), "IPMI_PASSWORD="+m1.password)
	if out, err := power.CombinedOutput(); err != nil {
		t.Fatalf("ipmitool power on: %v\n%s", err, out)
	}
	if err := m2.m.PowerOn(reap); err != nil {
		t.Fatal(err)
	}
	mark(t, "both machines powered on")

	// Both PXE-boot the discovery ramdisk, enrol themselves and go on to
	// available: m1 is first given a wrong BMC password, m2 is inspected
	// once more after manage. Meanwhile the operator makes a bare-metal
	// flavor and uploads the image.
	inParallel(t, "to available", map[string]func(t *testing.T){
		m1.name: func(t *testing.T) { toAvailable(t, env, api, n, creds, detours{wrongPassword: true}, m1, mark) },
		m2.name: func(t *testing.T) { toAvailable(t, env, api, n, creds, detours{inspect: true}, m2, mark) },
		"flavor and image": func(t *testing.T) {
			openstack(t, env, "flavor", "create", "--ram", "1", "--disk", "1", "--vcpus", "1", "bm.small")
			openstack(t, env, "flavor", "set", "--property", "resources:CUSTOM_BAREMETAL=1", "--property", "resources:VCPU=0",
				"--property", "resources:MEMORY_MB=0", "--property", "resources:DISK_GB=0", "bm.small")
			openstack(t, env, "image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file", img, "--public", "bm-img")
		},
	})
	checkPortList(t, env, m1, m2)

	// The server lands on one of the two available nodes.
	openstack(t, env, "server", "create", "--flavor", "bm.small", "--image", "bm-img", "--wait", "bm-srv")
	mark(t, "server ACTIVE")
	srv := showServer(t, env, "bm-srv")
	if srv.Status != "ACTIVE" {
		t.Fatalf("bm-srv is %s", srv.Status)
	}
	var deployed, spare *machine
	for _, mc := range []*machine{m1, m2} {
		nd := api.node(t, mc.id)
		if nd.InstanceUUID == srv.ID {
			deployed = mc
			if nd.ProvisionState != "active" {
				t.Fatalf("deployed node %s in %q", mc.id, nd.ProvisionState)
			}
		} else {
			spare = mc
		}
	}
	if deployed == nil || spare == nil {
		t.Fatalf("server %s: no node holds it, or both do", srv.ID)
	}
	checkServerAllocation(t, env, srv.ID, deployed.id)
	image := imageID(t, env, "bm-img")

	inParallel(t, "deployed and spare", map[string]func(t *testing.T){
		"deployed": func(t *testing.T) { serverLife(t, env, api, n, deployed, srv.ID, mark) },
		"spare": func(t *testing.T) {
			checkTemplateRefused(t, env, spare.id, image)
			// An agent that stops heartbeating fails its deploy with
			// last_error instead of leaving the node waiting.
			openstack(t, env, "baremetal", "node", "set", spare.id, "--instance-info", "image_source="+image)
			// The console still holds the cleaning boot's "inventory
			// posted" until the deploy's power-on restarts QEMU; only
			// what the deploy boot writes may count.
			if err := os.Truncate(spare.console, 0); err != nil {
				t.Fatal(err)
			}
			openstack(t, env, "baremetal", "node", "deploy", spare.id)
			waitNode(t, api, n, spare.id, "wait call-back", 2*time.Minute, "deploy failed")
			// The plug is pulled once the agent has called back, so it is
			// its heartbeats that stop (before it called, the longer
			// call-back deadline applies).
			if !eventually(5*time.Minute, func() bool { return strings.Contains(spare.consoleLog(), `msg="inventory posted"`) }) {
				qemuLog, _ := os.ReadFile(filepath.Join(spare.m.Dir, bmcsim.LogFile))
				t.Fatalf("%s: the agent never called back\nconsole:\n%s\nQEMU log:\n%s", spare.name, tail(spare.consoleLog(), 20), tail(string(qemuLog), 20))
			}
			mark(t, spare.name+": the agent called back; pulling the plug")
			if err := spare.m.PowerOff(false); err != nil {
				t.Fatal(err)
			}
			nd := waitNode(t, api, n, spare.id, "deploy failed", 3*time.Minute, "active")
			if !strings.Contains(nd.LastError, "heartbeat") && !strings.Contains(nd.LastError, "timed out") {
				t.Fatalf("deploy failed with last_error %q, want the agent's silence named", nd.LastError)
			}
			mark(t, spare.name+": deploy failed")
		},
	})
	// Nothing but the deleted server held an allocation.
	if rows := allocations(t, env); len(rows) != 0 {
		t.Fatalf("allocations left after the server was deleted: %+v", rows)
	}
}

// detours are the detours one machine takes on its way to available.
type detours struct {
	// wrongPassword: its BMC credentials are first given with a wrong
	// password, which fails manage with a clear error.
	wrongPassword bool
	// inspect: once manageable it is inspected again, the real way: the
	// conductor sets PXE through the BMC, powers on, the agent reports,
	// the machine is switched off again.
	inspect bool
}

// toAvailable takes a machine that was switched on from its discovery
// boot to available, recording its node in mc.id.
func toAvailable(t *testing.T, env []string, api bmAPI, n *rackd, creds map[string]string, steps detours, mc *machine, mark func(*testing.T, string)) {
	mc.id = nodeByMAC(t, api, mc.mac, 6*time.Minute)
	mark(t, mc.name+": enrolled")
	if nd := api.node(t, mc.id); nd.ProvisionState != "enroll" {
		t.Errorf("%s: discovered node in %q, want enroll", mc.name, nd.ProvisionState)
	}
	checkNodeInventory(t, n, creds, mc.id, mc)
	// The discovery agent powers the machine off when it is done.
	if !eventually(2*time.Minute, func() bool { on, _ := mc.m.PowerState(); return !on }) {
		t.Fatalf("%s still on after discovery\nconsole:\n%s", mc.name, tail(mc.consoleLog(), 20))
	}

	if steps.wrongPassword {
		openstack(t, env, append(append([]string{"baremetal", "node", "set", mc.id}, mc.setArgs("wrong-password")...), "--resource-class", "baremetal")...)
		openstack(t, env, "baremetal", "node", "manage", mc.id)
		nd := waitNode(t, api, n, mc.id, "enroll", 2*time.Minute)
		deadline := time.Now().Add(2 * time.Minute)
		for !strings.Contains(nd.LastError, "authentication") {
			if nd.ProvisionState != "enroll" && nd.ProvisionState != "verifying" || time.Now().After(deadline) {
				t.Fatalf("wrong password: node %s in %q, last_error %q", mc.id, nd.ProvisionState, nd.LastError)
			}
			time.Sleep(pollEvery)
			nd = api.node(t, mc.id)
		}
		if strings.Contains(nd.LastError, "wrong-password") {
			t.Fatalf("last_error shows the password: %q", nd.LastError)
		}
		mark(t, mc.name+": a wrong BMC password failed manage")
	}
	openstack(t, env, append(append([]string{"baremetal", "node", "set", mc.id}, mc.setArgs(mc.password)...), "--resource-class", "baremetal")...)
	if nd := showNode(t, env, mc.id); fmt.Sprint(nd.DriverInfo[mc.driver+"_password"]) != "******" {
		t.Fatalf("%s: driver_info shows the password as %v", mc.name, nd.DriverInfo[mc.driver+"_password"])
	}
	openstack(t, env, "baremetal", "node", "manage", mc.id)
	waitNode(t, api, n, mc.id, "manageable", 2*time.Minute, "enroll")
	mark(t, mc.name+": manageable")

	if steps.inspect {
		openstack(t, env, "baremetal", "node", "inspect", mc.id)
		waitNode(t, api, n, mc.id, "manageable", 6*time.Minute, "inspect failed")
		checkNodeInventory(t, n, creds, mc.id, mc)
		if !eventually(2*time.Minute, func() bool { on, _ := mc.m.PowerState(); return !on }) {
			t.Fatalf("%s still on after inspection", mc.name)
		}
		mark(t, mc.name+": inspected")
	}
	openstack(t, env, "baremetal", "node", "provide", mc.id)
	waitNode(t, api, n, mc.id, "available", 8*time.Minute, "clean failed")
	mark(t, mc.name+": available")
}

// serverLife follows the server's machine from its deploy: it boots the
// image from its own disk, is rebuilt (the agent erases the disk's
// metadata, by a deploy template, and writes the image again), and is
// cleaned and returned when the server is deleted.
func serverLife(t *testing.T, env []string, api bmAPI, n *rackd, mc *machine, server string, mark func(*testing.T, string)) {
	// The machine now boots the image from its own disk, persistently,
	// and the image read its config drive.
	if !eventually(4*time.Minute, func() bool {
		return strings.Contains(mc.consoleLog(), "RACKSTACK-TEST-IMAGE: uuid="+server)
	}) {
		t.Fatalf("%s never booted the deployed image\nconsole:\n%s", mc.name, tail(mc.consoleLog(), 30))
	}
	if dev, _ := mustBoot(t, mc); dev != bmcsim.DevDisk {
		t.Fatalf("%s boots %q after deploy, want disk", mc.name, dev)
	}
	mark(t, mc.name+": booted the image from its disk")

	// Rebuild (Nova's rebuild → Ironic deploys the node again): the
	// machine boots the agent, the image is written again, and it boots
	// it from its disk once more.
	useEraseTemplate(t, env, mc.id)
	seen := len(mc.consoleLog())
	openstack(t, env, "server", "rebuild", "--image", "bm-img", "--wait", "bm-srv")
	if !eventually(4*time.Minute, func() bool {
		log := mc.consoleLog()
		if len(log) < seen { // a restarted QEMU starts a new log
			seen = 0
		}
		return strings.Contains(log[seen:], "RACKSTACK-TEST-IMAGE: uuid="+server)
	}) {
		t.Fatalf("%s never booted the rebuilt image\nconsole:\n%s", mc.name, tail(mc.consoleLog(), 30))
	}
	if nd := api.node(t, mc.id); nd.ProvisionState != "active" || nd.InstanceUUID != server {
		t.Fatalf("after the rebuild node %s is %s holding %q", mc.id, nd.ProvisionState, nd.InstanceUUID)
	}
	checkErasedBeforeWrite(t, env, mc.id)
	mark(t, mc.name+": rebuilt")

	// Deleting the server cleans the disk and returns the node.
	openstack(t, env, "server", "delete", "--wait", "bm-srv")
	waitNode(t, api, n, mc.id, "available", 8*time.Minute, "clean failed", "error")
	if nd := api.node(t, mc.id); nd.InstanceUUID != "" {
		t.Fatalf("node %s still holds instance %s", mc.id, nd.InstanceUUID)
	}
	checkWiped(t, mc)
	mark(t, mc.name+": cleaned after the server was deleted")
}

// reap waits for a QEMU this process started, so it does not linger as a
// zombie that still reads as powered on.
func reap(p *os.Process) { go p.Wait() }

func mustBoot(t *testing.T, mc *machine) (string, bool) {
	t.Helper()
	b, err := mc.m.Boot()
	if err != nil {
		t.Fatal(err)
	}
	return b.Current()
}

func imageID(t *testing.T, env []string, name string) string {
	t.Helper()
	return strings.TrimSpace(openstack(t, env, "image", "show", name, "-f", "value", "-c", "id"))
}

// checkInventory compares what the agent reported with the QEMU command
// line the machine runs.
func checkNodeInventory(t *testing.T, n *rackd, creds map[string]string, id string, mc *machine) {
	t.Helper()
	tok := token(t, n, creds["OS_USERNAME"], creds["OS_PASSWORD"], creds["OS_PROJECT_NAME"])
	var inv struct {
		Inventory struct {
			CPU struct {
				Count int `json:"count"`
			} `json:"cpu"`
			Memory struct {
				PhysicalMB int `json:"physical_mb"`
			} `json:"memory"`
			Disks []struct {
				Name   string `json:"name"`
				Size   int64  `json:"size"`
				Serial string `json:"serial"`
			} `json:"disks"`
			Interfaces []struct {
				MAC string `json:"mac_address"`
			} `json:"interfaces"`
			SystemVendor struct {
				Product string `json:"product_name"`
				Serial  string `json:"serial_number"`
			} `json:"system_vendor"`
		} `json:"inventory"`
	}
	code, err := callVersion("GET", n.url()+"/baremetal/v1/nodes/"+id+"/inventory", tok, "1.81", &inv)
	if err != nil || code != 200 {
		t.Fatalf("inventory of %s: %d %v", id, code, err)
	}
	got := inv.Inventory
	if got.CPU.Count != mc.cpus || got.Memory.PhysicalMB != mc.memMB {
		t.Errorf("%s: inventory cpus %d memory %d MiB, QEMU has %d and %d", mc.name, got.CPU.Count, got.Memory.PhysicalMB, mc.cpus, mc.memMB)
	}
	if len(got.Disks) != 1 || got.Disks[0].Size != mc.diskLen || got.Disks[0].Serial != "DISK-"+mc.name {
		t.Errorf("%s: inventory disks %+v, QEMU has one of %d bytes, serial DISK-%s", mc.name, got.Disks, mc.diskLen, mc.name)
	}
	macs := []string{}
	for _, i := range got.Interfaces {
		macs = append(macs, i.MAC)
	}
	if !strings.Contains(strings.Join(macs, " "), mc.mac) {
		t.Errorf("%s: inventory NICs %v, QEMU's is %s", mc.name, macs, mc.mac)
	}
	if got.SystemVendor.Product != mc.name || got.SystemVendor.Serial != "SN-"+mc.name {
		t.Errorf("%s: DMI %+v", mc.name, got.SystemVendor)
	}
}

// checkWiped reads the machine's disk after cleaning: no partition table,
// no filesystem signature at its start.
func checkWiped(t *testing.T, mc *machine) {
	t.Helper()
	f, err := os.Open(mc.disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 1<<20)
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	for i, b := range head {
		if b != 0 {
			t.Fatalf("%s: disk byte %d is %#x after cleaning, want the first MiB erased", mc.name, i, b)
		}
	}
}

// callVersion is call with an Ironic microversion.
func callVersion(method, url, tok, version string, out any) (int, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("X-OpenStack-Ironic-API-Version", version)
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
}

// buildRamdisk runs make ramdisk's script (quick when the ramdisk is
// fresh) and returns the directory holding vmlinuz and initramfs.zst.
func buildRamdisk(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"apt-get", "dpkg-deb", "cpio", "gzip"} {
		testenv.RequireCommand(t, tool) // what make ramdisk runs
	}
	top, _ := filepath.Abs("..")
	ramdisk := filepath.Join(top, "build", "ramdisk")
	build := exec.Command(filepath.Join(top, "provision", "ramdisk", "build.sh"), ramdisk)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("make ramdisk: %v", err)
	}
	return ramdisk
}
