package bmcsim

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// The test binary stands in for QEMU: `TEST standin …` takes any
// arguments and runs until killed.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "standin" {
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newMachine(t *testing.T, argv ...string) *Machine {
	t.Helper()
	m, err := Create(t.TempDir(), append([]string{os.Args[0], "standin"}, argv...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.PowerOff(false); err != nil {
			t.Error(err)
		}
	})
	return m
}

func running(t *testing.T, m *Machine) string {
	t.Helper()
	pid, err := m.pid()
	if err != nil || pid == 0 {
		t.Fatalf("machine not running (pid %d, %v)", pid, err)
	}
	// exec has committed when Start returns, but the kernel fills the new
	// command line in a moment later: until then /proc reads it empty.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(filepathProc(pid))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 || time.Now().After(deadline) {
			return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		}
	}
}

func filepathProc(pid int) string { return filepath.Join("/proc", strconv.Itoa(pid), "cmdline") }

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantOn(t *testing.T, m *Machine, want bool) {
	t.Helper()
	on, err := m.PowerState()
	mustOK(t, err)
	if on != want {
		t.Fatalf("power on = %v, want %v", on, want)
	}
}

func TestPowerAndBootOrder(t *testing.T) {
	m := newMachine(t, "-m", "256", "-boot", "order=c")
	wantOn(t, m, false)

	// One-time pxe: this power on boots the network, the next does not.
	mustOK(t, m.SetBoot(DevPXE, false))
	mustOK(t, m.PowerOn(nil))
	wantOn(t, m, true)
	if got, want := running(t, m), os.Args[0]+" standin -m 256 -boot order=n"; got != want {
		t.Errorf("runs %q, want %q", got, want)
	}
	b, err := m.Boot()
	mustOK(t, err)
	if b != (Boot{}) {
		t.Errorf("one-time override not consumed: %+v", b)
	}
	mustOK(t, m.Reset(nil))
	if got := running(t, m); !strings.HasSuffix(got, "-boot order=c") {
		t.Errorf("after reset runs %q, want the command line's order", got)
	}

	// Persistent pxe holds over resets.
	mustOK(t, m.SetBoot(DevPXE, true))
	mustOK(t, m.Reset(nil))
	mustOK(t, m.Reset(nil))
	if got := running(t, m); !strings.HasSuffix(got, "-boot order=n") {
		t.Errorf("persistent pxe: runs %q", got)
	}
	mustOK(t, m.PowerOff(true))
	wantOn(t, m, false)
	mustOK(t, m.PowerOff(false)) // off is idempotent
}

func TestBootOrderAppendedWithoutBootArgument(t *testing.T) {
	m := newMachine(t, "-m", "256")
	mustOK(t, m.SetBoot(DevDisk, true))
	mustOK(t, m.PowerOn(nil))
	if got := running(t, m); !strings.HasSuffix(got, "-m 256 -boot order=c") {
		t.Errorf("runs %q", got)
	}
}

// A PID file whose process is gone, or is another process (the PID was
// reused: its start time differs), is a machine that is off.
func TestStalePIDIsOff(t *testing.T) {
	m := newMachine(t)
	start, ok := testenv.StartTime(os.Getpid())
	if !ok {
		t.Fatal("no start time for this process")
	}
	pidFile := filepath.Join(m.Dir, PIDFile)
	mustOK(t, os.WriteFile(pidFile, []byte(fmt.Sprintf("%d %s1\n", os.Getpid(), start)), 0o644))
	wantOn(t, m, false)
	mustOK(t, os.WriteFile(pidFile, []byte(fmt.Sprintf("999999999 %s\n", start)), 0o644))
	wantOn(t, m, false)
	// The check itself: with the right start time this process counts
	// (then the PID file goes, so the cleanup does not kill the test).
	mustOK(t, os.WriteFile(pidFile, []byte(fmt.Sprintf("%d %s\n", os.Getpid(), start)), 0o644))
	wantOn(t, m, true)
	mustOK(t, os.Remove(pidFile))
}

// A command that execs QEMU (`ip netns exec NS qemu-system-x86_64 …`, here
// env) keeps its PID: the machine is on while the exec'd program runs.
func TestCommandThatExecs(t *testing.T) {
	m, err := Create(t.TempDir(), []string{"/usr/bin/env", os.Args[0], "standin"})
	mustOK(t, err)
	t.Cleanup(func() { mustOK(t, m.PowerOff(false)) })
	mustOK(t, m.PowerOn(nil))
	wantOn(t, m, true)
	mustOK(t, m.PowerOff(false))
	wantOn(t, m, false)
}

// A command line that cannot run fails the power on, pointing at the log.
func TestPowerOnFailsForABadCommand(t *testing.T) {
	m, err := Create(t.TempDir(), []string{filepath.Join(t.TempDir(), "no-such-qemu")})
	mustOK(t, err)
	if err := m.PowerOn(nil); err == nil {
		t.Fatal("power on of a missing program succeeded")
	}
	wantOn(t, m, false)
}

