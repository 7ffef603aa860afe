// Package secrets seals the small secrets the replicated state must hold
// (EC2 secrets, credential blobs, later BMC passwords) with the cluster
// key, so that the Raft log, its snapshots and backups of them hold only
// ciphertext.
//
// The cluster key is created when a cluster is bootstrapped, handed to a
// joining node over the mutual-TLS peer port, and kept in each node's data
// dir (mode 0600). It is never proposed: the log must not carry the key to
// the data it protects. Sealing happens before a command is proposed, with
// a nonce chosen then, so the state machine only copies ciphertext and
// stays deterministic.
//
// A sealed value is text: "rs-sealed:v1:<key id>:<base64url(nonce|ciphertext)>",
// AES-256-GCM with the caller's additional data (the row's id) bound in,
// so a sealed value moved to another row does not open. A value without
// the prefix is plaintext from a cluster that predates sealing; Open
// returns it as it is.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

const prefix = "rs-sealed:v1:"

// ErrNoKey means this node does not hold the cluster key (yet).
var ErrNoKey = errors.New("no cluster secret key on this node")

// ErrWrongKey means a value was sealed with another key than this node's.
var ErrWrongKey = errors.New("sealed with another cluster key")

// Key is a cluster key as it is stored and handed to joining nodes.
type Key struct {
	ID     string `json:"id"`
	Secret []byte `json:"key"` // 32 bytes
}

// NewKey makes a random key.
func NewKey() (Key, error) {
	var id [8]byte
	secret := make([]byte, 32)
	if _, err := rand.Read(id[:]); err != nil {
		return Key{}, fmt.Errorf("make cluster key: %w", err)
	}
	if _, err := rand.Read(secret); err != nil {
		return Key{}, fmt.Errorf("make cluster key: %w", err)
	}
	return Key{ID: base64.RawURLEncoding.EncodeToString(id[:]), Secret: secret}, nil
}

// Path is where a node keeps the cluster key in its data dir.
func Path(dataDir string) string { return filepath.Join(dataDir, "secrets", "cluster.key") }

// Load reads the key at path; ErrNoKey when there is none.
func Load(path string) (Key, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Key{}, ErrNoKey
	}
	if err != nil {
		return Key{}, fmt.Errorf("read cluster key: %w", err)
	}
	var k Key
	if err := json.Unmarshal(raw, &k); err != nil || k.ID == "" || len(k.Secret) != 32 {
		return Key{}, fmt.Errorf("read cluster key %s: malformed", path)
	}
	return k, nil
}

// Save writes the key to path, readable by the owner only; the write is
// atomic so a crash never leaves half a key.
func Save(path string, k Key) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save cluster key: %w", err)
	}
	raw, err := json.Marshal(k)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-key")
	if err != nil {
		return fmt.Errorf("save cluster key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save cluster key: %w", err)
	}
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("save cluster key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save cluster key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save cluster key: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// Keyring seals and opens values with this node's cluster key. It may be
// empty for a while (a node of an older cluster waiting for the key);
// sealing then fails with ErrNoKey rather than store a secret in clear.
type Keyring struct {
	mu   sync.RWMutex
	id   string
	aead cipher.AEAD
}

// NewKeyring returns a keyring holding k.
func NewKeyring(k Key) (*Keyring, error) {
	r := &Keyring{}
	return r, r.Set(k)
}

// Set makes k the key of the ring.
func (r *Keyring) Set(k Key) error {
	block, err := aes.NewCipher(k.Secret)
	if err != nil {
		return fmt.Errorf("load cluster key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return fmt.Errorf("load cluster key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.id, r.aead = k.ID, aead
	return nil
}

// KeyID is the id of the ring's key, "" when it holds none.
func (r *Keyring) KeyID() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.id
}

// Seal encrypts plain bound to aad (the id of the row that holds it).
func (r *Keyring) Seal(plain, aad []byte) (string, error) {
	r.mu.RLock()
	id, aead := r.id, r.aead
	r.mu.RUnlock()
	if aead == nil {
		return "", ErrNoKey
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	out := aead.Seal(nonce, nonce, plain, aad)
	return prefix + id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// Open decrypts a sealed value, or returns a plaintext one as it is.
func (r *Keyring) Open(value string, aad []byte) ([]byte, error) {
	rest, ok := strings.CutPrefix(value, prefix)
	if !ok {
		return []byte(value), nil
	}
	id, body, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, errors.New("open secret: malformed sealed value")
	}
	r.mu.RLock()
	have, aead := r.id, r.aead
	r.mu.RUnlock()
	if aead == nil {
		return nil, fmt.Errorf("open secret: %w", ErrNoKey)
	}
	if id != have {
		return nil, fmt.Errorf("open secret: %w (%s, this node has %s)", ErrWrongKey, id, have)
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize() {
		return nil, errors.New("open secret: malformed sealed value")
	}
	plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], aad)
	if err != nil {
		return nil, fmt.Errorf("open secret: %w", err)
	}
	return plain, nil
}

// Sealed reports whether value is sealed (not plaintext).
func Sealed(value string) bool { return strings.HasPrefix(value, prefix) }
