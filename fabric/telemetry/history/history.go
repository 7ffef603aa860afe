// Package history keeps a short history of selected Prometheus series of
// this node in memory — a bounded ring of points per series, sampled from
// the node's registry — so charts work without an external Prometheus, and
// answers it over HTTP scoped to the caller's project. It reads metrics
// other packages define; it defines none of its own data.
package history

import (
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Defaults: a point every 5 s, an hour of them.
const (
	DefaultStep      = 5 * time.Second
	DefaultPoints    = 720
	DefaultMaxSeries = 20000
)

// Config says what to sample, how often and how much to keep.
type Config struct {
	Gatherer prometheus.Gatherer
	// Families are the metric families kept; the others are not sampled
	// (and the API answers 404 for them). Only counters, gauges and
	// untyped metrics are kept: a histogram has no one value to chart.
	Families []string
	// Step is the time between samples; Points how many a series keeps.
	Step   time.Duration
	Points int
	// MaxSeries bounds memory whatever the label cardinality: series
	// beyond it are not kept until old ones expire.
	MaxSeries int
	Now       func() time.Time
	Log       *slog.Logger
}

// Series is one labelled series of a family, its points oldest first.
type Series struct {
	Family string            `json:"family"`
	Labels map[string]string `json:"labels"`
	Points []Point           `json:"points"`
}

// Sampler samples the registry every Step into a ring per series.
type Sampler struct {
	cfg   Config
	known map[string]bool

	mu      sync.Mutex
	series  map[string]*entry // by family and labels
	dropped int               // series not kept for MaxSeries, since the last log
}

type entry struct {
	family string
	labels map[string]string
	ring   *ring
}

// New returns a sampler; Run starts sampling.
func New(cfg Config) *Sampler {
	if cfg.Step <= 0 {
		cfg.Step = DefaultStep
	}
	if cfg.Points <= 0 {
		cfg.Points = DefaultPoints
	}
	if cfg.MaxSeries <= 0 {
		cfg.MaxSeries = DefaultMaxSeries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sampler{cfg: cfg, known: map[string]bool{}, series: map[string]*entry{}}
	for _, f := range cfg.Families {
		s.known[f] = true
	}
	return s
}

// Step is the time between two points.
func (s *Sampler) Step() time.Duration { return s.cfg.Step }

// Run samples at once and then every Step until ctx ends.
func (s *Sampler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Step)
	defer t.Stop()
	for {
		if err := s.Sample(); err != nil {
			s.cfg.Log.Warn("telemetry history: sample", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample takes one point of every kept series now. A series that stops
// being reported (a deleted server's) keeps its points until the newest
// is older than the whole window, then goes.
func (s *Sampler) Sample() error {
	mfs, err := s.cfg.Gatherer.Gather()
	now := s.cfg.Now()
	t := float64(now.UnixMilli()) / 1000
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		if !s.known[name] {
			continue
		}
		for _, m := range mf.GetMetric() {
			v, ok := value(mf.GetType(), m)
			if !ok {
				continue
			}
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			k := key(name, labels)
			seen[k] = true
			e := s.series[k]
			if e == nil {
				if len(s.series) >= s.cfg.MaxSeries {
					s.dropped++
					continue
				}
				e = &entry{family: name, labels: labels, ring: newRing(s.cfg.Points)}
				s.series[k] = e
			}
			e.ring.add(Point{t, v})
		}
	}
	window := float64(s.cfg.Points) * s.cfg.Step.Seconds()
	for k, e := range s.series {
		if seen[k] {
			continue
		}
		if p, ok := e.ring.last(); !ok || t-p[0] > window {
			delete(s.series, k)
		}
	}
	if s.dropped > 0 {
		s.cfg.Log.Warn("telemetry history: series limit reached; new series are not kept", "max_series", s.cfg.MaxSeries, "dropped", s.dropped)
		s.dropped = 0
	}
	// Gather returns what it could alongside a collector's error: keep
	// that, and say what failed.
	return err
}

func value(t dto.MetricType, m *dto.Metric) (float64, bool) {
	switch t {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), true
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), true
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue(), true
	}
	return 0, false
}

// key identifies a series: its family and its labels in name order.
func key(family string, labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(family)
	for _, n := range names {
		b.WriteString("\x00")
		b.WriteString(n)
		b.WriteString("=")
		b.WriteString(labels[n])
	}
	return b.String()
}

// Known reports whether family is sampled.
func (s *Sampler) Known(family string) bool { return s.known[family] }

// Families lists the sampled families, sorted.
func (s *Sampler) Families() []string {
	out := make([]string, 0, len(s.known))
	for f := range s.known {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// Query returns the series of family whose labels hold every pair of
// match, sorted by labels.
func (s *Sampler) Query(family string, match map[string]string) []Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Series
	for _, e := range s.series {
		if e.family != family || !matches(e.labels, match) {
			continue
		}
		out = append(out, Series{Family: family, Labels: maps(e.labels), Points: e.ring.points()})
	}
	sortSeries(out)
	return out
}

func matches(labels, match map[string]string) bool {
	for n, v := range match {
		if labels[n] != v {
			return false
		}
	}
	return true
}

func maps(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func sortSeries(ss []Series) {
	sort.Slice(ss, func(i, j int) bool { return key(ss[i].Family, ss[i].Labels) < key(ss[j].Family, ss[j].Labels) })
}
