package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/rackstack/rackstack/dataplane"
	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/cluster"
	"github.com/rackstack/rackstack/fabric/network"
	"github.com/rackstack/rackstack/node/ports"
)

const dataplanePeerPath = "/peer/dataplane/v1/status"

// layer3 says this build's dataplane routes, NATs and relays metadata for
// routers, floating IPs and the metadata service (dataplane.Desired's
// Routers, Floating, Externals, Metadata). Were it false, the network API
// would keep routers DOWN and list no L3 or metadata agent, and the ports
// agent would hand the dataplane none of them.
const layer3 = true

// openDataplane loads this node's eBPF dataplane and returns the agent that
// keeps it equal to the network state. With --dataplane auto, a node that
// cannot load BPF programs (not root, no BPF) runs without one and says so;
// with --dataplane on that is an error.
func openDataplane(o *options, node *cluster.Node, nets *network.Service, reg prometheus.Registerer, log *slog.Logger) (*dataplane.Dataplane, *ports.Agent, error) {
	if o.Dataplane == "off" {
		return nil, nil, nil
	}
	pin := bpfDir(o)
	if o.BPFDir == "" {
		adoptLegacyPins(filepath.Join(filepath.Dir(pin), o.Name), pin, log)
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
	agent := &ports.Agent{
		DP: dp, Node: o.Name, Uplink: o.Uplink, State: node.Read, Report: nets.SetPortStatus, Registry: reg, Log: log,
		Layer3: layer3, ReportFloating: nets.SetFloatingIPStatus, Reach: ports.Reach{Uplink: o.Uplink},
	}
	if o.hasPublic() {
		var inUse *linkInUse
		if err := addPublicReach(o, &agent.Reach); errors.As(err, &inUse) {
			dp.Close()
			return nil, nil, err
		} else if err != nil {
			log.Warn("no way in from the host to the public network", "err", err)
		}
	}
	if o.Uplink != "" {
		if err := addUplinkReach(o, &agent.Reach); err != nil {
			log.Warn("no external networks on the uplink's VLANs", "uplink", o.Uplink, "err", err)
		}
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

// bpfDir is where this node's maps and links are pinned: --bpf-dir, or a
// directory named by the node and its data dir. Two rackd on one host
// (two dev clouds, both named "dev") must not share pins: each would write
// its own ports over the other's.
func bpfDir(o *options) string {
	if o.BPFDir != "" {
		return o.BPFDir
	}
	return filepath.Join("/sys/fs/bpf/rackstack", o.Name+"-"+dataDirKey(o.DataDir))
}

// adoptLegacyPins moves the pins of a rackd from before the default pin
// directory named the data dir (legacy, /sys/fs/bpf/rackstack/NAME) to
// dir, so that the upgrade's restart adopts them as any restart does.
// Left behind, the old links would stay attached to every port beside the
// new ones, enforcing maps nobody updates any more. Pins another process
// holds (a rackd given that directory with --bpf-dir) are left alone.
func adoptLegacyPins(legacy, dir string, log *slog.Logger) {
	if _, err := os.Stat(dir); err == nil {
		return
	}
	f, err := os.Open(legacy)
	if err != nil {
		return
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		log.Warn("pins of an earlier rackd are held by another process; not adopting them", "dir", legacy, "err", err)
		return
	}
	if err := os.Rename(legacy, dir); err != nil {
		log.Warn("adopt the pins of an earlier rackd", "from", legacy, "to", dir, "err", err)
		return
	}
	log.Info("adopted the pins of an earlier rackd", "from", legacy, "to", dir)
}

// dataDirKey is a short name unique to a data dir on this machine, for the
// node's state outside it (BPF pins, QEMU's sockets).
func dataDirKey(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:6])
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

// dataplaneHealth is the dataplane's part of /healthz: whether the kernel
// was found to differ from what this node applied, and when it was last
// checked. Repaired drift leaves the node healthy, but is shown: something
// else writes this node's pins.
func dataplaneHealth(dp *dataplane.Dataplane) map[string]any {
	d := dp.Drift()
	h := map[string]any{"pin_dir": dp.PinDir(), "drift_repaired": d.Repaired}
	if !d.VerifiedAt.IsZero() {
		h["verified_at"] = d.VerifiedAt.UTC()
	}
	if d.Repaired > 0 {
		h["last_drift"] = d.Last.String()
		h["last_drift_at"] = d.LastAt.UTC()
	}
	if d.Error != "" {
		h["error"] = d.Error
	}
	return h
}

// addPublicReach makes the public network's veth pair and tells the
// ports agent the dataplane reaches "public" through its side. A pair
// another running rackd owns is an error saying what to pass instead.
func addPublicReach(o *options, r *ports.Reach) error {
	p, err := publicSubnet(o.Public)
	if err != nil {
		return err
	}
	var mac net.HardwareAddr
	if err := inNetns(o.DataplaneNetns, func() error {
		var err error
		mac, err = ensurePublicLink(p, o.DataDir)
		return err
	}); err != nil {
		var inUse *linkInUse
		if errors.As(err, &inUse) {
			return fmt.Errorf("--public %s: %w (a dev cloud with a public network of its own): pass --public off, or give this rackd a namespace of its own with --dataplane-netns", o.Public, err)
		}
		return err
	}
	r.Flat = map[string]string{publicPhysnet: publicDataplaneDev}
	if r.MACs == nil {
		r.MACs = map[string]net.HardwareAddr{}
	}
	r.MACs[publicDataplaneDev] = mac
	return nil
}

// addUplinkReach tells the ports agent the uplink's MAC: external networks
// that are VLANs of the physical network are reached there.
func addUplinkReach(o *options, r *ports.Reach) error {
	var mac net.HardwareAddr
	if err := inNetns(o.DataplaneNetns, func() error {
		ifc, err := net.InterfaceByName(o.Uplink)
		if err != nil {
			return fmt.Errorf("find uplink %s: %w", o.Uplink, err)
		}
		mac = ifc.HardwareAddr
		return nil
	}); err != nil {
		return err
	}
	if len(mac) != 6 {
		return fmt.Errorf("uplink %s has no Ethernet MAC", o.Uplink)
	}
	if r.MACs == nil {
		r.MACs = map[string]net.HardwareAddr{}
	}
	r.MACs[o.Uplink] = mac
	return nil
}

// vlanExternals says this node's dataplane reaches external networks that
// are VLANs of the physical network: on its uplink.
func (o *options) vlanExternals() bool { return o.Uplink != "" && o.Dataplane != "off" }

// hasPublic says this is a dev cloud with a public network.
func (o *options) hasPublic() bool { return o.Public != "" && o.Public != "off" }

// flatNetworks are the physical networks admins may make flat networks on.
func (o *options) flatNetworks() []string {
	if o.hasPublic() {
		return []string{publicPhysnet}
	}
	return nil
}

// clusterAgents adapts the cluster's nodes to network.Agents.
type clusterAgents struct{ node *cluster.Node }

func (a clusterAgents) AgentHosts(context.Context) ([]network.AgentHost, error) {
	nodes, err := a.node.Nodes()
	if err != nil {
		return nil, err
	}
	out := make([]network.AgentHost, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, network.AgentHost{Name: n.Name, Up: n.Status == "up", LastSeen: n.LastHeartbeat, Started: n.JoinedAt})
	}
	return out, nil
}
