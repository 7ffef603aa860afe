//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/rackstack/rackstack/storage/s3/sigv4"
)

// TestFaultFrozenNodeReads times S3 GETs through one node of a
// three-node cluster while another is frozen (SIGSTOP: its connections
// stay open and nothing answers): first while the cluster still holds it
// up, then once it is down by its heartbeats. Every GET must answer the
// object's bytes; the times are logged beside those of the healthy
// cluster (never asserted: the machine is shared). Before hedged reads
// (storage/blob/DESIGN.md) each GET whose data shards included the
// frozen node's waited on them for the peer transport's deadline (10 s)
// before reading the parity, and went on doing so once the node was down.
func TestFaultFrozenNodeReads(t *testing.T) {
	nodes, creds := faultCluster(t)
	n1 := nodes[0]
	st := faultHealthy(t, creds, n1.rackd)
	leader, frozen, reader := clusterRoles(nodes, st.Leader)
	// The credential is made through the leader and used through the
	// reader at once: the reader may not have applied it yet, and must
	// look for it at the leader before it refuses the key
	// (fabric/identity README, "What was granted through one node holds
	// on every other").
	var ec2 struct{ Access, Secret string }
	if err := json.Unmarshal([]byte(openstack(t, osEnv(creds, leader.rackd), "ec2", "credentials", "create", "-f", "json")), &ec2); err != nil || ec2.Access == "" {
		t.Fatalf("ec2 credential: %v", err)
	}
	s3 := func(method, path string, body []byte) (int, []byte, error) {
		req, err := http.NewRequest(method, "http://"+reader.s3+path, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		sigv4.Sign(req, ec2.Access, ec2.Secret, "us-east-1", sigv4.UnsignedPayload, time.Now())
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		return resp.StatusCode, raw, err
	}
	if code, raw, err := s3("PUT", "/frozen-reads", nil); err != nil || code != 200 {
		t.Fatalf("create bucket: HTTP %d %v %s", code, err, raw)
	}
	// Objects of a stripe and a bit (4+2, 1 MiB shards): every data
	// shard is read, so most objects have one on the frozen node.
	const objects = 12
	sums := map[string]string{}
	var keys []string
	for i := range objects {
		key := "/frozen-reads/o" + string(rune('a'+i))
		body := randBytes(4<<20 + 1000*i)
		if code, raw, err := s3("PUT", key, body); err != nil || code != 200 {
			t.Fatalf("PUT %s: HTTP %d %v %s", key, code, err, raw)
		}
		keys, sums[key] = append(keys, key), md5Hex(body)
	}
	// readAll GETs every object through the reader, checks its bytes and
	// logs the median and the longest GET.
	readAll := func(phase string) {
		t.Helper()
		var took []time.Duration
		for _, key := range keys {
			start := time.Now()
			code, raw, err := s3("GET", key, nil)
			took = append(took, time.Since(start))
			if err != nil || code != 200 || md5Hex(raw) != sums[key] {
				t.Fatalf("%s: GET %s through %s: HTTP %d %v (%d bytes, md5 %s, want %s)", phase, key, reader.name, code, err, len(raw), md5Hex(raw), sums[key])
			}
		}
		slices.Sort(took)
		t.Logf("%s: %d GETs of 4 MiB through %s: median %v, longest %v", phase, len(took), reader.name, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	}
	readAll("healthy")
	thaw := freeze(t, frozen.cmd.Process)
	defer thaw()
	t.Logf("froze %s", frozen.name)
	readAll(frozen.name + " frozen, still up")
	readAll(frozen.name + " frozen, still up, again")
	waitStatus(t, creds, n1.rackd, frozen.name+" down", func(s clusterStatus) bool {
		for _, m := range s.Members {
			if m.Name == frozen.name {
				return !m.Up
			}
		}
		return false
	})
	readAll(frozen.name + " frozen and down")
	thaw()
	frozen.waitHealthy()
	faultHealthy(t, creds, n1.rackd)
	readAll("thawed")
}
