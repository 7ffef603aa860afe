package qemu

import (
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/node/hypervisor"
)

// runPaths is the layout of a VM's run directory, <RunDir>/<id>/.
type runPaths struct {
	dir     string
	spec    string // spec.json: what was started, for Adopt and idempotent Start
	pidfile string // written by QEMU; its path on QEMU's command line identifies the process
	qmp     string // QMP monitor socket
	serial  string // interactive serial console socket
	vnc     string // the display's VNC (RFB) socket
	console string // serial console log, appended across boots
	log     string // QEMU's own stderr (and our command line, first)
}

func newRunPaths(runDir, id string) runPaths {
	dir := filepath.Join(runDir, id)
	return runPaths{
		dir:     dir,
		spec:    filepath.Join(dir, "spec.json"),
		pidfile: filepath.Join(dir, "qemu.pid"),
		qmp:     filepath.Join(dir, "qmp.sock"),
		serial:  filepath.Join(dir, "serial.sock"),
		vnc:     filepath.Join(dir, "vnc.sock"),
		console: filepath.Join(dir, "console.log"),
		log:     filepath.Join(dir, "qemu.log"),
	}
}

// maxSocketPath is the longest unix socket path Linux takes (sun_path is
// 108 bytes with its NUL).
const maxSocketPath = 107

// Cache modes for -drive: "none" opens with O_DIRECT (no host page cache,
// what Nova uses), "writeback" goes through the host page cache, for file
// systems without O_DIRECT (tmpfs).
const (
	cacheNone      = "none"
	cacheWriteback = "writeback"
)

