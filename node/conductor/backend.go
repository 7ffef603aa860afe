package conductor

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rackstack/rackstack/fabric/baremetal/bmstate"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/provision/agentapi"
	"github.com/rackstack/rackstack/provision/ipxe"
)

// The conductor is the provisioning HTTP server's Backend.
var _ ipxe.Backend = (*Conductor)(nil)

// discoveryTTL is how long a discovery token is good for: one boot of
// the discovery ramdisk, with room for a slow machine.
const discoveryTTL = time.Hour

const discoveryPrefix = "discover."

// token is the agent token of one boot of a node: derived, never
// stored, so a restarted conductor hands a rebooting machine the same.
func (c *Conductor) token(nodeID, bootID string) string {
	m := hmac.New(sha256.New, c.Key)
	m.Write([]byte(nodeID + "/" + bootID))
	return hex.EncodeToString(m.Sum(nil))
}

func hashToken(t string) string {
	s := sha256.Sum256([]byte(t))
	return hex.EncodeToString(s[:])
}

// discoveryToken is bound to the MAC the machine booted from and expires:
// "discover.<mac hex>.<unix expiry>.<hmac>".
func (c *Conductor) discoveryToken(mac string, expiry time.Time) string {
	hexMAC := strings.ReplaceAll(mac, ":", "")
	exp := strconv.FormatInt(expiry.Unix(), 10)
	return discoveryPrefix + hexMAC + "." + exp + "." + c.discoveryMAC(mac, exp)
}

func (c *Conductor) discoveryMAC(mac, exp string) string {
	m := hmac.New(sha256.New, c.Key)
	m.Write([]byte("discover/" + mac + "/" + exp))
	return hex.EncodeToString(m.Sum(nil))
}

// checkDiscovery returns the MAC of a valid discovery token.
func (c *Conductor) checkDiscovery(token string) (string, error) {
	parts := strings.Split(strings.TrimPrefix(token, discoveryPrefix), ".")
	if len(parts) != 3 || len(parts[0]) != 12 {
		return "", ipxe.ErrBadToken
	}
	var mac strings.Builder
	for i := 0; i < 12; i += 2 {
		if i > 0 {
			mac.WriteByte(':')
		}
		mac.WriteString(parts[0][i : i+2])
	}
	m := bmstate.NormalizeMAC(mac.String())
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if m == "" || err != nil || !hmac.Equal([]byte(parts[2]), []byte(c.discoveryMAC(m, parts[1]))) {
		return "", ipxe.ErrBadToken
	}
	if c.now().After(time.Unix(exp, 0)) {
		return "", fmt.Errorf("%w: the discovery token expired", ipxe.ErrBadToken)
	}
	return m, nil
}

// nodeByToken finds this conductor's node whose agent boot has token.
func (c *Conductor) nodeByToken(ctx context.Context, token string) (*bmstate.Node, error) {
	txn, err := c.Repl.Read(ctx)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	sum := []byte(hashToken(token))
	for _, n := range store.All[bmstate.Node](txn, bmstate.NodeTable, "conductor", c.Name) {
		if n.Agent != nil && subtle.ConstantTimeCompare([]byte(n.Agent.TokenSHA256), sum) == 1 {
			return n.Clone(), nil
		}
	}
	return nil, ipxe.ErrBadToken
}

