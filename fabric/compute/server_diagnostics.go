package compute

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// Server diagnostics (GET /servers/{id}/diagnostics, admin): the
// counters of the running guest, read from its QEMU on its node when
// asked (hypervisor.Diagnoser: run state, vCPU threads' CPU time, each
// disk's blockstats, the taps' counters, uptime, resident memory).
// From 2.48 in Nova's standard format; before, as Nova's libvirt driver
// answers (cpu0_time, memory, <disk>_read, <tap>_rx, ...). Nova's
// driver enum (libvirt, xenapi, vmwareapi, hyperv, ironic) has no value
// for a driver that runs QEMU itself: this cloud says "libvirt", the
// driver Nova runs QEMU guests with, whose answers these are, and its
// hypervisor is libvirt's domain type, "kvm" or "qemu" (TCG). A server
// with no running guest (stopped, shelved, not placed) is Nova's 409; a
// bare-metal one Nova's Ironic driver's 501.

// GuestDiagnostics reads a server's guest counters on its node.
type GuestDiagnostics interface {
	// Diagnostics errors wrap hypervisor.ErrNotRunning or
	// hypervisor.ErrNotFound when the node has no guest process for it.
	Diagnostics(ctx context.Context, host, serverID string) (hypervisor.Diagnostics, error)
}

func (s *Service) serverDiagnostics(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.readServer(r, "")
	if err != nil {
		return err
	}
	if !principal(r).IsAdmin() {
		return policyDenied(diagnosticsRule)
	}
	switch {
	case isBaremetal(sv):
		return notImplemented("Server diagnostics are not supported for bare-metal servers.")
	case sv.Host == "":
		return conflict("Instance %s is not ready", sv.ID)
	case sv.VMState != vmActive && sv.VMState != vmPaused && sv.VMState != vmSuspended:
		return stateConflict("get_diagnostics", sv.ID, "vm_state", sv.VMState)
	case s.cfg.Diagnostics == nil:
		return notImplemented("Server diagnostics are not implemented by this cloud.")
	}
	d, err := s.cfg.Diagnostics.Diagnostics(r.Context(), sv.Host, sv.ID)
	switch {
	case errors.Is(err, hypervisor.ErrNotRunning) || errors.Is(err, hypervisor.ErrNotFound):
		return conflict("Instance %s is not ready", sv.ID)
	case err != nil:
		return err
	}
	if atLeast(r, 48) {
		api.JSON(w, http.StatusOK, diagnosticsView(d))
	} else {
		api.JSON(w, http.StatusOK, legacyDiagnostics(d))
	}
	return nil
}

// diagnosticsState is Nova's diagnostics state: its power state's name.
func diagnosticsState(p hypervisor.PowerState) string {
	switch p {
	case hypervisor.Running, hypervisor.Paused, hypervisor.Shutdown, hypervisor.Crashed:
		return string(p)
	}
	return "pending"
}

// domainType is libvirt's domain type of an accelerator.
func domainType(accel string) string {
	if accel == "kvm" {
		return "kvm"
	}
	return "qemu"
}

// diagnosticsView is Nova's standard format (2.48).
func diagnosticsView(d hypervisor.Diagnostics) map[string]any {
	cpus := []any{}
	for _, c := range d.CPUs {
		cpus = append(cpus, map[string]any{"id": c.ID, "time": c.Time.Nanoseconds(), "utilisation": nil})
	}
	disks := []any{}
	for _, k := range d.Disks {
		disks = append(disks, map[string]any{"read_bytes": k.ReadBytes, "read_requests": k.ReadRequests,
			"write_bytes": k.WriteBytes, "write_requests": k.WriteRequests, "errors_count": k.Errors})
	}
	nics := []any{}
	for _, n := range d.NICs {
		nics = append(nics, map[string]any{"mac_address": n.MAC,
			"rx_octets": n.RxOctets, "rx_errors": n.RxErrors, "rx_drop": n.RxDrop, "rx_packets": n.RxPackets, "rx_rate": nil,
			"tx_octets": n.TxOctets, "tx_errors": n.TxErrors, "tx_drop": n.TxDrop, "tx_packets": n.TxPackets, "tx_rate": nil})
	}
	return map[string]any{
		"state": diagnosticsState(d.State), "driver": "libvirt", "hypervisor": domainType(d.Hypervisor), "hypervisor_os": "linux",
		"uptime": int64(d.Uptime.Seconds()), "config_drive": d.ConfigDrive,
		"num_cpus": len(d.CPUs), "num_disks": len(d.Disks), "num_nics": len(d.NICs),
		"cpu_details": cpus, "disk_details": disks, "nic_details": nics,
		"memory_details": map[string]any{"maximum": d.MemoryMB, "used": d.UsedMB},
	}
}

// legacyDiagnostics is what Nova's libvirt driver answers before 2.48:
// flat counters named by vCPU, disk and tap; memory in KiB.
func legacyDiagnostics(d hypervisor.Diagnostics) map[string]any {
	out := map[string]any{"memory": d.MemoryMB * 1024, "memory-actual": d.MemoryMB * 1024, "memory-rss": d.UsedMB * 1024}
	for _, c := range d.CPUs {
		out["cpu"+strconv.Itoa(c.ID)+"_time"] = c.Time.Nanoseconds()
	}
	for _, k := range d.Disks {
		out[k.Name+"_read"], out[k.Name+"_read_req"] = k.ReadBytes, k.ReadRequests
		out[k.Name+"_write"], out[k.Name+"_write_req"] = k.WriteBytes, k.WriteRequests
		out[k.Name+"_errors"] = k.Errors
	}
	for _, n := range d.NICs {
		out[n.Tap+"_rx"], out[n.Tap+"_rx_packets"], out[n.Tap+"_rx_errors"], out[n.Tap+"_rx_drop"] = n.RxOctets, n.RxPackets, n.RxErrors, n.RxDrop
		out[n.Tap+"_tx"], out[n.Tap+"_tx_packets"], out[n.Tap+"_tx_errors"], out[n.Tap+"_tx_drop"] = n.TxOctets, n.TxPackets, n.TxErrors, n.TxDrop
	}
	return out
}
