package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/secrets"
)

// The cluster key is made at bootstrap, reaches a joining node over the
// peer port, is kept 0600 in each data dir, and never enters the log.
func TestClusterKeyReachesJoinersButNotTheLog(t *testing.T) {
	a, err := startNode(t, "a", true, "", "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a leads with the CA and key id published", func() bool {
		_, err := readCA(a.State.Txn())
		return a.IsLeader() && err == nil && publishedKeyID(a.State.Txn()) != ""
	})
	tok, err := a.CreateJoinToken(context.Background(), time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startNode(t, "b", false, a.api.URL, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := secrets.Load(secrets.Path(a.cfg.DataDir))
	if err != nil {
		t.Fatal(err)
	}
	// b has the key as soon as it joined, before it runs.
	kb, err := secrets.Load(secrets.Path(b.cfg.DataDir))
	if err != nil || kb.ID != ka.ID || !bytes.Equal(kb.Secret, ka.Secret) {
		t.Fatalf("joined node's key %+v, %v; want the bootstrap node's", kb.ID, err)
	}
	for _, n := range []*testNode{a, b} {
		st, err := os.Stat(secrets.Path(n.cfg.DataDir))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s key file: %v %v, want mode 0600", n.Name(), st.Mode().Perm(), err)
		}
	}
	sealed, err := a.Secrets().Seal([]byte("secret"), []byte("row"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b opens what a sealed", func() bool {
		plain, err := b.Secrets().Open(sealed, []byte("row"))
		return err == nil && string(plain) == "secret"
	})
	// The log holds the key's id only.
	for _, n := range []*testNode{a, b} {
		raw, err := os.ReadFile(filepath.Join(n.cfg.DataDir, "raft", "raft.db"))
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range [][]byte{ka.Secret, []byte(base64.StdEncoding.EncodeToString(ka.Secret))} {
			if bytes.Contains(raw, form) {
				t.Fatalf("%s: the cluster key is in raft.db", n.Name())
			}
		}
	}
}

// A member that restarts without the key (a node of a cluster from before
// sealing, a lost file) fetches the published one from another member.
func TestRestartedMemberWithoutTheKeyFetchesIt(t *testing.T) {
	a, err := startNode(t, "a", true, "", "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a leads with the key id published", func() bool {
		return a.IsLeader() && publishedKeyID(a.State.Txn()) != ""
	})
	tok, err := a.CreateJoinToken(context.Background(), time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := startNode(t, "b", false, a.api.URL, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	cfg := b.cfg
	b.stop()
	if err := os.Remove(secrets.Path(cfg.DataDir)); err != nil {
		t.Fatal(err)
	}
	cfg.JoinURL, cfg.JoinToken, cfg.Registry = "", "", nil
	b, err = openNode(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := publishedKeyID(a.State.Txn())
	waitFor(t, "b fetches the key", func() bool { return b.keyring.KeyID() == want })
	if _, err := secrets.Load(secrets.Path(cfg.DataDir)); err != nil {
		t.Fatalf("the fetched key is not kept: %v", err)
	}
}
