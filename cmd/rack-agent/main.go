// Command rack-agent runs in the discovery/deploy ramdisk (make ramdisk):
// it reads rackstack.url, rackstack.token and rackstack.mac from the kernel
// command line, inspects the machine, posts the inventory and runs the
// commands the provisioning server gives it (provision/agent). Flags
// override the kernel arguments, for tests. Everything it says goes to
// stderr, which the ramdisk's /init points at the console (ttyS0).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rackstack/rackstack/provision/agent"
	"github.com/rackstack/rackstack/provision/agentapi"
)

// Exit codes: /init and tests tell a refused token from other failures.
const (
	exitFailed       = 1
	exitUnauthorized = 3
)

func main() {
	code := run(os.Args[1:], os.Stderr)
	if os.Getpid() == 1 {
		// As the ramdisk's init we must not exit (the kernel would panic and
		// hide the message above): stay, so the console keeps the reason,
		// until the conductor power-cycles the machine.
		fmt.Fprintf(os.Stderr, "rack-agent: stopped (exit %d); waiting to be power-cycled\n", code)
		for {
			time.Sleep(time.Hour)
		}
	}
	os.Exit(code)
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("rack-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", "", "provisioning server URL (default: "+agentapi.ArgURL+" from the kernel command line)")
	token := fs.String("token", "", "this boot's token (default: "+agentapi.ArgToken+")")
	mac := fs.String("mac", "", "the MAC the machine booted from (default: "+agentapi.ArgMAC+")")
	root := fs.String("root", "/", "where /proc and /sys are")
	cmdline := fs.String("cmdline", "/proc/cmdline", "the kernel command line to read the arguments from")
	every := fs.Duration("heartbeat", agentapi.HeartbeatEvery, "heartbeat period until the server sets one")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log := slog.New(slog.NewTextHandler(&prefixed{w: stderr, prefix: []byte("rack-agent: ")}, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // the console has the kernel's clock
			}
			return a
		},
	}))

	kargs := map[string]string{}
	if b, err := os.ReadFile(*cmdline); err == nil {
		kargs = agent.KernelArgs(string(b))
	} else if *url == "" || *token == "" {
		log.Error("read kernel command line", "err", err)
	}
	cfg := agent.Config{
		URL:       pick(*url, kargs[agentapi.ArgURL]),
		Token:     pick(*token, kargs[agentapi.ArgToken]),
		MAC:       pick(*mac, kargs[agentapi.ArgMAC]),
		Root:      *root,
		Heartbeat: *every,
		Log:       log,
	}
	if cfg.URL == "" || cfg.Token == "" {
		log.Error("no " + agentapi.ArgURL + " or " + agentapi.ArgToken + " on the kernel command line: nothing to report to")
		return exitFailed
	}
	if os.Getpid() == 1 {
		go reap()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log.Info("starting", "url", cfg.URL, "mac", cfg.MAC)
	err := agent.Run(ctx, cfg)
	switch {
	case err == nil || errors.Is(err, agent.ErrPoweredOff) || errors.Is(err, context.Canceled):
		return 0
	case errors.Is(err, agent.ErrUnauthorized):
		log.Error(err.Error())
		return exitUnauthorized
	}
	log.Error("agent stopped", "err", err)
	return exitFailed
}

func pick(flagValue, kernel string) string {
	if flagValue != "" {
		return flagValue
	}
	return kernel
}

// reap collects the exit status of orphans (udhcpc's scripts) that the
// kernel hands to PID 1.
func reap() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGCHLD)
	for range ch {
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

// prefixed starts every line with prefix, so the agent's lines stand out
// among the kernel's on the console.
type prefixed struct {
	w      io.Writer
	prefix []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	var out []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) > 0 {
			out = append(append(out, p.prefix...), line...)
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
