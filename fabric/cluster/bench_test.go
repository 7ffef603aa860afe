package cluster

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPropose measures small commands through a three-node cluster
// over the real mTLS transport and bolt logs, with 64 concurrent proposers.
func BenchmarkPropose(b *testing.B) {
	a, err := startNodeB(b, "a", true, "", "")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 100 && !a.IsLeader(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 100; i++ {
		if _, err := readCA(a.State.Txn()); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := a.CreateJoinToken(ctx, time.Hour, 2)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []string{"b", "c"} {
		if _, err := startNodeB(b, n, false, a.api.URL, tok.Token); err != nil {
			b.Fatal(err)
		}
	}
	var seq atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Propose(ctx, "note.put", noteRow{ID: fmt.Sprint(seq.Add(1))}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
