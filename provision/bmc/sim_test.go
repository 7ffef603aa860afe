package bmc_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
	"github.com/rackstack/rackstack/provision/bmc"
	"github.com/rackstack/rackstack/provision/bmc/bmcsim"
	"github.com/rackstack/rackstack/provision/bmc/bmctest"
)

// The test binary doubles as the simulators' helpers, so these tests need
// no binary built first: `TEST chassis DIR 0x20 get power` is ipmi_sim's
// chassis-control program (`TEST chassis-ignoring …` one that reads but
// ignores every set, exiting 0), and `TEST standin …` stands in for QEMU
// (it takes any arguments and runs until killed).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "chassis", "chassis-ignoring":
			args := os.Args[3:]
			if len(args) > 0 && strings.HasPrefix(args[0], "0x") {
				args = args[1:]
			}
			if os.Args[1] == "chassis-ignoring" && len(args) > 0 && args[0] == "set" {
				os.Exit(0)
			}
			if err := bmcsim.Chassis(&bmcsim.Machine{Dir: os.Args[2]}, args, os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Exit(0)
		case "standin":
			time.Sleep(time.Hour)
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

const (
	simUser     = "admin"
	simPassword = "sim-s3cret-pw"
)

// newMachine makes a machine whose "QEMU" is the stand-in, and powers it
// off when the test ends.
func newMachine(t *testing.T) *bmcsim.Machine {
	t.Helper()
	m, err := bmcsim.Create(t.TempDir(), []string{os.Args[0], "standin", "-boot", "order=c"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.PowerOff(false); err != nil {
			t.Errorf("power off the machine: %v", err)
		}
	})
	return m
}

// runningArgs is the command line of the machine's running stand-in.
func runningArgs(t *testing.T, m *bmcsim.Machine) string {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(m.Dir, bmcsim.PIDFile))
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := os.ReadFile("/proc/" + strings.Fields(string(pid))[0] + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(cmd), "\x00", " ")
}

func startRedfish(t *testing.T, m *bmcsim.Machine) string {
	t.Helper()
	return startRedfishCert(t, m, nil)
}

func startRedfishCert(t *testing.T, m *bmcsim.Machine, cert *tls.Certificate) string {
	t.Helper()
	return startRedfishSim(t, &bmcsim.Redfish{Machine: m, SystemID: "node-1", User: simUser, Password: simPassword, Cert: cert})
}

