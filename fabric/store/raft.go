package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// RaftConfig is what Open needs to start the Raft half of a node.
type RaftConfig struct {
	ID        string // server id (the node name)
	DataDir   string // raft/ lives under it
	Transport raft.Transport
	State     *State
	Log       *slog.Logger // raft's own log lines go here (warnings and up); default slog.Default()
	Registry  prometheus.Registerer
	// Tuning for loopback test clusters; zero keeps hashicorp/raft's defaults.
	HeartbeatTimeout  time.Duration
	ElectionTimeout   time.Duration
	SnapshotThreshold uint64
}

// Raft is one node's Raft instance with its FSM and stores.
type Raft struct {
	*raft.Raft
	state *State
	logs  *raftboltdb.BoltStore
	queue chan proposal
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup // batch, watchHalt and watchLeader
	// readyTerm is the term in which this node, as leader, last saw its
	// state catch up with everything committed before it led.
	readyTerm atomic.Uint64
}

// LeaderReady returns once this node, leading, has applied every entry
// committed before its term began: a new leader (or a restarted one) may
// not have applied writes an earlier leader acknowledged, and must not
// serve reads until it has. It costs one barrier entry per term.
func (r *Raft) LeaderReady(timeout time.Duration) error {
	term := r.CurrentTerm()
	if r.readyTerm.Load() == term {
		return nil
	}
	if err := r.Barrier(timeout).Error(); err != nil {
		return err
	}
	r.readyTerm.Store(term)
	return nil
}

// Ready reports whether this node leads and has applied every entry
// committed before its term began, so that a read here is answered without
// waiting. A leader that has just restarted replays the log written since
// its last snapshot before it may serve (thousands of entries, seconds of
// work); until then it knows it leads but every read waits.
func (r *Raft) Ready() bool {
	return r.Raft.State() == raft.Leader && r.readyTerm.Load() == r.CurrentTerm()
}

// watchLeader catches the state up (LeaderReady) as soon as this node
// becomes leader, rather than at the first read, so that Ready turns true
// without traffic and the first clients do not wait for the replay.
func (r *Raft) watchLeader() {
	for {
		select {
		case <-r.LeaderCh():
		case <-r.stop:
			return
		}
		for r.Raft.State() == raft.Leader && !r.Ready() {
			done := make(chan error, 1)
			// The barrier's future ends when the state has caught up, when
			// leadership is lost, or when Raft shuts down (after r.stop).
			go func() { done <- r.LeaderReady(0) }()
			var err error
			select {
			case err = <-done:
			case <-r.stop:
				return
			}
			if err == nil {
				break
			}
			select { // leading, but the barrier failed: try again shortly
			case <-time.After(time.Second):
			case <-r.stop:
				return
			}
		}
	}
}

// proposal is one command waiting for the batcher.
type proposal struct {
	cmd  Command
	done chan proposalReply
}

type proposalReply struct {
	res Result
	err error
}

// maxBatch bounds how many commands share one log entry, and
// maxBatchBytes their bytes (one larger command is an entry of its own), so
// that an entry, which every node holds while it is replicated and applied,
// stays small.
const (
	maxBatch      = 256
	maxBatchBytes = 1 << 20
)

// HasExistingState reports whether dataDir already holds a Raft log.
func HasExistingState(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "raft", "raft.db"))
	return err == nil
}

// openStores opens the bolt log/stable store and the file snapshot store.
func openStores(dataDir string, logOut hclog.Logger) (*raftboltdb.BoltStore, *raft.FileSnapshotStore, error) {
	dir := filepath.Join(dataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create raft dir: %w", err)
	}
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, nil, fmt.Errorf("open raft log %s: %w (is another rackd using this data dir, or is the file corrupt?)", filepath.Join(dir, "raft.db"), err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 3, logOut)
	if err != nil {
		logs.Close()
		return nil, nil, fmt.Errorf("open snapshot store: %w", err)
	}
	return logs, snaps, nil
}

func raftConfig(cfg RaftConfig, out hclog.Logger) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = out
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
		rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout / 2
	}
	if cfg.ElectionTimeout > 0 {
		rc.ElectionTimeout = cfg.ElectionTimeout
	}
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	return rc
}

