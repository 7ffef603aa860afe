package conductor

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/provision/agentapi"
	"github.com/rackstack/rackstack/provision/ipxe"
)

const pxeMAC = "52:54:00:aa:00:01"

func inventory() agentapi.Inventory {
	return agentapi.Inventory{
		Interfaces: []agentapi.Interface{
			{Name: "eth0", MACAddress: pxeMAC, HasCarrier: true},
			{Name: "eth1", MACAddress: "52:54:00:aa:00:02"},
		},
		CPU:          agentapi.CPU{Count: 4, Architecture: "x86_64", ModelName: "QEMU Virtual CPU"},
		Memory:       agentapi.Memory{Total: 2000 << 20, PhysicalMB: 2048},
		Disks:        []agentapi.Disk{{Name: "/dev/vda", Size: 10 << 30, Serial: "disk1"}},
		SystemVendor: agentapi.SystemVendor{Manufacturer: "QEMU", ProductName: "Standard PC", SerialNumber: "S1"},
		Boot:         agentapi.Boot{CurrentBootMode: "bios", PXEInterface: pxeMAC},
	}
}

func TestRegistersItselfAndAdoptsNodesWithoutAConductor(t *testing.T) {
	w := newWorld(t)
	row := store.Get[bmstate.Conductor](w.local.Local(), bmstate.ConductorTable, "rack1")
	if row == nil || row.BootURL != "http://192.0.2.1:8069" || row.Interface != "prov0" {
		t.Fatalf("conductor row %+v", row)
	}
	registered := row.Updated
	w.clock.Advance(61 * time.Second)
	w.pass()
	if row := store.Get[bmstate.Conductor](w.local.Local(), bmstate.ConductorTable, "rack1"); !row.Updated.After(registered) {
		t.Fatalf("the conductor row was not refreshed: updated %v", row.Updated)
	}
	w.rack("node-1", pxeMAC, bmstate.StateEnroll)
	w.set("node-1", func(n *bmstate.Node) { n.Conductor = "" })
	w.pass()
	if n := w.node("node-1"); n.Conductor != "rack1" {
		t.Fatalf("conductor %q, want rack1", n.Conductor)
	}
}

func TestDiscoveryEnrolsAnUnknownMachine(t *testing.T) {
	w := newWorld(t)
	a := w.agent(pxeMAC)
	if !strings.HasPrefix(a.token, discoveryPrefix) {
		t.Fatalf("unknown machine got token %q, want a discovery token", a.token)
	}
	reply, err := w.c.Inventory(w.ctx, a.token, inventory())
	if err != nil {
		t.Fatal(err)
	}
	n := w.node(reply.Node)
	if n.ProvisionState != bmstate.StateEnroll || !n.AutoDiscovered || n.Conductor != "rack1" || n.Inventory == nil {
		t.Fatalf("discovered node %+v", n)
	}
	for k, want := range map[string]any{"cpus": 4.0, "memory_mb": 2048.0, "local_gb": 10.0, "cpu_arch": "x86_64"} {
		if n.Properties[k] != want {
			t.Errorf("properties[%s] = %v (%T), want %v", k, n.Properties[k], n.Properties[k], want)
		}
	}
	ports := bmstate.Ports(w.local.Local(), n.ID)
	if len(ports) != 2 {
		t.Fatalf("%d ports, want one per NIC", len(ports))
	}
	for _, p := range ports {
		if p.PXEEnabled != (p.Address == pxeMAC) {
			t.Errorf("port %s pxe_enabled %t", p.Address, p.PXEEnabled)
		}
	}
	cmd := a.heartbeat()
	if cmd.Op != agentapi.OpPowerOff || cmd.ID == "" {
		t.Fatalf("discovery agent told %+v, want poweroff with an id", cmd)
	}
	// rack-agent reports every command it ran, a poweroff before it
	// powers off; the report must be taken, or it never powers off.
	a.result(cmd, true, "powering off")
	// The machine is known now: it boots from disk, and a second
	// discovery of it (a stale token) is the same node.
	if b := w.boot(pxeMAC); b.Kind != ipxe.BootExit {
		t.Fatalf("known machine boots %s", b.Kind)
	}
	again, err := w.c.Inventory(w.ctx, a.token, inventory())
	if err != nil || again.Node != n.ID {
		t.Fatalf("second discovery: %v %v, want node %s", again, err, n.ID)
	}
	if nodes := store.All[bmstate.Node](w.local.Local(), bmstate.NodeTable, "id"); len(nodes) != 1 {
		t.Fatalf("%d nodes after two discoveries of one machine", len(nodes))
	}
}

func TestDiscoveryTokensAreBoundAndExpire(t *testing.T) {
	w := newWorld(t)
	a := w.agent(pxeMAC)
	other := inventory()
	other.Interfaces = other.Interfaces[1:]
	if _, err := w.c.Inventory(w.ctx, a.token, other); !errors.Is(err, ipxe.ErrInvalid) {
		t.Fatalf("inventory without the booted MAC: %v, want ErrInvalid", err)
	}
	forged := a.token[:len(a.token)-4] + "0000"
	if _, err := w.c.Inventory(w.ctx, forged, inventory()); !errors.Is(err, ipxe.ErrBadToken) {
		t.Fatalf("forged token: %v", err)
	}
	moved := strings.Replace(a.token, "525400aa0001", "525400aa0002", 1)
	if _, err := w.c.Inventory(w.ctx, moved, inventory()); !errors.Is(err, ipxe.ErrBadToken) {
		t.Fatalf("token for another MAC: %v", err)
	}
	w.clock.Advance(2 * time.Hour)
	if _, err := w.c.Inventory(w.ctx, a.token, inventory()); !errors.Is(err, ipxe.ErrBadToken) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestManageVerifiesTheBMC(t *testing.T) {
	for name, tc := range map[string]struct {
		password  string
		state     string
		lastError string
	}{
		"good password": {"sealed:good", bmstate.StateManageable, ""},
		"bad password":  {"sealed:wrong", bmstate.StateEnroll, "authentication failed"},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.rack("node-1", pxeMAC, bmstate.StateEnroll)
			w.set("node-1", func(n *bmstate.Node) {
				n.Secrets["ipmi_password"] = tc.password
				n.ProvisionState, n.TargetProvisionState = bmstate.StateVerifying, bmstate.StateManageable
			})
			w.pass()
			n := w.node("node-1")
			if n.ProvisionState != tc.state || n.TargetProvisionState != "" {
				t.Fatalf("state %s → %s, want %s", n.ProvisionState, n.TargetProvisionState, tc.state)
			}
			if tc.lastError == "" {
				if n.LastError != "" || n.PowerState != bmstate.PowerOff {
					t.Fatalf("last_error %q, power %q", n.LastError, n.PowerState)
				}
				return
			}
			if !strings.Contains(n.LastError, tc.lastError) || strings.Contains(n.LastError, "wrong") {
				t.Fatalf("last_error %q, want it to say %q and not the password", n.LastError, tc.lastError)
			}
			if !hasEvent(n, "ERROR", tc.lastError) {
				t.Fatalf("no ERROR history event: %+v", n.History)
			}
		})
	}
}

