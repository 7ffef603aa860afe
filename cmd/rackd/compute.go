package main

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/fabric/network"
	"github.com/rackstack/rackstack/fabric/scheduler"
)

// openCompute builds Nova over the cluster: the network service makes the
// servers' ports, the cluster's nodes are the hypervisors. images is the
// image service (nil until one runs: server create then answers that the
// image cannot be found). vols is the volume service: it makes boot
// volumes, and its API serves Nova's volume proxy (os-volumes,
// os-snapshots), as the image service's serves its image proxy
// (/images). logs and serial serve the guests' consoles.
func openCompute(o *options, node *cluster.Node, auth api.Authenticator, nets *network.Service, images computeImages, vols bootVolumes, logs compute.ConsoleLogs, serial compute.SerialConsole, log *slog.Logger) (*compute.Service, error) {
	var imageAPI http.Handler
	if images.images != nil {
		imageAPI = images.images.Handler()
	}
	return compute.New(compute.Config{
		Repl: node, Auth: auth, Log: log, PublicURL: o.PublicURL,
		Images: images, Volumes: vols, VolumeAPI: vols.s.Handler(), ImageAPI: imageAPI,
		ConsoleLogs: logs, SerialConsole: serial, Diagnostics: guestsOf(logs),
		// Debian's novnc package; without it novnc consoles answer 400.
		NoVNCDir:  "/usr/share/novnc",
		Snapshots: computeSnapshots{images.images},
		Ports:     serverPorts{nets.ServerPorts()},
		Hosts:     clusterHosts{node},
		Scheduler: scheduler.Config{CPURatio: o.CPUAllocationRatio},
		Node:      o.Name, IsLeader: node.IsLeader,
		NodeLost: func(name string) bool { return node.DownFor(name) > o.HealAfter },
	})
}

// serverPorts adapts the network service to compute.Ports.
type serverPorts struct{ sp *network.ServerPorts }

func networkInfos(ns []network.Network) []compute.NetworkInfo {
	out := make([]compute.NetworkInfo, 0, len(ns))
	for _, n := range ns {
		out = append(out, networkInfo(n))
	}
	return out
}

func networkInfo(n network.Network) compute.NetworkInfo {
	return compute.NetworkInfo{ID: n.ID, Name: n.Name, Project: n.Project, Shared: n.Shared}
}

func portInfo(pt network.Port, networkName string) compute.PortInfo {
	ips := make([]string, 0, len(pt.FixedIPs))
	subnets := make([]string, 0, len(pt.FixedIPs))
	for _, f := range pt.FixedIPs {
		ips = append(ips, f.IP)
		subnets = append(subnets, f.SubnetID)
	}
	return compute.PortInfo{ID: pt.ID, NetworkID: pt.NetworkID, NetworkName: networkName, Project: pt.Project, MAC: pt.MAC,
		DeviceID: pt.DeviceID, DeviceOwner: pt.DeviceOwner, Host: pt.HostID, Status: pt.Status, IPs: ips, Subnets: subnets,
		SecurityGroups: pt.SecurityGroups}
}

func (a serverPorts) Network(ctx context.Context, p *api.Principal, id string) (compute.NetworkInfo, error) {
	n, err := a.sp.Network(ctx, p, id)
	return networkInfo(n), err
}

func (a serverPorts) Networks(ctx context.Context, p *api.Principal) ([]compute.NetworkInfo, error) {
	ns, err := a.sp.Networks(ctx, p)
	return networkInfos(ns), err
}

// AutoAllocatedNetwork makes serverPorts a compute.AutoNetworks (Nova's
// networks "auto").
func (a serverPorts) AutoAllocatedNetwork(ctx context.Context, p *api.Principal) (compute.NetworkInfo, error) {
	n, err := a.sp.AutoAllocatedNetwork(ctx, p)
	return networkInfo(n), err
}

func (a serverPorts) Port(ctx context.Context, p *api.Principal, id string) (compute.PortInfo, error) {
	pt, name, err := a.sp.Port(ctx, p, id)
	return portInfo(pt, name), err
}

