package network

import (
	"context"
	"crypto/sha1"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/fabric/api"
)

// Neutron's agents are, here, parts of each node's rackd: its dataplane
// switches (the "Open vSwitch agent" of ML2/OVS), answers DHCP and, where
// the dataplane forwards for routers, routes, NATs and relays metadata.
// An agent is alive while its node heartbeats.

// Agents lists the cluster's nodes.
type Agents interface {
	AgentHosts(ctx context.Context) ([]AgentHost, error)
}

// AgentHost is a node as the agents API shows it.
type AgentHost struct {
	Name     string
	Up       bool // heartbeating now
	LastSeen time.Time
	Started  time.Time
}

// agentKind is one kind of agent every node runs.
type agentKind struct{ typ, binary, topic string }

func (s *Service) agentKinds() []agentKind {
	kinds := []agentKind{
		{"Open vSwitch agent", "rackd-dataplane", "N/A"},
		{"DHCP agent", "rackd-dhcp", "dhcp_agent"},
	}
	if s.cfg.Forwarding {
		kinds = append(kinds, agentKind{l3AgentType, "rackd-l3", "l3_agent"}, agentKind{"Metadata agent", "rackd-metadata", "N/A"})
	}
	return kinds
}

// agentID is an agent's stable UUID, made from its kind and node.
func agentID(typ, host string) string {
	sum := sha1.Sum([]byte("rackstack-agent:" + typ + ":" + host))
	sum[6] = (sum[6] & 0x0f) | 0x50
	sum[8] = (sum[8] & 0x3f) | 0x80
	h := fmt.Sprintf("%x", sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// agentViews are the agents the caller may see: as in Neutron's policy,
// only admins see any.
func (s *Service) agentViews(ctx context.Context, p *api.Principal) ([]map[string]any, error) {
	var hosts []AgentHost
	if s.cfg.Agents != nil && p.IsAdmin() {
		var err error
		if hosts, err = s.cfg.Agents.AgentHosts(ctx); err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Name < hosts[j].Name })
	out := []map[string]any{}
	for _, h := range hosts {
		for _, k := range s.agentKinds() {
			v := map[string]any{
				"id": agentID(k.typ, h.Name), "agent_type": k.typ, "binary": k.binary, "topic": k.topic, "host": h.Name,
				"admin_state_up": true, "alive": h.Up, "description": "", "configurations": map[string]any{},
				"created_at": timeSpaced(h.Started), "started_at": timeSpaced(h.Started), "heartbeat_timestamp": timeSpaced(h.LastSeen),
				"resources_synced": nil, "resource_versions": map[string]any{}, "availability_zone": nil,
			}
			if k.typ == "DHCP agent" || k.typ == l3AgentType {
				v["availability_zone"] = "nova"
			}
			if k.typ == l3AgentType {
				// Each node routes only for its own ports, SNAT included:
				// Neutron's "dvr" mode, with no central dvr_snat agent.
				v["configurations"] = map[string]any{"agent_mode": "dvr"}
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// timeSpaced is how Neutron shows an agent's times.
func timeSpaced(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

func (s *Service) listAgents(w http.ResponseWriter, r *http.Request) error {
	views, err := s.agentViews(r.Context(), principal(r))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out := []map[string]any{}
	for _, v := range views {
		keep := true
		for _, f := range []string{"agent_type", "host", "binary", "topic"} {
			if want, ok := q[f]; ok && !api.MatchValue(v[f], want) {
				keep = false
			}
		}
		if want, ok := q["alive"]; ok && !api.MatchValue(v["alive"], want) {
			keep = false
		}
		if keep {
			out = append(out, v)
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"agents": out})
	return nil
}

func (s *Service) showAgent(w http.ResponseWriter, r *http.Request) error {
	views, err := s.agentViews(r.Context(), principal(r))
	if err != nil {
		return err
	}
	id := chi.URLParam(r, "id")
	for _, v := range views {
		if v["id"] == id {
			api.JSON(w, http.StatusOK, map[string]any{"agent": v})
			return nil
		}
	}
	return notFound("agent", id)
}