func TestAdoptTakesOverARunningMachine(t *testing.T) {
	for name, tc := range map[string]struct{ password, state string }{
		"BMC answers":    {"sealed:good", bmstate.StateActive},
		"BMC refuses us": {"sealed:bad", bmstate.StateAdoptFail},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			_, m := w.rack("node-1", pxeMAC, bmstate.StateManageable)
			m.power = PowerOn
			w.set("node-1", func(n *bmstate.Node) {
				n.Secrets["ipmi_password"] = tc.password
				n.ProvisionState, n.TargetProvisionState = bmstate.StateAdopting, bmstate.StateActive
			})
			w.pass()
			if n := w.node("node-1"); n.ProvisionState != tc.state {
				t.Fatalf("%s (%q), want %s", n.ProvisionState, n.LastError, tc.state)
			}
			if len(m.Calls()) != 0 {
				t.Fatalf("adoption changed the machine: %v", m.Calls())
			}
		})
	}
}

// provide takes a manageable node through cleaning to available.
func provide(t *testing.T, w *world, id, mac string) {
	t.Helper()
	w.set(id, func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
	})
	w.passUntil(id, bmstate.StateCleanWait)
	a := w.agent(mac)
	cmd := a.heartbeat()
	if cmd.Op != agentapi.OpClean || cmd.ID == "" {
		t.Fatalf("cleaning agent told %+v", cmd)
	}
	a.result(cmd, true, "erased /dev/vda")
	w.passUntil(id, bmstate.StateAvailable)
}

func TestProvideCleansToAvailable(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateManageable)
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
	})
	w.pass()
	n := w.node("node-1")
	m := w.machines["10.0.0.1"]
	if n.ProvisionState != bmstate.StateCleanWait || n.Agent == nil || n.Agent.Op != agentapi.OpClean || n.PowerState != bmstate.PowerOn {
		t.Fatalf("after the first pass: %s, agent %+v, power %q", n.ProvisionState, n.Agent, n.PowerState)
	}
	if got := m.Calls(); !slices.Equal(got, []string{"boot pxe persistent=false", "power on"}) {
		t.Fatalf("BMC calls %v, want a one-time PXE boot and power on", got)
	}
	a := w.agent(pxeMAC)
	if hashToken(a.token) != n.Agent.TokenSHA256 {
		t.Fatal("the boot script's token is not the boot's")
	}
	cmd := a.heartbeat()
	if cmd.Op != agentapi.OpClean {
		t.Fatalf("command %+v", cmd)
	}
	if cmd2 := a.heartbeat(); cmd2.ID != cmd.ID {
		t.Fatalf("a second heartbeat got another command %s, not %s", cmd2.ID, cmd.ID)
	}
	if err := w.c.Result(w.ctx, a.token, agentapi.Result{CommandID: "other", Op: agentapi.OpClean, OK: true}); !errors.Is(err, ipxe.ErrConflict) {
		t.Fatalf("result of another command: %v", err)
	}
	a.result(cmd, true, "erased /dev/vda")
	w.pass()
	n = w.node("node-1")
	if n.ProvisionState != bmstate.StateAvailable || n.TargetProvisionState != "" || n.Agent != nil || n.PowerState != bmstate.PowerOff {
		t.Fatalf("after the result: %s → %q, agent %+v, power %q", n.ProvisionState, n.TargetProvisionState, n.Agent, n.PowerState)
	}
	if !hasEvent(n, "INFO", "clean wait → available") {
		t.Fatalf("history %+v", n.History)
	}
	if _, err := w.c.Heartbeat(w.ctx, a.token, agentapi.Heartbeat{}); !errors.Is(err, ipxe.ErrBadToken) {
		t.Fatalf("the finished boot's token still works: %v", err)
	}
	if b := w.boot(pxeMAC); b.Kind != ipxe.BootExit {
		t.Fatalf("available node boots %s", b.Kind)
	}
}

func TestCleanFailureIsRecorded(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateManageable)
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
	})
	w.pass()
	a := w.agent(pxeMAC)
	a.result(a.heartbeat(), false, "wipefs /dev/vda: device busy")
	n := w.passUntil("node-1", bmstate.StateCleanFail)
	if !strings.Contains(n.LastError, "wipefs /dev/vda: device busy") || n.Agent != nil {
		t.Fatalf("last_error %q agent %+v", n.LastError, n.Agent)
	}
}

func TestInspectRecordsTheInventory(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateManageable)
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateInspecting, bmstate.StateManageable
	})
	w.passUntil("node-1", bmstate.StateInspectWait)
	a := w.agent(pxeMAC)
	reply, err := w.c.Inventory(w.ctx, a.token, inventory())
	if err != nil || reply.Node != "node-1" {
		t.Fatalf("inventory: %v %v", reply, err)
	}
	cmd := a.heartbeat()
	if cmd.Op != agentapi.OpPowerOff || cmd.ID == "" {
		t.Fatalf("inspected agent told %+v, want poweroff with an id", cmd)
	}
	a.result(cmd, true, "powering off")
	if again := a.heartbeat(); again.ID != cmd.ID {
		t.Fatalf("poweroff command changed from %s to %s", cmd.ID, again.ID)
	}
	n := w.passUntil("node-1", bmstate.StateManageable)
	if n.Properties["cpus"] != 4.0 || n.Inventory.SystemVendor.SerialNumber != "S1" || n.InspectedAt.IsZero() || n.PowerState != bmstate.PowerOff {
		t.Fatalf("inspected node: props %v, inventory %+v, power %q", n.Properties, n.Inventory, n.PowerState)
	}
}

const serverID = "server-1"

// deployServer makes a server (as Nova's create does) claiming the node,
// and runs the deploy up to the agent's command.
func deployServer(t *testing.T, w *world, id, mac string) (*agent, agentapi.Command) {
	t.Helper()
	sv := computestate.Server{ID: serverID, Name: "bm1", Project: "p1", Status: "BUILD", VMState: "building", Want: "active",
		ImageID: "img-1", PublicKey: "ssh-ed25519 AAAA test", KeyName: "k1", Metadata: map[string]string{}}
	if _, err := w.local.Propose(w.ctx, cmdPutServer, sv); err != nil {
		t.Fatal(err)
	}
	w.set(id, func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateDeploying, bmstate.StateActive
		n.InstanceUUID = serverID
		// As the compute service's claim writes it.
		n.InstanceInfo = map[string]any{"image_source": "img-1", "root_gb": 1, "configdrive": true}
	})
	w.passUntil(id, bmstate.StateDeployWait)
	a := w.agent(mac)
	cmd := a.heartbeat()
	if cmd.Op != agentapi.OpDeploy || cmd.Deploy == nil {
		t.Fatalf("deploying agent told %+v", cmd)
	}
	return a, cmd
}