func startRedfishSim(t *testing.T, r *bmcsim.Redfish) string {
	t.Helper()
	srv, err := bmcsim.StartRedfish("127.0.0.1:0", r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	return srv.URL
}

// The simulators apply writes at once; a short wait keeps retries quick.
var simRetry = bmc.WithRetry(bmc.Retry{Tries: 4, Wait: 50 * time.Millisecond, MaxWait: time.Second})

func openOrFail(t *testing.T, c bmc.Credentials) bmc.BMC {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bmc.Open(ctx, c, simRetry)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func redfishCredentials(t *testing.T, url, password string) bmc.Credentials {
	t.Helper()
	c, err := bmc.FromDriverInfo("redfish", map[string]string{
		"redfish_address": url, "redfish_system_id": "/redfish/v1/Systems/node-1",
		"redfish_username": simUser, "redfish_verify_ca": "false",
	}, password)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformanceRedfishSim(t *testing.T) {
	m := newMachine(t)
	c := redfishCredentials(t, startRedfish(t, m), simPassword)
	bmctest.Run(t, func(t *testing.T) bmc.BMC { return openOrFail(t, c) }, bmctest.Caps{ReportsPersistence: true})
}

// The boot device set over Redfish is the boot order the machine's QEMU
// starts with; a one-time override is used once.
func TestRedfishBootDeviceDrivesQEMU(t *testing.T) {
	m := newMachine(t)
	b := openOrFail(t, redfishCredentials(t, startRedfish(t, m), simPassword))
	ctx := context.Background()
	defer b.Close(ctx)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.SetBootDevice(ctx, bmc.BootPXE, false))
	must(b.SetPower(ctx, bmc.PowerOn))
	if args := runningArgs(t, m); !strings.Contains(args, "-boot order=n") {
		t.Errorf("one-time pxe: QEMU runs %q", args)
	}
	must(b.SetPower(ctx, bmc.PowerReset))
	if args := runningArgs(t, m); !strings.Contains(args, "-boot order=c") {
		t.Errorf("after the one-time pxe boot: QEMU runs %q, want the command line's own order", args)
	}
	must(b.SetBootDevice(ctx, bmc.BootDisk, true))
	must(b.SetPower(ctx, bmc.PowerOff))
	must(b.SetPower(ctx, bmc.PowerOn))
	if args := runningArgs(t, m); !strings.Contains(args, "-boot order=c") {
		t.Errorf("persistent disk: QEMU runs %q", args)
	}
}

// wantAuthError checks a wrong password's error: ErrAuth, naming the BMC,
// never the password.
func wantAuthError(t *testing.T, err error, name, password string) {
	t.Helper()
	if !errors.Is(err, bmc.ErrAuth) {
		t.Fatalf("open with a wrong password: %v, want ErrAuth", err)
	}
	if want := "open " + name + ": authentication failed"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("error %q carries the password", err)
	}
}

func TestRedfishWrongPassword(t *testing.T) {
	m := newMachine(t)
	url := startRedfish(t, m)
	c := redfishCredentials(t, url, "wrong-password-42")
	_, err := bmc.Open(context.Background(), c, simRetry)
	wantAuthError(t, err, "redfish "+strings.TrimPrefix(url, ""), "wrong-password-42")
}

// redfish_verify_ca is honoured: the simulator's self-signed certificate
// is refused against the system's roots and accepted against a bundle
// holding it.
func TestRedfishVerifiesCA(t *testing.T) {
	cert, err := bmcsim.SelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
		t.Fatal(err)
	}
	url := startRedfishCert(t, newMachine(t), &cert)
	info := map[string]string{"redfish_address": url, "redfish_system_id": "/redfish/v1/Systems/node-1", "redfish_username": simUser}
	ctx := context.Background()

	c, err := bmc.FromDriverInfo("redfish", info, simPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bmc.Open(ctx, c, simRetry); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("open with redfish_verify_ca default (true): %v, want a certificate error", err)
	}

	info["redfish_verify_ca"] = bundle
	c, err = bmc.FromDriverInfo("redfish", info, simPassword)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bmc.Open(ctx, c, simRetry)
	if err != nil {
		t.Fatalf("open with the CA bundle: %v", err)
	}
	if _, err := b.PowerState(ctx); err != nil {
		t.Error(err)
	}
	b.Close(ctx)
}

// startIPMISim runs ipmi_sim on a free loopback port for m, with this
// test binary as its chassis-control program.
func startIPMISim(t *testing.T, m *bmcsim.Machine) int {
	t.Helper()
	return startIPMISimChassis(t, m, "chassis")
}

