// Command rackd is the Rackstack daemon: the same binary on every node. It
// joins or forms the Raft cluster and serves every API on one listener.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const usage = `usage: rackd [flags]            run a node (--bootstrap for the first, --join for others)
       rackd dev [flags]        a one-node cloud on embedded defaults (what 'make run' starts)
       rackd recover [flags]    make this node the only voter after quorum is lost for good

Every flag can also be set as an environment variable RACKD_<FLAG> (e.g. RACKD_DATA_DIR).
`

func main() {
	// The control plane allocates many short-lived objects per command;
	// collecting less often buys throughput for a little memory. GOGC in
	// the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	mode := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "dev", "recover":
			mode, args = args[0], args[1:]
		case "help", "-h", "--help":
			fmt.Fprint(stdout, usage)
			return 0
		}
	}
	opts, err := parseFlags(mode, args, getenv, stderr)
	if err != nil {
		if err == errHelp {
			return 0
		}
		fmt.Fprintf(stderr, "rackd: %v\n", err)
		return 2
	}
	switch mode {
	case "recover":
		err = recoverCluster(opts, stdin, stdout)
	default:
		err = serve(ctx, opts, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rackd: %v\n", err)
		return 1
	}
	return 0
}
