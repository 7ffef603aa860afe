package conductor

import (
	"sync"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
)

var (
	descNodesByState = prometheus.NewDesc("rackstack_provision_nodes", "Bare-metal nodes this rackd conducts, by provision state and whether in maintenance.", []string{"provision_state", "maintenance"}, nil)
	descBMCErrors    = prometheus.NewDesc("rackstack_provision_bmc_errors_total", "BMC sessions of this conductor that failed (could not connect, or a command failed), by driver.", []string{"driver"}, nil)
)

// bmcErrors counts failed BMC sessions by driver.
type bmcErrors struct {
	mu sync.Mutex
	n  map[string]int64
}

func (b *bmcErrors) add(driver string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n == nil {
		b.n = map[string]int64{}
	}
	b.n[driver]++
}

func (b *bmcErrors) snapshot() map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int64, len(b.n))
	for k, v := range b.n {
		out[k] = v
	}
	return out
}

// Metrics collects the rackstack_provision_* families of one conductor on
// each scrape: its nodes by state, from the local copy of the state, and
// its BMC failures.
type Metrics struct {
	c     *Conductor
	local func() *memdb.Txn
}

// Metrics returns the conductor's collector; local is the node's local
// state read.
func (c *Conductor) Metrics(local func() *memdb.Txn) *Metrics { return &Metrics{c: c, local: local} }

// Describe sends every family's description.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- descNodesByState
	ch <- descBMCErrors
}

// Collect reads the figures now.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	type key struct {
		state       string
		maintenance bool
	}
	counts := map[key]int{}
	for _, n := range store.All[bmstate.Node](m.local(), bmstate.NodeTable, "conductor", m.c.Name) {
		counts[key{n.ProvisionState, n.Maintenance}]++
	}
	for k, n := range counts {
		maint := "false"
		if k.maintenance {
			maint = "true"
		}
		ch <- prometheus.MustNewConstMetric(descNodesByState, prometheus.GaugeValue, float64(n), k.state, maint)
	}
	for driver, n := range m.c.bmcErrs.snapshot() {
		ch <- prometheus.MustNewConstMetric(descBMCErrors, prometheus.CounterValue, float64(n), driver)
	}
}