func TestDeployToActive(t *testing.T) {
	testenv.RequireCommand(t, "genisoimage")
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateAvailable)
	a, cmd := deployServer(t, w, "node-1", pxeMAC)
	d := cmd.Deploy
	if d.RootDisk != "/dev/vda" || d.ImageSize != int64(len(w.image)) || d.ImageSHA256 != sha256Hex(w.image) || !d.ConfigDrive {
		t.Fatalf("deploy args %+v", d)
	}
	img, err := w.c.Image(w.ctx, a.token)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(img.Body)
	img.Body.Close()
	if sha256Hex(got) != d.ImageSHA256 || img.ETag != d.ImageSHA256 {
		t.Fatal("the served image is not the one described")
	}
	cd, err := w.c.ConfigDrive(w.ctx, a.token)
	if err != nil {
		t.Fatal(err)
	}
	iso, _ := io.ReadAll(cd.Body)
	cd.Body.Close()
	if len(iso) < 32<<10 || string(iso[0x8001:0x8006]) != "CD001" {
		t.Fatalf("config drive is not an ISO (%d bytes)", len(iso))
	}
	m := w.machines["10.0.0.1"]
	before := len(m.Calls())
	a.result(cmd, true, "wrote image, sha256 ok")
	w.pass()
	n := w.node("node-1")
	if n.ProvisionState != bmstate.StateActive || n.Agent != nil || n.PowerState != bmstate.PowerOn || n.InstanceUUID != serverID {
		t.Fatalf("after the deploy: %s, agent %+v, power %q, instance %q", n.ProvisionState, n.Agent, n.PowerState, n.InstanceUUID)
	}
	if got := m.Calls()[before:]; !slices.Equal(got, []string{"boot disk persistent=true", "power reset"}) {
		t.Fatalf("BMC calls after the deploy %v, want boot disk persistent and a reset", got)
	}
	w.pass()
	reps := w.Reports()
	if len(reps) != 1 || reps[0].ID != serverID || reps[0].Observed.Status != "ACTIVE" {
		t.Fatalf("reports %+v, want the server ACTIVE once", reps)
	}
	w.pass()
	if len(w.Reports()) != 1 {
		t.Fatalf("reported again: %+v", w.Reports())
	}
	if b := w.boot(pxeMAC); b.Kind != ipxe.BootExit {
		t.Fatalf("active node boots %s", b.Kind)
	}
	// The image was fetched and prepared once.
	if w.opens != 1 {
		t.Fatalf("image opened %d times", w.opens)
	}
}

func TestQCOW2IsConvertedOnce(t *testing.T) {
	qemuImg := testenv.RequireCommand(t, "qemu-img")
	w := newWorld(t)
	raw := w.dir + "/src.raw"
	os.WriteFile(raw, w.image, 0o600)
	if out, err := runCmd(qemuImg, "convert", "-f", "raw", "-O", "qcow2", raw, raw+".qcow2"); err != nil {
		t.Fatalf("make qcow2: %v %s", err, out)
	}
	want := w.image
	w.image, _ = os.ReadFile(raw + ".qcow2")
	w.format = "qcow2"
	for i := 0; i < 2; i++ {
		img, err := w.c.rawImage(w.ctx, "img-q")
		if err != nil {
			t.Fatal(err)
		}
		if img.SHA256 != sha256Hex(want) || img.Size != int64(len(want)) {
			t.Fatalf("converted image %+v, want the raw bytes", img)
		}
	}
	if w.opens != 1 {
		t.Fatalf("image fetched %d times, want once", w.opens)
	}
}

func TestDeployFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		run  func(w *world, a *agent, cmd agentapi.Command)
		want string
	}{
		"heartbeats stop": {func(w *world, a *agent, cmd agentapi.Command) {
			w.clock.Advance(91 * time.Second)
		}, "timed out waiting for the agent: no heartbeat since 2026-12-05T10:01:00Z"},
		"the agent never calls back": {func(w *world, a *agent, cmd agentapi.Command) {
			// deployServer's heartbeat happened; a machine that never
			// booted is a fresh wait.
			w.set("node-1", func(n *bmstate.Node) {
				n.Agent.LastHeartbeat = time.Time{}
				n.Agent.Deadline = w.clock.Now().Add(10 * time.Minute)
			})
			w.clock.Advance(10*time.Minute + time.Second)
		}, "timed out waiting for the agent: no call back since the boot"},
		"the agent fails": {func(w *world, a *agent, cmd agentapi.Command) {
			a.result(cmd, false, "write /dev/vda: I/O error")
		}, "write /dev/vda: I/O error"},
	} {
		t.Run(name, func(t *testing.T) {
			testenv.RequireCommand(t, "genisoimage")
			w := newWorld(t)
			w.rack("node-1", pxeMAC, bmstate.StateAvailable)
			a, cmd := deployServer(t, w, "node-1", pxeMAC)
			// Heartbeats within the deadline keep it alive.
			w.clock.Advance(60 * time.Second)
			a.heartbeat()
			w.clock.Advance(60 * time.Second)
			w.pass()
			if n := w.node("node-1"); n.ProvisionState != bmstate.StateDeployWait {
				t.Fatalf("a heartbeating deploy failed: %s %q", n.ProvisionState, n.LastError)
			}
			tc.run(w, a, cmd)
			n := w.passUntil("node-1", bmstate.StateDeployFail)
			if !strings.Contains(n.LastError, tc.want) || n.Agent != nil {
				t.Fatalf("last_error %q, want %q; agent %+v", n.LastError, tc.want, n.Agent)
			}
			if !hasEvent(n, "ERROR", tc.want) {
				t.Fatalf("history %+v", n.History)
			}
			w.pass()
			reps := w.Reports()
			if len(reps) != 1 || reps[0].Observed.Status != "ERROR" || !strings.Contains(reps[0].Observed.Fault, tc.want) {
				t.Fatalf("reports %+v, want the server ERROR with the fault", reps)
			}
		})
	}
}

// TestServerFollowsTheMachinePower: Nova's stop, start and reboot of a
// bare-metal server ask the node's power (bmstate.RequestPower on the
// compute side); the conductor does it and reports the server as it
// then is.
func TestServerFollowsTheMachinePower(t *testing.T) {
	testenv.RequireCommand(t, "genisoimage")
	w := newWorld(t)
	_, m := w.rack("node-1", pxeMAC, bmstate.StateAvailable)
	a, cmd := deployServer(t, w, "node-1", pxeMAC)
	a.result(cmd, true, "ok")
	w.passUntil("node-1", bmstate.StateActive)
	w.pass()
	request := func(target string) {
		w.set("node-1", func(n *bmstate.Node) { n.TargetPowerState = target; n.PowerSeq++ })
		w.pass() // the BMC
		w.pass() // the report
	}
	last := func() computestate.Observed {
		r := w.Reports()
		return r[len(r)-1].Observed
	}
	request(bmstate.PowerOff)
	if o := last(); o.Status != "SHUTOFF" || m.power != PowerOff {
		t.Fatalf("after stop: %+v, machine %s", o, m.power)
	}
	request(bmstate.PowerOn)
	if o := last(); o.Status != "ACTIVE" || m.power != PowerOn {
		t.Fatalf("after start: %+v, machine %s", o, m.power)
	}
	w.local.Propose(w.ctx, cmdPutServer, func() computestate.Server {
		sv := *store.Get[computestate.Server](w.local.Local(), computestate.TableServers, serverID)
		sv.RebootSeq = 1
		return sv
	}())
	before := len(w.Reports())
	request(bmstate.Rebooting)
	if o := last(); len(w.Reports()) != before+1 || o.Status != "ACTIVE" || o.RebootSeq != 1 {
		t.Fatalf("after reboot: %+v (%d reports, %d before)", o, len(w.Reports()), before)
	}
	if calls := m.Calls(); calls[len(calls)-1] != "power reset" {
		t.Fatalf("reboot did %v", calls)
	}
	w.pass()
	if len(w.Reports()) != before+1 {
		t.Fatalf("an unchanged server was reported again: %+v", w.Reports())
	}
}

