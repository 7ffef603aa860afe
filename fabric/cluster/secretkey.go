package cluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	memdb "github.com/hashicorp/go-memdb"

	"github.com/rackstack/rackstack/fabric/secrets"
	"github.com/rackstack/rackstack/fabric/store"
)

// The cluster secret key (see package secrets) lives in each node's data
// dir, never in the log. The log records only its id, first write wins,
// so that every node converges on one key even when a cluster from before
// sealing gets its key from whichever node leads first.
//
//   - bootstrap creates the key; the first leader publishes its id;
//   - a joining node fetches the key over the mutual-TLS peer port from the
//     leader that admitted it, right after it got its certificate;
//   - a node whose key is missing or not the published one (an older
//     cluster, a join that could not fetch it) fetches it from any member
//     that has it; a leader of a cluster without a published key creates
//     one and publishes it.

// CmdSetSecretKeyID records the id of the cluster secret key.
const CmdSetSecretKeyID = "cluster.secretkey.set"

const rpcSecretKey = "/internal/v1/secret-key"

type secretKeyRow struct {
	ID    string `json:"id"` // always "secret-key"
	KeyID string `json:"key_id"`
}

func applySetSecretKeyID(tx *memdb.Txn, _ uint64, body json.RawMessage) (any, error) {
	var r secretKeyRow
	if err := store.DecodeBody(body, &r); err != nil {
		return nil, err
	}
	if r.KeyID == "" {
		return nil, fmt.Errorf("secret key id is empty: %w", store.ErrInvalid)
	}
	if old := publishedKeyID(tx); old != "" {
		if old == r.KeyID {
			return nil, nil
		}
		return nil, fmt.Errorf("cluster secret key already set: %w", store.ErrConflict)
	}
	r.ID = "secret-key"
	return nil, tx.Insert("cluster_secret_key", &r)
}

func publishedKeyID(tx *memdb.Txn) string {
	raw, _ := tx.First("cluster_secret_key", "id", "secret-key")
	if r, ok := raw.(*secretKeyRow); ok {
		return r.KeyID
	}
	return ""
}

// Secrets seals and opens secrets with the cluster key. Sealing fails
// with secrets.ErrNoKey until this node holds the published key.
func (n *Node) Secrets() interface {
	Seal(plain, aad []byte) (string, error)
	Open(value string, aad []byte) ([]byte, error)
} {
	return nodeSealer{n}
}

// ensureKey creates the cluster key of a new cluster, once.
func ensureKey(dataDir string) error {
	if _, err := secrets.Load(secrets.Path(dataDir)); !errors.Is(err, secrets.ErrNoKey) {
		return err
	}
	k, err := secrets.NewKey()
	if err != nil {
		return err
	}
	return secrets.Save(secrets.Path(dataDir), k)
}

// serveSecretKey hands the key to another member: only nodes holding a
// certificate from the cluster CA reach the peer port.
func (n *Node) serveSecretKey(w http.ResponseWriter, r *http.Request) {
	k, err := secrets.Load(secrets.Path(n.cfg.DataDir))
	if err != nil || (r.URL.Query().Get("id") != "" && r.URL.Query().Get("id") != k.ID) {
		http.Error(w, "this node does not hold that key", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// fetchKey asks the member at addr for the key (with id, if not "").
func (n *Node) fetchKey(ctx context.Context, addr, id string) (secrets.Key, error) {
	return fetchKey(ctx, n.rpc, addr, id)
}

// fetchKey asks the member at addr, over the peer port, for the key.
func fetchKey(ctx context.Context, client *http.Client, addr, id string) (secrets.Key, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+rpcSecretKey+"?id="+url.QueryEscape(id), nil)
	if err != nil {
		return secrets.Key{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return secrets.Key{}, fmt.Errorf("fetch cluster key from %s: %w", addr, err)
	}
	defer resp.Body.Close()
	var k secrets.Key
	if resp.StatusCode != http.StatusOK {
		return secrets.Key{}, fmt.Errorf("fetch cluster key from %s: HTTP %d", addr, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&k); err != nil {
		return secrets.Key{}, fmt.Errorf("fetch cluster key from %s: %w", addr, err)
	}
	if k.ID == "" || len(k.Secret) != 32 || (id != "" && k.ID != id) {
		return secrets.Key{}, fmt.Errorf("fetch cluster key from %s: malformed or another key", addr)
	}
	return k, nil
}

// peerClient is an HTTP client to other members' peer ports.
func peerClient(clientTLS *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialPeer(ctx, clientTLS, addr, protoRPC)
		},
	}}
}

// nodeSealer seals with this node's key only once it is the published
// cluster key, so nothing is sealed with a key that lost the race to be
// the cluster's.
type nodeSealer struct{ n *Node }

// Seal encrypts plain bound to aad with the cluster key.
func (s nodeSealer) Seal(plain, aad []byte) (string, error) {
	if id := s.n.keyring.KeyID(); id == "" || id != publishedKeyID(s.n.State.Txn()) {
		return "", fmt.Errorf("seal secret: %w", secrets.ErrNoKey)
	}
	return s.n.keyring.Seal(plain, aad)
}

// Open decrypts a sealed value (a plaintext one passes as it is).
func (s nodeSealer) Open(value string, aad []byte) ([]byte, error) {
	return s.n.keyring.Open(value, aad)
}

// install keeps k as this node's key.
func (n *Node) install(k secrets.Key) error {
	if err := secrets.Save(secrets.Path(n.cfg.DataDir), k); err != nil {
		return err
	}
	return n.keyring.Set(k)
}

// syncSecretKey converges this node on the published key (see above).
func (n *Node) syncSecretKey(ctx context.Context) {
	want := publishedKeyID(n.State.Txn())
	have := n.keyring.KeyID()
	switch {
	case want == "" && n.IsLeader():
		if have == "" {
			k, err := secrets.NewKey()
			if err == nil {
				err = n.install(k)
			}
			if err != nil {
				n.log.Warn("create cluster secret key", "err", err)
				return
			}
			have = k.ID
		}
		if _, err := n.Propose(ctx, CmdSetSecretKeyID, secretKeyRow{KeyID: have}); err != nil && !errors.Is(err, store.ErrConflict) {
			n.log.Warn("publish cluster secret key id", "err", err)
		}
	case want != "" && have != want:
		conf, err := n.configuration()
		if err != nil {
			return
		}
		for _, s := range conf.Servers {
			if string(s.ID) == n.cfg.Name {
				continue
			}
			k, err := n.fetchKey(ctx, string(s.Address), want)
			if err != nil {
				continue
			}
			if err := n.install(k); err != nil {
				n.log.Warn("store cluster secret key", "err", err)
				return
			}
			n.log.Info("received the cluster secret key", "from", s.ID, "key", k.ID)
			return
		}
		n.log.Warn("no member handed out the cluster secret key yet", "key", want)
	}
}
