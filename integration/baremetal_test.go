//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
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

// bmNode is what the test reads of `openstack baremetal node show`.
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

// waitNode waits until the node is in want, failing early (with its
// last_error and rackd's log tail) when it lands in a state it must not.
func waitNode(t *testing.T, env []string, node *rackd, id, want string, d time.Duration, bad ...string) bmNode {
	t.Helper()
	deadline := time.Now().Add(d)
	var n bmNode
	for time.Now().Before(deadline) {
		n = showNode(t, env, id)
		if n.ProvisionState == want {
			return n
		}
		for _, b := range bad {
			if n.ProvisionState == b {
				t.Fatalf("node %s went to %q waiting for %q: last_error %q\nrackd log:\n%s", id, n.ProvisionState, want, n.LastError, tail(node.log(), 40))
			}
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("node %s still %q after %s waiting for %q: last_error %q\nrackd log:\n%s", id, n.ProvisionState, d, want, n.LastError, tail(node.log(), 40))
	return n
}

// nodeByMAC finds the node that owns a port with mac, once discovery made
// it.
func nodeByMAC(t *testing.T, env []string, mac string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		var ports []struct {
			Address string `json:"Address"`
			Node    string `json:"Node UUID"`
		}
		out := openstack(t, env, "baremetal", "port", "list", "--long", "-f", "json")
		if err := json.Unmarshal([]byte(out), &ports); err != nil {
			t.Fatalf("port list: %v\n%s", err, out)
		}
		for _, p := range ports {
			if strings.EqualFold(p.Address, mac) {
				return p.Node
			}
		}
		time.Sleep(2 * time.Second)
	}
	t.Fatalf("no node with port %s after %s", mac, d)
	return ""
}

// TestBareMetal racks two simulated servers on a provisioning segment
// beside the site's own DHCP server and takes them through the life of a
// bare-metal node with the real clients: power on → PXE → discovery →
// enrolled with inventory → BMC credentials (IPMI through ipmi_sim, and
// Redfish) → manage → provide (cleaning) → available → `openstack server
// create` with a bare-metal flavor → the image on the machine's own disk,
// booted from it → `server delete` → cleaning → available; and the
// failures: a wrong BMC password, an agent that stops heartbeating.
func TestBareMetal(t *testing.T) {
	testenv.RequireRoot(t, "bridges, taps and namespaces for the provisioning segment")
	for _, cmd := range []string{"qemu-system-x86_64", "ipmi_sim", "ipmitool", "busybox", "/usr/bin/openstack"} {
		testenv.RequireCommand(t, cmd)
	}
	ramdisk := buildRamdisk(t)
	img := testImage(t)

	seg := newSegment(t)
	httpPort := 18000 + os.Getpid()%1000
	// Image bytes live in the object store: the node gets a disk.
	n := newRackd(t, "bm1", "--disk", t.TempDir(), "--s3-listen", "off", "--provision-interface", seg.bridge, "--provision-ramdisk", ramdisk,
		"--provision-http-port", strconv.Itoa(httpPort), "--provision-heartbeat-timeout", "30s")
	n.start("--bootstrap")
	n.waitHealthy()
	creds := openrc(t, n.dataDir)
	env := osEnv(creds, n)

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

	// Both PXE-boot the discovery ramdisk and enrol themselves.
	ids := map[*machine]string{}
	for _, mc := range []*machine{m1, m2} {
		ids[mc] = nodeByMAC(t, env, mc.mac, 6*time.Minute)
	}
	for _, mc := range []*machine{m1, m2} {
		nd := showNode(t, env, ids[mc])
		if nd.ProvisionState != "enroll" {
			t.Errorf("%s: discovered node in %q, want enroll", mc.name, nd.ProvisionState)
		}
		checkNodeInventory(t, n, creds, ids[mc], mc)
	}
	// The discovery agent powers the machine off when it is done.
	for _, mc := range []*machine{m1, m2} {
		if !eventually(2*time.Minute, func() bool { on, _ := mc.m.PowerState(); return !on }) {
			t.Fatalf("%s still on after discovery\nconsole:\n%s", mc.name, tail(mc.consoleLog(), 20))
		}
	}

	// A wrong BMC password fails manage with a clear error, the right one
	// verifies.
	openstack(t, env, append(append([]string{"baremetal", "node", "set", ids[m1]}, m1.setArgs("wrong-password")...), "--resource-class", "baremetal")...)
	openstack(t, env, "baremetal", "node", "manage", ids[m1])
	nd := waitNode(t, env, n, ids[m1], "enroll", 2*time.Minute)
	for !strings.Contains(nd.LastError, "authentication") {
		nd = showNode(t, env, ids[m1])
		if nd.ProvisionState != "enroll" && nd.ProvisionState != "verifying" {
			t.Fatalf("wrong password: node %s in %q, last_error %q", ids[m1], nd.ProvisionState, nd.LastError)
		}
		time.Sleep(time.Second)
	}
	if strings.Contains(nd.LastError, "wrong-password") {
		t.Fatalf("last_error shows the password: %q", nd.LastError)
	}
	for _, mc := range []*machine{m1, m2} {
		openstack(t, env, append(append([]string{"baremetal", "node", "set", ids[mc]}, mc.setArgs(mc.password)...), "--resource-class", "baremetal")...)
		if nd := showNode(t, env, ids[mc]); fmt.Sprint(nd.DriverInfo[mc.driver+"_password"]) != "******" {
			t.Fatalf("%s: driver_info shows the password as %v", mc.name, nd.DriverInfo[mc.driver+"_password"])
		}
		openstack(t, env, "baremetal", "node", "manage", ids[mc])
	}
	for _, mc := range []*machine{m1, m2} {
		waitNode(t, env, n, ids[mc], "manageable", 2*time.Minute, "enroll")
	}
	// Inspection of a managed node goes the real way too: the conductor
	// sets PXE through the BMC, powers on, the agent reports, the machine
	// is switched off again.
	openstack(t, env, "baremetal", "node", "inspect", ids[m2])
	waitNode(t, env, n, ids[m2], "manageable", 6*time.Minute, "inspect failed")
	checkNodeInventory(t, n, creds, ids[m2], m2)
	if !eventually(2*time.Minute, func() bool { on, _ := m2.m.PowerState(); return !on }) {
		t.Fatalf("%s still on after inspection", m2.name)
	}
	for _, mc := range []*machine{m1, m2} {
		openstack(t, env, "baremetal", "node", "provide", ids[mc])
	}
	for _, mc := range []*machine{m1, m2} {
		waitNode(t, env, n, ids[mc], "available", 8*time.Minute, "clean failed")
	}

	// A bare-metal flavor and the test image; the server lands on one of
	// the two available nodes.
	openstack(t, env, "flavor", "create", "--ram", "1", "--disk", "1", "--vcpus", "1", "bm.small")
	openstack(t, env, "flavor", "set", "--property", "resources:CUSTOM_BAREMETAL=1", "--property", "resources:VCPU=0",
		"--property", "resources:MEMORY_MB=0", "--property", "resources:DISK_GB=0", "bm.small")
	openstack(t, env, "image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file", img, "--public", "bm-img")
	openstack(t, env, "server", "create", "--flavor", "bm.small", "--image", "bm-img", "--wait", "bm-srv")
	srv := showServer(t, env, "bm-srv")
	if srv.Status != "ACTIVE" {
		t.Fatalf("bm-srv is %s", srv.Status)
	}
	var deployed, spare *machine
	for _, mc := range []*machine{m1, m2} {
		nd := showNode(t, env, ids[mc])
		if nd.InstanceUUID == srv.ID {
			deployed = mc
			if nd.ProvisionState != "active" {
				t.Fatalf("deployed node %s in %q", ids[mc], nd.ProvisionState)
			}
		} else {
			spare = mc
		}
	}
	if deployed == nil || spare == nil {
		t.Fatalf("server %s: no node holds it, or both do", srv.ID)
	}
	checkServerAllocation(t, env, srv.ID, ids[deployed])
	// The machine now boots the image from its own disk, persistently, and
	// the image read its config drive.
	if !eventually(4*time.Minute, func() bool {
		return strings.Contains(deployed.consoleLog(), "RACKSTACK-TEST-IMAGE: uuid="+srv.ID)
	}) {
		t.Fatalf("%s never booted the deployed image\nconsole:\n%s", deployed.name, tail(deployed.consoleLog(), 30))
	}
	if dev, _ := mustBoot(t, deployed); dev != bmcsim.DevDisk {
		t.Fatalf("%s boots %q after deploy, want disk", deployed.name, dev)
	}

	// Rebuild (Nova's rebuild → Ironic deploys the node again): the
	// machine boots the agent, the image is written again, and it boots
	// it from its disk once more.
	useEraseTemplate(t, env, ids[deployed])
	mark := len(deployed.consoleLog())
	openstack(t, env, "server", "rebuild", "--image", "bm-img", "--wait", "bm-srv")
	if !eventually(4*time.Minute, func() bool {
		log := deployed.consoleLog()
		if len(log) < mark { // a restarted QEMU starts a new log
			mark = 0
		}
		return strings.Contains(log[mark:], "RACKSTACK-TEST-IMAGE: uuid="+srv.ID)
	}) {
		t.Fatalf("%s never booted the rebuilt image\nconsole:\n%s", deployed.name, tail(deployed.consoleLog(), 30))
	}
	if nd := showNode(t, env, ids[deployed]); nd.ProvisionState != "active" || nd.InstanceUUID != srv.ID {
		t.Fatalf("after the rebuild node %s is %s holding %q", ids[deployed], nd.ProvisionState, nd.InstanceUUID)
	}
	checkErasedBeforeWrite(t, env, ids[deployed])
	checkTemplateRefused(t, env, ids[spare], imageID(t, env, "bm-img"))

	// An agent that stops heartbeating fails its deploy with last_error
	// instead of leaving the node waiting.
	openstack(t, env, "baremetal", "node", "set", ids[spare], "--instance-info", "image_source="+imageID(t, env, "bm-img"))
	openstack(t, env, "baremetal", "node", "deploy", ids[spare])
	waitNode(t, env, n, ids[spare], "wait call-back", 2*time.Minute, "deploy failed")
	// The plug is pulled once the agent has called back, so it is its
	// heartbeats that stop (before it called, the longer call-back
	// deadline applies).
	if !eventually(5*time.Minute, func() bool { return strings.Contains(spare.consoleLog(), `msg="inventory posted"`) }) {
		t.Fatalf("%s: the agent never called back\nconsole:\n%s", spare.name, tail(spare.consoleLog(), 20))
	}
	if err := spare.m.PowerOff(false); err != nil { // the plug is pulled
		t.Fatal(err)
	}
	nd = waitNode(t, env, n, ids[spare], "deploy failed", 3*time.Minute, "active")
	if !strings.Contains(nd.LastError, "heartbeat") && !strings.Contains(nd.LastError, "timed out") {
		t.Fatalf("deploy failed with last_error %q, want the agent's silence named", nd.LastError)
	}

	// Deleting the server cleans the disk and returns the node.
	openstack(t, env, "server", "delete", "--wait", "bm-srv")
	waitNode(t, env, n, ids[deployed], "available", 8*time.Minute, "clean failed", "error")
	if nd := showNode(t, env, ids[deployed]); nd.InstanceUUID != "" {
		t.Fatalf("node %s still holds instance %s", ids[deployed], nd.InstanceUUID)
	}
	if rows := allocations(t, env); len(rows) != 0 {
		t.Fatalf("allocations left after the server was deleted: %+v", rows)
	}
	checkWiped(t, deployed)
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
// fresh) and returns the directory holding vmlinuz and initramfs.gz.
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