func TestHeartbeatsAreWrittenAtMostEvery15s(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateManageable)
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
	})
	w.pass()
	a := w.agent(pxeMAC)
	a.heartbeat()
	rev := w.node("node-1").Revision
	for i := 0; i < 2; i++ {
		w.clock.Advance(5 * time.Second)
		a.heartbeat()
	}
	if got := w.node("node-1").Revision; got != rev {
		t.Fatalf("heartbeats within 15 s wrote the row (revision %d → %d)", rev, got)
	}
	w.clock.Advance(5 * time.Second)
	a.heartbeat()
	if n := w.node("node-1"); n.Revision != rev+1 || !n.Agent.LastHeartbeat.Equal(w.clock.Now()) {
		t.Fatalf("the heartbeat after 15 s was not written: revision %d, last %v", n.Revision, n.Agent.LastHeartbeat)
	}
}

func TestDeleteCleansAndReportsGone(t *testing.T) {
	testenv.RequireCommand(t, "genisoimage")
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateAvailable)
	a, cmd := deployServer(t, w, "node-1", pxeMAC)
	a.result(cmd, true, "ok")
	w.passUntil("node-1", bmstate.StateActive)
	w.pass() // reports ACTIVE
	// Nova's delete: the node to deleting in the server's transaction.
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateDeleting, bmstate.StateAvailable
	})
	w.pass()
	n := w.node("node-1")
	if n.ProvisionState != bmstate.StateCleaning || n.PowerState != bmstate.PowerOff || n.InstanceUUID != "" || n.InstanceInfo != nil {
		t.Fatalf("after tear-down: %s, power %q, instance %q %v", n.ProvisionState, n.PowerState, n.InstanceUUID, n.InstanceInfo)
	}
	if len(w.Reports()) != 1 {
		t.Fatalf("reported gone before the node was cleaned: %+v", w.Reports())
	}
	w.passUntil("node-1", bmstate.StateCleanWait)
	a = w.agent(pxeMAC)
	a.result(a.heartbeat(), true, "erased")
	w.passUntil("node-1", bmstate.StateAvailable)
	w.pass()
	reps := w.Reports()
	if len(reps) != 2 || !reps[1].Observed.Gone || reps[1].ID != serverID {
		t.Fatalf("reports %+v, want Gone after ACTIVE", reps)
	}
	if store.Get[computestate.Server](w.local.Local(), computestate.TableServers, serverID) != nil {
		t.Fatal("the server row is still there")
	}
	if n := w.node("node-1"); n.DriverInternalInfo[goneKey] != nil {
		t.Fatalf("gone marker left: %v", n.DriverInternalInfo)
	}
	w.pass()
	if len(w.Reports()) != 2 {
		t.Fatalf("reported again: %+v", w.Reports())
	}
}

// TestRestartContinuesEveryWait stops the conductor in each wait and
// starts a new one on the same state, key and directory: the machine
// (which reboots, or simply goes on) gets the same token, and the
// operation finishes.
func TestRestartContinuesEveryWait(t *testing.T) {
	for name, tc := range map[string]struct {
		from, working, wait, target string
		finish                      func(w *world, a *agent)
	}{
		"inspect wait": {bmstate.StateManageable, bmstate.StateInspecting, bmstate.StateInspectWait, bmstate.StateManageable,
			func(w *world, a *agent) {
				if _, err := w.c.Inventory(w.ctx, a.token, inventory()); err != nil {
					w.t.Fatal(err)
				}
			}},
		"clean wait": {bmstate.StateManageable, bmstate.StateCleaning, bmstate.StateCleanWait, bmstate.StateAvailable,
			func(w *world, a *agent) { a.result(a.heartbeat(), true, "erased") }},
		"wait call-back": {bmstate.StateAvailable, bmstate.StateDeploying, bmstate.StateDeployWait, bmstate.StateActive,
			func(w *world, a *agent) { a.result(a.heartbeat(), true, "written") }},
	} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			w.rack("node-1", pxeMAC, tc.from)
			w.set("node-1", func(n *bmstate.Node) {
				n.ProvisionState, n.TargetProvisionState = tc.working, tc.target
				n.InstanceInfo = map[string]any{"image_source": "img-1"}
			})
			w.passUntil("node-1", tc.wait)
			before := w.agent(pxeMAC).token
			w.c = w.conductor() // rackd restarted
			w.clock.Advance(time.Minute)
			w.pass()
			if n := w.node("node-1"); n.ProvisionState != tc.wait {
				t.Fatalf("after the restart: %s %q", n.ProvisionState, n.LastError)
			}
			a := w.agent(pxeMAC)
			if a.token != before {
				t.Fatal("the restarted conductor boots the machine with another token")
			}
			tc.finish(w, a)
			w.passUntil("node-1", tc.target)
		})
	}
}

// TestRestartInAWorkingStateStartsOrResumesTheBoot covers a rackd that
// stopped after the API moved a node (no boot yet) and one that stopped
// between recording the boot and powering the machine.
func TestRestartInAWorkingStateStartsOrResumesTheBoot(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateManageable)
	old := w.c
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
		n.Agent = &bmstate.AgentBoot{ID: "boot-1", TokenSHA256: hashToken(old.token("node-1", "boot-1")), Op: agentapi.OpClean,
			Command: agentapi.Command{ID: "cmd-1", Op: agentapi.OpClean}, Started: w.clock.Now(), Deadline: w.clock.Now().Add(time.Minute)}
	})
	w.c = w.conductor()
	n := w.passUntil("node-1", bmstate.StateCleanWait)
	if n.Agent.ID != "boot-1" {
		t.Fatalf("the restarted conductor made boot %s instead of resuming boot-1", n.Agent.ID)
	}
	if cmd := w.agent(pxeMAC).heartbeat(); cmd.ID != "cmd-1" {
		t.Fatalf("command %s, want the recorded cmd-1", cmd.ID)
	}
}

