// Package bmc powers bare-metal servers on and off and sets their boot
// device through their baseboard management controller: IPMI (bmclib's
// ipmitool provider) or Redfish (bmclib's gofish provider), named by
// Ironic's driver names and driver_info keys. It speaks neither protocol
// itself.
//
// Every write is read back and retried with backoff (Verify): BMCs that
// answer OK and ignore the change are common, and the conductor must not
// believe a server is off while it still runs. Errors name the BMC and say
// what failed; they never carry the password, and nothing here logs one.
package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Drivers, by Ironic's names.
const (
	DriverIPMI    = "ipmi"
	DriverRedfish = "redfish"
	DriverFake    = "fake-hardware"
)

// Power actions SetPower takes (bmclib's names). Reset and Cycle leave the
// server on: from off they power it on, the way Ironic's reboot does.
const (
	PowerOn    = "on"
	PowerOff   = "off"
	PowerReset = "reset" // hard reset
	PowerCycle = "cycle" // power off, then on
	PowerSoft  = "soft"  // ask the OS to shut down (ACPI), ends off
)

// Boot devices SetBootDevice takes; BootDevice may also report BootNone
// (no override) or another device the BMC names.
const (
	BootPXE  = "pxe"
	BootDisk = "disk"
	BootNone = "none"
)

// Sentinel errors, for errors.Is.
var (
	// ErrAuth: the BMC refused the credentials.
	ErrAuth = errors.New("authentication failed")
	// ErrNotApplied: the BMC accepted a write but never showed it applied.
	ErrNotApplied = errors.New("not applied")
	// ErrInvalid: a bad argument (action, device, driver info).
	ErrInvalid = errors.New("invalid")
)

// BMC is one open connection to a server's BMC. Writes through a BMC from
// Open are verified by reading them back.
type BMC interface {
	// PowerState reports whether the server is powered on.
	PowerState(ctx context.Context) (on bool, err error)
	// SetPower performs one of the Power* actions and returns once the
	// server shows the resulting state.
	SetPower(ctx context.Context, action string) error
	// BootDevice reports the boot override: the device (BootPXE, BootDisk,
	// BootNone, …) and whether it applies to every boot or only the next.
	BootDevice(ctx context.Context) (dev string, persistent bool, err error)
	// SetBootDevice sets the device the server boots from: BootPXE or
	// BootDisk, for the next boot only or for all of them.
	SetBootDevice(ctx context.Context, dev string, persistent bool) error
	// Close ends the session with the BMC.
	Close(ctx context.Context) error
}

// Credentials say how to reach a BMC. Password is a secret: Credentials
// has a String method that leaves it out, so printing one is safe.
type Credentials struct {
	Driver   string // DriverIPMI, DriverRedfish or DriverFake
	Address  string // IPMI: host; Redfish: scheme://host (no port)
	Port     int
	Username string
	Password string
	SystemID string // Redfish: the system's path (/redfish/v1/Systems/1) or id
	VerifyCA bool   // Redfish: verify the BMC's certificate
	CAFile   string // Redfish: CA bundle to verify against (system roots when "")
}

// String names the BMC the way errors do ("ipmi 127.0.0.1:6230").
func (c Credentials) String() string {
	switch c.Driver {
	case DriverFake:
		return DriverFake
	case DriverIPMI:
		return c.Driver + " " + net.JoinHostPort(c.Address, strconv.Itoa(c.Port))
	}
	return c.Driver + " " + c.Address + ":" + strconv.Itoa(c.Port)
}

// GoString keeps %#v from printing the password.
func (c Credentials) GoString() string { return "bmc.Credentials{" + c.String() + "}" }

