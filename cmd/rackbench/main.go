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
	Profile  string // storage: where to save rackd's CPU profiles of the SDK cases
	Replay   int    // storage: small objects in the log of the restart case; 0: the other cases
	Ramdisk  string // provision: the directory holding vmlinuz and initramfs.zst
	Nodes    string // provision: machines at once per case, a comma list
	// ProvisionDHCP is rackd's --provision-dhcp in the provision suite.
	ProvisionDHCP string
	// Instances is how many guests the telemetry suite runs.
	Instances int
	Log       io.Writer

	// The --cloud suites (cloud.go) measure a running cloud.
	Cloud       bool
	OSCloud     string // clouds.yaml entry; "" reads OS_*
	CloudNodes  string // storage: node names whose endpoints to use; "" all
	Concurrency string // storage --cloud: a comma list
	From, To    string // dataplane --cloud: the nodes of the two ports
	Rules       string // dataplane --cloud: security group sizes, a comma list
	Cases       string // dataplane, block: the cases to measure, a comma list; empty: all
	Node        string // block --cloud: the node that exports the volume
	Size        string // block --cloud: the volume's size
	// Shape, when set, receives the measured cluster's shape (--cloud).
	Shape *clusterShape
}

type suite func(ctx context.Context, o options) ([]Result, error)

