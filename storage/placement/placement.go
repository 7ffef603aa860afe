// Package placement decides which disks hold the shards of an object. It is
// a pure function of the object's key and the set of disks, so every node
// computes the same answer (rendezvous hashing): adding a disk moves only the
// shards that the new disk wins.
package placement

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
)

// Disk is one disk of one node.
type Disk struct {
	Node string `json:"node"`
	ID   string `json:"id"` // unique in the cluster
}

func score(key string, d Disk) uint64 {
	h := sha256.New()
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(d.ID))
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// Place returns n distinct disks for key, spread over distinct nodes first
// and distinct disks of the same nodes second. Shard i goes to the i-th.
func Place(key string, disks []Disk, n int) ([]Disk, error) {
	if n > len(disks) {
		return nil, fmt.Errorf("placement needs %d disks, the cluster has %d", n, len(disks))
	}
	ranked := append([]Disk(nil), disks...)
	scores := make(map[string]uint64, len(ranked))
	for _, d := range ranked {
		scores[d.ID] = score(key, d)
	}
	sort.Slice(ranked, func(i, j int) bool {
		si, sj := scores[ranked[i].ID], scores[ranked[j].ID]
		if si != sj {
			return si > sj
		}
		return ranked[i].ID < ranked[j].ID
	})
	// Round-robin over nodes in the order of their best disk: the first pass
	// takes each node's best disk, the next pass each node's second best.
	var order []string
	byNode := map[string][]Disk{}
	for _, d := range ranked {
		if _, ok := byNode[d.Node]; !ok {
			order = append(order, d.Node)
		}
		byNode[d.Node] = append(byNode[d.Node], d)
	}
	out := make([]Disk, 0, n)
	for round := 0; len(out) < n; round++ {
		for _, node := range order {
			if ds := byNode[node]; round < len(ds) && len(out) < n {
				out = append(out, ds[round])
			}
		}
	}
	return out, nil
}

// Geometry picks k+m for a cluster: the default 4+2 when it has six disks
// on as many nodes as possible, less where it is smaller.
func Geometry(disks int) (k, m int) {
	switch {
	case disks >= 6:
		return 4, 2
	case disks >= 4:
		return disks - 2, 2
	case disks == 3:
		return 2, 1
	case disks == 2:
		return 1, 1
	}
	return 1, 0
}