// FromDriverInfo reads Ironic's driver_info keys for driver. password is
// the unsealed *_password value (the API keeps it sealed beside the other
// keys); "" falls back to the key in info. A missing or invalid key is
// named in the error.
func FromDriverInfo(driver string, info map[string]string, password string) (Credentials, error) {
	c := Credentials{Driver: driver}
	switch driver {
	case DriverFake:
		return c, nil
	case DriverIPMI:
		c.Address = strings.TrimSpace(info["ipmi_address"])
		if c.Address == "" {
			return c, fmt.Errorf("driver_info ipmi_address: %w: required", ErrInvalid)
		}
		if strings.ContainsAny(c.Address, "/ ") {
			return c, fmt.Errorf("driver_info ipmi_address %q: %w: want a host name or IP address", c.Address, ErrInvalid)
		}
		c.Port = 623
		if p := info["ipmi_port"]; p != "" {
			n, err := parsePort(p)
			if err != nil {
				return c, fmt.Errorf("driver_info ipmi_port %q: %w", p, err)
			}
			c.Port = n
		}
		c.Username = info["ipmi_username"]
		c.Password = firstNonEmpty(password, info["ipmi_password"])
		return c, nil
	case DriverRedfish:
		addr := strings.TrimSpace(info["redfish_address"])
		if addr == "" {
			return c, fmt.Errorf("driver_info redfish_address: %w: required", ErrInvalid)
		}
		if !strings.Contains(addr, "://") {
			addr = "https://" + addr
		}
		u, err := url.Parse(addr)
		if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return c, fmt.Errorf("driver_info redfish_address %q: %w: want https://host[:port] or host[:port]", info["redfish_address"], ErrInvalid)
		}
		c.Address = u.Scheme + "://" + u.Hostname()
		c.Port = 443
		if u.Scheme == "http" {
			c.Port = 80
		}
		if p := u.Port(); p != "" {
			n, err := parsePort(p)
			if err != nil {
				return c, fmt.Errorf("driver_info redfish_address %q: port: %w", info["redfish_address"], err)
			}
			c.Port = n
		}
		c.SystemID = info["redfish_system_id"]
		c.Username = info["redfish_username"]
		c.Password = firstNonEmpty(password, info["redfish_password"])
		c.VerifyCA = true // Ironic's default
		switch v := info["redfish_verify_ca"]; strings.ToLower(v) {
		case "", "true", "1", "yes", "on":
		case "false", "0", "no", "off":
			c.VerifyCA = false
		default:
			// Ironic takes a CA bundle path here too.
			if !strings.HasPrefix(v, "/") {
				return c, fmt.Errorf("driver_info redfish_verify_ca %q: %w: want true, false or a CA bundle path", v, ErrInvalid)
			}
			c.CAFile = v
		}
		return c, nil
	}
	return c, fmt.Errorf("driver %q: %w: want %s, %s or %s", driver, ErrInvalid, DriverIPMI, DriverRedfish, DriverFake)
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%w: want a port number 1-65535", ErrInvalid)
	}
	return n, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Option tunes Open; without any, Open suits production.
type Option func(*options)

type options struct {
	retry    Retry
	fake     *Fake
	ipmitool string
}

// WithRetry sets how writes are read back (DefaultRetry without it).
func WithRetry(r Retry) Option { return func(o *options) { o.retry = r } }

// WithFake gives the in-memory BMC Driver "fake-hardware" opens; without
// it each Open gets a new one, powered off (tests pass one to share its
// state between opens).
func WithFake(f *Fake) Option { return func(o *options) { o.fake = f } }

// WithIPMITool names the ipmitool binary (found on PATH without it).
func WithIPMITool(path string) Option { return func(o *options) { o.ipmitool = path } }

// Open connects to the BMC c names and returns it with every write
// verified. The login is checked: a wrong password fails here with
// ErrAuth. ctx bounds the connection and, for Redfish, sets the HTTP
// timeout of later calls; pass one with a deadline.
func Open(ctx context.Context, c Credentials, opts ...Option) (BMC, error) {
	o := options{retry: DefaultRetry}
	for _, opt := range opts {
		opt(&o)
	}
	var raw BMC
	switch c.Driver {
	case DriverFake:
		raw = o.fake
		if o.fake == nil {
			raw = NewFake()
		}
	case DriverIPMI, DriverRedfish:
		b, err := openBmclib(ctx, c, o)
		if err != nil {
			return nil, err
		}
		raw = b
	default:
		return nil, fmt.Errorf("open bmc: driver %q: %w", c.Driver, ErrInvalid)
	}
	return Verify(c.String(), raw, o.retry), nil
}