// OpenRaft starts Raft over the stores in cfg.DataDir. When bootstrap is
// true and the data dir has no state yet, it bootstraps a single-voter
// cluster of this node at advertise.
func OpenRaft(cfg RaftConfig, bootstrap bool, advertise raft.ServerAddress) (*Raft, error) {
	out := RaftLogger(cfg.Log, "raft")
	logs, snaps, err := openStores(cfg.DataDir, out)
	if err != nil {
		return nil, err
	}
	var applyDur *prometheus.HistogramVec
	if cfg.Registry != nil {
		applyDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rackstack_raft_apply_duration_seconds", Help: "Time to apply one command to the state, by command type.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}, []string{"command"})
		cfg.Registry.MustRegister(applyDur)
	}
	fsm := NewFSM(cfg.State, applyDur)
	// Every read of the log goes through the cache from here on, so that
	// each entry is read from bolt once at startup (see logCache).
	cached := newLogCache(logCacheEntries, logCacheBytes, replayWindowBytes, logs)
	if fsm.unawaitedTerm, err = lastTerm(cached); err != nil {
		logs.Close()
		return nil, err
	}
	rc := raftConfig(cfg, out)
	existing, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	if bootstrap && !existing {
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: advertise, Suffrage: raft.Voter}}}
		if err := raft.BootstrapCluster(rc, logs, logs, snaps, cfg.Transport, conf); err != nil {
			logs.Close()
			return nil, fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, fsm, cached, logs, snaps, cfg.Transport)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(raftCollector{r: r, state: cfg.State})
	}
	rf := &Raft{Raft: r, state: cfg.State, logs: logs, queue: make(chan proposal, 4*maxBatch), stop: make(chan struct{})}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	rf.wg.Add(3)
	go func() { defer rf.wg.Done(); rf.batch() }()
	go func() { defer rf.wg.Done(); rf.watchHalt(log) }()
	go func() { defer rf.wg.Done(); rf.watchLeader() }()
	return rf, nil
}

// lastTerm is the term of the last entry of logs, 0 if it has none.
func lastTerm(logs raft.LogStore) (uint64, error) {
	last, err := logs.LastIndex()
	if err != nil || last == 0 {
		return 0, err
	}
	var l raft.Log
	if err := logs.GetLog(last, &l); err != nil {
		return 0, fmt.Errorf("read raft log entry %d: %w", last, err)
	}
	return l.Term, nil
}

// watchHalt reports a halt of the state (see FSM.Apply) and keeps this
// node from leading while halted: a halted leader answers every proposal
// with "outcome unknown", so it hands leadership to a follower that
// applies the log, and tries again should it be elected later.
func (r *Raft) watchHalt(log *slog.Logger) {
	select {
	case <-r.state.HaltedCh():
	case <-r.stop:
		return
	}
	var h *HaltError
	errors.As(r.state.Halted(), &h)
	log.Error("this node stopped applying the Raft log: upgrade rackd here and restart it; until then it serves no reads or writes and reports unhealthy",
		"index", h.Index, "command", h.Command, "reason", h.Reason)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if r.Raft.State() == raft.Leader {
			if err := r.LeadershipTransfer().Error(); err != nil {
				log.Error("halted leader cannot hand over leadership", "err", err)
			} else {
				log.Warn("halted node handed over leadership")
			}
		}
		select {
		case <-tick.C:
		case <-r.stop:
			return
		}
	}
}

// batch groups commands that arrive together into one log entry: under
// load this turns many small appends (each with its own encoding, bolt
// write and replication message) into one, which is where throughput comes
// from on a small machine. A lone command still goes out at once.
func (r *Raft) batch() {
	var next *proposal // taken from the queue, but over the last batch's bytes
	for {
		var first proposal
		if next != nil {
			first, next = *next, nil
		} else {
			select {
			case first = <-r.queue:
			case <-r.stop:
				return
			}
		}
		group := []proposal{first}
		size := len(first.cmd.Body)
	drain:
		for len(group) < maxBatch {
			select {
			case p := <-r.queue:
				if size+len(p.cmd.Body) > maxBatchBytes {
					next = &p
					break drain
				}
				group = append(group, p)
				size += len(p.cmd.Body)
			default:
				break drain
			}
		}
		cmds := make([]Command, len(group))
		for i, p := range group {
			cmds[i] = p.cmd
		}
		data, err := encodeEntry(cmds)
		if err != nil {
			for _, p := range group {
				p.done <- proposalReply{err: err}
			}
			continue
		}
		f := r.Apply(data, 10*time.Second)
		go deliver(f, group)
	}
}

func deliver(f raft.ApplyFuture, group []proposal) {
	if err := f.Error(); err != nil {
		err = applyError(err)
		for _, p := range group {
			p.done <- proposalReply{err: err}
		}
		return
	}
	switch v := f.Response().(type) {
	case Result:
		group[0].done <- proposalReply{res: v}
	case []Result:
		for i, p := range group {
			p.done <- proposalReply{res: v[i]}
		}
	}
}

