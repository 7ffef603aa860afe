package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rackstack/rackstack/fabric/store"
)

func (n *Node) configuration() (raft.Configuration, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Configuration{}, fmt.Errorf("read raft configuration: %w", err)
	}
	return f.Configuration(), nil
}

// Run keeps this node registered and heartbeating and, while it leads,
// publishes the CA and manages voters. It returns when ctx ends.
func (n *Node) Run(ctx context.Context) error {
	tick := time.NewTicker(n.cfg.HeartbeatInterval)
	defer tick.Stop()
	beats := 0
	registered := false
	for {
		if n.IsLeader() {
			n.publishCA(ctx)
			n.manageVoters(ctx)
		}
		n.syncSecretKey(ctx)
		if !registered {
			registered = n.register(ctx) == nil
		} else {
			hb := heartbeat{Name: n.cfg.Name, At: n.now().UTC()}
			if beats%30 == 0 { // inventory now and then; it rarely changes
				if inv, err := n.cfg.Inventory(); err == nil {
					hb.Inventory = &inv
				}
			}
			if _, err := n.Propose(ctx, CmdHeartbeat, hb); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					registered = false
				} else if ctx.Err() == nil {
					n.log.Debug("heartbeat", "err", err)
				}
			}
			beats++
		}
		// Until the CA is published, look again soon: joins wait on it.
		wait := tick.C
		if _, err := readCA(n.State.Txn()); err != nil || n.keyring.KeyID() == "" || publishedKeyID(n.State.Txn()) != n.keyring.KeyID() {
			wait = time.After(100 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wait:
		}
	}
}

func (n *Node) register(ctx context.Context) error {
	inv, err := n.cfg.Inventory()
	if err != nil {
		n.log.Warn("read inventory", "err", err)
	}
	now := n.now().UTC()
	row := nodeRow{Name: n.cfg.Name, APIURL: n.cfg.APIURL, RaftAddress: n.cfg.Advertise, LastHeartbeat: now, Inventory: inv, Services: n.Services()}
	if old, err := readNode(n.State.Txn(), n.cfg.Name); err == nil {
		row.JoinedAt = old.JoinedAt
	} else {
		row.JoinedAt = now
	}
	if _, err = n.Propose(ctx, CmdRegisterNode, row); err != nil {
		return err
	}
	return n.declare(ctx)
}

// publishCA proposes the CA created at bootstrap into the replicated state,
// once, so that any later leader can admit nodes.
func (n *Node) publishCA(ctx context.Context) {
	if _, err := readCA(n.State.Txn()); err == nil {
		return
	}
	files := tlsFiles{dir: n.cfg.DataDir}
	certPEM, err1 := os.ReadFile(files.ca())
	keyPEM, err2 := os.ReadFile(files.caKey())
	if err1 != nil || err2 != nil {
		return // not the bootstrap node; someone else will publish it
	}
	if _, err := n.Propose(ctx, CmdSetCA, CA{CertPEM: certPEM, KeyPEM: keyPEM}); err != nil && !errors.Is(err, store.ErrConflict) {
		n.log.Warn("publish cluster ca", "err", err)
	}
}

// nodeUp reports whether a node heartbeated within DownAfter.
func (n *Node) nodeUp(row *nodeRow, now time.Time) bool {
	return row != nil && now.Sub(row.LastHeartbeat) < n.cfg.DownAfter
}

// manageVoters keeps MaxVoters voters: it promotes healthy non-voters while
// voters are missing, and replaces a voter that has been down longer than
// DeadVoterAfter by promoting a healthy non-voter first and only then
// removing the dead voter, so quorum never shrinks by accident.
func (n *Node) manageVoters(ctx context.Context) {
	conf, err := n.configuration()
	if err != nil {
		return
	}
	now := n.now()
	tx := n.State.Txn()
	var voters, deadVoters, healthyNonvoters []raft.Server
	for _, s := range conf.Servers {
		row, _ := readNode(tx, string(s.ID))
		up := string(s.ID) == n.cfg.Name || n.nodeUp(row, now)
		dead := row != nil && now.Sub(row.LastHeartbeat) > n.cfg.DeadVoterAfter
		switch {
		case s.Suffrage == raft.Voter:
			voters = append(voters, s)
			if dead && string(s.ID) != n.cfg.Name {
				deadVoters = append(deadVoters, s)
			}
		case up:
			healthyNonvoters = append(healthyNonvoters, s)
		}
	}
	sort.Slice(healthyNonvoters, func(i, j int) bool { return healthyNonvoters[i].ID < healthyNonvoters[j].ID })
	for len(voters)-len(deadVoters) < n.cfg.MaxVoters && len(healthyNonvoters) > 0 {
		s := healthyNonvoters[0]
		healthyNonvoters = healthyNonvoters[1:]
		if err := n.raft.AddVoter(s.ID, s.Address, 0, 5*time.Second).Error(); err != nil {
			n.log.Warn("promote non-voter", "node", s.ID, "err", err)
			return
		}
		n.log.Info("promoted non-voter to voter", "node", s.ID)
		voters = append(voters, s)
	}
	// Remove a dead voter only when enough live voters remain without it.
	for _, d := range deadVoters {
		if len(voters)-1 < n.cfg.MaxVoters {
			break
		}
		if err := n.raft.RemoveServer(d.ID, 0, 5*time.Second).Error(); err != nil {
			n.log.Warn("remove dead voter", "node", d.ID, "err", err)
			return
		}
		n.log.Warn("removed dead voter", "node", d.ID)
		voters = voters[:len(voters)-1]
	}
}

