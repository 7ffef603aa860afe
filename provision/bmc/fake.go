package bmc

import (
	"context"
	"fmt"
	"sync"
)

// Fake is an in-memory BMC: Driver "fake-hardware", and the BMC unit
// tests elsewhere use. Its fields inject faults; set them before use or
// under Lock.
type Fake struct {
	sync.Mutex
	On         bool
	Device     string // BootNone when no override
	Persistent bool

	// IgnoreWrites makes writes answer OK and change nothing, the BMC
	// fault the read-back exists to catch.
	IgnoreWrites bool
	// Err, when set, is returned by every call.
	Err error
	// Writes counts the writes that reached the fake.
	Writes int
}

// NewFake returns a fake server, powered off, with no boot override.
func NewFake() *Fake { return &Fake{Device: BootNone} }

func (f *Fake) PowerState(context.Context) (bool, error) {
	f.Lock()
	defer f.Unlock()
	return f.On, f.Err
}

func (f *Fake) SetPower(_ context.Context, action string) error {
	f.Lock()
	defer f.Unlock()
	f.Writes++
	if f.Err != nil {
		return f.Err
	}
	var on bool
	switch action {
	case PowerOn, PowerReset:
		on = true
	case PowerCycle:
		// Redfish and IPMI refuse a cycle of a server that is off.
		if !f.On {
			return fmt.Errorf("power cycle: server is off: %w", ErrInvalid)
		}
		on = true
	case PowerOff, PowerSoft:
	default:
		return fmt.Errorf("power %q: %w", action, ErrInvalid)
	}
	if !f.IgnoreWrites {
		f.On = on
	}
	return nil
}

func (f *Fake) BootDevice(context.Context) (string, bool, error) {
	f.Lock()
	defer f.Unlock()
	return f.Device, f.Persistent, f.Err
}

func (f *Fake) SetBootDevice(_ context.Context, dev string, persistent bool) error {
	f.Lock()
	defer f.Unlock()
	f.Writes++
	if f.Err != nil {
		return f.Err
	}
	if !f.IgnoreWrites {
		f.Device, f.Persistent = dev, persistent
	}
	return nil
}

func (f *Fake) Close(context.Context) error { return nil }