// Recover rewrites the Raft configuration in dataDir so that this node is
// the only voter. It is for the case where quorum is lost for good; the node
// must not be running.
func Recover(cfg RaftConfig, self raft.ServerAddress) error {
	out := RaftLogger(cfg.Log, "raft")
	logs, snaps, err := openStores(cfg.DataDir, out)
	if err != nil {
		return err
	}
	defer logs.Close()
	rc := raftConfig(cfg, out)
	conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: self, Suffrage: raft.Voter}}}
	return raft.RecoverCluster(rc, NewFSM(cfg.State, nil), logs, logs, snaps, cfg.Transport, conf)
}

// Close shuts Raft down and closes its stores.
func (r *Raft) Close() error {
	var err error
	r.once.Do(func() {
		close(r.stop)
		r.wg.Wait()
		err = r.Raft.Shutdown().Error()
		if cerr := r.logs.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// applyError says what a failed raft.Apply means for its commands.
// Refused before the entry was appended (this node does not lead, or is
// handing leadership over), they certainly are not in the log:
// ErrNotLeader, which proposers retry at the leader. A leader deposed
// while committing, or shut down or restored meanwhile, may have sent the
// entry to the others, and the next leader may commit it: that is
// ErrOutcomeUnknown, never retried (a retry could apply it twice) and
// never undone.
func applyError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		// Never handed to the leader loop: not in the log, but not
		// for another node either.
		return err
	}
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}

// ApplyLocal appends a command on this node, which must be the leader.
// Concurrent calls share log entries. A halted leader appends nothing and
// answers ErrNotLeader, so that proposers retry until it has handed over
// leadership.
func (r *Raft) ApplyLocal(ctx context.Context, cmd Command) (Result, error) {
	if err := r.state.Halted(); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	p := proposal{cmd: cmd, done: make(chan proposalReply, 1)}
	select {
	case r.queue <- p:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-r.stop:
		return Result{}, ErrNotLeader
	}
	select {
	case rep := <-p.done:
		if rep.err != nil && !errors.Is(rep.err, ErrNotLeader) {
			rep.err = fmt.Errorf("apply %s: %w", cmd.Type, rep.err)
		}
		return rep.res, rep.err
	case <-ctx.Done():
		// Queued, the command goes into the log whether or not
		// anyone waits for it.
		return Result{}, fmt.Errorf("apply %s: %w: %w", cmd.Type, ErrOutcomeUnknown, ctx.Err())
	}
}

// WaitApplied blocks until the local state has applied index, or ctx ends,
// or the state halts before reaching it.
func (s *State) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := s.Changed()
		if s.AppliedIndex() >= index {
			return nil
		}
		if err := s.Halted(); err != nil {
			return fmt.Errorf("wait for index %d: %w", index, err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (at %d): %w", index, s.AppliedIndex(), ctx.Err())
		}
	}
}

// raftCollector exports Raft's own stats as Prometheus gauges.
type raftCollector struct {
	r     *raft.Raft
	state *State
}

var (
	descState   = prometheus.NewDesc("rackstack_raft_state", "Raft state of this node (1 for the current one).", []string{"state"}, nil)
	descApplied = prometheus.NewDesc("rackstack_raft_applied_index", "Last log index applied to the state.", nil, nil)
	descCommit  = prometheus.NewDesc("rackstack_raft_commit_index", "Last committed log index known here.", nil, nil)
	descTerm    = prometheus.NewDesc("rackstack_raft_term", "Current Raft term.", nil, nil)
	descHalted  = prometheus.NewDesc("rackstack_state_halted", "1 when this node stopped applying the log at an entry it cannot apply (upgrade rackd).", nil, nil)
)

func (c raftCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descState
	ch <- descApplied
	ch <- descCommit
	ch <- descTerm
	ch <- descHalted
}

func (c raftCollector) Collect(ch chan<- prometheus.Metric) {
	cur := c.r.State()
	for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if s == cur {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, s.String())
	}
	ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(c.r.AppliedIndex()))
	ch <- prometheus.MustNewConstMetric(descCommit, prometheus.GaugeValue, float64(c.r.CommitIndex()))
	var term float64
	if st := c.r.Stats(); st != nil {
		fmt.Sscan(st["term"], &term)
	}
	ch <- prometheus.MustNewConstMetric(descTerm, prometheus.GaugeValue, term)
	halted := 0.0
	if c.state.Halted() != nil {
		halted = 1
	}
	ch <- prometheus.MustNewConstMetric(descHalted, prometheus.GaugeValue, halted)
}