func startIPMISimChassis(t *testing.T, m *bmcsim.Machine, chassis string) int {
	t.Helper()
	testenv.RequireRoot(t, "run ipmi_sim")
	bin := testenv.RequireCommand(t, "ipmi_sim")
	testenv.RequireCommand(t, "ipmitool")
	port := freeUDPPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := bmcsim.IPMISim{
		Dir: t.TempDir(), Port: port, User: simUser, Password: simPassword, Binary: bin,
		Chassis: []string{os.Args[0], chassis, m.Dir},
	}.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
	})
	return port
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func ipmiCredentials(t *testing.T, port int, password string) bmc.Credentials {
	t.Helper()
	c, err := bmc.FromDriverInfo("ipmi", map[string]string{
		"ipmi_address": "127.0.0.1", "ipmi_port": strconv.Itoa(port), "ipmi_username": simUser,
	}, password)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformanceIPMISim(t *testing.T) {
	m := newMachine(t)
	c := ipmiCredentials(t, startIPMISim(t, m), simPassword)
	// ipmi_sim keeps the boot device but not whether it is persistent.
	bmctest.Run(t, func(t *testing.T) bmc.BMC { return openOrFail(t, c) }, bmctest.Caps{ReportsPersistence: false})
}

func TestIPMIBootDeviceDrivesQEMU(t *testing.T) {
	m := newMachine(t)
	b := openOrFail(t, ipmiCredentials(t, startIPMISim(t, m), simPassword))
	ctx := context.Background()
	defer b.Close(ctx)
	if err := b.SetBootDevice(ctx, bmc.BootPXE, true); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPower(ctx, bmc.PowerOn); err != nil {
		t.Fatal(err)
	}
	if args := runningArgs(t, m); !strings.Contains(args, "-boot order=n") {
		t.Errorf("pxe: QEMU runs %q", args)
	}
	if err := b.SetBootDevice(ctx, bmc.BootDisk, true); err != nil {
		t.Fatal(err)
	}
	if err := b.SetPower(ctx, bmc.PowerReset); err != nil {
		t.Fatal(err)
	}
	if args := runningArgs(t, m); !strings.Contains(args, "-boot order=c") {
		t.Errorf("disk after reset: QEMU runs %q", args)
	}
}

func TestIPMIWrongPassword(t *testing.T) {
	m := newMachine(t)
	port := startIPMISim(t, m)
	_, err := bmc.Open(context.Background(), ipmiCredentials(t, port, "wrong-password-42"), simRetry)
	wantAuthError(t, err, fmt.Sprintf("ipmi 127.0.0.1:%d", port), "wrong-password-42")
}

// A BMC that does not answer says so, without the password. (Had the
// open waited out the context, the error would say so instead.)
func TestNoAnswer(t *testing.T) {
	testenv.RequireCommand(t, "ipmitool")
	port := freeUDPPort(t) // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := bmc.Open(ctx, ipmiCredentials(t, port, "no-answer-pw"), simRetry)
	if want := fmt.Sprintf("open ipmi 127.0.0.1:%d: no answer from the BMC", port); err == nil || err.Error() != want {
		t.Errorf("ipmi: %v, want %q", err, want)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + ln.Addr().String()
	ln.Close()
	_, err = bmc.Open(ctx, redfishCredentials(t, url, "no-answer-pw"), simRetry)
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no-answer-pw") {
		t.Errorf("redfish: %v, want connection refused without the password", err)
	}
}

// Real protocol servers that answer every write OK and apply none: the
// read-back catches it, through bmclib, and says what did not happen.
func TestIgnoredWritesThroughBmclib(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, b bmc.BMC, name string) {
		t.Helper()
		defer b.Close(ctx)
		err := b.SetPower(ctx, bmc.PowerOn)
		if want := name + ": power on not applied after 4 tries: still off"; err == nil || err.Error() != want {
			t.Errorf("power on = %v, want %q", err, want)
		}
		err = b.SetBootDevice(ctx, bmc.BootPXE, true)
		if !errors.Is(err, bmc.ErrNotApplied) {
			t.Errorf("set boot device = %v, want ErrNotApplied", err)
		}
	}
	t.Run("redfish", func(t *testing.T) {
		m := newMachine(t)
		url := startRedfishSim(t, &bmcsim.Redfish{Machine: m, SystemID: "node-1", User: simUser, Password: simPassword, IgnoreWrites: true})
		check(t, openOrFail(t, redfishCredentials(t, url, simPassword)), "redfish "+url)
	})
	t.Run("ipmi", func(t *testing.T) {
		m := newMachine(t)
		port := startIPMISimChassis(t, m, "chassis-ignoring")
		check(t, openOrFail(t, ipmiCredentials(t, port, simPassword)), fmt.Sprintf("ipmi 127.0.0.1:%d", port))
	})
}
