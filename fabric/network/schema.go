package network

import (
	"github.com/rackstack/rackstack/fabric/events/eventstate"
	"github.com/rackstack/rackstack/fabric/network/netstate"
	"github.com/rackstack/rackstack/fabric/store"
)

// The rows live in netstate, which the node agents import; these aliases
// keep this package's callers compiling unchanged.
type (
	Network           = netstate.Network
	HostRoute         = netstate.HostRoute
	Pool              = netstate.Pool
	Subnet            = netstate.Subnet
	FixedIP           = netstate.FixedIP
	AddressPair       = netstate.AddressPair
	Port              = netstate.Port
	SecurityGroup     = netstate.SecurityGroup
	SecurityGroupRule = netstate.SecurityGroupRule
	IPAllocation      = netstate.IPAllocation
	Quota             = netstate.Quota
	Router            = netstate.Router
	RouterGateway     = netstate.RouterGateway
	FloatingIP        = netstate.FloatingIP
	SubnetPool        = netstate.SubnetPool
	View              = netstate.View
)

// Load reads every networking row from txn (see netstate.Load).
var Load = netstate.Load

// TableNames lists the tables Load reads (see netstate.TableNames).
var TableNames = netstate.TableNames

const (
	tNetworks    = netstate.TableNetworks
	tSubnets     = netstate.TableSubnets
	tPorts       = netstate.TablePorts
	tGroups      = netstate.TableGroups
	tRules       = netstate.TableRules
	tAllocations = netstate.TableAllocations
	tQuotas      = netstate.TableQuotas
	tRouters     = netstate.TableRouters
	tFloatingIPs = netstate.TableFloatingIPs
	tSubnetPools = netstate.TableSubnetPools
)

func allocationID(network, ip string) string { return network + "/" + ip }

// Command types.
const (
	cmdNetworkCreate = "network.network.create"
	cmdNetworkUpdate = "network.network.update"
	cmdNetworkDelete = "network.network.delete"
	cmdSubnetCreate  = "network.subnet.create"
	cmdSubnetUpdate  = "network.subnet.update"
	cmdSubnetDelete  = "network.subnet.delete"
	cmdPortCreate    = "network.port.create"
	cmdPortUpdate    = "network.port.update"
	cmdPortDelete    = "network.port.delete"
	cmdPortStatus    = "network.port.status"
	cmdGroupCreate   = "network.secgroup.create"
	// cmdGroupBulk makes several security groups in one step (a bulk
	// POST): all or none.
	cmdGroupBulk    = "network.secgroup.create_bulk"
	cmdGroupUpdate  = "network.secgroup.update"
	cmdGroupDelete  = "network.secgroup.delete"
	cmdGroupDefault = "network.secgroup.default"
	cmdRuleCreate   = "network.secgroup_rule.create"
	cmdRuleDelete   = "network.secgroup_rule.delete"
	cmdQuotaSet     = "network.quota.set"
	cmdQuotaDelete  = "network.quota.delete"

	cmdRouterCreate          = "network.router.create"
	cmdRouterUpdate          = "network.router.update"
	cmdRouterDelete          = "network.router.delete"
	cmdRouterAddInterface    = "network.router.add_interface"
	cmdRouterRemoveInterface = "network.router.remove_interface"
	cmdFIPCreate             = "network.floatingip.create"
	cmdFIPUpdate             = "network.floatingip.update"
	cmdFIPDelete             = "network.floatingip.delete"
	cmdFIPStatus             = "network.floatingip.status"
	cmdTags                  = "network.tags"
	cmdDHCPHosting           = "network.dhcp_hosting"
	cmdPoolCreate            = "network.subnetpool.create"
	cmdPoolUpdate            = "network.subnetpool.update"
	cmdPoolDelete            = "network.subnetpool.delete"
	cmdScopeCreate           = "network.address_scope.create"
	cmdScopeUpdate           = "network.address_scope.update"
	cmdScopeDelete           = "network.address_scope.delete"
	cmdLabelCreate           = "network.metering_label.create"
	cmdLabelDelete           = "network.metering_label.delete"
	cmdMeterCreate           = "network.metering_rule.create"
	cmdMeterDelete           = "network.metering_rule.delete"
	cmdRBACCreate            = "network.rbac_policy.create"
	cmdRBACUpdate            = "network.rbac_policy.update"
	cmdRBACDelete            = "network.rbac_policy.delete"
	cmdAddrGroupCreate       = "network.address_group.create"
	cmdAddrGroupUpdate       = "network.address_group.update"
	cmdAddrGroupDelete       = "network.address_group.delete"
	cmdAgentNote             = "network.agent.note"
)

