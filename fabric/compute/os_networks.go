package compute

import (
	"net/http"

	"github.com/rackstack/rackstack/fabric/api"
)

// Nova's os-networks with a network service (nova-network is gone): list
// and show, up to 2.35 (404 from 2.36), of the networks the caller sees,
// in nova-network's shape where only id and label have values, as Nova's
// network_dict fills them from Neutron; an admin sees nova-network's
// admin fields too, all null. Creating, deleting, add and disassociate
// were nova-network's: gone (410) at every version, as in Nova.

var (
	osNetworkFields      = []string{"cidr", "netmask", "gateway", "broadcast", "dns1", "dns2", "cidr_v6", "gateway_v6", "netmask_v6"}
	osNetworkAdminFields = []string{"created_at", "updated_at", "deleted_at", "deleted", "injected", "bridge", "vlan",
		"vpn_public_address", "vpn_public_port", "vpn_private_address", "dhcp_start", "project_id", "host",
		"bridge_interface", "multi_host", "priority", "rxtx_base", "mtu", "dhcp_server", "enable_dhcp", "share_address"}
)

func osNetworkView(p *api.Principal, n NetworkInfo) map[string]any {
	v := map[string]any{"id": n.ID, "label": n.Name}
	for _, f := range osNetworkFields {
		v[f] = nil
	}
	if p.IsAdmin() {
		for _, f := range osNetworkAdminFields {
			v[f] = nil
		}
	}
	return v
}

// osNetworkGone answers what was nova-network's alone.
func (s *Service) osNetworkGone(w http.ResponseWriter, r *http.Request) error {
	return &api.Error{Status: http.StatusGone, Msg: "This API only works with nova-network, which was removed: use the network API."}
}
