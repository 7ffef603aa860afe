package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// BaremetalNode is what rackctl shows of a bare-metal node: the fields of
// Ironic's node (GET /baremetal/v1/nodes/detail) an operator follows, not
// the whole row (and never driver_info's secrets, which the API masks).
type BaremetalNode struct {
	UUID                 string         `json:"uuid"`
	Name                 string         `json:"name"`
	Driver               string         `json:"driver"`
	ResourceClass        string         `json:"resource_class"`
	ProvisionState       string         `json:"provision_state"`
	TargetProvisionState string         `json:"target_provision_state"`
	PowerState           string         `json:"power_state"`
	TargetPowerState     string         `json:"target_power_state"`
	Maintenance          bool           `json:"maintenance"`
	LastError            string         `json:"last_error"`
	InstanceUUID         string         `json:"instance_uuid"`
	Conductor            string         `json:"conductor"`
	Properties           map[string]any `json:"properties"`
	ProvisionUpdatedAt   *time.Time     `json:"provision_updated_at"`
}

// ironicVersion is the microversion rackctl reads nodes at (it has the
// conductor field).
const ironicVersion = "1.81"

// BaremetalNodes is GET /baremetal/v1/nodes/detail.
func (c *Client) BaremetalNodes(ctx context.Context) ([]BaremetalNode, error) {
	var out struct {
		Nodes []BaremetalNode `json:"nodes"`
	}
	err := c.Do(ctx, http.MethodGet, "/baremetal/v1/nodes/detail", nil, &out, "X-OpenStack-Ironic-API-Version", ironicVersion)
	return out.Nodes, err
}

// BaremetalNode is GET /baremetal/v1/nodes/{node} (a UUID or a name).
func (c *Client) BaremetalNode(ctx context.Context, node string) (BaremetalNode, error) {
	var n BaremetalNode
	return n, c.Do(ctx, http.MethodGet, "/baremetal/v1/nodes/"+url.PathEscape(node), nil, &n, "X-OpenStack-Ironic-API-Version", ironicVersion)
}