// Status reports the cluster as this node sees it.
func (n *Node) Status() (Status, error) {
	conf, err := n.configuration()
	if err != nil {
		return Status{}, err
	}
	_, leaderID := n.raft.LeaderWithID()
	st := Status{
		Node:         n.cfg.Name,
		Leader:       string(leaderID),
		AppliedIndex: n.State.AppliedIndex(),
		CommitIndex:  n.raft.CommitIndex(),
	}
	fmt.Sscan(n.raft.Stats()["term"], &st.Term)
	if err := n.State.Halted(); err != nil {
		st.Halted = err.Error()
	}
	now := n.now()
	tx := n.State.Txn()
	votersUp, voters := 0, 0
	for _, s := range conf.Servers {
		m := Member{Name: string(s.ID), Address: string(s.Address), Suffrage: "nonvoter", Leader: s.ID == leaderID}
		if s.Suffrage == raft.Voter {
			m.Suffrage = "voter"
			voters++
		}
		if row, err := readNode(tx, string(s.ID)); err == nil {
			m.APIURL = row.APIURL
			m.LastContact = row.LastHeartbeat
			m.Up = n.nodeUp(row, now)
		}
		switch {
		case m.Up && s.Suffrage == raft.Voter:
			votersUp++
		case m.LastContact.IsZero():
			st.Problems = append(st.Problems, fmt.Sprintf("%s %s has never sent a heartbeat", m.Suffrage, m.Name))
		case !m.Up:
			st.Problems = append(st.Problems, fmt.Sprintf("%s %s is down (last heartbeat %s ago)", m.Suffrage, m.Name, now.Sub(m.LastContact).Round(time.Second)))
		}
		st.Members = append(st.Members, m)
	}
	st.Problems = append(st.Problems, upgradeProblems(tx)...)
	if leaderID == "" {
		st.Problems = append([]string{"no leader"}, st.Problems...)
	}
	if st.Halted != "" {
		st.Problems = append(st.Problems, fmt.Sprintf("%s is halted: %s", n.cfg.Name, st.Halted))
	}
	st.Quorum = leaderID != "" && votersUp > voters/2
	if !st.Quorum && leaderID != "" {
		st.Problems = append(st.Problems, fmt.Sprintf("only %d of %d voters are up: writes will stall", votersUp, voters))
	}
	st.Healthy = st.Quorum && len(st.Problems) == 0
	return st, nil
}

// Nodes lists the registered nodes with their up/down status.
func (n *Node) Nodes() ([]NodeInfo, error) {
	rows, err := readNodes(n.State.Txn())
	if err != nil {
		return nil, err
	}
	now := n.now()
	out := make([]NodeInfo, 0, len(rows))
	for _, r := range rows {
		out = append(out, n.nodeInfo(r, now))
	}
	return out, nil
}

func (n *Node) nodeInfo(r *nodeRow, now time.Time) NodeInfo {
	status := "down"
	if n.nodeUp(r, now) {
		status = "up"
	}
	return NodeInfo{Name: r.Name, APIURL: r.APIURL, RaftAddress: r.RaftAddress, Status: status, LastHeartbeat: r.LastHeartbeat, JoinedAt: r.JoinedAt, Inventory: r.Inventory, Services: r.Services}
}

// SetServices says what this node runs ("compute" where it runs
// servers), recorded with its registration, which Run makes when it
// starts: call it before Run. The scheduler places servers only on nodes
// that run compute.
func (n *Node) SetServices(s []string) {
	n.servicesMu.Lock()
	defer n.servicesMu.Unlock()
	n.services = slices.Clone(s)
}

// Services are what SetServices said.
func (n *Node) Services() []string {
	n.servicesMu.Lock()
	defer n.servicesMu.Unlock()
	return slices.Clone(n.services)
}

// NodeByName returns one registered node.
func (n *Node) NodeByName(name string) (NodeInfo, error) {
	r, err := readNode(n.State.Txn(), name)
	if err != nil {
		return NodeInfo{}, err
	}
	return n.nodeInfo(r, n.now()), nil
}

// Recover rewrites the Raft configuration in dataDir so this node is the
// only voter, for when quorum is lost for good. rackd must not be running.
func Recover(dataDir, name, advertise string, schemas []store.Schema) error {
	files := tlsFiles{dir: dataDir}
	if !store.HasExistingState(dataDir) || !files.exists() {
		return fmt.Errorf("%s holds no cluster state to recover", dataDir)
	}
	state, err := store.NewState(schemas...)
	if err != nil {
		return err
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(advertise))
	return store.Recover(store.RaftConfig{ID: name, DataDir: dataDir, Transport: trans, State: state}, raft.ServerAddress(advertise))
}
