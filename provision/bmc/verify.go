package bmc

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Retry bounds how a write is re-sent until the BMC shows it applied: up
// to Tries writes, each followed by a read; a read that does not show the
// change yet waits Wait (doubling each try, at most MaxWait) and reads
// again before the next write. The context bounds it all.
type Retry struct {
	Tries   int
	Wait    time.Duration
	MaxWait time.Duration
}

// DefaultRetry suits real BMCs, which take seconds to change power state.
var DefaultRetry = Retry{Tries: 4, Wait: 500 * time.Millisecond, MaxWait: 8 * time.Second}

// Verify wraps raw so that every write is read back. name prefixes every
// error ("ipmi 127.0.0.1:6230").
func Verify(name string, raw BMC, r Retry) BMC {
	if r.Tries < 1 {
		r.Tries = 1
	}
	return &verified{name: name, raw: raw, retry: r}
}

type verified struct {
	name  string
	raw   BMC
	retry Retry
}

func (v *verified) PowerState(ctx context.Context) (bool, error) {
	on, err := v.raw.PowerState(ctx)
	if err != nil {
		return false, fmt.Errorf("%s: read power state: %w", v.name, err)
	}
	return on, nil
}

func (v *verified) BootDevice(ctx context.Context) (string, bool, error) {
	dev, persistent, err := v.raw.BootDevice(ctx)
	if errors.Is(err, errPersistenceUnknown) {
		return dev, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: read boot device: %w", v.name, err)
	}
	return dev, persistent, nil
}

func (v *verified) Close(ctx context.Context) error {
	if err := v.raw.Close(ctx); err != nil {
		return fmt.Errorf("%s: close: %w", v.name, err)
	}
	return nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// SetPower sends action and waits for the state it leads to. A reset or
// cycle is sent once, and only while the server is on: re-sending it
// would reboot a server that did reboot; from off, and on every retry,
// the write is a plain power on. (An ignored reset of a server that is on
// cannot be told from one that happened: both read on.)
func (v *verified) SetPower(ctx context.Context, action string) error {
	var want bool
	switch action {
	case PowerOn, PowerReset, PowerCycle:
		want = true
	case PowerOff, PowerSoft:
	default:
		return fmt.Errorf("%s: power %q: %w: want on, off, reset, cycle or soft", v.name, action, ErrInvalid)
	}
	send := action
	if action == PowerReset || action == PowerCycle {
		on, err := v.PowerState(ctx)
		if err != nil {
			return err
		}
		if !on {
			send = PowerOn
		}
	}
	state := ""
	err := v.apply(ctx, func(try int) error {
		if try > 1 && want {
			send = PowerOn
		}
		return v.raw.SetPower(ctx, send)
	}, func() (bool, error) {
		on, err := v.raw.PowerState(ctx)
		if err != nil {
			return false, err
		}
		state = "still " + onOff(on)
		return on == want, nil
	}, func() string { return state })
	if err != nil {
		return fmt.Errorf("%s: power %s %w", v.name, action, err)
	}
	return nil
}

// SetBootDevice sets dev and reads it back. A BMC whose read-back does not
// say whether the override is persistent (ipmi_sim keeps only the device)
// is checked on the device alone.
func (v *verified) SetBootDevice(ctx context.Context, dev string, persistent bool) error {
	if dev != BootPXE && dev != BootDisk {
		return fmt.Errorf("%s: boot device %q: %w: want pxe or disk", v.name, dev, ErrInvalid)
	}
	state := ""
	err := v.apply(ctx, func(int) error { return v.raw.SetBootDevice(ctx, dev, persistent) }, func() (bool, error) {
		got, gotPersistent, err := v.raw.BootDevice(ctx)
		if errors.Is(err, errPersistenceUnknown) {
			state = "reads " + got
			return got == dev, nil
		}
		if err != nil {
			return false, err
		}
		state = fmt.Sprintf("reads %s (persistent %v)", got, gotPersistent)
		return got == dev && gotPersistent == persistent, nil
	}, func() string { return state })
	if err != nil {
		return fmt.Errorf("%s: boot device %s (persistent %v) %w", v.name, dev, persistent, err)
	}
	return nil
}

// apply writes, reads back, waits and reads again, up to Tries writes.
// Its error reads after the write's name: "not applied after 4 tries:
// still off" (ErrNotApplied; state says what the last read showed), or
// "failed: …" with an error the BMC gave that another try cannot cure.
func (v *verified) apply(ctx context.Context, write func(try int) error, applied func() (bool, error), state func() string) error {
	wait := v.retry.Wait
	var lastErr error
	try := 1
	for ; ; try++ {
		if err := write(try); err != nil {
			lastErr = err
			if !transient(err) {
				return fmt.Errorf("failed: %w", err)
			}
		} else if ok, err := applied(); err == nil && ok {
			return nil
		} else {
			lastErr = err
		}
		if err := sleep(ctx, wait); err != nil {
			lastErr = err
			break
		}
		if ok, err := applied(); err == nil && ok {
			return nil
		} else if err != nil {
			lastErr = err
		}
		if try == v.retry.Tries {
			break
		}
		wait = min(2*wait, max(v.retry.MaxWait, v.retry.Wait))
	}
	msg := "after 1 try"
	if try > 1 {
		msg = fmt.Sprintf("after %d tries", try)
	}
	if s := state(); s != "" {
		msg += ": " + s
	}
	if lastErr != nil {
		return fmt.Errorf("%w %s (last error: %w)", ErrNotApplied, msg, lastErr)
	}
	return fmt.Errorf("%w %s", ErrNotApplied, msg)
}

// transient: an error worth another try. Refused credentials and bad
// arguments will be refused again.
func transient(err error) bool {
	return !errors.Is(err, ErrAuth) && !errors.Is(err, ErrInvalid)
}

// errPersistenceUnknown comes with a device from a BootDevice whose BMC
// reports the device but not whether the override is persistent.
var errPersistenceUnknown = errors.New("boot override persistence not reported")

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