// TestAResultBeforeTheWaitIsKept: the agent reported while the node was
// still cleaning (rackd stopped between booting it and recording the
// wait); the restarted conductor finishes with that result instead of
// booting the machine again.
func TestAResultBeforeTheWaitIsKept(t *testing.T) {
	w := newWorld(t)
	_, m := w.rack("node-1", pxeMAC, bmstate.StateManageable)
	m.power = PowerOn
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
		n.Agent = &bmstate.AgentBoot{ID: "boot-1", TokenSHA256: hashToken(w.c.token("node-1", "boot-1")), Op: agentapi.OpClean,
			Command: agentapi.Command{ID: "cmd-1", Op: agentapi.OpClean}, Started: w.clock.Now(), Deadline: w.clock.Now().Add(time.Minute),
			Done: true, Result: &agentapi.Result{CommandID: "cmd-1", Op: agentapi.OpClean, OK: true}}
	})
	w.c = w.conductor()
	w.passUntil("node-1", bmstate.StateAvailable)
	if got := m.Calls(); !slices.Equal(got, []string{"power off"}) {
		t.Fatalf("BMC calls %v, want only the power off that ends cleaning", got)
	}
}

func TestPowerRequests(t *testing.T) {
	w := newWorld(t)
	_, m := w.rack("node-1", pxeMAC, bmstate.StateManageable)
	w.set("node-1", func(n *bmstate.Node) { n.TargetPowerState, n.PowerSeq = bmstate.PowerOn, 1 })
	w.pass()
	n := w.node("node-1")
	if n.PowerState != bmstate.PowerOn || n.TargetPowerState != "" || n.LastError != "" {
		t.Fatalf("power on: %q target %q last_error %q", n.PowerState, n.TargetPowerState, n.LastError)
	}
	// A BMC that says OK and does nothing is caught by the read-back.
	m.ignorePower = true
	w.set("node-1", func(n *bmstate.Node) { n.TargetPowerState, n.PowerSeq = bmstate.PowerOff, 2 })
	w.pass()
	n = w.node("node-1")
	if n.TargetPowerState != "" || !strings.Contains(n.LastError, "accepted it but reports power on") || n.PowerState != bmstate.PowerOn {
		t.Fatalf("ignored power off: %q target %q last_error %q", n.PowerState, n.TargetPowerState, n.LastError)
	}
	if !hasEvent(n, "ERROR", "accepted it but reports") {
		t.Fatalf("history %+v", n.History)
	}
}

func TestBootDeviceRequest(t *testing.T) {
	w := newWorld(t)
	_, m := w.rack("node-1", pxeMAC, bmstate.StateManageable)
	w.set("node-1", func(n *bmstate.Node) {
		n.BootDevice, n.BootDevicePersistent, n.BootDeviceSeq = BootPXE, true, 1
	})
	w.pass()
	n := w.node("node-1")
	if n.BootDeviceDone != 1 || m.bootDev != BootPXE || !m.persistent {
		t.Fatalf("boot device done %d, BMC %s/%t", n.BootDeviceDone, m.bootDev, m.persistent)
	}
	w.pass()
	if got := m.Calls(); len(got) != 1 {
		t.Fatalf("boot device set again: %v", got)
	}
}

func TestPowerSyncRecordsDrift(t *testing.T) {
	w := newWorld(t)
	_, m := w.rack("node-1", pxeMAC, bmstate.StateManageable)
	w.set("node-1", func(n *bmstate.Node) { n.PowerState = bmstate.PowerOff })
	w.pass()          // the first pass syncs
	m.power = PowerOn // someone pressed the button
	w.pass()
	if n := w.node("node-1"); n.PowerState != bmstate.PowerOff {
		t.Fatalf("synced before it was due: %q", n.PowerState)
	}
	w.clock.Advance(61 * time.Second)
	w.pass()
	n := w.node("node-1")
	if n.PowerState != bmstate.PowerOn || !hasEvent(n, "INFO", "power state sync") {
		t.Fatalf("power %q history %+v", n.PowerState, n.History)
	}
	if len(m.Calls()) != 0 {
		t.Fatalf("the sync changed the power: %v", m.Calls())
	}
}

// unknownOnce applies the first PutNode but answers that its outcome is
// unknown, as a proposal whose leader went away does.
type unknownOnce struct {
	*store.Local
	done bool
}

func (u *unknownOnce) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	res, err := u.Local.Propose(ctx, typ, body)
	if err == nil && typ == bmstate.CmdPutNode && !u.done {
		u.done = true
		return store.Result{}, store.ErrOutcomeUnknown
	}
	return res, err
}

func TestOutcomeUnknownIsReadAgainNotFailed(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateEnroll)
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateVerifying, bmstate.StateManageable
	})
	w.repl = &unknownOnce{Local: w.local}
	w.c = w.conductor()
	w.pass()
	n := w.node("node-1")
	if n.ProvisionState != bmstate.StateManageable || n.LastError != "" {
		t.Fatalf("%s %q", n.ProvisionState, n.LastError)
	}
	verified := 0
	for _, ev := range n.History {
		if strings.Contains(ev.Event, "verifying → manageable") {
			verified++
		}
	}
	if verified != 1 {
		t.Fatalf("the transition was written %d times", verified)
	}
}

// TestHTTPWithTheConductor serves the conductor through provision/ipxe:
// the script per state and a wrong token's 401.
func TestHTTPWithTheConductor(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateManageable)
	w.rack("node-2", "52:54:00:aa:00:22", bmstate.StateActive)
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
	})
	w.pass()
	dir := t.TempDir()
	os.WriteFile(dir+"/"+ipxe.Kernel, []byte("k"), 0o644)
	os.WriteFile(dir+"/"+ipxe.Initrd, []byte("i"), 0o644)
	srv := httptest.NewServer(ipxe.New(ipxe.Config{URL: "http://192.0.2.1:8069", RamdiskDir: dir, Backend: w.c}))
	defer srv.Close()
	script := func(mac string) string {
		resp, err := http.Get(srv.URL + "/boot.ipxe?mac=" + mac)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	token := w.agent(pxeMAC).token
	if s := script(pxeMAC); !strings.Contains(s, "rackstack.token="+token+" rackstack.mac="+pxeMAC) {
		t.Fatalf("cleaning node's script:\n%s", s)
	}
	if s := script("52:54:00:aa:00:22"); !strings.Contains(s, "\nexit\n") || strings.Contains(s, "kernel") {
		t.Fatalf("active node's script:\n%s", s)
	}
	if s := script("52:54:00:aa:00:99"); !strings.Contains(s, "rackstack.token="+discoveryPrefix) {
		t.Fatalf("unknown machine's script:\n%s", s)
	}
	for _, tok := range []string{token + "x", "discover.525400aa0001.99999999999.00"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+agentapi.PathHeartbeat, strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: %d, want 401", tok, resp.StatusCode)
		}
	}
}