// Schema is the networking service's part of the replicated state: the
// netstate tables and the commands that write them, one apply function
// per command type.
func Schema() store.Schema {
	sc := store.Schema{
		Tables: append(netstate.Tables(), rbacTable(), agentNoteTable(), autoTopologyTable()),
		Handlers: map[string]store.Handler{
			cmdRBACCreate:    store.Typed(applyRBACCreate),
			cmdRBACUpdate:    store.Typed(applyRBACUpdate),
			cmdRBACDelete:    store.Typed(applyRBACDelete),
			cmdNetworkCreate: store.Typed(applyNetworkCreate),
			cmdNetworkUpdate: store.Typed(applyNetworkUpdate),
			cmdNetworkDelete: store.Typed(applyNetworkDelete),
			cmdSubnetCreate:  store.Typed(applySubnetCreate),
			cmdSubnetUpdate:  store.Typed(applySubnetUpdate),
			cmdSubnetDelete:  store.Typed(applySubnetDelete),
			cmdPortCreate:    store.Typed(applyPortCreate),
			cmdPortUpdate:    store.Typed(applyPortUpdate),
			cmdPortDelete:    store.Typed(applyPortDelete),
			cmdPortStatus:    store.Typed(applyPortStatus),
			cmdGroupCreate:   store.Typed(applyGroupCreate),
			cmdGroupBulk:     store.Typed(applyGroupBulk),
			cmdGroupUpdate:   store.Typed(applyGroupUpdate),
			cmdGroupDelete:   store.Typed(applyGroupDelete),
			cmdGroupDefault:  store.Typed(applyGroupDefault),
			cmdRuleCreate:    store.Typed(applyRuleCreate),
			cmdRuleDelete:    store.Typed(applyRuleDelete),
			cmdQuotaSet:      store.Typed(applyQuotaSet),
			cmdQuotaDelete:   store.Typed(applyQuotaDelete),

			cmdRouterCreate:          store.Typed(applyRouterCreate),
			cmdRouterUpdate:          store.Typed(applyRouterUpdate),
			cmdRouterDelete:          store.Typed(applyRouterDelete),
			cmdRouterAddInterface:    store.Typed(applyRouterAddInterface),
			cmdRouterRemoveInterface: store.Typed(applyRouterRemoveInterface),
			cmdFIPCreate:             store.Typed(applyFIPCreate),
			cmdFIPUpdate:             store.Typed(applyFIPUpdate),
			cmdFIPDelete:             store.Typed(applyFIPDelete),
			cmdFIPStatus:             store.Typed(applyFIPStatus),
			cmdTags:                  store.Typed(applyTags),
			cmdDHCPHosting:           store.Typed(applyDHCPHosting),
			cmdPoolCreate:            store.Typed(applyPoolCreate),
			cmdPoolUpdate:            store.Typed(applyPoolUpdate),
			cmdPoolDelete:            store.Typed(applyPoolDelete),
			cmdScopeCreate:           store.Typed(applyScopeCreate),
			cmdScopeUpdate:           store.Typed(applyScopeUpdate),
			cmdScopeDelete:           store.Typed(applyScopeDelete),
			cmdLabelCreate:           store.Typed(applyLabelCreate),
			cmdLabelDelete:           store.Typed(applyLabelDelete),
			cmdMeterCreate:           store.Typed(applyMeterCreate),
			cmdMeterDelete:           store.Typed(applyMeterDelete),
			cmdAddrGroupCreate:       store.Typed(applyAddrGroupCreate),
			cmdAddrGroupUpdate:       store.Typed(applyAddrGroupUpdate),
			cmdAddrGroupDelete:       store.Typed(applyAddrGroupDelete),
			cmdAgentNote:             store.Typed(applyAgentNote),
			cmdAutoTopology:          store.Typed(applyAutoTopology),
			cmdAutoTopologyDelete:    store.Typed(applyAutoTopologyDelete),
		},
		Observers: []store.Observer{eventstate.Observe(netstate.EventResources()...)},
	}
	for _, handlers := range []map[string]store.Handler{qosHandlers(), trunkHandlers(), portForwardingHandlers()} {
		for typ, h := range handlers {
			sc.Handlers[typ] = h
		}
	}
	return sc
}