func (a serverPorts) Create(ctx context.Context, p *api.Principal, req compute.PortRequest) (compute.PortInfo, error) {
	pt, err := a.sp.Create(ctx, p, network.ServerPortRequest{NetworkID: req.NetworkID, FixedIP: req.FixedIP, Project: req.Project,
		DeviceID: req.DeviceID, DeviceOwner: req.DeviceOwner, SecurityGroups: req.SecurityGroups})
	return portInfo(pt, ""), err
}

func (a serverPorts) Bind(ctx context.Context, portID, deviceID, host string) error {
	return a.sp.Bind(ctx, portID, deviceID, host)
}

func (a serverPorts) Delete(ctx context.Context, portID string) error {
	return a.sp.Delete(ctx, portID)
}

// SecurityGroup and SetPortSecurityGroup make serverPorts a
// compute.SecurityGroupPorts (Nova's add/removeSecurityGroup).
func (a serverPorts) SecurityGroup(ctx context.Context, project, nameOrID string) (string, string, error) {
	g, err := a.sp.SecurityGroup(ctx, project, nameOrID)
	return g.ID, g.Name, err
}

func (a serverPorts) SetPortSecurityGroup(ctx context.Context, portID, groupID string, on bool) (bool, error) {
	return a.sp.SetPortSecurityGroup(ctx, portID, groupID, on)
}

// clusterHosts adapts the cluster's nodes to compute.Hosts: a node's
// inventory is its capacity, its heartbeat says whether it is up.
type clusterHosts struct{ node *cluster.Node }

func (h clusterHosts) Hosts(context.Context) ([]compute.Host, error) {
	nodes, err := h.node.Nodes()
	if err != nil {
		return nil, err
	}
	out := make([]compute.Host, 0, len(nodes))
	for _, n := range nodes {
		var disk uint64
		for _, d := range n.Inventory.Disks {
			disk += d.SizeBytes
		}
		ip := ""
		if u, err := url.Parse(n.APIURL); err == nil {
			ip, _, _ = net.SplitHostPort(u.Host)
		}
		out = append(out, compute.Host{
			// A node from before nodes said what they run is taken to
			// run compute, as every node was.
			NoCompute: n.Services != nil && !slices.Contains(n.Services, "compute"),
			Name:      n.Name, Up: n.Status == "up", VCPUs: n.Inventory.CPUs, MemoryMB: int(n.Inventory.MemoryBytes >> 20),
			DiskGB: int(disk >> 30), HostIP: ip, CPUModel: n.Inventory.CPUModel, LastSeen: n.LastHeartbeat,
			LoadAverage: n.Inventory.LoadAverage, Users: n.Inventory.Users,
		})
		if n.Inventory.BootTime > 0 {
			out[len(out)-1].Booted = time.Unix(n.Inventory.BootTime, 0)
		}
	}
	return out, nil
}

func (a serverPorts) SecurityGroups(ctx context.Context, project string) ([]compute.SecurityGroupInfo, error) {
	groups, rules, err := a.sp.SecurityGroups(ctx, project)
	out := make([]compute.SecurityGroupInfo, 0, len(groups))
	for _, g := range groups {
		info := groupInfo(g)
		for _, r := range rules[g.ID] {
			info.Rules = append(info.Rules, ruleInfo(r))
		}
		out = append(out, info)
	}
	return out, err
}

func groupInfo(g network.SecurityGroup) compute.SecurityGroupInfo {
	return compute.SecurityGroupInfo{ID: g.ID, Name: g.Name, Description: g.Description, Project: g.Project}
}

func ruleInfo(r network.SecurityGroupRule) compute.SecurityGroupRuleInfo {
	return compute.SecurityGroupRuleInfo{ID: r.ID, Direction: r.Direction,
		Protocol: cmp.Or(r.ProtocolName, r.Protocol), RemoteIPPrefix: cmp.Or(r.RemoteIPPrefixGiven, r.RemoteIPPrefix),
		RemoteGroupID: r.RemoteGroupID, PortMin: r.PortMin, PortMax: r.PortMax}
}

