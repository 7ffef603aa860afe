package placement

import (
	"fmt"
	"testing"
)

func disks(nodes, perNode int) []Disk {
	var out []Disk
	for n := 0; n < nodes; n++ {
		for d := 0; d < perNode; d++ {
			out = append(out, Disk{Node: fmt.Sprintf("n%d", n), ID: fmt.Sprintf("n%d-d%d", n, d)})
		}
	}
	return out
}

func TestDistinctNodesFirst(t *testing.T) {
	tests := map[string]struct {
		nodes, perNode, n int
		wantNodes         int
	}{
		"six nodes one disk": {6, 1, 6, 6},
		"one node six disks": {1, 6, 6, 1},
		"three nodes two":    {3, 2, 6, 3},
		"eight nodes":        {8, 1, 6, 6},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 200; i++ {
				got, err := Place(fmt.Sprintf("obj-%d", i), disks(tc.nodes, tc.perNode), tc.n)
				if err != nil {
					t.Fatal(err)
				}
				seenDisk, seenNode := map[string]bool{}, map[string]int{}
				for _, d := range got {
					if seenDisk[d.ID] {
						t.Fatalf("disk %s used twice", d.ID)
					}
					seenDisk[d.ID] = true
					seenNode[d.Node]++
				}
				if len(seenNode) != tc.wantNodes {
					t.Fatalf("%d nodes used, want %d", len(seenNode), tc.wantNodes)
				}
				for node, c := range seenNode {
					if c > (tc.n+tc.wantNodes-1)/tc.wantNodes {
						t.Fatalf("node %s holds %d shards: not spread", node, c)
					}
				}
			}
		})
	}
}

// TestStableWhenGrowing: adding a seventh node moves a minority of shards,
// and placement never depends on the order disks are listed in.
func TestStableWhenGrowing(t *testing.T) {
	before, after := disks(6, 1), disks(7, 1)
	moved, total := 0, 0
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("o%d", i)
		a, _ := Place(key, before, 6)
		b, _ := Place(key, after, 6)
		rev := append([]Disk(nil), after...)
		for l, r := 0, len(rev)-1; l < r; l, r = l+1, r-1 {
			rev[l], rev[r] = rev[r], rev[l]
		}
		c, _ := Place(key, rev, 6)
		for j := range b {
			if b[j] != c[j] {
				t.Fatal("placement depends on the order of the disk list")
			}
		}
		inA := map[string]bool{}
		for _, d := range a {
			inA[d.ID] = true
		}
		for _, d := range b {
			total++
			if !inA[d.ID] {
				moved++
			}
		}
	}
	// The new node should win about 6/7 of the objects' last slot: ~1/7 of shards move.
	if frac := float64(moved) / float64(total); frac > 0.25 {
		t.Fatalf("%.0f%% of shards moved when one of seven nodes was added", frac*100)
	}
}

func TestTooFewDisks(t *testing.T) {
	if _, err := Place("x", disks(2, 2), 6); err == nil {
		t.Fatal("placing 6 shards on 4 disks must fail")
	}
}

func TestGeometry(t *testing.T) {
	for disks, want := range map[int][2]int{1: {1, 0}, 2: {1, 1}, 3: {2, 1}, 4: {2, 2}, 5: {3, 2}, 6: {4, 2}, 12: {4, 2}} {
		k, m := Geometry(disks)
		if k != want[0] || m != want[1] {
			t.Errorf("Geometry(%d) = %d+%d, want %d+%d", disks, k, m, want[0], want[1])
		}
	}
}
