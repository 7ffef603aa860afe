package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/node/hypervisor/qemu"
	"github.com/rackstack/rackstack/node/instances"
)

// purge removes a dev cloud for good, so a laptop is left as it was: the
// guests it runs and their taps, the veth pairs of its public network and
// metadata service (not another dev cloud's), its BPF pins, QEMU's run
// directory and the data directory. rackd must be stopped first.
func purge(ctx context.Context, o *options, stdout io.Writer, log *slog.Logger) error {
	if pidHolding(filepath.Join(o.DataDir, "raft", "raft.db")) {
		return fmt.Errorf("a rackd is running on %s: stop it (Ctrl-C where 'make run' runs) and purge again", o.DataDir)
	}
	runDir := vmRunDir(o)
	if _, err := exec.LookPath("qemu-system-x86_64"); err == nil {
		if _, err := os.Stat(runDir); err == nil {
			drv, err := qemu.New(qemu.Config{RunDir: runDir, Accelerator: o.Accel, Logger: log})
			if err != nil {
				return fmt.Errorf("open the hypervisor to stop guests: %w", err)
			}
			agent := &instances.Agent{Node: o.Name, Dir: filepath.Join(o.DataDir, "compute"), Driver: drv, Taps: instances.NetlinkTaps{}, Log: log}
			ids, err := agent.Purge(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "stopped %d guest(s) and removed their taps\n", len(ids))
		}
	}
	if err := purgeLinks(o.DataplaneNetns, o.DataDir, stdout); err != nil {
		return err
	}
	for _, dir := range []string{runDir, bpfDir(o), o.DataDir} {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("remove %s: %w", dir, err)
		}
		fmt.Fprintf(stdout, "removed %s\n", dir)
	}
	return nil
}

// purgeLinks removes the veth pairs the rackd on dataDir made in the
// dataplane's namespace for the public network and the metadata service
// (deleting one end takes its peer with it), and orphans: pairs with no
// owner (made before links had owners) or whose owner's data dir is gone.
// A pair another dev cloud owns stays, so purging one dev cloud leaves
// another on the host working. Ones already gone are fine.
func purgeLinks(netnsPath, dataDir string, stdout io.Writer) error {
	me := linkOwner(dataDir)
	return inNetns(netnsPath, func() error {
		for _, name := range []string{publicHostDev, metadataHostDev} {
			l, err := netlink.LinkByName(name)
			if errors.As(err, &netlink.LinkNotFoundError{}) {
				continue
			}
			if err != nil {
				return fmt.Errorf("find %s: %w", name, err)
			}
			if dir := ownerDir(l); l.Attrs().Alias != me && dir != "" && !ownerGone(dir) {
				fmt.Fprintf(stdout, "left link %s: it belongs to the dev cloud on %s\n", name, dir)
				continue
			}
			if err := netlink.LinkDel(l); err != nil {
				return fmt.Errorf("remove %s: %w", name, err)
			}
			fmt.Fprintf(stdout, "removed link %s\n", name)
		}
		return nil
	})
}

// pidHolding reports whether another process holds the flock that bolt
// takes on the Raft log while rackd runs.
func pidHolding(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}
