// Package clusterapi holds the JSON bodies of the cluster API that every
// node serves under /rackstack/v1 and rackctl calls. It is a leaf: it
// imports nothing that drags Raft or the state store into a client, so
// fabric/cluster aliases these types rather than the other way round.
//
// Every call needs an admin token (X-Auth-Token); errors use the Keystone
// error body {"error": {"code", "title", "message"}}.
//
//	GET  /rackstack/v1/cluster/status       -> Status
//	POST   /rackstack/v1/cluster/join-tokens       JoinTokenRequest -> JoinTokenResponse (201)
//	GET    /rackstack/v1/cluster/join-tokens       -> {"join_tokens": [JoinToken...]}
//	DELETE /rackstack/v1/cluster/join-tokens/{id}  (204: the token is revoked)
//	GET  /rackstack/v1/nodes                -> {"nodes": [NodeInfo...]}
//	GET  /rackstack/v1/nodes/{name}         -> {"node": NodeInfo}
//
// POST /rackstack/v1/cluster/join (used by rackd --join, token-authenticated)
// is node-to-node and keeps its types in fabric/cluster.
package clusterapi

import (
	"time"

	"github.com/rackstack/rackstack/node/inventory"
)

// Status describes the Raft cluster as seen by the node that answers.
type Status struct {
	Node         string `json:"node"`   // name of the answering node
	Leader       string `json:"leader"` // name of the leader ("" when there is none)
	Term         uint64 `json:"term"`
	AppliedIndex uint64 `json:"applied_index"` // on the answering node
	CommitIndex  uint64 `json:"commit_index"`
	// Healthy says nothing is wrong: a leader, every voter up, the
	// answering node applying the log. Quorum says writes work: a leader
	// and a majority of voters up (a cluster can be unhealthy with quorum,
	// one voter down). Problems says what is wrong, one line each.
	Healthy  bool     `json:"healthy"`
	Quorum   bool     `json:"quorum"`
	Problems []string `json:"problems,omitempty"`
	// Halted says why the answering node stopped applying the log (an
	// entry from a newer rackd); empty while it applies normally.
	Halted  string   `json:"halted,omitempty"`
	Members []Member `json:"members"`
}

// Member is one server of the Raft configuration.
type Member struct {
	Name        string    `json:"name"`
	Address     string    `json:"address"` // Raft address
	APIURL      string    `json:"api_url"`
	Suffrage    string    `json:"suffrage"` // "voter" or "nonvoter"
	Leader      bool      `json:"leader"`
	LastContact time.Time `json:"last_contact"` // last heartbeat seen in the replicated state
	Up          bool      `json:"up"`
}

// JoinTokenRequest asks for a join token. TTL is a Go duration ("1h");
// Uses is how many nodes may join with it (default 1).
type JoinTokenRequest struct {
	TTL  string `json:"ttl"`
	Uses *int   `json:"uses,omitempty"` // absent: 1
}

// JoinToken is a join token as listed: never its secret.
type JoinToken struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsesLeft  int       `json:"uses_left"`
	Expired   bool      `json:"expired"`
}

// JoinTokenResponse carries the secret token: it is shown once.
type JoinTokenResponse struct {
	Token     string    `json:"token"`
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
	Uses      int       `json:"uses"`
}

// NodeInfo is a node as registered in the replicated state.
type NodeInfo struct {
	Name          string              `json:"name"`
	APIURL        string              `json:"api_url"`
	RaftAddress   string              `json:"raft_address"`
	Status        string              `json:"status"` // "up" or "down"
	LastHeartbeat time.Time           `json:"last_heartbeat"`
	JoinedAt      time.Time           `json:"joined_at"`
	Inventory     inventory.Inventory `json:"inventory"`
	// Services are what the node runs ("compute" where it runs servers);
	// nil for a node that registered before nodes said so.
	Services []string `json:"services,omitempty"`
}
