package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// provSegment is a provisioning network the provision suite builds: a
// bridge in the root namespace holding the host's address (rackd's
// provisioning address, or the bare PXE floor's file server), the site's
// DHCP server (busybox udhcpd) in a namespace of its own behind a veth,
// and one tap per machine. Names carry the suite's PID, so a run never
// meets another's, and close removes everything.
type provSegment struct {
	bridge string // rbp<pid>, or rbp<pid>f for the floor's
	net    string // "10.215.N" ("10.216.N" for the floor's): the /24's first three octets
	siteNS string // rb-<pid>-site or rb-<pid>-floor: removeStale knows the pattern
	dir    string
	log    io.Writer
	taps   []string
	dhcp   *exec.Cmd
	dhcpOK chan struct{} // closed when the DHCP server exited
}

func (s *provSegment) hostIP() string { return s.net + ".1" }

// The suite's two segments: rackd's, and the bare PXE floor's, which
// no rackd listens on, so both cases run side by side in one run.
const (
	segRackd = iota
	segFloor
)

func newProvSegment(ctx context.Context, dir string, log io.Writer, kind int) (s *provSegment, err error) {
	pid := os.Getpid()
	s = &provSegment{
		bridge: fmt.Sprintf("rbp%d", pid),
		net:    fmt.Sprintf("10.215.%d", pid%200+20),
		siteNS: fmt.Sprintf("rb-%d-site", pid),
		dir:    filepath.Join(dir, "segment"),
		log:    log,
	}
	if kind == segFloor {
		s.bridge += "f"
		s.net = fmt.Sprintf("10.216.%d", pid%200+20)
		s.siteNS = fmt.Sprintf("rb-%d-floor", pid)
		s.dir += "-floor"
	}
	defer func() {
		if err != nil {
			s.close()
			s = nil
		}
	}()
	steps := [][]string{
		{"link", "add", s.bridge, "type", "bridge"},
		{"addr", "add", s.hostIP() + "/24", "dev", s.bridge},
		{"link", "set", s.bridge, "up"},
		{"netns", "add", s.siteNS},
		{"-n", s.siteNS, "link", "set", "lo", "up"},
		{"link", "add", s.bridge + "s", "type", "veth", "peer", "name", "site0", "netns", s.siteNS},
		{"link", "set", s.bridge + "s", "master", s.bridge, "up"},
		{"-n", s.siteNS, "addr", "add", s.net + ".2/24", "dev", "site0"},
		{"-n", s.siteNS, "link", "set", "site0", "up"},
	}
	for _, st := range steps {
		if err := runCmd(ctx, nil, "ip", st...); err != nil {
			return s, err
		}
	}
	return s, nil
}

// tap makes a tap on the bridge for machine seq's NIC.
func (s *provSegment) tap(ctx context.Context, seq int) (string, error) {
	name := fmt.Sprintf("%st%d", s.bridge, seq)
	if err := runCmd(ctx, nil, "ip", "tuntap", "add", "dev", name, "mode", "tap"); err != nil {
		return "", err
	}
	s.taps = append(s.taps, name)
	if err := runCmd(ctx, nil, "ip", "link", "set", name, "master", s.bridge, "up"); err != nil {
		return "", err
	}
	return name, nil
}

// leaseRange is what the site's DHCP server leases (udhcpdConf), for
// rackd's full DHCP when it is the segment's server instead.
func (s *provSegment) leaseRange() string { return s.net + ".10-" + s.net + ".250" }

// udhcpdConf is the site server's configuration: addresses .10–.250 of
// the segment and, for the bare PXE floor, a boot file (an iPXE script's
// URL: QEMU's NIC ROM is iPXE and fetches it over HTTP).
func udhcpdConf(net, dir, bootFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "start %[1]s.10\nend %[1]s.250\ninterface site0\nlease_file %[2]s/leases\noption subnet 255.255.255.0\noption lease 3600\n", net, dir)
	if bootFile != "" {
		// No PXE vendor class (option 60): with it iPXE asks this server
		// for its PXE options on port 4011, where udhcpd does not answer,
		// and gives up after 4 s; without it iPXE waits about 3 s for a
		// ProxyDHCP offer before it requests the address (tcpdump on the
		// floor's bridge). Rackd answers both ways at once, so the floor
		// keeps a wait of its own DHCP server's, the same for one machine
		// or three.
		fmt.Fprintf(&b, "boot_file %s\n", bootFile)
	}
	return b.String()
}