var suites = map[string]suite{
	"block":     blockSuite,
	"control":   controlSuite,
	"dataplane": dataplaneSuite,
	"launch":    launchSuite,
	"provision": provisionSuite,
	"storage":   storageSuite,
	"telemetry": telemetrySuite,
}

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as rackd does, for the in-process cluster
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "usage: rackbench SUITE [--runs N] [--duration D] [-o table|json|html FILE] [--cloud [--os-cloud NAME]]\n       rackbench clean --cloud\nsuites: %s\n", strings.Join(suiteNames(), ", "))
		return 2
	}
	name := args[0]
	s, ok := suites[name]
	if !ok && name != "clean" {
		fmt.Fprintf(stderr, "rackbench: unknown suite %q (have: %s)\n", name, strings.Join(suiteNames(), ", "))
		return 2
	}
	fs := flag.NewFlagSet("rackbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{Log: stderr}
	fs.IntVar(&o.Runs, "runs", 5, "runs per case; the median is reported")
	fs.DurationVar(&o.Duration, "duration", 3*time.Second, "length of one throughput run")
	fs.StringVar(&o.Output, "o", "table", "output: table, json, or html followed by the report's file name")
	fs.StringVar(&o.BinDir, "bin", "", "directory holding rackd (default: next to rackbench)")
	fs.StringVar(&o.Image, "image", "", "launch: guest image (default: "+testImagePath+" here, above, or beside --bin)")
	fs.StringVar(&o.Sizes, "sizes", "4KiB,1MiB,64MiB", "storage: object sizes of the SDK cases")
	fs.BoolVar(&o.Quick, "quick", false, "storage: only raw disk and the SDK cases (a few minutes with --runs 1)")
	fs.StringVar(&o.Profile, "profile", "", "storage, block: save rackd's CPU profile of each SDK case's PUT and GET phase (storage) or of each run of the rackstack case (block) in this directory")
	fs.IntVar(&o.Replay, "replay", 0, "storage: time only a restart that replays this many 4 KiB PUTs from the Raft log")
	fs.StringVar(&o.MinIO, "minio", "", "storage: minio server binary for the minio case (default: minio in PATH or beside --bin)")
	fs.StringVar(&o.Ramdisk, "ramdisk", "", "provision: directory holding the agent ramdisk's vmlinuz and initramfs.zst (default: "+ramdiskPath+" found like the image)")
	fs.IntVar(&o.Instances, "instances", telemetryInstances, "telemetry: servers (real QEMU guests) running while /metrics is scraped")
	fs.StringVar(&o.Nodes, "nodes", "1,3", "provision: machines powered on and deployed at once, per case (comma list)")
	fs.StringVar(&o.ProvisionDHCP, "provision-dhcp", "proxy", "provision: rackd's DHCP mode: proxy (beside the segment's site DHCP server) or full (rackd leases the addresses and advertises no IPv6 router, which ends iPXE's wait for one; the floor's segment gets the same advertisement)")
	fs.BoolVar(&o.Cloud, "cloud", false, "storage, dataplane, block, clean: measure the running cloud the OS_* variables (or --os-cloud) name, as an admin")
	fs.StringVar(&o.OSCloud, "os-cloud", "", "--cloud: the cloud of that name in clouds.yaml instead of OS_*")
	fs.StringVar(&o.Concurrency, "concurrency", "1,8,32", "storage --cloud: clients at once, per case (comma list)")
	fs.StringVar(&o.From, "from", "", "dataplane --cloud: node of the client port")
	fs.StringVar(&o.To, "to", "", "dataplane --cloud: node of the server port (= --from: traffic within one node)")
	fs.StringVar(&o.Cases, "cases", "", "dataplane: measure only these cases; block: only these cases (rackstack, raw-disk, nbdkit-file, raw-disk-durable, write-pattern) and jobs (seq_write, seq_read, randread_iops, randwrite_iops) (comma list; default: all)")
	fs.StringVar(&o.Rules, "rules", "0,1000,10000", "dataplane --cloud: security group rules on the ports, per case (comma list)")
	fs.StringVar(&o.Node, "node", "", "block --cloud: node that exports the volume, where rackbench runs (its exports are on loopback)")
	fs.StringVar(&o.Size, "size", "512MiB", "block --cloud: size of the temporary volume")
	compare := fs.String("compare", "", "-o html: an earlier run's -o json output to show beside this one")
	// "-o html FILE" puts a positional argument among the flags: take it
	// and go on parsing what follows it.
	var rest []string
	for tail := args[1:]; ; {
		if err := fs.Parse(tail); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		rest, tail = append(rest, fs.Arg(0)), fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	runsSet := set["runs"]
	var htmlFile string
	switch o.Output {
	case "table", "json":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "rackbench: unexpected argument %q\n", rest[0])
			return 2
		}
	case "html":
		if len(rest) != 1 {
			fmt.Fprintln(stderr, "rackbench: -o html needs one file name for the report: -o html FILE")
			return 2
		}
		htmlFile = rest[0]
	default:
		fmt.Fprintf(stderr, "rackbench: -o must be table, json or html, not %q\n", o.Output)
		return 2
	}
	if *compare != "" && o.Output != "html" {
		fmt.Fprintln(stderr, "rackbench: --compare goes with -o html FILE")
		return 2
	}
	if o.Cloud {
		switch name {
		case "storage":
			s = storageCloud
			if set["nodes"] {
				o.CloudNodes = o.Nodes
			}
		case "dataplane":
			s = dataplaneCloud
		case "block":
			s = blockCloud
		case "clean":
		default:
			fmt.Fprintf(stderr, "rackbench: %s has no --cloud mode (have: storage, dataplane, block, clean)\n", name)
			return 2
		}
	} else if name == "clean" {
		fmt.Fprintln(stderr, "rackbench: clean needs --cloud (what to clean: the cloud of OS_* or --os-cloud)")
		return 2
	}
	if name == "provision" {
		// A run is several TCG PXE boots per machine: fewer runs by default.
		if !runsSet {
			o.Runs = provisionRuns
		}
		if _, err := parseNodes(o.Nodes); err != nil {
			fmt.Fprintf(stderr, "rackbench: %v\n", err)
			return 2
		}
		if o.ProvisionDHCP != "proxy" && o.ProvisionDHCP != "full" {
			fmt.Fprintf(stderr, "rackbench: --provision-dhcp %q: want proxy or full\n", o.ProvisionDHCP)
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
	if name == "clean" {
		if err := cleanCloud(ctx, o, stdout); err != nil {
			fmt.Fprintf(stderr, "rackbench clean: %v\n", err)
			return 1
		}
		return 0
	}
	var old []Result
	if *compare != "" {
		var err error
		if old, err = readResults(*compare); err != nil {
			fmt.Fprintf(stderr, "rackbench: --compare: %v\n", err)
			return 2
		}
	}
	var shape clusterShape
	o.Shape = &shape
	began := time.Now()
	results, err := s(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "rackbench %s: %v\n", name, err)
		return 1
	}
	if len(results) == 0 {
		fmt.Fprintf(stderr, "rackbench %s: no results\n", name)
		return 1
	}
	switch o.Output {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
	case "html":
		rep := report{Command: "rackbench " + strings.Join(args, " "), Began: began, Took: time.Since(began), Shape: shape, Results: results, Previous: old, PreviousName: *compare}
		if err := writeReport(htmlFile, rep); err != nil {
			fmt.Fprintf(stderr, "rackbench %s: %v\n", name, err)
			return 1
		}
		fmt.Fprintf(stderr, "rackbench %s: report written to %s\n", name, htmlFile)
	default:
		printTable(stdout, results)
	}
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
