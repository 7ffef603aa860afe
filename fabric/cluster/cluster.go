// Package cluster turns one rackd process into a member of a Rackstack
// cluster: its TLS identity (a cluster CA, node certificates issued at join),
// the mutual-TLS peer port shared by Raft and internal RPC, forwarding of
// writes to the leader, read-your-writes reads, join tokens, node heartbeats
// and voter management. It owns no service state of its own beyond nodes,
// join tokens and the CA.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/node/inventory"
)

// Config is everything a cluster member needs. cmd/rackd fills it.
type Config struct {
	Name       string
	DataDir    string
	RaftListen string // host:port the peer port binds
	Advertise  string // host:port others reach the peer port at
	APIURL     string // http://host:port others reach this node's API at
	Bootstrap  bool
	JoinURL    string
	JoinToken  string
	MaxVoters  int // default 3

	Schemas []store.Schema
	// Forget leaves these command types out of this node's state, as
	// a rackd from before them would have: for upgrade tests only
	// (rackd's RACKD_FORGET_COMMANDS).
	Forget    []string
	Log       *slog.Logger
	Registry  prometheus.Registerer
	Inventory func() (inventory.Inventory, error)

	HeartbeatInterval time.Duration // default 2s
	DownAfter         time.Duration // a node without heartbeat this long is down; default 10s
	DeadVoterAfter    time.Duration // a voter down this long is replaced; default 30s
	// StateLease is how long a node reads its local state without asking
	// the leader (token checks), and so how long a revocation waits for a
	// member that does not confirm it; default 3s. See stateLease.
	StateLease time.Duration
	// Raft timing; zero keeps the library defaults.
	RaftHeartbeatTimeout time.Duration
	RaftElectionTimeout  time.Duration

	// undeclared stands in, in tests, for a rackd from before the
	// command declarations (see upgrade.go): it never declares.
	undeclared bool
}

// Node is this process's membership in the cluster.
type Node struct {
	cfg Config
	// services are what this node runs (SetServices).
	servicesMu sync.Mutex
	services   []string
	log        *slog.Logger
	State      *store.State
	raft       *store.Raft
	peers      *peerListener
	clientTLS  *tls.Config
	rpc        *http.Client
	rpcSrv     *http.Server
	rpcMux     *http.ServeMux
	now        func() time.Time
	lease      stateLease
	keyring    *secrets.Keyring
}

// ErrJoin marks a refused join (bad, expired or reused token; name taken).
var ErrJoin = errors.New("join refused")