// Boot decides what the machine with mac boots: the discovery ramdisk
// when no node has the MAC, the agent of the operation in progress, or
// its next boot device.
func (c *Conductor) Boot(ctx context.Context, mac string) (ipxe.Boot, error) {
	txn, err := c.Repl.Read(ctx)
	if err != nil {
		return ipxe.Boot{}, fmt.Errorf("read nodes: %w", err)
	}
	n := bmstate.NodeByMAC(txn, mac)
	switch {
	case n == nil:
		return ipxe.Boot{Kind: ipxe.BootAgent, Token: c.discoveryToken(mac, c.now().Add(discoveryTTL)),
			Reason: "unknown machine " + mac + ": discovery"}, nil
	case n.Conductor != c.Name:
		return ipxe.Boot{Kind: ipxe.BootExit, Reason: fmt.Sprintf("node %s is conducted by %s, not here", n.ID, n.Conductor)}, nil
	case n.Agent != nil && !n.Agent.Done:
		return ipxe.Boot{Kind: ipxe.BootAgent, Token: c.token(n.ID, n.Agent.ID),
			Reason: fmt.Sprintf("node %s is %s: booting the agent to %s", n.ID, n.ProvisionState, n.Agent.Op)}, nil
	}
	return ipxe.Boot{Kind: ipxe.BootExit, Reason: fmt.Sprintf("node %s is %s: booting from the next device", n.ID, n.ProvisionState)}, nil
}

// Inventory enrols a discovered machine, or records the inventory of a
// node's agent boot (which ends an inspection).
func (c *Conductor) Inventory(ctx context.Context, token string, inv agentapi.Inventory) (agentapi.InventoryReply, error) {
	if strings.HasPrefix(token, discoveryPrefix) {
		mac, err := c.checkDiscovery(token)
		if err != nil {
			return agentapi.InventoryReply{}, err
		}
		return c.discover(ctx, mac, inv)
	}
	n, err := c.nodeByToken(ctx, token)
	if err != nil {
		return agentapi.InventoryReply{}, err
	}
	bootID := n.Agent.ID
	now := c.now()
	m, _, err := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.Agent == nil || m.Agent.ID != bootID {
			return false
		}
		recorded := inv
		m.Inventory = &recorded
		ag := m.Agent
		if !ag.Done {
			ag.LastHeartbeat = now
			ag.Deadline = now.Add(orDefault(c.HeartbeatTimeout, 90*time.Second))
		}
		switch {
		case ag.Op == OpInspect && !ag.Done:
			setProperties(m, &recorded)
			m.InspectedAt = now
			ag.Done = true
			ag.Result = &agentapi.Result{Op: OpInspect, OK: true, Message: summary(&recorded)}
			ag.Command = agentapi.Command{ID: newUUID(), Op: agentapi.OpPowerOff}
			c.event(m, "INFO", "inspection", "inventory recorded: "+summary(&recorded))
		case ag.Op == agentapi.OpDeploy && !ag.Done && ag.Command.Deploy != nil && ag.Command.Deploy.RootDisk == "":
			// Enrolled by hand, never inspected: the disk is chosen now
			// that the agent says what there is.
			disk, err := rootDisk(m, ag.Command.Deploy.ImageSize)
			if err != nil {
				ag.Done = true
				ag.Result = &agentapi.Result{CommandID: ag.Command.ID, Op: agentapi.OpDeploy, Error: err.Error()}
				break
			}
			d := *ag.Command.Deploy
			d.RootDisk = disk
			ag.Command.Deploy = &d
		}
		return true
	})
	if err != nil {
		return agentapi.InventoryReply{}, err
	}
	if m.Agent == nil || m.Agent.ID != bootID {
		return agentapi.InventoryReply{}, ipxe.ErrBadToken
	}
	if m.Agent.Op == OpInspect {
		// Ironic's inspection: ports for the NICs found without one, and
		// pxe_enabled on the NIC the machine booted from.
		if err := c.inspectPorts(ctx, m, &inv); err != nil {
			return agentapi.InventoryReply{}, err
		}
	}
	return agentapi.InventoryReply{Node: m.ID}, nil
}

