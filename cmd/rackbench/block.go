package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The block suite: a rackd volume exported over NBD, beside the raw disk
// (O_DIRECT) and nbdkit's file plugin (a reference NBD server) on the same
// disk, each driven by the same fio jobs: sequential 1 MiB read and write
// (MiB/s) and 4 KiB random read and write (IOPS) at queue depths 1 and 32.

// blockBenchSize is the volume and file every case works on, written whole
// first so reads never hit a hole.
const blockBenchSize = 512 * mib

type fioJob struct {
	metric string // seq_read, seq_write, randread_iops, randwrite_iops
	rw     string
	bs     string
	qd     int
}

var blockJobs = []fioJob{
	{"seq_write", "write", "1M", 8},
	{"seq_read", "read", "1M", 8},
	{"randread_iops", "randread", "4k", 1},
	{"randread_iops", "randread", "4k", 32},
	{"randwrite_iops", "randwrite", "4k", 1},
	{"randwrite_iops", "randwrite", "4k", 32},
}

// fioTarget is how fio reaches one case.
type fioTarget struct {
	name string
	args []string      // engine and target
	prof *caseProfiler // rackd's CPU profile of each run (--profile), or nil
	pid  int           // rackd's process, whose CPU per MiB written is measured; 0: none
	jobs []fioJob      // the jobs run against it; nil: blockJobs
	// filled says an earlier target already wrote its file whole.
	filled bool
}

func (tg fioTarget) jobList() []fioJob {
	if tg.jobs != nil {
		return tg.jobs
	}
	return blockJobs
}

