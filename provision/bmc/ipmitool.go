package bmc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// ipmitool runs the calls bmclib's ipmitool provider does not offer:
// reading the boot override (boot parameter 5) and telling a refused
// login from a silent BMC. It runs ipmitool as bmclib does, the password
// in the environment (-E), never on the command line.
type ipmitool struct {
	path string
	c    Credentials
}

func newIPMITool(c Credentials, path string) (*ipmitool, error) {
	if path == "" {
		p, err := exec.LookPath("ipmitool")
		if err != nil {
			return nil, fmt.Errorf("find ipmitool: %w", err)
		}
		path = p
	}
	return &ipmitool{path: path, c: c}, nil
}

// run runs ipmitool with 2 s per message and one retry: a BMC that does
// not answer is known in about 4 s (ipmitool backs off between retries:
// with more it takes ten and more).
func (t *ipmitool) run(ctx context.Context, args ...string) (string, error) {
	base := []string{"-I", "lanplus", "-C", ipmiCipherSuite, "-H", t.c.Address, "-p", strconv.Itoa(t.c.Port),
		"-U", t.c.Username, "-E", "-N", "2", "-R", "1"}
	cmd := exec.CommandContext(ctx, t.path, append(base, args...)...)
	cmd.Env = []string{"IPMITOOL_PASSWORD=" + t.c.Password}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), scrub(fmt.Errorf("ipmitool %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out))), t.c.Password)
	}
	return string(out), nil
}

// bootData matches ipmitool's "Boot parameter data: 0004000000".
var bootData = regexp.MustCompile(`Boot parameter data: ([0-9a-fA-F]+)`)

// bootDevice reads boot parameter 5 (boot flags). Its first byte says
// whether the override is valid (bit 7) and persistent (bit 6); bits 5-2
// of the second select the device. A BMC that keeps only the device
// (ipmi_sim) leaves the valid bit clear: then persistence is unknown and
// the device is reported with errPersistenceUnknown.
func (t *ipmitool) bootDevice(ctx context.Context) (string, bool, error) {
	out, err := t.run(ctx, "chassis", "bootparam", "get", "5")
	if err != nil {
		return "", false, err
	}
	m := bootData.FindStringSubmatch(out)
	if m == nil {
		return "", false, fmt.Errorf("read boot parameter 5: no data in %q", strings.TrimSpace(out))
	}
	data, err := hex.DecodeString(m[1])
	if err != nil || len(data) < 2 {
		return "", false, fmt.Errorf("read boot parameter 5: data %q: not understood", m[1])
	}
	valid, persistent := data[0]&0x80 != 0, data[0]&0x40 != 0
	dev := map[byte]string{0x0: BootNone, 0x1: BootPXE, 0x2: BootDisk, 0x3: "safe", 0x4: "diag", 0x5: "cdrom", 0x6: "bios", 0xf: "floppy"}[data[1]>>2&0xf]
	if dev == "" {
		dev = fmt.Sprintf("selector-%#x", data[1]>>2&0xf)
	}
	if !valid {
		return dev, false, errPersistenceUnknown
	}
	return dev, persistent, nil
}

// probe sets up one session (reading the power state), failing fast:
// bmclib's ipmitool waits 5 s per message, retried, so a BMC that does
// not answer would cost a minute before saying so. Its error says why no
// session could be set up: a refused user or password (ErrAuth), or no
// answer.
func (t *ipmitool) probe(ctx context.Context) error {
	out, err := t.run(ctx, "-v", "chassis", "power", "status")
	if err == nil {
		return nil
	}
	switch {
	case strings.Contains(out, "RAKP 2 HMAC is invalid"), strings.Contains(out, "unauthorized name"),
		strings.Contains(out, "RAKP 2 message indicates an error"):
		return ErrAuth
	case ctx.Err() != nil:
		return fmt.Errorf("no answer from the BMC: %w", ctx.Err())
	case strings.Contains(out, "Get Auth Capabilities error"), strings.Contains(out, "No response"):
		return errors.New("no answer from the BMC")
	}
	return err
}