// launch is everything buildArgs needs besides the spec.
type launch struct {
	paths   runPaths
	accel   string // AccelKVM or AccelTCG
	machine string // "q35", "pc"
	// cache returns the cache mode for a disk image path.
	cache func(path string) string
	// keys is, per index of an encrypted disk, the file QEMU reads its
	// passphrase from (base64): "/dev/fd/<n>", a pipe it inherits.
	keys map[int]string
	// incoming starts a VM that waits, paused, for a live migration's
	// stream (livemigrate.go).
	incoming bool
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// buildArgs returns QEMU's arguments (without the binary) for a valid spec.
//
// The process daemonizes (-daemonize): QEMU forks, its parent exits once
// the VM is set up (so a zero exit means the pid file and sockets exist,
// and a start-up error is an exit status with a message on stderr), and the
// VM process is in its own session, re-parented away from rackd, so rackd
// can be killed or restarted without taking its guests down.
// throttling is -drive's I/O limit options for l, the ones set only.
func throttling(l hypervisor.IOLimits) string {
	out := ""
	for _, o := range []struct {
		name string
		v    int64
	}{
		{"iops-total", l.TotalIOPS}, {"iops-read", l.ReadIOPS}, {"iops-write", l.WriteIOPS},
		{"bps-total", l.TotalBytes}, {"bps-read", l.ReadBytes}, {"bps-write", l.WriteBytes},
	} {
		if o.v > 0 {
			out += ",throttling." + o.name + "=" + strconv.FormatInt(o.v, 10)
		}
	}
	return out
}

func buildArgs(spec hypervisor.VMSpec, l launch) []string {
	p := l.paths
	name := spec.Name
	if name == "" {
		name = spec.ID
	}
	args := []string{
		"-name", "guest=" + escape(name) + ",debug-threads=on",
	}
	if uuidPattern.MatchString(spec.ID) {
		args = append(args, "-uuid", spec.ID) // the guest's SMBIOS uuid, as Nova sets it
	}
	args = append(args,
		// graphics=off makes SeaBIOS write to the serial port, so even a
		// guest that never boots shows something in its console log.
		"-machine", l.machine+",graphics=off",
		"-accel", l.accel,
		"-cpu", cpuModel(l.accel),
		"-smp", strconv.Itoa(spec.VCPUs),
		"-m", strconv.Itoa(spec.MemoryMB),
		"-nodefaults", "-no-user-config",
		"-display", "none", "-vga", "none",
		// A standard VGA for the graphical console, seen only through
		// the VNC socket (Nova's noVNC console). It sits in slot 0x1e,
		// out of the way of the devices below, whose PCI addresses (and
		// so the guest's device names) stay what they were before it.
		"-device", "VGA,id=video0,addr=0x1e", "-vnc", "unix:"+p.vnc,
		"-rtc", "base=utc",
		"-msg", "timestamp=on",
		"-pidfile", p.pidfile,
		"-daemonize",
		"-chardev", "socket,id=qmp,path="+escape(p.qmp)+",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		// One chardev gives both the log file (written whether or not a
		// client is connected) and the interactive socket.
		"-chardev", "socket,id=serial0,path="+escape(p.serial)+",server=on,wait=off,logfile="+escape(p.console)+",logappend=on",
		"-serial", "chardev:serial0",
		// A guest panic shows as the "guest-panicked" run state: Crashed.
		"-device", "pvpanic",
	)
	// Boot order: the disk marked Boot first, then the others in order.
	bootIndex := make([]int, len(spec.Disks))
	next := 1
	for i, d := range spec.Disks {
		if d.Boot && next == 1 {
			bootIndex[i], next = 1, 2
		}
	}
	for i := range spec.Disks {
		if bootIndex[i] == 0 {
			bootIndex[i] = next
			next++
		}
	}
	for i, d := range spec.Disks {
		drive := "drive-disk" + strconv.Itoa(i)
		opts := "file=" + escape(d.Path) + ",if=none,id=" + drive + ",format=" + d.Format + ",cache=" + l.cache(d.Path)
		if d.NBDSocket != "" {
			// QEMU's NBD client; guest flushes become NBD FLUSH, which is
			// what makes a volume's writes durable.
			format := "driver=raw"
			if d.ID != "" {
				// Named as a plugged disk's nodes are (vol-<id> over
				// nbd-<id>-a), so ResizeDisk grows it the same way.
				format += ",node-name=" + hotNode(d.ID) + ",file.node-name=" + nbdNodes(d.ID)[0]
				if d.Encryption != nil {
					// The passphrase is read from a pipe QEMU inherits
					// (launch.keys): this line names only the pipe.
					args = append(args, "-object", "secret,id="+secretID(d.ID)+",format=base64,file="+l.keys[i])
					format = strings.Replace(format, "driver=raw", "driver=luks,key-secret="+secretID(d.ID), 1)
				}
			}
			// It reconnects as a plugged disk's NBD client does: a
			// restart of rackd, which serves the export, pauses the
			// guest's root disk instead of failing its I/O.
			opts = format + ",file.driver=nbd,file.server.type=unix,file.server.path=" + escape(d.NBDSocket) +
				",file.export=" + d.NBDExport + ",file.reconnect-delay=" + strconv.Itoa(reconnectDelay) +
				",if=none,id=" + drive + ",cache=" + cacheWriteback
			if d.Placeholder > 0 && d.ID != "" {
				// A live migration's destination: nothing is opened until
				// the switch-over (livemigrate.go).
				opts = format + ",file.driver=null-co,file.size=" + strconv.FormatInt(d.Placeholder, 10) +
					",file.read-zeroes=on,if=none,id=" + drive + ",cache=" + cacheWriteback
			}
		}
		if d.ReadOnly {
			opts += ",readonly=on"
		} else {
			opts += ",discard=unmap" // thin images give freed blocks back
		}
		opts += throttling(d.Limits)
		dev := "virtio-blk-pci,id=disk" + strconv.Itoa(i) + ",drive=" + drive
		if d.Serial != "" {
			dev += ",serial=" + d.Serial
		}
		dev += ",bootindex=" + strconv.Itoa(bootIndex[i])
		args = append(args, "-drive", opts, "-device", dev)
	}
	if spec.ConfigDrive != "" {
		args = append(args,
			"-drive", "file="+escape(spec.ConfigDrive)+",if=none,id=drive-config,format=raw,readonly=on,cache="+l.cache(spec.ConfigDrive),
			"-device", "virtio-blk-pci,id=config,drive=drive-config",
		)
	}
	for i, n := range spec.NICs {
		netdev := "net" + strconv.Itoa(i)
		mac := n.MAC
		if hw, err := net.ParseMAC(n.MAC); err == nil {
			mac = hw.String()
		}
		args = append(args,
			// No vhost: the in-kernel virtio-net backend needs
			// /dev/vhost-net, which nodes may lack; the tap is ours to
			// set up (script=no), and the dataplane's programs attach to it.
			"-netdev", "tap,id="+netdev+",ifname="+n.Tap+",script=no,downscript=no,vhost=off",
			// romfile= (empty): no iPXE option ROM. VMs boot from disk;
			// it also saves TCG guests the ROM's start-up time.
			"-device", "virtio-net-pci,id=nic"+strconv.Itoa(i)+",netdev="+netdev+",mac="+mac+",romfile=",
		)
	}
	if l.machine == "q35" {
		// q35's root bus takes no hot-plugged devices: volumes are
		// plugged into these empty root ports (hypervisor.Hotplug). They
		// come last, so the disks and NICs keep their PCI addresses.
		for i := 0; i < hypervisor.HotplugSlots; i++ {
			args = append(args, "-device", "pcie-root-port,id=hp"+strconv.Itoa(i)+",chassis="+strconv.Itoa(i+1))
		}
	}
	if l.incoming {
		// The stream's address comes later (migrate-incoming), once the
		// placeholders are plugged; -S keeps the guest paused after it.
		args = append(args, "-incoming", "defer", "-S")
	}
	return args
}

// escape quotes a value for QEMU's key=value,key=value option syntax, where
// a literal comma is written twice.
func escape(s string) string { return strings.ReplaceAll(s, ",", ",,") }
