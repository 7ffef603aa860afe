package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/telemetry/history"
	"github.com/rackstack/rackstack/node/conductor"
	"github.com/rackstack/rackstack/provision"
	"github.com/rackstack/rackstack/provision/dhcp"
	"github.com/rackstack/rackstack/provision/ipxe"
)

var errHelp = errors.New("help")

// options are rackd's settings, from flags or RACKD_* variables.
type options struct {
	Name              string
	DataDir           string
	Listen            string
	RaftListen        string
	S3Listen          string
	MetricsListen     string
	S3Region          string
	Advertise         string
	PublicURL         string
	Bootstrap         bool
	JoinURL           string
	JoinToken         string
	AdminPasswordFile string
	MaxVoters         int
	LogLevel          string
	TokenTTL          time.Duration
	Yes               bool
	Purge             bool
	Dev               bool // rackd dev
	// storage
	Disks      []string
	EC         string // "K+M", or "" to choose by disk count
	HealAfter  time.Duration
	ScrubEvery time.Duration
	// networking
	VLANRange        string // "MIN-MAX"
	VLANMin, VLANMax int
	// compute
	Compute  string // auto, on, off
	Accel    string // auto, kvm, tcg
	VMRunDir string
	// CPUAllocationRatio is the scheduler's vCPU overcommit (Nova's
	// cpu_allocation_ratio).
	CPUAllocationRatio float64
	// dataplane
	Dataplane      string // auto, on, off
	Uplink         string
	DataplaneNetns string
	// Public is rackd dev's external network "public": its subnet, whose
	// first address a host interface holds; "off": none.
	Public string
	BPFDir string
	// bare-metal provisioning (off without an interface)
	ProvisionInterface        string
	FakeHardware              string     // on, off: conduct fake-hardware nodes without provisioning services
	ProvisionDHCP             string     // proxy, full
	ProvisionRange            string     // "START-END", full DHCP only
	ProvisionLeases           dhcp.Range // ProvisionRange, parsed
	ProvisionRamdisk          string
	InspectAddPorts           string
	ProvisionHTTPPort         int
	ProvisionCallbackTimeout  time.Duration
	ProvisionHeartbeatTimeout time.Duration
	// test and benchmark tuning of failure detection
	HeartbeatInterval time.Duration
	DownAfter         time.Duration
	DeadVoterAfter    time.Duration
	// telemetry
	HistoryStep time.Duration
	// ImportFilter is what the image web-download import may fetch
	// (Glance's [import_filtering_opts]; image.go reads it).
	ImportFilter importFilterOpts
	// Swift container sync (csync.go)
	ContainerSyncRealms   string
	ContainerSyncCurrent  string
	ContainerSyncInterval time.Duration
}