func TestChassis(t *testing.T) {
	m := newMachine(t)
	run := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		mustOK(t, Chassis(m, args, &out))
		return out.String()
	}
	if got := run("get", "power", "boot"); got != "power:0\nboot:none\n" {
		t.Errorf("get = %q", got)
	}
	run("set", "boot", "pxe")
	run("set", "power", "1")
	if got := run("get", "power", "boot"); got != "power:1\nboot:pxe\n" {
		t.Errorf("get = %q", got)
	}
	if got := running(t, m); !strings.HasSuffix(got, "-boot order=n") {
		t.Errorf("runs %q", got)
	}
	run("set", "boot", "default")
	run("set", "reset", "1")
	if got := running(t, m); !strings.HasSuffix(got, "-boot order=c") {
		t.Errorf("after set boot default + reset runs %q", got)
	}
	run("set", "shutdown", "1")
	if got := run("get", "power"); got != "power:0\n" {
		t.Errorf("after shutdown: %q", got)
	}
	for _, bad := range [][]string{{"get", "fan"}, {"set", "boot", "floppy"}, {"set", "power", "2"}, {"set", "power"}, {"frob", "x"}} {
		if err := Chassis(m, bad, &bytes.Buffer{}); err == nil {
			t.Errorf("Chassis(%q) succeeded", bad)
		}
	}
}

func TestIPMISimConfig(t *testing.T) {
	dir := t.TempDir()
	s := IPMISim{Dir: dir, Port: 6230, User: "admin", Password: "pw", Chassis: []string{"/bin/rack-bmcsim", "chassis", "/m"}}
	mustOK(t, s.Write())
	lan, err := os.ReadFile(filepath.Join(dir, IPMIConfFile))
	mustOK(t, err)
	for _, want := range []string{"addr 127.0.0.1 6230", `chassis_control "/bin/rack-bmcsim chassis /m 0x20"`, `user 2 true "admin" "pw" admin`} {
		if !bytes.Contains(lan, []byte(want)) {
			t.Errorf("lan.conf lacks %q:\n%s", want, lan)
		}
	}
	emu, err := os.ReadFile(filepath.Join(dir, IPMIEmuFile))
	mustOK(t, err)
	for _, want := range []string{"mc_setbmc 0x20", "sel_enable 0x20 1000 0x0a", "mc_enable 0x20"} {
		if !bytes.Contains(emu, []byte(want)) {
			t.Errorf("emu lacks %q", want)
		}
	}
	for name, bad := range map[string]IPMISim{
		"quote in password": {Dir: dir, Port: 6230, User: "a", Password: `p"w`, Chassis: s.Chassis},
		"long user":         {Dir: dir, Port: 6230, User: strings.Repeat("u", 17), Password: "p", Chassis: s.Chassis},
		"no port":           {Dir: dir, User: "a", Password: "p", Chassis: s.Chassis},
		"blank in chassis":  {Dir: dir, Port: 6230, User: "a", Password: "p", Chassis: []string{"/a b"}},
	} {
		if err := bad.Write(); err == nil {
			t.Errorf("%s: Write succeeded", name)
		}
	}
}

func TestRedfishRefusesWithoutCredentials(t *testing.T) {
	m := newMachine(t)
	srv := httptest.NewServer(&Redfish{Machine: m, SystemID: "1", User: "admin", Password: "pw"})
	defer srv.Close()
	get := func(path string, set func(*http.Request)) int {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		mustOK(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/redfish/v1/", nil); code != http.StatusOK {
		t.Errorf("service root: %d", code)
	}
	if code := get("/redfish/v1/Systems/1", nil); code != http.StatusUnauthorized {
		t.Errorf("system without auth: %d", code)
	}
	if code := get("/redfish/v1/Systems/1", func(r *http.Request) { r.SetBasicAuth("admin", "nope") }); code != http.StatusUnauthorized {
		t.Errorf("system with a wrong password: %d", code)
	}
	if code := get("/redfish/v1/Systems/1", func(r *http.Request) { r.Header.Set("X-Auth-Token", "forged") }); code != http.StatusUnauthorized {
		t.Errorf("system with a forged token: %d", code)
	}
	if code := get("/redfish/v1/Systems/1", func(r *http.Request) { r.SetBasicAuth("admin", "pw") }); code != http.StatusOK {
		t.Errorf("system with basic auth: %d", code)
	}

	patch := func(body string) int {
		req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/redfish/v1/Systems/1", strings.NewReader(body))
		req.SetBasicAuth("admin", "pw")
		resp, err := http.DefaultClient.Do(req)
		mustOK(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := patch(`{"Boot":{"BootSourceOverrideTarget":"Floppy","BootSourceOverrideEnabled":"Once"}}`); code != http.StatusBadRequest {
		t.Errorf("patch to Floppy: %d", code)
	}
	if code := patch(`{"Boot":{"BootSourceOverrideTarget":"Pxe","BootSourceOverrideEnabled":"Continuous"}}`); code != http.StatusNoContent {
		t.Errorf("patch to Pxe: %d", code)
	}
	b, err := m.Boot()
	mustOK(t, err)
	if b != (Boot{Persistent: DevPXE}) {
		t.Errorf("boot after patch: %+v", b)
	}
}

func TestUDPBoundReadsTheSocketTable(t *testing.T) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	if bound, err := udpBound(port); err != nil || !bound {
		t.Fatalf("udpBound(%d) with a socket on it = %v, %v; want true", port, bound, err)
	}
	c.Close()
	if bound, err := udpBound(port); err != nil || bound {
		t.Fatalf("udpBound(%d) after close = %v, %v; want false", port, bound, err)
	}
}