// One node's BMC session that hangs holds up no other node: a node whose
// agent reports while another node's step is stuck in its BMC moves on.
// (Passes that waited for every step held it until the stuck one ended.)
func TestASlowNodeDoesNotHoldUpTheOthers(t *testing.T) {
	w := newWorld(t)
	const macB = "52:54:00:00:00:0b"
	w.rack("node-a", pxeMAC, bmstate.StateManageable)
	w.rack("node-b", macB, bmstate.StateManageable)
	// node-b is cleaning, its agent running the clean command.
	w.set("node-b", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
	})
	w.passUntil("node-b", bmstate.StateCleanWait)
	agentB := w.agent(macB)
	cmdB := agentB.heartbeat()

	// node-a starts cleaning, and its BMC hangs on the boot device.
	ma := w.machines["10.0.0.a"]
	release := make(chan struct{})
	ma.mu.Lock()
	ma.block, ma.entered = release, make(chan struct{}, 4)
	ma.mu.Unlock()
	w.set("node-a", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
	})
	ctx, cancel := context.WithCancel(w.ctx)
	ran := make(chan error, 1)
	go func() { ran <- w.c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-ma.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("node-a's BMC was never called")
	}

	agentB.result(cmdB, true, "erased /dev/vda")
	deadline := time.Now().Add(30 * time.Second)
	for w.node("node-b").ProvisionState != bmstate.StateAvailable {
		if time.Now().After(deadline) {
			t.Fatalf("node-b is %s while node-a's BMC hangs: its cleaning never finished", w.node("node-b").ProvisionState)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := w.node("node-a").ProvisionState; st != bmstate.StateCleaning {
		t.Fatalf("node-a is %s while its BMC call hangs", st)
	}
	close(release)
	for w.node("node-a").ProvisionState != bmstate.StateCleanWait {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("node-a is %s after its BMC answered", w.node("node-a").ProvisionState)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A deploy through Ironic's API (openstack baremetal node deploy
// --config-drive) carries its config drive in instance_info, in any of
// Ironic's forms; the agent is served that drive.
func TestDeployWithAnInstanceInfoConfigDrive(t *testing.T) {
	isoinfo := testenv.RequireCommand(t, "isoinfo")
	testenv.RequireCommand(t, "genisoimage")
	gzipped := func(b []byte) string {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	iso := append(bytes.Repeat([]byte{0}, 0x8001), []byte("CD001 an ISO from elsewhere")...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, gzipped(iso))
	}))
	defer srv.Close()

	deploy := func(t *testing.T, w *world, configdrive any) []byte {
		t.Helper()
		w.rack("node-1", pxeMAC, bmstate.StateAvailable)
		w.set("node-1", func(n *bmstate.Node) {
			n.Name = "bm-one"
			n.ProvisionState, n.TargetProvisionState = bmstate.StateDeploying, bmstate.StateActive
			n.InstanceInfo = map[string]any{"image_source": "img-1", "configdrive": configdrive}
		})
		w.passUntil("node-1", bmstate.StateDeployWait)
		a := w.agent(pxeMAC)
		cmd := a.heartbeat()
		if cmd.Deploy == nil || !cmd.Deploy.ConfigDrive {
			t.Fatalf("deploy command %+v asks for no config drive", cmd)
		}
		cd, err := w.c.ConfigDrive(w.ctx, a.token)
		if err != nil {
			t.Fatal(err)
		}
		defer cd.Body.Close()
		got, _ := io.ReadAll(cd.Body)
		return got
	}

	t.Run("dict", func(t *testing.T) {
		w := newWorld(t)
		got := deploy(t, w, map[string]any{
			"meta_data":    map[string]any{"hostname": "bm-one.example"},
			"user_data":    "#cloud-config\nruncmd: [echo hi]\n",
			"network_data": map[string]any{"links": []any{}, "networks": []any{}, "services": []any{}},
		})
		path := w.dir + "/got.iso"
		os.WriteFile(path, got, 0o600)
		read := func(name string) string {
			out, err := runCmd(isoinfo, "-i", path, "-R", "-x", name)
			if err != nil {
				t.Fatalf("isoinfo %s: %v %s", name, err, out)
			}
			return out
		}
		if out, _ := runCmd(isoinfo, "-d", "-i", path); !strings.Contains(out, "Volume id: config-2") {
			t.Fatalf("the drive is not labelled config-2: %s", out)
		}
		if ud := read("/openstack/latest/user_data"); ud != "#cloud-config\nruncmd: [echo hi]\n" {
			t.Fatalf("user_data %q", ud)
		}
		var md map[string]any
		if err := json.Unmarshal([]byte(read("/openstack/latest/meta_data.json")), &md); err != nil {
			t.Fatal(err)
		}
		if md["hostname"] != "bm-one.example" || md["uuid"] != "node-1" || md["name"] != "bm-one" {
			t.Fatalf("meta_data %v", md)
		}
		if nd := read("/openstack/latest/network_data.json"); !strings.Contains(nd, `"links":[]`) {
			t.Fatalf("network_data %q", nd)
		}
	})
	t.Run("gzipped base64 ISO", func(t *testing.T) {
		if got := deploy(t, newWorld(t), gzipped(iso)); !bytes.Equal(got, iso) {
			t.Fatalf("served %d bytes, not the ISO given", len(got))
		}
	})
	t.Run("URL", func(t *testing.T) {
		if got := deploy(t, newWorld(t), srv.URL+"/cd"); !bytes.Equal(got, iso) {
			t.Fatalf("served %d bytes, not the ISO at the URL", len(got))
		}
	})
	t.Run("not base64", func(t *testing.T) {
		w := newWorld(t)
		w.rack("node-1", pxeMAC, bmstate.StateAvailable)
		w.set("node-1", func(n *bmstate.Node) {
			n.ProvisionState, n.TargetProvisionState = bmstate.StateDeploying, bmstate.StateActive
			n.InstanceInfo = map[string]any{"image_source": "img-1", "configdrive": "%%%"}
		})
		n := w.passUntil("node-1", bmstate.StateDeployFail)
		if !strings.Contains(n.LastError, "configdrive: not base64") {
			t.Fatalf("last_error %q", n.LastError)
		}
	})
}

// Inspection adds ports for the NICs it finds without one, as Ironic's
// add_ports says, and marks the NIC the machine booted from pxe_enabled.
func TestInspectionAddsPorts(t *testing.T) {
	const macActive, macIdle = "52:54:00:aa:00:02", "52:54:00:aa:00:03"
	inv := inventory()
	inv.Interfaces = []agentapi.Interface{
		{Name: "eth0", MACAddress: pxeMAC, IPv4Address: "192.0.2.50"},
		{Name: "eth1", MACAddress: strings.ToUpper(macActive), IPv4Address: "198.51.100.7"},
		{Name: "eth2", MACAddress: macIdle},
	}
	for policy, want := range map[string][]string{
		"":               {pxeMAC},
		AddPortsPXE:      {pxeMAC},
		AddPortsActive:   {pxeMAC, macActive},
		AddPortsAll:      {pxeMAC, macActive, macIdle},
		AddPortsDisabled: {pxeMAC},
	} {
		t.Run("policy "+policy, func(t *testing.T) {
			w := newWorld(t)
			w.c.AddPorts = policy
			w.rack("node-1", pxeMAC, bmstate.StateManageable)
			// The port was made by hand, without pxe_enabled.
			p := store.Get[bmstate.Port](w.local.Local(), bmstate.PortTable, "port-node-1")
			row := *p
			row.PXEEnabled = false
			if _, err := w.local.Propose(w.ctx, bmstate.CmdPutPort, bmstate.PutPortCmd{Row: row, Revision: p.Revision}); err != nil {
				t.Fatal(err)
			}
			w.set("node-1", func(n *bmstate.Node) {
				n.ProvisionState, n.TargetProvisionState = bmstate.StateInspecting, bmstate.StateManageable
			})
			w.passUntil("node-1", bmstate.StateInspectWait)
			a := w.agent(pxeMAC)
			if _, err := w.c.Inventory(w.ctx, a.token, inv); err != nil {
				t.Fatal(err)
			}
			// A repeated post changes nothing more.
			if _, err := w.c.Inventory(w.ctx, a.token, inv); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range bmstate.Ports(w.local.Local(), "node-1") {
				got = append(got, p.Address)
				if p.PXEEnabled != (p.Address == pxeMAC) {
					t.Errorf("port %s pxe_enabled %t", p.Address, p.PXEEnabled)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("ports %v, want %v", got, want)
			}
		})
	}

	t.Run("the PXE NIC lost its port", func(t *testing.T) {
		w := newWorld(t)
		w.rack("node-1", pxeMAC, bmstate.StateManageable)
		w.set("node-1", func(n *bmstate.Node) {
			n.ProvisionState, n.TargetProvisionState = bmstate.StateInspecting, bmstate.StateManageable
		})
		w.passUntil("node-1", bmstate.StateInspectWait)
		a := w.agent(pxeMAC)
		if _, err := w.local.Propose(w.ctx, bmstate.CmdDeletePort, bmstate.DeletePortCmd{ID: "port-node-1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.c.Inventory(w.ctx, a.token, inv); err != nil {
			t.Fatal(err)
		}
		ports := bmstate.Ports(w.local.Local(), "node-1")
		if len(ports) != 1 || ports[0].Address != pxeMAC || !ports[0].PXEEnabled {
			t.Fatalf("ports %+v, want the PXE NIC's back, pxe_enabled", ports)
		}
	})
}

// Ironic's fake interfaces (fake-hardware nodes) inspect, clean and
// deploy nothing: each finishes in one pass with no agent boot. With a
// real power interface the power is left as a real deploy or cleaning
// would leave it; with Ironic's fake one (fake-hardware's default) it is
// not touched at all: it reports what is recorded, none until a power
// request (openstacksdk's functional tests check exactly that).
func TestFakeInterfacesFinishAtOnce(t *testing.T) {
	for _, tc := range []struct {
		power             string
		cleaned, deployed string
		calls             []string
	}{
		{"ipmitool", bmstate.PowerOff, bmstate.PowerOn, []string{"power off", "boot disk persistent=true", "power on"}},
		{"fake", "", "", nil},
	} {
		t.Run(tc.power, func(t *testing.T) {
			w := newWorld(t)
			_, m := w.rack("node-1", pxeMAC, bmstate.StateManageable)
			w.set("node-1", func(n *bmstate.Node) {
				n.Interfaces = map[string]string{"deploy": "fake", "inspect": "fake", "power": tc.power}
				n.ProvisionState, n.TargetProvisionState = bmstate.StateInspecting, bmstate.StateManageable
				n.PowerState = ""
			})
			w.pass()
			if n := w.node("node-1"); n.ProvisionState != bmstate.StateManageable || n.Agent != nil || n.InspectedAt.IsZero() {
				t.Fatalf("after a fake inspection: %s, agent %+v", n.ProvisionState, n.Agent)
			}
			w.set("node-1", func(n *bmstate.Node) {
				n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
			})
			w.pass()
			if n := w.node("node-1"); n.ProvisionState != bmstate.StateAvailable || n.PowerState != tc.cleaned || n.Agent != nil {
				t.Fatalf("after a fake cleaning: %s, power %q", n.ProvisionState, n.PowerState)
			}
			w.set("node-1", func(n *bmstate.Node) {
				n.ProvisionState, n.TargetProvisionState = bmstate.StateDeploying, bmstate.StateActive
				n.InstanceInfo = map[string]any{"image_source": "img-1"}
			})
			w.pass()
			if n := w.node("node-1"); n.ProvisionState != bmstate.StateActive || n.PowerState != tc.deployed || n.Agent != nil {
				t.Fatalf("after a fake deploy: %s, power %q", n.ProvisionState, n.PowerState)
			}
			if got := m.Calls(); !slices.Equal(got, tc.calls) {
				t.Fatalf("BMC calls %v, want %v", got, tc.calls)
			}
			if w.opens != 0 {
				t.Fatal("a fake deploy fetched the image")
			}
		})
	}
}

// A retired node's cleaning ends in manageable, never available: Ironic
// does not hand a retired node out again.
func TestRetiredNodeCleansToManageable(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateManageable)
	w.set("node-1", func(n *bmstate.Node) {
		n.Interfaces = map[string]string{"deploy": "fake", "power": "fake"}
		n.Retired = true
		n.ProvisionState, n.TargetProvisionState = bmstate.StateCleaning, bmstate.StateAvailable
	})
	w.pass()
	if n := w.node("node-1"); n.ProvisionState != bmstate.StateManageable {
		t.Fatalf("a retired node cleaned to %s", n.ProvisionState)
	}
}

func TestAllocationsAreProcessedByAPass(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateAvailable)
	w.set("node-1", func(n *bmstate.Node) { n.ResourceClass, n.PowerState = "gold", bmstate.PowerOff })
	for _, a := range []bmstate.Allocation{{ID: "alloc-1", ResourceClass: "gold"}, {ID: "alloc-2", ResourceClass: "gold"}} {
		if _, err := w.local.Propose(w.ctx, bmstate.CmdCreateAllocation, bmstate.CreateAllocationCmd{Row: a}); err != nil {
			t.Fatal(err)
		}
	}
	w.pass()
	a1 := store.Get[bmstate.Allocation](w.local.Local(), bmstate.AllocationTable, "alloc-1")
	a2 := store.Get[bmstate.Allocation](w.local.Local(), bmstate.AllocationTable, "alloc-2")
	if a1.State != bmstate.AllocActive || a1.NodeID != "node-1" {
		t.Fatalf("first allocation: %+v", a1)
	}
	if a2.State != bmstate.AllocError || a2.LastError == "" {
		t.Fatalf("second allocation (no node left): %+v", a2)
	}
	if n := w.node("node-1"); n.AllocationID != "alloc-1" || n.InstanceUUID != "alloc-1" {
		t.Fatalf("node: allocation %q instance %q", n.AllocationID, n.InstanceUUID)
	}
}

// An allocation made while the only candidate's first power request is
// still pending (its power state unknown, so no candidate yet) waits for
// that request instead of failing: openstacksdk forces power off and
// allocates at once.
func TestAllocationWaitsForAPendingPowerRequest(t *testing.T) {
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateAvailable)
	w.set("node-1", func(n *bmstate.Node) {
		n.ResourceClass, n.PowerState, n.TargetPowerState = "gold", "", bmstate.PowerOff
		n.Interfaces = map[string]string{"power": "fake"}
	})
	if _, err := w.local.Propose(w.ctx, bmstate.CmdCreateAllocation, bmstate.CreateAllocationCmd{Row: bmstate.Allocation{ID: "alloc-1", ResourceClass: "gold"}}); err != nil {
		t.Fatal(err)
	}
	w.pass()
	if a := store.Get[bmstate.Allocation](w.local.Local(), bmstate.AllocationTable, "alloc-1"); a.State == bmstate.AllocError {
		t.Fatalf("the allocation failed while the power request was pending: %+v", a)
	}
	w.pass()
	if a := store.Get[bmstate.Allocation](w.local.Local(), bmstate.AllocationTable, "alloc-1"); a.State != bmstate.AllocActive || a.NodeID != "node-1" {
		t.Fatalf("after the power request: %+v (node power %q)", a, w.node("node-1").PowerState)
	}
}

