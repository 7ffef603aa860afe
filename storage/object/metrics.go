package object

import (
	"sync/atomic"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/store"
)

// throughput counts the object data this node wrote and served, for
// rackstack_storage_{read,written}_bytes_total.
type throughput struct {
	read, written atomic.Int64
}

var (
	descReadBytes    = prometheus.NewDesc("rackstack_storage_read_bytes_total", "Object data this node served to readers (Swift, S3, images).", nil, nil)
	descDirectRead   = prometheus.NewDesc("rackstack_storage_direct_read_bytes_total", "Shard bytes this node's object reads took from its own disks with direct I/O, past the page cache (reads that start while other transfers hold the node's buffers).", nil, nil)
	descWrittenBytes = prometheus.NewDesc("rackstack_storage_written_bytes_total", "Object data this node stored for writers, before erasure coding.", nil, nil)
	descHealQueue    = prometheus.NewDesc("rackstack_storage_heal_queue", "Blobs found damaged and waiting for the healer (cluster-wide, from the replicated state).", nil, nil)
	descHealBackoff  = prometheus.NewDesc("rackstack_storage_heal_backoff", "Queued blobs this node's healer failed to rebuild and is waiting on.", nil, nil)
	descHealed       = prometheus.NewDesc("rackstack_storage_healed_shards_total", "Shards this node's healer rebuilt.", nil, nil)
	descHealFailures = prometheus.NewDesc("rackstack_storage_heal_failures_total", "Heal attempts of this node that failed.", nil, nil)
	descMovedParts   = prometheus.NewDesc("rackstack_storage_rebalance_moved_parts_total", "Parts this node's rebalancer moved to where placement wants them.", nil, nil)
	descMovedBytes   = prometheus.NewDesc("rackstack_storage_rebalance_moved_bytes_total", "Bytes this node's rebalancer moved.", nil, nil)
	descLastPass     = prometheus.NewDesc("rackstack_storage_rebalance_last_pass_timestamp_seconds", "When this node's rebalancer last finished a pass (0: never).", nil, nil)
	descScrubbed     = prometheus.NewDesc("rackstack_storage_scrubbed_parts_total", "Parts this node's scrubber checked.", nil, nil)
	descScrubErrors  = prometheus.NewDesc("rackstack_storage_scrub_bad_shards_total", "Bad or missing shards this node's scrubber found.", nil, nil)
	diskLabels       = []string{"disk", "path"}
	descDiskUp       = prometheus.NewDesc("rackstack_storage_disk_up", "1 when the disk is in service, 0 when it is gone (wiped or replaced) or its node is down.", diskLabels, nil)
	descDiskTotal    = prometheus.NewDesc("rackstack_storage_disk_size_bytes", "Size of the filesystem the disk directory is on, as last registered.", diskLabels, nil)
	descDiskFree     = prometheus.NewDesc("rackstack_storage_disk_free_bytes", "Free space of the filesystem the disk directory is on, as last registered.", diskLabels, nil)
	descDiskErrors   = prometheus.NewDesc("rackstack_storage_disk_errors_total", "Failures of the disk since rackd started: shards it could not create, write, open, read or remove, and blocks whose checksum did not match.", diskLabels, nil)
	descDiskState    = prometheus.NewDesc("rackstack_storage_disk_state", "The disk's state, one series per state, 1 for the current one: up (in service), gone (wiped or replaced), node_down (its node does not answer), node_lost (down long enough for its shards to be rebuilt elsewhere).", append(diskLabels, "state"), nil)
	descMisplaced    = prometheus.NewDesc("rackstack_storage_misplaced_parts", "Parts not where placement wants them, as the leader's last repair pass (at least once a minute) found them; only the leader reports it.", nil, nil)
	descDegraded     = prometheus.NewDesc("rackstack_storage_degraded_parts", "Parts with a shard on a gone disk or a lost node, as the leader's last repair pass (at least once a minute) found them; only the leader reports it.", nil, nil)
)

// diskStates are the values of rackstack_storage_disk_state's state label.
var diskStates = []string{"up", "gone", "node_down", "node_lost"}

// Metrics is the collector of the rackstack_storage_* families: this
// node's throughput, loops and disks. It reads counters and the local
// state on each scrape; it never walks the parts of every object (the
// misplaced and degraded counts of Status do, and are not metrics).
type Metrics struct {
	s *Service
	// local reads this node's copy of the state without a round trip.
	local func() *memdb.Txn
}

// Metrics returns the collector; local is the node's local state read.
func (s *Service) Metrics(local func() *memdb.Txn) *Metrics { return &Metrics{s: s, local: local} }

// Describe sends every family's description.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReadBytes, descDirectRead, descWrittenBytes, descHealQueue, descHealBackoff, descHealed, descHealFailures,
		descMovedParts, descMovedBytes, descLastPass, descScrubbed, descScrubErrors, descDiskUp, descDiskTotal, descDiskFree,
		descDiskErrors, descDiskState, descMisplaced, descDegraded} {
		ch <- d
	}
}

// diskState is d's rackstack_storage_disk_state.
func (s *Service) diskState(d *DiskRow) string {
	switch {
	case d.Gone:
		return "gone"
	case s.cfg.NodeLost(d.Node):
		return "node_lost"
	case !s.cfg.NodeUp(d.Node):
		return "node_down"
	}
	return "up"
}

// Collect reads the figures now.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.s
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter(descReadBytes, float64(s.through.read.Load()))
	counter(descWrittenBytes, float64(s.through.written.Load()))
	counter(descDirectRead, float64(s.cfg.Blobs.DirectReadBytes()))
	c := s.Counters()
	counter(descHealed, float64(c.Healed))
	counter(descHealFailures, float64(c.HealFailures))
	counter(descMovedParts, float64(c.Moved))
	counter(descMovedBytes, float64(c.MovedBytes))
	counter(descScrubbed, float64(c.Scrubbed))
	counter(descScrubErrors, float64(c.ScrubErrors))
	gauge(descHealBackoff, float64(len(c.HealBackoff)))
	last := 0.0
	if !c.LastPass.IsZero() {
		last = float64(c.LastPass.UnixMilli()) / 1000
	}
	gauge(descLastPass, last)
	// A former leader's last pass is stale: only the leader reports.
	if p, ok := s.passCounts(); ok && s.cfg.IsLeader() {
		gauge(descMisplaced, float64(p.misplaced))
		gauge(descDegraded, float64(p.degraded))
	}
	errs := s.cfg.Blobs.DiskErrors()
	tx := m.local()
	gauge(descHealQueue, float64(len(store.All[HealItem](tx, tHeal, "id"))))
	for _, d := range store.All[DiskRow](tx, tDisks, "id") {
		if d.Node != s.cfg.Node {
			continue // each node reports its own disks
		}
		up := 0.0
		if !d.Gone && s.cfg.NodeUp(d.Node) {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descDiskUp, prometheus.GaugeValue, up, d.ID, d.Path)
		ch <- prometheus.MustNewConstMetric(descDiskTotal, prometheus.GaugeValue, float64(d.Total), d.ID, d.Path)
		ch <- prometheus.MustNewConstMetric(descDiskFree, prometheus.GaugeValue, float64(d.Free), d.ID, d.Path)
		ch <- prometheus.MustNewConstMetric(descDiskErrors, prometheus.CounterValue, float64(errs[d.ID]), d.ID, d.Path)
		state := s.diskState(d)
		for _, st := range diskStates {
			v := 0.0
			if st == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descDiskState, prometheus.GaugeValue, v, d.ID, d.Path, st)
		}
	}
}
