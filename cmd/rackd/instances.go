package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/image"
	"github.com/rackstack/rackstack/node/hypervisor"
	"github.com/rackstack/rackstack/node/hypervisor/qemu"
	"github.com/rackstack/rackstack/node/instances"
)

const consolePeerPath = "/peer/compute/v1/console/"

// openInstances starts the node agent that runs the servers placed on this
// node. With --compute auto it is off where QEMU is missing (and says so).
func openInstances(o *options, node *cluster.Node, images *image.Service, servers *compute.Service, log *slog.Logger) (*instances.Agent, hypervisor.Driver, error) {
	if o.Compute == "off" {
		return nil, nil, nil
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if o.Compute == "auto" {
			log.Warn("no compute on this node: qemu-system-x86_64 is not installed")
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("--compute on: %w", err)
	}
	runDir := vmRunDir(o)
	drv, err := qemu.New(qemu.Config{RunDir: runDir, Accelerator: o.Accel, Logger: log})
	if err != nil {
		if o.Compute == "auto" {
			log.Warn("no compute on this node", "err", err, "root", os.Geteuid() == 0)
			return nil, nil, nil
		}
		return nil, nil, err
	}
	log.Info("hypervisor", "accelerator", drv.Accelerator(), "run_dir", runDir)
	agent := &instances.Agent{
		Node: o.Name, Dir: filepath.Join(o.DataDir, "compute"), State: node.Read, Driver: drv,
		Images: images, Taps: instances.NetlinkTaps{}, Report: servers.Report, Log: log,
		Snapshots: images, Step: servers.ImageStep,
		MigrationHost: o.Advertise, LiveStep: servers.LiveMigrateStep,
	}
	node.HandlePeer(consolePeerPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, consolePeerPath)
		lines, _ := strconv.Atoi(r.URL.Query().Get("length"))
		if r.URL.Query().Get("length") == "" {
			lines = -1
		}
		out, err := localConsole(r.Context(), drv, id, lines)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		io.WriteString(w, out)
	}))
	return agent, drv, nil
}

// localConsole reads the last lines of a guest's serial console log.
func localConsole(ctx context.Context, drv hypervisor.Driver, id string, lines int) (string, error) {
	vm, err := drv.Adopt(ctx, id)
	if err != nil {
		return "", err
	}
	raw, err := os.ReadFile(vm.Console())
	if err != nil {
		return "", err
	}
	return compute.ConsoleTail(strings.ReplaceAll(string(raw), "\r\n", "\n"), lines), nil
}

// consoleLogs serves os-getConsoleOutput: this node's guests directly,
// others' through their node's peer port.
type consoleLogs struct {
	node *cluster.Node
	self string
	drv  func() hypervisor.Driver
}

func (c consoleLogs) ConsoleOutput(ctx context.Context, host, serverID string, length int) (string, error) {
	if host == c.self && c.drv() != nil {
		return localConsole(ctx, c.drv(), serverID, length)
	}
	addr, err := c.node.PeerAddress(host)
	if err != nil {
		return "", err
	}
	u := "https://" + addr + consolePeerPath + serverID
	if length >= 0 {
		u += "?length=" + strconv.Itoa(length)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.node.PeerClient().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("node %s: %s", host, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// vmRunDir is where QEMU's sockets and pid files live: --vm-run-dir, or
// (unix socket paths are short) a directory under /run named by a hash of
// the data dir, unique per node on a machine.
func vmRunDir(o *options) string {
	if o.VMRunDir != "" {
		return o.VMRunDir
	}
	return filepath.Join("/run/rackstack", dataDirKey(o.DataDir))
}