func blockSuite(ctx context.Context, o options) ([]Result, error) {
	for _, c := range []string{"fio", "nbdkit"} {
		if _, err := exec.LookPath(c); err != nil {
			return nil, fmt.Errorf("%w: %s is not installed (make deps)", errNeed, c)
		}
	}
	dir, err := os.MkdirTemp("", "rackbench-block")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	p, _, err := startStorageNode(o, dir)
	if err != nil {
		return nil, fmt.Errorf("start rackd: %w", err)
	}
	defer p.kill()
	pw, err := readPassword(p.dataDir)
	if err != nil {
		return nil, err
	}
	tok, err := adminToken(p.url(), pw)
	if err != nil {
		return nil, err
	}
	if code, _, err := post(p.url()+"/rackstack/v1/volumes", tok, map[string]any{"id": "bench", "size": blockBenchSize}, nil); err != nil || code != 201 {
		return nil, fmt.Errorf("create volume: HTTP %d %v", code, err)
	}
	var ex struct {
		UnixURI string `json:"unix_uri"`
	}
	if code, _, err := post(p.url()+"/rackstack/v1/volumes/bench/export", tok, nil, &ex); err != nil || code != 200 || ex.UnixURI == "" {
		return nil, fmt.Errorf("export volume: HTTP %d %v (unix URI %q)", code, err, ex.UnixURI)
	}

	file := filepath.Join(dir, "nbdkit.img")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		return nil, err
	}
	if err := os.Truncate(file, blockBenchSize); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "nbdkit.sock")
	nbdkit := exec.CommandContext(ctx, "nbdkit", "--foreground", "--unix", sock, "file", "file="+file, "cache=none")
	nbdkit.Stderr = o.Log
	if err := nbdkit.Start(); err != nil {
		return nil, fmt.Errorf("start nbdkit: %w", err)
	}
	defer func() { nbdkit.Process.Kill(); nbdkit.Wait() }()
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		} else if i == 100 {
			return nil, fmt.Errorf("nbdkit did not create %s", sock)
		}
		time.Sleep(50 * time.Millisecond)
	}

	raw := filepath.Join(dir, "raw.img")
	var prof *caseProfiler
	if o.Profile != "" {
		if prof, err = newCaseProfiler(o.Profile, p); err != nil {
			return nil, err
		}
	}
	targets := []fioTarget{
		// Over the export's unix socket, as QEMU on the node attaches a
		// volume and as nbdkit-file is read: over loopback TCP the
		// kernel's TCP path is charged to rackd's reply writes (writev
		// was 37% of its CPU at QD32), a cost nbdkit-file did not pay.
		{name: "rackstack", args: []string{"--ioengine=nbd", "--uri=" + ex.UnixURI}, prof: prof, pid: p.cmd.Process.Pid},
		{name: "raw-disk", args: []string{"--ioengine=libaio", "--direct=1", "--filename=" + raw}},
		{name: "nbdkit-file", args: []string{"--ioengine=nbd", "--uri=nbd+unix:///?socket=" + sock}},
		// The raw disk when its writes are made durable as they come
		// (an fdatasync every 32 MiB, about what one flush of a
		// sequential volume writer holds), as a store that keeps a
		// write path durable flush by flush must: where the host
		// caches the disk's writes, raw-disk's rate is that cache's,
		// and this one the disk's. Its file is raw-disk's, filled
		// already.
		{name: "raw-disk-durable", args: []string{"--ioengine=libaio", "--direct=1", "--filename=" + raw, "--fdatasync=32"}, jobs: blockJobs[:1], filled: true},
	}
	targets, pattern := selectBlockCases(targets, o.Cases)
	var out []Result
	steps := 0
	if pattern {
		steps = o.Runs // the write pattern's runs
	}
	for _, tg := range targets {
		steps += len(tg.jobList()) * o.Runs
	}
	prog := newProgress(o, steps)
	defer prog.done()
	for _, tg := range targets {
		rs, err := fioCases(ctx, o, tg, blockBenchSize, map[string]any{}, prog)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	if pattern {
		rs, err := writePatternCase(ctx, o, dir, prog)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	printBlockGoals(o.Log, out)
	if hwm, err := vmHWM(p.cmd.Process.Pid); err == nil {
		out = append(out, newResult("block", "rackstack", map[string]any{"volume": "512MiB"}, "rackd_peak_rss", "MiB", []float64{hwm}))
	}
	return out, nil
}

// selectBlockCases keeps the targets (and the write-pattern case) that
// --cases names, and of their jobs those whose metric it names (e.g.
// "rackstack,raw-disk,write-pattern,seq_write": an A/B run of the
// sequential writer alone). Empty: everything.
func selectBlockCases(targets []fioTarget, cases string) ([]fioTarget, bool) {
	if cases == "" {
		return targets, true
	}
	names, metrics := map[string]bool{}, map[string]bool{}
	for _, c := range strings.Split(cases, ",") {
		if slices.ContainsFunc(blockJobs, func(j fioJob) bool { return j.metric == c }) {
			metrics[c] = true
		} else {
			names[c] = true
		}
	}
	var out []fioTarget
	for _, tg := range targets {
		if len(names) > 0 && !names[tg.name] {
			continue
		}
		if len(metrics) > 0 {
			var jobs []fioJob
			for _, j := range tg.jobList() {
				if metrics[j.metric] {
					jobs = append(jobs, j)
				}
			}
			if len(jobs) == 0 {
				continue
			}
			tg.jobs = jobs
		}
		out = append(out, tg)
	}
	return out, len(names) == 0 || names["write-pattern"]
}

// fioCases fills tg's first size bytes (so that reads read data, not
// holes), then runs each of its jobs o.Runs times against it: the
// block suite's cases for one target, reported under tg.name with params
// and the job's qd and bs.
func fioCases(ctx context.Context, o options, tg fioTarget, size int64, params map[string]any, prog *progress) ([]Result, error) {
	if !tg.filled {
		if _, _, err := runFio(ctx, tg, fioJob{rw: "write", bs: "1M", qd: 8}, size, 0); err != nil {
			return nil, fmt.Errorf("%s: fill: %w", tg.name, err)
		}
	}
	var out []Result
	for _, j := range tg.jobList() {
		var runs, cpu, client []float64
		for r := range o.Runs {
			prog.start(fmt.Sprintf("%s %s qd=%d run %d", tg.name, j.metric, j.qd, r+1))
			profiled := tg.prof.start(ctx, fmt.Sprintf("%s-%s-qd%d-run%d", tg.name, j.metric, j.qd, r+1), o.Duration)
			before, cerr := cpuTime(tg.pid)
			v, fioCPU, err := runFio(ctx, tg, j, size, o.Duration)
			after, cerr2 := cpuTime(tg.pid)
			profiled()
			if err != nil {
				return nil, fmt.Errorf("%s %s qd %d: %w", tg.name, j.rw, j.qd, err)
			}
			runs = append(runs, v)
			if j.metric == "seq_write" && v > 0 {
				mib := v * o.Duration.Seconds()
				if tg.pid > 0 && cerr == nil && cerr2 == nil {
					cpu = append(cpu, (after-before).Seconds()*1000/mib)
				}
				client = append(client, fioCPU.Seconds()*1000/mib)
			}
		}
		if len(cpu) > 0 {
			// rackd's CPU per MiB written: what the write path costs
			// whatever else the machine runs, which the MiB/s of a
			// loaded machine do not show.
			fmt.Fprintf(o.Log, "block %s rackd_cpu_per_mib qd=%d: %.3g ms/MiB\n", tg.name, j.qd, median(cpu))
			out = append(out, newResult("block", tg.name, map[string]any{"qd": j.qd, "bs": j.bs}, "rackd_cpu_per_mib", "ms/MiB", cpu))
		}
		ps := map[string]any{"qd": j.qd, "bs": j.bs}
		for k, v := range params {
			ps[k] = v
		}
		if len(client) > 0 {
			// fio's own CPU per MiB (the NBD client's, for an export):
			// with rackd's, how much of the machine's two cores a
			// rate needs.
			fmt.Fprintf(o.Log, "block %s client_cpu_per_mib qd=%d: %.3g ms/MiB\n", tg.name, j.qd, median(client))
			out = append(out, newResult("block", tg.name, ps, "client_cpu_per_mib", "ms/MiB", client))
		}
		unit := "IOPS"
		if j.bs == "1M" {
			unit = "MiB/s"
		}
		fmt.Fprintf(o.Log, "block %s %s qd=%d: %.4g %s\n", tg.name, j.metric, j.qd, median(runs), unit)
		out = append(out, newResult("block", tg.name, ps, j.metric, unit, runs))
	}
	return out, nil
}

// runFio runs one fio job against the first size bytes of a target: for
// d (time based), or once over them when d is 0. It returns MiB/s for 1 MiB blocks and
// IOPS for the others, and the CPU time (user and system) fio used.
func runFio(ctx context.Context, tg fioTarget, j fioJob, size int64, d time.Duration) (float64, time.Duration, error) {
	args := append([]string{
		"--name=bench", "--output-format=json", "--rw=" + j.rw, "--bs=" + j.bs,
		"--iodepth=" + strconv.Itoa(j.qd), "--size=" + strconv.FormatInt(size, 10), "--end_fsync=1",
		"--randrepeat=0",
	}, tg.args...)
	if d > 0 {
		args = append(args, "--time_based", "--runtime="+strconv.Itoa(int(d.Seconds()+0.5))+"s")
	}
	cmd := exec.CommandContext(ctx, "fio", args...)
	raw, err := cmd.Output()
	if err != nil {
		return 0, 0, fmt.Errorf("fio %v: %w", args, err)
	}
	v, err := parseFio(raw, j)
	return v, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), err
}

