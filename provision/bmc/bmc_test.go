package bmc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/provision/bmc"
	"github.com/rackstack/rackstack/provision/bmc/bmctest"
)

func TestFromDriverInfo(t *testing.T) {
	for name, tc := range map[string]struct {
		driver   string
		info     map[string]string
		password string
		want     bmc.Credentials
		errNames string // the field the error must name; "" for no error
	}{
		"ipmi": {
			driver: "ipmi", password: "sealed-pw",
			info: map[string]string{"ipmi_address": "127.0.0.1", "ipmi_port": "6230", "ipmi_username": "admin", "ipmi_password": "******"},
			want: bmc.Credentials{Driver: "ipmi", Address: "127.0.0.1", Port: 6230, Username: "admin", Password: "sealed-pw"},
		},
		"ipmi default port, password in info": {
			driver: "ipmi", info: map[string]string{"ipmi_address": "bmc1.example", "ipmi_username": "u", "ipmi_password": "p"},
			want: bmc.Credentials{Driver: "ipmi", Address: "bmc1.example", Port: 623, Username: "u", Password: "p"},
		},
		"ipmi no address":  {driver: "ipmi", info: map[string]string{"ipmi_username": "u"}, errNames: "ipmi_address"},
		"ipmi bad port":    {driver: "ipmi", info: map[string]string{"ipmi_address": "h", "ipmi_port": "70000"}, errNames: "ipmi_port"},
		"ipmi port text":   {driver: "ipmi", info: map[string]string{"ipmi_address": "h", "ipmi_port": "six"}, errNames: "ipmi_port"},
		"ipmi address url": {driver: "ipmi", info: map[string]string{"ipmi_address": "http://h/"}, errNames: "ipmi_address"},
		"redfish url": {
			driver: "redfish", password: "pw",
			info: map[string]string{"redfish_address": "https://127.0.0.1:8443", "redfish_system_id": "/redfish/v1/Systems/1", "redfish_username": "admin", "redfish_verify_ca": "False"},
			want: bmc.Credentials{Driver: "redfish", Address: "https://127.0.0.1", Port: 8443, Username: "admin", Password: "pw", SystemID: "/redfish/v1/Systems/1"},
		},
		"redfish host only verifies by default": {
			driver: "redfish", info: map[string]string{"redfish_address": "bmc2"},
			want: bmc.Credentials{Driver: "redfish", Address: "https://bmc2", Port: 443, VerifyCA: true},
		},
		"redfish CA bundle": {
			driver: "redfish", info: map[string]string{"redfish_address": "http://bmc3:8000", "redfish_verify_ca": "/etc/ssl/bmc.pem"},
			want: bmc.Credentials{Driver: "redfish", Address: "http://bmc3", Port: 8000, VerifyCA: true, CAFile: "/etc/ssl/bmc.pem"},
		},
		"redfish no address": {driver: "redfish", info: map[string]string{}, errNames: "redfish_address"},
		"redfish bad scheme": {driver: "redfish", info: map[string]string{"redfish_address": "ftp://h"}, errNames: "redfish_address"},
		"redfish bad port":   {driver: "redfish", info: map[string]string{"redfish_address": "https://h:0"}, errNames: "redfish_address"},
		"redfish verify_ca":  {driver: "redfish", info: map[string]string{"redfish_address": "h", "redfish_verify_ca": "maybe"}, errNames: "redfish_verify_ca"},
		"fake":               {driver: "fake-hardware", want: bmc.Credentials{Driver: "fake-hardware"}},
		"unknown driver":     {driver: "idrac", errNames: `"idrac"`},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := bmc.FromDriverInfo(tc.driver, tc.info, tc.password)
			if tc.errNames != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errNames) || !errors.Is(err, bmc.ErrInvalid) {
					t.Fatalf("error %v, want ErrInvalid naming %s", err, tc.errNames)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %#v (%+v), want %+v", got, got.Password, tc.want)
			}
		})
	}
}

// Printing credentials, however formatted, leaves the password out.
func TestCredentialsPrintWithoutPassword(t *testing.T) {
	c := bmc.Credentials{Driver: "ipmi", Address: "127.0.0.1", Port: 6230, Username: "admin", Password: "hunter2-secret"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(verb, c)
		if strings.Contains(s, c.Password) {
			t.Errorf("%s prints the password: %s", verb, s)
		}
	}
	if got := c.String(); got != "ipmi 127.0.0.1:6230" {
		t.Errorf("String() = %q", got)
	}
}

