package network

import (
	"context"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"
	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/store"
)

// Neutron's DHCP agent scheduler (dhcp_agent_scheduler). Every node's DHCP
// agent answers the ports that node hosts, so by default each hosts every
// network with a DHCP-enabled subnet; an admin may remove a network from
// one node's agent (that node stops answering DHCP for the network's
// ports) or add it back, and add a network without such a subnet.

const dhcpAgentType = "DHCP agent"

// hasDHCPSubnet says whether a subnet of the network has DHCP enabled.
func hasDHCPSubnet(tx *memdb.Txn, network string) bool {
	for _, sn := range store.All[Subnet](tx, tSubnets, "network", network) {
		if sn.EnableDHCP {
			return true
		}
	}
	return false
}

// agentOfType finds the agent id of type typ among the caller's agents;
// its host is the node.
func (s *Service) agentOfType(ctx context.Context, p *api.Principal, id, typ string) (map[string]any, error) {
	views, err := s.agentViews(ctx, p)
	if err != nil {
		return nil, err
	}
	for _, v := range views {
		if v["id"] == id && v["agent_type"] == typ {
			return v, nil
		}
	}
	return nil, notFound("agent", id)
}

// writeAgentsOn answers the caller's agents of type typ whose host on
// says yes to.
func (s *Service) writeAgentsOn(w http.ResponseWriter, r *http.Request, typ string, on func(host string) bool) error {
	views, err := s.agentViews(r.Context(), principal(r))
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, v := range views {
		if v["agent_type"] == typ && on(v["host"].(string)) {
			out = append(out, v)
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"agents": out})
	return nil
}

// networkDHCPAgents lists the DHCP agents hosting the network {id}.
func (s *Service) networkDHCPAgents(w http.ResponseWriter, r *http.Request) error {
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	n, err := s.networks(tx).Get(tx, principal(r), chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	dhcp := hasDHCPSubnet(tx, n.ID)
	return s.writeAgentsOn(w, r, dhcpAgentType, func(host string) bool { return n.DHCPHostedOn(host, dhcp) })
}

// agentDHCPNetworks lists the networks the DHCP agent {id} hosts.
func (s *Service) agentDHCPNetworks(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	agent, err := s.agentOfType(r.Context(), p, chi.URLParam(r, "id"), dhcpAgentType)
	if err != nil {
		return err
	}
	tx, err := s.cfg.Repl.Read(r.Context())
	if err != nil {
		return err
	}
	host := agent["host"].(string)
	out := []api.View{}
	for _, n := range store.All[Network](tx, tNetworks, "id") {
		if n.DHCPHostedOn(host, hasDHCPSubnet(tx, n.ID)) {
			out = append(out, s.networkView(tx, p, n))
		}
	}
	api.JSON(w, http.StatusOK, map[string]any{"networks": out})
	return nil
}

// hostDHCPNetwork adds the body's network_id to the DHCP agent {id}.
func (s *Service) hostDHCPNetwork(w http.ResponseWriter, r *http.Request) error {
	var body map[string]any
	if err := api.DecodeLoose(r, &body); err != nil {
		return err
	}
	rd := input(body)
	id := rd.Str("network_id", "", 64)
	if rd.Err != nil {
		return rd.Err
	}
	if id == "" {
		return badInput("network_id", "'network_id' is a required property")
	}
	if err := s.proposeDHCPHosting(r, id, true); err != nil {
		return err
	}
	// Neutron answers with the JSON null its scheduler returns, and
	// clients decode the body (openstacksdk's add_agent_to_network).
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, err := w.Write([]byte("null"))
	return err
}

// unhostDHCPNetwork removes the network {network_id} from the DHCP agent
// {id}.
func (s *Service) unhostDHCPNetwork(w http.ResponseWriter, r *http.Request) error {
	if err := s.proposeDHCPHosting(r, chi.URLParam(r, "network_id"), false); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) proposeDHCPHosting(r *http.Request, network string, host bool) error {
	agent, err := s.agentOfType(r.Context(), principal(r), chi.URLParam(r, "id"), dhcpAgentType)
	if err != nil {
		return err
	}
	c := dhcpHostingCmd{NetworkID: network, Agent: agent["id"].(string), Node: agent["host"].(string), Host: host}
	_, err = api.Propose(r.Context(), s.cfg.Repl, cmdDHCPHosting, c, nil)
	return err
}

// dhcpHostingCmd adds (Host) or removes a network to or from Node's DHCP
// agent.
type dhcpHostingCmd struct {
	NetworkID string `json:"network_id"`
	Agent     string `json:"agent"` // its id, for errors
	Node      string `json:"node"`
	Host      bool   `json:"host"`
}

// applyDHCPHosting changes the network's hosting; hosting is not one of
// its standard attributes, so neither its revision nor updated_at moves.
func applyDHCPHosting(tx *memdb.Txn, c dhcpHostingCmd) (any, error) {
	old := store.Get[Network](tx, tNetworks, c.NetworkID)
	if old == nil {
		return nil, notFound("network", c.NetworkID)
	}
	dhcp := hasDHCPSubnet(tx, old.ID)
	hosted := old.DHCPHostedOn(c.Node, dhcp)
	switch {
	case c.Host && hosted:
		return nil, store.Fault(store.KindConflict, "NetworkHostedByDHCPAgent", "The network %s has been already hosted by the DHCP Agent %s.", c.NetworkID, c.Agent)
	case !c.Host && !hosted:
		return nil, store.Fault(store.KindConflict, "NetworkNotHostedByDhcpAgent", "The network %s is not hosted by the DHCP agent %s.", c.NetworkID, c.Agent)
	}
	n := *old
	without := func(list []string) []string {
		out := slices.DeleteFunc(slices.Clone(list), func(x string) bool { return x == c.Node })
		if len(out) == 0 {
			return nil
		}
		return out
	}
	n.DHCPOn, n.DHCPOff = without(n.DHCPOn), without(n.DHCPOff)
	switch {
	case c.Host && !n.DHCPHostedOn(c.Node, dhcp):
		n.DHCPOn = append(n.DHCPOn, c.Node)
	case !c.Host && n.DHCPHostedOn(c.Node, dhcp):
		n.DHCPOff = append(n.DHCPOff, c.Node)
	}
	return nil, tx.Insert(tNetworks, &n)
}