// inspectPorts creates the ports AddPorts asks for that the node lacks,
// and, when the inventory says which NIC the machine PXE-booted from,
// marks that port pxe_enabled and the node's others not (Ironic's
// update_pxe_enabled).
func (c *Conductor) inspectPorts(ctx context.Context, n *bmstate.Node, inv *agentapi.Inventory) error {
	pxeMAC := bmstate.NormalizeMAC(inv.Boot.PXEInterface)
	policy := c.AddPorts
	if policy == "" {
		policy = AddPortsPXE
	}
	txn, err := c.Repl.Read(ctx)
	if err != nil {
		return fmt.Errorf("read ports: %w", err)
	}
	now := c.now()
	seen := map[string]bool{}
	for _, nic := range inv.Interfaces {
		mac := bmstate.NormalizeMAC(nic.MACAddress)
		if mac == "" || seen[mac] {
			continue
		}
		seen[mac] = true
		switch {
		case policy == AddPortsDisabled,
			policy == AddPortsPXE && mac != pxeMAC,
			policy == AddPortsActive && nic.IPv4Address == "" && mac != pxeMAC:
			continue
		}
		if bmstate.NodeByMAC(txn, mac) != nil {
			continue // this node's already, or another node's: never moved
		}
		port := bmstate.Port{ID: newUUID(), Address: mac, NodeID: n.ID, PXEEnabled: mac == pxeMAC, CreatedAt: now}
		if _, err := c.Repl.Propose(ctx, bmstate.CmdCreatePort, bmstate.CreatePortCmd{Row: port}); err != nil {
			if errors.Is(err, store.ErrOutcomeUnknown) {
				return fmt.Errorf("add port %s to node %s: %w", mac, n.ID, err)
			}
			// Another port took the MAC in the meantime: it stays.
			c.log().Warn("conductor: inspection could not add a port", "node", n.ID, "mac", mac, "err", err)
			continue
		}
		c.log().Info("conductor: inspection added a port", "node", n.ID, "mac", mac, "pxe", mac == pxeMAC)
	}
	if pxeMAC == "" || !seen[pxeMAC] {
		return nil
	}
	for _, p := range bmstate.Ports(txn, n.ID) {
		if p.PXEEnabled == (p.Address == pxeMAC) {
			continue
		}
		row := *p
		row.PXEEnabled = p.Address == pxeMAC
		row.UpdatedAt = now
		if _, err := c.Repl.Propose(ctx, bmstate.CmdPutPort, bmstate.PutPortCmd{Row: row, Revision: p.Revision}); err != nil && !bmstate.IsStale(err) {
			// A port changed through the API since is the operator's.
			return fmt.Errorf("set pxe_enabled of port %s: %w", p.ID, err)
		}
	}
	return nil
}

// discover enrols a machine from its discovery boot: a node in enroll
// with the inventory's properties and a port per NIC.
func (c *Conductor) discover(ctx context.Context, mac string, inv agentapi.Inventory) (agentapi.InventoryReply, error) {
	found := false
	for _, nic := range inv.Interfaces {
		found = found || bmstate.NormalizeMAC(nic.MACAddress) == mac
	}
	if !found {
		return agentapi.InventoryReply{}, fmt.Errorf("%w: interfaces: none has the MAC %s the machine booted from", ipxe.ErrInvalid, mac)
	}
	now := c.now()
	n := bmstate.Node{
		ID: newUUID(), Driver: "fake-hardware", ProvisionState: bmstate.StateEnroll,
		Conductor: c.Name, AutoDiscovered: true, Inventory: &inv, InspectedAt: now, CreatedAt: now, UpdatedAt: now,
		ProvisionUpdatedAt: now,
	}
	if a := inv.BMCAddress; a != "" && a != "0.0.0.0" {
		n.Driver, n.DriverInfo = "ipmi", map[string]string{"ipmi_address": a}
	}
	setProperties(&n, &inv)
	c.event(&n, "INFO", "discovery", fmt.Sprintf("discovered by a PXE boot from %s: %s", mac, summary(&inv)))
	var ports []bmstate.Port
	seen := map[string]bool{}
	for _, nic := range inv.Interfaces {
		a := bmstate.NormalizeMAC(nic.MACAddress)
		if a == "" || seen[a] {
			continue
		}
		seen[a] = true
		ports = append(ports, bmstate.Port{ID: newUUID(), Address: a, NodeID: n.ID, PXEEnabled: a == mac, CreatedAt: now})
	}
	res, err := c.Repl.Propose(ctx, bmstate.CmdDiscover, bmstate.DiscoverCmd{Node: n, Ports: ports})
	if errors.Is(err, store.ErrOutcomeUnknown) {
		// It may have enrolled the machine: look before answering. If it
		// did not, the agent's retry enrols it; if it did, the retry finds
		// the MAC and updates that node.
		if txn, rerr := c.Repl.Read(ctx); rerr == nil {
			if got := bmstate.NodeByMAC(txn, mac); got != nil {
				return agentapi.InventoryReply{Node: got.ID}, nil
			}
		}
		return agentapi.InventoryReply{}, fmt.Errorf("enrol %s: %w", mac, err)
	}
	if err != nil {
		return agentapi.InventoryReply{}, fmt.Errorf("enrol %s: %w", mac, err)
	}
	var row bmstate.Node
	if err := res.Decode(&row); err != nil {
		return agentapi.InventoryReply{}, fmt.Errorf("enrol %s: %w", mac, err)
	}
	c.log().Info("conductor: discovered a machine", "node", row.ID, "mac", mac, "new", row.ID == n.ID)
	return agentapi.InventoryReply{Node: row.ID}, nil
}

