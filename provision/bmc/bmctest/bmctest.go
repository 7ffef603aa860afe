// Package bmctest is the conformance suite every BMC passes (the fake,
// Redfish and IPMI through bmclib against the simulators), and the fakes
// other packages' tests use: a working BMC and one that ignores writes.
package bmctest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rackstack/rackstack/provision/bmc"
)

// Bound on one suite step; simulators answer in well under a second.
const stepTimeout = 60 * time.Second

// FastRetry is a read-back policy for in-memory fakes: tests of what
// happens when a write is never applied need not wait a real BMC's time.
var FastRetry = bmc.Retry{Tries: 3, Wait: time.Millisecond, MaxWait: 4 * time.Millisecond}

// NewFake returns a working in-memory BMC, powered off, no boot override.
// Open it with bmc.Open(ctx, bmc.Credentials{Driver: bmc.DriverFake},
// bmc.WithFake(f)) to get the verifying BMC the conductor uses.
func NewFake() *bmc.Fake { return bmc.NewFake() }

// NewIgnoring returns a fake that answers every write OK and applies
// none: the read-back must catch it.
func NewIgnoring() *bmc.Fake {
	f := bmc.NewFake()
	f.IgnoreWrites = true
	return f
}

// Caps says what a BMC can report, where BMCs differ.
type Caps struct {
	// ReportsPersistence: BootDevice says whether the override is
	// persistent. ipmi_sim keeps only the device.
	ReportsPersistence bool
}

// Run runs the suite. open returns a BMC (with verified writes, as
// bmc.Open gives) for one server; it is called once per subtest, and
// every call must reach the same server. Each subtest leaves it off.
func Run(t *testing.T, open func(t *testing.T) bmc.BMC, caps Caps) {
	s := &suite{open: open, caps: caps}
	t.Run("PowerOnOff", s.powerOnOff)
	t.Run("ResetAndCycle", s.resetAndCycle)
	t.Run("ResetFromOffPowersOn", s.resetFromOff)
	t.Run("SoftPowerOff", s.soft)
	t.Run("BootDevice", s.bootDevice)
	t.Run("BadArguments", s.badArguments)
}

type suite struct {
	open func(t *testing.T) bmc.BMC
	caps Caps
}

func (s *suite) start(t *testing.T) (context.Context, bmc.BMC) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	t.Cleanup(cancel)
	b := s.open(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
		defer cancel()
		if err := b.SetPower(ctx, bmc.PowerOff); err != nil {
			t.Errorf("power off at the end: %v", err)
		}
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return ctx, b
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantPower(t *testing.T, ctx context.Context, b bmc.BMC, want bool) {
	t.Helper()
	on, err := b.PowerState(ctx)
	must(t, "power state", err)
	if on != want {
		t.Fatalf("power on = %v, want %v", on, want)
	}
}

func (s *suite) powerOnOff(t *testing.T) {
	ctx, b := s.start(t)
	must(t, "power off", b.SetPower(ctx, bmc.PowerOff))
	wantPower(t, ctx, b, false)
	must(t, "power on", b.SetPower(ctx, bmc.PowerOn))
	wantPower(t, ctx, b, true)
	must(t, "power on again (a no-op)", b.SetPower(ctx, bmc.PowerOn))
	wantPower(t, ctx, b, true)
	must(t, "power off", b.SetPower(ctx, bmc.PowerOff))
	wantPower(t, ctx, b, false)
	must(t, "power off again (a no-op)", b.SetPower(ctx, bmc.PowerOff))
	wantPower(t, ctx, b, false)
}

func (s *suite) resetAndCycle(t *testing.T) {
	ctx, b := s.start(t)
	must(t, "power on", b.SetPower(ctx, bmc.PowerOn))
	must(t, "reset", b.SetPower(ctx, bmc.PowerReset))
	wantPower(t, ctx, b, true)
	must(t, "cycle", b.SetPower(ctx, bmc.PowerCycle))
	wantPower(t, ctx, b, true)
}

func (s *suite) resetFromOff(t *testing.T) {
	ctx, b := s.start(t)
	must(t, "power off", b.SetPower(ctx, bmc.PowerOff))
	must(t, "reset", b.SetPower(ctx, bmc.PowerReset))
	wantPower(t, ctx, b, true)
	must(t, "power off", b.SetPower(ctx, bmc.PowerOff))
	must(t, "cycle", b.SetPower(ctx, bmc.PowerCycle))
	wantPower(t, ctx, b, true)
}

func (s *suite) soft(t *testing.T) {
	ctx, b := s.start(t)
	must(t, "power on", b.SetPower(ctx, bmc.PowerOn))
	must(t, "soft power off", b.SetPower(ctx, bmc.PowerSoft))
	wantPower(t, ctx, b, false)
}

func (s *suite) bootDevice(t *testing.T) {
	ctx, b := s.start(t)
	for _, tc := range []struct {
		dev        string
		persistent bool
	}{{bmc.BootPXE, true}, {bmc.BootDisk, true}, {bmc.BootPXE, false}, {bmc.BootDisk, false}} {
		must(t, "set boot device", b.SetBootDevice(ctx, tc.dev, tc.persistent))
		dev, persistent, err := b.BootDevice(ctx)
		must(t, "read boot device", err)
		if dev != tc.dev {
			t.Errorf("after SetBootDevice(%s, %v): device %q", tc.dev, tc.persistent, dev)
		}
		if s.caps.ReportsPersistence && persistent != tc.persistent {
			t.Errorf("after SetBootDevice(%s, %v): persistent %v", tc.dev, tc.persistent, persistent)
		}
	}
}

func (s *suite) badArguments(t *testing.T) {
	ctx, b := s.start(t)
	if err := b.SetPower(ctx, "explode"); !errors.Is(err, bmc.ErrInvalid) {
		t.Errorf("SetPower(explode) = %v, want ErrInvalid", err)
	}
	if err := b.SetBootDevice(ctx, "floppy", true); !errors.Is(err, bmc.ErrInvalid) {
		t.Errorf("SetBootDevice(floppy) = %v, want ErrInvalid", err)
	}
}
