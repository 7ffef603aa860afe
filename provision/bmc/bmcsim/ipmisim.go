package bmcsim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// IPMISim configures an ipmi_sim (openipmi) BMC for one machine. It
// listens on 127.0.0.1 only.
type IPMISim struct {
	// Dir receives lan.conf, bmc.emu, the state directory and the log;
	// the machine's own directory is a fine place.
	Dir      string
	Port     int    // UDP port on 127.0.0.1
	User     string // the admin user; IPMI limits names to 16 bytes
	Password string // IPMI 2.0 limits passwords to 20 bytes
	// Chassis is the chassis-control command without its arguments, e.g.
	// ["/path/rack-bmcsim", "chassis", MACHINEDIR]. ipmi_sim splits it on
	// blanks, so no element may contain one.
	Chassis []string
	// Binary is ipmi_sim; "" finds it on PATH.
	Binary string
}

// Files IPMISim.Write makes in Dir.
const (
	IPMIConfFile = "lan.conf"
	IPMIEmuFile  = "bmc.emu"
	IPMILogFile  = "ipmi_sim.log"
)

// Write writes lan.conf and bmc.emu for s into s.Dir.
func (s IPMISim) Write() error {
	for _, f := range []struct{ name, v string }{{"user", s.User}, {"password", s.Password}} {
		if f.v == "" || strings.ContainsAny(f.v, "\" \t\n\\") {
			return fmt.Errorf("write ipmi_sim config: %s %q: must be non-empty, without blanks, quotes or backslashes", f.name, f.v)
		}
	}
	if len(s.User) > 16 || len(s.Password) > 20 {
		return errors.New("write ipmi_sim config: IPMI allows users of at most 16 bytes and passwords of at most 20")
	}
	if s.Port < 1 || s.Port > 65535 {
		return fmt.Errorf("write ipmi_sim config: port %d: want 1-65535", s.Port)
	}
	if len(s.Chassis) == 0 {
		return errors.New("write ipmi_sim config: no chassis-control command")
	}
	for _, a := range s.Chassis {
		if strings.ContainsAny(a, " \t\n\"") {
			return fmt.Errorf("write ipmi_sim config: chassis-control argument %q has a blank or quote", a)
		}
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, "state"), 0o755); err != nil {
		return fmt.Errorf("write ipmi_sim config: %w", err)
	}
	// ipmi_sim calls `<chassis_control> get power` and the like: the MC
	// address is given here, as the program's first argument after the
	// command, so the program knows which MC is meant.
	lan := fmt.Sprintf(`# written by rackstack bmcsim
name "rackbmc"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s 0x20"
user 2 true "%s" "%s" admin 10 none md2 md5 straight
`, s.Port, strings.Join(s.Chassis, " "), s.User, s.Password)
	emu := `mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
`
	if err := os.WriteFile(filepath.Join(s.Dir, IPMIConfFile), []byte(lan), 0o600); err != nil {
		return fmt.Errorf("write ipmi_sim config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, IPMIEmuFile), []byte(emu), 0o644); err != nil {
		return fmt.Errorf("write ipmi_sim config: %w", err)
	}
	return nil
}

// Process is a simulator process this package started.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// PID is the process's id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Stop kills the process (by its PID, nothing else) and waits for it.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop ipmi_sim %d: %w", p.PID(), err)
	}
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// Start writes the configuration and starts ipmi_sim, returning once it
// answers on its port (the context bounds the wait). The caller stops it
// with Process.Stop; the machine's QEMU is the machine's (Machine.PowerOff).
func (s IPMISim) Start(ctx context.Context) (*Process, error) {
	if err := s.Write(); err != nil {
		return nil, err
	}
	bin := s.Binary
	if bin == "" {
		p, err := exec.LookPath("ipmi_sim")
		if err != nil {
			return nil, fmt.Errorf("start ipmi_sim: %w", err)
		}
		bin = p
	}
	log, err := os.OpenFile(filepath.Join(s.Dir, IPMILogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start ipmi_sim: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(bin, "-c", filepath.Join(s.Dir, IPMIConfFile), "-f", filepath.Join(s.Dir, IPMIEmuFile),
		"-s", filepath.Join(s.Dir, "state"), "-n")
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ipmi_sim: %w", err)
	}
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	if err := waitUDP(ctx, p, s.Port); err != nil {
		_ = p.Stop()
		logPath := filepath.Join(s.Dir, IPMILogFile)
		return nil, fmt.Errorf("start ipmi_sim: %w (%s ends: %q)", err, logPath, logTail(logPath, 512))
	}
	return p, nil
}

// waitUDP waits until ipmi_sim holds its UDP port. It looks in the
// kernel's socket table rather than binding the port itself: a probe that
// binds holds the port for a moment, and ipmi_sim starting in that moment
// fails with EADDRINUSE and exits.
func waitUDP(ctx context.Context, p *Process, port int) error {
	for {
		bound, err := udpBound(port)
		if err != nil {
			return err
		}
		if bound {
			return nil
		}
		select {
		case <-p.done:
			return errors.New("ipmi_sim exited")
		case <-ctx.Done():
			return fmt.Errorf("ipmi_sim does not listen on 127.0.0.1:%d: %w", port, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// udpBound reports whether a UDP socket in this network namespace is bound
// to port, from /proc/net/udp and /proc/net/udp6.
func udpBound(port int) (bool, error) {
	suffix := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(table)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("read socket table: %w", err)
		}
		lines := strings.Split(string(b), "\n")
		for _, line := range lines[1:] {
			f := strings.Fields(line)
			if len(f) > 1 && strings.HasSuffix(f[1], suffix) {
				return true, nil
			}
		}
	}
	return false, nil
}

// logTail is the last n bytes of the file at path, for an error message.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