func parseFlags(mode string, args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs, disks := o.flags(mode, getenv, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if err := o.check(mode, disks, fs.Args()); err != nil {
		return nil, err
	}
	return o, nil
}

// flagSet is mode's flags, for its help.
func flagSet(mode string, getenv func(string) string, w io.Writer) *flag.FlagSet {
	fs, _ := (&options{}).flags(mode, getenv, w)
	return fs
}

// flags declares mode's flags over o, with RACKD_* defaults; disks is
// RACKD_DISK, used when no --disk is given.
func (o *options) flags(mode string, getenv func(string) string, stderr io.Writer) (fs *flag.FlagSet, disks string) {
	fs = flag.NewFlagSet("rackd "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv("RACKD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); v != "" {
			return v
		}
		return def
	}
	str := func(p *string, name, def, help string) {
		if takesFlag(mode, name) {
			fs.StringVar(p, name, env(name, def), help)
		}
	}
	defData, defListen, defName := "", "127.0.0.1:8770", ""
	if mode == "dev" {
		defData, defName = ".rackstack", "dev"
	}
	str(&o.Name, "name", defName, "node name, unique in the cluster (default: hostname)")
	str(&o.DataDir, "data-dir", defData, "where this node keeps its state")
	str(&o.Listen, "listen", defListen, "HTTP API listen address")
	str(&o.RaftListen, "raft-listen", "", "peer (Raft + internal RPC, mTLS) listen address (default: API port + 1)")
	str(&o.S3Listen, "s3-listen", "", "S3 API listen address, path-style (default: API port + 2; \"off\" to disable)")
	str(&o.S3Region, "s3-region", "us-east-1", "the S3 region (location) clients sign for; requests signed for another are refused")
	str(&o.MetricsListen, "metrics-listen", "", "serve /metrics without authentication on this address too (on the API port it needs an admin token)")
	str(&o.Advertise, "advertise", "", "host other nodes and clients reach this node at (default: the --listen host)")
	str(&o.PublicURL, "public-url", "", "base URL put in the service catalog (default: the URL the client used)")
	str(&o.JoinURL, "join", "", "API URL of a cluster member to join")
	str(&o.JoinToken, "join-token", "", "join token from 'rackctl cluster join-token create'")
	str(&o.AdminPasswordFile, "admin-password-file", "", "file holding the admin password at bootstrap (else one is generated)")
	str(&o.LogLevel, "log-level", "info", "debug, info, warn or error")
	boolVar := func(p *bool, name, help string) {
		if !takesFlag(mode, name) {
			return
		}
		v, _ := strconv.ParseBool(env(name, "false"))
		fs.BoolVar(p, name, v, help)
	}
	boolVar(&o.Bootstrap, "bootstrap", "form a new cluster with this node as its first member")
	boolVar(&o.Yes, "yes-i-know-this-discards-other-members", "recover: skip the confirmation prompt")
	boolVar(&o.Purge, "purge", "remove this dev cloud for good (rackd stopped): its guests and taps, BPF pins, run dir and data dir")
	intVar := func(p *int, name string, def int, help string) {
		if !takesFlag(mode, name) {
			return
		}
		v, err := strconv.Atoi(env(name, strconv.Itoa(def)))
		if err != nil {
			v = def
		}
		fs.IntVar(p, name, v, help)
	}
	intVar(&o.MaxVoters, "max-voters", 3, "Raft voters to keep (3 or 5); other nodes are non-voters")
	durVar := func(p *time.Duration, name string, def time.Duration, help string) {
		if !takesFlag(mode, name) {
			return
		}
		v, err := time.ParseDuration(env(name, def.String()))
		if err != nil {
			v = def
		}
		fs.DurationVar(p, name, v, help)
	}
	disks = env("disk", "")
	fsFunc := func(name, help string, set func(string) error) {
		if takesFlag(mode, name) {
			fs.Func(name, help, set)
		}
	}
	fsFunc("disk", "a directory this node stores object shards in (repeatable; RACKD_DISK takes a comma-separated list)", func(v string) error {
		if v == "" {
			return errors.New("empty disk path")
		}
		o.Disks = append(o.Disks, v)
		return nil
	})
	str(&o.EC, "ec", "", "erasure coding K+M for new objects, e.g. 4+2 (default: chosen from the number of disks)")
	durVar(&o.HealAfter, "heal-after", 5*time.Minute, "a node down this long has its shards rebuilt on other nodes")
	durVar(&o.ScrubEvery, "scrub-every", 24*time.Hour, "how long one pass of the scrubber over all stored data takes at least")
	str(&o.Compute, "compute", "auto", "run servers on this node: on, off, or auto (on where qemu-system-x86_64 is installed)")
	str(&o.Accel, "accel", "auto", "guest accelerator: kvm, tcg, or auto (KVM where the CPU has vmx/svm and /dev/kvm works)")
	floatVar := func(p *float64, name string, def float64, help string) {
		if !takesFlag(mode, name) {
			return
		}
		v, err := strconv.ParseFloat(env(name, strconv.FormatFloat(def, 'g', -1, 64)), 64)
		if err != nil {
			v = def
		}
		fs.Float64Var(p, name, v, help)
	}
	floatVar(&o.CPUAllocationRatio, "cpu-allocation-ratio", 4, "virtual CPUs the scheduler places per physical CPU of a node (Nova's cpu_allocation_ratio)")
	str(&o.VMRunDir, "vm-run-dir", "", "where QEMU's sockets and pid files live (default /run/rackstack/<hash of the data dir>)")
	str(&o.Dataplane, "dataplane", "auto", "tenant dataplane: on, off, or auto (on where BPF programs load)")
	str(&o.Uplink, "uplink", "", "interface to the other nodes that carries tenant VLANs (empty: ports talk only on this node)")
	str(&o.DataplaneNetns, "dataplane-netns", "", "network namespace (path, e.g. /run/netns/n1) holding port devices and the uplink (default: rackd's own)")
	defPublic := "off"
	if mode == "dev" {
		defPublic = "172.24.4.0/24"
	}
	str(&o.Public, "public", defPublic, "the flat external network \"public\" the cloud starts with: its subnet, whose first address the interface "+publicHostDev+" (in the dataplane's namespace) gets (\"off\": none)")
	str(&o.BPFDir, "bpf-dir", "", "bpffs directory of this node's pinned maps and links (default /sys/fs/bpf/rackstack/NAME-<hash of the data dir>)")
	str(&o.VLANRange, "vlan-range", "100-3999", "VLAN ids given to tenant networks, MIN-MAX within 1-4094")
	str(&o.ProvisionInterface, "provision-interface", "", "serve bare-metal provisioning (DHCP, TFTP, iPXE HTTP) on this interface, and conduct bare-metal nodes from this node")
	defFake := "off"
	if mode == "dev" {
		defFake = "on"
	}
	str(&o.FakeHardware, "fake-hardware", defFake, "without --provision-interface, conduct Ironic's fake-hardware test nodes from this node (on, off): they need no provisioning network, so a dev cloud's bare-metal API can be driven end to end; with it they are conducted anyway")
	str(&o.ProvisionDHCP, "provision-dhcp", provision.DHCPProxy, "provisioning DHCP: proxy (beside the site's DHCP server, boot options only) or full (an isolated network; needs --provision-range; also advertises no IPv6 router there, which ends iPXE's wait for one)")
	str(&o.ProvisionRange, "provision-range", "", "addresses full provisioning DHCP leases, START-END (only with --provision-dhcp full)")
	str(&o.ProvisionRamdisk, "provision-ramdisk", "", "directory holding the agent ramdisk's vmlinuz and initramfs.zst (make ramdisk writes build/ramdisk)")
	str(&o.InspectAddPorts, "inspect-add-ports", conductor.AddPortsPXE, "NICs an inspection gives an Ironic port when they have none: pxe (the one it booted from), active (with an IPv4 address), all, or disabled")
	intVar(&o.ProvisionHTTPPort, "provision-http-port", provision.DefaultHTTPPort, "port of the provisioning HTTP server (boot scripts, ramdisk, agent) on the provisioning interface's address")
	durVar(&o.ProvisionCallbackTimeout, "provision-callback-timeout", 10*time.Minute, "a machine booted into the agent ramdisk that has not called back in this long fails its operation")
	durVar(&o.ProvisionHeartbeatTimeout, "provision-heartbeat-timeout", 90*time.Second, "an agent silent this long after it called fails its operation")
	durVar(&o.TokenTTL, "token-ttl", time.Hour, "lifetime of identity tokens")
	durVar(&o.HeartbeatInterval, "heartbeat-interval", 2*time.Second, "how often a node heartbeats")
	durVar(&o.DownAfter, "down-after", 10*time.Second, "a node without heartbeat this long is down")
	durVar(&o.DeadVoterAfter, "dead-voter-after", 30*time.Second, "a voter down this long is replaced by a healthy non-voter")
	importFilterFlags(str, &o.ImportFilter)
	containerSyncFlags(mode, str, durVar, o)
	durVar(&o.HistoryStep, "history-step", history.DefaultStep, "how often the in-memory metric history (GET /rackstack/v1/history) takes a point; it keeps 720 of them")
	return fs, disks
}

// check validates the parsed flags of mode and fills in what follows from
// them.
func (o *options) check(mode, disks string, rest []string) error {
	if len(o.Disks) == 0 && disks != "" {
		o.Disks = strings.Split(disks, ",")
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected argument %q", rest[0])
	}
	if o.DataDir == "" {
		return errors.New("--data-dir is required")
	}
	if mode == "recover" {
		return o.listenAddrs()
	}
	if _, _, err := o.coding(); err != nil {
		return err
	}
	lo, hi, err := parseVLANRange(o.VLANRange)
	if err != nil {
		return err
	}
	o.VLANMin, o.VLANMax = lo, hi
	for name, v := range map[string]string{"dataplane": o.Dataplane, "compute": o.Compute} {
		switch v {
		case "auto", "on", "off":
		default:
			return fmt.Errorf("--%s %q: want on, off or auto", name, v)
		}
	}
	switch o.Accel {
	case "auto", "kvm", "tcg":
	default:
		return fmt.Errorf("--accel %q: want kvm, tcg or auto", o.Accel)
	}
	if !(o.CPUAllocationRatio > 0) {
		return fmt.Errorf("--cpu-allocation-ratio %v: want a number above 0", o.CPUAllocationRatio)
	}
	if o.hasPublic() {
		if _, err := publicSubnet(o.Public); err != nil {
			return err
		}
	}
	if mode == "dev" {
		o.Bootstrap, o.Dev = true, true
		if len(o.Disks) == 0 {
			// Six directories give the default 4+2 coding on one node.
			for i := 0; i < 6; i++ {
				o.Disks = append(o.Disks, filepath.Join(o.DataDir, "disks", "d"+strconv.Itoa(i)))
			}
		}
		if k, m, _ := o.coding(); k+m > len(o.Disks) {
			return fmt.Errorf("--ec %s needs %d disks on this one node, and it has %d (--disk): choose K+M ≤ %d", o.EC, k+m, len(o.Disks), len(o.Disks))
		}
	}
	if err := o.listenAddrs(); err != nil {
		return err
	}
	if err := o.checkProvision(); err != nil {
		return err
	}
	if _, err := o.imageImportFilter(); err != nil {
		return err
	}
	if o.Bootstrap && o.JoinURL != "" {
		return errors.New("--bootstrap and --join exclude each other")
	}
	if o.JoinURL != "" && o.JoinToken == "" {
		return errors.New("--join needs --join-token")
	}
	if o.MaxVoters != 3 && o.MaxVoters != 5 && o.MaxVoters != 1 {
		return fmt.Errorf("--max-voters must be 1, 3 or 5, got %d", o.MaxVoters)
	}
	return nil
}

// listenAddrs checks --listen and derives the peer and S3 addresses and the
// advertised host from it where they are not set.
func (o *options) listenAddrs() error {
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", o.Listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("--listen %q: port is not a number", o.Listen)
	}
	if o.RaftListen == "" {
		o.RaftListen = net.JoinHostPort(host, strconv.Itoa(p+1))
	}
	if o.S3Listen == "" {
		o.S3Listen = net.JoinHostPort(host, strconv.Itoa(p+2))
	}
	if o.Advertise == "" {
		o.Advertise = host
		if host == "" || host == "0.0.0.0" || host == "::" {
			o.Advertise = "127.0.0.1"
		}
	}
	return nil
}