func TestDiscoveryFindsAHandEnrolledNodeByItsBMCAddress(t *testing.T) {
	w := newWorld(t)
	for _, n := range []bmstate.Node{
		{ID: "by-hand", Driver: "redfish", DriverInfo: map[string]string{"redfish_address": "https://10.0.0.7:8000", "redfish_system_id": "/redfish/v1/Systems/1"},
			ProvisionState: bmstate.StateManageable, Conductor: "rack1", Properties: map[string]any{"cpus": 64.0}},
		{ID: "other", Driver: "ipmi", DriverInfo: map[string]string{"ipmi_address": "10.0.0.8"}, ProvisionState: bmstate.StateEnroll, Conductor: "rack1"},
	} {
		if _, err := w.local.Propose(w.ctx, bmstate.CmdCreateNode, bmstate.CreateNodeCmd{Row: n}); err != nil {
			t.Fatal(err)
		}
	}
	// The machine has no port, so its MAC is unknown: it boots discovery.
	a := w.agent(pxeMAC)
	if !strings.HasPrefix(a.token, discoveryPrefix) {
		t.Fatalf("token %q, want a discovery token", a.token)
	}
	inv := inventory()
	inv.BMCAddress = "10.0.0.7"
	reply, err := w.c.Inventory(w.ctx, a.token, inv)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Node != "by-hand" {
		t.Fatalf("inventory recorded on %q, want the node whose redfish_address is the BMC's", reply.Node)
	}
	if nodes := store.All[bmstate.Node](w.local.Local(), bmstate.NodeTable, "id"); len(nodes) != 2 {
		t.Fatalf("%d nodes: discovery enrolled a second node for a known machine", len(nodes))
	}
	n := w.node("by-hand")
	if n.Inventory == nil || n.Inventory.BMCAddress != "10.0.0.7" || n.Driver != "redfish" || n.ProvisionState != bmstate.StateManageable {
		t.Fatalf("node after discovery: %+v", n)
	}
	// What the operator set stays; what it lacked comes from the machine.
	if n.Properties["cpus"] != 64.0 || n.Properties["memory_mb"] != 2048.0 {
		t.Fatalf("properties %v", n.Properties)
	}
	if got := bmstate.NodeByMAC(w.local.Local(), pxeMAC); got == nil || got.ID != "by-hand" {
		t.Fatalf("the PXE MAC's port is on %v, want by-hand", got)
	}
	// Known now: it boots from disk instead of discovery again.
	if b := w.boot(pxeMAC); b.Kind != ipxe.BootExit {
		t.Fatalf("known machine boots %s", b.Kind)
	}
}

