package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/network"
)

const dataplanePeerPath = "/peer/dataplane/v1/status"

// openDataplane loads this node's eBPF dataplane and returns the agent that
// keeps it equal to the network state. With --dataplane auto, a node that
// cannot load BPF programs (not root, no BPF) runs without one and says so;
// with --dataplane on that is an error.
func openDataplane(o *options, node *cluster.Node, nets *network.Service, log *slog.Logger) (*dataplane.Dataplane, *dataplane.Agent, error) {
	if o.Dataplane == "off" {
		return nil, nil, nil
	}
	pin := o.BPFDir
	if pin == "" {
		pin = filepath.Join("/sys/fs/bpf/rackstack", o.Name)
	}
	dp, err := dataplane.Open(dataplane.Config{PinDir: pin, Netns: o.DataplaneNetns, Log: log})
	if err != nil {
		if o.Dataplane == "auto" {
			log.Warn("no tenant dataplane on this node: ports hosted here stay DOWN", "err", err, "root", os.Geteuid() == 0)
			return nil, nil, nil
		}
		return nil, nil, err
	}
	log.Info("dataplane loaded", "pins", pin, "netns", o.DataplaneNetns, "uplink", o.Uplink)
	agent := &dataplane.Agent{
		DP: dp, Node: o.Name, Uplink: o.Uplink, State: node.Read, Report: nets.SetPortStatus, Log: log,
	}
	node.HandlePeer(dataplanePeerPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := dp.Status()
		if err != nil {
			api.JSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		api.JSON(w, http.StatusOK, st)
	}))
	return dp, agent, nil
}

// dataplaneStatus answers GET /rackstack/v1/nodes/{name}/dataplane: this
// node's own status, or the named node's over the peer port.
func dataplaneStatus(o *options, node *cluster.Node, dp *dataplane.Dataplane) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "name")
		if name == o.Name {
			if dp == nil {
				api.Fail(w, r, api.JSONError, api.Errorf(http.StatusNotFound, "node %s runs no dataplane (see its log: --dataplane)", name))
				return
			}
			st, err := dp.Status()
			if err != nil {
				api.Fail(w, r, api.JSONError, err)
				return
			}
			api.JSON(w, http.StatusOK, st)
			return
		}
		addr, err := node.PeerAddress(name)
		if err != nil {
			api.Fail(w, r, api.JSONError, api.Errorf(http.StatusNotFound, "no node named %s", name))
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "https://"+addr+dataplanePeerPath, nil)
		if err != nil {
			api.Fail(w, r, api.JSONError, err)
			return
		}
		resp, err := node.PeerClient().Do(req)
		if err != nil {
			api.Fail(w, r, api.JSONError, api.Errorf(http.StatusBadGateway, "node %s: %v", name, err))
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			api.Fail(w, r, api.JSONError, api.Errorf(http.StatusNotFound, "node %s runs no dataplane (see its log: --dataplane)", name))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}
}