// Heartbeat keeps an agent boot alive and answers its next command. The
// row is written at most every HeartbeatWrite: a heartbeat every few
// seconds from every machine must not become a Raft write each.
func (c *Conductor) Heartbeat(ctx context.Context, token string, hb agentapi.Heartbeat) (agentapi.HeartbeatReply, error) {
	if strings.HasPrefix(token, discoveryPrefix) {
		if _, err := c.checkDiscovery(token); err != nil {
			return agentapi.HeartbeatReply{}, err
		}
		return agentapi.HeartbeatReply{Command: discoveryPowerOff}, nil
	}
	n, err := c.nodeByToken(ctx, token)
	if err != nil {
		return agentapi.HeartbeatReply{}, err
	}
	ag := n.Agent
	now := c.now()
	if !ag.Done && (ag.LastHeartbeat.IsZero() || now.Sub(ag.LastHeartbeat) >= orDefault(c.HeartbeatWrite, 15*time.Second)) {
		m, _, err := c.change(ctx, n.ID, func(m *bmstate.Node) bool {
			if m.Agent == nil || m.Agent.ID != ag.ID || m.Agent.Done {
				return false
			}
			m.Agent.LastHeartbeat = now
			m.Agent.Progress = hb.Progress
			m.Agent.Deadline = now.Add(orDefault(c.HeartbeatTimeout, 90*time.Second))
			return true
		})
		if err != nil {
			return agentapi.HeartbeatReply{}, err
		}
		if m.Agent == nil || m.Agent.ID != ag.ID {
			return agentapi.HeartbeatReply{}, ipxe.ErrBadToken
		}
		ag = m.Agent
	}
	return agentapi.HeartbeatReply{Command: next(ag)}, nil
}

// discoveryPowerOff ends a discovery boot. The agent runs each command
// id once and reports it (a poweroff too, before it powers off), so it
// has one.
var discoveryPowerOff = agentapi.Command{ID: "discovery-poweroff", Op: agentapi.OpPowerOff}

// next is the command an agent boot runs now: its own until it reported
// (an inspection's becomes poweroff once the inventory is in), then wait
// for the conductor's BMC step after clean and deploy.
func next(ag *bmstate.AgentBoot) agentapi.Command {
	if !ag.Done || ag.Op == OpInspect {
		return ag.Command
	}
	return agentapi.Command{Op: agentapi.OpWait}
}