// The calls below make serverPorts a compute.SecurityGroupEdits (the
// write side of Nova's security group proxy).

func (a serverPorts) CreateSecurityGroup(ctx context.Context, project, name, description string) (compute.SecurityGroupInfo, error) {
	g, err := a.sp.CreateSecurityGroup(ctx, project, name, description)
	return groupInfo(g), err
}

func (a serverPorts) UpdateSecurityGroup(ctx context.Context, project, id string, name, description *string) (compute.SecurityGroupInfo, error) {
	g, err := a.sp.UpdateSecurityGroup(ctx, project, id, name, description)
	return groupInfo(g), err
}

func (a serverPorts) DeleteSecurityGroup(ctx context.Context, project, id string) error {
	return a.sp.DeleteSecurityGroup(ctx, project, id)
}

func (a serverPorts) CreateSecurityGroupRule(ctx context.Context, project, groupID string, rule compute.SecurityGroupRuleInfo) (compute.SecurityGroupRuleInfo, error) {
	r, err := a.sp.CreateSecurityGroupRule(ctx, project, network.SecurityGroupRule{GroupID: groupID, Protocol: rule.Protocol,
		PortMin: rule.PortMin, PortMax: rule.PortMax, RemoteIPPrefix: rule.RemoteIPPrefix, RemoteGroupID: rule.RemoteGroupID})
	return ruleInfo(r), err
}

func (a serverPorts) DeleteSecurityGroupRule(ctx context.Context, project, id string) error {
	return a.sp.DeleteSecurityGroupRule(ctx, project, id)
}

var (
	_ compute.SecurityGroupPorts = serverPorts{}
	_ compute.SecurityGroupEdits = serverPorts{}
)

// The calls below make serverPorts a compute.FloatingIPPorts (Nova's
// floating IP proxy and add/removeFloatingIp).

func floatingIPInfo(f network.NovaFloatingIP) compute.FloatingIPInfo {
	return compute.FloatingIPInfo{ID: f.ID, IP: f.IP, Project: f.Project, Pool: f.Pool, PortID: f.FixedPortID,
		FixedIP: f.FixedIP, DeviceID: f.DeviceID, Revision: f.Revision}
}

func (a serverPorts) FloatingIPs(ctx context.Context, project string) ([]compute.FloatingIPInfo, error) {
	fips, err := a.sp.FloatingIPs(ctx, project)
	out := make([]compute.FloatingIPInfo, 0, len(fips))
	for _, f := range fips {
		out = append(out, floatingIPInfo(f))
	}
	return out, err
}

func (a serverPorts) FloatingIP(ctx context.Context, p *api.Principal, id string) (compute.FloatingIPInfo, error) {
	f, err := a.sp.FloatingIP(ctx, p, id)
	return floatingIPInfo(f), err
}

func (a serverPorts) FloatingIPByAddress(ctx context.Context, p *api.Principal, address string) (compute.FloatingIPInfo, error) {
	f, err := a.sp.FloatingIPByAddress(ctx, p, address)
	return floatingIPInfo(f), err
}

func (a serverPorts) FloatingIPPools(ctx context.Context, p *api.Principal) ([]compute.NetworkInfo, error) {
	ns, err := a.sp.FloatingIPPools(ctx, p)
	return networkInfos(ns), err
}

func (a serverPorts) AllocateFloatingIP(ctx context.Context, p *api.Principal, pool string) (compute.FloatingIPInfo, error) {
	f, err := a.sp.AllocateFloatingIP(ctx, p, pool)
	return floatingIPInfo(f), err
}

func (a serverPorts) ReleaseFloatingIP(ctx context.Context, p *api.Principal, id string) error {
	return a.sp.ReleaseFloatingIP(ctx, p, id)
}

func (a serverPorts) SetFloatingIPPort(ctx context.Context, p *api.Principal, id, portID, fixedIP string, revision *int) error {
	return a.sp.SetFloatingIPPort(ctx, p, id, portID, fixedIP, revision)
}

var _ compute.FloatingIPPorts = serverPorts{}
