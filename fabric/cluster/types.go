package cluster

import "github.com/rackstack/rackstack/fabric/cluster/clusterapi"

// The cluster API's bodies live in clusterapi so that clients (rackctl)
// can decode them without linking Raft; see that package for the routes.
// POST /rackstack/v1/cluster/join (JoinRequest -> JoinResponse, used by
// rackd --join) is node-to-node and keeps its types here.

type (
	Status            = clusterapi.Status
	Member            = clusterapi.Member
	JoinTokenRequest  = clusterapi.JoinTokenRequest
	JoinTokenResponse = clusterapi.JoinTokenResponse
	JoinToken         = clusterapi.JoinToken
	NodeInfo          = clusterapi.NodeInfo
)
