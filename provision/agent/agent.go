// Package agent is rack-agent, the program in the discovery/deploy ramdisk:
// it inspects the machine, posts the inventory to the provisioning server,
// heartbeats, and runs the commands the heartbeat answers carry (clean,
// deploy, poweroff) — the client side of provision/agentapi. It imports no
// service and no Raft: the ramdisk binary stays small and static.
//
// Every HTTP call is retried a bounded number of times; a call that still
// fails is logged and tried again on the next heartbeat, so a provisioning
// node that restarts finds its agents still there. A 401 ends the agent:
// the boot's token is over and only a new boot gets a new one.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rackstack/rackstack/provision/agentapi"
)

// Config is how one agent runs.
type Config struct {
	// URL is the provisioning server ("http://IP:PORT"), Token this boot's
	// token and MAC the MAC the machine booted from: the kernel arguments
	// agentapi names.
	URL, Token, MAC string
	// Root is where /proc and /sys are ("/" in the ramdisk).
	Root string
	// Heartbeat is the period until the server says otherwise
	// (agentapi.HeartbeatEvery when zero).
	Heartbeat time.Duration
	// Attempts bounds the tries of each HTTP call (5 when zero); Backoff is
	// the first wait between them, doubled each time (500ms when zero).
	Attempts int
	Backoff  time.Duration
	// HTTPClient makes the calls (one with connect and header timeouts
	// when nil).
	HTTPClient *http.Client
	Log        *slog.Logger
	// Inspect inventories the machine (Inspect(Root, MAC) when nil).
	Inspect func() (agentapi.Inventory, error)
	// PowerOff turns the machine off after the poweroff command's result
	// is posted (sync and reboot(2) when nil). It returns only on failure.
	PowerOff func() error
}

// ErrPoweredOff is what Run returns when a PowerOff that returns without
// an error (a test's) has run.
var ErrPoweredOff = errors.New("powered off")

// Run is the agent: it returns when ctx ends, on a 401 (ErrUnauthorized),
// or after the poweroff command.
func Run(ctx context.Context, cfg Config) error {
	if cfg.URL == "" || cfg.Token == "" {
		return fmt.Errorf("run agent: need %s and %s", agentapi.ArgURL, agentapi.ArgToken)
	}
	a := newAgent(cfg)
	return a.run(ctx)
}

type agent struct {
	cfg    Config
	log    *slog.Logger
	c      *client
	every  time.Duration
	inv    agentapi.Inventory
	done   map[string]bool // command ids started, each runs once
	mu     sync.Mutex      // guards status
	status agentapi.Heartbeat
	ended  chan agentapi.Result
}

func newAgent(cfg Config) *agent {
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = agentapi.HeartbeatEvery
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 500 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.HTTPClient == nil {
		// JSON calls carry their own 30 s deadline; the image's first byte
		// may wait for the provisioning node to convert it from qcow2.
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			ResponseHeaderTimeout: 10 * time.Minute,
			IdleConnTimeout:       90 * time.Second,
		}}
	}
	if cfg.Inspect == nil {
		root, mac := cfg.Root, cfg.MAC
		cfg.Inspect = func() (agentapi.Inventory, error) { return Inspect(root, mac) }
	}
	if cfg.PowerOff == nil {
		cfg.PowerOff = powerOff
	}
	return &agent{
		cfg: cfg,
		log: cfg.Log,
		c: &client{
			base: strings.TrimRight(cfg.URL, "/"), token: cfg.Token, hc: cfg.HTTPClient,
			attempts: cfg.Attempts, backoff: cfg.Backoff, log: cfg.Log,
		},
		every: cfg.Heartbeat,
		done:  map[string]bool{},
		ended: make(chan agentapi.Result, 1),
	}
}

