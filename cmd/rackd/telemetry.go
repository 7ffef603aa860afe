package main

import (
	"context"
	"log/slog"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/telemetry/history"
	"github.com/rackstack/rackstack/node/instances"
)

// historyFamilies are the series the in-memory history keeps: what the
// web console charts.
func historyFamilies() []string {
	return []string{
		"rackstack_instance_cpu_seconds_total",
		"rackstack_instance_memory_bytes",
		"rackstack_instance_network_receive_bytes_total",
		"rackstack_instance_network_transmit_bytes_total",
		"rackstack_instance_network_receive_packets_total",
		"rackstack_instance_network_transmit_packets_total",
		"rackstack_instance_disk_read_bytes_total",
		"rackstack_instance_disk_write_bytes_total",
	}
}

// openTelemetry registers this node's telemetry collectors on reg, serves
// the metric history on the API router and the peer port, and returns
// what samples it (run it in the node's errgroup).
func openTelemetry(o *options, node *cluster.Node, auth api.Authenticator, reg *prometheus.Registry, r chi.Router, vmAgent *instances.Agent, log *slog.Logger) func(context.Context) error {
	if vmAgent != nil {
		reg.MustRegister(vmAgent.Metrics())
	}
	sampler := history.New(history.Config{Gatherer: reg, Families: historyFamilies(), Step: o.HistoryStep, Log: log})
	h := &history.Handler{Sampler: sampler, Node: o.Name, Peers: historyPeers{node}, Log: log}
	node.HandlePeer(history.PeerPath, h.PeerHandler())
	r.With(api.RequireAuth(auth, api.JSONError)).Get("/rackstack/v1/history", h.ServeHTTP)
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