// takesFlag reports whether mode has the flag: recover needs only where
// the node's state is and how it is reached; joining is for serve alone
// (dev always forms its own cloud).
func takesFlag(mode, name string) bool {
	switch name {
	case "yes-i-know-this-discards-other-members":
		return mode == "recover"
	case "name", "data-dir", "listen", "raft-listen", "advertise", "log-level":
		return true
	case "bootstrap", "join", "join-token":
		return mode == "serve"
	case "purge":
		return mode == "dev"
	}
	return mode != "recover"
}

// coding parses --ec; 0, 0 means "by disk count".
func (o *options) coding() (k, m int, err error) {
	if o.EC == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(o.EC, "+")
	k, err1 := strconv.Atoi(a)
	m, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || k < 1 || m < 0 || k+m > 32 {
		return 0, 0, fmt.Errorf("--ec %q: want K+M such as 4+2 (K ≥ 1, M ≥ 0, K+M ≤ 32)", o.EC)
	}
	return k, m, nil
}

// parseVLANRange parses --vlan-range MIN-MAX (1 ≤ MIN ≤ MAX ≤ 4094; 0 and
// 4095 are reserved by 802.1Q).
func parseVLANRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 4094 || lo > hi {
		return 0, 0, fmt.Errorf("--vlan-range %q: want MIN-MAX such as 100-3999 (1 ≤ MIN ≤ MAX ≤ 4094)", s)
	}
	return lo, hi, nil
}

