package main

import (
	"context"
	"log/slog"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/events"
	"github.com/rackstack/rackstack/fabric/telemetry/history"
	"github.com/rackstack/rackstack/node/conductor"
	"github.com/rackstack/rackstack/node/instances"
	"github.com/rackstack/rackstack/storage/object"
)

// historyFamilies are the series the in-memory history keeps: what the
// web console charts (instances, cluster capacity, storage throughput).
func historyFamilies() []string {
	return []string{
		"rackstack_instance_cpu_seconds_total",
		"rackstack_instance_memory_bytes",
		"rackstack_instance_network_receive_bytes_total",
		"rackstack_instance_network_transmit_bytes_total",
		"rackstack_instance_network_receive_packets_total",
		"rackstack_instance_network_transmit_packets_total",
		"rackstack_instance_network_receive_drops_total",
		"rackstack_instance_network_transmit_drops_total",
		"rackstack_instance_disk_read_bytes_total",
		"rackstack_instance_disk_write_bytes_total",
		"rackstack_node_vcpus",
		"rackstack_node_vcpus_allocated",
		"rackstack_node_memory_bytes",
		"rackstack_node_memory_allocated_bytes",
		"rackstack_node_disk_bytes",
		"rackstack_node_disk_allocated_bytes",
		"rackstack_node_instances",
		"rackstack_storage_read_bytes_total",
		"rackstack_storage_written_bytes_total",
		"rackstack_storage_heal_queue",
		"rackstack_storage_rebalance_moved_bytes_total",
		"rackstack_dataplane_drops_total",
	}
}

// telemetrySources are the services whose figures this node exports; nil
// ones do not run here.
type telemetrySources struct {
	instances *instances.Agent
	compute   *compute.Service
	objects   *object.Service
	dataplane *dataplane.Dataplane
	conductor *conductor.Conductor
}

// openTelemetry registers this node's collectors on reg, serves the
// metric history on the API router and the peer port and the event log on
// the API router, and returns what samples the history (run it in the
// node's errgroup).
func openTelemetry(o *options, node *cluster.Node, auth api.Authenticator, reg *prometheus.Registry, r chi.Router, src telemetrySources, log *slog.Logger) func(context.Context) error {
	if src.instances != nil {
		reg.MustRegister(src.instances.Metrics())
	}
	if src.compute != nil {
		reg.MustRegister(src.compute.NodeMetrics(o.Name, node.Local))
	}
	if src.objects != nil {
		reg.MustRegister(src.objects.Metrics(node.Local))
	}
	if src.dataplane != nil {
		reg.MustRegister(src.dataplane.Metrics())
	}
	if src.conductor != nil {
		reg.MustRegister(src.conductor.Metrics(node.Local))
	}
	sampler := history.New(history.Config{Gatherer: reg, Families: historyFamilies(), Step: o.HistoryStep, Log: log})
	h := &history.Handler{Sampler: sampler, Node: o.Name, Peers: historyPeers{node}, Log: log}
	node.HandlePeer(history.PeerPath, h.PeerHandler())
	r.With(api.RequireAuth(auth, api.JSONError)).Get("/rackstack/v1/history", h.ServeHTTP)
	r.With(api.RequireAuth(auth, api.JSONError)).Get("/rackstack/v1/events", (&events.Handler{Read: node.Read}).ServeHTTP)
	return sampler.Run
}

// historyPeers lists the other nodes that are up, for a cluster-wide
// history answer.
type historyPeers struct{ *cluster.Node }

func (p historyPeers) Others() ([]string, error) {
	nodes, err := p.Nodes()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		if n.Name != p.Name() && n.Status == "up" {
			out = append(out, n.Name)
		}
	}
	return out, nil
}