func (a *agent) run(ctx context.Context) error {
	inv, err := a.cfg.Inspect()
	if err != nil {
		return err
	}
	a.inv = inv
	a.log.Info("inspected", "cpus", inv.CPU.Count, "memory_mib", inv.Memory.PhysicalMB, "disks", len(inv.Disks), "interfaces", len(inv.Interfaces))
	for {
		var reply agentapi.InventoryReply
		err := a.c.post(ctx, agentapi.PathInventory, inv, &reply)
		if err == nil {
			a.log.Info("inventory posted", "node", reply.Node)
			break
		}
		if stop := a.failed("post inventory", err); stop != nil {
			return stop
		}
		if _, err := a.wait(ctx); err != nil {
			return err
		}
	}

	var pending *agentapi.Result // a result the server has not taken yet
	for {
		if pending != nil {
			if err := a.c.post(ctx, agentapi.PathResult, pending, nil); err != nil {
				if stop := a.failed("post result", err); stop != nil {
					return stop
				}
				// The server asked for the power off: do it even when it
				// cannot hear that it is done (it reads power from the BMC).
				if pending.Op == agentapi.OpPowerOff {
					return a.powerOff()
				}
			} else {
				a.log.Info("result posted", "command", pending.CommandID, "op", pending.Op, "ok", pending.OK)
				if pending.Op == agentapi.OpPowerOff {
					return a.powerOff()
				}
				pending = nil
			}
		}
		a.mu.Lock()
		hb := a.status
		a.mu.Unlock()
		var reply agentapi.HeartbeatReply
		if err := a.c.post(ctx, agentapi.PathHeartbeat, hb, &reply); err != nil {
			if stop := a.failed("heartbeat", err); stop != nil {
				return stop
			}
		} else {
			if reply.Interval > 0 {
				a.every = reply.Interval.D()
			}
			a.start(ctx, reply.Command)
		}
		res, err := a.wait(ctx)
		if err != nil {
			return err
		}
		if res != nil {
			pending = res
		}
	}
}

// failed logs a call that failed after its retries and says whether the
// agent must stop (the token was refused, or it is being stopped).
func (a *agent) failed(what string, err error) error {
	if errors.Is(err, ErrUnauthorized) {
		return ErrUnauthorized
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	a.log.Error(what+" failed; trying again at the next heartbeat", "err", err)
	return nil
}

// start runs cmd in the background unless it is a wait, something is
// already running, or this command id ran before.
func (a *agent) start(ctx context.Context, cmd agentapi.Command) {
	if cmd.Op == "" || cmd.Op == agentapi.OpWait || a.done[cmd.ID] {
		return
	}
	a.mu.Lock()
	busy := a.status.Running != ""
	if !busy {
		a.status = agentapi.Heartbeat{Running: cmd.Op, CommandID: cmd.ID, Progress: "starting"}
	}
	a.mu.Unlock()
	if busy {
		a.log.Warn("command ignored: another one is running", "command", cmd.ID, "op", cmd.Op)
		return
	}
	a.done[cmd.ID] = true
	a.log.Info("running", "command", cmd.ID, "op", cmd.Op)
	go func() {
		res := agentapi.Result{CommandID: cmd.ID, Op: cmd.Op}
		msg, err := a.execute(ctx, cmd)
		if err != nil {
			res.Error = err.Error()
			a.log.Error("command failed", "command", cmd.ID, "op", cmd.Op, "err", err)
		} else {
			res.OK, res.Message = true, msg
			a.log.Info("command done", "command", cmd.ID, "op", cmd.Op, "result", msg)
		}
		a.mu.Lock()
		a.status = agentapi.Heartbeat{}
		a.mu.Unlock()
		a.ended <- res
	}()
}

func (a *agent) progress(step string) {
	a.mu.Lock()
	a.status.Progress = step
	a.mu.Unlock()
	a.log.Info(step)
}

func (a *agent) execute(ctx context.Context, cmd agentapi.Command) (string, error) {
	switch cmd.Op {
	case agentapi.OpClean:
		var args agentapi.CleanArgs
		if cmd.Clean != nil {
			args = *cmd.Clean
		}
		return Clean(ctx, args, a.inv, a.progress)
	case agentapi.OpDeploy:
		if cmd.Deploy == nil {
			return "", errors.New("deploy: the command has no deploy arguments")
		}
		erased := ""
		if cmd.Deploy.EraseMetadata {
			msg, err := Clean(ctx, agentapi.CleanArgs{}, a.inv, a.progress)
			if err != nil {
				return "", fmt.Errorf("deploy step erase_devices_metadata: %w", err)
			}
			erased = "erased metadata (" + msg + "); "
		}
		msg, err := deploy(ctx, a.c, *cmd.Deploy, a.progress)
		return erased + msg, err
	case agentapi.OpPowerOff:
		syscall.Sync()
		return "powering off", nil
	}
	return "", fmt.Errorf("unknown command op %q", cmd.Op)
}

func (a *agent) powerOff() error {
	a.log.Info("powering off")
	if err := a.cfg.PowerOff(); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return ErrPoweredOff
}

// powerOff syncs the disks and turns the machine off; it returns only if
// the kernel refused.
func powerOff() error {
	syscall.Sync()
	return syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
}

// wait sleeps one heartbeat period, or less when a command ends: its
// result is reported at once.
func (a *agent) wait(ctx context.Context) (*agentapi.Result, error) {
	t := time.NewTimer(a.every)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, nil
	case r := <-a.ended:
		return &r, nil
	}
}
