package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rackstack/rackstack/storage/block"
	"github.com/rackstack/rackstack/storage/disk"
)

// The block suite's volumes are coded 4+2 (the default policy over the
// storage node's six disks).
const blockK, blockM = 4, 2

// blockGoal is one of issue 12's targets for volumes: the median of
// metric at qd for case num over the same for case den must reach min.
type blockGoal struct {
	label    string
	metric   string
	qd       int
	num, den string
	min      float64
	// ceiling marks a line shown for information beside the goal it
	// follows: the most any volume write path with the store's format
	// could reach on this machine.
	ceiling bool
	// scale multiplies the ratio (0: 1): a ceiling of coded data
	// written at a disk's rate is that rate × k/(k+m).
	scale float64
}

var blockGoals = []blockGoal{
	{label: "rackstack vs raw-disk (0.7×k/(k+m), 4+2)", metric: "seq_write", qd: 8, num: "rackstack", den: "raw-disk", min: 0.7 * blockK / (blockK + blockM)},
	// The bare pattern the store's format needs (coded extents, one
	// shard file per disk and flush, direct I/O, fsync and directory
	// sync; no NBD, no page maps, no metadata), written in rackbench's
	// own process: where this ratio is under the target, no write path
	// keeping that format can meet it here.
	{label: "ceiling: write-pattern (EC-coded shard files, no NBD, no metadata) vs raw-disk", metric: "seq_write", qd: 8, num: "write-pattern", den: "raw-disk", min: 0.7 * blockK / (blockK + blockM), ceiling: true},
	// The disk's own durable rate, shared by k+m shards: the most any
	// write path whatever its format could reach while it makes each
	// flush durable before the next (fdatasync every 32 MiB), against
	// the raw disk's rate with the host's cache behind it. rackd's
	// volumes no longer do (write-back: a spill is held until the
	// client's flush, storage/block/DESIGN.md), so it bounds them no
	// more: it shows what holding spills back was for.
	{label: "ceiling: raw-disk-durable × k/(k+m) (any format, durable as it goes) vs raw-disk", metric: "seq_write", qd: 8, num: "raw-disk-durable", den: "raw-disk", min: 0.7 * blockK / (blockK + blockM), ceiling: true, scale: float64(blockK) / (blockK + blockM)},
	{label: "rackstack vs nbdkit-file", metric: "randread_iops", qd: 1, num: "rackstack", den: "nbdkit-file", min: 0.8},
	{label: "rackstack vs nbdkit-file", metric: "randread_iops", qd: 32, num: "rackstack", den: "nbdkit-file", min: 0.8},
	{label: "rackstack vs nbdkit-file", metric: "randwrite_iops", qd: 32, num: "rackstack", den: "nbdkit-file", min: 0.5},
}

// blockGoalLines evaluates the goals on the medians of this run.
func blockGoalLines(rs []Result) []string {
	type key struct {
		cas, metric string
		qd          int
	}
	medians := map[key]float64{}
	for _, r := range rs {
		if r.Suite == "block" {
			medians[key{r.Case, r.Metric, paramInt(r.Params, "qd")}] = r.Median
		}
	}
	var out []string
	for _, g := range blockGoals {
		what := fmt.Sprintf("%s qd=%d, %s", g.metric, g.qd, g.label)
		target := fmt.Sprintf("≥%.2f×", g.min)
		a, ok1 := medians[key{g.num, g.metric, g.qd}]
		b, ok2 := medians[key{g.den, g.metric, g.qd}]
		switch {
		case !ok1 || !ok2 || b <= 0:
			out = append(out, fmt.Sprintf("%s: target %s: not measured", what, target))
		case g.ceiling:
			r := a / b
			if g.scale > 0 {
				r *= g.scale
			}
			out = append(out, fmt.Sprintf("%s: %.2f× (for information: the most such a write path could reach against target %s)", what, r, target))
		default:
			verdict := "not met"
			if a/b >= g.min {
				verdict = "met"
			}
			out = append(out, fmt.Sprintf("%s: %.2f×, target %s: %s", what, a/b, target, verdict))
		}
	}
	return out
}

func printBlockGoals(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "\nblock goals (ratios of medians from this run):")
	for _, l := range blockGoalLines(rs) {
		fmt.Fprintln(w, "  "+l)
	}
}

// writePatternCase measures the bare write pattern (block.Pattern, the
// store's format) on six directories of the disk the other cases use,
// for o.Duration per run, in volume data MiB/s: the seq_write ceiling.
func writePatternCase(ctx context.Context, o options, dir string, prog *progress) ([]Result, error) {
	var dirs []*disk.Dir
	for i := range blockK + blockM {
		d, err := disk.OpenDir(filepath.Join(dir, fmt.Sprintf("pattern-%d", i)))
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, d)
	}
	defer func() {
		for _, d := range dirs {
			os.RemoveAll(d.Path())
		}
	}()
	p, err := block.NewPattern(dirs, blockK, blockM, block.PatternFilePerDisk)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	const step = 64 << 20
	var runs []float64
	for r := range o.Runs {
		prog.start(fmt.Sprintf("write-pattern seq_write run %d", r+1))
		start := time.Now()
		var n int64
		for time.Since(start) < o.Duration && ctx.Err() == nil {
			if err := p.Write(step); err != nil {
				return nil, fmt.Errorf("write-pattern: %w", err)
			}
			n += step
		}
		runs = append(runs, float64(n)/(1<<20)/time.Since(start).Seconds())
	}
	fmt.Fprintf(o.Log, "block write-pattern seq_write qd=8: %.4g MiB/s\n", median(runs))
	// Under seq_write's params, beside the cases it bounds: the same
	// bytes the 1 MiB writes of fio's job make.
	return []Result{newResult("block", "write-pattern", map[string]any{"qd": 8, "bs": "1M"}, "seq_write", "MiB/s", runs)}, nil
}
