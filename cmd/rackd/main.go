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
	"strings"
	"syscall"

	"github.com/rackstack/rackstack/fabric/buildinfo"
)

const usage = `usage: rackd [flags]            run a node (--bootstrap for the first, --join for others)
       rackd dev [flags]        a one-node cloud on embedded defaults (what 'make run' starts)
       rackd recover [flags]    make this node the only voter after quorum is lost for good
       rackd version            print the build (also: rackd --version)

'rackd MODE --help' lists the flags of that mode. Every flag can also be set as an
environment variable RACKD_<FLAG> (e.g. RACKD_DATA_DIR).

Flags of 'rackd' (a node):
`

var modes = []string{"dev", "recover", "version", "help"}

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
			printFlags("serve", stdout)
			return 0
		case "version", "-version", "--version":
			fmt.Fprintf(stdout, "rackd %s\n", buildinfo.Read())
			return 0
		default:
			if !strings.HasPrefix(args[0], "-") {
				fmt.Fprintf(stderr, "rackd: unknown mode %q%s\n\n%s", args[0], suggest(args[0], modes), usage)
				printFlags("serve", stderr)
				return 2
			}
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
	case "dev":
		if opts.Purge {
			err = purge(ctx, opts, stdout, newLogger(opts.LogLevel, stderr))
		} else {
			err = serve(ctx, opts, stdout, stderr)
		}
	default:
		err = serve(ctx, opts, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rackd: %v\n", err)
		return 1
	}
	return 0
}

// printFlags prints the flags of mode with their defaults.
func printFlags(mode string, w io.Writer) {
	fs := flagSet(mode, func(string) string { return "" }, w)
	fs.PrintDefaults()
}

// suggest is ` (did you mean "x"?)` for the candidate closest to got, or ""
// when none is close.
func suggest(got string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(got, c); d < bestD || (strings.HasPrefix(c, got) && got != "") {
			best, bestD = c, d
			if strings.HasPrefix(c, got) {
				break
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
