// Command rackbench measures Rackstack and its baselines side by side in one
// run and prints a table, or JSON with -o json:
// one array of {"suite","case","params","metric","unit","median","runs"}.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Result is one measured figure: the median of several runs.
type Result struct {
	Suite  string         `json:"suite"`
	Case   string         `json:"case"`
	Params map[string]any `json:"params"`
	Metric string         `json:"metric"`
	Unit   string         `json:"unit"`
	Median float64        `json:"median"`
	Runs   []float64      `json:"runs"`
}

// options shared by every suite.
type options struct {
	Runs     int
	Duration time.Duration
	Output   string
	BinDir   string
	Image    string // launch, provision: the guest disk image
	Sizes    string // storage: object sizes of the SDK cases
	Quick    bool   // storage: the SDK cases only (and raw disk)
	MinIO    string // storage: a minio server binary to compare with
	Ramdisk  string // provision: the directory holding vmlinuz and initramfs.gz
	Nodes    string // provision: machines at once per case, a comma list
	Log      io.Writer
}

type suite func(ctx context.Context, o options) ([]Result, error)

var suites = map[string]suite{
	"block":     blockSuite,
	"control":   controlSuite,
	"dataplane": dataplaneSuite,
	"launch":    launchSuite,
	"provision": provisionSuite,
	"storage":   storageSuite,
}

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as rackd does, for the in-process cluster
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "usage: rackbench SUITE [--runs N] [--duration D] [-o table|json]\nsuites: %s\n", strings.Join(suiteNames(), ", "))
		return 2
	}
	name := args[0]
	s, ok := suites[name]
	if !ok {
		fmt.Fprintf(stderr, "rackbench: unknown suite %q (have: %s)\n", name, strings.Join(suiteNames(), ", "))
		return 2
	}
	fs := flag.NewFlagSet("rackbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{Log: stderr}
	fs.IntVar(&o.Runs, "runs", 5, "runs per case; the median is reported")
	fs.DurationVar(&o.Duration, "duration", 3*time.Second, "length of one throughput run")
	fs.StringVar(&o.Output, "o", "table", "output: table or json")
	fs.StringVar(&o.BinDir, "bin", "", "directory holding rackd (default: next to rackbench)")
	fs.StringVar(&o.Image, "image", "", "launch: guest image (default: "+testImagePath+" here, above, or beside --bin)")
	fs.StringVar(&o.Sizes, "sizes", "4KiB,1MiB,64MiB", "storage: object sizes of the SDK cases")
	fs.BoolVar(&o.Quick, "quick", false, "storage: only raw disk and the SDK cases (a few minutes with --runs 1)")
	fs.StringVar(&o.MinIO, "minio", "", "storage: minio server binary for the minio case (default: minio in PATH or beside --bin)")
	fs.StringVar(&o.Ramdisk, "ramdisk", "", "provision: directory holding the agent ramdisk's vmlinuz and initramfs.gz (default: "+ramdiskPath+" found like the image)")
	fs.StringVar(&o.Nodes, "nodes", "1,3", "provision: machines powered on and deployed at once, per case (comma list)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	runsSet := false
	fs.Visit(func(f *flag.Flag) { runsSet = runsSet || f.Name == "runs" })
	if name == "provision" {
		// A run is several TCG PXE boots per machine: fewer runs by default.
		if !runsSet {
			o.Runs = provisionRuns
		}
		if _, err := parseNodes(o.Nodes); err != nil {
			fmt.Fprintf(stderr, "rackbench: %v\n", err)
			return 2
		}
	}
	if o.Runs < 1 {
		fmt.Fprintln(stderr, "rackbench: --runs must be at least 1")
		return 2
	}
	if o.BinDir == "" {
		exe, err := os.Executable()
		if err == nil {
			o.BinDir = dirOf(exe)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	results, err := s(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "rackbench %s: %v\n", name, err)
		return 1
	}
	if len(results) == 0 {
		fmt.Fprintf(stderr, "rackbench %s: no results\n", name)
		return 1
	}
	if o.Output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
		return 0
	}
	printTable(stdout, results)
	return 0
}

func suiteNames() []string {
	var out []string
	for k := range suites {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[:i]
	}
	return "."
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile of sorted durations, p in [0,100].
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func newResult(suite, cas string, params map[string]any, metric, unit string, runs []float64) Result {
	return Result{Suite: suite, Case: cas, Params: params, Metric: metric, Unit: unit, Median: median(runs), Runs: runs}
}

func printTable(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SUITE\tCASE\tPARAMS\tMETRIC\tMEDIAN\tUNIT\tRUNS")
	for _, r := range rs {
		var ps []string
		for k, v := range r.Params {
			ps = append(ps, fmt.Sprintf("%s=%v", k, v))
		}
		sort.Strings(ps)
		var runs []string
		for _, x := range r.Runs {
			runs = append(runs, fmt.Sprintf("%.4g", x))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.4g\t%s\t%s\n", r.Suite, r.Case, strings.Join(ps, ","), r.Metric, r.Median, r.Unit, strings.Join(runs, " "))
	}
	tw.Flush()
}

var errNeed = errors.New("missing prerequisite")
