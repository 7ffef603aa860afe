package compute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/compute/computestate"
	"github.com/rackstack/rackstack/fabric/store"
)

// A server as Nova shows it, at the request's microversion.

func hostID(sv *Server) string {
	if sv.Host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(sv.Project + sv.Host))
	return hex.EncodeToString(sum[:])
}

func (s *Service) addresses(ctx context.Context, sv *Server) map[string]any {
	out := map[string]any{}
	if sv.Baremetal != "" {
		return s.provisioningAddress(ctx, sv)
	}
	if s.cfg.Ports == nil {
		return out
	}
	for _, id := range sv.Ports {
		pt, err := s.cfg.Ports.Port(ctx, nil, id)
		if err != nil {
			continue
		}
		name := pt.NetworkName
		if name == "" {
			name = pt.NetworkID
		}
		list, _ := out[name].([]any)
		for _, ip := range pt.IPs {
			v := 4
			if strings.Contains(ip, ":") {
				v = 6
			}
			list = append(list, map[string]any{"version": v, "addr": ip, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": pt.MAC})
		}
		if list == nil {
			list = []any{}
		}
		out[name] = list
	}
	return out
}

// provisioningNetwork names a bare-metal server's one network: the
// provisioning network its PXE NIC is cabled to.
const provisioningNetwork = "provisioning"

// provisioningAddress is a bare-metal server's address: the IPv4 its
// node's PXE NIC had when the agent last reported the inventory, once
// known (the NIC the inventory says it booted from, else a PXE-enabled
// port's).
func (s *Service) provisioningAddress(ctx context.Context, sv *Server) map[string]any {
	out := map[string]any{}
	tx, err := s.cfg.Repl.Read(ctx)
	if err != nil {
		return out
	}
	n := store.Get[bmstate.Node](tx, bmstate.NodeTable, sv.Baremetal)
	if n == nil || n.Inventory == nil {
		return out
	}
	macs := []string{bmstate.NormalizeMAC(n.Inventory.Boot.PXEInterface)}
	for _, p := range bmstate.Ports(tx, n.ID) {
		if p.PXEEnabled {
			macs = append(macs, bmstate.NormalizeMAC(p.Address))
		}
	}
	for _, mac := range macs {
		for _, nic := range n.Inventory.Interfaces {
			if mac == "" || bmstate.NormalizeMAC(nic.MACAddress) != mac || nic.IPv4Address == "" {
				continue
			}
			addr, _, _ := strings.Cut(nic.IPv4Address, "/")
			out[provisioningNetwork] = []any{map[string]any{"version": 4, "addr": addr, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": mac}}
			return out
		}
	}
	return out
}

// hypervisorHostname is Nova's hypervisor_hostname: the host, or for a
// bare-metal server its node's UUID, as Nova on Ironic shows it.
func hypervisorHostname(sv *Server) string {
	if sv.Baremetal != "" {
		return sv.Baremetal
	}
	return sv.Host
}

func instanceName(sv *Server) string { return "instance-" + strings.ReplaceAll(sv.ID, "-", "")[:8] }

// serverView is a server as Nova shows it at the request's microversion;
// basic leaves out what update and rebuild answers lack before 2.75. tx, when not
// nil, adds the server groups (2.71).
func (s *Service) serverView(r *http.Request, tx *memdb.Txn, sv *Server, basic bool) map[string]any {
	md := sv.Metadata
	if md == nil {
		md = map[string]string{}
	}
	v := map[string]any{
		"id": sv.ID, "name": sv.Name, "status": sv.Status, "tenant_id": sv.Project, "user_id": sv.UserID,
		"metadata": md, "hostId": hostID(sv), "created": timeText(sv.Created), "updated": timeText(sv.Updated),
		"addresses": s.addresses(r.Context(), sv), "accessIPv4": sv.AccessIPv4, "accessIPv6": sv.AccessIPv6,
		"links": s.links(r, "servers", sv.ID), "OS-DCF:diskConfig": diskConfigOf(sv),
		"image":  map[string]any{"id": sv.ImageID, "links": []any{link("bookmark", s.baseURL(r)+"/images/"+sv.ImageID)}},
		"flavor": s.serverFlavor(r, sv),
	}
	if sv.BootVolume != "" {
		// Nova's view of a server booted from a volume.
		v["image"] = ""
	}
	switch sv.Status {
	case "ACTIVE", "BUILD":
		v["progress"] = 0
	}
	if sv.Fault != nil && (sv.Status == "ERROR" || sv.Status == "DELETED") {
		f := map[string]any{"code": sv.Fault.Code, "message": sv.Fault.Message, "created": timeText(sv.Fault.Created)}
		if sv.Fault.Details != "" && (principal(r).IsAdmin() || sv.Fault.Code != 500) {
			f["details"] = sv.Fault.Details
		}
		v["fault"] = f
	}
	addVersionedAttrs(r, tx, sv, v)
	if basic && !atLeast(r, 75) {
		// Nova's update and rebuild answers before 2.75 show the
		// addresses without their OS-EXT-IPS attributes too.
		v["addresses"] = plainAddresses(v["addresses"].(map[string]any))
		return v
	}
	s.addExtendedAttrs(r, tx, sv, v)
	return v
}

// serverFlavor is the flavor a server was made with: a copy from 2.47, a
// link before.
func (s *Service) serverFlavor(r *http.Request, sv *Server) map[string]any {
	if !atLeast(r, 47) {
		return map[string]any{"id": sv.Flavor.ID, "links": []any{link("bookmark", s.baseURL(r)+"/flavors/"+sv.Flavor.ID)}}
	}
	return map[string]any{"vcpus": sv.Flavor.VCPUs, "ram": sv.Flavor.RAM, "disk": sv.Flavor.Disk, "ephemeral": sv.Flavor.Ephemeral,
		"swap": sv.Flavor.Swap, "original_name": sv.Flavor.Name, "extra_specs": copyMap(sv.Flavor.ExtraSpecs)}
}

// addVersionedAttrs adds the attributes later microversions show.
func addVersionedAttrs(r *http.Request, tx *memdb.Txn, sv *Server, v map[string]any) {
	if atLeast(r, 19) {
		v["description"] = nil
		if sv.Description != "" {
			v["description"] = sv.Description
		}
	}
	if atLeast(r, 9) {
		v["locked"] = sv.Locked
	}
	if atLeast(r, 26) {
		v["tags"] = tagsOf(sv)
	}
	if atLeast(r, 63) {
		v["trusted_image_certificates"] = nil
	}
	if atLeast(r, 73) {
		v["locked_reason"] = orNil(sv.LockedReason)
	}
	if atLeast(r, 71) && tx != nil {
		groups := []string{}
		if sv.Group != "" && store.Get[ServerGroup](tx, tGroups, sv.Group) != nil {
			groups = append(groups, sv.Group)
		}
		v["server_groups"] = groups
	}
}

// addExtendedAttrs adds the OS-EXT-* attributes, the admin-only ones to
// admins.
func (s *Service) addExtendedAttrs(r *http.Request, tx *memdb.Txn, sv *Server, v map[string]any) {
	v["key_name"] = orNil(sv.KeyName)
	// Nova shows security_groups only for a server that has some: one
	// whose groups were all removed has no key at all.
	if len(sv.SecurityGroups) > 0 {
		groups := []any{}
		for _, g := range sv.SecurityGroups {
			groups = append(groups, map[string]any{"name": g})
		}
		v["security_groups"] = groups
	}
	v["OS-SRV-USG:launched_at"] = timeOrNil(sv.LaunchedAt)
	v["OS-SRV-USG:terminated_at"] = nil
	v["OS-EXT-AZ:availability_zone"] = sv.AZ
	v["OS-EXT-STS:task_state"] = orNil(sv.TaskState)
	v["OS-EXT-STS:vm_state"] = sv.VMState
	v["OS-EXT-STS:power_state"] = sv.PowerState
	if tx != nil {
		v["os-extended-volumes:volumes_attached"] = volumesAttached(r, tx, sv.ID)
	}
	v["config_drive"] = "True"
	if atLeast(r, 96) {
		// The zone the server is held to (its create's, or an
		// unshelve's), null for none: Nova's request spec's.
		v["pinned_availability_zone"] = orNil(computestate.Pinned(sv))
	}
	if atLeast(r, 90) {
		v["OS-EXT-SRV-ATTR:hostname"] = Hostname(sv) // every reader's from 2.90
	}
	if !principal(r).IsAdmin() {
		return
	}
	v["OS-EXT-SRV-ATTR:host"] = orNil(sv.Host)
	v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = orNil(hypervisorHostname(sv))
	v["OS-EXT-SRV-ATTR:instance_name"] = instanceName(sv)
	if atLeast(r, 3) {
		v["OS-EXT-SRV-ATTR:reservation_id"] = sv.ReservationID
		v["OS-EXT-SRV-ATTR:launch_index"] = sv.LaunchIndex
		v["OS-EXT-SRV-ATTR:hostname"] = Hostname(sv)
		v["OS-EXT-SRV-ATTR:kernel_id"] = ""
		v["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
		v["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
		v["OS-EXT-SRV-ATTR:user_data"] = orNil(sv.UserData)
	}
	if atLeast(r, 16) {
		status := ""
		switch {
		case sv.Host == "":
		case tx != nil && computestate.ServiceStateOf(tx, sv.Host).ForcedDown:
			status = "DOWN" // os_services.go
		case tx != nil && computestate.ServiceStateOf(tx, sv.Host).Disabled:
			status = "MAINTENANCE" // as Nova shows a disabled service's
		case s.hostUp(r.Context(), sv.Host):
			status = "UP"
		default:
			status = "DOWN"
		}
		v["host_status"] = status
	}
}

// orNil is s, or null when s is empty.
func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Service) showServer(w http.ResponseWriter, r *http.Request) error {
	tx, sv, err := s.readServerTx(r, "")
	if err != nil {
		return err
	}
	api.JSON(w, http.StatusOK, map[string]any{"server": s.serverView(r, tx, sv, false)})
	return nil
}
