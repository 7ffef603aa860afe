//go:build integration

package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rackstack/rackstack/fabric/testenv"
)

// TestFaultDiskWiped wipes disk directories (as a disk that died and was
// replaced empty) while objects, volumes and FUA writes to a volume over
// NBD go on: one disk of a follower, then one of the leader, together
// the m = 2 shards every blob can lose. Writes go on; afterwards every
// acknowledged object reads back byte-identical and every acknowledged
// FUA write reads back through another node, the wiped disks are
// refilled and nothing is degraded, and deleting it all gives the space
// back.
func TestFaultDiskWiped(t *testing.T) {
	for _, c := range []string{"qemu-io", "stdbuf"} {
		testenv.RequireCommand(t, c)
	}
	nodes, creds := faultCluster(t)
	n1 := nodes[0]
	tok, project := faultProject(t, creds, n1.rackd)
	st := faultHealthy(t, creds, n1.rackd)
	leader, follower, reader := clusterRoles(nodes, st.Leader)
	if out, err := rackctl(t, creds, follower.rackd, "volume", "create", "dw", "--size", "128M"); err != nil {
		t.Fatalf("volume create: %v\n%s", err, out)
	}
	ex := exportVolume(t, creds, follower.rackd, "dw")
	w := startFUAWriter(t, ex.URI, 1500)

	load := newFaultLoad(t, nodes, tok, project)
	load.run()
	stopped := false
	defer func() {
		if !stopped {
			load.end()
		}
	}()
	load.ackedSince(map[string]int{}, 3, time.Minute, "before any wipe")
	w.waitAcked(t, 30, "before any wipe")

	wiped := []string{follower.disks[0], leader.disks[1]}
	for i, d := range wiped {
		before := load.snapshot()
		atWipe := len(w.acked())
		// Renamed away first, so the directory goes at once: a
		// RemoveAll in place races with the files rackd is still
		// making in it ("directory not empty").
		if err := os.Rename(d, d+".wiped"); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(d + ".wiped"); err != nil {
			t.Fatal(err)
		}
		t.Logf("wiped %s", d)
		load.ackedSince(before, 3, 90*time.Second, "after wiping "+d)
		w.waitAcked(t, atWipe+30+i, "after wiping "+d)
	}
	load.ackedSince(load.snapshot(), 3, 90*time.Second, "after the wipes")
	load.end()
	stopped = true
	w.cmd.Process.Kill()
	<-w.done

	load.mu.Lock()
	t.Logf("acknowledged %v; unknown outcome %v", load.acks, load.unknown)
	if len(load.bad) > 0 {
		t.Errorf("%d answers no fault explains:\n%s", len(load.bad), strings.Join(load.bad, "\n"))
	}
	load.mu.Unlock()

	b := w.output()
	acked := fuaWrote.FindAllSubmatch(b, -1)
	t.Logf("%d FUA writes acknowledged, %d failed", len(acked), strings.Count(string(b), "write failed"))
	var reads []string
	for _, m := range acked {
		off, _ := strconv.ParseInt(string(m[1]), 10, 64)
		reads = append(reads, "-c", fmt.Sprintf("read -P %d %d 64k", off/(64<<10)%250+1, off))
	}
	if out, err := rackctl(t, creds, follower.rackd, "volume", "unexport", "dw"); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}
	ex = exportVolume(t, creds, reader.rackd, "dw")
	out := nbdTool(t, "qemu-io", append(append([]string{"-f", "raw"}, reads...), ex.URI)...)
	if strings.Contains(out, "failed") || strings.Contains(out, "error") || strings.Count(out, "read 65536/65536 bytes") != len(acked) {
		t.Fatalf("through %s, acknowledged writes do not all read back:\n%.3000s", reader.name, out)
	}
	if out, err := rackctl(t, creds, reader.rackd, "volume", "unexport", "dw"); err != nil {
		t.Fatalf("unexport: %v\n%s", err, out)
	}
	// The wiped disks are refilled: what is on them is what the metadata
	// places there, and nothing is degraded.
	waitStorage(t, creds, n1.rackd, "wiped disks refilled", 3*time.Minute, func(s storageStatus) bool {
		for _, d := range s.Disks {
			for _, p := range wiped {
				if d.Path == p && d.Shards != len(shardFiles([]string{d.Path}, -1)) {
					return false
				}
			}
		}
		return s.HealQueue == 0 && s.Degraded == 0
	})
	if out, err := rackctl(t, creds, reader.rackd, "volume", "delete", "dw"); err != nil {
		t.Fatalf("volume delete: %v\n%s", err, out)
	}
	faultCheck(t, creds, nodes, load)
}
