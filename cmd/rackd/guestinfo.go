package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/rackstack/rackstack/fabric/compute"
	"github.com/rackstack/rackstack/node/hypervisor"
)

// What the API and the metadata service read of running guests: their
// devices' PCI addresses (meta_data.json's devices, on the guest's own
// node) and their diagnostics (any node's API, through the guest's
// node's peer port).

const diagnosticsPeerPath = "/peer/compute/v1/diagnostics/"

// guestDevices reads a guest's devices through the node's driver (nil
// where compute is off).
func guestDevices(drv hypervisor.Driver) func(ctx context.Context, id string) ([]hypervisor.GuestDevice, error) {
	if drv == nil {
		return nil
	}
	return func(ctx context.Context, id string) ([]hypervisor.GuestDevice, error) {
		vm, err := drv.Adopt(ctx, id)
		if err != nil {
			return nil, err
		}
		d, ok := vm.(hypervisor.Devices)
		if !ok {
			return nil, errors.New("the hypervisor driver does not say where devices are")
		}
		return d.Devices(ctx)
	}
}

// localDiagnostics reads a guest's counters through the node's driver.
func localDiagnostics(ctx context.Context, drv hypervisor.Driver, id string) (hypervisor.Diagnostics, error) {
	if drv == nil {
		return hypervisor.Diagnostics{}, fmt.Errorf("no compute on this node: %w", hypervisor.ErrNotFound)
	}
	vm, err := drv.Adopt(ctx, id)
	if err != nil {
		return hypervisor.Diagnostics{}, err
	}
	d, ok := vm.(hypervisor.Diagnoser)
	if !ok {
		return hypervisor.Diagnostics{}, errors.New("the hypervisor driver reads no diagnostics")
	}
	return d.Diagnostics(ctx)
}

// serveDiagnostics lets other nodes read this node's guests' counters:
// 409 when there is no guest process (the caller's ErrNotRunning).
func serveDiagnostics(c consoleLogs) {
	c.node.HandlePeer(diagnosticsPeerPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, err := localDiagnostics(r.Context(), c.drv(), strings.TrimPrefix(r.URL.Path, diagnosticsPeerPath))
		switch {
		case errors.Is(err, hypervisor.ErrNotRunning) || errors.Is(err, hypervisor.ErrNotFound):
			http.Error(w, err.Error(), http.StatusConflict)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d)
	}))
}

// guestsOf gives the compute service the guests' diagnostics through
// the same node-or-peer reach as their console logs.
func guestsOf(logs compute.ConsoleLogs) compute.GuestDiagnostics {
	c, ok := logs.(consoleLogs)
	if !ok {
		return nil
	}
	serveDiagnostics(c)
	return c
}

// Diagnostics implements compute.GuestDiagnostics: this node's guests
// directly, others' through their node's peer port.
func (c consoleLogs) Diagnostics(ctx context.Context, host, serverID string) (hypervisor.Diagnostics, error) {
	if host == c.self {
		return localDiagnostics(ctx, c.drv(), serverID)
	}
	var d hypervisor.Diagnostics
	addr, err := c.node.PeerAddress(host)
	if err != nil {
		return d, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+diagnosticsPeerPath+serverID, nil)
	if err != nil {
		return d, err
	}
	resp, err := c.node.PeerClient().Do(req)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return d, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return d, json.Unmarshal(body, &d)
	case http.StatusConflict:
		return d, fmt.Errorf("node %s: %s: %w", host, strings.TrimSpace(string(body)), hypervisor.ErrNotRunning)
	}
	return d, fmt.Errorf("node %s: %s", host, strings.TrimSpace(string(body)))
}