func TestRebuildDeploysAgainAndReportsTheRebuildDone(t *testing.T) {
	testenv.RequireCommand(t, "genisoimage")
	w := newWorld(t)
	w.rack("node-1", pxeMAC, bmstate.StateAvailable)
	a, cmd := deployServer(t, w, "node-1", pxeMAC)
	a.result(cmd, true, "wrote image")
	w.pass()
	w.pass()
	if reps := w.Reports(); len(reps) != 1 || reps[0].Observed.Status != "ACTIVE" {
		t.Fatalf("reports %+v", reps)
	}
	// Nova's rebuild, as the compute apply writes it: the server
	// rebuilding (its RebuildSeq counted), the node deploying the new
	// image.
	sv := *store.Get[computestate.Server](w.local.Local(), computestate.TableServers, serverID)
	sv.TaskState, sv.Status, sv.RebuildSeq, sv.ImageID = "rebuilding", "REBUILD", 1, "img-2"
	if _, err := w.local.Propose(w.ctx, cmdPutServer, sv); err != nil {
		t.Fatal(err)
	}
	w.set("node-1", func(n *bmstate.Node) {
		n.ProvisionState, n.TargetProvisionState = bmstate.StateDeploying, bmstate.StateActive
		n.InstanceInfo["image_source"] = "img-2"
	})
	w.passUntil("node-1", bmstate.StateDeployWait)
	a = w.agent(pxeMAC)
	cmd = a.heartbeat()
	if cmd.Op != agentapi.OpDeploy || cmd.Deploy == nil {
		t.Fatalf("rebuilding agent told %+v", cmd)
	}
	a.result(cmd, true, "wrote the new image")
	w.pass()
	w.pass()
	reps := w.Reports()
	if len(reps) != 2 || reps[1].Observed.Status != "ACTIVE" || reps[1].Observed.RebuildSeq != 1 {
		t.Fatalf("reports %+v, want a second ACTIVE carrying the rebuild", reps)
	}
}

// A conductor takes over only the nodes of the hardware types it drives:
// a fake-hardware-only one (rackd dev without provisioning services)
// leaves an ipmi node for a conductor that can boot it.
func TestConductorAdoptsOnlyTheDriversItDrives(t *testing.T) {
	w := newWorld(t)
	w.c.Row.Drivers = []string{"fake-hardware"}
	for _, n := range []bmstate.Node{
		{ID: "real", Driver: "ipmi", DriverInfo: map[string]string{"ipmi_address": "10.0.0.8"}, ProvisionState: bmstate.StateEnroll},
		{ID: "fake", Driver: "fake-hardware", ProvisionState: bmstate.StateEnroll},
	} {
		if _, err := w.local.Propose(w.ctx, bmstate.CmdCreateNode, bmstate.CreateNodeCmd{Row: n}); err != nil {
			t.Fatal(err)
		}
	}
	w.pass()
	if got := w.node("fake").Conductor; got != "rack1" {
		t.Fatalf("fake-hardware node conducted by %q", got)
	}
	if got := w.node("real").Conductor; got != "" {
		t.Fatalf("ipmi node taken by %q, a conductor that does not drive ipmi", got)
	}
}