func openFake(t *testing.T, f *bmc.Fake) bmc.BMC {
	t.Helper()
	b, err := bmc.Open(context.Background(), bmc.Credentials{Driver: bmc.DriverFake}, bmc.WithFake(f), bmc.WithRetry(bmctest.FastRetry))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformanceFake(t *testing.T) {
	f := bmctest.NewFake()
	bmctest.Run(t, func(t *testing.T) bmc.BMC { return openFake(t, f) }, bmctest.Caps{ReportsPersistence: true})
}

// A BMC that answers OK and changes nothing fails every write, after the
// policy's tries, with an error that says what did not happen.
func TestIgnoredWritesAreCaught(t *testing.T) {
	ctx := context.Background()
	f := bmctest.NewIgnoring()
	b := openFake(t, f)

	err := b.SetPower(ctx, bmc.PowerOn)
	if !errors.Is(err, bmc.ErrNotApplied) {
		t.Fatalf("power on = %v, want ErrNotApplied", err)
	}
	if want := "fake-hardware: power on not applied after 3 tries: still off"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if f.Writes != bmctest.FastRetry.Tries {
		t.Errorf("%d writes, want one per try (%d)", f.Writes, bmctest.FastRetry.Tries)
	}

	err = b.SetBootDevice(ctx, bmc.BootPXE, true)
	if want := "fake-hardware: boot device pxe (persistent true) not applied after 3 tries: reads none (persistent false)"; err == nil || err.Error() != want {
		t.Errorf("set boot device = %v, want %q", err, want)
	}

	// Persistence is checked too: a BMC that keeps the device but makes
	// the override one-time has not done what was asked.
	once := &onlyOnce{Fake: bmctest.NewFake()}
	v := bmc.Verify("bmc0", once, bmctest.FastRetry)
	if err := v.SetBootDevice(ctx, bmc.BootDisk, true); !errors.Is(err, bmc.ErrNotApplied) {
		t.Errorf("persistent override made one-time: %v, want ErrNotApplied", err)
	}
}

// onlyOnce sets every boot override for the next boot only.
type onlyOnce struct{ *bmc.Fake }

func (o *onlyOnce) SetBootDevice(ctx context.Context, dev string, _ bool) error {
	return o.Fake.SetBootDevice(ctx, dev, false)
}

// slow applies a write only on its n-th arrival: BMCs that take a few
// tries are served by the retries.
type slow struct {
	*bmc.Fake
	n, seen int
}

func (s *slow) SetPower(ctx context.Context, action string) error {
	s.seen++
	if s.seen < s.n {
		return nil
	}
	return s.Fake.SetPower(ctx, action)
}

func TestRetriesUntilApplied(t *testing.T) {
	s := &slow{Fake: bmctest.NewFake(), n: 3}
	b := bmc.Verify("bmc0", s, bmctest.FastRetry)
	if err := b.SetPower(context.Background(), bmc.PowerOn); err != nil {
		t.Fatalf("power on applied at the third write: %v", err)
	}
	if s.seen != 3 {
		t.Errorf("%d writes, want 3", s.seen)
	}
}

// A reset from off is a power on: a cycle of an off server is refused by
// real BMCs (the fake too), and the read-back wants the server on.
func TestResetFromOffPowersOn(t *testing.T) {
	f := bmctest.NewFake()
	b := openFake(t, f)
	if err := b.SetPower(context.Background(), bmc.PowerCycle); err != nil {
		t.Fatal(err)
	}
	if !f.On {
		t.Error("server is off after a cycle from off")
	}
}

// Refused credentials are not retried (a BMC may lock the account), and
// the error says so.
func TestAuthErrorIsNotRetried(t *testing.T) {
	f := bmctest.NewFake()
	f.Err = bmc.ErrAuth
	b := bmc.Verify("ipmi 127.0.0.1:6230", f, bmctest.FastRetry)
	err := b.SetPower(context.Background(), bmc.PowerOn)
	if !errors.Is(err, bmc.ErrAuth) {
		t.Fatalf("error %v, want ErrAuth", err)
	}
	if want := "ipmi 127.0.0.1:6230: power on failed: authentication failed"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if f.Writes != 1 {
		t.Errorf("%d writes, want 1", f.Writes)
	}
}

// The context bounds the retries, however generous the policy.
func TestContextBoundsRetries(t *testing.T) {
	b := bmc.Verify("bmc0", bmctest.NewIgnoring(), bmc.Retry{Tries: 1000, Wait: time.Hour, MaxWait: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := b.SetPower(ctx, bmc.PowerOn)
	if !errors.Is(err, bmc.ErrNotApplied) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want ErrNotApplied and DeadlineExceeded", err)
	}
}

// A transient error from the BMC is retried, and the last one is kept.
func TestTransientErrorRetriedAndReported(t *testing.T) {
	f := bmctest.NewFake()
	f.Err = errors.New("connection reset by peer")
	b := bmc.Verify("bmc0", f, bmctest.FastRetry)
	err := b.SetPower(context.Background(), bmc.PowerOff)
	if !errors.Is(err, bmc.ErrNotApplied) || !strings.Contains(err.Error(), "connection reset by peer") {
		t.Fatalf("error %v, want ErrNotApplied with the BMC's error", err)
	}
	if f.Writes != bmctest.FastRetry.Tries {
		t.Errorf("%d writes, want %d", f.Writes, bmctest.FastRetry.Tries)
	}
}
