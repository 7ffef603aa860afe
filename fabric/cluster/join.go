package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/rackstack/rackstack/fabric/api"
	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/fabric/store"
	"github.com/rackstack/rackstack/node/inventory"
)

// JoinRequest is what a new node sends to /rackstack/v1/cluster/join.
type JoinRequest struct {
	Token       string              `json:"token"`
	Name        string              `json:"name"`
	RaftAddress string              `json:"raft_address"`
	APIURL      string              `json:"api_url"`
	CSR         string              `json:"csr"`
	Inventory   inventory.Inventory `json:"inventory"`
}

// JoinResponse gives the new node its certificate and the cluster CA.
type JoinResponse struct {
	CACert string `json:"ca_cert"`
	Cert   string `json:"cert"`
	Leader string `json:"leader"`
	// LeaderPeer is the admitting leader's peer address, where the new
	// node fetches the cluster secret key over mutual TLS.
	LeaderPeer string `json:"leader_peer,omitempty"`
}

const tokenPrefix = "rsj_"

// CreateJoinToken makes a join token valid for ttl and uses joins. The
// secret is returned once; only its hash is replicated.
func (n *Node) CreateJoinToken(ctx context.Context, ttl time.Duration, uses int) (JoinTokenResponse, error) {
	if ttl <= 0 || ttl > 30*24*time.Hour {
		return JoinTokenResponse{}, api.BadField("ttl", "must be between 1s and 720h, not %s", ttl)
	}
	if uses < 1 || uses > 1000 {
		return JoinTokenResponse{}, api.BadField("uses", "a token lets 1 to 1000 nodes join, not %d", uses)
	}
	var id, secret [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return JoinTokenResponse{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return JoinTokenResponse{}, err
	}
	now := n.now().UTC()
	hash := sha256.Sum256(secret[:])
	row := joinTokenRow{ID: hex.EncodeToString(id[:]), SecretHash: hash[:], ExpiresAt: now.Add(ttl), UsesLeft: uses, CreatedAt: now}
	if _, err := n.Propose(ctx, CmdCreateJoinToken, row); err != nil {
		return JoinTokenResponse{}, err
	}
	return JoinTokenResponse{
		Token:     tokenPrefix + row.ID + "." + hex.EncodeToString(secret[:]),
		ID:        row.ID,
		ExpiresAt: row.ExpiresAt,
		Uses:      uses,
	}, nil
}

// JoinTokens lists the join tokens this node's state holds, oldest first,
// without their secrets.
func (n *Node) JoinTokens() []JoinToken {
	now := n.now()
	out := []JoinToken{}
	for _, t := range store.All[joinTokenRow](n.State.Txn(), "join_tokens", "id") {
		out = append(out, JoinToken{ID: t.ID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, UsesLeft: t.UsesLeft, Expired: !now.Before(t.ExpiresAt)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// RevokeJoinToken deletes a join token: no node can join with it any more.
func (n *Node) RevokeJoinToken(ctx context.Context, id string) error {
	_, err := n.Propose(ctx, CmdRevokeJoinToken, revokeJoinToken{ID: id})
	return err
}

func parseJoinToken(tok string) (id string, hash []byte, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(tok), tokenPrefix)
	if !ok {
		return "", nil, fmt.Errorf("%w: join token is malformed (expected %s<id>.<secret>)", ErrJoin, tokenPrefix)
	}
	id, sec, ok := strings.Cut(rest, ".")
	raw, derr := hex.DecodeString(sec)
	if !ok || derr != nil || len(raw) != 16 || len(id) != 32 {
		return "", nil, fmt.Errorf("%w: join token is malformed", ErrJoin)
	}
	h := sha256.Sum256(raw)
	return id, h[:], nil
}

// admit runs on the leader: it spends the token, issues the certificate,
// registers the node and adds it to the Raft configuration, as a voter while
// there are fewer than MaxVoters, else as a non-voter.
func (n *Node) admit(ctx context.Context, req JoinRequest) (JoinResponse, error) {
	if req.Name == "" || req.RaftAddress == "" || req.CSR == "" {
		return JoinResponse{}, fmt.Errorf("%w: name, raft_address and csr are required", ErrJoin)
	}
	id, hash, err := parseJoinToken(req.Token)
	if err != nil {
		return JoinResponse{}, err
	}
	conf, err := n.configuration()
	if err != nil {
		return JoinResponse{}, err
	}
	voters := 0
	for _, s := range conf.Servers {
		if string(s.ID) == req.Name {
			return JoinResponse{}, fmt.Errorf("%w: a node named %q is already a member; remove it first or pick another --name", ErrJoin, req.Name)
		}
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	ca, err := readCA(n.State.Txn())
	if err != nil {
		return JoinResponse{}, fmt.Errorf("cluster ca not yet replicated, retry: %w", store.ErrNoLeader)
	}
	cert, err := ca.Sign([]byte(req.CSR), req.Name)
	if err != nil {
		return JoinResponse{}, fmt.Errorf("%w: %v", ErrJoin, err)
	}
	now := n.now().UTC()
	node := &nodeRow{Name: req.Name, APIURL: req.APIURL, RaftAddress: req.RaftAddress, JoinedAt: now, LastHeartbeat: now, Inventory: req.Inventory}
	use := useJoinToken{ID: id, SecretHash: hash, Now: now, Node: node}
	_, err = n.Propose(ctx, CmdUseJoinToken, use)
	for try := 0; errors.Is(err, store.ErrOutcomeUnknown) && try < 3; try++ {
		// The very same command again: applied twice, it spends one use
		// and records the node once (applyUseJoinToken).
		_, err = n.Propose(ctx, CmdUseJoinToken, use)
	}
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return JoinResponse{}, fmt.Errorf("%w: %v", ErrJoin, err)
		}
		// Whether the token was spent is unknown: do not let the caller
		// retry blindly with it.
		return JoinResponse{}, fmt.Errorf("join not confirmed: %v", err)
	}
	var f raft.IndexFuture
	if voters < n.cfg.MaxVoters {
		f = n.raft.AddVoter(raft.ServerID(req.Name), raft.ServerAddress(req.RaftAddress), 0, 10*time.Second)
	} else {
		f = n.raft.AddNonvoter(raft.ServerID(req.Name), raft.ServerAddress(req.RaftAddress), 0, 10*time.Second)
	}
	if err := f.Error(); err != nil {
		return JoinResponse{}, fmt.Errorf("add %s to the raft configuration: %v", req.Name, err)
	}
	n.log.Info("node joined", "node", req.Name, "raft", req.RaftAddress, "voter", voters < n.cfg.MaxVoters)
	return JoinResponse{CACert: string(ca.CertPEM), Cert: string(cert), Leader: n.cfg.Name, LeaderPeer: n.cfg.Advertise}, nil
}

func joinStatus(err error) int {
	switch {
	case errors.Is(err, ErrJoin):
		return http.StatusForbidden
	case errors.Is(err, store.ErrNoLeader), errors.Is(err, store.ErrNotLeader):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// HandleJoin serves POST /rackstack/v1/cluster/join on the public API: the
// join token is the credential. Followers pass the request to the leader.
func (n *Node) HandleJoin(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeKeystoneError(w, http.StatusBadRequest, "malformed join request: "+err.Error())
		return
	}
	var resp JoinResponse
	var err error
	for attempt := 0; attempt < 30; attempt++ {
		if n.IsLeader() {
			resp, err = n.admit(r.Context(), req)
		} else if addr, _ := n.raft.LeaderWithID(); addr != "" {
			var status int
			status, err = n.call(r.Context(), http.MethodPost, string(addr), rpcJoin, req, &resp)
			if err != nil && status == http.StatusForbidden {
				err = fmt.Errorf("%w: %v", ErrJoin, err)
			}
		} else {
			err = store.ErrNoLeader
		}
		if err == nil || !retryable(err) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		writeKeystoneError(w, joinStatus(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// join asks an existing cluster to admit this node and stores the identity
// it is given.
func join(ctx context.Context, cfg Config, files tlsFiles) error {
	keyPEM, csrPEM, err := NewNodeKey(cfg.Name)
	if err != nil {
		return err
	}
	inv, _ := cfg.Inventory()
	raw, _ := json.Marshal(JoinRequest{Token: cfg.JoinToken, Name: cfg.Name, RaftAddress: cfg.Advertise, APIURL: cfg.APIURL, CSR: string(csrPEM), Inventory: inv})
	url := strings.TrimRight(cfg.JoinURL, "/") + "/rackstack/v1/cluster/join"
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("join %s: %w", cfg.JoinURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("join %s: %w", cfg.JoinURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := strings.TrimSpace(string(body))
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		return fmt.Errorf("join %s refused (HTTP %d): %s", cfg.JoinURL, resp.StatusCode, msg)
	}
	var jr JoinResponse
	if err := json.Unmarshal(body, &jr); err != nil {
		return fmt.Errorf("join %s: decode reply: %w", cfg.JoinURL, err)
	}
	if err := files.write([]byte(jr.CACert), []byte(jr.Cert), keyPEM); err != nil {
		return err
	}
	// The cluster key never travels over the public API (the join
	// request may be plain HTTP): with its certificate, the node now
	// fetches it from the leader's peer port. Failing that, Run fetches
	// it from any member later.
	if jr.LeaderPeer != "" {
		_, clientTLS, err := files.configs()
		if err != nil {
			return err
		}
		k, err := fetchKey(ctx, peerClient(clientTLS), jr.LeaderPeer, "")
		if err == nil {
			err = secrets.Save(secrets.Path(cfg.DataDir), k)
		}
		if err != nil {
			cfg.Log.Warn("fetch the cluster secret key at join; will retry from any member", "err", err)
		}
	}
	return nil
}

func writeKeystoneError(w http.ResponseWriter, status int, msg string) {
	api.JSONError(w, nil, api.Problem{Status: status, Msg: msg})
}
