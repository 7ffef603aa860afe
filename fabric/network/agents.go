package network

import (
	"context"
	"crypto/sha1"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
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
	notes := map[string]string{}
	zoneOf := map[string]string{}
	if len(hosts) > 0 {
		tx, err := s.cfg.Repl.Read(ctx)
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			zoneOf[h.Name] = nodeZone(tx, h.Name)
		}
		for _, n := range store.All[AgentNote](tx, tAgentNotes, "id") {
			notes[n.ID] = n.Description
		}
	}
	out := []map[string]any{}
	for _, h := range hosts {
		for _, k := range s.agentKinds() {
			v := map[string]any{
				"id": agentID(k.typ, h.Name), "agent_type": k.typ, "binary": k.binary, "topic": k.topic, "host": h.Name,
				"admin_state_up": true, "alive": h.Up, "description": notes[agentID(k.typ, h.Name)], "configurations": map[string]any{},
				"created_at": timeSpaced(h.Started), "started_at": timeSpaced(h.Started), "heartbeat_timestamp": timeSpaced(h.LastSeen),
				"resources_synced": nil, "resource_versions": map[string]any{}, "availability_zone": nil,
			}
			if k.typ == "DHCP agent" || k.typ == l3AgentType {
				v["availability_zone"] = zoneOf[h.Name] // as the node's compute
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

// AgentNote is what an admin wrote about an agent (PUT /agents/{id}): its
// description. The agents themselves are parts of the nodes, not rows;
// a note outlives its node's absence and shows again when it is back.
type AgentNote struct {
	ID          string `json:"id"` // the agent's id
	Description string `json:"description"`
}

const tAgentNotes = "network_agent_notes"

func agentNoteTable() store.Table { return store.NewTable(tAgentNotes, &AgentNote{}) }

var agentAttrs = newAttrSpec("description admin_state_up", "", "id agent_type binary topic host alive configurations "+
	"created_at started_at heartbeat_timestamp resources_synced resource_versions availability_zone")

// updateAgent sets an agent's description. admin_state_up stays true: an
// agent here is a part of its node's rackd, which keeps switching,
// answering DHCP and routing for the ports it hosts; there is no
// scheduling it could be taken out of.
func (s *Service) updateAgent(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	views, err := s.agentViews(r.Context(), principal(r))
	if err != nil {
		return err
	}
	var agent map[string]any
	for _, v := range views {
		if v["id"] == id {
			agent = v
		}
	}
	if agent == nil {
		return notFound("agent", id)
	}
	objs, _, err := bodies(r, "agent", "")
	if err != nil {
		return err
	}
	if err := agentAttrs.check(objs[0], http.MethodPut); err != nil {
		return err
	}
	rd := input(objs[0])
	desc := optStr(rd, "description", 255)
	if up := optBool(rd, "admin_state_up", true); rd.Err == nil && up != nil && !*up {
		rd.Fail(badInput("admin_state_up", "an agent here is part of its node's rackd, which serves the ports the node hosts; it cannot be disabled"))
	}
	if rd.Err != nil {
		return rd.Err
	}
	if desc != nil {
		if _, err := api.Propose(r.Context(), s.cfg.Repl, cmdAgentNote, AgentNote{ID: id, Description: *desc}, nil); err != nil {
			return err
		}
		agent["description"] = *desc
	}
	api.JSON(w, http.StatusOK, map[string]any{"agent": agent})
	return nil
}

// applyAgentNote writes an agent's note; an empty description removes it.
func applyAgentNote(tx *memdb.Txn, n AgentNote) (any, error) {
	if n.Description == "" {
		if old := store.Get[AgentNote](tx, tAgentNotes, n.ID); old != nil {
			return nil, tx.Delete(tAgentNotes, old)
		}
		return nil, nil
	}
	return nil, tx.Insert(tAgentNotes, &n)
}
