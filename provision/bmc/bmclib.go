package bmc

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"

	bmclib "github.com/bmc-toolbox/bmclib/v2"
	"github.com/go-logr/logr"
	gofish "github.com/stmcginnis/gofish/common"
)

// bmclib's generic provider for each protocol. The vendor providers that
// also speak Redfish (dell, openbmc) are for their vendors' extensions.
var providers = map[string]struct{ protocol, name string }{
	DriverIPMI:    {"ipmi", "ipmitool"},
	DriverRedfish: {"redfish", "gofish"},
}

// ipmitool's cipher suite 3 (RAKP-HMAC-SHA1, AES-CBC-128), which every
// IPMI 2.0 BMC has; without it bmclib tries 3 and 17 in turn, and a BMC
// that lacks the first costs a timeout (~10 s) per call.
const ipmiCipherSuite = "3"

// bmclibBMC is a BMC through bmclib, filtered to one provider; its writes
// are not verified (Open wraps it in Verify).
type bmclibBMC struct {
	c        Credentials
	client   *bmclib.Client
	ipmitool *ipmitool // IPMI only: what bmclib's ipmitool provider cannot read
}

func openBmclib(ctx context.Context, c Credentials, opts options) (*bmclibBMC, error) {
	p := providers[c.Driver]
	clientOpts := []bmclib.Option{bmclib.WithLogger(logr.Discard())}
	b := &bmclibBMC{c: c}
	switch c.Driver {
	case DriverIPMI:
		tool, err := newIPMITool(c, opts.ipmitool)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", c, err)
		}
		if err := tool.probe(ctx); err != nil {
			return nil, fmt.Errorf("open %s: %w", c, err)
		}
		b.ipmitool = tool
		clientOpts = append(clientOpts,
			bmclib.WithIpmitoolPort(strconv.Itoa(c.Port)),
			bmclib.WithIpmitoolCipherSuite(ipmiCipherSuite),
			bmclib.WithIpmitoolPath(tool.path))
	case DriverRedfish:
		clientOpts = append(clientOpts, bmclib.WithRedfishPort(strconv.Itoa(c.Port)))
		if c.SystemID != "" {
			// bmclib (v2.3.5) picks the system by its Name; Ironic names
			// it by path, whose last element is the system's Id. Where
			// Name and Id differ (sushy-tools names systems after their
			// libvirt domains), a BMC with one system is reached with no
			// redfish_system_id: bmclib then takes that system.
			clientOpts = append(clientOpts, bmclib.WithRedfishSystemName(path.Base(c.SystemID)))
		}
		if c.VerifyCA {
			pool, err := caPool(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", c, err)
			}
			clientOpts = append(clientOpts, bmclib.WithSecureTLS(pool))
		}
	}
	b.client = bmclib.NewClient(c.Address, c.Username, c.Password, clientOpts...)
	b.client.Registry.Drivers = b.client.Registry.Using(p.protocol)
	b.client.Registry.Drivers = b.client.Registry.For(p.name)
	if len(b.client.Registry.Drivers) == 0 {
		return nil, fmt.Errorf("open %s: bmclib has no %s provider", c, p.name)
	}
	if err := b.client.Open(ctx); err != nil {
		return nil, fmt.Errorf("open %s: %w", c, b.explain(ctx, err))
	}
	return b, nil
}

func caPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return x509.SystemCertPool()
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read CA bundle %s: %w: no PEM certificate", file, ErrInvalid)
	}
	return pool, nil
}

// explain turns what bmclib returned into an error that says what went
// wrong (ErrAuth for refused credentials), without the password.
func (b *bmclibBMC) explain(ctx context.Context, err error) error {
	var rf *gofish.Error
	switch {
	case errors.As(err, &rf) && (rf.HTTPReturnedStatusCode == http.StatusUnauthorized || rf.HTTPReturnedStatusCode == http.StatusForbidden):
		return ErrAuth
	case b.ipmitool != nil && strings.Contains(err.Error(), "Unable to establish IPMI v2 / RMCP+ session"):
		// ipmitool says the same for a wrong password, an unknown user
		// and a BMC that does not answer; its verbose output tells them
		// apart.
		if err := b.ipmitool.probe(ctx); err != nil {
			return err
		}
		return scrub(flatten(err), b.c.Password)
	}
	return scrub(flatten(err), b.c.Password)
}

// flatten makes one line of bmclib's multi-line error lists ("2 errors
// occurred:\n\t* provider: gofish: …\n\t* no Opener implementations
// found"), keeping what the providers said.
func flatten(err error) error {
	var parts []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "* "))
		switch {
		case line == "", strings.HasSuffix(line, "occurred:"), strings.HasPrefix(line, "no ") && strings.HasSuffix(line, "implementations found"):
			continue
		}
		parts = append(parts, line)
	}
	if len(parts) == 0 {
		return err
	}
	return errors.New(strings.Join(parts, "; "))
}

// scrub removes a password from an error's text, should a library ever
// echo it (a BMC's error body, a command line).
func scrub(err error, password string) error {
	if err == nil || len(password) < 3 || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "******"))
}

func (b *bmclibBMC) PowerState(ctx context.Context) (bool, error) {
	state, err := b.client.GetPowerState(ctx)
	if err != nil {
		return false, b.explain(ctx, err)
	}
	// ipmitool: "Chassis Power is on"; Redfish: On, Off, PoweringOn,
	// PoweringOff. A server powering off is still on until it is off.
	s := strings.ToLower(strings.TrimSpace(state))
	switch {
	case strings.HasSuffix(s, "power is on"), s == "on", s == "poweringoff":
		return true, nil
	case strings.HasSuffix(s, "power is off"), s == "off", s == "poweringon":
		return false, nil
	}
	return false, fmt.Errorf("power state %q: not understood", state)
}

func (b *bmclibBMC) SetPower(ctx context.Context, action string) error {
	// bmclib's answer is not trusted either way: the Redfish provider
	// reports a graceful shutdown it sent as not ok. Verify reads back.
	if _, err := b.client.SetPowerState(ctx, action); err != nil {
		return b.explain(ctx, err)
	}
	return nil
}

func (b *bmclibBMC) BootDevice(ctx context.Context) (string, bool, error) {
	if b.ipmitool != nil {
		return b.ipmitool.bootDevice(ctx)
	}
	o, err := b.client.GetBootDeviceOverride(ctx)
	if err != nil {
		return "", false, b.explain(ctx, err)
	}
	return string(o.Device), o.IsPersistent, nil
}

func (b *bmclibBMC) SetBootDevice(ctx context.Context, dev string, persistent bool) error {
	if _, err := b.client.SetBootDevice(ctx, dev, persistent, false); err != nil {
		return b.explain(ctx, err)
	}
	return nil
}

func (b *bmclibBMC) Close(ctx context.Context) error {
	return scrub(b.client.Close(ctx), b.c.Password)
}
