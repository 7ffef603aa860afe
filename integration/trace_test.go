//go:build integration

package integration

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// traceCommand, with RACKSTACK_TRACE_COMMANDS set, writes to stderr when a
// client command the tests run ended and how long it took, so that a slow
// run's -v log shows where its time went (the CLI alone costs seconds per
// call on a loaded machine).
func traceCommand(start time.Time, name string, args []string) {
	if os.Getenv("RACKSTACK_TRACE_COMMANDS") == "" {
		return
	}
	fmt.Fprintf(os.Stderr, "%s %6.2fs %s %s\n", time.Now().Format("15:04:05.000"), time.Since(start).Seconds(), name, strings.Join(args, " "))
}