// raftAdvertise is host:port of the peer port as others reach it.
func (o *options) raftAdvertise() string {
	_, port, _ := net.SplitHostPort(o.RaftListen)
	return net.JoinHostPort(o.Advertise, port)
}

// s3URL is this node's S3 endpoint as clients reach it ("" when off).
func (o *options) s3URL() string {
	if o.S3Listen == "off" {
		return ""
	}
	_, port, _ := net.SplitHostPort(o.S3Listen)
	return "http://" + net.JoinHostPort(o.Advertise, port)
}

// apiURL is this node's API as others reach it.
func (o *options) apiURL() string {
	_, port, _ := net.SplitHostPort(o.Listen)
	return "http://" + net.JoinHostPort(o.Advertise, port)
}

// checkProvision validates the provisioning flags: all of them need an
// interface, full DHCP needs a range and proxy refuses one, and the
// ramdisk must be built before rackd serves it.
func (o *options) checkProvision() error {
	switch o.ProvisionDHCP {
	case provision.DHCPProxy, provision.DHCPFull:
	default:
		return fmt.Errorf("--provision-dhcp %q: want proxy or full", o.ProvisionDHCP)
	}
	if o.FakeHardware != "on" && o.FakeHardware != "off" {
		return fmt.Errorf("--fake-hardware %q: want on or off", o.FakeHardware)
	}
	if o.ProvisionInterface == "" {
		for flag, set := range map[string]bool{
			"--provision-dhcp full": o.ProvisionDHCP == provision.DHCPFull,
			"--provision-range":     o.ProvisionRange != "",
			"--provision-ramdisk":   o.ProvisionRamdisk != "",
		} {
			if set {
				return fmt.Errorf("%s needs --provision-interface", flag)
			}
		}
		return nil
	}
	switch {
	case o.ProvisionDHCP == provision.DHCPFull && o.ProvisionRange == "":
		return errors.New("--provision-dhcp full needs --provision-range START-END: the addresses it may lease")
	case o.ProvisionDHCP == provision.DHCPProxy && o.ProvisionRange != "":
		return errors.New("--provision-range is only for --provision-dhcp full: proxy DHCP leases no addresses")
	case o.ProvisionRange != "":
		r, err := dhcp.ParseRange(o.ProvisionRange)
		if err != nil {
			return fmt.Errorf("--provision-range: %w", err)
		}
		o.ProvisionLeases = r
	}
	if o.ProvisionHTTPPort < 1 || o.ProvisionHTTPPort > 65535 {
		return fmt.Errorf("--provision-http-port %d: want 1-65535", o.ProvisionHTTPPort)
	}
	if o.ProvisionCallbackTimeout <= 0 || o.ProvisionHeartbeatTimeout <= 0 {
		return errors.New("--provision-callback-timeout and --provision-heartbeat-timeout must be positive")
	}
	switch o.InspectAddPorts {
	case conductor.AddPortsPXE, conductor.AddPortsActive, conductor.AddPortsAll, conductor.AddPortsDisabled:
	default:
		return fmt.Errorf("--inspect-add-ports %q: want pxe, active, all or disabled", o.InspectAddPorts)
	}
	if o.ProvisionRamdisk == "" {
		return errors.New("--provision-interface needs --provision-ramdisk DIR holding vmlinuz and initramfs.zst: run make ramdisk (it writes build/ramdisk)")
	}
	if err := ipxe.CheckRamdisk(o.ProvisionRamdisk); err != nil {
		return fmt.Errorf("--provision-ramdisk: %w", err)
	}
	return nil
}
