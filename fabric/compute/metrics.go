package compute

import (
	"context"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	nodeLabels          = []string{"node"}
	descNodeVCPUs       = prometheus.NewDesc("rackstack_node_vcpus", "vCPUs this node offers to guests (its CPUs).", nodeLabels, nil)
	descNodeVCPUsAlloc  = prometheus.NewDesc("rackstack_node_vcpus_allocated", "vCPUs the flavors of the servers placed on this node claim.", nodeLabels, nil)
	descNodeMemory      = prometheus.NewDesc("rackstack_node_memory_bytes", "Memory this node offers to guests.", nodeLabels, nil)
	descNodeMemoryAlloc = prometheus.NewDesc("rackstack_node_memory_allocated_bytes", "Memory the flavors of the servers placed on this node claim.", nodeLabels, nil)
	descNodeDisk        = prometheus.NewDesc("rackstack_node_disk_bytes", "Local disk this node offers.", nodeLabels, nil)
	descNodeDiskAlloc   = prometheus.NewDesc("rackstack_node_disk_allocated_bytes", "Disk the servers placed on this node claim (root, ephemeral and swap).", nodeLabels, nil)
	descNodeInstances   = prometheus.NewDesc("rackstack_node_instances", "Servers placed on this node (virtual machines, not bare-metal).", nodeLabels, nil)
)

// NodeMetrics collects the rackstack_node_* capacity and allocation of
// one node (each node reports its own), as the hypervisors API computes
// them, from the local copy of the state on each scrape.
type NodeMetrics struct {
	s     *Service
	node  string
	local func() *memdb.Txn
}

// NodeMetrics returns the collector of node's capacity and allocation.
func (s *Service) NodeMetrics(node string, local func() *memdb.Txn) *NodeMetrics {
	return &NodeMetrics{s: s, node: node, local: local}
}

// Describe sends every family's description.
func (m *NodeMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeVCPUs, descNodeVCPUsAlloc, descNodeMemory, descNodeMemoryAlloc, descNodeDisk, descNodeDiskAlloc, descNodeInstances} {
		ch <- d
	}
}

// Collect reads the figures now.
func (m *NodeMetrics) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, m.node)
	}
	if m.s.cfg.Hosts != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		hosts, err := m.s.cfg.Hosts.Hosts(ctx)
		cancel()
		if err == nil {
			for _, h := range hosts {
				if h.Name == m.node {
					gauge(descNodeVCPUs, float64(h.VCPUs))
					gauge(descNodeMemory, float64(h.MemoryMB)*(1<<20))
					gauge(descNodeDisk, float64(h.DiskGB)*(1<<30))
				}
			}
		}
	}
	u := usageOn(m.local(), m.node)
	gauge(descNodeVCPUsAlloc, float64(u.vcpus))
	gauge(descNodeMemoryAlloc, float64(u.ram)*(1<<20))
	gauge(descNodeDiskAlloc, float64(u.disk)*(1<<30))
	gauge(descNodeInstances, float64(len(u.servers)))
}