func (c *Config) defaults() {
	if c.MaxVoters == 0 {
		c.MaxVoters = 3
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.DownAfter == 0 {
		c.DownAfter = 10 * time.Second
	}
	if c.DeadVoterAfter == 0 {
		c.DeadVoterAfter = 30 * time.Second
	}
	if c.StateLease == 0 {
		c.StateLease = 3 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Inventory == nil {
		c.Inventory = func() (inventory.Inventory, error) { return inventory.Inventory{}, nil }
	}
}

// Open makes this process a cluster member: it bootstraps a new cluster,
// joins an existing one, or restarts from the data dir, then starts Raft
// and the peer port. Call Run to start the background loops.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	cfg.defaults()
	if cfg.Name == "" {
		return nil, errors.New("a node needs a name (--name)")
	}
	if _, _, err := net.SplitHostPort(cfg.Advertise); err != nil {
		return nil, fmt.Errorf("%w: %q", errAdvertise, cfg.Advertise)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	files := tlsFiles{dir: cfg.DataDir}
	existing := store.HasExistingState(cfg.DataDir)
	if existing && !files.exists() {
		return nil, fmt.Errorf("data dir %s has a raft log but no tls/node.pem: it is damaged; restore it or start with an empty data dir", cfg.DataDir)
	}
	switch {
	case existing:
		// Restart: the log says who we are.
	case cfg.Bootstrap:
		if err := bootstrapTLS(files, cfg.Name); err != nil {
			return nil, err
		}
		if err := ensureKey(cfg.DataDir); err != nil {
			return nil, err
		}
	case cfg.JoinURL != "":
		if err := join(ctx, cfg, files); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("data dir %s is empty: start with --bootstrap for a new cluster or --join URL --join-token T to join one", cfg.DataDir)
	}
	serverTLS, clientTLS, err := files.configs()
	if err != nil {
		return nil, err
	}
	state, err := store.NewState(cfg.Schemas...)
	if err != nil {
		return nil, err
	}
	state.Forget(cfg.Forget...)
	peers, err := listenPeers(cfg.RaftListen, serverTLS)
	if err != nil {
		return nil, err
	}
	adv, err := net.ResolveTCPAddr("tcp", cfg.Advertise)
	if err != nil {
		peers.Close()
		return nil, fmt.Errorf("resolve advertise address: %w", err)
	}
	stream := &streamLayer{chanListener: peers.raft, advertise: adv, client: clientTLS}
	trans := raft.NewNetworkTransportWithLogger(stream, 3, 10*time.Second, store.RaftLogger(cfg.Log, "raft-transport"))
	r, err := store.OpenRaft(store.RaftConfig{
		ID: cfg.Name, DataDir: cfg.DataDir, Transport: trans, State: state, Log: cfg.Log,
		Registry: cfg.Registry, HeartbeatTimeout: cfg.RaftHeartbeatTimeout, ElectionTimeout: cfg.RaftElectionTimeout,
	}, cfg.Bootstrap && !existing, raft.ServerAddress(cfg.Advertise))
	if err != nil {
		peers.Close()
		return nil, err
	}
	keyring := &secrets.Keyring{}
	if k, err := secrets.Load(secrets.Path(cfg.DataDir)); err == nil {
		if err := keyring.Set(k); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, secrets.ErrNoKey) {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Log, State: state, raft: r, peers: peers, clientTLS: clientTLS, rpcMux: http.NewServeMux(), now: time.Now, keyring: keyring}
	n.rpc = &http.Client{
		// No overall timeout: shard streams may be long; callers pass
		// contexts with deadlines.
		Transport: &http.Transport{
			DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return dialPeer(ctx, clientTLS, addr, protoRPC)
			},
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	n.rpcSrv = &http.Server{Handler: n.rpcHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = n.rpcSrv.Serve(peers.rpc) }()
	return n, nil
}

// bootstrapTLS creates the cluster CA and this node's certificate.
func bootstrapTLS(files tlsFiles, name string) error {
	if files.exists() {
		return nil // a bootstrap that died before Raft started; reuse its identity
	}
	ca, err := NewCA(name)
	if err != nil {
		return err
	}
	keyPEM, csrPEM, err := NewNodeKey(name)
	if err != nil {
		return err
	}
	certPEM, err := ca.Sign(csrPEM, name)
	if err != nil {
		return err
	}
	if err := files.write(ca.CertPEM, certPEM, keyPEM); err != nil {
		return err
	}
	// The CA key is proposed into the replicated state once this node
	// leads; until then it waits here.
	return writeFileAtomic(files.caKey(), ca.KeyPEM, 0o600)
}

// Close stops Raft and the peer port. Running VMs and other node work are
// not this package's business.
func (n *Node) Close() error {
	err := n.raft.Close()
	n.peers.Close()
	_ = n.rpcSrv.Close()
	return err
}

// Raft exposes the Raft instance (status, membership).
func (n *Node) Raft() *raft.Raft { return n.raft.Raft }

// Name is this node's name.
func (n *Node) Name() string { return n.cfg.Name }

// IsLeader reports whether this node leads the cluster now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// CatchingUp reports whether this node leads but has not yet applied every
// entry committed before its term: a leader that has just restarted
// replays the log written since its last snapshot, and until it has, every
// read waits (Read). /healthz answers 503 meanwhile, so that a client or a
// load balancer that waits for it does not send requests that would hang.
// A follower's reads wait for the leader's applied index instead, as
// before; it is never catching up in this sense.
func (n *Node) CatchingUp() bool { return n.IsLeader() && !n.raft.Ready() }

// Propose appends a command to the log through the leader, wherever it is,
// and returns once this node has applied it (read-your-writes).
func (n *Node) Propose(ctx context.Context, typ string, body any) (store.Result, error) {
	// Refused here, nothing reaches the log: a command type this node does
	// not know is a bug of the caller, and a halted node could not read its
	// write back.
	if !n.State.Knows(typ) {
		return store.Result{}, fmt.Errorf("propose %s: %w", typ, store.ErrUnknownCommand)
	}
	if err := n.State.Halted(); err != nil {
		return store.Result{}, fmt.Errorf("propose %s: %w", typ, err)
	}
	cmd, err := store.Proposal(ctx, typ, body)
	if err != nil {
		return store.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var res store.Result
	for attempt := 0; ; attempt++ {
		res, err = n.proposeOnce(ctx, cmd)
		if err == nil || !retryable(err) || attempt >= 50 {
			break
		}
		select {
		case <-ctx.Done():
			return store.Result{}, fmt.Errorf("%w: %v", store.ErrNoLeader, err)
		case <-time.After(time.Duration(50+attempt*50) * time.Millisecond):
		}
	}
	if err != nil {
		return store.Result{}, err
	}
	if err := n.State.WaitApplied(ctx, res.Index); err != nil {
		return res, err
	}
	if err := store.ResultError(res); err != nil {
		return res, err
	}
	return res, nil
}

// retryable errors are those where the command certainly did not enter the
// log: nobody leads, the node asked does not lead, or the request never left
// this node (errDial). A request that was sent and then failed is
// store.ErrOutcomeUnknown, never retried.
func retryable(err error) bool {
	return errors.Is(err, store.ErrNotLeader) || errors.Is(err, store.ErrNoLeader) || errors.Is(err, errDial)
}

// errDial: the leader could not be reached, and no byte of the request was
// sent.
var errDial = errors.New("cannot reach the leader")

func (n *Node) proposeOnce(ctx context.Context, cmd store.Command) (store.Result, error) {
	if n.IsLeader() {
		return n.raft.ApplyLocal(ctx, cmd)
	}
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return store.Result{}, store.ErrNoLeader
	}
	return n.forwardApply(ctx, string(addr), cmd)
}

// Read returns a read transaction that reflects every write acknowledged
// before the call, on whichever node it was made: a follower asks the
// leader how far the log is applied and waits to catch up.
func (n *Node) Read(ctx context.Context) (*memdb.Txn, error) {
	if err := n.State.Halted(); err != nil {
		return nil, err
	}
	if n.IsLeader() {
		if err := n.raft.LeaderReady(5 * time.Second); err != nil {
			return nil, fmt.Errorf("%w: %v", store.ErrNoLeader, err)
		}
		return n.State.Txn(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		addr, _ := n.raft.LeaderWithID()
		if addr != "" {
			idx, err := n.readIndex(ctx, string(addr))
			if err == nil {
				if err := n.State.WaitApplied(ctx, idx); err != nil {
					return nil, fmt.Errorf("%w: %v", store.ErrNoLeader, err)
				}
				return n.State.Txn(), nil
			}
			if n.IsLeader() {
				if err := n.raft.LeaderReady(5 * time.Second); err != nil {
					return nil, fmt.Errorf("%w: %v", store.ErrNoLeader, err)
				}
				return n.State.Txn(), nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: no leader to confirm a consistent read", store.ErrNoLeader)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Local returns a transaction on this node's state without any round trip:
// for token validation and other reads where a slightly old view is fine.
func (n *Node) Local() *memdb.Txn { return n.State.Txn() }