// Result records how the agent's command ended; the conductor's next
// pass moves the node on.
func (c *Conductor) Result(ctx context.Context, token string, r agentapi.Result) error {
	if strings.HasPrefix(token, discoveryPrefix) {
		if _, err := c.checkDiscovery(token); err != nil {
			return err
		}
		if r.CommandID != discoveryPowerOff.ID || r.Op != agentapi.OpPowerOff {
			return fmt.Errorf("%w: command_id: a discovery boot runs only %s", ipxe.ErrConflict, discoveryPowerOff.ID)
		}
		return nil // it powers itself off now: nothing to record
	}
	n, err := c.nodeByToken(ctx, token)
	if err != nil {
		return err
	}
	ag := n.Agent
	switch {
	case r.CommandID != ag.Command.ID:
		return fmt.Errorf("%w: command_id: %s is not this boot's command (%s)", ipxe.ErrConflict, r.CommandID, ag.Command.ID)
	case r.Op != ag.Command.Op:
		return fmt.Errorf("%w: op: command %s is %s, not %s", ipxe.ErrInvalid, r.CommandID, ag.Command.Op, r.Op)
	case ag.Done:
		return nil // a repeated report
	}
	now := c.now()
	_, _, err = c.change(ctx, n.ID, func(m *bmstate.Node) bool {
		if m.Agent == nil || m.Agent.ID != ag.ID || m.Agent.Done {
			return false
		}
		res := r
		m.Agent.Done, m.Agent.Result = true, &res
		m.Agent.LastHeartbeat = now
		if r.OK {
			c.event(m, "INFO", "agent", fmt.Sprintf("the agent's %s succeeded: %s", r.Op, r.Message))
		} else {
			c.event(m, "ERROR", "agent", fmt.Sprintf("the agent's %s failed: %s", r.Op, r.Error))
		}
		return true
	})
	return err
}

// deployBoot is the node of a deploy boot's token.
func (c *Conductor) deployBoot(ctx context.Context, token string) (*bmstate.Node, error) {
	if strings.HasPrefix(token, discoveryPrefix) {
		return nil, fmt.Errorf("%w: a discovery boot deploys nothing", ipxe.ErrNotFound)
	}
	n, err := c.nodeByToken(ctx, token)
	if err != nil {
		return nil, err
	}
	if n.Agent.Op != agentapi.OpDeploy || n.Agent.Command.Deploy == nil {
		return nil, fmt.Errorf("%w: node %s is not being deployed", ipxe.ErrNotFound, n.ID)
	}
	return n, nil
}

// Image serves the raw image of a deploy boot.
func (c *Conductor) Image(ctx context.Context, token string) (ipxe.Content, error) {
	n, err := c.deployBoot(ctx, token)
	if err != nil {
		return ipxe.Content{}, err
	}
	id, _ := n.InstanceInfo["image_source"].(string)
	path := c.imagePath(id)
	f, err := os.Open(path)
	if err != nil {
		return ipxe.Content{}, fmt.Errorf("%w: the image %s is not prepared here", ipxe.ErrNotFound, id)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return ipxe.Content{}, err
	}
	return ipxe.Content{Body: f, Name: filepath.Base(path), ModTime: st.ModTime(), ETag: n.Agent.Command.Deploy.ImageSHA256}, nil
}

// ConfigDrive serves the config drive of a deploy boot that has one.
func (c *Conductor) ConfigDrive(ctx context.Context, token string) (ipxe.Content, error) {
	n, err := c.deployBoot(ctx, token)
	if err != nil {
		return ipxe.Content{}, err
	}
	if !n.Agent.Command.Deploy.ConfigDrive {
		return ipxe.Content{}, fmt.Errorf("%w: node %s's deploy has no config drive", ipxe.ErrNotFound, n.ID)
	}
	path := c.configDrivePath(n.ID)
	f, err := os.Open(path)
	if err != nil {
		return ipxe.Content{}, fmt.Errorf("%w: the config drive of node %s is missing", ipxe.ErrNotFound, n.ID)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return ipxe.Content{}, err
	}
	return ipxe.Content{Body: f, Name: "config-2.iso", ModTime: st.ModTime()}, nil
}