// parseFio reads fio's JSON output: MiB/s for 1 MiB blocks, IOPS for the
// others.
func parseFio(raw []byte, j fioJob) (float64, error) {
	var res struct {
		Jobs []struct {
			Read  struct{ BW, IOPS float64 } `json:"read"`
			Write struct{ BW, IOPS float64 } `json:"write"`
		} `json:"jobs"`
	}
	// fio prints notes ("fio: file hash not empty on exit") before the
	// JSON document on the same stream.
	if i := bytes.IndexByte(raw, '{'); i > 0 {
		raw = raw[i:]
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Jobs) != 1 {
		return 0, fmt.Errorf("decode fio output: %v (%d jobs)", err, len(res.Jobs))
	}
	s := res.Jobs[0].Read
	if j.rw == "write" || j.rw == "randwrite" {
		s = res.Jobs[0].Write
	}
	if j.bs == "1M" {
		return s.BW / 1024, nil // fio's bw is KiB/s
	}
	return s.IOPS, nil
}

// cpuTime is the CPU time (user and system) process pid has used so far.
func cpuTime(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, nil
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(raw)
}

// parseStatCPU reads utime and stime from a /proc/PID/stat line.
func parseStatCPU(raw []byte) (time.Duration, error) {
	// The command name, in parentheses, may hold spaces and parentheses:
	// counted from the state after its last ')', utime and stime are the
	// 12th and 13th fields.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat: no command name")
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat: %d fields", len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse stat: %w", errors.Join(err1, err2))
	}
	// Clock ticks of USER_HZ, 100 a second on every Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