// udhcpdArpMS is the site server's wait for an answer to the ARP probe of
// an address before it offers it. udhcpd's default, 2 s, is spent on every
// DISCOVER of a new client, one after the other (it serves one request at
// a time): three machines booting at once waited 6 s for their leases
// against 2 s for one, with iPXE polling the NIC without halting all the
// while (tcpdump on the floor's bridge), so the floor's own three-to-one
// ratio carried a wait of its DHCP server, not the machines' CPU. The
// segment is a bridge of this suite's taps: an address in use answers in
// well under this.
const udhcpdArpMS = 50

// udhcpdArgv runs busybox udhcpd in the foreground with conf.
func udhcpdArgv(conf string) []string {
	return []string{"busybox", "udhcpd", "-f", "-a", strconv.Itoa(udhcpdArpMS), conf}
}

// startSiteDHCP runs udhcpd in the site namespace; bootFile "" hands out
// addresses only.
func (s *provSegment) startSiteDHCP(ctx context.Context, bootFile string) error {
	if s.dhcp != nil {
		return errors.New("start site DHCP: already running")
	}
	dir := filepath.Join(s.dir, "site-dhcp")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := filepath.Join(dir, "udhcpd.conf")
	if err := os.WriteFile(conf, []byte(udhcpdConf(s.net, dir, bootFile)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "leases"), nil, 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "udhcpd.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", s.siteNS}, udhcpdArgv(conf)...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start site DHCP: %w", err)
	}
	s.dhcp, s.dhcpOK = cmd, make(chan struct{})
	done := s.dhcpOK
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	// It is up once it holds its socket; a bad configuration exits.
	select {
	case <-done:
		raw, _ := os.ReadFile(filepath.Join(dir, "udhcpd.log"))
		s.dhcp = nil
		return fmt.Errorf("site DHCP server exited: %s", strings.TrimSpace(string(raw)))
	case <-time.After(300 * time.Millisecond):
		return nil
	}
}

// stopSiteDHCP kills the udhcpd it started, by its process group (ip
// netns exec execs udhcpd in the same process).
func (s *provSegment) stopSiteDHCP() error {
	if s.dhcp == nil {
		return nil
	}
	syscall.Kill(-s.dhcp.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.dhcpOK:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("stop site DHCP: pid %d still running after 10s", s.dhcp.Process.Pid)
	}
	s.dhcp = nil
	return nil
}

// close removes the segment: the DHCP server, taps, the namespace (and
// the veth with it), the bridge.
func (s *provSegment) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.stopSiteDHCP(); err != nil {
		fmt.Fprintf(s.log, "provision: %v\n", err)
	}
	for _, t := range s.taps {
		if _, err := os.Stat("/sys/class/net/" + t); err == nil {
			if err := runCmd(ctx, nil, "ip", "link", "delete", t); err != nil {
				fmt.Fprintf(s.log, "provision: %v\n", err)
			}
		}
	}
	if _, err := os.Stat("/run/netns/" + s.siteNS); err == nil {
		if err := runCmd(ctx, nil, "ip", "netns", "delete", s.siteNS); err != nil {
			fmt.Fprintf(s.log, "provision: %v\n", err)
		}
	}
	if _, err := os.Stat("/sys/class/net/" + s.bridge); err == nil {
		if err := runCmd(ctx, nil, "ip", "link", "delete", s.bridge); err != nil {
			fmt.Fprintf(s.log, "provision: %v\n", err)
		}
	}
}

// removeStaleSegments deletes what an earlier, killed run left: its
// namespaces (rb-<pid>-…), and bridges and taps named rbp<pid>… whose
// process is gone.
func removeStaleSegments(log io.Writer) {
	removeStale(log)
	entries, _ := os.ReadDir("/sys/class/net")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "rbp")
		if !ok {
			continue
		}
		pid := rest
		if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
			pid = rest[:i] // rbp<pid>t<seq>, rbp<pid>s, rbp<pid>f…
		}
		if pidGone(pid) {
			fmt.Fprintf(log, "provision: deleting link %s of an earlier run\n", e.Name())
			runCmd(context.Background(), nil, "ip", "link", "delete", e.Name())
		}
	}
}

// pidGone says whether pid names no running process (and is not ours).
func pidGone(pid string) bool {
	n, err := strconv.Atoi(pid)
	return err == nil && n > 0 && n != os.Getpid() && errors.Is(syscall.Kill(n, 0), syscall.ESRCH)
}
